// A component's signals read from a Prometheus server's query API, as Flagger and Argo Rollouts read
// their analysis metrics: each configured signal is one PromQL expression, evaluated every interval
// with GET /api/v1/query (an instant query at the controller's now), and must give one number: a
// scalar, or an instant vector with exactly one series (aggregate with sum/max/avg otherwise). No
// series, several series, NaN, an HTTP or PromQL error: no point (the signal goes stale in the risk
// engine) and the reason in status(), never a zero. With side: shadow the values feed the shadow's own
// scorer, as a scrape target's do.
import type { Logger } from "pino";
import { repeatAfter, wallMs, type Clock } from "../../host/clock.js";
import type { RiskEngine } from "../risk/engine.js";
import { scorerFor } from "../risk/kinds.js";
import type { Side } from "../xds/resources.js";

export interface PromqlSignal { signal: string; query: string }
export interface PromqlSource { component: string; url: string; intervalS: number; timeoutS: number; side?: Side; signals: PromqlSignal[]; bearerToken?: string }

export interface PromqlStatus {
  component: string;
  url: string;
  lastAttemptMs: number | null;
  /** Per signal: the last value read, or why there was none. */
  signals: Record<string, { value: number | null; error: string | null }>;
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
      for (const k of Object.keys(x)) if (k !== "signal" && k !== "query") fail([i, "signals", j, k], "unknown field (allowed: signal, query)");
      if (typeof x.signal !== "string" || !x.signal) fail([i, "signals", j, "signal"], "must be a non-empty string (a signal of the component)");
      if (typeof x.query !== "string" || !x.query.trim()) fail([i, "signals", j, "query"], "must be a PromQL expression");
      return { signal: x.signal, query: x.query };
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

export class PromqlSignalSource {
  private readonly statuses: PromqlStatus[];
  private loops: { stop(): void }[] = [];

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

  /** Evaluates every signal of source i once; returns the points fed to the risk engine. */
  async poll(i: number): Promise<number> {
    const src = this.sources[i]!, st = this.statuses[i]!;
    const tMs = wallMs(this.clock);
    st.lastAttemptMs = tMs;
    const answers = await Promise.all(src.signals.map(async (s) => {
      const abort = new AbortController();
      const timer = this.clock.setTimer(src.timeoutS * 1000, () => abort.abort());
      try {
        const url = `${src.url}/api/v1/query?query=${encodeURIComponent(s.query)}&time=${(tMs / 1000).toFixed(3)}`;
        const res = await this.fetchFn(url, { signal: abort.signal, headers: src.bearerToken ? { authorization: `Bearer ${src.bearerToken}` } : {} });
        const body = await res.text();
        // A PromQL error comes with 400/422 and a JSON body naming it: valueOf reports it.
        if (!res.ok && !body.startsWith("{")) return `HTTP ${res.status}`;
        return valueOf(body);
      } catch (e) {
        return abort.signal.aborted ? `timed out after ${src.timeoutS} s` : (e as Error).message;
      } finally { this.clock.clearTimer(timer); }
    }));
    let fed = 0;
    src.signals.forEach((s, j) => {
      const v = answers[j]!;
      if (typeof v === "string") { st.signals[s.signal] = { value: null, error: v }; this.log.debug({ component: src.component, signal: s.signal, err: v }, "promql signal missing"); return; }
      const to = scorerFor(this.engine, src.component, src.side, s.signal);
      const err = this.engine.check(to, s.signal, tMs, v);
      if (err) { st.signals[s.signal] = { value: v, error: err }; return; }
      this.engine.observe(to, s.signal, tMs, v);
      st.signals[s.signal] = { value: v, error: null };
      fed++;
    });
    return fed;
  }

  start(): void { this.loops = this.sources.map((s, i) => repeatAfter(this.clock, s.intervalS * 1000, () => this.poll(i))); }
  stop(): void { for (const l of this.loops) l.stop(); this.loops = []; }
}
