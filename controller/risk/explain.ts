// One sentence per signal for the risk explanation: which objective (saturation, burn rate), forecast
// (time to exhaustion) or surprise (profile, volatility, level, change, tail) drove its score, with the
// numbers, so an operator reads why without knowing the detectors.
import type { SeriesDetector, SignalView } from "./detectors/series.js";
import type { Contribution, SignalState } from "./engine.js";
import type { SignalSpec } from "./spec.js";

const fmt = (x: number) => (!Number.isFinite(x) ? (Number.isNaN(x) ? "unknown" : x > 0 ? "more than 1e308" : "less than -1e308") : Math.abs(x) >= 1e21 ? x.toPrecision(3) : Math.abs(x) >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toPrecision(3));
/** A share as a percentage (past 10,000 %, a value far beyond a tiny capacity, as a multiple). */
const pct = (u: number) => (Math.abs(u) < 100 ? `${(100 * u).toFixed(0)} %` : `${fmt(u)} times`);
/** "92 % of its capacity", or "3e+302 times its capacity". */
const ofCapacity = (u: number) => (Math.abs(u) < 100 ? `${pct(u)} of its capacity` : `${pct(u)} its capacity`);

/** One sentence: what drove (or would drive) a signal's score, with its numbers. */
export function explain(spec: SignalSpec, st: SignalState, view: SignalView | null, value: number, expected: number, u: number | null, burn: Contribution["burn"], tte: number | null, d: SeriesDetector): string {
  if (st === "missing") return "no data yet";
  if (st === "stale") return "no fresh data: counts for nothing";
  const v = fmt(value);
  switch (view) {
    case "saturation": return `${v} is ${ofCapacity(u!)} ${fmt(spec.capacity!)} (the view scores 0.5 at ${pct(spec.warnAt ?? 0.8)})`;
    case "limit": return `${v} is ${ofCapacity(u!)} ${fmt(spec.capacity!)}, newly: the usual is ${fmt(expected)} (exhausted now, not forecast)`;
    case "burn": return `error budget burning ${burn!.long.toFixed(1)}x (long window) and ${burn!.short.toFixed(1)}x (short) against the ${spec.slo!.target} objective${spec.slo!.threshold !== undefined ? ` of <= ${fmt(spec.slo!.threshold)}` : ""} (rule ${burn!.rule}); ${burn!.budgetLeft >= 0 ? `${pct(burn!.budgetLeft)} of the budget left` : `the budget is overspent by ${pct(-burn!.budgetLeft)}`}`;
    case "trend": return `heading for its capacity ${fmt(spec.capacity!)}: exhausted in ${tte === null ? "more than 10 horizons" : `${tte.toFixed(0)} s`} at the current slope; within the ${fmt(d.trend!.opts.horizonS)} s horizon with probability ${d.trend!.withinHorizon.toFixed(2)}, given the slope's noise`;
    case "profile": return `${v} where this time of the cycle usually shows ${fmt(expected)} (robust z ${d.profile!.z.toFixed(1)})`;
    case "volatility": return `swinging ${d.volatility!.ratio.toFixed(1)}x harder than usual (median second difference)`;
    case "level": return `${v}: a sustained shift from the usual ${fmt(expected)}`;
    case "change": return `${v}: a change point in the mean (CUSUM)`;
    case "seasonal": return `${v} against ${fmt(expected)} one period ago`;
    case "mean": return `the recent mean is unusual against ${fmt(expected)}`;
    case null: return st === "warming" ? `warming up (${d.points} points): only its limits count` : v;
    default: return `${v} against the usual ${fmt(expected)}${u !== null ? ` (${ofCapacity(u)})` : ""}`;
  }
}
