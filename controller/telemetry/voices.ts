// One voice per proxy node: each telemetry bucket keeps every node's primary requests, errors and
// latency, and its sealed summary carries the weighted median across nodes (what the risk engine is
// fed, so one proxy cannot outvote the rest) and the nodes whose error rate stands out (a proxy or
// zone problem). The store (store.ts) calls addVoice on ingest; sealing a bucket (bucket.ts) calls robustSummary.
import { LatencySketch } from "./sketch.js";
import type { TargetTotals } from "./report.js";

/** A node whose primary error rate in one bucket stands out against the other nodes' (a proxy or zone problem). */
export interface ProxyOutlier { node: string; requests: number; errorRate: number; medianErrorRate: number }

/** The component's request signals aggregated across proxies (each node one voice). */
export interface RobustSummary {
  /** Voices: nodes with at least minProxyRequests, plus one for the low-traffic nodes pooled if they reach it. */
  voices: number;
  /** Weighted median of the voices' error rates (weight: 1 per node; the low-traffic pool weighs as many nodes as it pools). */
  errorRate: number;
  /** Weighted median of the voices' p99 latency, ms (NaN when no voice has latencies). */
  p99Ms: number;
}

export interface Voice { requests: number; errors: number; latency: LatencySketch | null }

/** Nodes past maxVoicesPerBucket in one bucket share this one voice. */
export const OVERFLOW_VOICE = "(untracked proxies)";
const LOW_TRAFFIC_VOICE = "(low-traffic proxies)";

/** Adds a node's primary requests, errors and (until its bucket is sealed) latency to its voice. */
export function addVoice(voices: Map<string, Voice>, sealed: boolean, node: string, t: TargetTotals): void {
  let v = voices.get(node);
  if (!v) { v = { requests: 0, errors: 0, latency: null }; voices.set(node, v); }
  v.requests += t.requests;
  v.errors += t.status[4]! + t.resets + t.timeouts;
  // The sketch keeps only the buckets in use (sketch.ts), so merging in place stays small.
  if (t.latency.count > 0 && !sealed) (v.latency ??= new LatencySketch()).merge(t.latency);
}

/** The smallest value whose cumulative weight reaches half the total (values sorted ascending). */
function weightedMedian(xs: { v: number; w: number }[]): number {
  const s = xs.filter((x) => Number.isFinite(x.v) && x.w > 0).sort((a, b) => a.v - b.v);
  if (s.length === 0) return NaN;
  const half = s.reduce((a, x) => a + x.w, 0) / 2;
  let acc = 0;
  for (const x of s) { acc += x.w; if (acc >= half) return x.v; }
  return s[s.length - 1]!.v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * One voice per proxy node: nodes with at least `minRequests` primary requests each vote with their own
 * error rate and p99, with weight 1 whatever their traffic, so a node cannot outvote the others by
 * reporting more requests; the other nodes are pooled into one voice (its rate and p99 over their
 * requests together) that weighs as many nodes as it pools, if together they reach `minRequests`.
 * The component's value is the weighted median (on a tie, the lower value). Outliers: real nodes whose
 * error rate exceeds the median of the voices by more than max(margin, 3 x 1.4826 x MAD).
 */
export function robustSummary(voices: Map<string, Voice>, minRequests: number, margin: number): { robust: RobustSummary | null; outliers: ProxyOutlier[] } {
  const vs: { node: string; requests: number; errors: number; p99Ms: number; real: boolean; w: number }[] = [];
  const low = { requests: 0, errors: 0, latency: new LatencySketch(), nodes: 0 };
  const p99 = (l: LatencySketch | null) => (!l || l.count === 0 ? NaN : l.quantile(0.99) / 1000);
  for (const [node, v] of voices) {
    if (v.requests >= minRequests) vs.push({ node, requests: v.requests, errors: v.errors, p99Ms: p99(v.latency), real: node !== OVERFLOW_VOICE, w: 1 });
    else {
      low.requests += v.requests; low.errors += v.errors; low.nodes++;
      if (v.latency) low.latency.merge(v.latency);
    }
  }
  if (low.requests >= minRequests) vs.push({ node: LOW_TRAFFIC_VOICE, requests: low.requests, errors: low.errors, p99Ms: p99(low.latency), real: false, w: low.nodes });
  if (vs.length === 0) return { robust: null, outliers: [] };
  const rate = (x: { requests: number; errors: number }) => x.errors / x.requests;
  const robust: RobustSummary = {
    voices: vs.length,
    errorRate: weightedMedian(vs.map((x) => ({ v: rate(x), w: x.w }))),
    p99Ms: weightedMedian(vs.map((x) => ({ v: x.p99Ms, w: x.w }))),
  };
  const outliers: ProxyOutlier[] = [];
  if (vs.length >= 3) {
    const rates = vs.map(rate);
    const m = median(rates);
    const mad = median(rates.map((r) => Math.abs(r - m)));
    const limit = m + Math.max(margin, 3 * 1.4826 * mad);
    for (const x of vs) if (x.real && rate(x) > limit) outliers.push({ node: x.node, requests: x.requests, errorRate: rate(x), medianErrorRate: m });
  }
  return { robust, outliers };
}
