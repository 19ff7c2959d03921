// The PostgreSQL driver: a primary and a hot standby kept by asynchronous streaming replication
// (pg_basebackup -R). Everything it reports is read from PostgreSQL or from /proc, never invented.
//
//   health    connects and asks pg_is_in_recovery() and transaction_read_only: up, and writable
//             only when neither is in force.
//   lag       the writer's pg_current_wal_lsn() against the replica's pg_last_wal_replay_lsn(): bytes
//             behind, drained when the replica has replayed everything (seconds 0); otherwise the
//             writer's pg_stat_replication.replay_lag, else now() - pg_last_xact_replay_timestamp().
//   fence     ALTER SYSTEM SET default_transaction_read_only = on, pg_reload_conf(), ends every other
//             client session with a transaction open (it may have begun read-write), then proves it:
//             a probe write (CREATE TABLE in a transaction that is rolled back) must fail with 25006
//             (read_only_sql_transaction) within `fenceVerifyMs`, else the fence fails.
//             With a lease agent and a primary that is down (an emergency), a fence that fails goes to
//             the agent, which fences it locally or, when it does not answer (hung), stops it for good
//             (SIGKILL; see the agent): a stopped primary is reported, and promoted past at once.
//   unfence   ALTER SYSTEM RESET default_transaction_read_only, reload; a writer must take the probe.
//   promote   pg_promote(wait => true), then the same reset (a rejoined standby may carry the fence).
//   lease     PostgreSQL has no writer lease: with a lease agent beside the side (world/sample/pg-lease-agent.ts)
//             the grant goes there, and the agent fences the instance before it runs out; without
//             one, accepted and ignored.
//   rejoin    needs the side's local data directory: stops it, pg_rewind from the new writer with
//             --write-recovery-conf (standby.signal, primary_conninfo), puts back the side's own
//             postgresql.conf and pg_hba.conf (pg_rewind copies the source's), starts it, and checks
//             that it streams the writer's timeline; if not (pg_rewind's "no rewind required" when the
//             old writer's shutdown checkpoint sits exactly at the fork), clones it with pg_basebackup.
//
// Signals, per side (names as the component's signals; a side's rates start on its second poll):
//   pg_connections_ratio   client backends / max_connections        pg_active_backends
//   pg_lock_waits          backends waiting on a lock                pg_deadlocks_per_s
//   pg_commits_per_s       pg_rollbacks_per_s                        pg_temp_bytes_per_s
//   pg_wal_bytes_per_s     WAL written (writer) or replayed (replica)
//   pg_database_bytes      pg_database_size of the database
//   pg_disk_used_ratio     used / size of the filesystem holding the data directory (local only)
//   process_cpu_ratio, process_rss_bytes, process_read_bytes_per_s, process_write_bytes_per_s:
//                          the postmaster and its children from /proc (local only), CPU as a share
//                          of the machine's cores
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statfsSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { readTree, rates, type ProcReading } from "./proc.js";
import { postAction, type ActionOutcome, type ComponentDriver, type LagReading, type LeaseDetail, type SideHealth, type SignalSample } from "./driver.js";
import type { Side } from "../xds/resources.js";

export interface PostgresSide {
  /** postgresql://USER@HOST:PORT/DB (a password from passwordEnv, never in the file). */
  url: string;
  password?: string;
  /** For rejoin and the OS signals: the instance's data directory on this machine. */
  dataDir?: string;
  /** The PostgreSQL binaries (pg_ctl, pg_rewind); default /usr/lib/postgresql/15/bin. */
  bin?: string;
  /** The OS user owning dataDir, for commands run as root (default postgres). */
  osUser?: string;
  /** The network namespace the instance runs in (its zone on this machine): rejoin's commands run there. */
  netns?: string;
  /** The lease agent beside the instance (world/sample/pg-lease-agent.ts): leases go there; without one a lease is a no-op. */
  leaseAgent?: { url: string; token: string };
}

export interface PostgresDriverOptions {
  primary: PostgresSide;
  shadow: PostgresSide;
  /** Per query (connect and statement), ms (default 2000). */
  timeoutMs?: number;
  /** How long the fence's probe write may keep succeeding after the reload (default 3000 ms). */
  fenceVerifyMs?: number;
  /** Milliseconds now (for rates); the driver's only clock. */
  nowMs: () => number;
}

