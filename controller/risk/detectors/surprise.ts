// How surprising a value is against a window of recent values, in nats: -ln of its two-sided
// empirical tail probability, plus a linear extrapolation beyond the window's range (in units of
// the distance from the median to that extreme), so a value far outside everything seen scores
// higher than one just past the edge. Distribution-free: it needs no scale, mean or variance, so
// it behaves the same on CPU percentages, byte counts and latencies.
import type { SortedWindow } from "./sorted-window.js";

export type Tail = "both" | "up" | "down";

export function tailSurprise(w: SortedWindow, x: number, side: Tail = "both", minHistory = 16): number {
  const n = w.size;
  if (n < minHistory) return 0;
  const med = w.quantile(0.5);
  // A constant history still needs a scale, or any change would be infinitely surprising.
  const floor = 1e-6 * Math.max(1, Math.abs(med));
  if (x > med) {
    if (side === "down") return 0;
    let s = -Math.log((n - w.lowerBound(x) + 1) / (n + 1));
    const mx = w.max();
    if (x > mx) s += (x - mx) / Math.max(mx - med, floor);
    return s;
  }
  if (side === "up") return 0;
  let s = -Math.log((w.upperBound(x) + 1) / (n + 1));
  const mn = w.min();
  if (x < mn) s += (mn - x) / Math.max(med - mn, floor);
  return s;
}
