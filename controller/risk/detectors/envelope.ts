// The long-memory envelope view: a point, or the mean of the last `meanPoints` points, that leaves
// the range of everything seen in the last `memory` points by more than `tolerance` of that range.
// This is the "spatial anomaly" rule of Numenta's HTM detector in NAB (tolerance 5% of the range
// seen so far), applied at two time scales: single points catch spikes and drops past any earlier
// extreme, the short mean catches a sustained move past them that no single point makes. It is the
// sharpest of the views and the rarest to fire on a healthy series: once the memory holds a few
// normal cycles, a healthy series seldom sets a new record by a margin. Memory is bounded (sliding
// min/max with monotonic deques, amortised O(1) per point), so an old outage does not widen the
// range for ever.
import type { Tail } from "./surprise.js";

export interface EnvelopeOptions {
  /** Points the range remembers. */
  memory: number;
  /** Margin beyond the range, as a fraction of the range, before a point counts as outside. */
  tolerance: number;
  /** Points in the short mean that is checked against its own range. */
  meanPoints: number;
  /** Points seen before the view may score. */
  minHistory: number;
}

export const DEFAULT_ENVELOPE: EnvelopeOptions = { memory: 8192, tolerance: 0.05, meanPoints: 16, minHistory: 16 };

/** Maximum of the last `capacity` pushes: a monotonic deque of (index, value), decreasing in value. */
export class SlidingMax {
  private readonly idx: Int32Array;
  private readonly val: Float64Array;
  private head = 0;
  private len = 0;
  private n = 0;

  constructor(private readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`sliding maximum capacity must be a positive integer, got ${capacity}`);
    this.idx = new Int32Array(capacity);
    this.val = new Float64Array(capacity);
  }

  get empty(): boolean { return this.len === 0; }
  /** The maximum (undefined when empty: check `empty`). */
  get max(): number { return this.val[this.head]!; }

  push(x: number): void {
    const c = this.capacity, i = this.n++;
    // Expire the front once it leaves the window, then drop the entries the new point dominates.
    if (this.len > 0 && this.idx[this.head]! <= i - c) { this.head = (this.head + 1) % c; this.len--; }
    while (this.len > 0 && this.val[(this.head + this.len - 1) % c]! <= x) this.len--;
    const tail = (this.head + this.len) % c;
    this.idx[tail] = i; this.val[tail] = x; this.len++;
  }
}

/** Minimum and maximum of the last `capacity` pushes (the minimum is the maximum of the negations). */
class SlidingRange {
  private readonly hi: SlidingMax;
  private readonly negLo: SlidingMax;
  constructor(capacity: number) { this.hi = new SlidingMax(capacity); this.negLo = new SlidingMax(capacity); }
  get empty(): boolean { return this.hi.empty; }
  max(): number { return this.hi.max; }
  min(): number { return -this.negLo.max; }
  push(x: number): void { this.hi.push(x); this.negLo.push(-x); }
}

export class EnvelopeDetector {
  private readonly values: SlidingRange;
  private readonly means: SlidingRange;
  private readonly recent: Float64Array;
  private recentSum = 0;
  private points = 0;
  /** Which scale left the envelope at the last update (null: neither). */
  scale: "value" | "mean" | null = null;

  constructor(readonly opts: EnvelopeOptions = DEFAULT_ENVELOPE, readonly side: Tail = "both") {
    if (!(Number.isInteger(opts.memory) && opts.memory > 0)) throw new RangeError(`envelope memory must be a positive integer, got ${opts.memory}`);
    if (!(Number.isInteger(opts.meanPoints) && opts.meanPoints > 0)) throw new RangeError(`envelope meanPoints must be a positive integer, got ${opts.meanPoints}`);
    if (!(opts.tolerance >= 0)) throw new RangeError(`envelope tolerance must be >= 0, got ${opts.tolerance}`);
    this.values = new SlidingRange(opts.memory);
    this.means = new SlidingRange(opts.memory);
    this.recent = new Float64Array(opts.meanPoints);
  }

  /**
   * Scores the point against the envelope before it, then learns it. 0 inside; outside, 0.9 at the
   * margin rising to 1 at a full range beyond it, so any breach outranks the tail views' edge (0.5).
   */
  update(x: number): number {
    const o = this.opts, k = o.meanPoints;
    const slot = this.points % k;
    this.recentSum += x - this.recent[slot]!;
    this.recent[slot] = x;
    this.points++;
    const scoring = this.points > o.minHistory;
    let best = 0;
    this.scale = null;
    if (scoring && !this.values.empty) {
      const s = this.breach(this.values, x);
      if (s > best) { best = s; this.scale = "value"; }
    }
    this.values.push(x);
    if (this.points >= k) {
      // Re-summing the ring once per full turn keeps floating-point drift from accumulating.
      if (slot === k - 1) { let sum = 0; for (let i = 0; i < k; i++) sum += this.recent[i]!; this.recentSum = sum; }
      const m = this.recentSum / k;
      if (scoring && !this.means.empty) {
        const s = this.breach(this.means, m);
        if (s > best) { best = s; this.scale = "mean"; }
      }
      this.means.push(m);
    }
    return best;
  }

  private breach(r: SlidingRange, x: number): number {
    const lo = r.min(), hi = r.max(), range = hi - lo;
    if (!(range > 0)) return 0; // a constant history has no scale to judge a margin by
    const margin = this.opts.tolerance * range;
    const excess = x > hi + margin && this.side !== "down" ? x - hi : x < lo - margin && this.side !== "up" ? lo - x : 0;
    return excess > 0 ? 0.9 + 0.1 * Math.min(1, excess / range) : 0;
  }
}
