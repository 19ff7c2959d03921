// A component's signals read from a Prometheus server's query API, as Flagger and Argo Rollouts read
// their analysis metrics: each configured signal is one PromQL expression, evaluated every interval
// with GET /api/v1/query (an instant query at the controller's now), and must give one number: a
// scalar, or an instant vector with exactly one series (aggregate with sum/max/avg otherwise). No
// series, several series, NaN, an HTTP or PromQL error: no point (the signal goes stale in the risk
// engine) and the reason in status(), never a zero. With side: shadow the values feed the shadow's own
// scorer, as a scrape target's do.
// When a value was measured: an instant query answers with the newest sample Prometheus holds, which
// it may have scraped up to a scrape interval before (longer for a target that stopped answering), and
// stamps it with the query's time. A replication lag stamped so can pass for a reading taken after a
// fence when it was taken before it, and the drain would promote on it (migration/promotion.ts). So a
// point is stamped with its sample's time where that is known: from the signal's own `timestamp`
// query when it has one (e.g. min(timestamp(pg_replication_lag_seconds))), else, for a replication
// lag whose query is a plain selector, from timestamp(QUERY). An aggregate has no sample time in
// PromQL (timestamp(max(x)) is the evaluation time), so a lag read by one without `timestamp` keeps
// the query's time and start() warns about it. A sample already fed (the same one read again, or an
// older one overtaken by an on-demand read) is skipped. measureLag() reads a component's lag out of
// schedule, for the drain after a fence.
import type { Logger } from "pino";
import { repeatAfter, wallMs, type Clock } from "../../host/clock.js";
import type { RiskEngine } from "../risk/engine.js";
import { scorerFor } from "../risk/kinds.js";
import type { Side } from "../xds/resources.js";

export interface PromqlSignal {
  signal: string;
  query: string;
  /** PromQL giving when the value was sampled (Unix seconds), e.g. min(timestamp(x)); absent: see the file comment. */
  timestamp?: string;
}
export interface PromqlSource { component: string; url: string; intervalS: number; timeoutS: number; side?: Side; signals: PromqlSignal[]; bearerToken?: string }

export interface PromqlStatus {
  component: string;
  url: string;
  lastAttemptMs: number | null;
  /** Per signal: the last value read, or why there was none, and when Prometheus sampled it (absent: not known, stamped when queried). */
  signals: Record<string, { value: number | null; error: string | null; sampledAtMs?: number }>;
}

