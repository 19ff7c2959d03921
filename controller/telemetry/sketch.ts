// The controller's view of the filter's latency sketch (assembly/sketch.ts): same mapping, decoded
// from LatencySketch messages, mergeable, with quantiles. A report whose mapping constants differ
// from ours is refused: merging sketches with different mappings would silently be wrong.

export const RELATIVE_ACCURACY = 0.01;
export const MULTIPLIER = 1 / Math.log((1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY));
export const MAX_OCTAVES = 32;
export const NUM_BUCKETS = Math.ceil(MAX_OCTAVES * MULTIPLIER) + 1;
// The filter's formula (assembly/sketch.ts): the bits of v as a number, scaled. hi * 2^32 + lo
// rounds exactly as wasm's i64 -> f64 conversion does, so both sides pick the same bucket.
const INDEX_SCALE = MULTIPLIER * 2.220446049250313e-16;
const INDEX_SHIFT = 1023 * MULTIPLIER;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** The bucket of v >= 1 (us), exactly as the filter computes it. */
export function bucketIndex(v: number): number {
  f64[0] = v;
  const i = Math.trunc((u32[1]! * 4294967296 + u32[0]!) * INDEX_SCALE - INDEX_SHIFT);
  return i < NUM_BUCKETS ? i : NUM_BUCKETS - 1;
}

/** Smallest value of bucket i: the inverse of the mapping at i / MULTIPLIER. */
export function bucketLowerBound(i: number): number {
  const y = i / MULTIPLIER;
  const e = Math.floor(y);
  return 2 ** e * (1 + (y - e));
}

/** The value reported for bucket i: the harmonic mean of its bounds, within RELATIVE_ACCURACY of any value in it. */
export function bucketValue(i: number): number {
  const lo = bucketLowerBound(i), hi = bucketLowerBound(i + 1);
  return (2 * lo * hi) / (lo + hi);
}

export interface LatencySketchMessage {
  relativeAccuracy?: number;
  indexMultiplier?: number;
  indexOffset?: number;
  counts?: number[];
  zeroCount?: number | Long;
  sum?: number;
  min?: number;
  max?: number;
  count?: number | Long;
}

interface Long { toNumber(): number }
const num = (v: number | Long | undefined) => (v === undefined ? 0 : typeof v === "number" ? v : v.toNumber());

export class SketchDecodeError extends Error {}

const NO_BINS = new Float64Array(0);
/** Spare buckets on each side when a sketch's range grows by add(), so a stream of values rarely reallocates. */
const GROW_PAD = 16;

/**
 * A mergeable sketch whose buckets are stored for the range in use only (DDSketch's dense store that
 * grows): an empty sketch costs no array, a decoded report's sketch holds just its buckets, and a
 * merge walks the source's range, not all NUM_BUCKETS (the telemetry intake decodes and merges one
 * per target per report).
 */
export class LatencySketch {
  /** bins[j] counts bucket offset + j. */
  private bins: Float64Array = NO_BINS;
  private offset = 0;
  count = 0;
  zeroCount = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  add(v: number): void {
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (!(v >= 1)) { this.zeroCount++; return; }
    const i = bucketIndex(v);
    this.cover(i, i, GROW_PAD);
    this.bins[i - this.offset]!++;
  }

  /** The count of bucket i (0..NUM_BUCKETS-1). */
  countAt(i: number): number {
    const j = i - this.offset;
    return j >= 0 && j < this.bins.length ? this.bins[j]! : 0;
  }

  /** Bytes held by the bucket store. */
  get bytes(): number { return this.bins.byteLength; }

  /** The stored bucket range [offset, offset + bins.length): a view, not a copy. */
  range(): { offset: number; bins: Float64Array } { return { offset: this.offset, bins: this.bins }; }

  /** Grows the store to hold buckets lo..hi (plus pad on a side that grows). */
  private cover(lo: number, hi: number, pad: number): void {
    const curLo = this.offset, curHi = this.offset + this.bins.length - 1;
    if (this.bins.length > 0 && lo >= curLo && hi <= curHi) return;
    const newLo = this.bins.length === 0 ? Math.max(0, lo - pad) : lo < curLo ? Math.max(0, lo - pad) : curLo;
    const newHi = this.bins.length === 0 ? Math.min(NUM_BUCKETS - 1, hi + pad) : hi > curHi ? Math.min(NUM_BUCKETS - 1, hi + pad) : curHi;
    const next = new Float64Array(newHi - newLo + 1);
    if (this.bins.length > 0) next.set(this.bins, curLo - newLo);
    this.bins = next;
    this.offset = newLo;
  }

