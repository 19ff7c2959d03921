// The demo on real PostgreSQL (`npm start -- --component postgres`): a primary and a hot standby
// (demo/pg-pair.ts), the orders API in front of each (sample/orders.ts), the controller with the
// PostgreSQL driver (health, real signals, fence/drain/promote/rejoin), the embedded data plane with
// the real filter, the orders load, and a real fault on the primary (the primary's data directory
// sits on a small tmpfs): disk-fill (a growing archive table and its WAL fill it until PostgreSQL can
// no longer write), crash (pg_ctl stop -m immediate), connections (a runaway pool takes every
// connection slot), locks (a batch job's EXCLUSIVE locks, held longer each time). A two-writer
// checker samples both instances every 100 ms throughout. Ends with the default demo's JSON summary
// plus the PostgreSQL fields.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import pg from "pg";
import { parseConfig } from "../controller/config.js";
import { childrenOf } from "../controller/drivers/proc.js";
import { startController, type RunningController } from "../controller/main.js";
import { EmbeddedDataPlane } from "../dataplane/dataplane.js";
import { createOrdersSchema, OrdersApi } from "../sample/orders.js";
import { LoadGenerator } from "./load.js";
import { OrdersWorkload } from "./orders-load.js";
import { startPair, TwoWriterChecker, type PgNode, type PgPair } from "./pg-pair.js";
import { COMPONENT, demoControllerHead, type DemoSummary, type Progress } from "./run.js";

const here = path.dirname(fileURLToPath(import.meta.url));

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
  /** "none": no controller and no data plane; the load goes straight to the primary's API (the benchmark's baseline). */
  protection?: "shadowmesh" | "none";
  /** Each instance in its own network namespace with a lease agent beside it (default: on for partition and hang). */
  zones?: boolean;
  /** partition, hang: how long until the link comes back / the processes resume (default 20 s). */
  healAfterS?: number;
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
  protection: "shadowmesh" | "none";
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
  const extra = (n: "primary" | "standby", side: "primary" | "shadow") => `${p[n].netns ? `, netns: ${p[n].netns}` : ""}${a.agents ? `, leaseAgent: { url: "${a.agents[side]}", tokenEnv: ${a.agents.tokenEnv} }` : ""}`;
  return `${demoControllerHead(a.wasm, a.token)}
components:
  - name: ${COMPONENT}
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: zone-a, endpoints: ["${a.primaryApi}"] }
    shadow: { name: orders-shadow, zone: zone-b, endpoints: ["${a.shadowApi}"] }
    filter: { sticky: { header: x-user } }
    driver:
      postgres:
        primary: { url: "${p.primary.conninfo()}", dataDir: ${p.primary.dataDir}${extra("primary", "primary")} }
        shadow: { url: "${p.standby.conninfo()}", dataDir: ${p.standby.dataDir}${extra("standby", "shadow")} }
        intervalS: 0.5
    signals:
      - { name: request_latency_p99_ms, kind: latency, capacity: 2000, slo: { target: 0.99, threshold: 100, periodS: 64800 } }
      - { name: request_error_rate, kind: error_rate, slo: { target: 0.999, periodS: 64800 } }
      - { name: mirror_divergence, kind: consistency }
      - { name: replication_lag_s, kind: replication_lag }
      # Read from PostgreSQL and /proc by the driver: the disk against its size, connections against
      # max_connections, the instance's CPU share of the machine.
      - { name: pg_disk_used_ratio, kind: disk_io, capacity: 1, exhaustion: up }
      - { name: pg_connections_ratio, kind: queue_depth, capacity: 1, exhaustion: up }
      - { name: process_cpu_ratio, kind: cpu, capacity: 1 }
`;
}

/** A fault played on the primary: started at fillStartS; when it made the primary fail, and when the fence stopped it. */
export interface PgFault {
  readonly name: PostgresFaultName;
  start(): void;
  stop(): Promise<void>;
  /** When the primary stopped doing its job because of the fault (null: not yet). */
  failedAtMs: number | null;
  /** When the fault's own writes were refused as read-only (the fence), null if never. */
  refusedAtMs: number | null;
}

