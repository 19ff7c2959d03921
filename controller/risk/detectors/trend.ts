// Trend and time-to-exhaustion for a saturating resource (disk, memory, queue depth, replication
// lag): an ordinary least-squares line through the last `points` points gives a level (the line at
// the newest point) and a slope per second; with a capacity the detector forecasts when the line
// reaches it. The score is the probability, under the fitted slope's sampling distribution (Student's
// t with the fit's degrees of freedom: n - 2 for a line), that the true rate exhausts the headroom
// within the horizon: P(rate > headroom / horizon). It is 0.5 when the forecast is exactly one horizon
// away, and how fast it leaves 0.5 on either side follows the evidence: a slope known to 5 % (20
// standard errors) scores ~1 at 0.8 of the horizon and ~0 at 1.25 of it, one known to 20 % (5 standard
// errors, 10 degrees of freedom) 0.83 and 0.12. (A fixed curve, 1 / (1 + r^4) at r horizons, was used
// before: it scored a well-measured leak 0.7 horizon away as 0.8, as if the forecast were as
// uncertain as a barely significant one.) A slope that is not clearly above its own noise (under 3
// standard errors) scores 0, so a noisy flat series never forecasts exhaustion; between 3 and 5
// standard errors the score is scaled from 0 to its full value. A significant slope is then checked
// for its shape (shape(): a line, a step, a ramp that began inside the window, a ramp that stopped,
// chosen by an information criterion): a step or a ramp that stopped gets no score, a ramp that began
// inside the window is forecast from its own slope (a broken stick, averaged over where it began). A
// ramp that speeds up is forecast from the window's newest third (once the whole window shows the
// trend); a ramp whose newest third rises significantly slower than the window's line has stopped
// too. A window in points, not seconds, follows the scrape interval: 30 points are 30 s at 1 s
// scrapes and 7.5 min at 15 s. (An exponentially smoothed slope with a 600 s time constant was used
// before: it saw a ramp that kills a node within two minutes at a few per cent of its real slope,
// forecasting exhaustion 100x too late.)
export interface TrendOptions {
  /** The value at which the resource is exhausted (e.g. 1 for a utilisation ratio). */
  capacity: number;
  /** The forecast horizon in seconds: exhaustion this far ahead scores 0.5. */
  horizonS: number;
  /** Points the line is fitted over (at least 4). */
  points: number;
  /** Exhaustion is forecast only upwards (a queue filling), or downwards (free space falling). */
  direction: "up" | "down";
}

export const DEFAULT_TREND: Omit<TrendOptions, "capacity"> = { horizonS: 3600, points: 30, direction: "up" };

/** A least-squares fit: the ramp's slope, its standard error, the level at the newest point, and the fit's degrees of freedom. */
interface Segment { slope: number; se: number; level: number; dof: number }

/** The standard normal CDF (Abramowitz and Stegun 7.1.26, absolute error < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2, k = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * k - 1.453152027) * k + 1.421413741) * k - 0.284496736) * k + 0.254829592) * k * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * Student's t CDF with nu (whole) degrees of freedom: exact for nu <= 4 (the closed forms; a fit over
 * the fewest points a trend uses has 2), beyond that through the normal, z = t (1 - 1 / (4 nu)) /
 * sqrt(1 + t^2 / (2 nu)) (Abramowitz and Stegun 26.7.8, within 0.005 there).
 */
export function studentTCdf(t: number, nu: number): number {
  const v = Math.max(1, Math.floor(nu));
  if (v === 1) return 0.5 + Math.atan(t) / Math.PI;
  if (v === 2) return 0.5 + t / (2 * Math.sqrt(2 + t * t));
  if (v === 3) { const u = t / Math.sqrt(3); return 0.5 + (u / (1 + u * u) + Math.atan(u)) / Math.PI; }
  if (v === 4) { const q = t * t / 4; return 0.5 + (3 / 8) * (t / Math.sqrt(1 + q)) * (1 - q / (3 * (1 + q))); }
  return normalCdf((t * (1 - 1 / (4 * v))) / Math.sqrt(1 + (t * t) / (2 * v)));
}

/** A slope's significance: 0 under 3 standard errors, 1 from 5, linear between. */
const significanceOf = (rate: number, se: number): number => Math.min(1, Math.max(0, (rate / Math.max(se, 1e-12) - 3) / 2));

/** Parameters a change point's location counts for in the shape criterion (the modified BIC's). */
const CP = 3;

