// Pulling component metrics from Prometheus text-format endpoints (node_exporter, postgres_exporter,
// an application's /metrics): each configured signal selects one metric family by name and label
// matchers, aggregates the matching series (sum, max or avg), and optionally turns a counter into a
// per-second rate or a histogram into a quantile over the scrape interval. Parsing is done by
// parse-prometheus-text-format. A failed scrape or a metric that is not in the response yields no
// point (so the signal goes stale in the risk engine) and is recorded in status(): never a zero.
// A target scraped from the shadow (side: shadow) feeds the shadow's own scorer (shadowKey) with the
// shadow's own signals (its CPU, memory, queue) and the component with the pair's (its replication lag).
// Each scrape's round trip is also a network-latency point (probe_rtt_ms) for the side it reached.
// A plain value (no rate, no quantile) whose series carry a timestamp (Prometheus's /federate, the
// CloudWatch exporter, anything that exposes when it measured) is stamped with the oldest of them,
// never later than the scrape: a replication lag an exporter measured minutes ago must not pass for a
// reading taken after a fence. The same sample scraped again is not fed twice.
import parsePrometheusTextFormat, { type PromFamily, type PromSample } from "parse-prometheus-text-format";
import type { Logger } from "pino";
import { repeatAfter, wallMs, type Clock } from "../../host/clock.js";
import { shadowKey, type RiskEngine } from "../risk/engine.js";
import { scorerFor } from "../risk/kinds.js";
import type { Side } from "../xds/resources.js";

export interface ScrapeSignal {
  signal: string;
  metric: string;
  labels?: Record<string, string>;
  aggregate?: "sum" | "max" | "avg";
  /** Counter: report the per-second increase between scrapes. */
  rate?: boolean;
  /** Histogram (or summary): report this quantile; for a histogram, over the scrape interval. */
  quantile?: number;
  /** Multiply the value (e.g. 1000 to turn seconds into ms). */
  scale?: number;
}

/** side: whose /metrics this is; a target with a side is also that side's active health check. */
/** The signal (kind network_latency) a scrape's round trip feeds, for the side scraped: an active probe of its network path. */
export const PROBE_RTT_SIGNAL = "probe_rtt_ms";

export interface ScrapeTarget { component: string; url: string; intervalS: number; timeoutS: number; signals: ScrapeSignal[]; side?: Side }

export interface TargetStatus {
  component: string;
  url: string;
  lastAttemptMs: number | null;
  lastSuccessMs: number | null;
  lastError: string | null;
  /** Failed scrapes in a row (the active health check, for a target with a side). */
  consecutiveFailures: number;
  side: Side | null;
  /** Signals absent from the last successful scrape, with the reason. */
  missing: Record<string, string>;
}

export type Fetch = (url: string, init: { signal: AbortSignal }) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

export function checkTargets(targets: unknown): ScrapeTarget[] {
  if (!Array.isArray(targets)) throw new Error("scrape: expected a list of targets");
  return targets.map((t: any, i) => {
    const w = `scrape[${i}]`;
    if (!t || typeof t !== "object") throw new Error(`${w}: expected an object`);
    if (typeof t.component !== "string" || !t.component) throw new Error(`${w}.component: must be a non-empty string`);
    let url: URL;
    try { url = new URL(t.url); } catch { throw new Error(`${w}.url: ${JSON.stringify(t.url)} is not a URL`); }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`${w}.url: scheme ${url.protocol} is not http or https`);
    const intervalS = t.intervalS ?? 15, timeoutS = t.timeoutS ?? Math.min(10, intervalS);
    if (!(intervalS > 0)) throw new Error(`${w}.intervalS: must be a positive number of seconds`);
    if (!(timeoutS > 0 && timeoutS <= intervalS)) throw new Error(`${w}.timeoutS: must be positive and at most intervalS (${intervalS})`);
    if (t.side !== undefined && t.side !== "primary" && t.side !== "shadow") throw new Error(`${w}.side: must be primary or shadow, got ${JSON.stringify(t.side)}`);
    if (!Array.isArray(t.signals) || t.signals.length === 0) throw new Error(`${w}.signals: must list at least one signal`);
    const signals = t.signals.map((s: any, j: number) => {
      const sw = `${w}.signals[${j}]`;
      if (typeof s.signal !== "string" || !s.signal) throw new Error(`${sw}.signal: must be a non-empty string`);
      if (typeof s.metric !== "string" || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(s.metric)) throw new Error(`${sw}.metric: ${JSON.stringify(s.metric)} is not a Prometheus metric name`);
      if (s.aggregate !== undefined && !["sum", "max", "avg"].includes(s.aggregate)) throw new Error(`${sw}.aggregate: must be sum, max or avg`);
      if (s.quantile !== undefined && !(s.quantile >= 0 && s.quantile <= 1)) throw new Error(`${sw}.quantile: must be in [0, 1]`);
      if (s.quantile !== undefined && s.rate) throw new Error(`${sw}: rate and quantile cannot be combined`);
      if (s.labels !== undefined && (typeof s.labels !== "object" || Object.values(s.labels).some((v) => typeof v !== "string"))) throw new Error(`${sw}.labels: must map label names to strings`);
      if (s.scale !== undefined && !Number.isFinite(s.scale)) throw new Error(`${sw}.scale: must be a number`);
      return s as ScrapeSignal;
    });
    return { component: t.component, url: url.toString(), intervalS, timeoutS, signals, ...(t.side ? { side: t.side as Side } : {}) };
  });
}

