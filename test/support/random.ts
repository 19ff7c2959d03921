// Seeded randomness for tests and benchmarks: the generators (host/random.ts) and latency distributions.
import { normal } from "../../host/random.js";
export { mulberry32, normal } from "../../host/random.js";

/** Latency distributions in microseconds. */
export const distributions: Record<string, (rand: () => number) => number> = {
  lognormal: (r) => Math.exp(Math.log(5000) + normal(r)),
  exponential: (r) => 1 - 2000 * Math.log(1 - r()),
  uniform: (r) => 1 + r() * 1e6,
  pareto: (r) => Math.min(1e9, 100 / Math.pow(1 - r(), 1 / 1.5)),
  bimodal: (r) => Math.max(1, r() < 0.9 ? 300 + 30 * normal(r) : 50000 + 5000 * normal(r)),
  sub_microsecond_mix: (r) => (r() < 0.1 ? r() : 1 + r() * 100),
};