/** What explains the window (TrendDetector.shape): a line, a step, a ramp that began inside it, a ramp that stopped. */
type Shape = 0 | 1 | 2 | 3;
const LINE: Shape = 0, STEP: Shape = 1, RAMP: Shape = 2, STOPPED: Shape = 3;

/** The shape fits' prefix sums, distinct-time counts, relative times and broken-stick fits: one buffer for every detector (a fit never yields). */
let fitScratch = new Float64Array(0);

export class TrendDetector {
  level = NaN;
  /** Units per second. */
  slope = 0;
  /** Standard error of the slope. */
  slopeSe = Infinity;
  private readonly t: Float64Array;
  private readonly x: Float64Array;
  private n = 0;
  private head = 0;
  /** Seconds until the level reaches capacity at the current slope (Infinity if it never does). */
  timeToExhaustionS = Infinity;
  /** The last forecast's probability of exhaustion within the horizon (before the significance scaling; 0: none). */
  withinHorizon = 0;
  /** The window looks like one level shift rather than a trend (see shape()): no forecast score. */
  step = false;
  private lineSsr = 0;
  /** The trend stopped: a ramp then a plateau explains the window (shape()), or its newest third rises significantly slower than the line. */
  stalled = false;
  /** The ramp since a trend began inside the window, set by shape() when it returns RAMP. */
  private hinge: Segment | null = null;
  /**
   * The series' resolution: the smallest non-zero change between consecutive points seen (Infinity:
   * none yet). Counts (connections, queue depth, blocks) move in whole units, so a fit's residuals
   * cannot be told apart below it: the residual variance is floored at its quantisation noise,
   * resolution^2 / 12 (a rounding error uniform over one unit). Without the floor, a ramp of whole
   * connections fits a line almost exactly, and one repeated count (a poll between two new sessions)
   * was a significant stop: on seeded ramps of whole sessions polled with jitter the forecast fell
   * under 0.5 on 158 of 7,624 ticks, 7 with the floor. For a continuous series the floor is negligible.
   */
  private resolution = Infinity;

  constructor(readonly opts: TrendOptions) {
    if (!Number.isFinite(opts.capacity)) throw new RangeError(`trend capacity must be a finite number, got ${opts.capacity}`);
    if (!(opts.points >= 4)) throw new RangeError(`trend points must be at least 4, got ${opts.points}`);
    this.t = new Float64Array(opts.points);
    this.x = new Float64Array(opts.points);
  }

  update(tMs: number, x: number): number {
    const cap = this.opts.points;
    if (this.n > 0) {
      const change = Math.abs(x - this.x[(this.head - 1 + cap) % cap]!);
      if (change > 0 && change < this.resolution) this.resolution = change;
    }
    this.t[this.head] = tMs / 1000;
    this.x[this.head] = x;
    this.head = (this.head + 1) % cap;
    if (this.n < cap) this.n++;
    this.fit();
    return this.score();
  }

  private fit(): void {
    const n = this.n, cap = this.opts.points;
    const newest = (this.head - 1 + cap) % cap;
    if (n < 4) { this.level = this.x[newest]!; this.slope = 0; this.slopeSe = Infinity; return; }
    const t0 = this.t[newest]!;
    let st = 0, sx = 0;
    for (let i = 0; i < n; i++) { st += this.t[i]! - t0; sx += this.x[i]!; }
    const mt = st / n, mx = sx / n;
    let stt = 0, stx = 0;
    for (let i = 0; i < n; i++) { const dt = this.t[i]! - t0 - mt; stt += dt * dt; stx += dt * (this.x[i]! - mx); }
    if (!(stt > 0)) { this.level = this.x[newest]!; this.slope = 0; this.slopeSe = Infinity; return; }
    const slope = stx / stt;
    let ssr = 0;
    // Centred, like the shape fits it is compared with (large values would otherwise round it up).
    for (let i = 0; i < n; i++) { const r = (this.x[i]! - mx) - slope * (this.t[i]! - t0 - mt); ssr += r * r; }
    this.slope = slope;
    this.slopeSe = Math.sqrt(Math.max(ssr / (n - 2), this.quantisation()) / stt);
    this.level = mx + slope * (0 - mt);
    this.lineSsr = ssr;
  }

  /** The residual variance no fit can go below: the resolution's rounding noise (0 before any change). */
  private quantisation(): number { return Number.isFinite(this.resolution) ? (this.resolution * this.resolution) / 12 : 0; }

  /** Slope, standard error and the line's level at the newest point, over the newest third of the window (at least 4 points; null: too few). */
  private recentSlope(): Segment | null {
    const m = Math.max(4, Math.floor(this.n / 3));
    return this.n < m + 2 ? null : this.segmentFit(this.n - m);
  }

