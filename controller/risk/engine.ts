// The risk engine: per component, one SeriesDetector per signal fed point by point (observe), and
// on every tick a failure probability from the predictor, smoothed into the component's risk score,
// with an explanation built on demand (which signals contributed, their values and their share).
// Pure apart from the clock it is given: the same points and ticks give the same risks. What a
// component and its signals may be, and the checks on them, are in spec.ts.
//
// What keeps false positives rare (each one is a test or a documented number):
//   1. Detector scores count only beyond the edge of the normal range (predictor.excess): a new
//      record high within the noise adds nothing.
//   2. Direction: latency, errors and resource use count only upwards.
//   3. Corroboration: the predictor's prior needs two strong signals (or an exhaustion forecast) to
//      reach high probability; one noisy metric tops out at a few per cent.
//   4. Warm-up: a signal scores nothing until its detector has `minHistory` points.
//   5. Smoothing: risk rises with a time constant of `riseTauS` and falls with `fallTauS`, so a
//      single bad tick does not move it far and a recovering component does not flap. An exhaustion
//      forecast is the exception on the way up once two fits in a row stand for it (fits on new
//      points, not ticks): the risk is at least what the forecasts alone give (a fit already spans its
//      window; one fit alone does not count: a seasonal rise can read as a ramp for a fit or two).
//   6. Stale or missing data is a state, not a zero: it contributes nothing, is named in the
//      explanation, and a component with no fresh signal reports `noData` instead of a low risk.
// The tick reads each signal's scores from packed rows (rows.ts), copied there after every point.
import { wallMs, type Clock } from "../../host/clock.js";
import { SeriesDetector, seriesOptions, type SignalView } from "./detectors/series.js";
import type { ProfileState } from "./detectors/profile.js";
import { FailurePredictor, emptyFeatures, excess, kindIndex, type SignalKind } from "./predictor.js";
import { explain } from "./explain.js";
import { EXHAUSTING_KINDS, RESOURCE_KINDS, VOLATILE_KINDS } from "./kinds.js";
import { SignalRows, newlyAtLimit, type SignalState } from "./rows.js";
import { RiskInputError, checkComponentSpec, type ComponentSpec, type SignalSpec } from "./spec.js";
export { isShadowsOwn, shadowKey, shadowSignals } from "./kinds.js";

export type { SignalState } from "./rows.js";

export interface Contribution {
  signal: string;
  kind: SignalKind;
  state: SignalState;
  value: number | null;
  /** What the baseline expected (median of recent history, or the value one season ago). */
  expected: number | null;
  score: number;
  view: SignalView | null;
  /** Seconds to exhaustion, when forecast inside 10 horizons. */
  exhaustionS: number | null;
  /** value / capacity, for a signal with a capacity. */
  utilisation: number | null;
  /** For a signal with an SLO: the strongest burn-rate rule, its long- and short-window burn rates, and the budget left. */
  burn: { rule: string; long: number; short: number; budgetLeft: number } | null;
  /** The numbers behind the score in a sentence (which objective, forecast or surprise). */
  reason: string;
  /** Weight x feature in the predictor's logit, and its share of the positive total. */
  contribution: number;
  share: number;
}

export interface ComponentRisk {
  component: string;
  /** Smoothed risk in [0, 1]. */
  risk: number;
  /** This tick's unsmoothed failure probability. */
  probability: number;
  /** No signal has fresh data: the risk is not computed from evidence. */
  noData: boolean;
  updatedMs: number;
  /** Signals sorted by contribution (then by state: stale and missing ones are listed too). */
  contributions: Contribution[];
}

export interface RiskEngineOptions {
  clock: Clock;
  predictor?: FailurePredictor;
  riseTauS?: number;
  fallTauS?: number;
  staleAfterS?: number;
  minHistory?: number;
  /** Exhaustion forecast this many seconds ahead scores 0.5 (default 3600; a signal's own horizonS wins). */
  horizonS?: number;
  /**
   * Keep each signal's last N points (default 0: none) for snapshot(), so a restarted controller
   * replays them into fresh detectors (16 bytes a point).
   */
  keepPoints?: number;
}

