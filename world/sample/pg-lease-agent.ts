// The writer's lease for PostgreSQL, which has none of its own: a small agent beside the instance (in
// its zone, reaching it locally) that the controller grants leases to, as it does to the sample KV.
// Once a lease has been granted, the agent makes the instance refuse writes before the lease runs
// out (ALTER SYSTEM SET default_transaction_read_only = on, a reload, and the end of every session
// with a transaction open) unless it is renewed; so a primary cut off from the controller (a
// partition, a hang of the controller) stops writing by itself, and the controller, which promotes
// the replica only after the lease plus the clock skew has passed, never makes a second writer.
// A renewal lifts a fence the agent put on itself, never one the controller put on (that one is the
// controller's to lift). Patroni demotes a primary that loses its leader key the same way.
//
//   POST /lease  {"epoch": E, "expiresAtMs": T}   (bearer token)  200 {status} | 409 a lower epoch
//   POST /fence                                     (bearer token)  200 {how: fenced|replica|stopped} | 503
//   Either may carry "term": an HA controller's; one below the highest seen answers 409 and does nothing.
//   GET  /status                                    {epoch, leaseUntilMs, selfFenced, fencedAtMs, killedAtMs}
// An instance that does not answer as the lease runs out (hung) is killed when the agent knows its
// data directory: a writer that cannot be fenced is stopped (a watchdog's STONITH). POST /fence does
// the same at once, for a controller that found the primary down and could not fence it itself: the
// answer "stopped" proves no postmaster runs in the data directory, so the controller promotes
// without waiting out the lease. A stopped instance gets default_transaction_read_only = on in its
// postgresql.auto.conf, so a restart (by hand, by systemd) brings it back fenced, not writable.
import { appendFileSync, existsSync, readFileSync, realpathSync } from "node:fs";
import http from "node:http";
import { childrenOf } from "../../controller/drivers/proc.js";
import { postmasterPid } from "../../controller/drivers/postgres.js";
import path from "node:path";
import pg from "pg";

export interface PgLeaseAgentOptions {
  /** The local instance (postgresql://USER@HOST:PORT/DB). */
  url: string;
  token: string;
  /** Start fencing this long before the lease runs out (default 1000 ms: a hung instance costs a 300 ms connect timeout before it is killed). */
  guardMs?: number;
  /** How often the lease is checked (default 100 ms). */
  checkMs?: number;
  /**
   * The instance's data directory on this machine: when the instance cannot be fenced (it does not
   * answer: hung, stopped) as the lease runs out, the agent kills its postmaster and children
   * (SIGKILL, as a watchdog or STONITH would): a writer that cannot be fenced is stopped.
   */
  dataDir?: string;
  now?: () => number;
}

export class PgLeaseAgent {
  epoch = 0;
  leaseUntilMs = 0;
  selfFenced = false;
  fencedAtMs: number | null = null;
  /** When the agent killed an instance it could not fence (null: never). */
  killedAtMs: number | null = null;
  private server: http.Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  url = "";
  private readonly now: () => number;

  constructor(private readonly o: PgLeaseAgentOptions) { this.now = o.now ?? Date.now; }

  private async sql(statements: string[]): Promise<pg.QueryResult[]> {
    const c = new pg.Client({ connectionString: this.o.url, connectionTimeoutMillis: 300, query_timeout: 300, application_name: "shadowmesh-lease-agent" });
    c.on("error", () => undefined);
    await c.connect();
    try { const out: pg.QueryResult[] = []; for (const q of statements) out.push(await c.query(q)); return out; } finally { await c.end().catch(() => undefined); }
  }

  /** One check: past the lease (minus the guard) and still writable: fence. */
  async check(): Promise<void> {
    if (this.busy || this.leaseUntilMs === 0 || this.selfFenced || this.now() < this.leaseUntilMs - (this.o.guardMs ?? 1000)) return;
    this.busy = true;
    try { await this.fenceNow(); } finally { this.busy = false; }
  }

  /**
   * Fences the instance now: by SQL when it answers; when it does not (it may be down, or hung and
   * would write again when it wakes) and its data directory is known, by stopping it for good.
   * Says what holds afterwards (null: neither could be done; the next check tries again).
   */
  private async fenceNow(): Promise<"fenced" | "replica" | "stopped" | null> {
    try {
      const [r] = await this.sql(["SELECT pg_is_in_recovery() AS rec, current_setting('default_transaction_read_only') AS ro"]);
      const row = r!.rows[0] as { rec: boolean; ro: string };
      if (row.rec) return "replica";
      if (row.ro === "on") return "fenced"; // already fenced (by the controller: not the agent's to lift)
      await this.sql([
        "ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
      ]);
      this.selfFenced = true;
      this.fencedAtMs = this.now();
      return "fenced";
    } catch {
      return (await this.stop9()) ? "stopped" : null;
    }
  }

