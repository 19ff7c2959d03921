// One series' detectors together: the robust seasonal baseline, change points and (for saturating
// resources) the exhaustion forecast, combined into one score in [0, 1] with the view that gave it.
// The combined score goes through alarm suppression: once a score has been reported, the next
// `restPoints` points report only scores above it (anything else is halved), so one incident is one
// alarm, not a burst, and repeats of a known condition do not re-alarm. The same class scores NAB
// (scripts/nab.ts) and the controller's component metrics.
// For the controller there is a second combination, riskScore (no suppression): the surprise views
// (baseline, change point, learnt profile, volatility; for a loaded resource weighted by how loaded
// it is) against the limits (SLO burn rate, saturation), the largest winning, with riskView naming it.
import { BaselineDetector, DEFAULT_BASELINE, type BaselineOptions } from "./baseline.js";
import { ChangePointDetector, DEFAULT_CHANGEPOINT, type ChangePointOptions } from "./changepoint.js";
import { TrendDetector, DEFAULT_TREND, type TrendOptions } from "./trend.js";
import { EnvelopeDetector, DEFAULT_ENVELOPE, type EnvelopeOptions } from "./envelope.js";
import type { Tail } from "./surprise.js";
import { BurnRateDetector, DEFAULT_SLO_PERIOD_S, DEFAULT_WARN_AT, saturationScore, utilisation, type SaturationOptions, type SloOptions } from "./objective.js";
import { DEFAULT_PROFILE, ProfileDetector, type ProfileOptions } from "./profile.js";
import { DEFAULT_VOLATILITY, VolatilityDetector, type VolatilityOptions } from "./volatility.js";

export interface SeriesOptions {
  side: Tail;
  baseline: BaselineOptions;
  /** null: no change-point detector. */
  changePoint: ChangePointOptions | null;
  /** null: not a saturating resource. */
  trend: TrendOptions | null;
  /** null: no long-memory envelope view. */
  envelope: EnvelopeOptions | null;
  /** Points after a reported score during which only a higher score is reported in full. */
  restPoints: number;
  /** null: no service-level objective. */
  slo?: SloOptions | null;
  /** null: no saturation view (a capacity without it still forecasts exhaustion). */
  saturation?: SaturationOptions | null;
  /** A resource whose surprise counts in proportion to its load: (u / warnAt)^2, at most 1. */
  loadWeighted?: boolean;
  /** null: no learnt seasonal profile. */
  profile?: ProfileOptions | null;
  /** null: no variance-change view. */
  volatility?: VolatilityOptions | null;
}

export type SignalView = "value" | "mean" | "seasonal" | "level" | "change" | "trend" | "envelope" | "profile" | "volatility" | "burn" | "saturation" | "limit";