  /**
   * The least-squares line over the window's points from the `from`-th oldest to the newest: its
   * slope, the slope's standard error and its level at the newest point (null: the times do not vary).
   */
  private segmentFit(from: number): Segment | null {
    const n = this.n, cap = this.opts.points, oldest = n < cap ? 0 : this.head, len = n - from;
    let st = 0, sx = 0;
    for (let k = from; k < n; k++) { const j = (oldest + k) % cap; st += this.t[j]!; sx += this.x[j]!; }
    const mt = st / len, mx = sx / len;
    let stt = 0, stx = 0;
    for (let k = from; k < n; k++) { const j = (oldest + k) % cap; const dt = this.t[j]! - mt; stt += dt * dt; stx += dt * (this.x[j]! - mx); }
    if (!(stt > 0)) return null;
    const slope = stx / stt;
    let ssr = 0;
    for (let k = from; k < n; k++) { const j = (oldest + k) % cap; const r = this.x[j]! - (mx + slope * (this.t[j]! - mt)); ssr += r * r; }
    const newest = this.t[(this.head - 1 + cap) % cap]!;
    return { slope, se: Math.sqrt(Math.max(ssr / Math.max(1, len - 2), this.quantisation()) / stt), level: mx + slope * (newest - mt), dof: len - 2 };
  }

