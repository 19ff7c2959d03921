// Split-brain detection for two PostgreSQL nodes: TwoWriterChecker samples both on an interval (one
// persistent client per node) and records every sample in which both would accept writes, with
// per-node writable and unreachable counts (TwoWriterResult). A PgNode (pg-pair.ts) is a WriterTarget.
import { performance } from "node:perf_hooks";
import pg from "pg";

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
