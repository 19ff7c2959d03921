// Child process of ha.bench.ts: one controller replica (the xDS server, its snapshot cache and router,
// an HaReplica on the etcd cluster with a migration manager that follows) with its own fleet of raw
// ADS clients (xds-clients.ts, a grandchild). Messages from the parent: {change: bp, t0} (the leader
// stores the status and publishes; every replica counts its proxies' ACKs of the routes that follow),
// {prepare: {proxies, seconds, template, endNs0}} then {go} (this replica's proxies each send one filter
// report a second to its telemetry port, from their own process, report-clients.ts: a follower
// forwards what it merged to the leader), {count} (reports merged here so far, and when the count last
// rose), {exit}. To the parent: {ready, rssPerStream, clientsPid}, {elected}, {acks: [ms after t0...]},
// {prepared}, {blasted: n, failed}, {reports: n, lastMergeAtMs, role}.
import { fork } from "node:child_process";
import { performance } from "node:perf_hooks";
import { benchXds } from "./xds-fleet.js";
import { TYPE } from "../protocol/protos.js";
import { silentLogger } from "../controller/log.js";
import { etcdClient } from "../controller/ha/client.js";
import { HaReplica } from "../controller/ha/replica.js";
import { MigrationManager, routesOf } from "../controller/migration/manager.js";
import { DEFAULT_POLICY } from "../controller/migration/policy.js";
import { SystemClock } from "../host/clock.js";
import * as grpc from "@grpc/grpc-js";
import { TelemetryStore } from "../controller/telemetry/store.js";
import { addTelemetryService } from "../controller/telemetry/service.js";
import { RiskEngine } from "../controller/risk/engine.js";
import { FailurePredictor } from "../controller/risk/predictor.js";
import { TelemetryForwarder } from "../controller/ha/forward.js";
import { DEFAULT_SIGNALS } from "../controller/config.js";
import { DEFAULT_GROUP } from "../controller/xds/cache.js";

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
// As controller/main.ts wires it, with the follower's subscriber list every 5 s; the benchmark's
// proxies take RDS only, so their RDS subscription stands in for ECDS (the same list, the same size).
forwarder = new TelemetryForwarder({ leader: () => replica.leaderTarget(), leading: () => replica.role === "leader", log: logger,
  subscribers: { replica: name, nodes: () => server.subscribers(DEFAULT_GROUP, TYPE.route) } });
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

// The proxies' reports come from their own process (report-clients.ts), prepared before the clock starts.
let reporters: ReturnType<typeof fork> | null = null;
// When the merged count last rose (wall ms), sampled every 10 ms: the end of the leader's merging.
let lastMergeAtMs = 0, lastCount = 0;
setInterval(() => { if (store.stats.reports !== lastCount) { lastCount = store.stats.reports; lastMergeAtMs = wall(); } }, 10).unref();

process.on("message", (m: { change?: number; t0?: number; exit?: boolean; prepare?: { proxies: number; seconds: number; template: string; endNs0: string }; go?: boolean; count?: boolean }) => {
  if (m.exit) { clients.kill("SIGKILL"); reporters?.kill("SIGKILL"); process.exit(0); }
  if (m.count) { process.send!({ reports: store.stats.reports, lastMergeAtMs, role: replica.role, forwarded: forwarder?.stats }); return; }
  if (m.prepare) {
    reporters = fork(new URL("./report-clients.ts", import.meta.url), [], { execArgv: ["--import", "tsx"] });
    reporters.once("message", () => process.send!({ prepared: true }));
    reporters.send({ prepare: { ...m.prepare, port: telemetryPort, name } });
    return;
  }
  if (m.go) { reporters!.once("message", (r: { sent: number; failed: number }) => { process.send!({ blasted: r.sent, failed: r.failed }); reporters!.kill(); reporters = null; }); reporters!.send({ go: true }); return; }
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