/** What restore() needs to continue where an engine left off: its smoothed risks and each signal's recent points. */
export interface RiskSnapshot {
  components: {
    name: string; risk: number; probability: number; noData: boolean; updatedMs: number;
    /** lastSeenMs: by the engine's clock, when the signal's last point arrived (null: never). points: [tMs, value], oldest first. */
    signals: { name: string; lastSeenMs: number | null; points: [number, number][]; profile?: ProfileState }[];
  }[];
}

/** The last `cap` points of a signal, in a ring. */
class PointRing {
  private readonly t: Float64Array;
  private readonly v: Float64Array;
  private head = 0;
  private n = 0;
  constructor(readonly cap: number) { this.t = new Float64Array(cap); this.v = new Float64Array(cap); }
  push(t: number, v: number): void {
    this.t[this.head] = t; this.v[this.head] = v;
    this.head = (this.head + 1) % this.cap;
    if (this.n < this.cap) this.n++;
  }
  toArray(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.n; i++) { const j = (this.head - this.n + i + this.cap) % this.cap; out.push([this.t[j]!, this.v[j]!]); }
    return out;
  }
}

interface Signal {
  spec: SignalSpec;
  detector: SeriesDetector;
  kind: number;
  /** Its component's rows and its row there: what the tick reads (scores, when it was last seen, its fits). */
  rows: SignalRows;
  row: number;
  recent: PointRing | null;
}

interface Component {
  name: string;
  signals: Map<string, Signal>;
  list: Signal[];
  rows: SignalRows;
  risk: number;
  /** The probability smoothed by the rise and fall times; risk is this or the sustained forecast, the higher. */
  smoothed: number;

  probability: number;
  noData: boolean;
  updatedMs: number;
  /** The last tick's predictor features (indexed like SIGNAL_KINDS). */
  features: Float64Array;
}

export class RiskEngine {
  private readonly components = new Map<string, Component>();
  private model: FailurePredictor;
  private readonly features = emptyFeatures();
  /** The tick's features from the exhaustion forecasts alone, each as two fits in a row stand for it. */
  private readonly forecastFeatures = emptyFeatures();
  // Detectors here run without alarm suppression (a persisting incident must keep its risk) and
  // with the level view at z = 6 (a sustained deviation keeps scoring until the median moves).
  private readonly o: Required<Omit<RiskEngineOptions, "predictor">>;

  constructor(opts: RiskEngineOptions) {
    this.model = opts.predictor ?? new FailurePredictor();
    this.o = { clock: opts.clock, riseTauS: opts.riseTauS ?? 20, fallTauS: opts.fallTauS ?? 300, staleAfterS: opts.staleAfterS ?? 60, minHistory: opts.minHistory ?? 16, horizonS: opts.horizonS ?? 3600, keepPoints: opts.keepPoints ?? 0 };
  }

  /** Adds or replaces a component; signals whose spec is unchanged keep their detector state. */
  setComponent(spec: ComponentSpec): void {
    checkComponentSpec(spec);
    const old = this.components.get(spec.name);
    const signals = new Map<string, Signal>();
    const rows = new SignalRows(spec.signals.length);
    for (const [row, s] of spec.signals.entries()) {
      const prev = old?.signals.get(s.name);
      if (prev && JSON.stringify(prev.spec) === JSON.stringify(s)) {
        rows.copy(row, prev.rows, prev.row);
        prev.rows = rows; prev.row = row;
        signals.set(s.name, prev);
        continue;
      }
      const side = s.side ?? (s.kind === "app" ? "both" : "up");
      const detector = new SeriesDetector(seriesOptions({
        side, window: s.window ?? 128, seasonMs: (s.seasonS ?? 0) * 1000, capacity: s.capacity, exhaustion: s.exhaustion, restPoints: 0, levelZ: 6,
        horizonS: s.horizonS ?? this.o.horizonS,
        ...(s.slo ? { slo: s.slo } : {}), saturation: true, ...(s.warnAt !== undefined ? { warnAt: s.warnAt } : {}),
        loadWeighted: RESOURCE_KINDS.has(s.kind), profile: true, volatility: VOLATILE_KINDS.has(s.kind),
      }));
      const kind = kindIndex(s.kind);
      rows.init(row, kind, EXHAUSTING_KINDS.has(s.kind), (s.staleAfterS ?? this.o.staleAfterS) * 1000);
      signals.set(s.name, { spec: s, detector, kind, rows, row, recent: this.o.keepPoints > 0 ? new PointRing(this.o.keepPoints) : null });
    }
    this.components.set(spec.name, {
      name: spec.name, signals, list: [...signals.values()], rows,
      risk: old?.risk ?? 0, smoothed: old?.smoothed ?? 0, probability: old?.probability ?? 0, noData: old?.noData ?? true, updatedMs: old?.updatedMs ?? 0, features: old?.features ?? emptyFeatures(),
    });
  }

