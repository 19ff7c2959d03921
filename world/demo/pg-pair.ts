// Real PostgreSQL 15 servers for the demo and the tests: pgAvailable() (can this machine run them?), startPair() (a
// primary and a streaming hot standby in a temp folder, on loopback ports of their own, stopped and
// removed by pair.stop()), and TwoWriterChecker, which samples two nodes on an interval and records
// every sample in which both would accept writes (a split brain). The servers run as the `postgres`
// OS user (through `runuser` when we are root); every program is spawned with an argv array.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { postmasterPid } from "../../controller/drivers/postgres.js";
import { childrenOf } from "../../controller/drivers/proc.js";
import { accessSync, appendFileSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";

export const PG_BIN = "/usr/lib/postgresql/15/bin";
const PROGRAMS = ["postgres", "initdb", "pg_ctl", "pg_basebackup"] as const;

export interface PgNode {
  name: "primary" | "standby";
  dataDir: string;
  port: number;
  /** 127.0.0.1, or the zone's address when the pair runs in zones. */
  host: string;
  /** The network namespace the instance runs in (zones), else null. */
  netns: string | null;
  socketDir: string;
  logFile: string;
  /** The database startPair created (the default of conninfo() and query()). */
  database: string;
  /** "postgresql://postgres@127.0.0.1:PORT/DB" (DB defaults to `database`). */
  conninfo(db?: string): string;
  /** One statement on a short-lived client (connect timeout 3 s), in `database`. */
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** `pg_ctl -D dataDir ...args`, as the postgres user. Never throws for a non-zero exit. */
  pgCtl(args: string[]): Promise<RunResult>;
  /** The first line of dataDir/postmaster.pid, or null when there is none. */
  postmasterPid(): number | null;
}

export interface PgPair {
  dir: string;
  database: string;
  primary: PgNode;
  standby: PgNode;
  /** The zones (network namespaces) when started with zones: true, else null. */
  zones: Zones | null;
  /** Sets the zone's link down (zones only): nothing reaches the instance, it reaches nothing. */
  partition(n: "primary" | "standby"): void;
  heal(n: "primary" | "standby"): void;
  /** Stops both servers (immediate) and removes `dir`. Idempotent; never throws. */
  stop(): Promise<void>;
}

export interface RunResult { code: number | null; stdout: string; stderr: string }

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

function runuserPath(): string | null {
  for (const p of ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]) if (existsSync(p)) return p;
  return null;
}

function postgresIds(): { uid: number; gid: number } | null {
  const u = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const g = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  const uid = Number(u.stdout?.trim()), gid = Number(g.stdout?.trim());
  return u.status === 0 && g.status === 0 && Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
}

/** null when real PostgreSQL servers can be started here, else why not (the test prints a SKIPPED line). */
export function pgAvailable(): string | null {
  for (const p of PROGRAMS) {
    if (!existsSync(path.join(PG_BIN, p))) return `no ${path.join(PG_BIN, p)} (as root: apt-get update && apt-get install -y postgresql-15)`;
  }
  if (isRoot()) {
    if (!runuserPath()) return "running as root but there is no `runuser` to start PostgreSQL as the postgres user";
    if (!postgresIds()) return "running as root but there is no `postgres` OS user to run PostgreSQL as";
    return null;
  }
  try {
    for (const p of PROGRAMS) accessSync(path.join(PG_BIN, p), constants.X_OK);
  } catch {
    return `the current user cannot execute the programs in ${PG_BIN}`;
  }
  return null;
}