const matches = (m: PromSample, labels: Record<string, string> | undefined) =>
  !labels || Object.entries(labels).every(([k, v]) => m.labels?.[k] === v);

/** Cumulative histogram buckets to a quantile, interpolating linearly within a bucket (as histogram_quantile does). */
export function histogramQuantile(q: number, buckets: [number, number][]): number {
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (!(total > 0)) return NaN;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const [le, c] of buckets) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(c - prevCount, 1e-12);
    }
    prevLe = le; prevCount = c;
  }
  return prevLe;
}

type Previous = Map<string, { tMs: number; value: number; buckets?: Map<number, number> }>;

/** One signal's value from a parsed scrape, or the reason there is none. */
export function extract(families: PromFamily[], s: ScrapeSignal, tMs: number, prev: Previous): number | string {
  const fam = families.find((f) => f.name === s.metric);
  if (!fam) return `metric ${s.metric} not in the response`;
  const series = fam.metrics.filter((m) => matches(m, s.labels));
  if (series.length === 0) return `no ${s.metric} series matches ${JSON.stringify(s.labels ?? {})}`;
  const scale = s.scale ?? 1;
  if (s.quantile !== undefined) {
    if (fam.type === "SUMMARY") {
      const vals = series.map((m) => Number(m.quantiles?.[String(s.quantile)])).filter(Number.isFinite);
      if (!vals.length) return `summary ${s.metric} has no quantile ${s.quantile}`;
      return Math.max(...vals) * scale;
    }
    if (fam.type !== "HISTOGRAM") return `${s.metric} is a ${fam.type.toLowerCase()}, not a histogram or summary`;
    const cum = new Map<number, number>();
    for (const m of series) for (const [le, c] of Object.entries(m.buckets ?? {})) {
      const k = le === "+Inf" ? Infinity : Number(le);
      cum.set(k, (cum.get(k) ?? 0) + Number(c));
    }
    const p = prev.get(s.signal);
    prev.set(s.signal, { tMs, value: 0, buckets: cum });
    if (!p?.buckets) return "first scrape of a histogram: a quantile needs two";
    const delta: [number, number][] = [...cum].map(([le, c]) => [le, c - (p.buckets!.get(le) ?? 0)]);
    if (delta.some(([, c]) => c < 0)) return "histogram counters were reset";
    const v = histogramQuantile(s.quantile, delta);
    return Number.isFinite(v) ? v * scale : "no observations in the histogram since the last scrape";
  }
  const values = series.map((m) => Number(m.value));
  if (values.some((v) => Number.isNaN(v))) return `${s.metric} has a value that is not a number`;
  const agg = s.aggregate ?? "sum";
  let v = agg === "max" ? Math.max(...values) : values.reduce((a, b) => a + b, 0) / (agg === "avg" ? values.length : 1);
  if (s.rate) {
    const p = prev.get(s.signal);
    prev.set(s.signal, { tMs, value: v });
    if (!p) return "first scrape of a counter: a rate needs two";
    if (v < p.value) return "counter was reset";
    v = ((v - p.value) / Math.max(tMs - p.tMs, 1)) * 1000;
  }
  return v * scale;
}

