// The risk tick's view of a component's signals: the few numbers a tick reads of each signal, packed
// in rows of one Float64Array per component, and the loop that turns those rows into the predictor's
// features. The detectors themselves are scattered over the heap (about 17 KB each): a tick that read
// five fields from each of 160,000 of them paid a cache miss apiece. The engine copies a signal's
// scores into its row after every point (sync); the tick reads the rows alone, in memory order.
import type { SeriesDetector } from "./detectors/series.js";
import { excess } from "./predictor.js";

export type SignalState = "ok" | "warming" | "stale" | "missing";

/** How strongly a signal is newly at its limit: near capacity and surprising there (0 without a capacity). */
export const newlyAtLimit = (d: SeriesDetector): number => (d.opts.saturation ? Math.min(d.surpriseScore, d.saturationScore) : 0);

// Columns of a row.
const KIND = 0;        // the predictor's feature index of the signal's kind
const EXHAUSTING = 1;  // 1: a kind that fails when exhausted (its forecast is the exhaustion feature)
const POINTS = 2;      // the detector's point count
const SEEN = 3;        // by the engine's clock, when the last point arrived (-Infinity: never)
const STALE_AFTER = 4; // ms without a point after which the signal is stale
const RISK = 5;        // the detector's riskScore (surprise against the limits)
const LIMITS = 6;      // the limits alone: max(burn, saturation), what a warming signal may score
const TREND = 7;       // the exhaustion forecast's score
const AT_LIMIT = 8;    // newly at its limit: near capacity and surprising there (0 without a capacity)
const LAST_FIT = 9;    // the trend score at the newest fit the ticks saw, and at the one before it
const PRIOR_FIT = 10;
const FIT_POINTS = 11; // the point count of that newest fit
const WIDTH = 12;

export class SignalRows {
  private readonly a: Float64Array;
  constructor(readonly length: number) { this.a = new Float64Array(length * WIDTH); }

  /** A new signal's row: nothing seen yet. */
  init(i: number, kind: number, exhausting: boolean, staleAfterMs: number): void {
    const o = i * WIDTH;
    this.a.fill(0, o, o + WIDTH);
    this.a[o + KIND] = kind; this.a[o + EXHAUSTING] = exhausting ? 1 : 0; this.a[o + STALE_AFTER] = staleAfterMs; this.a[o + SEEN] = -Infinity;
  }

  /** Row j of `from` becomes row i here (a signal kept across a component's new spec). */
  copy(i: number, from: SignalRows, j: number): void { this.a.set(from.a.subarray(j * WIDTH, (j + 1) * WIDTH), i * WIDTH); }

  /** After the detector took a point: its scores into the row. */
  sync(i: number, d: SeriesDetector): void {
    const o = i * WIDTH, a = this.a;
    a[o + POINTS] = d.points;
    a[o + RISK] = d.riskScore;
    a[o + LIMITS] = Math.max(d.burnScore, d.saturationScore);
    a[o + TREND] = d.trendScore;
    a[o + AT_LIMIT] = newlyAtLimit(d);
  }

  seenMs(i: number): number { return this.a[i * WIDTH + SEEN]!; }
  setSeenMs(i: number, ms: number): void { this.a[i * WIDTH + SEEN] = ms; }

  state(i: number, now: number, minHistory: number): SignalState {
    const o = i * WIDTH, a = this.a;
    if (a[o + POINTS] === 0) return "missing";
    if (now - a[o + SEEN]! > a[o + STALE_AFTER]!) return "stale";
    if (a[o + POINTS]! < minHistory) return "warming";
    return "ok";
  }

  /**
   * One tick's features of the component: f, each kind's strongest evidence, with the exhaustion
   * feature at `exhaustion` from the two strongest forecasts or resources newly at their limit (a
   * second resource heading for its limit corroborates the first); g, the exhaustion forecasts alone,
   * each at the lower of its scores at the newest fit and the one before (a fit is new when the signal
   * got a point, so ticks over one scrape count as one fit). Both come in zeroed. Returns how many
   * signals are fresh (neither stale nor missing).
   */
  features(now: number, minHistory: number, exhaustion: number, f: Float64Array, g: Float64Array): number {
    const a = this.a;
    let fresh = 0;
    let t1 = 0, t2 = 0, u1 = 0, u2 = 0;
    for (let o = 0; o < a.length; o += WIDTH) {
      const points = a[o + POINTS]!;
      if (points === 0 || now - a[o + SEEN]! > a[o + STALE_AFTER]!) continue;
      fresh++;
      const k = a[o + KIND]!;
      const ok = points >= minHistory;
      // A warming signal has no history to be surprised by, but its limits hold from the first point.
      const x = excess(ok ? a[o + RISK]! : a[o + LIMITS]!);
      if (x > f[k]!) f[k] = x;
      if (!ok) continue;
      const trend = a[o + TREND]!;
      // A resource that fails when exhausted (memory, disk, a queue's bound) feeds the strong
      // exhaustion feature; CPU or latency heading for their limit is a concern of their own kind
      // (a saturated CPU slows, it does not crash), so their forecast weighs as that kind.
      if (a[o + EXHAUSTING] === 0) { if (trend > f[k]!) f[k] = trend; }
      else {
        if (trend > t1) { t2 = t1; t1 = trend; } else if (trend > t2) t2 = trend;
        if (points !== a[o + FIT_POINTS]) { a[o + PRIOR_FIT] = a[o + FIT_POINTS] ? a[o + LAST_FIT]! : 0; a[o + LAST_FIT] = trend; a[o + FIT_POINTS] = points; }
        const held = Math.min(trend, a[o + PRIOR_FIT]!);
        if (held > u1) { u2 = u1; u1 = held; } else if (held > u2) u2 = held;
      }
      // A resource newly at its limit is exhausted now, whatever its kind: near capacity (the
      // saturation view) and new there (the surprise views). A plateau the history knows is not new;
      // a surprise far from the limit is not exhaustion.
      const at = excess(a[o + AT_LIMIT]!);
      if (at > t1) { t2 = t1; t1 = at; } else if (at > t2) t2 = at;
    }
    f[exhaustion] = 1 - (1 - t1) * (1 - t2);
    g[exhaustion] = 1 - (1 - u1) * (1 - u2);
    return fresh;
  }
}
