// The last `capacity` values of a series kept both in arrival order (a ring) and sorted, so that
// ranks and quantiles of the recent past cost a binary search. One insertion moves at most
// `capacity` doubles (a memmove): cheaper than a tree for the window sizes detectors use (<= 4096).

export class SortedWindow {
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private head = 0;
  size = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`SortedWindow capacity must be a positive integer, got ${capacity}`);
    this.ring = new Float64Array(capacity);
    this.sorted = new Float64Array(capacity);
  }

  push(x: number): void {
    const s = this.sorted;
    if (this.size === this.capacity) {
      const old = this.ring[this.head]!;
      const at = this.lowerBound(old);
      // Remove `old` and insert `x` with one shift in the direction between the two positions.
      let to = this.lowerBound(x);
      if (to > at) {
        to--;
        s.copyWithin(at, at + 1, to + 1);
      } else if (to < at) {
        s.copyWithin(to + 1, to, at);
      }
      s[to] = x;
      this.ring[this.head] = x;
      this.head = (this.head + 1) % this.capacity;
      return;
    }
    const to = this.lowerBound(x);
    s.copyWithin(to + 1, to, this.size);
    s[to] = x;
    this.ring[(this.head + this.size) % this.capacity] = x;
    this.size++;
  }

  /** Index of the first stored value >= x. */
  lowerBound(x: number): number {
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Index of the first stored value > x. */
  upperBound(x: number): number {
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! <= x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** The q-quantile (0..1) by linear interpolation between order statistics; NaN when empty. */
  quantile(q: number): number {
    if (this.size === 0) return NaN;
    const pos = q * (this.size - 1);
    const i = Math.floor(pos), f = pos - i;
    const a = this.sorted[i]!;
    return f === 0 ? a : a + f * (this.sorted[Math.min(i + 1, this.size - 1)]! - a);
  }

  /** The i-th smallest value held (0-based). */
  at(i: number): number { return i >= 0 && i < this.size ? this.sorted[i]! : NaN; }

  min(): number { return this.size ? this.sorted[0]! : NaN; }
  max(): number { return this.size ? this.sorted[this.size - 1]! : NaN; }

  /** The value pushed `age` pushes ago (0 = the latest); NaN if not held. */
  back(age: number): number {
    if (age >= this.size) return NaN;
    return this.ring[(this.head + this.size - 1 - age + this.capacity) % this.capacity]!;
  }

  clear(): void { this.size = 0; this.head = 0; }
}

/** Median of values[0..n) for a handful of values (an insertion sort into `scratch`: no allocation). */
export function smallMedian(values: Float64Array, n: number, scratch: Float64Array): number {
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    let j = i - 1;
    while (j >= 0 && scratch[j]! > v) { scratch[j + 1] = scratch[j]!; j--; }
    scratch[j + 1] = v;
  }
  return n % 2 ? scratch[(n - 1) >> 1]! : (scratch[n / 2 - 1]! + scratch[n / 2]!) / 2;
}
