// The demo on real PostgreSQL (`npm start -- --component postgres`): a primary and a hot standby
// (world/demo/pg-pair.ts), the orders API in front of each (world/sample/orders.ts), the controller with the
// PostgreSQL driver (health, real signals, fence/drain/promote/rejoin), the embedded data plane with
// the real filter, the orders load, and a real fault on the primary (the primary's data directory
// sits on a small tmpfs): disk-fill (a growing archive table and its WAL fill it until PostgreSQL can
// no longer write), crash (pg_ctl stop -m immediate), connections (a runaway pool takes every
// connection slot), locks (a batch job's EXCLUSIVE locks, held longer each time). A two-writer
// checker samples both instances every 100 ms throughout. Ends with the default demo's JSON summary
// plus the PostgreSQL fields.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { createOrdersSchema, OrdersApi } from "../sample/orders.js";
import { LoadGenerator } from "./load.js";
import { OrdersWorkload } from "./orders-load.js";
import { HOST_DISK_FAULTS, makeFault, ZONED_FAULTS, type PostgresFaultName } from "./pg-faults.js";
import { PatroniRule, reactiveStaticResources } from "./pg-reactive.js";
import { startPair, type PgNode, type PgPair } from "./pg-pair.js";
import { TwoWriterChecker } from "./two-writer.js";
import { COMPONENT, DEMO_TRAFFIC_SIGNALS, demoComponentHead, demoControllerHead, type DemoSummary, type Progress } from "./run.js";
import type { Side } from "../../controller/xds/resources.js";

export { HOST_DISK_FAULTS, makeFault, POSTGRES_FAULTS, ZONED_FAULTS, type PgFault, type PostgresFaultName } from "./pg-faults.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The reactive baseline's lease and skew: the demo policy's promotion.lease (policy.yaml) and the controller's 0.5 s skew. */
const REACTIVE_LEASE_MS = 10_000, REACTIVE_SKEW_MS = 500;

export interface PostgresDemoOptions {
  log: Logger;
  /** Run this long (default 100 s). */
  durationS?: number;
  /** The primary's disk (tmpfs) in MiB (default 128). */
  diskMb?: number;
  /** The fault played on the primary (default disk-fill), and when it starts. */
  fault?: PostgresFaultName;
  fillStartS?: number;
  /** disk-fill: MiB of rows a second (WAL comes on top). */
  fillMbPerS?: number;
  rateRps?: number;
  seed?: number;
  /**
   * "none": no controller and no data plane; the load goes straight to the primary's API.
   * "reactive": what a team without shadowmesh runs (pg-reactive.ts): Envoy's outlier detection with
   * locality failover in the embedded data plane (static resources, no controller) and Patroni's
   * lease rule for the database, with a lease agent beside each instance.
   */
  protection?: Protection;
  /** Each instance in its own network namespace with a lease agent beside it (default: on for partition and hang). */
  zones?: boolean;
  /** partition, hang: how long until the link comes back / the processes resume (default 20 s). */
  healAfterS?: number;
  /** cpu, io: seconds between one more stress-ng hog and the next, up to 8 (default 4). */
  rampS?: number;
  /** Ask for the way back (the rollback command: a restore once migrated) at this time, as an operator would. */
  restoreAtS?: number;
  onProgress?: (p: Progress) => void;
  onReady?: (r: { dashboard: string; listener: string }) => void;
}

export interface PostgresDemoSummary extends DemoSummary {
  component: "postgres";
  fault: PostgresFaultName;
  /** disk-fill: when the primary's disk could take no more (the archive job's first ENOSPC), null if it never filled. */
  disk_full_at_s: number | null;
  /** When the fault's own writes were refused as read-only (the fence), null if never. */
  fenced_at_s: number | null;
  disk_used_at_move: number | null;
  two_writer_samples: number;
  two_writer_overlaps: number;
  protection: Protection;
  /** The longest gap between acknowledged writes from the fault's start to the end (ms). */
  write_gap_max_ms: number | null;
  /** The replica's lag when the writer was fenced (the driver's reading), null without a fence. */
  lag_bytes_at_fence: number | null;
  lag_s_at_fence: number | null;
  /** The side that should hold the writes could not be read at the end (down): lost_writes then counts every acknowledged order as not shown to be there. */
  writer_unreadable: boolean;
  /** With zones: when the primary's lease agent fenced it (its lease ran out), and when it had to kill it (it did not answer); null: never. */
  agent_fenced_at_s: number | null;
  agent_killed_at_s: number | null;
  /** With restoreAtS: when the writes were back on the primary (Restoring -> Healthy), null if not. */
  restored_at_s: number | null;
}