export type PostgresFaultName = "disk-fill" | "crash" | "connections" | "locks" | "partition" | "hang" | "cpu";
export const POSTGRES_FAULTS: readonly PostgresFaultName[] = ["disk-fill", "crash", "connections", "locks", "partition", "hang", "cpu"];
/** Faults that need each instance in its own zone with a lease agent (runPostgresDemo turns zones on for them). */
export const ZONED_FAULTS: ReadonlySet<PostgresFaultName> = new Set(["partition", "hang"]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What every fault records; a looping fault's job runs until stop() (its loop checks `running`). */
abstract class Fault implements PgFault {
  abstract readonly name: PostgresFaultName;
  failedAtMs: number | null = null;
  refusedAtMs: number | null = null;
  abstract start(): void;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  protected get running(): boolean { return !this.stopped; }
  protected loop(job: () => Promise<void>): void { this.done = job().catch(() => undefined); }
  async stop(): Promise<void> { this.stopped = true; await this.done; }
}

/** disk-fill: an archive job appends ~mbPerS MiB of rows a second to the primary until refused (the fence) or out of space. */
class DiskFill extends Fault {
  readonly name = "disk-fill";
  constructor(private readonly url: string, private readonly mbPerS: number) { super(); }
  start(): void {
    this.loop(async () => {
      const c = new pg.Client({ connectionString: this.url, application_name: "archive-job" });
      c.on("error", () => undefined);
      await c.connect();
      await c.query("CREATE TABLE IF NOT EXISTS events_archive (id bigserial PRIMARY KEY, payload text NOT NULL)");
      const rowsPerTick = Math.max(1, Math.round((this.mbPerS * 1024) / 10)); // 1 KiB rows, 10 ticks a second
      while (this.running) {
        const t = Date.now();
        try {
          await c.query("INSERT INTO events_archive (payload) SELECT repeat(md5(random()::text), 32) FROM generate_series(1, $1)", [rowsPerTick]);
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === "25006") { this.refusedAtMs ??= Date.now(); break; }
          if (code === "53100" || /No space left/.test((e as Error).message)) { this.failedAtMs ??= Date.now(); break; }
        }
        await sleep(Math.max(0, 100 - (Date.now() - t)));
      }
      await c.end().catch(() => undefined);
    });
  }
}

/** crash: the primary stops at once (pg_ctl stop -m immediate), no warning. */
class Crash extends Fault {
  readonly name = "crash";
  constructor(private readonly pair: PgPair) { super(); }
  start(): void { this.failedAtMs = Date.now(); void this.pair.primary.pgCtl(["stop", "-m", "immediate", "-w", "-t", "30"]); }
}

/** connections: a runaway client opens one more idle session every 0.5 s until max_connections is reached. */
class Connections extends Fault {
  readonly name = "connections";
  private readonly clients: pg.Client[] = [];
  constructor(private readonly url: string) { super(); }
  start(): void {
    this.loop(async () => {
      while (this.running) {
        const c = new pg.Client({ connectionString: this.url, application_name: "runaway-pool", connectionTimeoutMillis: 2000 });
        c.on("error", () => undefined);
        try { await c.connect(); this.clients.push(c); }
        catch (e) { if (/too many clients|remaining connection slots/.test((e as Error).message)) this.failedAtMs ??= Date.now(); }
        await sleep(500);
      }
    });
  }
  override async stop(): Promise<void> { await super.stop(); await Promise.all(this.clients.map((c) => c.end().catch(() => undefined))); }
}

/** locks: a batch job holds an EXCLUSIVE lock on orders (reads go on, writes queue) in transactions that grow longer. */
class Locks extends Fault {
  readonly name = "locks";
  constructor(private readonly url: string) { super(); }
  start(): void {
    this.loop(async () => {
      const c = new pg.Client({ connectionString: this.url, application_name: "batch-job" });
      c.on("error", () => undefined);
      await c.connect();
      for (let holdMs = 200; this.running; holdMs = Math.min(30_000, holdMs * 1.5)) {
        try {
          await c.query("BEGIN");
          await c.query("LOCK TABLE orders IN EXCLUSIVE MODE");
          if (holdMs >= 2000) this.failedAtMs ??= Date.now(); // longer than the clients' timeout: writes fail
          await sleep(holdMs);
          await c.query("COMMIT");
        } catch { break; } // the fence ended the session
        await sleep(500);
      }
      await c.end().catch(() => undefined);
    });
  }
}

/** partition: the primary's zone link goes down (nothing reaches it, it reaches nothing) and comes back after healAfterS. */
class Partition extends Fault {
  readonly name = "partition";
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly pair: PgPair, private readonly healAfterS: number) { super(); }
  start(): void { this.pair.partition("primary"); this.failedAtMs = Date.now(); this.timer = setTimeout(() => this.pair.heal("primary"), this.healAfterS * 1000); }
  override async stop(): Promise<void> { if (this.timer) clearTimeout(this.timer); try { this.pair.heal("primary"); } catch { /* already up */ } }
}

