// The real faults of the PostgreSQL demo and benchmark, played on the primary of a pair
// (pg-pair.ts): disk-fill (a growing archive table and its WAL fill the primary's small tmpfs),
// crash (pg_ctl stop -m immediate), connections (a runaway pool takes every slot), locks (a batch
// job's EXCLUSIVE locks, held longer each time), partition (the primary's zone link down), hang
// (SIGSTOP of the postmaster and its children), cpu (stress-ng hogs on the primary's core), io
// (stress-ng synchronous writers on the primary's disk). Each
// records when the primary stopped doing its job and when the fence stopped the fault's own writes.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { childrenOf } from "../../controller/drivers/proc.js";
import type { PgPair } from "./pg-pair.js";
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

export type PostgresFaultName = "disk-fill" | "crash" | "connections" | "locks" | "partition" | "hang" | "cpu" | "io";
export const POSTGRES_FAULTS: readonly PostgresFaultName[] = ["disk-fill", "crash", "connections", "locks", "partition", "hang", "cpu", "io"];
/** Faults on the primary's disk: its data directory stays on the host's disk and the standby gets a device of its own. */
export const HOST_DISK_FAULTS: ReadonlySet<PostgresFaultName> = new Set(["io"]);
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
      const open = async () => {
        const client = new pg.Client({ connectionString: this.url, application_name: "archive-job" });
        client.on("error", () => undefined);
        await client.connect();
        return client;
      };
      let c = await open();
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
          // The fence ends open write sessions (57P01), or the connection broke: a real job reconnects and
          // tries again (its next insert meets the read-only fence). Before, it kept writing to a dead
          // connection and never saw the refusal (a fresh-clone run: "refused by the fence at null").
          if (code === "57P01" || code === undefined || code.startsWith("08")) {
            await c.end().catch(() => undefined);
            await sleep(100);
            try { c = await open(); } catch { /* the primary may be down: the next round tries again */ }
          }
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

/** Starts one more stress-ng hog every rampS seconds (4 by default), up to 8 (then the primary counts as failed); stop() ends them all. */
abstract class Hogs extends Fault {
  private readonly hogs: ChildProcess[] = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly rampS: number) { super(); }
  protected abstract hogArgs(): string[];
  protected startHogs(): void {
    const add = () => {
      if (this.hogs.length >= 8) { this.failedAtMs ??= Date.now(); return; }
      this.hogs.push(spawn("stress-ng", [...this.hogArgs(), "--timeout", "600s", "--quiet"], { stdio: "ignore" }));
      this.timer = setTimeout(add, this.rampS * 1000);
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

/**
 * cpu: CPU starvation. The primary's postmaster and children are pinned to CPU 0 (taskset; new
 * backends inherit it) and stress-ng (Debian) starts one more CPU hog pinned there every 4 s, up to 8,
 * so the primary's share of its core shrinks from all of it to a ninth.
 */
class CpuStarve extends Hogs {
  readonly name = "cpu";
  constructor(private readonly pair: PgPair, rampS: number) { super(rampS); }
  protected hogArgs(): string[] { return ["--cpu", "1", "--taskset", "0"]; }
  start(): void {
    const pid = this.pair.primary.postmasterPid();
    if (pid === null) return;
    for (const p of [pid, ...childrenOf(pid)]) spawnSync("taskset", ["-a", "-p", "0x1", String(p)], { stdio: "ignore" });
    this.startHogs();
  }
}

/**
 * io: I/O starvation of the primary's disk. The primary's data directory is on the host's disk (the
 * standby on a device of its own, as in another zone: runPostgresDemo gives it a tmpfs), and
 * stress-ng (Debian) starts one more writer on that disk every 4 s, up to 8, each writing a 1 GiB file
 * through the page cache, as a backup or a log shipper beside the database would, all on CPU 0: the
 * primary's WAL fsyncs wait for the journal to write out the writers' dirty data (ext4's ordered mode).
 * Measured on this machine's virtio disk: an 8 KiB write + fsync took 0.9 ms p50 alone, 13 ms p50 and
 * 976 ms p99 beside 8 unpinned writers (which also starve both cores, so the shadow and the clients
 * fail with the primary: no fault of the primary alone); pinned to one core, as here, the primary
 * keeps up with the demo's 100 rps and nothing fails.
 */
class IoStarve extends Hogs {
  readonly name = "io";
  private readonly dir: string;
  constructor(pair: PgPair, rampS: number) {
    super(rampS);
    this.dir = path.join(path.dirname(pair.primary.dataDir), "io-hogs");
  }
  protected hogArgs(): string[] { return ["--hdd", "1", "--hdd-bytes", "1g", "--temp-path", this.dir, "--taskset", "0"]; }
  start(): void { mkdirSync(this.dir, { recursive: true }); this.startHogs(); }
  override async stop(): Promise<void> { await super.stop(); rmSync(this.dir, { recursive: true, force: true }); }
}

export function makeFault(name: PostgresFaultName, pair: PgPair, o: { fillMbPerS?: number; healAfterS?: number; rampS?: number } = {}): PgFault {
  if (o.rampS !== undefined && !(o.rampS > 0)) throw new RangeError(`rampS must be a positive number of seconds, got ${o.rampS}`);
  switch (name) {
    case "partition": return new Partition(pair, o.healAfterS ?? 20);
    case "hang": return new Hang(pair, o.healAfterS ?? 20);
    case "cpu":
      if (spawnSync("sh", ["-c", "command -v stress-ng && command -v taskset"], { stdio: "ignore" }).status !== 0) throw new Error("the cpu fault needs stress-ng and taskset (apt-get install -y stress-ng util-linux)");
      return new CpuStarve(pair, o.rampS ?? 4);
    case "io":
      if (spawnSync("sh", ["-c", "command -v stress-ng"], { stdio: "ignore" }).status !== 0) throw new Error("the io fault needs stress-ng (apt-get install -y stress-ng)");
      return new IoStarve(pair, o.rampS ?? 4);
    case "disk-fill": return new DiskFill(pair.primary.conninfo(), o.fillMbPerS ?? 1);
    case "crash": return new Crash(pair);
    case "connections": return new Connections(pair.primary.conninfo());
    case "locks": return new Locks(pair.primary.conninfo());
  }
}