/** The environment for the PostgreSQL programs: ours without PG* variables (PGPORT, PGDATA, ... would leak in). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  return env;
}

function argvAsPostgres(program: string, args: string[], netns: string | null = null): string[] {
  const bin = path.join(PG_BIN, program);
  if (!isRoot()) return [bin, ...args];
  return [...(netns ? ["ip", "netns", "exec", netns] : []), runuserPath() ?? "runuser", "-u", "postgres", "--", bin, ...args];
}

/** Runs a PostgreSQL program as the postgres user (cwd: a folder that user can enter). */
function runAsPostgres(program: string, args: string[], cwd: string, timeoutMs = 120_000, netns: string | null = null): Promise<RunResult> {
  const [cmd, ...rest] = argvAsPostgres(program, args, netns);
  return new Promise((resolve) => {
    let stdout = "", stderr = "";
    const child = spawn(cmd!, rest, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => { stderr += `\n(killed after ${timeoutMs} ms)`; child.kill("SIGKILL"); }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.on("error", (e) => { clearTimeout(timer); resolve({ code: null, stdout, stderr: stderr + String(e) }); });
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

async function mustRun(program: string, args: string[], cwd: string, netns: string | null = null): Promise<RunResult> {
  const r = await runAsPostgres(program, args, cwd, 120_000, netns);
  if (r.code !== 0) throw new Error(`${program} ${args.join(" ")} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r;
}

const handedOut = new Set<number>();
/** A loopback port nothing listens on now (listen on 0, close); never the same one twice in this process. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.unref();
      s.on("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        const p = typeof a === "object" && a ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) { handedOut.add(port); return port; }
  }
  throw new Error("no free loopback port found");
}

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;


/**
 * Whether pid is a live PostgreSQL process: its comm is "postgres" and it is not a zombie (pg_ctl
 * daemonizes the postmaster, so once it exits it waits as a zombie until PID 1 reaps it, and
 * kill(pid, 0) still succeeds on it). On systems without /proc: merely alive.
 */
function isPostgresProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return comm === "postgres" && state !== "Z" && state !== "X";
  } catch {
    if (existsSync("/proc/self")) return false;
    try { process.kill(pid, 0); return true; } catch { return false; }
  }
}


/** SIGCONT to a postmaster and its children, so one a test froze (SIGSTOP) can act on pg_ctl stop. */
function resume(pid: number): void {
  for (const p of [pid, ...childrenOf(pid)]) if (isPostgresProcess(p)) { try { process.kill(p, "SIGCONT"); } catch { /* gone */ } }
}

/** kill -9 a postmaster that outlived `pg_ctl stop -m immediate`, and its children. */
function killLeftover(pid: number | null): void {
  if (pid === null || !isPostgresProcess(pid)) return;
  for (const c of childrenOf(pid)) if (isPostgresProcess(c)) { try { process.kill(c, "SIGKILL"); } catch { /* gone */ } }
  try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
}

/**
 * Removes the System V shared memory segment a postmaster leaves behind when it dies without shutting
 * down (kill -9, as tests of sudden death do): PostgreSQL keeps a small interlock segment (key from the
 * data directory's inode) that nothing else removes. Only segments nobody is attached to, created by
 * one of `pids` or keyed by one of the data directories' inodes (read before the folder is removed).
 */
function removeOrphanSegments(pids: number[], inodes: number[]): void {
  let text: string;
  try { text = readFileSync("/proc/sysvipc/shm", "utf8"); } catch { return; }
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/).map(Number);
    const [key, shmid, , , cpid, , nattch] = f;
    if (shmid === undefined || nattch !== 0 || !(pids.includes(cpid!) || inodes.includes(key!))) continue;
    spawnSync("ipcrm", ["-m", String(shmid)], { stdio: "ignore" });
  }
}

function inodeOf(p: string): number | null {
  try { return statSync(p).ino; } catch { return null; }
}

// ---- cleanup if the process ends without pair.stop() (a crash, uvu exiting, ^C) ----
interface Live { dir: string; dataDirs: string[]; mounts: string[]; zones: Zones | null }
const live = new Set<Live>();
const onSignal = (sig: NodeJS.Signals): void => {
  cleanupAllSync();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.kill(process.pid, sig);
};
let hooked = false;

function cleanupAllSync(): void {
  for (const l of live) {
    const pids: number[] = [], inodes: number[] = [];
    for (const d of l.dataDirs) {
      const pid = postmasterPid(d), ino = inodeOf(d);
      if (ino !== null) inodes.push(ino);
      if (pid === null) continue;
      pids.push(pid);
      if (!isPostgresProcess(pid)) continue;
      resume(pid);
      const [cmd, ...rest] = argvAsPostgres("pg_ctl", ["-D", d, "stop", "-m", "immediate", "-w", "-t", "10"]);
      spawnSync(cmd!, rest, { cwd: l.dir, env: cleanEnv(), stdio: "ignore", timeout: 15_000 });
      killLeftover(pid);
    }
    removeOrphanSegments(pids, inodes);
    for (const m of l.mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
    if (l.zones) removeZones(l.zones);
    rmSync(l.dir, { recursive: true, force: true });
  }
  live.clear();
}

function track(l: Live): void {
  live.add(l);
  if (!hooked) {
    hooked = true;
    process.on("exit", cleanupAllSync);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
}

function untrack(l: Live): void {
  live.delete(l);
  if (live.size === 0 && hooked) {
    hooked = false;
    process.off("exit", cleanupAllSync);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** One statement on a fresh client, closed afterwards. */
export async function queryOnce(conninfo: string, sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: conninfo, connectionTimeoutMillis: 3000 });
  client.on("error", () => { /* the server went away: the pending query rejects */ });
  try {
    await client.connect();
    return await client.query(sql, params);
  } finally {
    await client.end().catch(() => {});
  }
}

function tail(file: string, lines = 30): string {
  try { return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n"); } catch { return "(no log)"; }
}

async function sleep(ms: number): Promise<void> { await new Promise((r) => setTimeout(r, ms)); }

/**
 * Starts a primary and an asynchronous streaming hot standby (PostgreSQL 15, data checksums, fsync on)
 * in a fresh temp folder, creates database `opts.name` (default "orders") on the primary, and returns
 * once pg_stat_replication on the primary shows the standby streaming. On any failure both servers are
 * stopped, the folder removed, and the error names the log tails.
 */
export interface PairOptions {
  /** The database created on the primary (default "orders"). */
  name?: string;
  /** Put the primary's data directory on a tmpfs of this many MiB (root only): a disk that really fills up. */
  primaryDiskMb?: number;
  /**
   * Put the standby's data directory on a tmpfs of this many MiB (root only): a device of its own, as
   * another zone has, so a fault on the primary's disk (e.g. I/O starvation of the host's disk) does
   * not reach it.
   */
  standbyDiskMb?: number;
  /** initdb --wal-segsize (MiB, a power of 2; default 16): small segments make a filling disk grow smoothly. */
  walSegmentMb?: number;
  /** wal_keep_size in MiB (default 256). */
  walKeepMb?: number;
  /**
   * Each instance in a zone of its own (root only): a network namespace joined to a bridge on this
   * host by a veth pair, the instance listening on the zone's address. pair.partition("primary")
   * sets the zone's link down (a real partition), pair.heal() sets it up again.
   */
  zones?: boolean;
}

export interface Zones { bridge: string; subnet: string; ns: Record<"primary" | "standby", string>; hostLink: Record<"primary" | "standby", string>; address: Record<"primary" | "standby", string> }

function ipRun(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")} exited ${r.status}: ${(r.stderr || "").trim()}`);
}

/** A bridge and two namespaces on a /24 of 10.213.0.0/16 (names and subnet random, so runs do not collide). */
function makeZones(): Zones {
  const id = randomBytes(2).toString("hex"), k = 1 + (randomBytes(1)[0]! % 250);
  const z: Zones = { bridge: `smbr${id}`, subnet: `10.213.${k}.0/24`, ns: { primary: `sm${id}a`, standby: `sm${id}b` }, hostLink: { primary: `sm${id}a0`, standby: `sm${id}b0` }, address: { primary: `10.213.${k}.2`, standby: `10.213.${k}.3` } };
  try {
    ipRun(["link", "add", z.bridge, "type", "bridge"]);
    ipRun(["addr", "add", `10.213.${k}.1/24`, "dev", z.bridge]);
    ipRun(["link", "set", z.bridge, "up"]);
    for (const n of ["primary", "standby"] as const) {
      const ns = z.ns[n], inner = `${z.hostLink[n].slice(0, -1)}1`;
      ipRun(["netns", "add", ns]);
      ipRun(["link", "add", z.hostLink[n], "type", "veth", "peer", "name", inner]);
      ipRun(["link", "set", inner, "netns", ns]);
      ipRun(["link", "set", z.hostLink[n], "master", z.bridge]);
      ipRun(["link", "set", z.hostLink[n], "up"]);
      ipRun(["netns", "exec", ns, "ip", "addr", "add", `${z.address[n]}/24`, "dev", inner]);
      ipRun(["netns", "exec", ns, "ip", "link", "set", inner, "up"]);
      ipRun(["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    }
  } catch (e) { removeZones(z); throw e; }
  return z;
}

function removeZones(z: Zones): void {
  for (const ns of Object.values(z.ns)) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
  for (const l of Object.values(z.hostLink)) spawnSync("ip", ["link", "del", l], { stdio: "ignore" });
  spawnSync("ip", ["link", "del", z.bridge], { stdio: "ignore" });
}

export async function startPair(opts: PairOptions = {}): Promise<PgPair> {
  const reason = pgAvailable();
  if (reason) throw new Error(`startPair: PostgreSQL is not available: ${reason}`);
  const database = opts.name ?? "orders";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) throw new Error(`startPair: database name ${JSON.stringify(database)} is not a plain lowercase identifier`);

  const dir = mkdtempSync(path.join(os.tmpdir(), `pg-cluster-${database}-`));
  const ids = isRoot() ? postgresIds() : null;
  const own = (p: string): void => { if (ids) chownSync(p, ids.uid, ids.gid); };
  own(dir);

  const mounts: string[] = [];
  const disks: Partial<Record<"primary" | "standby", string>> = {};
  for (const [name, mb] of [["primary", opts.primaryDiskMb], ["standby", opts.standbyDiskMb]] as const) {
    if (mb === undefined) continue;
    const field = `${name}DiskMb`;
    if (!isRoot()) { for (const m of mounts) spawnSync("umount", ["-l", m]); rmSync(dir, { recursive: true, force: true }); throw new Error(`startPair: ${field} needs root (mount -t tmpfs)`); }
    const m = path.join(dir, `${name}-disk`);
    mkdirSync(m);
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${mb}m,mode=0700`, "tmpfs", m], { encoding: "utf8" });
    if (r.status !== 0) { for (const x of mounts) spawnSync("umount", ["-l", x]); rmSync(dir, { recursive: true, force: true }); throw new Error(`startPair: ${field}: mount -t tmpfs (${mb} MiB) failed: ${(r.stderr || "").trim()}`); }
    own(m);
    mounts.push(m);
    disks[name] = m;
  }
  let zones: Zones | null = null;
  if (opts.zones) {
    if (!isRoot()) { rmSync(dir, { recursive: true, force: true }); throw new Error("startPair: zones need root (ip netns)"); }
    try { zones = makeZones(); } catch (e) { for (const m of mounts) spawnSync("umount", ["-l", m]); rmSync(dir, { recursive: true, force: true }); throw e; }
  }
  const makeNode = (name: "primary" | "standby", port: number): PgNode => {
    const disk = disks[name];
    const dataDir = disk ? path.join(disk, name) : path.join(dir, name);
    const host = zones ? zones.address[name] : "127.0.0.1", netns = zones ? zones.ns[name] : null;
    const socketDir = path.join(dir, `sock-${name}`);
    const node: PgNode = {
      // The log beside the data when the instance has a device of its own: writes to the host disk could stall it (dirty-page throttling).
      name, dataDir, port, host, netns, socketDir, logFile: path.join(disk ?? dir, `${name}.log`), database,
      conninfo: (db = database) => `postgresql://postgres@${host}:${node.port}/${db}`,
      query: (sql, params) => queryOnce(node.conninfo(), sql, params),
      pgCtl: (args) => runAsPostgres("pg_ctl", ["-D", dataDir, ...args], dir, 120_000, netns),
      postmasterPid: () => postmasterPid(dataDir),
    };
    return node;
  };

  const primary = makeNode("primary", await freePort());
  const standby = makeNode("standby", 0);
  const l: Live = { dir, dataDirs: [primary.dataDir, standby.dataDir], mounts, zones };
  track(l);

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const pids: number[] = [], inodes: number[] = [];
      for (const n of [standby, primary]) {
        const pid = n.postmasterPid(), ino = inodeOf(n.dataDir);
        if (ino !== null) inodes.push(ino);
        if (pid === null) continue;
        pids.push(pid);
        if (isPostgresProcess(pid)) {
          resume(pid);
          await n.pgCtl(["stop", "-m", "immediate", "-w", "-t", "30"]).catch(() => undefined);
          killLeftover(pid);
        }
      }
      // killLeftover's SIGKILL is asynchronous: give the processes a moment to detach before removing segments.
      for (let i = 0; i < 20 && pids.some(isPostgresProcess); i++) await sleep(50);
      removeOrphanSegments(pids, inodes);
      for (const m of mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
      if (zones) removeZones(zones);
      try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
      untrack(l);
    })();
    return stopped;
  };

  const configure = (n: PgNode): void => {
    mkdirSync(n.socketDir, { mode: 0o700 });
    own(n.socketDir);
    if (Buffer.byteLength(path.join(n.socketDir, `.s.PGSQL.${n.port}`)) > 100) {
      throw new Error(`socket path under ${n.socketDir} is too long for a Unix socket (set TMPDIR to a shorter folder)`);
    }
    // Appended: the last setting in postgresql.conf wins, so the standby's copy of the primary's lines is overridden.
    appendFileSync(path.join(n.dataDir, "postgresql.conf"), [
      "", `# ${n.name}: world/demo/pg-pair.ts`,
      `port = ${n.port}`,
      `listen_addresses = '${n.host}'`,
      `unix_socket_directories = ${sqlString(n.socketDir)}`,
      `cluster_name = ${sqlString(n.name)}`,
      "wal_level = replica",
      "max_wal_senders = 5",
      "wal_log_hints = on",
      "hot_standby = on",
      "max_connections = 40",
      "synchronous_commit = on", // no synchronous_standby_names: replication stays asynchronous
      `wal_keep_size = '${opts.walKeepMb ?? 256}MB'`,
      "log_destination = 'stderr'",
      "logging_collector = off",
      "",
    ].join("\n"));
  };

  const start = async (n: PgNode): Promise<void> => {
    const r = await n.pgCtl(["-w", "-t", "60", "-l", n.logFile, "start"]);
    if (r.code !== 0) throw new Error(`pg_ctl start of the ${n.name} exited ${r.code}: ${(r.stderr || r.stdout).trim()}\n${n.logFile}:\n${tail(n.logFile)}`);
  };

  try {
    await mustRun("initdb", ["-D", primary.dataDir, "-A", "trust", "-U", "postgres", "--data-checksums", "--encoding=UTF8", "--locale=C", ...(opts.walSegmentMb ? [`--wal-segsize=${opts.walSegmentMb}`] : [])], dir);
    configure(primary);
    const hba = path.join(primary.dataDir, "pg_hba.conf");
    const hbaText = readFileSync(hba, "utf8");
    const hasLine = (db: string): boolean => new RegExp(`^\\s*host\\s+${db}\\s+all\\s+127\\.0\\.0\\.1/32\\s+trust\\s*$`, "m").test(hbaText);
    const extra = (["replication", "all"] as const).filter((db) => !hasLine(db)).map((db) => `host ${db} all 127.0.0.1/32 trust\n`);
    if (zones) extra.push(...(["replication", "all"] as const).map((db) => `host ${db} all ${zones!.subnet} trust\n`));
    if (extra.length) appendFileSync(hba, `\n# world/demo/pg-pair.ts\n${extra.join("")}`);
    await start(primary);
    await queryOnce(primary.conninfo("postgres"), `CREATE DATABASE "${database}"`);

    standby.port = await freePort();
    await mustRun("pg_basebackup", ["-h", primary.host, "-p", String(primary.port), "-U", "postgres", "-D", standby.dataDir, "-R", "-X", "stream", "--checkpoint=fast"], dir, standby.netns);
    configure(standby);
    await start(standby);

    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await queryOnce(primary.conninfo("postgres"), "SELECT state FROM pg_stat_replication").catch(() => null);
      if (r?.rows.some((row: { state: string }) => row.state === "streaming")) break;
      if (Date.now() > deadline) {
        throw new Error(`the standby did not reach 'streaming' within 30 s (pg_stat_replication: ${JSON.stringify(r?.rows ?? null)})\n${standby.logFile}:\n${tail(standby.logFile)}`);
      }
      await sleep(100);
    }
  } catch (e) {
    const logs = [primary, standby].map((n) => `${n.logFile}:\n${tail(n.logFile, 15)}`).join("\n");
    await stop();
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`startPair failed: ${msg}${msg.includes(".log:") ? "" : `\n${logs}`}`);
  }
  const link = (n: "primary" | "standby", up: boolean): void => {
    if (!zones) throw new Error("partition/heal: the pair was started without zones");
    ipRun(["link", "set", zones.hostLink[n], up ? "up" : "down"]);
  };
  return { dir, database, primary, standby, stop, zones, partition: (n) => link(n, false), heal: (n) => link(n, true) };
}

// ---- split-brain detection ----

/** What TwoWriterChecker needs of a node (a PgNode is one). */
export interface WriterTarget { name: string; conninfo(db?: string): string }

export interface TwoWriterResult {
  /** Completed samples (each asks both nodes). */
  samples: number;
  /** Samples in which both nodes were writable; atMs is the sample's start, ms after start(). */
  overlaps: { atMs: number; detail: string }[];
  /** Per node name: samples in which it could not be reached or did not answer in time (counted as not writable). */
  unreachable: Record<string, number>;
  /** Per node name: samples in which it was writable. */
  writable: Record<string, number>;
  /** Ticks skipped because the previous sample was still running. */
  skippedTicks: number;
}

interface Probe { writable: boolean; state: string; atMs: number }

/**
 * Every intervalMs, asks both nodes `SELECT pg_is_in_recovery(), current_setting('transaction_read_only')`
 * over one persistent client per node. A node is writable when it is not in recovery and read-only is
 * off (each autocommit statement is a new transaction, so transaction_read_only shows the session's
 * default_transaction_read_only, and is forced on in recovery); an overlap is a sample where both are.
 *
 * Caveats:
 * - default_transaction_read_only changed with ALTER SYSTEM + pg_reload_conf() reaches an existing
 *   session only once its backend has processed the SIGHUP, which happens between statements: the
 *   checker's persistent session sees it on its next statement after that (normally the next sample),
 *   and a session that sets the parameter itself (SET) keeps its own value. A driver that fences by
 *   reload must therefore also end or wait out sessions that are mid-statement.
 * - The two questions of a sample are sent at the same time but are not one atomic observation: a
 *   handover that completes within the few milliseconds between the two answers could show as an
 *   overlap (or as a sample with no writer). Each overlap's detail gives both answer times.
 * - A node that cannot be reached, or does not answer within statementTimeoutMs (+1 s client-side),
 *   counts as not writable for that sample; its client is dropped and reconnected on the next sample.
 */
export class TwoWriterChecker {
  private readonly intervalMs: number;
  private readonly statementTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly keys: [string, string];
  private clients: [pg.Client | null, pg.Client | null] = [null, null];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private t0 = 0;
  private result: TwoWriterResult;

  constructor(private readonly nodes: readonly [WriterTarget, WriterTarget], opts: { intervalMs?: number; statementTimeoutMs?: number; connectTimeoutMs?: number } = {}) {
    this.intervalMs = opts.intervalMs ?? 100;
    this.statementTimeoutMs = opts.statementTimeoutMs ?? 500;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    const [a, b] = nodes;
    this.keys = a.name === b.name ? [`${a.name}#0`, `${b.name}#1`] : [a.name, b.name];
    this.result = this.empty();
  }

  private empty(): TwoWriterResult {
    return { samples: 0, overlaps: [], unreachable: { [this.keys[0]]: 0, [this.keys[1]]: 0 }, writable: { [this.keys[0]]: 0, [this.keys[1]]: 0 }, skippedTicks: 0 };
  }

  /** Starts sampling (the first sample right away). A checker can be started again after stop(): counts restart. */
  start(): void {
    if (this.timer) return;
    this.result = this.empty();
    this.t0 = performance.now();
    const tick = (): void => {
      if (this.inFlight) { this.result.skippedTicks++; return; }
      this.inFlight = this.sample().finally(() => { this.inFlight = null; });
    };
    this.timer = setInterval(tick, this.intervalMs);
    tick();
  }

  /** Stops sampling, waits for a sample in flight, closes the clients, and returns what was seen. */
  async stop(): Promise<TwoWriterResult> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.inFlight) await this.inFlight;
    await Promise.all([0, 1].map((i) => this.drop(i as 0 | 1)));
    return this.result;
  }

  private async drop(i: 0 | 1): Promise<void> {
    const c = this.clients[i];
    this.clients[i] = null;
    if (c) await c.end().catch(() => {});
  }

  private async probe(i: 0 | 1): Promise<Probe> {
    try {
      let c = this.clients[i];
      if (!c) {
        c = new pg.Client({
          connectionString: this.nodes[i].conninfo("postgres"),
          connectionTimeoutMillis: this.connectTimeoutMs,
          statement_timeout: this.statementTimeoutMs,
          query_timeout: this.statementTimeoutMs + 1000,
          application_name: "two-writer-checker",
        });
        const mine = c;
        c.on("error", () => { if (this.clients[i] === mine) this.clients[i] = null; mine.end().catch(() => {}); });
        this.clients[i] = c;
        await c.connect();
      }
      const r = await c.query<{ r: boolean; ro: string }>("SELECT pg_is_in_recovery() AS r, current_setting('transaction_read_only') AS ro");
      const row = r.rows[0];
      const atMs = Math.round(performance.now() - this.t0);
      if (!row) return { writable: false, state: "no row", atMs };
      return { writable: row.r === false && row.ro === "off", state: `recovery=${row.r} read_only=${row.ro}`, atMs };
    } catch (e) {
      await this.drop(i);
      this.result.unreachable[this.keys[i]]!++;
      return { writable: false, state: `unreachable (${e instanceof Error ? e.message : String(e)})`, atMs: Math.round(performance.now() - this.t0) };
    }
  }

  private async sample(): Promise<void> {
    const atMs = Math.round(performance.now() - this.t0);
    const [a, b] = await Promise.all([this.probe(0), this.probe(1)]);
    this.result.samples++;
    if (a.writable) this.result.writable[this.keys[0]]!++;
    if (b.writable) this.result.writable[this.keys[1]]!++;
    if (a.writable && b.writable) {
      this.result.overlaps.push({ atMs, detail: `both writable: ${this.keys[0]} ${a.state} (answered at ${a.atMs} ms), ${this.keys[1]} ${b.state} (answered at ${b.atMs} ms)` });
    }
  }
}