  /** Adds counts for buckets offset.. (the caller checked the range). */
  addBuckets(offset: number, counts: ArrayLike<number>): void {
    let lo = 0, hi = counts.length - 1;
    while (lo <= hi && !counts[lo]) lo++;
    while (hi >= lo && !counts[hi]) hi--;
    if (lo > hi) return;
    this.cover(offset + lo, offset + hi, 0);
    const base = offset - this.offset;
    for (let i = lo; i <= hi; i++) this.bins[base + i]! += counts[i]!;
  }

  /** Decodes a LatencySketch message; throws SketchDecodeError naming the field that is wrong. */
  static fromMessage(msg: LatencySketchMessage, where = "latency"): LatencySketch {
    const s = new LatencySketch();
    if (Math.abs((msg.relativeAccuracy ?? 0) - RELATIVE_ACCURACY) > 1e-12) {
      throw new SketchDecodeError(`${where}.relative_accuracy: expected ${RELATIVE_ACCURACY}, got ${msg.relativeAccuracy}`);
    }
    if (Math.abs((msg.indexMultiplier ?? 0) - MULTIPLIER) > 1e-9) {
      throw new SketchDecodeError(`${where}.index_multiplier: expected ${MULTIPLIER}, got ${msg.indexMultiplier}`);
    }
    const off = msg.indexOffset ?? 0;
    const counts = msg.counts ?? [];
    if (counts.length > 0 && (off < 0 || off + counts.length > NUM_BUCKETS)) {
      throw new SketchDecodeError(`${where}.index_offset: buckets ${off}..${off + counts.length - 1} outside 0..${NUM_BUCKETS - 1}`);
    }
    let total = 0;
    for (let i = 0; i < counts.length; i++) total += counts[i]!;
    s.addBuckets(off, counts);
    s.zeroCount = num(msg.zeroCount);
    s.count = num(msg.count);
    if (total + s.zeroCount !== s.count) {
      throw new SketchDecodeError(`${where}.count: ${s.count} does not equal the bucket counts (${total}) plus zero_count (${s.zeroCount})`);
    }
    s.sum = msg.sum ?? 0;
    s.min = s.count > 0 ? (msg.min ?? 0) : Infinity;
    s.max = s.count > 0 ? (msg.max ?? 0) : -Infinity;
    return s;
  }

  merge(o: LatencySketch): void {
    this.addBuckets(o.offset, o.bins);
    this.count += o.count;
    this.zeroCount += o.zeroCount;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
  }

  /** The q-quantile (0..1) of the values added, in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0 || !(q >= 0 && q <= 1)) return NaN;
    const rank = q * (this.count - 1);
    let seen = this.zeroCount;
    if (seen > rank) return Math.max(this.min, 0);
    for (let j = 0; j < this.bins.length; j++) {
      seen += this.bins[j]!;
      if (seen > rank) return Math.min(this.max, Math.max(this.min, bucketValue(this.offset + j)));
    }
    return this.max;
  }

  equals(o: LatencySketch): boolean {
    if (this.count !== o.count || this.zeroCount !== o.zeroCount) return false;
    const lo = Math.min(this.offset, o.offset), hi = Math.max(this.offset + this.bins.length, o.offset + o.bins.length);
    for (let i = lo; i < hi; i++) if (this.countAt(i) !== o.countAt(i)) return false;
    return this.min === o.min && this.max === o.max && Math.abs(this.sum - o.sum) <= 1e-9 * Math.max(1, Math.abs(this.sum));
  }
}

/** A sealed sketch holding only its used bucket range: what the telemetry store keeps per time bucket. */
export class CompactSketch {
  private constructor(
    readonly offset: number,
    readonly counts: Float64Array,
    readonly count: number,
    readonly zeroCount: number,
    readonly sum: number,
    readonly min: number,
    readonly max: number,
  ) {}

  static from(s: LatencySketch): CompactSketch {
    const { offset, bins } = s.range();
    let lo = 0, hi = bins.length - 1;
    while (lo <= hi && bins[lo] === 0) lo++;
    while (hi >= lo && bins[hi] === 0) hi--;
    const counts = lo <= hi ? bins.slice(lo, hi + 1) : new Float64Array(0);
    return new CompactSketch(offset + lo, counts, s.count, s.zeroCount, s.sum, s.min, s.max);
  }

  addTo(s: LatencySketch): void {
    s.addBuckets(this.offset, this.counts);
    s.count += this.count;
    s.zeroCount += this.zeroCount;
    s.sum += this.sum;
    if (this.min < s.min) s.min = this.min;
    if (this.max > s.max) s.max = this.max;
  }

  get bytes(): number { return 64 + this.counts.byteLength; }
}
