// Immutable byte strings held by the configuration, compared against (ptr, len) views of host
// memory without allocating, plus the hashes used for body digests and sticky routing.

export class Bytes {
  readonly buf: ArrayBuffer;
  readonly ptr: usize;
  readonly len: usize;

  constructor(s: string) {
    this.buf = String.UTF8.encode(s);
    this.ptr = changetype<usize>(this.buf);
    this.len = <usize>this.buf.byteLength;
  }

  equals(p: usize, l: usize): bool {
    return l == this.len && memory.compare(this.ptr, p, l) == 0;
  }

  /** True when the bytes at p start with this value. */
  prefixOf(p: usize, l: usize): bool {
    return l >= this.len && memory.compare(this.ptr, p, this.len) == 0;
  }
}

export function bytesEqualAny(list: Array<Bytes>, p: usize, l: usize): bool {
  for (let i = 0, n = list.length; i < n; i++) if (unchecked(list[i]).equals(p, l)) return true;
  return false;
}

// FNV-1a 64: streamable across body chunks, which a body digest needs.
export const FNV_OFFSET: u64 = 0xcbf29ce484222325;
const FNV_PRIME: u64 = 0x100000001b3;

export function fnv1a(h: u64, p: usize, l: usize): u64 {
  const end = p + l;
  while (p < end) {
    h ^= <u64>load<u8>(p);
    h *= FNV_PRIME;
    p++;
  }
  return h;
}

/** Finaliser (splitmix64) so that nearby keys spread over the whole 64-bit range. */
export function mix64(x: u64): u64 {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27; x *= 0x94d049bb133111eb;
  x ^= x >> 31;
  return x;
}

/** xorshift64*: the filter's only randomness, seeded once from WASI random_get. */
export class Rng {
  state: u64 = 0x9e3779b97f4a7c15;
  seed(s: u64): void { this.state = s == 0 ? 0x9e3779b97f4a7c15 : s; }
  next(): u64 {
    let x = this.state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    this.state = x;
    return x * 0x2545f4914f6cdd1d;
  }
  /** Uniform in [0, n). */
  below(n: u32): u32 { return <u32>((this.next() >> 32) * <u64>n >> 32); }
}

/** A `:status` value ("200") as a number; 0 when it is not three digits >= 100. */
export function parseStatus(p: usize, l: usize): u32 {
  if (l != 3) return 0;
  let v: u32 = 0;
  for (let i: usize = 0; i < 3; i++) {
    const d = <u32>load<u8>(p + i) - 0x30;
    if (d > 9) return 0;
    v = v * 10 + d;
  }
  return v >= 100 ? v : 0;
}

/** The length of p[0..l) without a trailing ":port" (digits after a colon at index 1 or later); l when there is none. */
export function withoutPort(p: usize, l: usize): usize {
  let c = l;
  while (c > 0 && load<u8>(p + c - 1) >= 0x30 && load<u8>(p + c - 1) <= 0x39) c--;
  if (c == l || c < 2 || load<u8>(p + c - 1) != 0x3a) return l;
  return c - 1;
}