export type QueryFetch = (url: string, init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

/** A `promql:` entry that does not check: where (["promql", 0, "signals", 1, "query"]) and why. */
export class PromqlConfigError extends Error {
  constructor(readonly path: (string | number)[], readonly reason: string) {
    super(`${path.map((k, i) => (typeof k === "number" ? `[${k}]` : i ? `.${k}` : k)).join("")}: ${reason}`);
  }
}

/** Checks the configuration's `promql:` list; a PromqlConfigError names the entry and field (promql[i].signals[j].query). */
export function checkPromqlSources(list: unknown): PromqlSource[] {
  const fail = (path: (string | number)[], reason: string): never => { throw new PromqlConfigError(["promql", ...path], reason); };
  if (!Array.isArray(list)) fail([], "expected a list of sources");
  return (list as unknown[]).map((t: any, i) => {
    if (!t || typeof t !== "object" || Array.isArray(t)) fail([i], "expected an object");
    for (const k of Object.keys(t)) if (!["component", "url", "intervalS", "timeoutS", "side", "signals", "bearerTokenEnv"].includes(k)) fail([i, k], "unknown field (allowed: component, url, intervalS, timeoutS, side, signals, bearerTokenEnv)");
    if (typeof t.component !== "string" || !t.component) fail([i, "component"], "must be a non-empty string");
    let url!: URL;
    try { url = new URL(t.url); } catch { fail([i, "url"], `${JSON.stringify(t.url)} is not a URL (the Prometheus server, e.g. http://prometheus:9090)`); }
    if (url.protocol !== "http:" && url.protocol !== "https:") fail([i, "url"], `scheme ${url.protocol} is not http or https`);
    if (url.search || url.pathname.includes("/api/")) fail([i, "url"], "the server's base URL, without /api/v1/query or a query string");
    const intervalS = t.intervalS ?? 15, timeoutS = t.timeoutS ?? Math.min(10, intervalS);
    if (!(typeof intervalS === "number" && intervalS > 0)) fail([i, "intervalS"], "must be a positive number of seconds");
    if (!(typeof timeoutS === "number" && timeoutS > 0 && timeoutS <= intervalS)) fail([i, "timeoutS"], `must be positive and at most intervalS (${intervalS})`);
    if (t.side !== undefined && t.side !== "primary" && t.side !== "shadow") fail([i, "side"], `must be primary or shadow, got ${JSON.stringify(t.side)}`);
    if (!Array.isArray(t.signals) || t.signals.length === 0) fail([i, "signals"], "must list at least one {signal, query}");
    const signals = t.signals.map((x: any, j: number) => {
      if (!x || typeof x !== "object") fail([i, "signals", j], "expected {signal, query}");
      for (const k of Object.keys(x)) if (k !== "signal" && k !== "query" && k !== "timestamp") fail([i, "signals", j, k], "unknown field (allowed: signal, query, timestamp)");
      if (typeof x.signal !== "string" || !x.signal) fail([i, "signals", j, "signal"], "must be a non-empty string (a signal of the component)");
      if (typeof x.query !== "string" || !x.query.trim()) fail([i, "signals", j, "query"], "must be a PromQL expression");
      if (x.timestamp !== undefined && (typeof x.timestamp !== "string" || !x.timestamp.trim())) fail([i, "signals", j, "timestamp"], "must be a PromQL expression giving when the value was sampled, e.g. min(timestamp(my_metric))");
      return { signal: x.signal, query: x.query, ...(x.timestamp !== undefined ? { timestamp: x.timestamp } : {}) };
    });
    return { component: t.component, url: url.toString().replace(/\/$/, ""), intervalS, timeoutS, signals, ...(t.side ? { side: t.side } : {}), ...(t.bearerTokenEnv ? { bearerTokenEnv: t.bearerTokenEnv } : {}) } as PromqlSource;
  });
}

/** One number from a query API answer, or why there is none. */
export function valueOf(body: string): number | string {
  let r: any;
  try { r = JSON.parse(body); } catch { return "the answer is not JSON (is url the Prometheus server?)"; }
  if (r?.status !== "success") return `query failed: ${r?.errorType ?? "error"}: ${r?.error ?? "no detail"}`;
  const d = r.data;
  let raw: unknown;
  if (d?.resultType === "scalar") raw = d.result?.[1];
  else if (d?.resultType === "vector") {
    const n = Array.isArray(d.result) ? d.result.length : 0;
    if (n === 0) return "the query returned no series";
    if (n > 1) return `the query returned ${n} series (${d.result.slice(0, 3).map((x: any) => JSON.stringify(x.metric)).join(", ")}${n > 3 ? ", ..." : ""}): aggregate it to one (sum, max, avg)`;
    raw = d.result[0].value?.[1];
  } else return `the query gives a ${d?.resultType ?? "nothing"}, not a scalar or an instant vector`;
  const v = Number(raw);
  return Number.isFinite(v) ? v : `the query's value is ${String(raw)}, not a finite number`;
}

/** A plain vector selector (a metric name and/or label matchers, no function or operator): timestamp() of it is its sample's time. */
export function isPlainSelector(query: string): boolean {
  return /^\s*(?:[A-Za-z_:][A-Za-z0-9_:]*\s*(?:\{[^{}]*\})?|\{[^{}]*\})\s*$/.test(query);
}

export class PromqlSignalSource {
  private readonly statuses: PromqlStatus[];
  private loops: { stop(): void }[] = [];
  /** Per source and signal, the stamp of the last point fed (a sample read again, or overtaken, is skipped). */
  private readonly lastFedMs = new Map<string, number>();

  constructor(
    private readonly sources: PromqlSource[],
    private readonly engine: RiskEngine,
    private readonly clock: Clock,
    private readonly fetchFn: QueryFetch,
    private readonly log: Logger,
  ) {
    this.statuses = sources.map((s) => ({ component: s.component, url: s.url, lastAttemptMs: null, signals: {} }));
  }

  status(): PromqlStatus[] { return this.statuses.map((s) => ({ ...s, signals: { ...s.signals } })); }

  /** The query that gives the signal's sample time, or null when it has none (stamped when queried). */
  private timestampQuery(src: PromqlSource, s: PromqlSignal): string | null {
    if (s.timestamp !== undefined) return s.timestamp;
    return this.isLag(src, s) && isPlainSelector(s.query) ? `timestamp(${s.query})` : null;
  }

  private isLag(src: PromqlSource, s: PromqlSignal): boolean {
    return this.engine.kindOf(scorerFor(this.engine, src.component, src.side, s.signal), s.signal) === "replication_lag";
  }

  /** One instant query at tMs: its one number, or why there is none. */
  private async evaluate(src: PromqlSource, expr: string, tMs: number): Promise<number | string> {
    const abort = new AbortController();
    const timer = this.clock.setTimer(src.timeoutS * 1000, () => abort.abort());
    try {
      const url = `${src.url}/api/v1/query?query=${encodeURIComponent(expr)}&time=${(tMs / 1000).toFixed(3)}`;
      const res = await this.fetchFn(url, { signal: abort.signal, headers: src.bearerToken ? { authorization: `Bearer ${src.bearerToken}` } : {} });
      const body = await res.text();
      // A PromQL error comes with 400/422 and a JSON body naming it: valueOf reports it.
      if (!res.ok && !body.startsWith("{")) return `HTTP ${res.status}`;
      return valueOf(body);
    } catch (e) {
      return abort.signal.aborted ? `timed out after ${src.timeoutS} s` : (e as Error).message;
    } finally { this.clock.clearTimer(timer); }
  }

  /** The value and, where known, when it was sampled (clamped to the query's time), or why there is none. */
  private async read(src: PromqlSource, s: PromqlSignal, tMs: number): Promise<{ v: number; atMs: number | null } | string> {
    const tq = this.timestampQuery(src, s);
    const [v, at] = await Promise.all([this.evaluate(src, s.query, tMs), tq === null ? null : this.evaluate(src, tq, tMs)]);
    if (typeof v === "string") return v;
    if (at === null) return { v, atMs: null };
    if (typeof at === "string") return `timestamp query ${JSON.stringify(tq)}: ${at}`;
    const atMs = Math.round(at * 1000);
    // An explicit query that aggregates before timestamp() answers with the evaluation time.
    if (s.timestamp !== undefined && atMs === Math.round(tMs)) return `timestamp query ${JSON.stringify(tq)} gives the evaluation time, not a sample's: take timestamp() of the selector, then aggregate (e.g. min(timestamp(my_metric)))`;
    return { v, atMs: Math.min(atMs, tMs) };
  }

  /** Reads the given signals of source i at once and feeds what they gave; returns the points fed. */
  private async readSignals(i: number, signals: PromqlSignal[], tMs: number): Promise<number> {
    const src = this.sources[i]!, st = this.statuses[i]!;
    const answers = await Promise.all(signals.map((s) => this.read(src, s, tMs)));
    let fed = 0;
    signals.forEach((s, j) => {
      const a = answers[j]!;
      if (typeof a === "string") { st.signals[s.signal] = { value: null, error: a }; this.log.debug({ component: src.component, signal: s.signal, err: a }, "promql signal missing"); return; }
      const stamp = a.atMs ?? tMs;
      const entry = { value: a.v, error: null, ...(a.atMs !== null ? { sampledAtMs: a.atMs } : {}) };
      const key = `${i}\u0000${s.signal}`;
      // The same sample read again, or one older than what an on-demand read already fed: nothing new.
      if (stamp <= (this.lastFedMs.get(key) ?? -Infinity)) { if (stamp === this.lastFedMs.get(key)) st.signals[s.signal] = entry; return; }
      const to = scorerFor(this.engine, src.component, src.side, s.signal);
      const err = this.engine.check(to, s.signal, stamp, a.v);
      if (err) { st.signals[s.signal] = { ...entry, error: err }; return; }
      this.engine.observe(to, s.signal, stamp, a.v);
      this.lastFedMs.set(key, stamp);
      st.signals[s.signal] = entry;
      fed++;
    });
    return fed;
  }

  /** Evaluates every signal of source i once; returns the points fed to the risk engine. */
  async poll(i: number): Promise<number> {
    const tMs = wallMs(this.clock);
    this.statuses[i]!.lastAttemptMs = tMs;
    return this.readSignals(i, this.sources[i]!.signals, tMs);
  }

  /**
   * Reads the component's replication lag now, out of schedule (the drain after a fence waits for a
   * reading sampled after it): every source of the component evaluates its replication_lag signals
   * once. Resolves to the points fed; what fails is in status(), as in a scheduled poll.
   */
  async measureLag(component: string): Promise<number> {
    const tMs = wallMs(this.clock);
    const reads = this.sources.map((src, i) => {
      const lag = src.component === component ? src.signals.filter((s) => this.isLag(src, s)) : [];
      return lag.length ? this.readSignals(i, lag, tMs) : Promise.resolve(0);
    });
    return (await Promise.all(reads)).reduce((a, b) => a + b, 0);
  }

  start(): void {
    this.sources.forEach((src, i) => src.signals.forEach((s, j) => {
      if (this.isLag(src, s) && this.timestampQuery(src, s) === null) {
        this.log.warn({ component: src.component, signal: s.signal, query: s.query }, `promql[${i}].signals[${j}]: a replication lag read through an aggregate has no sample time, so it is stamped when queried and may be up to a Prometheus scrape interval older: the drain after a fence could take a reading from before the fence. Set timestamp (e.g. min(timestamp(SELECTOR))) or query a plain selector`);
      }
    }));
    this.loops = this.sources.map((s, i) => repeatAfter(this.clock, s.intervalS * 1000, () => this.poll(i)));
  }
  stop(): void { for (const l of this.loops) l.stop(); this.loops = []; }
}