export function seriesOptions(o: {
  side?: Tail; window?: number; seasonMs?: number; capacity?: number; horizonS?: number; exhaustion?: "up" | "down"; changePoint?: boolean; restPoints?: number; levelZ?: number; envelope?: boolean;
  /** The controller's views (all off by default, as NAB scores them). */
  slo?: { target: number; threshold?: number; periodS?: number }; saturation?: boolean; warnAt?: number; loadWeighted?: boolean; profile?: boolean; volatility?: boolean;
} = {}): SeriesOptions {
  const side = o.side ?? "both";
  const dir = o.exhaustion ?? "up";
  return {
    slo: o.slo ? { target: o.slo.target, threshold: o.slo.threshold ?? null, periodS: o.slo.periodS ?? DEFAULT_SLO_PERIOD_S } : null,
    saturation: o.saturation && o.capacity !== undefined ? { capacity: o.capacity, warnAt: o.warnAt ?? DEFAULT_WARN_AT, direction: dir } : null,
    loadWeighted: o.loadWeighted ?? false,
    profile: o.profile && (o.seasonMs ?? 0) > 0 ? { ...DEFAULT_PROFILE, periodMs: o.seasonMs!, side, levelZ: o.levelZ ?? DEFAULT_PROFILE.levelZ } : null,
    volatility: o.volatility ? { ...DEFAULT_VOLATILITY } : null,
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
  readonly slo: BurnRateDetector | null;
  readonly profile: ProfileDetector | null;
  readonly volatility: VolatilityDetector | null;
  private peak = 0;
  private sincePeak = Infinity;
  /** The last update's combined score (after suppression), the view behind it, and the raw parts. */
  score = 0;
  view: SignalView = "value";
  baselineScore = 0;
  changeScore = 0;
  trendScore = 0;
  envelopeScore = 0;
  profileScore = 0;
  volatilityScore = 0;
  burnScore = 0;
  saturationScore = 0;
  /** Utilisation (value / capacity) at the last point, NaN without a saturation view. */
  utilisation = NaN;
  /** The largest view's score before alarm suppression (what `score` suppresses). */
  rawScore = 0;
  /** The controller's surprise views alone (load-weighted for a resource), before the limits join them. */
  surpriseScore = 0;
  /** The controller's combination (see the file comment) and the view behind it. */
  riskScore = 0;
  riskView: SignalView = "value";
  lastValue = NaN;
  lastT = NaN;
  points = 0;

  constructor(readonly opts: SeriesOptions = seriesOptions()) {
    this.baseline = new BaselineDetector(opts.baseline);
    this.changePoint = opts.changePoint ? new ChangePointDetector(opts.changePoint) : null;
    this.trend = opts.trend ? new TrendDetector(opts.trend) : null;
    this.envelope = opts.envelope ? new EnvelopeDetector(opts.envelope, opts.side) : null;
    this.slo = opts.slo ? new BurnRateDetector(opts.slo) : null;
    this.profile = opts.profile ? new ProfileDetector(opts.profile) : null;
    this.volatility = opts.volatility ? new VolatilityDetector(opts.volatility) : null;
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
    // The controller's views: surprise against the learnt profile and a change of variance ...
    let r = Math.max(this.baselineScore, this.changeScore);
    let rv: SignalView = this.changeScore > this.baselineScore ? "change" : this.baseline.view;
    if (this.profile) {
      this.profileScore = this.profile.update(tMs, x, this.baseline.shortMedian());
      if (this.profileScore > s) { s = this.profileScore; view = "profile"; }
      // Once this time of the cycle is learnt, it is the baseline: the recent-history views would
      // call every daily peak a level shift (seasonal decomposition: deviations from the season).
      if (!Number.isNaN(this.profile.expected)) { r = this.profileScore; rv = "profile"; }
      else if (this.profileScore > r) { r = this.profileScore; rv = "profile"; }
    }
    if (this.volatility) {
      this.volatilityScore = this.volatility.update(x);
      if (this.volatilityScore > s) { s = this.volatilityScore; view = "volatility"; }
      if (this.volatilityScore > r) { r = this.volatilityScore; rv = "volatility"; }
    }
    // ... and against the limits: a loaded resource's surprise weighs by its load, an SLO's burn and
    // the distance to capacity count whatever the history.
    this.surpriseScore = r;
    const sat = this.opts.saturation;
    if (sat) {
      const u = (this.utilisation = utilisation(x, sat));
      this.saturationScore = saturationScore(u, sat.warnAt);
      if (this.opts.loadWeighted) r *= Math.min(1, (Math.max(0, u) / sat.warnAt) ** 2);
      this.surpriseScore = r;
      if (this.saturationScore > r) { r = this.saturationScore; rv = "saturation"; }
    }
    if (this.slo) {
      this.burnScore = this.slo.update(tMs, x);
      if (this.burnScore > r) { r = this.burnScore; rv = "burn"; }
    }
    this.riskScore = r;
    this.riskView = rv;
    this.rawScore = s;
    this.sincePeak++;
    if (this.sincePeak <= this.opts.restPoints && s <= this.peak) s *= 0.5;
    else { this.peak = s; this.sincePeak = 0; }
    this.view = view;
    this.score = s;
    return s;
  }
}