/** The controller configuration for the pair: the PostgreSQL driver measures both sides and carries out the actions. */
export function postgresControllerYaml(a: { pair: PgPair; primaryApi: string; shadowApi: string; wasm: string; token: string; agents?: { primary: string; shadow: string; tokenEnv: string } }): string {
  const p = a.pair;
  const extra = (n: "primary" | "standby", side: Side) => `${p[n].netns ? `, netns: ${p[n].netns}` : ""}${a.agents ? `, leaseAgent: { url: "${a.agents[side]}", tokenEnv: ${a.agents.tokenEnv} }` : ""}`;
  return `${demoControllerHead(a.wasm, a.token)}
${demoComponentHead(a.primaryApi, a.shadowApi)}
    driver:
      postgres:
        primary: { url: "${p.primary.conninfo()}", dataDir: ${p.primary.dataDir}${extra("primary", "primary")} }
        shadow: { url: "${p.standby.conninfo()}", dataDir: ${p.standby.dataDir}${extra("standby", "shadow")} }
        intervalS: 0.5
    signals:
${DEMO_TRAFFIC_SIGNALS}
      # Read from PostgreSQL and /proc by the driver: the disk against its size, connections against
      # max_connections, the instance's CPU share of the machine.
      - { name: pg_disk_used_ratio, kind: disk_io, capacity: 1, exhaustion: up }
      - { name: pg_connections_ratio, kind: queue_depth, capacity: 1, exhaustion: up }
      - { name: process_cpu_ratio, kind: cpu, capacity: 1 }
`;
}

/**
 * Starts one of the world's processes beside an instance (world/sample/*-main.ts) in the node's zone
 * (ip netns exec) or on the host without zones, listening on the zone's address; resolves where it
 * listens once it prints "listening on ADDR:PORT".
 */
async function startBeside(n: PgNode, what: string, script: string, args: string[], env: Record<string, string>, into: ChildProcess[]): Promise<{ address: string; port: number }> {
  const argv = [process.execPath, "--import", "tsx", path.join(here, "..", "sample", script), ...args, "--host", n.host, "--port", "0"];
  const child = spawn(n.netns ? "ip" : argv[0]!, n.netns ? ["netns", "exec", n.netns, ...argv] : argv.slice(1), { cwd: path.join(here, "..", ".."), env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  into.push(child);
  return await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the ${what} for the ${n.name} did not start in 15 s`)), 15_000);
    child.stdout!.on("data", (d: Buffer) => { out += d.toString(); const m = /listening on ([\d.]+):(\d+)/.exec(out); if (m) { clearTimeout(timer); resolve({ address: m[1]!, port: Number(m[2]) }); } });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the ${what} for the ${n.name} exited ${code}`)); });
  });
}

/** The lease agent (world/sample/pg-lease-agent-main.ts) beside the instance; resolves its URL. */
async function startAgent(n: PgNode, token: string, into: ChildProcess[]): Promise<string> {
  const a = await startBeside(n, "lease agent", "pg-lease-agent-main.ts", ["--pg", n.conninfo(), "--data-dir", n.dataDir], { SHADOWMESH_LEASE_TOKEN: token }, into);
  return `http://${a.address}:${a.port}`;
}

export type Protection = "shadowmesh" | "reactive" | "none";

