// A change of variance: the series swings harder than it used to (a flapping dependency, a thrashing
// cache, a struggling garbage collector) while its level may stay put, which neither the tail views
// nor the level view see until a swing breaks the range. The measure is the median absolute second
// difference |x(t) - 2 x(t-1) + x(t-2)| over the last `shortPoints` points against the median over a
// reference window: second differences remove the level and a straight trend (a ramp or a shift is
// not volatility; a queue filling at a steady rate has constant first differences), and medians
// ignore a lone spike (three large differences among sixteen do not move a median). A mostly constant
// reference (median 0, e.g. an integer queue depth) falls back to a quarter of its 90th percentile.
// Scale, from the median's sampling distribution: for a median of n absolute differences of a
// Gaussian series, ln(median) has a standard deviation of about 0.29 at n = 16 (var(median) ~
// 1 / (4 n f(m)^2) with the half-normal density at its median), so the log ratio of short to
// reference medians is a z with that sd; the score is 0.5 at z = `edgeZ` (4: a ratio of ~3.2).
// The reference learns only while the ratio is under the edge (and one in eight points otherwise), so
// a lasting storm is not learnt as normal at once, while a lasting change of regime still is.
import { SortedWindow, smallMedian } from "./sorted-window.js";

export interface VolatilityOptions { shortPoints: number; window: number; edgeZ: number; minHistory: number }

export const DEFAULT_VOLATILITY: VolatilityOptions = { shortPoints: 16, window: 128, edgeZ: 4, minHistory: 32 };

export class VolatilityDetector {
  private readonly ref: SortedWindow;
  private readonly recent: Float64Array;
  private readonly scratch: Float64Array;
  private n = 0;
  private last = NaN;
  private lastD = NaN;
  private skipped = 0;
  private readonly sdLog: number;
  /** Short over reference median of |differences| at the last update (NaN before there is a reference). */
  ratio = NaN;
  score = 0;

  constructor(readonly opts: VolatilityOptions = DEFAULT_VOLATILITY) {
    this.ref = new SortedWindow(opts.window);
    this.recent = new Float64Array(opts.shortPoints);
    this.scratch = new Float64Array(opts.shortPoints);
    // Relative sd of a median of n half-normal values: sqrt(1 / (4 n f(m)^2)) / m, m = 0.6745, f(m) = 0.6356.
    this.sdLog = Math.sqrt(1 / (4 * opts.shortPoints * 0.6356 * 0.6356)) / 0.6745;
  }

  update(x: number): number {
    const d1 = x - this.last;
    this.last = x;
    if (Number.isNaN(d1)) return 0;
    const prev = this.lastD;
    this.lastD = d1;
    if (Number.isNaN(prev)) return 0;
    const d = Math.abs(d1 - prev);
    const k = this.opts.shortPoints;
    this.recent[this.n % k] = d;
    this.n++;
    let score = 0;
    this.ratio = NaN;
    let learn = true;
    if (this.n >= k && this.ref.size >= this.opts.minHistory) {
      const floor = Math.max(1e-9 * Math.max(1, Math.abs(x)), this.ref.quantile(0.9) / 4);
      const base = Math.max(this.ref.quantile(0.5), floor);
      this.ratio = Math.max(smallMedian(this.recent, k, this.scratch), floor) / base;
      const z = Math.log(this.ratio) / this.sdLog;
      learn = z < this.opts.edgeZ;
      if (z > 0) { const r = z / this.opts.edgeZ; score = 1 - Math.pow(2, -r * r); }
    }
    if (learn || ++this.skipped % 8 === 0) this.ref.push(d);
    this.score = score;
    return score;
  }
}
