// Trend and time-to-exhaustion for a saturating resource (disk, memory, queue depth, replication
// lag): Holt's linear smoothing over irregular time steps gives a level and a slope per second; with
// a capacity the detector forecasts when the level reaches it. The score is 0.5 when exhaustion is
// one horizon away and rises to 1 as it nears; a slope that is not clearly above its own noise
// (under 2 standard errors) scores 0, so a noisy flat series never forecasts exhaustion.
export interface TrendOptions {
  /** The value at which the resource is exhausted (e.g. 1 for a utilisation ratio). */
  capacity: number;
  /** The forecast horizon in seconds: exhaustion this far ahead scores 0.5. */
  horizonS: number;
  /** Smoothing time constants in seconds for the level and the slope. */
  levelTauS: number;
  slopeTauS: number;
  /** Exhaustion is forecast only upwards (a queue filling), or downwards (free space falling). */
  direction: "up" | "down";
}

export const DEFAULT_TREND: Omit<TrendOptions, "capacity"> = { horizonS: 3600, levelTauS: 60, slopeTauS: 600, direction: "up" };

export class TrendDetector {
  level = NaN;
  /** Units per second. */
  slope = 0;
  private slopeVar = 0;
  private lastT = NaN;
  private lastGain = 1;
  /** Seconds until the level reaches capacity at the current slope (Infinity if it never does). */
  timeToExhaustionS = Infinity;

  constructor(readonly opts: TrendOptions) {
    if (!Number.isFinite(opts.capacity)) throw new RangeError(`trend capacity must be a finite number, got ${opts.capacity}`);
  }

  update(tMs: number, x: number): number {
    const o = this.opts;
    if (Number.isNaN(this.level)) { this.level = x; this.lastT = tMs; return 0; }
    const dt = (tMs - this.lastT) / 1000;
    if (!(dt > 0)) { this.level += (x - this.level) * 0.5; return this.score(); }
    this.lastT = tMs;
    const a = 1 - Math.exp(-dt / o.levelTauS), b = 1 - Math.exp(-dt / o.slopeTauS);
    const predicted = this.level + this.slope * dt;
    const level = predicted + a * (x - predicted);
    const observedSlope = (level - this.level) / dt;
    const innovation = observedSlope - this.slope;
    this.slope += b * innovation;
    this.slopeVar = (1 - b) * (this.slopeVar + b * innovation * innovation);
    this.level = level;
    this.lastGain = b;
    return this.score();
  }

  private score(): number {
    const o = this.opts;
    const sign = o.direction === "up" ? 1 : -1;
    const headroom = sign * (o.capacity - this.level);
    const rate = sign * this.slope;
    // Standard error of the smoothed slope: the innovation sd scaled by the smoothing's variance factor.
    const se = Math.sqrt((this.slopeVar * this.lastGain) / (2 - this.lastGain));
    if (headroom <= 0) { this.timeToExhaustionS = 0; return 1; }
    if (!(rate > 0)) { this.timeToExhaustionS = Infinity; return 0; }
    this.timeToExhaustionS = headroom / rate;
    const significance = Math.min(1, Math.max(0, (rate / Math.max(se, 1e-12) - 2) / 2));
    const r = this.timeToExhaustionS / o.horizonS;
    return significance / (1 + r * r);
  }
}
