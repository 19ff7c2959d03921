// Trend and time-to-exhaustion for a saturating resource (disk, memory, queue depth, replication
// lag): an ordinary least-squares line through the last `points` points gives a level (the line at
// the newest point) and a slope per second; with a capacity the detector forecasts when the line
// reaches it. The score is the probability, under the fitted slope's sampling distribution (Student's
// t with the fit's n - 2 degrees of freedom), that the true rate exhausts the headroom within the
// horizon: P(rate > headroom / horizon). It is 0.5 when the forecast is exactly one horizon away, and
// how fast it leaves 0.5 on either side follows the evidence: a slope known to 5 % (20 standard
// errors) scores ~1 at 0.8 of the horizon and ~0 at 1.25 of it, one known to 20 % (5 standard errors,
// 10 degrees of freedom) 0.83 and 0.12. (A fixed curve, 1 / (1 + r^4) at r horizons, was used
// before: it scored a well-measured leak 0.7 horizon away as 0.8, as if the forecast were as
// uncertain as a barely significant one.) A slope that is not clearly above its own noise (under 3
// standard errors) scores 0, so a noisy flat series never forecasts exhaustion; between 3 and 5
// standard errors the score is scaled from 0 to its full value. When one level shift explains the
// window better than the line, a flat-then-rising fit (a broken stick, averaged over where the ramp
// began) and the step compete: the step wins as no trend (no score), the ramp is forecast from its
// own slope. A ramp that speeds up is forecast from the window's newest third (once the whole window
// shows the trend); a ramp that stopped (its newest third rising significantly slower than the
// window's line) no longer scores. A window in points, not seconds, follows the scrape interval: 30
// points are 30 s at 1 s scrapes and 7.5 min at 15 s. (An exponentially smoothed slope with a 600 s time
// constant was used before: it saw a ramp that kills a node within two minutes at a few per cent of
// its real slope, forecasting exhaustion 100x too late.)
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