  /** The failure model the ticks use (the prior, or one learnt from outcomes). */
  get predictor(): FailurePredictor { return this.model; }
  /** Swaps the failure model; the next tick uses it. */
  setPredictor(p: FailurePredictor): void { this.model = p; }

  /** The features the last tick gave the predictor for `component` (a copy; null: unknown component). */
  featuresOf(component: string): Float64Array | null {
    const c = this.components.get(component);
    return c ? Float64Array.from(c.features) : null;
  }

  /** The component's risk as of the last tick, without building its explanation (for gauges and sampling). */
  riskOf(component: string): { risk: number; probability: number; noData: boolean } | undefined {
    const c = this.components.get(component);
    return c ? { risk: c.risk, probability: c.probability, noData: c.noData } : undefined;
  }

  /**
   * The newest value of the component's fresh signal of `kind` ("ok", or "warming": a measurement is
   * one before the detector has the history to score it), the largest if several (null: none).
   */
  freshValue(component: string, kind: SignalKind): number | null { return this.freshPoint(component, kind)?.value ?? null; }

  /** freshValue() with its point's time stamp (as its source stamped it: when it was measured). */
  freshPoint(component: string, kind: SignalKind): { value: number; tMs: number } | null {
    const c = this.components.get(component);
    let best: Signal | null = null;
    if (c) for (const s of c.list) if (s.spec.kind === kind && (this.state(s, c.updatedMs) === "ok" || this.state(s, c.updatedMs) === "warming") && (best === null || s.detector.lastValue > best.detector.lastValue)) best = s;
    return best ? { value: best.detector.lastValue, tMs: best.detector.lastT } : null;
  }

  removeComponent(name: string): boolean { return this.components.delete(name); }
  hasSignal(component: string, signal: string): boolean { return this.components.get(component)?.signals.has(signal) ?? false; }
  kindOf(component: string, signal: string): SignalKind | undefined { return this.components.get(component)?.signals.get(signal)?.spec.kind; }
  hasComponent(component: string): boolean { return this.components.has(component); }

  /** Why a point would be refused, or null if observe() would take it. */
  check(component: string, signal: string, tMs: number, value: number, previousT?: number): string | null {
    const r = this.validate(component, signal, tMs, value, previousT);
    return typeof r === "string" ? r : null;
  }

  private validate(component: string, signal: string, tMs: number, value: number, previousT?: number): Signal | string {
    const s = this.lookup(component, signal);
    if (typeof s === "string") return s;
    if (!Number.isFinite(value)) return `${component}/${signal}: value ${value} is not a finite number`;
    if (!Number.isFinite(tMs)) return `${component}/${signal}: timestamp is not a number or goes back in time`;
    const last = Math.max(s.detector.lastT, previousT ?? -Infinity);
    if (tMs < last) return `${component}/${signal}: timestamp ${tMs} is before the previous point (${last})`;
    return s;
  }

