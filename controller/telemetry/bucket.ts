// One time bucket of one component in the telemetry store (store.ts): what it holds, merging a
// report's entry for the component into it, sealing it, and the summary sealing hands to the store's
// listeners. Per target it keeps the counts and a latency sketch, compacted when the bucket seals (a
// late report reopens, merges and compacts it again); the summary gives each target's requests, error
// rate and p50/p99, and the mirrored reads' divergence. It also keeps the failover floor's counters and,
// per proxy (node id + worker id) whose report landed in it, whether that proxy's floor was ejecting
// (the store caps these at maxProxiesPerBucket); the primary's requests, errors and latency per node id
// (voices.ts), whose weighted median across nodes (`robust`) and outlier nodes (`outliers`) the summary
// carries; and who called the component (the filters' callers, bounded) for the impact analysis.
import { CompactSketch, LatencySketch } from "./sketch.js";
import {
  FLOOR_COUNTERS, OTHER_CALLER, TARGETS, addCaller, addCounts, emptyFloor, emptyTarget,
  type CallerTotals, type ComponentTotals, type FloorTotals, type TargetName, type TargetTotals,
} from "./report.js";
import { robustSummary, type ProxyOutlier, type RobustSummary, type Voice } from "./voices.js";

/** A target's totals in one bucket; the sketch is compacted when the bucket seals. */
type TargetBucket = Omit<TargetTotals, "latency"> & { latency: LatencySketch | CompactSketch };

export interface Bucket {
  startMs: number;
  sealed: boolean;
  targets: Map<TargetName, TargetBucket>;
  consistency: Record<string, number>;
  reads: number;
  writes: number;
  shadowWeightBp: number;
  floor: FloorTotals;
  /** Proxy (node/worker) -> its floor was ejecting, as of its latest report in this bucket. */
  proxies: Map<string, boolean>;
  /** Node id -> its primary requests, errors and (until sealed) latency in this bucket. */
  voices: Map<string, Voice>;
  /** Who called the component (the filters' callers), at most MAX_CALLERS_PER_BUCKET names, the rest as OTHER_CALLER. */
  callers: Map<string, CallerTotals>;
}

/** Distinct callers one bucket of one component keeps by name (each proxy reports its own top-K). */
export const MAX_CALLERS_PER_BUCKET = 256;

export interface TargetSummary {
  requests: number;
  /** (5xx + resets + timeouts) / requests; NaN without requests. */
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
}

export interface BucketSummary {
  component: string;
  startMs: number;
  endMs: number;
  targets: Partial<Record<TargetName, TargetSummary>>;
  /** Mirrored reads whose shadow answer differed (status or body) / mirrored reads compared. */
  divergence: number;
  mirrored: number;
  shadowWeightBp: number;
  /** The primary's signals with one voice per proxy node; null when no node had enough requests. */
  robust: RobustSummary | null;
  outliers: ProxyOutlier[];
  /** Who called the component in the bucket (absent when the filters record no callers). */
  callers?: ({ caller: string } & CallerTotals)[];
}

export function emptyBucket(startMs: number): Bucket {
  return { startMs, sealed: false, targets: new Map(), consistency: {}, reads: 0, writes: 0, shadowWeightBp: 0, floor: emptyFloor(), proxies: new Map(), voices: new Map(), callers: new Map() };
}

export function addLatency(into: LatencySketch, from: LatencySketch | CompactSketch): void {
  if (from instanceof CompactSketch) from.addTo(into); else into.merge(from);
}

export function mergeInto(b: Bucket, c: ComponentTotals): void {
  b.reads += c.reads; b.writes += c.writes; b.shadowWeightBp = c.shadowWeightBp;
  for (const [name, t] of c.callers) {
    addCaller(b.callers, b.callers.has(name) || b.callers.size < MAX_CALLERS_PER_BUCKET ? name : OTHER_CALLER, t);
  }
  for (const k of FLOOR_COUNTERS) b.floor[k] += c.floor[k];
  for (const [k, v] of Object.entries(c.consistency)) b.consistency[k] = (b.consistency[k] ?? 0) + v;
  for (const [tn, t] of c.targets) {
    let acc = b.targets.get(tn);
    if (!acc) { acc = emptyTarget(); b.targets.set(tn, acc); }
    if (acc.latency instanceof CompactSketch) {
      // A late report for a sealed bucket: reopen its sketch, merge, seal again.
      const dense = new LatencySketch();
      acc.latency.addTo(dense);
      dense.merge(t.latency);
      acc.latency = CompactSketch.from(dense);
    } else acc.latency.merge(t.latency);
    addCounts(acc, t);
  }
}

export function seal(b: Bucket): void {
  b.sealed = true;
  for (const v of b.voices.values()) v.latency = null; // per-node latency is only needed for the summary
  for (const t of b.targets.values()) if (t.latency instanceof LatencySketch) t.latency = CompactSketch.from(t.latency);
}

export function summarize(component: string, b: Bucket, bucketMs: number, minProxyRequests: number, outlierMargin: number): BucketSummary {
  const targets: Partial<Record<TargetName, TargetSummary>> = {};
  for (const tn of TARGETS) {
    const t = b.targets.get(tn);
    if (!t) continue;
    const dense = new LatencySketch();
    addLatency(dense, t.latency);
    const errors = t.status[4]! + t.resets + t.timeouts;
    targets[tn] = { requests: t.requests, errorRate: t.requests ? errors / t.requests : NaN, p50Ms: dense.quantile(0.5) / 1000, p99Ms: dense.quantile(0.99) / 1000 };
  }
  const c = b.consistency;
  const compared = (c.match ?? 0) + (c.statusMismatch ?? 0) + (c.bodyMismatch ?? 0);
  return {
    component, startMs: b.startMs, endMs: b.startMs + bucketMs, targets,
    divergence: compared ? ((c.statusMismatch ?? 0) + (c.bodyMismatch ?? 0)) / compared : NaN,
    mirrored: c.mirrored ?? 0, shadowWeightBp: b.shadowWeightBp,
    ...robustSummary(b.voices, minProxyRequests, outlierMargin),
    ...(b.callers.size ? { callers: [...b.callers].map(([caller, t]) => ({ caller, ...t })) } : {}),
  };
}
