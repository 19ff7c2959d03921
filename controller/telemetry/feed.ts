// From sealed telemetry buckets to risk signals: the primary's request p99 latency and error rate
// and the mirrored reads' divergence, for each component that configures signals with these names.
// A bucket without requests feeds nothing (no traffic is not "zero errors").
import type { RiskEngine } from "../risk/engine.js";
import type { BucketSummary } from "./store.js";

export const REQUEST_SIGNALS = { latency: "request_latency_p99_ms", errors: "request_error_rate", divergence: "mirror_divergence" } as const;

export function feedRisk(engine: RiskEngine, s: BucketSummary): number {
  const p = s.targets.PRIMARY;
  let fed = 0;
  const put = (signal: string, v: number) => {
    if (!Number.isFinite(v) || engine.check(s.component, signal, s.endMs, v) !== null) return;
    engine.observe(s.component, signal, s.endMs, v);
    fed++;
  };
  if (p && p.requests > 0) {
    put(REQUEST_SIGNALS.latency, p.p99Ms);
    put(REQUEST_SIGNALS.errors, p.errorRate);
  }
  if (s.mirrored > 0) put(REQUEST_SIGNALS.divergence, s.divergence);
  return fed;
}