  /** One point of one signal, stamped `tMs` by its source (points must arrive in time order). */
  observe(component: string, signal: string, tMs: number, value: number): void {
    const s = this.validate(component, signal, tMs, value);
    if (typeof s === "string") throw new RiskInputError(s);
    s.detector.update(tMs, value);
    s.recent?.push(tMs, value);
    s.rows.sync(s.row, s.detector);
    s.rows.setSeenMs(s.row, wallMs(this.o.clock));
  }

  /** Replays stored history into a signal's detectors (oldest first) so a restart does not re-learn from nothing. */
  warmStart(component: string, signal: string, points: Iterable<readonly [number, number]>): number {
    const s = this.lookup(component, signal);
    if (typeof s === "string") throw new RiskInputError(s);
    let n = 0;
    for (const [t, v] of points) {
      if (!Number.isFinite(t) || !Number.isFinite(v) || t < s.detector.lastT) continue;
      s.detector.update(t, v);
      s.recent?.push(t, v);
      n++;
    }
    if (n > 0) s.rows.sync(s.row, s.detector);
    return n;
  }

  /** Every component's smoothed risk and each signal's kept points (keepPoints), to persist. */
  snapshot(): RiskSnapshot {
    return { components: [...this.components.values()].map((c) => ({
      name: c.name, risk: c.risk, probability: c.probability, noData: c.noData, updatedMs: c.updatedMs,
      signals: c.list.map((s) => ({
        name: s.spec.name, lastSeenMs: Number.isFinite(s.rows.seenMs(s.row)) ? s.rows.seenMs(s.row) : null, points: s.recent?.toArray() ?? [],
        ...(s.detector.profile ? { profile: s.detector.profile.state() } : {}),
      })),
    })) };
  }

  /**
   * Continues from a snapshot: replays each signal's points into its detectors (warmStart), and takes
   * back the smoothed risk, probability and when each signal last reported, so the risk neither
   * restarts at 0 nor re-learns its baseline. Call before the first observe(). Returns what it skipped
   * (components or signals no longer configured).
   */
  restore(snap: RiskSnapshot): string[] {
    const skipped: string[] = [];
    const now = wallMs(this.o.clock);
    for (const sc of snap.components) {
      const c = this.components.get(sc.name);
      if (!c) { skipped.push(`component ${JSON.stringify(sc.name)} is not configured: its risk state is dropped`); continue; }
      for (const ss of sc.signals) {
        const s = c.signals.get(ss.name);
        if (!s) { skipped.push(`component ${sc.name}: signal ${JSON.stringify(ss.name)} is not configured: its ${ss.points.length} points are dropped`); continue; }
        // The learnt profile first (it covers periods the kept points do not), then the points on top.
        if (ss.profile && s.detector.profile && !s.detector.profile.load(ss.profile, ss.points.at(-1)?.[0] ?? -Infinity)) skipped.push(`component ${sc.name}: signal ${ss.name}: its saved seasonal profile has another period or slot count (seasonS changed): it is re-learnt`);
        this.warmStart(sc.name, ss.name, ss.points);
        if (ss.lastSeenMs !== null) s.rows.setSeenMs(s.row, Math.min(ss.lastSeenMs, now));
      }
      c.risk = c.smoothed = sc.risk; c.probability = sc.probability; c.noData = sc.noData; c.updatedMs = Math.min(sc.updatedMs, now);
    }
    return skipped;
  }

  private lookup(component: string, signal: string): Signal | string {
    const c = this.components.get(component);
    if (!c) return `unknown component ${JSON.stringify(component)}`;
    return c.signals.get(signal) ?? `component ${component}: unknown signal ${JSON.stringify(signal)} (configured: ${[...c.signals.keys()].join(", ") || "none"})`;
  }

  private state(s: Signal, now: number): SignalState { return s.rows.state(s.row, now, this.o.minHistory); }

