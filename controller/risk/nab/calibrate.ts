// NAB-only score calibration: each series' combined score judged against that series' own record.
// The views score on different scales (a baseline view's range edge is 0.5, an envelope breach at
// least 0.9, a clean series' seasonal break 0.66-0.83), and what is a high score depends on the
// series: a noisy real metric breaches its envelope every few hundred points, NAB's clean daily
// synthetic series stay under 0.53 until their anomaly. One threshold pooled over the corpus (NAB's rule) cannot
// suit both on the raw scores: the real series want it near the envelope's 0.9 floor, which misses
// the synthetic series' seasonal breaks.
//
// The calibrated score is raw * min(1, raw / M), where M is the highest raw score the same series
// gave in the last `memory` points before this one (1 when it has given none): the geometric mean,
// squared, of the absolute score and the score relative to the series' record. A new record is
// reported unchanged; a repeat of what the series already does is discounted by how far it falls
// short of its record (a 0.9 breach where breaches reach 0.95 reports 0.85, a 0.55 wobble 0.32,
// while a clean series' first 0.66 is a record and stays 0.66). Alarm suppression (SeriesDetector's
// rule: for `restPoints` after a reported score only a higher one is reported in full, anything
// else is halved) applies to the calibrated score, as the inner detector applies it to the raw one.
// No constant here is fitted to NAB: the memory is the envelope view's, the suppression the
// detector's own.
// Strictly streaming: the score of row i depends on rows 0..i only. O(1) amortised per point.
import type { SeriesDetector } from "../detectors/series.js";
import { DEFAULT_ENVELOPE, SlidingMax } from "../detectors/envelope.js";

export interface CalibrationOptions {
  /** Raw scores the record remembers (default: the envelope view's memory). */
  memory: number;
  /** Alarm suppression after a reported score, in points (default: SeriesDetector's, 200). */
  restPoints: number;
}

export const DEFAULT_CALIBRATION: CalibrationOptions = { memory: DEFAULT_ENVELOPE.memory, restPoints: 200 };

/** raw * min(1, raw / record); a series without an earlier positive score has no record to fall short of. */
export function relativeToRecord(raw: number, record: number): number {
  return record > 0 && raw < record ? (raw * raw) / record : raw;
}

/** A SeriesDetector's views, calibrated against the series' record, then alarm-suppressed. */
export class CalibratedDetector {
  private readonly record: SlidingMax;
  private peak = 0;
  private sincePeak = Infinity;
  /** The last update's raw combined score (the inner views' largest, before any suppression), the
   *  record it was judged against, and the reported score. */
  raw = 0;
  recordScore = 0;
  score = 0;

  constructor(readonly inner: SeriesDetector, readonly opts: CalibrationOptions = DEFAULT_CALIBRATION) {
    if (!(opts.restPoints >= 0)) throw new RangeError(`calibration restPoints must be >= 0, got ${opts.restPoints}`);
    if (!(Number.isInteger(opts.memory) && opts.memory > 0)) throw new RangeError(`calibration memory must be a positive integer, got ${opts.memory}`);
    this.record = new SlidingMax(opts.memory);
  }

  update(tMs: number, x: number): number {
    const d = this.inner;
    d.update(tMs, x);
    // The views' largest score, before the inner detector's suppression.
    const raw = d.rawScore;
    const record = this.record.empty ? 0 : this.record.max;
    let s = relativeToRecord(raw, record);
    this.record.push(raw);
    this.sincePeak++;
    if (this.sincePeak <= this.opts.restPoints && s <= this.peak) s *= 0.5;
    else { this.peak = s; this.sincePeak = 0; }
    this.raw = raw;
    this.recordScore = record;
    this.score = s;
    return s;
  }
}