/** hang: the primary's postmaster and every child stopped (SIGSTOP), resumed (SIGCONT) after healAfterS if still there. */
class Hang extends Fault {
  readonly name = "hang";
  private timer: NodeJS.Timeout | null = null;
  private pids: number[] = [];
  constructor(private readonly pair: PgPair, private readonly healAfterS: number) { super(); }
  private signal(sig: NodeJS.Signals): void { for (const p of this.pids) { try { process.kill(p, sig); } catch { /* gone (killed by the lease agent) */ } } }
  start(): void {
    const pid = this.pair.primary.postmasterPid();
    if (pid === null) return;
    this.pids = [pid, ...childrenOf(pid)];
    this.signal("SIGSTOP");
    this.failedAtMs = Date.now();
    this.timer = setTimeout(() => this.signal("SIGCONT"), this.healAfterS * 1000);
  }
  override async stop(): Promise<void> { if (this.timer) clearTimeout(this.timer); this.signal("SIGCONT"); }
}

/**
 * cpu: CPU starvation. The primary's postmaster and children are pinned to CPU 0 (taskset; new
 * backends inherit it) and stress-ng (Debian) starts one more CPU hog pinned there every 4 s, up to 8,
 * so the primary's share of its core shrinks from all of it to a ninth.
 */
class CpuStarve extends Fault {
  readonly name = "cpu";
  private readonly hogs: ChildProcess[] = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly pair: PgPair) { super(); }
  start(): void {
    const pid = this.pair.primary.postmasterPid();
    if (pid === null) return;
    for (const p of [pid, ...childrenOf(pid)]) spawnSync("taskset", ["-a", "-p", "0x1", String(p)], { stdio: "ignore" });
    const add = () => {
      if (this.hogs.length >= 8) { this.failedAtMs ??= Date.now(); return; }
      this.hogs.push(spawn("stress-ng", ["--cpu", "1", "--taskset", "0", "--timeout", "600s", "--quiet"], { stdio: "ignore" }));
      this.timer = setTimeout(add, 4000);
    };
    add();
  }
  override async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    // stress-ng stops its workers on SIGTERM; its own children are stopped too in case it is already gone.
    for (const h of this.hogs) { if (h.pid) spawnSync("pkill", ["-TERM", "-P", String(h.pid)], { stdio: "ignore" }); h.kill("SIGTERM"); }
    await sleep(300);
    for (const h of this.hogs) { if (h.pid) spawnSync("pkill", ["-KILL", "-P", String(h.pid)], { stdio: "ignore" }); h.kill("SIGKILL"); }
  }
}


export function makeFault(name: PostgresFaultName, pair: PgPair, o: { fillMbPerS?: number; healAfterS?: number } = {}): PgFault {
  switch (name) {
    case "partition": return new Partition(pair, o.healAfterS ?? 20);
    case "hang": return new Hang(pair, o.healAfterS ?? 20);
    case "cpu":
      if (spawnSync("sh", ["-c", "command -v stress-ng && command -v taskset"], { stdio: "ignore" }).status !== 0) throw new Error("the cpu fault needs stress-ng and taskset (apt-get install -y stress-ng util-linux)");
      return new CpuStarve(pair);
    case "disk-fill": return new DiskFill(pair.primary.conninfo(), o.fillMbPerS ?? 1);
    case "crash": return new Crash(pair);
    case "connections": return new Connections(pair.primary.conninfo());
    case "locks": return new Locks(pair.primary.conninfo());
  }
}

/** Starts a lease agent (sample/pg-lease-agent-main.ts) in the node's zone, listening on the zone's address; resolves its URL. */
async function startAgent(n: PgNode, token: string, into: ChildProcess[]): Promise<string> {
  const main = path.join(here, "..", "sample", "pg-lease-agent-main.ts");
  const argv = [process.execPath, "--import", "tsx", main, "--pg", n.conninfo(), "--host", n.host, "--port", "0", "--data-dir", n.dataDir];
  const child = spawn(n.netns ? "ip" : argv[0]!, n.netns ? ["netns", "exec", n.netns, ...argv] : argv.slice(1), { cwd: path.join(here, ".."), env: { ...process.env, SHADOWMESH_LEASE_TOKEN: token }, stdio: ["ignore", "pipe", "inherit"] });
  into.push(child);
  return await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the lease agent for the ${n.name} did not start in 15 s`)), 15_000);
    child.stdout!.on("data", (d: Buffer) => { out += d.toString(); const m = /listening on ([\d.]+):(\d+)/.exec(out); if (m) { clearTimeout(timer); resolve(`http://${m[1]}:${m[2]}`); } });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the lease agent for the ${n.name} exited ${code}`)); });
  });
}