/**
 * When a plain value was measured, if its series say (the text format's optional timestamp): the
 * oldest matching series' time in ms, null when none carries one or the value is a rate or quantile
 * (those are stamped with the scrapes they are computed between).
 */
export function sampleTimeOf(families: PromFamily[], s: ScrapeSignal): number | null {
  if (s.rate || s.quantile !== undefined) return null;
  const fam = families.find((f) => f.name === s.metric);
  let at = Infinity;
  for (const m of fam?.metrics ?? []) {
    if (!matches(m, s.labels) || m.timestamp_ms === undefined) continue;
    const t = Number(m.timestamp_ms);
    if (Number.isFinite(t) && t < at) at = t;
  }
  return at === Infinity ? null : at;
}

export class PrometheusScraper {
  private readonly prev = new Map<number, Previous>();
  /** When the newest on-demand lag read fed each "component\u0000signal" (measureLag), by its fetch start. */
  private readonly readOnDemandMs = new Map<string, number>();
  /** The newest sample time fed per "component\u0000signal", for values whose series carry one. */
  private readonly sampledMs = new Map<string, number>();
  private readonly statuses: TargetStatus[];
  private loops: { stop(): void }[] = [];

  constructor(
    private readonly targets: ScrapeTarget[],
    private readonly engine: RiskEngine,
    private readonly clock: Clock,
    private readonly fetchFn: Fetch,
    private readonly log: Logger,
  ) {
    this.statuses = targets.map((t) => ({ component: t.component, url: t.url, lastAttemptMs: null, lastSuccessMs: null, lastError: null, consecutiveFailures: 0, side: t.side ?? null, missing: {} }));
  }

  status(): TargetStatus[] { return this.statuses.map((s) => ({ ...s, missing: { ...s.missing } })); }

  /** The active health check of a side: the most failed scrapes in a row among its targets; null without one. */
  probeFailures(component: string, side: Side): number | null {
    let out: number | null = null;
    for (const s of this.statuses) if (s.component === component && s.side === side) out = Math.max(out ?? 0, s.consecutiveFailures);
    return out;
  }