const READ_ONLY = "25006";
const other = (s: Side): Side => (s === "primary" ? "shadow" : "primary");

interface Counters { tMs: number; commits: number; rollbacks: number; deadlocks: number; tempBytes: number; walLsn: bigint | null }

/** "16/B374D848" -> bytes. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn);
  if (!m) throw new Error(`not a WAL location: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

export class PostgresDriver implements ComponentDriver {
  readonly kind = "postgres";
  readonly measures = true;
  readonly rejoins = true;
  private readonly pools: Record<Side, pg.Pool>;
  private readonly counters: Record<Side, Counters | null> = { primary: null, shadow: null };
  private readonly proc: Record<Side, ProcReading | null> = { primary: null, shadow: null };
  private readonly timeoutMs: number;

  constructor(private readonly o: PostgresDriverOptions) {
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.pools = { primary: this.pool(o.primary), shadow: this.pool(o.shadow) };
  }

  private pool(s: PostgresSide): pg.Pool {
    // Idle sessions are kept (idleTimeoutMillis 0): a fence must not need a new connection, since a
    // primary whose slots a runaway pool took refuses one ("sorry, too many clients already").
    const p = new pg.Pool({ connectionString: s.url, ...(s.password !== undefined ? { password: s.password } : {}), max: 2, idleTimeoutMillis: 0, connectionTimeoutMillis: this.timeoutMs, query_timeout: this.timeoutMs, statement_timeout: this.timeoutMs, application_name: "shadowmesh" });
    p.on("error", () => undefined); // an idle client whose server went away: the next query reconnects
    return p;
  }

  private q<R extends pg.QueryResultRow = pg.QueryResultRow>(side: Side, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.pools[side].query<R>(sql, params).catch((e: Error) => { throw new Error(`${side} (${redact(this.o[side].url)}): ${e.message}`); });
  }

  async health(side: Side): Promise<SideHealth> {
    try {
      const r = await this.q<{ rec: boolean; ro: string }>(side, "SELECT pg_is_in_recovery() AS rec, current_setting('transaction_read_only') AS ro");
      const { rec, ro } = r.rows[0]!;
      return { up: true, writable: !rec && ro === "off", replica: rec, detail: rec ? "in recovery (a replica)" : ro === "on" ? "read-only (fenced)" : "writable" };
    } catch (e) {
      return { up: false, writable: null, replica: null, detail: (e as Error).message };
    }
  }

  async signals(side: Side): Promise<SignalSample[]> {
    const r = await this.q<Record<string, string | number | boolean | null>>(side, `
      SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8 AS backends,
             current_setting('max_connections')::float8 AS max_conn,
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active')::float8 AS active,
             (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock')::float8 AS lock_waits,
             d.xact_commit::float8 AS commits, d.xact_rollback::float8 AS rollbacks, d.deadlocks::float8 AS deadlocks, d.temp_bytes::float8 AS temp_bytes,
             pg_database_size(current_database())::float8 AS db_bytes,
             pg_is_in_recovery() AS rec,
             CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END AS lsn
      FROM pg_stat_database d WHERE d.datname = current_database()`);
    const row = r.rows[0];
    if (!row) throw new Error(`${side}: pg_stat_database has no row for the current database`);
    const tMs = this.o.nowMs();
    const n = (k: string) => Number(row[k]);
    const out: SignalSample[] = [
      { signal: "pg_connections_ratio", value: n("backends") / n("max_conn") },
      { signal: "pg_active_backends", value: n("active") },
      { signal: "pg_lock_waits", value: n("lock_waits") },
      { signal: "pg_database_bytes", value: n("db_bytes") },
    ];
    const cur: Counters = { tMs, commits: n("commits"), rollbacks: n("rollbacks"), deadlocks: n("deadlocks"), tempBytes: n("temp_bytes"), walLsn: row.lsn ? parseLsn(String(row.lsn)) : null };
    const prev = this.counters[side];
    this.counters[side] = cur;
    const dt = prev ? (tMs - prev.tMs) / 1000 : 0;
    if (prev && dt > 0) {
      // Statistics reset or a promotion can move counters back: such an interval counts as 0.
      const rate = (a: number, b: number) => Math.max(0, b - a) / dt;
      out.push(
        { signal: "pg_commits_per_s", value: rate(prev.commits, cur.commits) },
        { signal: "pg_rollbacks_per_s", value: rate(prev.rollbacks, cur.rollbacks) },
        { signal: "pg_deadlocks_per_s", value: rate(prev.deadlocks, cur.deadlocks) },
        { signal: "pg_temp_bytes_per_s", value: rate(prev.tempBytes, cur.tempBytes) },
      );
      if (prev.walLsn !== null && cur.walLsn !== null) out.push({ signal: "pg_wal_bytes_per_s", value: rate(Number(prev.walLsn), Number(cur.walLsn)) });
    }
    const dir = this.o[side].dataDir;
    if (dir) {
      try {
        const fs = statfsSync(dir);
        out.push({ signal: "pg_disk_used_ratio", value: fs.blocks > 0 ? 1 - fs.bavail / fs.blocks : 0 });
      } catch { /* the directory is gone: no disk reading this time */ }
      const pid = postmasterPid(dir);
      const reading = pid === null ? null : readTree(pid, tMs);
      const p = this.proc[side];
      this.proc[side] = reading;
      const rr = p && reading ? rates(p, reading) : null;
      if (rr) out.push(
        { signal: "process_cpu_ratio", value: rr.cpuRatio }, { signal: "process_rss_bytes", value: rr.rssBytes },
        { signal: "process_read_bytes_per_s", value: rr.readBytesPerS }, { signal: "process_write_bytes_per_s", value: rr.writeBytesPerS },
      );
    }
    return out;
  }

  async lag(): Promise<LagReading | null> {
    const role = async (side: Side) => (await this.q<{ rec: boolean }>(side, "SELECT pg_is_in_recovery() AS rec")).rows[0]!.rec;
    let writer: Side | null = null;
    for (const s of ["primary", "shadow"] as const) {
      try { if (!(await role(s))) { writer = s; break; } } catch { /* unreachable: not the writer we can read */ }
    }
    if (writer === null) return { seconds: null, bytes: null, drained: false };
    const replica = other(writer);
    const w = await this.q<{ lsn: string; lag: number | null }>(writer, "SELECT pg_current_wal_lsn()::text AS lsn, (SELECT extract(epoch FROM max(replay_lag))::float8 FROM pg_stat_replication) AS lag");
    let rep: pg.QueryResult<{ lsn: string | null; since: number | null; streaming: boolean }>;
    try {
      rep = await this.q(replica, "SELECT pg_last_wal_replay_lsn()::text AS lsn, extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since, EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming");
    } catch { return { seconds: null, bytes: null, drained: false }; }
    const wr = w.rows[0]!, rr = rep.rows[0]!;
    if (!rr.lsn) return { seconds: null, bytes: null, drained: false };
    // A replica that does not stream from the writer (being rejoined, cut off) has no lag to speak of:
    // what it replayed may be another timeline's. Unknown until it streams again.
    if (!rr.streaming) return { seconds: null, bytes: null, drained: false };
    const bytes = parseLsn(wr.lsn) - parseLsn(rr.lsn);
    if (bytes <= 0n) return { seconds: 0, bytes: 0, drained: true };
    const seconds = wr.lag !== null ? Number(wr.lag) : rr.since !== null ? Math.max(0, Number(rr.since)) : null;
    return { seconds, bytes: Number(bytes), drained: false };
  }

  /**
   * A probe write on one of the driver's own sessions (kept open: see pool()), rolled back: null if it
   * was refused as read-only, else what happened. The reload applies default_transaction_read_only to
   * every session, so a session opened before the fence proves it as well as a new one would.
   */
  private async probeWrite(side: Side): Promise<string | null> {
    const c = await this.pools[side].connect().catch((e: Error) => { throw new Error(`${side} (${redact(this.o[side].url)}): ${e.message}`); });
    let broken: Error | undefined;
    try {
      await c.query("BEGIN");
      try {
        await c.query("CREATE TABLE shadowmesh_fence_probe (x int)");
        return "a probe write succeeded";
      } catch (e) {
        if ((e as { code?: string }).code === READ_ONLY) return null;
        return `the probe write failed otherwise: ${(e as Error).message}`;
      } finally { await c.query("ROLLBACK").catch((e: Error) => { broken = e; }); }
    } finally { c.release(broken); }
  }

  async fence(side: Side, detail?: LeaseDetail): Promise<void | ActionOutcome> {
    try {
      await this.fenceSql(side);
    } catch (e) {
      // A primary that is down may be hung, not dead: the agent beside it can stop it for good.
      const a = this.o[side].leaseAgent;
      if (!detail?.stop || !a) throw e;
      let how: unknown;
      try {
        // The agent may spend a connect timeout on a hung instance before it stops it: give it that much more.
        const body = await postAction(fetch, `${a.url}/fence`, `fence ${side}: the lease agent ${a.url}`, detail.term !== undefined ? { term: detail.term } : {}, { authorization: `Bearer ${a.token}` }, this.timeoutMs + 2_500);
        how = (body as { how?: unknown } | null)?.how;
      } catch (e2) { throw new Error(`${(e as Error).message}; the lease agent (${a.url}/fence) could not fence or stop it either: ${(e2 as Error).message}`); }
      if (how === "stopped") return { stopped: true };
      if (how !== "fenced" && how !== "replica") throw new Error(`${(e as Error).message}; the lease agent (${a.url}/fence) answered ${JSON.stringify(how)}`);
    }
  }

  private async fenceSql(side: Side): Promise<void> {
    await this.q(side, "ALTER SYSTEM SET default_transaction_read_only = on");
    await this.q(side, "SELECT pg_reload_conf()");
    // Sessions with a transaction open may have begun it read-write before the reload: end them.
    // (Not the driver's own other session, which a poll may be using: it never holds a write open.)
    await this.q(side, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND application_name <> 'shadowmesh'");
    const deadline = this.o.nowMs() + (this.o.fenceVerifyMs ?? 3000);
    let why: string | null = "not probed";
    while ((why = await this.probeWrite(side)) !== null && this.o.nowMs() < deadline) await sleep(50);
    if (why !== null) throw new Error(`fence ${side}: ${why} after default_transaction_read_only = on and a reload: the ${side} still takes writes`);
  }

  async unfence(side: Side): Promise<void> {
    await this.q(side, "ALTER SYSTEM RESET default_transaction_read_only");
    await this.q(side, "SELECT pg_reload_conf()");
  }

  async promote(side: Side): Promise<void> {
    const rec = (await this.q<{ rec: boolean }>(side, "SELECT pg_is_in_recovery() AS rec")).rows[0]!.rec;
    if (rec) {
      // pg_promote waits up to 60 s for the end of recovery: the pool's statement_timeout (timeoutMs,
      // server side) would cancel it first on a standby slow to finish replay, so this session lifts it.
      const c = await this.pools[side].connect().catch((e: Error) => { throw new Error(`promote ${side}: ${e.message}`); });
      let broken: Error | undefined;
      try {
        await c.query("SET statement_timeout = '65s'");
        const r = await c.query<{ ok: boolean }>({ text: "SELECT pg_promote(true, 60) AS ok", query_timeout: 65_000 } as pg.QueryConfig);
        if (!r.rows[0]?.ok) throw new Error("pg_promote did not finish within 60 s");
        await c.query("RESET statement_timeout");
      } catch (e) {
        broken = e as Error; // the session may still carry the long timeout: the pool drops it
        throw new Error(`promote ${side}: ${broken.message}`);
      } finally { c.release(broken); }
    }
    await this.unfence(side);
  }

  /** PostgreSQL has no lease of its own: only a lease agent beside the side enforces one. */
  enforcesLease(side: Side): boolean { return this.o[side].leaseAgent !== undefined; }

  async lease(side: Side, d?: LeaseDetail): Promise<void> {
    const a = this.o[side].leaseAgent;
    if (!a || d?.epoch === undefined || d.expiresAtMs === undefined) return; // no agent: PostgreSQL has no lease of its own
    await postAction(fetch, `${a.url}/lease`, `lease ${side}: ${a.url}`, { epoch: d.epoch, expiresAtMs: d.expiresAtMs, ...(d.term !== undefined ? { term: d.term } : {}) }, { authorization: `Bearer ${a.token}` }, this.timeoutMs);
  }

  async rejoin(side: Side): Promise<void> {
    const s = this.o[side];
    if (!s.dataDir) throw new Error(`rejoin ${side}: needs the ${side}'s dataDir (the instance must be on this machine)`);
    const bin = s.bin ?? "/usr/lib/postgresql/15/bin", dir = s.dataDir, user = s.osUser ?? "postgres";
    const runAs = (u: string, argv: string[], env: Record<string, string> = {}) => runAsIn(s.netns, u, argv, env);
    const source = this.o[other(side)];
    // The writer's current timeline (pg_control's checkpoint lags a promotion until its first checkpoint).
    const writerTli = Number((await this.q<{ tli: number }>(other(side), "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli")).rows[0]!.tli);
    await this.pools[side].end().catch(() => undefined);
    const pgCtl = (...args: string[]) => runAs(user, [path.join(bin, "pg_ctl"), "-D", dir, "-w", "-t", "60", ...args]);
    const keep = ["postgresql.conf", "pg_hba.conf"].map((f) => [path.join(dir, f), path.join(path.dirname(dir), `.${path.basename(dir)}.${f}.rejoin`)] as const);
    const start = async () => {
      for (const [to, from] of keep) copyFileSync(from, to);
      await pgCtl("-l", path.join(path.dirname(dir), `${path.basename(dir)}.log`), "start");
      this.pools[side] = this.pool(s);
      this.counters[side] = null; this.proc[side] = null;
    };
    await pgCtl("-m", "fast", "stop").catch(() => undefined); // not running is fine
    for (const [from, to] of keep) copyFileSync(from, to);
    await runAs(user, [path.join(bin, "pg_rewind"), `--target-pgdata=${dir}`, `--source-server=${source.url}`, "--write-recovery-conf"]);
    await start();
    // pg_rewind answers "no rewind required" when the old writer's only record past the fork is its
    // own shutdown checkpoint, starting exactly at the fork point; that standby can never follow the
    // new timeline. Then it is cloned afresh (pg_basebackup), as Patroni does on diverged timelines.
    if (await this.following(side, writerTli, 5_000)) return;
    await this.pools[side].end().catch(() => undefined);
    await pgCtl("-m", "immediate", "stop").catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    await runAs("root", ["chown", `${user}:`, dir]).catch(() => undefined);
    const u = new URL(source.url);
    await runAs(user, [path.join(bin, "pg_basebackup"), "-d", `host=${u.hostname} port=${u.port || 5432} user=${decodeURIComponent(u.username) || user}`, "-D", dir, "-R", "-X", "stream", "--checkpoint=fast"], source.password ? { PGPASSWORD: source.password } : {});
    await start();
    if (!(await this.following(side, writerTli, 30_000))) throw new Error(`rejoin ${side}: neither pg_rewind nor a fresh pg_basebackup gave a standby streaming timeline ${writerTli} from the ${other(side)}`);
  }

  /** Whether `side` streams the writer's timeline within `ms` (pg_stat_wal_receiver). */
  private async following(side: Side, tli: number, ms: number): Promise<boolean> {
    const end = this.o.nowMs() + ms;
    while (this.o.nowMs() < end) {
      const r = await this.q<{ status: string; tli: number }>(side, "SELECT status, received_tli AS tli FROM pg_stat_wal_receiver").catch(() => null);
      if (r?.rows[0] && r.rows[0].status === "streaming" && Number(r.rows[0].tli) === tli) return true;
      await sleep(100);
    }
    return false;
  }

  async close(): Promise<void> { await Promise.all([this.pools.primary.end(), this.pools.shadow.end()].map((p) => p.catch(() => undefined))); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The URL without its password. */
function redact(url: string): string { try { const u = new URL(url); if (u.password) u.password = "***"; return u.toString(); } catch { return "(an unparsable url)"; } }

/** The postmaster's pid from DATA/postmaster.pid (null: not running). */
export function postmasterPid(dataDir: string): number | null {
  try { const pid = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]); return Number.isInteger(pid) && pid > 0 ? pid : null; } catch { return null; }
}

/** Runs argv (as `user` through runuser when this process is root; inside `netns` when given), failing with its stderr. */
function runAsIn(netns: string | undefined, user: string, argv: string[], env: Record<string, string> = {}): Promise<void> {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const [cmd, ...args] = [...(netns ? ["ip", "netns", "exec", netns] : []), ...(root && user !== "root" ? ["runuser", "-u", user, "--"] : []), ...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, { stdio: ["ignore", "ignore", "pipe"], cwd: "/", env: { ...process.env, ...env } });
    let err = "";
    child.stderr.on("data", (d: Buffer) => { err = (err + d.toString()).slice(-800); });
    child.on("error", (e) => reject(new Error(`${path.basename(argv[0]!)}: ${e.message}`)));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(argv[0]!)} exited ${code}: ${err.trim()}`))));
  });
}