export async function runPostgresDemo(o: PostgresDemoOptions): Promise<PostgresDemoSummary> {
  const durationS = o.durationS ?? 100, fillStartS = o.fillStartS ?? 15;
  const faultName = o.fault ?? "disk-fill";
  const zones = o.zones ?? ZONED_FAULTS.has(faultName);
  const pair = await startPair({ name: "orders", primaryDiskMb: o.diskMb ?? 128, walSegmentMb: 1, walKeepMb: 16, zones });
  const agents: ChildProcess[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), "shadowmesh-pg-demo-"));
  let controller: RunningController | undefined, dataplane: EmbeddedDataPlane | undefined, load: LoadGenerator | undefined;
  const apis = [new OrdersApi({ url: pair.primary.conninfo(), name: "zone-a" }), new OrdersApi({ url: pair.standby.conninfo(), name: "zone-b" })];
  const checker = new TwoWriterChecker([pair.primary, pair.standby], { intervalMs: 100 });
  const filler = makeFault(faultName, pair, { ...(o.fillMbPerS !== undefined ? { fillMbPerS: o.fillMbPerS } : {}), ...(o.healAfterS !== undefined ? { healAfterS: o.healAfterS } : {}) });
  const timers: NodeJS.Timeout[] = [];
  try {
    await createOrdersSchema(pair.primary.conninfo());
    const [pa, sa] = [await apis[0]!.start(), await apis[1]!.start()];
    const token = randomBytes(16).toString("hex"), leaseToken = randomBytes(16).toString("hex");
    const agentUrls = zones ? { primary: await startAgent(pair.primary, leaseToken, agents), shadow: await startAgent(pair.standby, leaseToken, agents), tokenEnv: "SHADOWMESH_DEMO_LEASE_TOKEN" } : undefined;
    const configFile = path.join(dir, "controller.yaml");
    writeFileSync(configFile, postgresControllerYaml({ pair, primaryApi: `127.0.0.1:${pa}`, shadowApi: `127.0.0.1:${sa}`, wasm: path.join(here, "..", "build", "shadowmesh.wasm"), token, ...(agentUrls ? { agents: agentUrls } : {}) }));
    const protect = (o.protection ?? "shadowmesh") === "shadowmesh";
    let listener = `127.0.0.1:${pa}`;
    if (protect) {
      controller = await startController(parseConfig(readFileSync(configFile, "utf8"), configFile, { ...process.env, SHADOWMESH_DEMO_LEASE_TOKEN: leaseToken }), { log: o.log });
      dataplane = new EmbeddedDataPlane({ xds: `127.0.0.1:${controller.ports.xds}`, node: { id: "demo-sidecar", cluster: "demo", zone: "zone-a" }, log: o.log });
      dataplane.start();
      listener = `127.0.0.1:${await dataplane.listenerPort("shadowmesh-ingress", 15_000)}`;
      o.onReady?.({ dashboard: `http://127.0.0.1:${controller.ports.http}/`, listener });
    }

    const t0 = Date.now();
    const elapsedS = () => (Date.now() - t0) / 1000;
    const at = (ms: number | null) => (ms === null ? null : Math.round(((ms - t0) / 1000) * 10) / 10);
    const used = () => { try { const f = statfsSync(pair.primary.dataDir); return 1 - f.bavail / f.blocks; } catch { return NaN; } };
    const events: DemoSummary["events"] = [];
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
    const two = await checker.stop();

    // Every acknowledged order must be in the database that takes writes now.
    const st = ctl ? ctl.manager.get(COMPONENT).status : { writeTarget: "primary" as const, shadowWeightBp: 0, phase: "unprotected" };
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
      protection: protect ? "shadowmesh" : "none", write_gap_max_ms: gap === null ? null : Math.round(gap),
      lag_bytes_at_fence: lagFence?.bytes ?? null, lag_s_at_fence: lagFence?.seconds ?? null, writer_unreadable: unreadable,
      agent_fenced_at_s: at(agentStatus?.fencedAtMs ?? null), agent_killed_at_s: at(agentStatus?.killedAtMs ?? null), restored_at_s: restoredAtS,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    await load?.stop();
    await filler.stop();
    await checker.stop().catch(() => undefined);
    await dataplane?.close();
    await controller?.stop();
    for (const a of apis) await a.stop();
    for (const a of agents) a.kill("SIGTERM");
    await pair.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