/** brokenStick's fits, four numbers per breakpoint: one buffer for every detector (a fit never yields). */
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
  /** The window looks like one level shift rather than a trend (see stepFitsBetter): no forecast score. */
  step = false;
  private lineSsr = 0;
  /** The trend stopped: the newest third of the window rises significantly slower than the forecast's slope. */
  stalled = false;
  /** The segment since a trend began inside the window (see stepFitsBetter), when there is one. */
  private hinge: Segment | null = null;

  constructor(readonly opts: TrendOptions) {
    if (!Number.isFinite(opts.capacity)) throw new RangeError(`trend capacity must be a finite number, got ${opts.capacity}`);
    if (!(opts.points >= 4)) throw new RangeError(`trend points must be at least 4, got ${opts.points}`);
    this.t = new Float64Array(opts.points);
    this.x = new Float64Array(opts.points);
  }

  update(tMs: number, x: number): number {
    const cap = this.opts.points;
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
    for (let i = 0; i < n; i++) { const r = this.x[i]! - (mx + slope * (this.t[i]! - t0 - mt)); ssr += r * r; }
    this.slope = slope;
    this.slopeSe = Math.sqrt(ssr / (n - 2) / stt);
    this.level = mx + slope * (0 - mt);
    this.lineSsr = ssr;
  }

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
    return { slope, se: Math.sqrt(ssr / Math.max(1, len - 2) / stt), level: mx + slope * (newest - mt), dof: len - 2 };
  }

  /**
   * Whether one level shift explains the window better than the line (a smaller residual sum of
   * squares at the best split) and the points after the shift are flat (no significant slope of
   * their own): a deploy that moves CPU from 0.25 to 0.7 gives a steep, significant slope over the
   * window, but it is a step, not a trend, and its forecast would be an exhaustion that never comes
   * (the level and saturation views judge a step). A trend that has just begun (flat, then a ramp)
   * is also fitted better by a step, but its last segment still climbs: it stays a trend.
   */
  private stepFitsBetter(lineSsr: number): boolean {
    const n = this.n, cap = this.opts.points, oldest = n < cap ? 0 : this.head;
    let tot = 0, tot2 = 0;
    for (let m = 0; m < n; m++) { const v = this.x[(oldest + m) % cap]!; tot += v; tot2 += v * v; }
    let s = 0, s2 = 0, best = lineSsr, split = -1;
    for (let m = 0; m < n - 2; m++) {
      const v = this.x[(oldest + m) % cap]!;
      s += v; s2 += v * v;
      const k = m + 1;
      if (k < 2) continue;
      const ssr = s2 - (s * s) / k + (tot2 - s2) - ((tot - s) * (tot - s)) / (n - k);
      if (ssr < best) { best = ssr; split = k; }
    }
    if (split < 0) return false;
    // A step, or a ramp that began inside the window? Flat-then-rising (the broken stick) against
    // flat-jump-flat, both three parameters: the better fit decides. (Judging by whether the points
    // after the step's split climb on their own called a steady ramp a step whenever the split fell
    // within three points of its newest end.)
    const stick = this.brokenStick();
    const sign = this.opts.direction === "up" ? 1 : -1;
    if (stick && stick.ssr < best && sign * stick.seg.slope > 0) {
      // The ramp since it began is the trend (a line over the whole window blends in the flat part
      // before it and forecasts too late).
      this.hinge = stick.seg;
      return false;
    }
    if (n - split < 4) return true;
    // The segment after the split: does it climb on its own (slope over 3 standard errors)? A step
    // followed by a climb is a trend from the step on.
    const seg = this.segmentFit(split);
    if (!seg) return true;
    if (!((sign * seg.slope) / Math.max(seg.se, 1e-12) > 3)) return true;
    this.hinge = seg;
    return false;
  }

  /**
   * Segmented regression, flat then a ramp: x = a + b max(0, t - tau), continuous at the breakpoint
   * tau, fitted over the whole window for every breakpoint at a point that leaves at least three points
   * after it. The flat part pins the level and the noise, so the ramp's slope is known from fewer of
   * its own points than a fit of the ramp alone. Where the ramp began is itself uncertain, and taking
   * the single best breakpoint as known made the slope jump by several of its standard errors from
   * one point to the next; so the fits are averaged over the breakpoints, each weighted by its
   * likelihood, exp(-(SSR - SSR_min) / (2 sigma^2)) with sigma^2 from the best fit (Bayesian model
   * averaging under a uniform prior on the breakpoint): the slope and level are the weighted means,
   * the slope's variance the weighted mean of (its standard error^2 + its distance from the mean^2).
   * Returns the averaged segment and the best fit's SSR (to judge a step against), or null with too
   * few points. Degrees of freedom n - 3 (a, b, tau). O(n): suffix sums over the points after each
   * breakpoint, times relative to the newest point.
   */
  private brokenStick(): { seg: Segment; ssr: number } | null {
    const n = this.n, cap = this.opts.points, oldest = n < cap ? 0 : this.head;
    if (n < 7) return null;
    const t0 = this.t[(this.head - 1 + cap) % cap]!;
    let sx = 0, sxx = 0;
    for (let k = 0; k < n; k++) { const v = this.x[(oldest + k) % cap]!; sx += v; sxx += v * v; }
    // Suffix sums over the points after the breakpoint j: count, sum t, sum t^2, sum x, sum t x.
    let m = 0, t1 = 0, t2 = 0, x1 = 0, tx = 0, fits = 0, bestSsr = Infinity;
    if (fitScratch.length < 4 * n) fitScratch = new Float64Array(4 * cap);
    const F = fitScratch;
    for (let j = n - 2; j >= 1; j--) {
      const jj = (oldest + j + 1) % cap, tk = this.t[jj]! - t0, xk = this.x[jj]!;
      m++; t1 += tk; t2 += tk * tk; x1 += xk; tx += tk * xk;
      if (m < 3) continue;
      const tau = this.t[(oldest + j) % cap]! - t0;
      const sh = t1 - m * tau, shh = t2 - 2 * tau * t1 + m * tau * tau, shx = tx - tau * x1;
      const det = n * shh - sh * sh;
      if (!(det > 0)) continue;
      const b = (n * shx - sh * sx) / det, a = (sx - b * sh) / n;
      const ssr = Math.max(0, sxx - a * sx - b * shx);
      // Per fit: SSR, slope, the slope's variance per unit sigma^2, level at the newest point (h = -tau).
      F[4 * fits] = ssr; F[4 * fits + 1] = b; F[4 * fits + 2] = n / det; F[4 * fits + 3] = a - b * tau;
      fits++;
      if (ssr < bestSsr) bestSsr = ssr;
    }
    if (fits === 0) return null;
    const s2 = Math.max(bestSsr / (n - 3), 1e-300);
    let w = 0, wb = 0, wl = 0;
    for (let i = 0; i < fits; i++) {
      const q = Math.exp(-(F[4 * i]! - bestSsr) / (2 * s2));
      w += q; wb += q * F[4 * i + 1]!; wl += q * F[4 * i + 3]!;
    }
    const slope = wb / w, level = wl / w;
    let v = 0;
    for (let i = 0; i < fits; i++) {
      const q = Math.exp(-(F[4 * i]! - bestSsr) / (2 * s2)), d = F[4 * i + 1]! - slope;
      v += q * (s2 * F[4 * i + 2]! + d * d);
    }
    return { seg: { slope, se: Math.sqrt(v / w), level, dof: n - 3 }, ssr: bestSsr };
  }

  private score(): number {
    const o = this.opts;
    this.withinHorizon = 0;
    const sign = o.direction === "up" ? 1 : -1;
    const headroom = sign * (o.capacity - this.level);
    const rate = sign * this.slope;
    if (headroom <= 0) { this.timeToExhaustionS = 0; this.withinHorizon = 1; return 1; }
    if (!(rate > 0)) { this.timeToExhaustionS = Infinity; return 0; }
    this.timeToExhaustionS = headroom / rate;
    let significance = Math.min(1, Math.max(0, (rate / Math.max(this.slopeSe, 1e-12) - 3) / 2));
    // Only a significant slope can score, so only then is it worth asking whether it is a step.
    this.hinge = null;
    this.step = significance > 0 && this.stepFitsBetter(this.lineSsr);
    if (this.step) return 0;
    const h = this.hinge as Segment | null;
    // Still rising at the end of the window? A ramp that stopped (a surge that levelled off, a deploy
    // that ramped up) is no longer heading for the limit: the newest third of the points must not
    // rise significantly slower than the whole window's line (3 standard errors of their own slope;
    // a ramp that has just begun rises faster than the line, so it is not mistaken for a stop).
    const recent = this.recentSlope();
    this.stalled = recent !== null && (sign * recent.slope - rate) / Math.max(recent.se, 1e-12) < -3;
    if (this.stalled) return 0;
    // The local slope: a trend that began inside the window (the hinge), or one that is speeding up
    // (the newest third, significant on its own: a leak that accelerates is under-forecast by the
    // window's line, and with no single step fitting better there is no hinge, so the forecast fell
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
      if (local === h) significance = Math.min(1, Math.max(0, (fr / Math.max(se, 1e-12) - 3) / 2));
    }
    // P(true rate > headroom / horizon): exhaustion within the horizon, given the fit's uncertainty.
    this.withinHorizon = studentTCdf((fr - hr / o.horizonS) / Math.max(se, 1e-12), dof);
    return significance * this.withinHorizon;
  }
}