  /** Fetches target i's exposition, or throws with the reason (its timeout named). */
  private async fetchText(t: ScrapeTarget): Promise<string> {
    const abort = new AbortController();
    const timer = this.clock.setTimer(t.timeoutS * 1000, () => abort.abort());
    try {
      const res = await this.fetchFn(t.url, { signal: abort.signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await res.text();
    } catch (e) {
      throw new Error(abort.signal.aborted ? `timed out after ${t.timeoutS} s` : (e as Error).message);
    } finally {
      this.clock.clearTimer(timer);
    }
  }

  /**
   * Reads the component's replication lag now, out of schedule (a write move's drain after its fence
   * waits for a reading begun after the fence): each of its targets with a signal of kind
   * replication_lag that is a plain gauge is fetched once, and only that signal is fed, stamped when
   * the fetch began (or with its sample's time, when its series carry one). Rates and quantiles are
   * left to the scheduled scrapes (an extra scrape would shorten their interval). Nothing else of the
   * target is fed and its status is not touched: a failure here is logged, and the scheduled scrape
   * still runs. Resolves to the points fed.
   */
  async measureLag(component: string): Promise<number> {
    const reads: Promise<number>[] = [];
    for (const t of this.targets) {
      if (t.component !== component) continue;
      const lagSignals = t.signals.filter((s) => !s.rate && s.quantile === undefined && this.engine.kindOf(component, s.signal) === "replication_lag");
      if (lagSignals.length === 0) continue;
      reads.push((async () => {
        const tMs = wallMs(this.clock);
        let families: PromFamily[];
        try { families = parsePrometheusTextFormat(await this.fetchText(t)); }
        catch (e) { this.log.warn({ url: t.url, component, err: (e as Error).message }, "replication lag read failed"); return 0; }
        let fed = 0;
        for (const s of lagSignals) {
          const v = extract(families, s, tMs, new Map());
          const key = `${component}\u0000${s.signal}`, p = this.stamp(families, s, tMs, key);
          if (typeof v === "string" || p === null || this.engine.check(component, s.signal, p.at, v) !== null) continue;
          this.engine.observe(component, s.signal, p.at, v);
          this.readOnDemandMs.set(key, p.at);
          if (p.sampled) this.sampledMs.set(key, p.at);
          fed++;
        }
        return fed;
      })());
    }
    return (await Promise.all(reads)).reduce((a, b) => a + b, 0);
  }

  /** Scrapes target i once and feeds every signal it could read into the risk engine. */
  async scrape(i: number): Promise<number> {
    const t = this.targets[i]!, st = this.statuses[i]!;
    const tMs = wallMs(this.clock);
    st.lastAttemptMs = tMs;
    let text: string;
    try {
      text = await this.fetchText(t);
    } catch (e) {
      st.lastError = (e as Error).message;
      st.consecutiveFailures++;
      this.log.warn({ url: t.url, component: t.component, err: st.lastError }, "scrape failed");
      return 0;
    }
    st.consecutiveFailures = 0; // it answered: the process is up (what it says is checked below)
    // The scrape itself is an active probe of the path to that side: its round trip feeds a
    // network_latency signal named PROBE_RTT_SIGNAL, when the component configures one.
    const rttMs = wallMs(this.clock) - tMs;
    const probeTo = t.side === "shadow" ? shadowKey(t.component) : t.component;
    if (this.engine.hasSignal(probeTo, PROBE_RTT_SIGNAL) && this.engine.check(probeTo, PROBE_RTT_SIGNAL, tMs, rttMs) === null) this.engine.observe(probeTo, PROBE_RTT_SIGNAL, tMs, rttMs);
    let families: PromFamily[];
    try { families = parsePrometheusTextFormat(text); }
    catch (e) { st.lastError = `not Prometheus text format: ${(e as Error).message}`; return 0; }
    st.lastError = null;
    st.lastSuccessMs = tMs;
    st.missing = {};
    let prev = this.prev.get(i);
    if (!prev) { prev = new Map(); this.prev.set(i, prev); }
    let fed = 0;
    for (const s of t.signals) {
      const v = extract(families, s, tMs, prev);
      if (typeof v === "string") { st.missing[s.signal] = v; continue; }
      // The shadow's own signals (its CPU, its queue) go to the shadow's scorer; the pair's (its lag) to the component.
      const to = scorerFor(this.engine, t.component, t.side, s.signal);
      // An on-demand lag read that began after this scrape and finished first fed a fresher value of
      // this gauge, or this is a sample already fed: superseded, not an error.
      const key = `${to}\u0000${s.signal}`, p = this.stamp(families, s, tMs, key);
      if (p === null) continue;
      const err = this.engine.check(to, s.signal, p.at, v);
      if (err) { st.missing[s.signal] = err; continue; }
      this.engine.observe(to, s.signal, p.at, v);
      if (p.sampled) this.sampledMs.set(key, p.at);
      fed++;
    }
    return fed;
  }

  /**
   * A point's stamp: its sample's time when its series carry one (never after the fetch began at
   * tMs), else tMs; null when it is nothing new (a sample already fed, or older than what an
   * on-demand read fed).
   */
  private stamp(families: PromFamily[], s: ScrapeSignal, tMs: number, key: string): { at: number; sampled: boolean } | null {
    const t = sampleTimeOf(families, s), sampled = t !== null;
    const at = sampled ? Math.min(t, tMs) : tMs;
    if ((this.readOnDemandMs.get(key) ?? -Infinity) > at) return null;
    if (sampled && at <= (this.sampledMs.get(key) ?? -Infinity)) return null;
    return { at, sampled };
  }

  start(): void { this.loops = this.targets.map((t, i) => repeatAfter(this.clock, t.intervalS * 1000, () => this.scrape(i))); }

  stop(): void { for (const l of this.loops) l.stop(); this.loops = []; }
}
