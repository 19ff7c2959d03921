// Seeded randomness for tests and benchmarks (no Math.random: runs must repeat exactly).
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

/** Latency distributions in microseconds. */
export const distributions: Record<string, (rand: () => number) => number> = {
  lognormal: (r) => Math.exp(Math.log(5000) + normal(r)),
  exponential: (r) => 1 - 2000 * Math.log(1 - r()),
  uniform: (r) => 1 + r() * 1e6,
  pareto: (r) => Math.min(1e9, 100 / Math.pow(1 - r(), 1 / 1.5)),
  bimodal: (r) => Math.max(1, r() < 0.9 ? 300 + 30 * normal(r) : 50000 + 5000 * normal(r)),
  sub_microsecond_mix: (r) => (r() < 0.1 ? r() : 1 + r() * 100),
};
