// The robust, seasonality-aware baseline detector for one series. Three views of "unusual", each a
// tail surprise against its own window of recent history (see surprise.ts):
//   - the value itself (spikes and dips),
//   - the mean of the last `meanPoints` values (small sustained shifts that no single point shows),
//   - the seasonal residual |x(t) - x(t - period)| (a changed daily shape that stays within the
//     normal range, e.g. a missing peak), used only once residuals are clearly smaller than the
//     series' own spread, i.e. when the series really is seasonal.
// The score is the largest, scaled so that a value at the edge of the window's range is 0.5.
// (The seasonal view is gated on the residual's rms being under half the series' sd.)
// Pure state machine: update() depends only on the points given, never on a wall clock.
import { SortedWindow, smallMedian } from "./sorted-window.js";
import { tailSurprise, type Tail } from "./surprise.js";

export interface BaselineOptions {
  /** Points of history the value and mean views compare against. */
  window: number;
  /** Points in the short mean. */
  meanPoints: number;
  /** Seasonal period in ms (0: none). The point one period back is matched within `seasonToleranceMs`. */
  seasonMs: number;
  seasonToleranceMs: number;
  /** Points the seasonal view remembers (must cover one period). */
  seasonCapacity: number;
  /** Which deviations count: latency and errors only matter upwards. */
  side: Tail;
  /** Points needed before any score other than 0. */
  minHistory: number;
  /**
   * Robust z of the short median (the last `meanPoints` values: a spike shorter than half of them
   * does not move it) against the window's median and IQR at which the "level" view scores
   * 0.5 (0: view off). Unlike the tail views, it keeps scoring a sustained deviation until the
   * reference has moved. Its reference learns only points within levelZ/2 robust sds of its
   * median, and one in eight of the others, so a sustained incident (or a creep, whose every point
   * is only a little past the last) does not teach it that the incident is normal, while a
   * permanent level change is still learned (after about eight windows).
   */
  levelZ: number;
}

export const DEFAULT_BASELINE: BaselineOptions = {
  window: 512, meanPoints: 8, seasonMs: 86_400_000, seasonToleranceMs: 180_000, seasonCapacity: 4096, side: "both", minHistory: 16, levelZ: 0,
};

export type BaselineView = "value" | "mean" | "seasonal" | "level";

export class BaselineDetector {
  private readonly values: SortedWindow;
  private readonly means: SortedWindow;
  private readonly residuals: SortedWindow;
  private readonly reference: SortedWindow | null;
  private skipped = 0;
  private readonly recent: Float64Array;
  private readonly scratch: Float64Array;
  private recentSum = 0;
  private recentCount = 0;
  private readonly seasonT: Float64Array;
  private readonly seasonX: Float64Array;
  private seasonHead = 0; // absolute index of the oldest point held
  private seasonEnd = 0; // absolute index one past the newest
  private seasonCursor = 0;
  private readonly norm: number;
  // Running sums for the seasonality gate: squared residuals, and values shifted by the first one
  // (shifting keeps the variance exact for large values such as byte counts).
  private sumR2 = 0;
  private sumX = 0;
  private sumX2 = 0;
  private shift = NaN;
  /** The view that gave the last score, and the value the baseline expected (median or last season). */
  view: BaselineView = "value";
  expected = NaN;
  points = 0;

  constructor(readonly opts: BaselineOptions = DEFAULT_BASELINE) {
    this.values = new SortedWindow(opts.window);
    this.means = new SortedWindow(opts.window);
    this.residuals = new SortedWindow(opts.seasonMs > 0 ? opts.window : 1);
    this.reference = opts.levelZ > 0 ? new SortedWindow(opts.window) : null;
    this.recent = new Float64Array(opts.meanPoints);
    this.scratch = new Float64Array(opts.meanPoints);
    this.seasonT = new Float64Array(opts.seasonMs > 0 ? opts.seasonCapacity : 1);
    this.seasonX = new Float64Array(this.seasonT.length);
    this.norm = Math.log(opts.window + 1);
  }

