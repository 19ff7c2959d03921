// Child process of ha.bench.ts: one controller replica (the xDS server, its snapshot cache and router,
// an HaReplica on the etcd cluster with a migration manager that follows) with its own fleet of raw
// ADS clients (xds-clients.ts, a grandchild). Messages from the parent: {change: bp, t0} (the leader
// stores the status and publishes; every replica counts its proxies' ACKs of the routes that follow),
// {blast: {perS, seconds, template}} (send that many filter reports a second, one per simulated proxy,
// to this replica's telemetry port, as the proxies would: a follower forwards them to the leader),
// {count} (reports merged here so far), {exit}. To the parent: {ready, rssPerStream, clientsPid},
// {elected}, {acks: [ms after t0...]}, {blasted: n}, {reports: n}.
import { fork } from "node:child_process";
import { performance } from "node:perf_hooks";
import { benchXds } from "./xds-fleet.js";
import { TYPE } from "../controller/xds/protos.js";
import { silentLogger } from "../controller/log.js";
import { etcdClient } from "../controller/ha/client.js";
import { HaReplica } from "../controller/ha/replica.js";
import { MigrationManager, routesOf } from "../controller/migration/manager.js";
import { DEFAULT_POLICY } from "../controller/migration/policy.js";
import { SystemClock } from "../host/clock.js";
import * as grpc from "@grpc/grpc-js";
import { TelemetryStore } from "../controller/telemetry/store.js";
import { addTelemetryService, telemetryClient } from "../controller/telemetry/service.js";
import { telemetryRoot } from "../controller/telemetry/report.js";
import { RiskEngine } from "../controller/risk/engine.js";
import { FailurePredictor } from "../controller/risk/predictor.js";
import { TelemetryForwarder } from "../controller/ha/forward.js";
import { DEFAULT_SIGNALS } from "../controller/config.js";

const [endpoints, name, prefix, streams, ttl] = process.argv.slice(2) as [string, string, string, string, string];
const n = Number(streams);
const wall = () => performance.timeOrigin + performance.now();
const logger = silentLogger();
const { cache, server, router, port } = await benchXds();
// The telemetry port: merged into this replica's store; a follower forwards each report to the leader.
const clock = new SystemClock();
const store = new TelemetryStore({ clock, maxProxies: 200_000 });
const engine = new RiskEngine({ clock, predictor: new FailurePredictor() });
engine.setComponent({ name: "orders", signals: DEFAULT_SIGNALS });
let forwarder: TelemetryForwarder | null = null;
const telemetryServer = new grpc.Server();
addTelemetryService(telemetryServer, { store, engine, clock, log: logger, forward: (raw) => forwarder?.forward(raw) });
const telemetryPort = await new Promise<number>((res, rej) => telemetryServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
const client = etcdClient({ endpoints: endpoints.split(","), callTimeoutMs: 3000 });
const replica = new HaReplica({ client, prefix, replica: name, ttlS: Number(ttl), log: logger, nowMs: () => Date.now(), local: router, telemetryAddress: `127.0.0.1:${telemetryPort}` });
forwarder = new TelemetryForwarder({ leader: () => replica.leaderTarget(), log: logger });
const manager = new MigrationManager({
  clock: new SystemClock(), router: replica.router(), store: replica.store, log: logger, policies: new Map([["orders", DEFAULT_POLICY]]),
  inputs: { gather: () => { throw new Error("the benchmark does not tick"); } }, actions: { run: async () => {} },
});
replica.on("role", (r: string) => { if (r === "leader") process.send!({ elected: true, atMs: wall() }); });
await replica.start(manager);

// Every RDS ACK: when, and of which version.
const acks: { atMs: number; version: string }[] = [];
server.on("ack", (_node: string, type: string, version: string) => { if (type === TYPE.route) acks.push({ atMs: wall(), version }); });

const rssBefore = process.memoryUsage().rss;
const clients = fork(new URL("./xds-clients.ts", import.meta.url), [String(port), String(n), "100"], { execArgv: ["--import", "tsx"] });
await new Promise<void>((resolve, reject) => {
  clients.on("message", (m: { ready?: boolean; error?: string }) => { if (m.ready) resolve(); if (m.error) reject(new Error(m.error)); });
});
await new Promise((r) => setTimeout(r, 500));
(globalThis as { gc?: () => void }).gc?.();
process.send!({ ready: true, rssPerStream: (process.memoryUsage().rss - rssBefore) / n, clientsPid: clients.pid });

/** Sends perS reports a second for `seconds` to this replica's telemetry port, each from its own simulated proxy. */
async function blast(perS: number, seconds: number, template: string): Promise<number> {
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
  const base = T.toObject(T.decode(Buffer.from(template, "base64")), { longs: String });
  const c = telemetryClient(`127.0.0.1:${telemetryPort}`) as unknown as grpc.Client & { Report(b: Uint8Array, cb: (e: grpc.ServiceError | null) => void): void };
  let sent = 0, inFlight = 0;
  for (let s = 0; s < seconds; s++) {
    const tick = Date.now();
    const endNs = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < perS; i++) {
      const o = { ...base, nodeId: `${name}-proxy-${i}`, sequence: String(s + 1), windowStartUnixNanos: String(endNs - 1_000_000_000n), windowEndUnixNanos: String(endNs) };
      while (inFlight >= 2000) await new Promise((r) => setImmediate(r));
      inFlight++;
      c.Report(T.encode(T.fromObject(o)).finish(), () => { inFlight--; });
      sent++;
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  c.close();
  return sent;
}

process.on("message", (m: { change?: number; t0?: number; exit?: boolean; blast?: { perS: number; seconds: number; template: string }; count?: boolean }) => {
  if (m.exit) { clients.kill("SIGKILL"); process.exit(0); }
  if (m.count) { process.send!({ reports: store.stats.reports, forwarded: forwarder?.stats }); return; }
  if (m.blast) { void blast(m.blast.perS, m.blast.seconds, m.blast.template).then((n) => process.send!({ blasted: n })); return; }
  if (m.change === undefined) return;
  const t0 = m.t0!, before = cache.getSnapshot("default")!.typeVersion(TYPE.route);
  void (async () => {
    if (replica.role === "leader") {
      // What the manager does for a step: the status durable in etcd first, then this replica's publish.
      const s = { ...structuredClone(manager.get("orders").status), phase: "Shifting" as const, stepIndex: 0, shadowWeightBp: m.change!, revision: manager.get("orders").status.revision + 1 };
      await replica.store.save(s, []);
      router.setRoutes("orders", routesOf(s));
    }
    // Wait until this replica published a new route version and every one of its streams ACKed it.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const v = cache.getSnapshot("default")!.typeVersion(TYPE.route);
      const mine = v !== before ? acks.filter((a) => a.version === v) : [];
      if (mine.length >= n || Date.now() > deadline) { process.send!({ acks: mine.map((a) => a.atMs - t0) }); return; }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
});
