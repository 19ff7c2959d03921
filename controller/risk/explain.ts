// One sentence per signal for the risk explanation: which objective (saturation, burn rate), forecast
// (time to exhaustion) or surprise (profile, volatility, level, change, tail) drove its score, with the
// numbers, so an operator reads why without knowing the detectors.
import type { SeriesDetector, SignalView } from "./detectors/series.js";
import type { Contribution, SignalState } from "./engine.js";
import type { SignalSpec } from "./spec.js";

const fmt = (x: number) => (Math.abs(x) >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toPrecision(3));

/** One sentence: what drove (or would drive) a signal's score, with its numbers. */
export function explain(spec: SignalSpec, st: SignalState, view: SignalView | null, value: number, expected: number, u: number | null, burn: Contribution["burn"], tte: number | null, d: SeriesDetector): string {
  if (st === "missing") return "no data yet";
  if (st === "stale") return "no fresh data: counts for nothing";
  const v = fmt(value);
  switch (view) {
    case "saturation": return `${v} is ${(100 * u!).toFixed(0)} % of its capacity ${fmt(spec.capacity!)} (the view scores 0.5 at ${(100 * (spec.warnAt ?? 0.8)).toFixed(0)} %)`;
    case "limit": return `${v} is ${(100 * u!).toFixed(0)} % of its capacity ${fmt(spec.capacity!)}, newly: the usual is ${fmt(expected)} (exhausted now, not forecast)`;
    case "burn": return `error budget burning ${burn!.long.toFixed(1)}x (long window) and ${burn!.short.toFixed(1)}x (short) against the ${spec.slo!.target} objective${spec.slo!.threshold !== undefined ? ` of <= ${fmt(spec.slo!.threshold)}` : ""} (rule ${burn!.rule}); ${(100 * burn!.budgetLeft).toFixed(0)} % of the budget left`;
    case "trend": return `heading for its capacity ${fmt(spec.capacity!)}: exhausted in ${tte === null ? "more than 10 horizons" : `${tte.toFixed(0)} s`} at the current slope; within the ${fmt(d.trend!.opts.horizonS)} s horizon with probability ${d.trend!.withinHorizon.toFixed(2)}, given the slope's noise`;
    case "profile": return `${v} where this time of the cycle usually shows ${fmt(expected)} (robust z ${d.profile!.z.toFixed(1)})`;
    case "volatility": return `swinging ${d.volatility!.ratio.toFixed(1)}x harder than usual (median second difference)`;
    case "level": return `${v}: a sustained shift from the usual ${fmt(expected)}`;
    case "change": return `${v}: a change point in the mean (CUSUM)`;
    case "seasonal": return `${v} against ${fmt(expected)} one period ago`;
    case "mean": return `the recent mean is unusual against ${fmt(expected)}`;
    case null: return st === "warming" ? `warming up (${d.points} points): only its limits count` : v;
    default: return `${v} against the usual ${fmt(expected)}${u !== null ? ` (${(100 * u).toFixed(0)} % of capacity)` : ""}`;
  }
}
