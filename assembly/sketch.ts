// Fixed-memory, mergeable latency sketch with a guaranteed 1% relative error on every quantile
// (DDSketch's construction with the linearly interpolated log2 mapping). Values are in
// microseconds. The decoder and quantile code live in controller/telemetry/sketch.ts and use the
// same constants; the report carries them so a mismatch is detected, not silently merged.
//
// Mapping: f(v) = e + m where v = 2^e * (1 + m), m in [0,1) (exponent and mantissa of the double).
// df/d(ln v) lies in [1, 2), so buckets of width 1/M in f span at most ln(gamma) in ln v when
// M = 1/ln(gamma), gamma = (1+a)/(1-a). Each bucket is then reported as the harmonic mean of its
// bounds, whose relative error is at most (gamma-1)/(gamma+1) = a.

export const RELATIVE_ACCURACY: f64 = 0.01;
export const MULTIPLIER: f64 = 1.0 / Math.log((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY));
/** Values below 1 us are counted as zero; values at or above 2^32 us (~71 min) land in the last bucket. */
export const MAX_OCTAVES: i32 = 32;
export const NUM_BUCKETS: i32 = <i32>Math.ceil(<f64>MAX_OCTAVES * MULTIPLIER) + 1;
// For v >= 1 the bits of v, read as an integer, are (e + 1023) * 2^52 + mantissa, so
// bits * 2^-52 - 1023 = e + m: one integer-to-float conversion gives the mapping.
export const INDEX_SCALE: f64 = MULTIPLIER * 2.220446049250313e-16;
export const INDEX_SHIFT: f64 = 1023.0 * MULTIPLIER;

export class Sketch {
  counts: StaticArray<u32> = new StaticArray<u32>(NUM_BUCKETS);
  count: u64 = 0;
  zeroCount: u64 = 0;
  sum: f64 = 0;
  min: f64 = Infinity;
  max: f64 = -Infinity;
  lo: i32 = NUM_BUCKETS; // lowest non-empty bucket, NUM_BUCKETS when none
  hi: i32 = -1;          // highest non-empty bucket

  @inline static index(v: f64): i32 {
    const i = <i32>(<f64>reinterpret<i64>(v) * INDEX_SCALE - INDEX_SHIFT);
    return i < NUM_BUCKETS ? i : NUM_BUCKETS - 1;
  }

  @inline add(v: f64): void {
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (!(v >= 1.0)) { this.zeroCount++; return; } // also catches NaN
    const i = Sketch.index(v);
    unchecked(this.counts[i]++);
    if (i < this.lo) this.lo = i;
    if (i > this.hi) this.hi = i;
  }

  merge(o: Sketch): void {
    if (o.count == 0) return;
    for (let i = o.lo; i <= o.hi; i++) unchecked(this.counts[i] += unchecked(o.counts[i]));
    if (o.lo < this.lo) this.lo = o.lo;
    if (o.hi > this.hi) this.hi = o.hi;
    this.count += o.count;
    this.zeroCount += o.zeroCount;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
  }

  clear(): void {
    for (let i = this.lo; i <= this.hi; i++) unchecked(this.counts[i] = 0);
    this.lo = NUM_BUCKETS; this.hi = -1;
    this.count = 0; this.zeroCount = 0; this.sum = 0;
    this.min = Infinity; this.max = -Infinity;
  }
}