  /**
   * Stops the instance of dataDir for good: SIGKILL to its postmaster and children, waits until they
   * are gone, and fences the configuration for a restart. True once no postmaster runs in dataDir
   * (false without a dataDir, or when the process outlives 2 s).
   */
  private async stop9(): Promise<boolean> {
    const dir = this.o.dataDir;
    if (!dir || !existsSync(path.join(dir, "PG_VERSION"))) return false; // not a data directory: nothing proves a stop
    const pid = postmasterOf(dir);
    if (pid !== null) {
      const all = [pid, ...childrenOf(pid)];
      for (const p of all) { try { process.kill(p, "SIGKILL"); } catch { /* gone */ } }
      for (let i = 0; i < 40 && all.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
      if (all.some(alive)) return false;
      this.killedAtMs ??= this.now();
    }
    // A restart must not bring back a writer: PostgreSQL reads postgresql.auto.conf last.
    try { appendFileSync(path.join(dir, "postgresql.auto.conf"), "default_transaction_read_only = 'on'  # shadowmesh lease agent: stopped while fenced\n"); } catch { /* no data directory left: nothing to restart */ }
    this.selfFenced = true;
    this.fencedAtMs ??= this.now();
    return true;
  }

  async start(port = 0, host = "127.0.0.1"): Promise<number> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r, j) => { this.server!.once("error", j); this.server!.listen(port, host, () => r()); });
    const p = (this.server.address() as { port: number }).port;
    this.url = `http://${host}:${p}`;
    this.timer = setInterval(() => void this.check(), this.o.checkMs ?? 100);
    return p;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.server) { this.server.closeAllConnections(); await new Promise<void>((r) => this.server!.close(() => r())); }
  }

  /** The highest HA controller term a request carried (0: none). */
  controllerTerm = 0;

  status() { return { epoch: this.epoch, leaseUntilMs: this.leaseUntilMs, selfFenced: this.selfFenced, fencedAtMs: this.fencedAtMs, killedAtMs: this.killedAtMs }; }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const json = (status: number, body: unknown) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
    if (req.url === "/status" && req.method === "GET") return json(200, this.status());
    if ((req.url !== "/lease" && req.url !== "/fence") || req.method !== "POST") return json(404, { error: `no route ${req.method} ${req.url}` });
    if (req.headers.authorization !== `Bearer ${this.o.token}`) return json(401, { error: `${req.url}: requires "authorization: Bearer <the agent's token>"` });
    let body = "";
    for await (const c of req) { body += c; if (body.length > 4096) return json(400, { error: "body: larger than 4 KiB" }); }
    let a: { epoch?: unknown; expiresAtMs?: unknown; term?: unknown };
    try { a = body ? JSON.parse(body) : {}; } catch { return json(400, { error: `body: expected JSON${req.url === "/lease" ? " {epoch, expiresAtMs}" : ""}` }); }
    // HA controllers: a term below the highest seen is a deposed leader's (409, nothing done).
    if (a.term !== undefined) {
      if (!Number.isInteger(a.term) || (a.term as number) < 1) return json(400, { error: `term: must be a positive integer, got ${JSON.stringify(a.term)}` });
      if ((a.term as number) < this.controllerTerm) return json(409, { error: `${req.url.slice(1)} from controller term ${a.term} refused: this agent has seen term ${this.controllerTerm} (a deposed leader?)` });
      this.controllerTerm = a.term as number;
    }
    if (req.url === "/fence") {
      while (this.busy) await new Promise((r) => setTimeout(r, 20));
      this.busy = true;
      try {
        const how = await this.fenceNow();
        if (how === null) return json(503, { error: `the instance does not answer and cannot be stopped: ${this.o.dataDir ? "its postmaster outlived SIGKILL" : "the agent was not given its data directory"}` });
        return json(200, { how, ...this.status() });
      } finally { this.busy = false; }
    }
    if (!Number.isInteger(a.epoch) || (a.epoch as number) < 1) return json(400, { error: `epoch: a positive integer is required, got ${JSON.stringify(a.epoch)}` });
    if (typeof a.expiresAtMs !== "number" || !Number.isFinite(a.expiresAtMs)) return json(400, { error: `expiresAtMs: an absolute wall-clock time in ms is required, got ${JSON.stringify(a.expiresAtMs)}` });
    const epoch = a.epoch as number;
    if (epoch < this.epoch) return json(409, { error: `lease at epoch ${epoch} refused: this instance is at epoch ${this.epoch}` });
    this.leaseUntilMs = epoch > this.epoch ? a.expiresAtMs : Math.max(this.leaseUntilMs, a.expiresAtMs);
    this.epoch = epoch;
    // A renewed lease lifts the agent's own fence (never the controller's).
    if (this.selfFenced && this.now() < this.leaseUntilMs - (this.o.guardMs ?? 1000)) {
      try {
        await this.sql(["ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"]);
        this.selfFenced = false;
      } catch (e) { return json(503, { error: `lease granted but the agent's fence could not be lifted: ${(e as Error).message}` }); }
    }
    json(200, this.status());
  }
}

/** The postmaster running in dataDir (null: none; a stale pid file's reused pid does not count). */
function postmasterOf(dataDir: string): number | null {
  const pid = postmasterPid(dataDir);
  if (pid === null || pid <= 1) return null;
  try { return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir) && alive(pid) ? pid : null; } catch { return null; }
}

/** A process that still exists and is not a zombie. */
function alive(pid: number): boolean {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return false; }
}
