// Change-point detection for one series: a two-sided CUSUM of robust z-scores against a reference
// window (median and IQR of the last `window` points, so one outlier moves neither). It catches a
// sustained shift of the mean that is small next to the noise (on means of `blockPoints` points: real
// series are autocorrelated, and a CUSUM over single points alarms on every slow wander), which the baseline's tail views see
// only when the shift is large. After an alarm the sums restart and the reference re-learns the new
// level, so one shift raises one alarm; the score decays from the alarm with `memoryPoints`.
import { SortedWindow } from "./sorted-window.js";
import type { Tail } from "./surprise.js";

export interface ChangePointOptions {
  window: number;
  /** Allowed drift per point, in robust standard deviations (CUSUM's k). */
  drift: number;
  /** Decision level in robust standard deviations (CUSUM's h): the score is 0.5 there. */
  threshold: number;
  /** How many points the score of an alarm takes to decay to ~37 %. */
  memoryPoints: number;
  side: Tail;
  minHistory: number;
  /** Points averaged into one CUSUM step: block means are far less autocorrelated than points. */
  blockPoints: number;
}

export const DEFAULT_CHANGEPOINT: ChangePointOptions = { window: 256, drift: 0.5, threshold: 8, memoryPoints: 64, side: "both", minHistory: 16, blockPoints: 16 };

export class ChangePointDetector {
  private readonly ref: SortedWindow;
  private up = 0;
  private down = 0;
  private lastAlarm = 0;
  private sinceAlarm = Infinity;

  constructor(readonly opts: ChangePointOptions = DEFAULT_CHANGEPOINT) {
    this.ref = new SortedWindow(opts.window);
  }

  private blockSum = 0;
  private blockN = 0;
  private held = 0;

  update(x: number): number {
    const o = this.opts;
    this.blockSum += x;
    if (++this.blockN < o.blockPoints) { this.sinceAlarm++; return Math.max(this.held, this.remembered()); }
    x = this.blockSum / this.blockN;
    this.blockSum = 0; this.blockN = 0;
    let score = 0;
    if (this.ref.size >= o.minHistory) {
      const med = this.ref.quantile(0.5);
      const sd = Math.max((this.ref.quantile(0.75) - this.ref.quantile(0.25)) / 1.349, 1e-6 * Math.max(1, Math.abs(med)));
      const z = Math.max(-50, Math.min(50, (x - med) / sd));
      this.up = o.side === "down" ? 0 : Math.max(0, this.up + z - o.drift);
      this.down = o.side === "up" ? 0 : Math.max(0, this.down - z - o.drift);
      const level = Math.max(this.up, this.down);
      const r = level / o.threshold;
      score = 1 - Math.pow(2, -r * r);
      if (level >= o.threshold) {
        this.lastAlarm = score;
        this.sinceAlarm = 0;
        this.up = this.down = 0;
        // Re-learn the reference from the new level instead of alarming on it again and again.
        this.ref.clear();
      }
    }
    this.sinceAlarm++;
    this.ref.push(x);
    this.held = score;
    return Math.max(score, this.remembered());
  }

  private remembered(): number {
    return this.sinceAlarm < Infinity ? this.lastAlarm * Math.exp(-this.sinceAlarm / this.opts.memoryPoints) : 0;
  }
}