export async function runPostgresDemo(o: PostgresDemoOptions): Promise<PostgresDemoSummary> {
  const durationS = o.durationS ?? 100, fillStartS = o.fillStartS ?? 15;
  const faultName = o.fault ?? "disk-fill";
  const zones = o.zones ?? ZONED_FAULTS.has(faultName);
  const protection: Protection = o.protection ?? "shadowmesh";
  // The primary's disk: a small tmpfs that can fill up; for a fault on the host's disk, the host's disk (and the standby a device of its own).
  const disk = HOST_DISK_FAULTS.has(faultName) ? { standbyDiskMb: 512 } : { primaryDiskMb: o.diskMb ?? 128 };
  const pair = await startPair({ name: "orders", ...disk, walSegmentMb: 1, walKeepMb: 16, zones });
  const children: ChildProcess[] = []; // the lease agents and, with zones, the orders APIs
  const dir = mkdtempSync(path.join(os.tmpdir(), "shadowmesh-pg-demo-"));
  let controller: RunningController | undefined, dataplane: EmbeddedDataPlane | undefined, load: LoadGenerator | undefined, ha: PatroniRule | undefined;
  // The orders API beside each instance: in its zone (a process in the namespace) with zones, else in this process.
  const apis = zones ? [] : [new OrdersApi({ url: pair.primary.conninfo(), name: "zone-a" }), new OrdersApi({ url: pair.standby.conninfo(), name: "zone-b" })];
  const checker = new TwoWriterChecker([pair.primary, pair.standby], { intervalMs: 100 });
  const filler = makeFault(faultName, pair, { ...(o.fillMbPerS !== undefined ? { fillMbPerS: o.fillMbPerS } : {}), ...(o.healAfterS !== undefined ? { healAfterS: o.healAfterS } : {}), ...(o.rampS !== undefined ? { rampS: o.rampS } : {}) });
  const timers: NodeJS.Timeout[] = [];
  try {
    await createOrdersSchema(pair.primary.conninfo());
    const [pa, sa] = zones
      ? [await startBeside(pair.primary, "orders API", "orders-main.ts", ["--pg", pair.primary.conninfo(), "--name", "zone-a"], {}, children), await startBeside(pair.standby, "orders API", "orders-main.ts", ["--pg", pair.standby.conninfo(), "--name", "zone-b"], {}, children)]
      : [{ address: "127.0.0.1", port: await apis[0]!.start() }, { address: "127.0.0.1", port: await apis[1]!.start() }];
    const hostPort = (a: { address: string; port: number }) => `${a.address}:${a.port}`;
    const token = randomBytes(16).toString("hex"), leaseToken = randomBytes(16).toString("hex");
    // The lease agents, with either protection: a writer cut off, hung or starved must stop writing by itself when its lease runs out (without one, the controller never promotes past a primary it cannot fence).
    const agentUrls = protection !== "none" ? { primary: await startAgent(pair.primary, leaseToken, children), shadow: await startAgent(pair.standby, leaseToken, children), tokenEnv: "SHADOWMESH_DEMO_LEASE_TOKEN" } : undefined;
    const configFile = path.join(dir, "controller.yaml");
    writeFileSync(configFile, postgresControllerYaml({ pair, primaryApi: hostPort(pa), shadowApi: hostPort(sa), wasm: path.join(here, "..", "..", "build", "shadowmesh.wasm"), token, ...(agentUrls ? { agents: agentUrls } : {}) }));
    const protect = protection === "shadowmesh";
    let listener = hostPort(pa);
    const events: DemoSummary["events"] = [];
    const t0Ref = { ms: 0 };
    if (protection === "reactive") {
      dataplane = new EmbeddedDataPlane({ staticResources: reactiveStaticResources({ primary: pa, shadow: sa }), node: { id: "reactive-sidecar", cluster: "demo", zone: "zone-a" }, log: o.log });
      dataplane.start();
      listener = `127.0.0.1:${await dataplane.listenerPort("orders-ingress", 15_000)}`;
      ha = new PatroniRule({
        urls: { primary: pair.primary.conninfo(), shadow: pair.standby.conninfo() }, agents: { urls: { primary: agentUrls!.primary, shadow: agentUrls!.shadow }, token: leaseToken },
        leaseMs: REACTIVE_LEASE_MS, skewMs: REACTIVE_SKEW_MS,
        decided: (atMs, what) => events.push({ t: Math.round(((atMs - t0Ref.ms) / 1000) * 10) / 10, kind: "reactive", message: what }),
      });
      await ha.start();
    }
    if (protect) {
      controller = await startController(parseConfig(readFileSync(configFile, "utf8"), configFile, { ...process.env, SHADOWMESH_DEMO_LEASE_TOKEN: leaseToken }), { log: o.log });
      dataplane = new EmbeddedDataPlane({ xds: `127.0.0.1:${controller.ports.xds}`, node: { id: "demo-sidecar", cluster: "demo", zone: "zone-a" }, log: o.log });
      dataplane.start();
      listener = `127.0.0.1:${await dataplane.listenerPort("shadowmesh-ingress", 15_000)}`;
      o.onReady?.({ dashboard: `http://127.0.0.1:${controller.ports.http}/`, listener });
    }

    const t0 = Date.now();
    t0Ref.ms = t0;
    const elapsedS = () => (Date.now() - t0) / 1000;
    const at = (ms: number | null) => (ms === null ? null : Math.round(((ms - t0) / 1000) * 10) / 10);
    const used = () => { try { const f = statfsSync(pair.primary.dataDir); return 1 - f.bavail / f.blocks; } catch { return NaN; } };
    let shiftStartedS: number | null = null, migratedAtS: number | null = null, usedAtMove: number | null = null;
    let lagAtFence: { bytes: number | null; seconds: number | null } | null = null;
    let restoredAtS: number | null = null;
    const ctl = controller;
    ctl?.manager.on("event", (e: { kind: string; message: string; phase: string }) => {
      const t = Math.round(elapsedS() * 10) / 10;
      events.push({ t, kind: e.kind, message: e.message });
      if (shiftStartedS === null && e.phase === "Shifting") shiftStartedS = t;
      if (migratedAtS === null && e.phase === "Migrated") { migratedAtS = t; usedAtMove = Math.round(used() * 1000) / 1000; }
      if (restoredAtS === null && /-> Healthy: the primary is restored/.test(e.message)) restoredAtS = t;
      if (lagAtFence === null && /^fence primary: done/.test(e.message)) { const l = ctl.drivers.status()[0]?.lag; lagAtFence = { bytes: l?.bytes ?? null, seconds: l?.seconds ?? null }; }
    });
    checker.start();
    load = new LoadGenerator({ target: listener, host: "orders.svc", rateRps: o.rateRps ?? 100, readShare: 0.8, keys: 1000, seed: o.seed ?? 1, workload: new OrdersWorkload() });
    load.start();
    timers.push(setTimeout(() => filler.start(), fillStartS * 1000));
    // The operator asks for the way back from restoreAtS, once a second until the controller accepts
    // (it refuses while the old primary is not yet a caught-up replica).
    let refusal = "";
    const restore = () => {
      const r = ctl!.manager.command(COMPONENT, { kind: "rollback", by: "demo", reason: "the primary is back as a replica: restore" });
      if (!r.accepted && r.reason !== refusal) { refusal = r.reason; events.push({ t: Math.round(elapsedS() * 10) / 10, kind: "command", message: `rollback (restore) refused: ${r.reason}` }); }
      if (r.accepted) events.push({ t: Math.round(elapsedS() * 10) / 10, kind: "command", message: "rollback (restore): accepted" });
      else timers.push(setTimeout(restore, 1000));
    };
    if (o.restoreAtS !== undefined && ctl) timers.push(setTimeout(restore, o.restoreAtS * 1000));
    const l = load;
    timers.push(setInterval(() => {
      const st = ctl?.manager.get(COMPONENT).status, r = ctl?.engine.riskOf(COMPONENT), tot = l.totals();
      o.onProgress?.({ t: elapsedS(), risk: r && !r.noData ? r.risk : null, phase: st?.phase ?? "unprotected", step: st?.stepIndex ?? -1, shadowPercent: (st?.shadowWeightBp ?? 0) / 100, writeTarget: st?.writeTarget ?? "primary", lagS: ctl?.engine.freshValue(COMPONENT, "replication_lag") ?? NaN, rps: l.recentRps(), failed: tot.failed, requests: tot.requests, primaryDown: filler.failedAtMs !== null });
    }, 1000));
    await new Promise((r) => timers.push(setTimeout(r, durationS * 1000)));
    for (const t of timers) clearTimeout(t);
    await load.stop();
    await filler.stop();
    await ha?.stop();
    const two = await checker.stop();

    // Every acknowledged order must be in the database that takes writes now.
    const st = ctl ? ctl.manager.get(COMPONENT).status
      : ha ? { writeTarget: ha.writer, shadowWeightBp: ha.writer === "shadow" ? 10_000 : 0, phase: ha.writer === "shadow" ? "failed over (reactive)" : "reactive" }
      : { writeTarget: "primary" as const, shadowWeightBp: 0, phase: "unprotected" };
    if (ha?.promotedAtMs) migratedAtS = at(ha.promotedAtMs);
    const writer = st.writeTarget === "shadow" ? pair.standby : pair.primary;
    let lost = 0, unreadable = false;
    try {
      const ids = new Set((await writer.query("SELECT id FROM orders")).rows.map((x: { id: string }) => String(x.id)));
      for (const id of load.acknowledged().keys()) if (!ids.has(id)) lost++;
    } catch (e) {
      // The side that should take writes cannot be read: none of the acknowledged orders can be shown to be there.
      lost = load.acknowledged().size;
      unreadable = true;
      events.push({ t: Math.round(elapsedS() * 10) / 10, kind: "check", message: `the ${st.writeTarget} cannot be read to check the acknowledged orders: ${(e as Error).message}` });
    }
    const totals = load.totals();
    let agentStatus: { fencedAtMs: number | null; killedAtMs: number | null } | null = null;
    if (agentUrls) agentStatus = await fetch(`${agentUrls.primary}/status`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<{ fencedAtMs: number | null; killedAtMs: number | null }>).catch(() => null);
    const faultAt = t0 + fillStartS * 1000, endAt = t0 + durationS * 1000;
    let gap: number | null = null, prevAck = faultAt;
    for (const a of [...load.writeAckTimes().filter((x) => x >= faultAt), endAt]) { gap = Math.max(gap ?? 0, a - prevAck); prevAck = a; }
    const lagFence = lagAtFence as { bytes: number | null; seconds: number | null } | null;
    return {
      scenario: `postgres-${faultName}`, component: "postgres", fault: faultName, duration_s: durationS,
      migrated: st.writeTarget === "shadow" && st.shadowWeightBp === 10_000,
      migrated_at_s: migratedAtS, shift_started_s: shiftStartedS, failed_at_s: at(filler.failedAtMs),
      requests: totals.requests, failed_requests: totals.failed, failed_ratio: totals.requests ? totals.failed / totals.requests : 0,
      reads: totals.reads, writes: totals.writes, acknowledged_writes: load.acknowledged().size, lost_writes: lost,
      final_phase: st.phase, shadow_weight_percent: st.shadowWeightBp / 100, write_target: st.writeTarget, events,
      disk_full_at_s: faultName === "disk-fill" ? at(filler.failedAtMs) : null, fenced_at_s: at(filler.refusedAtMs), disk_used_at_move: usedAtMove,
      two_writer_samples: two.samples, two_writer_overlaps: two.overlaps.length,
      protection, write_gap_max_ms: gap === null ? null : Math.round(gap),
      lag_bytes_at_fence: lagFence?.bytes ?? null, lag_s_at_fence: lagFence?.seconds ?? null, writer_unreadable: unreadable,
      agent_fenced_at_s: at(agentStatus?.fencedAtMs ?? null), agent_killed_at_s: at(agentStatus?.killedAtMs ?? null), restored_at_s: restoredAtS,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    await load?.stop();
    await filler.stop();
    await ha?.stop();
    await checker.stop().catch(() => undefined);
    await dataplane?.close();
    await controller?.stop();
    for (const a of apis) await a.stop();
    // Each child stops on SIGTERM; wait (up to 3 s) so none outlives its zone.
    await Promise.all(children.map((c) => new Promise<void>((r) => {
      if (c.exitCode !== null || c.signalCode !== null) return r();
      const t = setTimeout(() => { c.kill("SIGKILL"); r(); }, 3000);
      c.once("exit", () => { clearTimeout(t); r(); });
      c.kill("SIGTERM");
    })));
    await pair.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
