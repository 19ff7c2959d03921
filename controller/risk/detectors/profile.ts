// A learnt seasonal profile (e.g. the daily shape of CPU or latency): the period is cut into `bins`
// slots, each holding a robust running level and spread of the values seen at that time of the cycle
// over past periods. A point is scored by how far the recent values sit from what this time of the
// cycle usually shows, in units of that slot's spread, so a daily peak is expected (no alarm at the
// busy hour) and CPU at 0.8 where this hour normally shows 0.35 is a deviation even when the last
// hour's history was busy. Unlike the seasonal residual view (baseline.ts), which needs the raw
// point one period back, the profile is a few numbers per slot: a day at any scrape interval, and it
// is persisted (state()/load()), so a restarted controller keeps it.
//
// Learning: a slot's level and spread are exponentially weighted (memory `memoryPeriods` periods,
// an ordinary mean for the first ones) and learn only points within levelZ/2 of the expected value,
// plus one in eight of the others, so a sustained incident does not become "normal for 3 pm" while a
// lasting change of shape is still learnt. A slot needs `minPeriods` periods of data before it
// scores. The expected value interpolates linearly between neighbouring slots.
// The score uses the same units as the level view (robust z; 0.5 at levelZ): the smaller, same-sign,
// of the point's and the recent median's deviation, so one spike does not score as a shift.

export interface ProfileOptions {
  periodMs: number;
  bins: number;
  memoryPeriods: number;
  minPeriods: number;
  /** Robust z at which the score is 0.5. */
  levelZ: number;
  side: "up" | "down" | "both";
}

export const DEFAULT_PROFILE: Omit<ProfileOptions, "periodMs" | "side"> = { bins: 96, memoryPeriods: 7, minPeriods: 2, levelZ: 6 };

/** What persists of a profile: per slot the points learnt, the periods they span, the last period, level and spread. */
export interface ProfileState { periodMs: number; bins: number; visits: number[]; periods: number[]; lastPeriod: number[]; level: number[]; spread: number[] }

export class ProfileDetector {
  private readonly visits: Float64Array;
  private readonly periods: Float64Array;
  private readonly lastPeriod: Float64Array;
  private readonly level: Float64Array;
  private readonly spread: Float64Array;
  private skipped = 0;
  /** What the last update's slot expected (NaN: not learnt yet), and the z behind the score. */
  expected = NaN;
  z = 0;
  score = 0;
  /** Points at or before this time are scored but not learnt (already in a loaded profile). */
  learntUntilMs = -Infinity;

  constructor(readonly opts: ProfileOptions) {
    if (!(opts.periodMs > 0)) throw new RangeError(`profile period must be positive, got ${opts.periodMs}`);
    if (!(Number.isInteger(opts.bins) && opts.bins >= 2)) throw new RangeError(`profile bins must be an integer >= 2, got ${opts.bins}`);
    const b = opts.bins;
    this.visits = new Float64Array(b); this.periods = new Float64Array(b); this.lastPeriod = new Float64Array(b).fill(NaN);
    this.level = new Float64Array(b); this.spread = new Float64Array(b);
  }

  /** Scores x at tMs against the profile, then learns it. `recentMedian` is the median of the last few values (NaN: unknown). */
  update(tMs: number, x: number, recentMedian: number): number {
    const o = this.opts, B = o.bins;
    const phase = ((((tMs % o.periodMs) + o.periodMs) % o.periodMs) / o.periodMs) * B;
    const i0 = Math.min(B - 1, Math.floor(phase)), w = phase - i0;
    // Interpolate between slot centres (slot i is centred at i + 0.5).
    const a = w < 0.5 ? (i0 - 1 + B) % B : i0, b = w < 0.5 ? i0 : (i0 + 1) % B, f = w < 0.5 ? w + 0.5 : w - 0.5;
    let score = 0;
    this.expected = NaN; this.z = 0;
    let learn = true;
    if (this.periods[a]! >= o.minPeriods && this.periods[b]! >= o.minPeriods) {
      const exp = this.level[a]! * (1 - f) + this.level[b]! * f;
      // Mean absolute deviation to a Gaussian sd (x 1.2533), never below a relative floor.
      const sd = Math.max((this.spread[a]! * (1 - f) + this.spread[b]! * f) * 1.2533, 1e-9 * Math.max(1, Math.abs(exp)));
      const zx = (x - exp) / sd;
      const zm = Number.isNaN(recentMedian) ? zx : (recentMedian - exp) / sd;
      const z = zm * zx > 0 ? Math.sign(zx) * Math.min(Math.abs(zx), Math.abs(zm)) : 0;
      this.expected = exp; this.z = z;
      learn = Math.abs(zx) < o.levelZ / 2;
      if (o.side === "both" || (o.side === "up") === z > 0) {
        const r = Math.abs(z) / o.levelZ;
        score = 1 - Math.pow(2, -r * r);
      }
    }
    if (tMs > this.learntUntilMs && (learn || ++this.skipped % 8 === 0)) this.learn(i0, tMs, x);
    this.score = score;
    return score;
  }

  private learn(i: number, tMs: number, x: number): void {
    const p = Math.floor(tMs / this.opts.periodMs);
    if (this.lastPeriod[i] !== p) { this.periods[i] = this.periods[i]! + 1; this.lastPeriod[i] = p; }
    const v = (this.visits[i] = this.visits[i]! + 1);
    if (v === 1) { this.level[i] = x; this.spread[i] = 0; return; }
    // An ordinary mean over the first memoryPeriods periods, then exponential with that memory:
    // the visits one period brings (however often it is scraped) weigh one period together.
    const perPeriod = v / this.periods[i]!;
    const alpha = 1 / Math.min(v, this.opts.memoryPeriods * perPeriod);
    const d = x - this.level[i]!;
    this.level[i] = this.level[i]! + alpha * d;
    this.spread[i] = this.spread[i]! + alpha * (Math.abs(d) - this.spread[i]!);
  }

  state(): ProfileState {
    return { periodMs: this.opts.periodMs, bins: this.opts.bins, visits: [...this.visits], periods: [...this.periods], lastPeriod: [...this.lastPeriod].map((x) => (Number.isNaN(x) ? -1 : x)), level: [...this.level], spread: [...this.spread] };
  }

  /**
   * Takes back a saved profile; false (and nothing changed) when its period or bins differ from this
   * one's. learntUntilMs: the newest point the profile already learnt (replayed points up to it are not learnt twice).
   */
  load(s: ProfileState, learntUntilMs = -Infinity): boolean {
    const B = this.opts.bins;
    if (s.periodMs !== this.opts.periodMs || s.bins !== B || [s.visits, s.periods, s.lastPeriod, s.level, s.spread].some((a) => a.length !== B)) return false;
    this.visits.set(s.visits); this.periods.set(s.periods); this.level.set(s.level); this.spread.set(s.spread);
    this.lastPeriod.set(s.lastPeriod.map((x) => (x < 0 ? NaN : x)));
    this.learntUntilMs = learntUntilMs;
    return true;
  }
}