  /** Scores the point against the history before it, then learns it. */
  update(tMs: number, x: number): number {
    const o = this.opts;
    const slot = this.points % o.meanPoints;
    if (this.recentCount === o.meanPoints) this.recentSum -= this.recent[slot]!; else this.recentCount++;
    this.recent[slot] = x;
    this.recentSum += x;
    const mean = this.recentSum / this.recentCount;
    this.points++;

    const min = o.minHistory;
    let best = tailSurprise(this.values, x, o.side, min), view: BaselineView = "value";
    this.expected = this.values.quantile(0.5);
    const full = this.recentCount === o.meanPoints;
    if (full) {
      const s = tailSurprise(this.means, mean, o.side, min);
      if (s > best) { best = s; view = "mean"; }
    }
    const ref = this.reference;
    let learn = true;
    if (ref && ref.size >= min) {
      const med = ref.quantile(0.5);
      const sd = Math.max((ref.quantile(0.75) - ref.quantile(0.25)) / 1.349, 1e-9 * Math.max(1, Math.abs(med)));
      // Judged on the point's own z, not on whether any view scored it: a creep that each view
      // learns as it goes (every point only a little past the last) must not teach the reference.
      learn = Math.abs(x - med) / sd < o.levelZ / 2;
      // A level shift holds only while the newest point still shows it: the smaller of the median's
      // and the point's deviation (same sign), so a burst that ended stops scoring at once instead of
      // until it leaves the short median (a 6 s deploy spike kept scoring about 4 s after it ended).
      const zm = full ? (this.recentMedian() - med) / sd : 0, zx = (x - med) / sd;
      const z = zm * zx > 0 ? Math.sign(zm) * Math.min(Math.abs(zm), Math.abs(zx)) : 0;
      if (full && (o.side === "both" || (o.side === "up") === z > 0)) {
        // In the same units as the tail surprises (norm = the range edge), so the largest view wins.
        const s = (Math.abs(z) / o.levelZ) * this.norm;
        if (s > best) { best = s; view = "level"; this.expected = med; }
      }
    }
    if (o.seasonMs > 0) {
      const past = this.seasonLookup(tMs - o.seasonMs);
      if (!Number.isNaN(past)) {
        const r = x - past;
        const n = this.values.size, m = this.residuals.size;
        const variance = n > 1 ? Math.max(0, (this.sumX2 - (this.sumX * this.sumX) / n) / n) : 0;
        // Seasonal only if last season explains most of the variance: rms residual under half the sd.
        const seasonal = m >= 2 * min && this.sumR2 / m < 0.25 * variance;
        if (seasonal && (o.side === "both" || (o.side === "up") === r > 0)) {
          const s = tailSurprise(this.residuals, Math.abs(r), "up", 2 * min);
          if (s > best) { best = s; view = "seasonal"; this.expected = past; }
        }
        if (this.residuals.size === this.residuals.capacity) { const old = this.residuals.back(this.residuals.capacity - 1); this.sumR2 -= old * old; }
        this.residuals.push(Math.abs(r));
        this.sumR2 += r * r;
      }
      this.seasonPush(tMs, x);
    }
    if (ref && (learn || ++this.skipped % 8 === 0)) ref.push(x);
    if (Number.isNaN(this.shift)) this.shift = x;
    if (this.values.size === this.values.capacity) { const old = this.values.back(this.values.capacity - 1) - this.shift; this.sumX -= old; this.sumX2 -= old * old; }
    this.values.push(x);
    const xs = x - this.shift;
    this.sumX += xs; this.sumX2 += xs * xs;
    if (full) this.means.push(mean);
    this.view = view;
    const s = best / this.norm;
    // 0.5 at the edge of the range (s = 1), 0.94 at twice that: far outliers come close to 1.
    return 1 - Math.pow(2, -s * s);
  }

  /** Median of the last meanPoints values (NaN before any point). */
  shortMedian(): number { return this.recentCount ? this.recentMedian() : NaN; }

  /** Median of the last meanPoints values (insertion sort of a few numbers: no allocation). */
  private recentMedian(): number { return smallMedian(this.recent, this.recentCount, this.scratch); }

  private seasonLookup(t: number): number {
    const cap = this.seasonT.length;
    if (this.seasonCursor < this.seasonHead) this.seasonCursor = this.seasonHead;
    const tol = this.opts.seasonToleranceMs;
    while (this.seasonCursor < this.seasonEnd && this.seasonT[this.seasonCursor % cap]! < t - tol) this.seasonCursor++;
    if (this.seasonCursor >= this.seasonEnd) return NaN;
    const i = this.seasonCursor % cap;
    return Math.abs(this.seasonT[i]! - t) <= tol ? this.seasonX[i]! : NaN;
  }

  private seasonPush(t: number, x: number): void {
    const cap = this.seasonT.length;
    if (this.seasonEnd - this.seasonHead === cap) this.seasonHead++;
    this.seasonT[this.seasonEnd % cap] = t;
    this.seasonX[this.seasonEnd % cap] = x;
    this.seasonEnd++;
  }
}