  /**
   * Which shape explains the window (run only once the line's slope is significant), by an
   * information criterion, n ln(SSR / n) + k ln(n), over four least-squares fits, where a change
   * point's location counts as CP = 3 parameters (the modified BIC of Zhang and Siegmund, 2007, whose
   * leading term charges 3/2 ln n of log-likelihood per change point: a location picked as the best
   * of many fits better by chance than a regular parameter does; with the plain BIC's 1, a leak's
   * newest noisy point made "a ramp that stopped" win at 58 points over 100 synthetic leaks, with 3
   * at 1):
   *   - the line (k = 2): a trend over the whole window;
   *   - a step (k = 2 + CP: two levels and the split): a deploy that moved CPU from 0.25 to 0.7 gives a
   *     steep, significant slope over the window, but its forecast would be an exhaustion that never
   *     comes (the level and saturation views judge a step);
   *   - a broken stick (k = 2 + CP: x = a + b max(0, t - tau)): flat, then a ramp that began inside the
   *     window and still climbs: the trend, forecast from the ramp's own slope (a line over the whole
   *     window blends in the flat part before it and forecasts too late);
   *   - a ramp that stopped (k = 2 + 2 CP: x = a + b clamp(t - tau1, 0, tau2 - tau1), a plateau after
   *     tau2): a rise smeared over a few scrapes, or a surge that levelled off: no trend either.
   * Returns the winner; with the broken stick, `hinge` is its ramp (a step or a stopped ramp gets no
   * forecast score). (Judging by whether the points after the step's best split climbed on their
   * own, as before, put that split mid-ramp, where it moved from point to point: the segment after it
   * shrank and its significance collapsed for a second, memory-leak's forecast falling from 0.98 to
   * 0.06; and a ramp within three points of its start was a step.)
   * O(n^2) over (tau1, tau2) with prefix sums; values centred on the window's mean and times relative
   * to the newest point, so large values (bytes) do not cancel.
   */
  private shape(): Shape {
    const n = this.n, cap = this.opts.points, oldest = n < cap ? 0 : this.head;
    if (n < 6) return LINE;
    if (fitScratch.length < 11 * cap + 5) fitScratch = new Float64Array(11 * cap + 5);
    const F = fitScratch;
    const t0 = this.t[(this.head - 1 + cap) % cap]!;
    // Scratch layout: prefix sums (5 per index 0..n), distinct-time counts (n), relative times (n), broken-stick fits (4 each).
    const distinctBase = 5 * (n + 1), timeBase = distinctBase + n, rampBase = timeBase + n;
    // Times relative to the newest point, oldest first.
    for (let k = 0; k < n; k++) F[timeBase + k] = this.t[(oldest + k) % cap]! - t0;
    let mean = 0;
    for (let k = 0; k < n; k++) mean += this.x[(oldest + k) % cap]!;
    mean /= n;
    // Prefix sums over points 0..k-1 (oldest first): t, t^2, x, t x, x^2 at F[5k .. 5k + 4].
    let p1 = 0, p2 = 0, px = 0, ptx = 0, pxx = 0;
    for (let k = 0; k <= n; k++) {
      const o = 5 * k;
      F[o] = p1; F[o + 1] = p2; F[o + 2] = px; F[o + 3] = ptx; F[o + 4] = pxx;
      if (k === n) break;
      const tk = F[timeBase + k]!, xk = this.x[(oldest + k) % cap]! - mean;
      p1 += tk; p2 += tk * tk; px += xk; ptx += tk * xk; pxx += xk * xk;
    }
    const sxx = pxx, sx = px; // sx is ~0 (centred)
    // Times closer than a tenth of the window's mean interval are one scrape: a burst of samples, or
    // scrapes on the same millisecond. A ramp needs three distinct scrapes (samples bunched at one
    // time after a jump would otherwise make the step a ramp, with the jump over one interval as its
    // slope), and a ramp shorter than that is a step (whose sums here would also cancel).
    const eps = (0.1 * -F[timeBase]!) / (n - 1);
    // F[distinctBase + i]: distinct times among the points after i, counted newest first.
    let distinct = 0, prevT = Infinity;
    for (let k = n - 1; k >= 0; k--) {
      F[distinctBase + k] = distinct;
      const tk = F[timeBase + k]!;
      if (prevT - tk > eps) { distinct++; prevT = tk; }
    }
    // Every SSR is floored at the resolution's rounding noise over the window (a fit cannot be closer
    // than the data can show), and so an exact fit does not make ln(0), at a part in 1e12 of the spread.
    const floor = Math.max(n * this.quantisation(), 1e-12 * sxx + 1e-300);
    const bic = (ssr: number, k: number) => n * Math.log(Math.max(ssr, floor) / n) + k * Math.log(n);
    // The step: levels before and after each split, at least two points on either side.
    let stepSsr = Infinity;
    for (let k = 2; k <= n - 2; k++) {
      const a = F[5 * k + 2]!, b = sx - a;
      stepSsr = Math.min(stepSsr, sxx - (a * a) / k - (b * b) / (n - k));
    }
    // The ramp from the point i to the point j (flat before; flat after, unless j is the newest).
    let stickSsr = Infinity, stopSsr = Infinity, fits = 0;
    for (let i = 0; i <= n - 3; i++) {
      const tau1 = F[timeBase + i]!;
      for (let j = i + 1; j <= n - 1; j++) {
        const m1 = j - i, m2 = n - 1 - j;
        const d = F[timeBase + j]! - tau1;
        if (d <= eps) continue; // no ramp at all: the step's case
        const oi = 5 * (i + 1), oj = 5 * (j + 1);
        const q1 = F[oj]! - F[oi]!, q2 = F[oj + 1]! - F[oi + 1]!, x1 = F[oj + 2]! - F[oi + 2]!, tx1 = F[oj + 3]! - F[oi + 3]!;
        const x2 = sx - F[oj + 2]!;
        const sg = q1 - m1 * tau1 + m2 * d;
        const sgg = q2 - 2 * tau1 * q1 + m1 * tau1 * tau1 + m2 * d * d;
        const sgx = tx1 - tau1 * x1 + d * x2;
        const det = n * sgg - sg * sg;
        if (!(det > 0)) continue;
        const b = (n * sgx - sg * sx) / det, a = (sx - b * sg) / n;
        const ssr = Math.max(0, sxx - a * sx - b * sgx);
        if (m2 === 0) {
          // The broken stick (the ramp runs to the newest point): at least three distinct times on it.
          if (F[distinctBase + i]! < 3) continue;
          const o = rampBase + 4 * fits++;
          F[o] = ssr; F[o + 1] = b; F[o + 2] = n / det; F[o + 3] = a + b * (0 - tau1) + mean;
          if (ssr < stickSsr) stickSsr = ssr;
        } else if (ssr < stopSsr) stopSsr = ssr;
      }
    }
    const sign = this.opts.direction === "up" ? 1 : -1;
    // Two regular parameters each (levels, or level and slope) at ln n; each change point at 3 ln n.
    const line = bic(this.lineSsr, 2), step = bic(stepSsr, 2 + CP), stick = bic(stickSsr, 2 + CP), stop = bic(stopSsr, 2 + 2 * CP);
    if (line <= Math.min(step, stick, stop)) return LINE;
    if (stick < Math.min(step, stop)) {
      const seg = this.averageStick(rampBase, fits, Math.max(stickSsr, floor), n);
      if (sign * seg.slope > 0) { this.hinge = seg; return RAMP; }
      return STOPPED; // a rise towards the limit (the line's slope) that turned away from it
    }
    return stop < step ? STOPPED : STEP;
  }

