// One series' detectors together: the robust seasonal baseline, change points and (for saturating
// resources) the exhaustion forecast, combined into one score in [0, 1] with the view that gave it.
// The combined score goes through alarm suppression: once a score has been reported, the next
// `restPoints` points report only scores above it (anything else is halved), so one incident is one
// alarm, not a burst, and repeats of a known condition do not re-alarm. The same class scores NAB
// (scripts/nab.ts) and the controller's component metrics.
import { BaselineDetector, DEFAULT_BASELINE, type BaselineOptions } from "./baseline.js";
import { ChangePointDetector, DEFAULT_CHANGEPOINT, type ChangePointOptions } from "./changepoint.js";
import { TrendDetector, DEFAULT_TREND, type TrendOptions } from "./trend.js";
import { EnvelopeDetector, DEFAULT_ENVELOPE, type EnvelopeOptions } from "./envelope.js";
import type { Side } from "./surprise.js";

export interface SeriesOptions {
  side: Side;
  baseline: BaselineOptions;
  /** null: no change-point detector. */
  changePoint: ChangePointOptions | null;
  /** null: not a saturating resource. */
  trend: TrendOptions | null;
  /** null: no long-memory envelope view. */
  envelope: EnvelopeOptions | null;
  /** Points after a reported score during which only a higher score is reported in full. */
  restPoints: number;
}

export type SignalView = "value" | "mean" | "seasonal" | "level" | "change" | "trend" | "envelope";

export function seriesOptions(o: { side?: Side; window?: number; seasonMs?: number; capacity?: number; horizonS?: number; exhaustion?: "up" | "down"; changePoint?: boolean; restPoints?: number; levelZ?: number; envelope?: boolean } = {}): SeriesOptions {
  const side = o.side ?? "both";
  return {
    side,
    baseline: { ...DEFAULT_BASELINE, side, window: o.window ?? DEFAULT_BASELINE.window, seasonMs: o.seasonMs ?? DEFAULT_BASELINE.seasonMs, levelZ: o.levelZ ?? DEFAULT_BASELINE.levelZ },
    changePoint: o.changePoint === false ? null : { ...DEFAULT_CHANGEPOINT, side, window: Math.min(DEFAULT_CHANGEPOINT.window, o.window ?? Infinity) },
    trend: o.capacity === undefined ? null : { ...DEFAULT_TREND, capacity: o.capacity, horizonS: o.horizonS ?? DEFAULT_TREND.horizonS, direction: o.exhaustion ?? "up" },
    envelope: o.envelope ? { ...DEFAULT_ENVELOPE } : null,
    restPoints: o.restPoints ?? 200,
  };
}

export class SeriesDetector {
  readonly baseline: BaselineDetector;
  readonly changePoint: ChangePointDetector | null;
  readonly trend: TrendDetector | null;
  readonly envelope: EnvelopeDetector | null;
  private peak = 0;
  private sincePeak = Infinity;
  /** The last update's combined score (after suppression), the view behind it, and the raw parts. */
  score = 0;
  view: SignalView = "value";
  baselineScore = 0;
  changeScore = 0;
  trendScore = 0;
  envelopeScore = 0;
  lastValue = NaN;
  lastT = NaN;
  points = 0;

  constructor(readonly opts: SeriesOptions = seriesOptions()) {
    this.baseline = new BaselineDetector(opts.baseline);
    this.changePoint = opts.changePoint ? new ChangePointDetector(opts.changePoint) : null;
    this.trend = opts.trend ? new TrendDetector(opts.trend) : null;
    this.envelope = opts.envelope ? new EnvelopeDetector(opts.envelope, opts.side) : null;
  }

  update(tMs: number, x: number): number {
    this.points++;
    this.lastValue = x;
    this.lastT = tMs;
    let s = (this.baselineScore = this.baseline.update(tMs, x));
    let view: SignalView = this.baseline.view;
    if (this.changePoint) {
      this.changeScore = this.changePoint.update(x);
      if (this.changeScore > s) { s = this.changeScore; view = "change"; }
    }
    if (this.trend) {
      this.trendScore = this.trend.update(tMs, x);
      if (this.trendScore > s) { s = this.trendScore; view = "trend"; }
    }
    if (this.envelope) {
      this.envelopeScore = this.envelope.update(x);
      if (this.envelopeScore > s) { s = this.envelopeScore; view = "envelope"; }
    }
    this.sincePeak++;
    if (this.sincePeak <= this.opts.restPoints && s <= this.peak) s *= 0.5;
    else { this.peak = s; this.sincePeak = 0; }
    this.view = view;
    this.score = s;
    return s;
  }
}
