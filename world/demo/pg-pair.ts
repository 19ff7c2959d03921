// Real PostgreSQL 15 servers for the demo and the tests: pgAvailable() (can this machine run them?) and
// startPair() (a primary and a streaming hot standby in a temp folder, on loopback ports of their own or
// in zones of their own, on tmpfs disks when asked, stopped and removed by pair.stop()). Running the
// programs as the `postgres` OS user and the cleanup on exit are pg-process.ts; the zones pg-zones.ts;
// split-brain detection two-writer.ts.
import { spawnSync } from "node:child_process";
import { postmasterPid } from "../../controller/drivers/postgres.js";
import { accessSync, appendFileSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import {
  freePort, inodeOf, isPostgresProcess, isRoot, killLeftover, mustRun, PG_BIN, postgresIds, queryOnce, removeOrphanSegments,
  resume, runAsPostgres, runuserPath, track, untrack, type Live, type RunResult,
} from "./pg-process.js";
import { ipRun, makeZones, removeZones, type Zones } from "./pg-zones.js";

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

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

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