  /**
   * The broken stick's ramp, averaged over where it began. That breakpoint is itself uncertain, and
   * taking the best one as known made the slope jump by several of its standard errors from one point
   * to the next; so each breakpoint's fit is weighted by its profile likelihood, exp(-(SSR - SSR_min)
   * / (2 sigma^2)) with sigma^2 from the best fit: the slope and level are the weighted means, the
   * slope's variance the weighted mean of (its standard error^2 + its distance from the mean^2).
   * Degrees of freedom n - 3 (a, b, tau).
   */
  private averageStick(base: number, fits: number, best: number, n: number): Segment {
    const F = fitScratch;
    const s2 = Math.max(best / (n - 3), 1e-300);
    let w = 0, wb = 0, wl = 0;
    for (let i = 0; i < fits; i++) {
      const o = base + 4 * i, q = Math.exp(-(F[o]! - best) / (2 * s2));
      F[o] = q; // the weight replaces the SSR, which is not needed again
      w += q; wb += q * F[o + 1]!; wl += q * F[o + 3]!;
    }
    const slope = wb / w, level = wl / w;
    let v = 0;
    for (let i = 0; i < fits; i++) {
      const o = base + 4 * i, d = F[o + 1]! - slope;
      v += F[o]! * (s2 * F[o + 2]! + d * d);
    }
    return { slope, se: Math.sqrt(v / w), level, dof: n - 3 };
  }

  private score(): number {
    const o = this.opts;
    this.withinHorizon = 0;
    this.step = false;
    this.stalled = false;
    const sign = o.direction === "up" ? 1 : -1;
    const headroom = sign * (o.capacity - this.level);
    const rate = sign * this.slope;
    if (headroom <= 0) { this.timeToExhaustionS = 0; this.withinHorizon = 1; return 1; }
    if (!(rate > 0)) { this.timeToExhaustionS = Infinity; return 0; }
    this.timeToExhaustionS = headroom / rate;
    let significance = significanceOf(rate, this.slopeSe);
    // Only a significant slope can score, so only then is it worth asking for its shape.
    const shape = significance > 0 ? this.shape() : LINE;
    this.step = shape === STEP;
    if (this.step) return 0;
    const h = shape === RAMP ? this.hinge : null;
    // Still rising at the end of the window? A ramp that stopped (a surge that levelled off, a deploy
    // that ramped up) is no longer heading for the limit: the shape says so (a ramp then a plateau), or
    // the newest third of the points rises significantly slower than the whole window's line (3
    // standard errors of their own slope; a ramp that has just begun rises faster than the line, so it
    // is not mistaken for a stop).
    if (shape === STOPPED) { this.stalled = true; return 0; }
    const recent = this.recentSlope();
    this.stalled = recent !== null && (sign * recent.slope - rate) / Math.max(recent.se, 1e-12) < -3;
    if (this.stalled) return 0;
    // The local slope: a trend that began inside the window (the hinge), or one that is speeding up
    // (the newest third, significant on its own: a leak that accelerates is under-forecast by the
    // window's line, and with no ramp that began inside the window there is no hinge, so the forecast fell
    // back to the line and swung, e.g. 90 s -> 156 s in one second on a steady leak). The steeper counts.
    let local: Segment | null = h && sign * h.slope > rate ? h : null;
    // Only a trend the whole window already shows (its own slope significant) is sharpened so: the
    // newest third alone, ten-odd noisy points, would find one in a flat series by chance.
    if (recent && significance > 0 && sign * recent.slope > Math.max(rate, local ? sign * local.slope : -Infinity) && (sign * recent.slope) / Math.max(recent.se, 1e-12) > 3) local = recent;
    // The forecast's own line: the headroom, the rate and the rate's standard error and degrees of freedom.
    let hr = headroom, fr = rate, se = this.slopeSe, dof = this.n - 2;
    if (local) {
      hr = sign * (o.capacity - local.level);
      if (hr <= 0) { this.timeToExhaustionS = 0; this.withinHorizon = 1; return 1; }
      fr = sign * local.slope; se = local.se; dof = local.dof;
      this.timeToExhaustionS = hr / fr;
      // A hinge is a trend of its own: its segment's significance. The newest third only sharpens the
      // timing of the trend the whole window established: that trend's significance stands.
      if (local === h) significance = significanceOf(fr, se);
    }
    // P(true rate > headroom / horizon): exhaustion within the horizon, given the fit's uncertainty.
    this.withinHorizon = studentTCdf((fr - hr / o.horizonS) / Math.max(se, 1e-12), dof);
    return significance * this.withinHorizon;
  }
}
