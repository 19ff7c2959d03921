// Seeded randomness (no Math.random in logic: runs must repeat exactly): a 32-bit generator and a
// standard normal from it. Used by the sample component, the demo, tests and benchmarks.
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A byte filler for the host's WASI random_get, drawn from a seeded generator. */
export function seededBytes(rand: () => number): (buf: Uint8Array) => void {
  return (buf) => { for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rand() * 256); };
}
