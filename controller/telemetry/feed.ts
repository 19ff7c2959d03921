// From sealed telemetry buckets to risk signals: the primary's request p99 latency and error rate
// and the mirrored reads' divergence, for each component that configures signals with these names;
// and the shadow's own p99 and error rate (its live reads, else its mirrored ones) to the shadow's
// scorer (shadowKey), so the side that may soon serve everything is scored as well.
// A bucket without requests feeds nothing (no traffic is not "zero errors").
// One proxy is one voice: the error rate and p99 fed are the weighted medians across proxy nodes
// (BucketSummary.robust, see robustSummary in voices.ts), so one proxy reporting 100 % errors among
// healthy ones does not move the signal; only when no node reached the store's minProxyRequests is the
// pooled value used (too little traffic for any node to vote).
import type { Logger } from "pino";
import { shadowKey, type RiskEngine } from "../risk/engine.js";
import type { BucketSummary } from "./bucket.js";

export const REQUEST_SIGNALS = { latency: "request_latency_p99_ms", errors: "request_error_rate", divergence: "mirror_divergence" } as const;

export function feedRisk(engine: RiskEngine, s: BucketSummary): number {
  const p = s.targets.PRIMARY;
  let fed = 0;
  const putTo = (component: string, signal: string, v: number) => {
    if (!Number.isFinite(v) || engine.check(component, signal, s.endMs, v) !== null) return;
    engine.observe(component, signal, s.endMs, v);
    fed++;
  };
  const put = (signal: string, v: number) => putTo(s.component, signal, v);
  if (p && p.requests > 0) {
    const r = s.robust;
    put(REQUEST_SIGNALS.latency, r && Number.isFinite(r.p99Ms) ? r.p99Ms : p.p99Ms);
    put(REQUEST_SIGNALS.errors, r ? r.errorRate : p.errorRate);
  }
  if (s.mirrored > 0) put(REQUEST_SIGNALS.divergence, s.divergence);
  const live = s.targets.SHADOW_LIVE, mirror = s.targets.SHADOW_MIRROR;
  const sh = live && live.requests > 0 ? live : mirror && mirror.requests > 0 ? mirror : null;
  if (sh) {
    const key = shadowKey(s.component);
    if (engine.hasSignal(key, REQUEST_SIGNALS.latency)) putTo(key, REQUEST_SIGNALS.latency, sh.p99Ms);
    if (engine.hasSignal(key, REQUEST_SIGNALS.errors)) putTo(key, REQUEST_SIGNALS.errors, sh.errorRate);
  }
  return fed;
}

/**
 * Logs the proxies flagged as outliers in sealed buckets (BucketSummary.outliers) at warn, at most once
 * per component and node per `everyMs` (default 60 s); remembers at most 10,000 pairs.
 */
export function outlierLogger(log: Pick<Logger, "warn">, everyMs = 60_000): (s: BucketSummary) => void {
  const last = new Map<string, number>();
  return (s) => {
    for (const o of s.outliers) {
      const key = `${s.component}\u0000${o.node}`;
      const at = last.get(key);
      if (at !== undefined && s.startMs - at < everyMs) continue;
      last.delete(key);
      last.set(key, s.startMs);
      if (last.size > 10_000) last.delete(last.keys().next().value!);
      log.warn({ component: s.component, node: o.node, errorRate: o.errorRate, medianErrorRate: o.medianErrorRate, requests: o.requests, bucketStartMs: s.startMs },
        "telemetry: one proxy's error rate is an outlier against the others (a proxy or zone problem, not counted as the component's)");
    }
  };
}