  /** Recomputes every component's probability and smoothed risk. */
  tick(): void {
    const now = wallMs(this.o.clock);
    const exhaustion = kindIndex("exhaustion");
    const f = this.features, g = this.forecastFeatures;
    for (const c of this.components.values()) {
      f.fill(0);
      g.fill(0);
      const fresh = c.rows.features(now, this.o.minHistory, exhaustion, f, g);
      c.noData = fresh === 0;
      c.features.set(f);
      const p = c.noData ? c.probability : this.predictor.predict(f);
      const dt = c.updatedMs ? Math.max(0, (now - c.updatedMs) / 1000) : Infinity;
      const tau = p > c.smoothed ? this.o.riseTauS : this.o.fallTauS;
      const a = dt === Infinity ? 1 : 1 - Math.exp(-dt / tau);
      if (!c.noData) {
        c.smoothed += a * (p - c.smoothed);
        // An exhaustion forecast two fits in a row stand for is not waited out again: a fit already
        // spans its window with its own uncertainty (trend.ts), so the rise time would count the same
        // points twice. One fit alone is not enough (a busy hour read as a ramp for a fit or two).
        c.risk = Math.max(c.smoothed, Math.min(p, this.predictor.predict(g)));
      }
      c.probability = p;
      c.updatedMs = now;
    }
  }

  /** The component's risk and its explanation as of the last tick. */
  get(component: string): ComponentRisk | undefined {
    const c = this.components.get(component);
    if (!c) return undefined;
    const now = c.updatedMs;
    const contributions: Contribution[] = c.list.map((s) => {
      const d = s.detector, st = this.state(s, now);
      const live = st === "ok", limits = st === "warming";
      const own = live ? d.riskScore : limits ? Math.max(d.burnScore, d.saturationScore) : 0;
      const ownView: SignalView = live ? d.riskView : d.burnScore >= d.saturationScore ? "burn" : "saturation";
      const base = excess(own) * this.predictor.weight(s.kind);
      const trend = live && d.trend ? d.trendScore * this.predictor.weight(EXHAUSTING_KINDS.has(s.spec.kind) ? kindIndex("exhaustion") : s.kind) : 0;
      const atLimit = live ? excess(newlyAtLimit(d)) * this.predictor.weight(kindIndex("exhaustion")) : 0;
      const tte = d.trend && d.trend.timeToExhaustionS < 10 * d.trend.opts.horizonS ? d.trend.timeToExhaustionS : null;
      const view: SignalView | null = live || (limits && own > 0) ? (atLimit > Math.max(base, trend) ? "limit" : trend > base ? "trend" : ownView) : null;
      const expected = view === "profile" ? d.profile!.expected : d.baseline.expected;
      const slo = d.slo;
      const burn = slo && slo.rule ? { rule: slo.rule, long: slo.burnLong, short: slo.burnShort, budgetLeft: slo.budgetLeft() } : null;
      const utilisation = Number.isFinite(d.utilisation) ? d.utilisation : null;
      return {
        signal: s.spec.name, kind: s.spec.kind, state: st,
        value: d.points ? d.lastValue : null,
        expected: Number.isFinite(expected) ? expected : null,
        score: live ? Math.max(own, d.trendScore) : own,
        view, exhaustionS: tte, utilisation, burn,
        // The sentence takes the utilisation as it is (a value beyond a tiny capacity overflows to Infinity, which the field cannot carry).
        reason: explain(s.spec, st, view, d.points ? d.lastValue : NaN, expected, Number.isNaN(d.utilisation) ? null : d.utilisation, burn, tte, d),
        contribution: Math.max(base, trend, atLimit), share: 0,
      };
    });
    const total = contributions.reduce((a, x) => a + x.contribution, 0);
    for (const x of contributions) x.share = total > 0 ? x.contribution / total : 0;
    const rank = (s: SignalState) => (s === "ok" ? 0 : s === "warming" ? 1 : 2);
    contributions.sort((a, b) => b.contribution - a.contribution || rank(a.state) - rank(b.state) || a.signal.localeCompare(b.signal));
    return { component: c.name, risk: c.risk, probability: c.probability, noData: c.noData, updatedMs: c.updatedMs, contributions };
  }
}
