// What the risk engine is told about a component: its signals, each with its kind, the side that
// counts, its limits (capacity, SLO), season, window, staleness and horizon; and the check that refuses
// a bad spec with the field that is wrong (RiskInputError, "component NAME: signals[i].FIELD: reason").
import { SIGNAL_KINDS, type SignalKind } from "./predictor.js";
import type { Tail } from "./detectors/surprise.js";

export interface SignalSpec {
  name: string;
  kind: SignalKind;
  /** Which deviations count; default: upwards for every kind but "app". */
  side?: Tail;
  /**
   * A saturating resource: the value at exhaustion (CPU 1, connections at their maximum, a queue at its
   * bound, latency at the route timeout) and which way it is approached. It turns on the exhaustion
   * forecast and the saturation view (0.5 at warnAt of capacity, rising as the headroom shrinks); a
   * resource kind's surprise then counts in proportion to its load.
   */
  capacity?: number;
  exhaustion?: "up" | "down";
  /** Utilisation at which the saturation view scores 0.5 (default 0.8). */
  warnAt?: number;
  /**
   * A service-level objective, scored by multi-window burn rates (detectors/objective.ts): the share
   * of good events promised (e.g. 0.999), the value above which an interval is bad (a latency SLO; for
   * an error-rate signal leave it out: the value is the bad fraction), and the SLO period whose
   * fractions the windows are (default 30 days; a compressed demo clock uses less).
   */
  slo?: { target: number; threshold?: number; periodS?: number };
  /**
   * Seasonal period in seconds (default 0: none). The seasonal view holds 4096 points, so the period
   * must span at most that many points (one day at one point every 30 s or slower).
   */
  seasonS?: number;
  /** Points of history the detectors keep (default 128: ~8 KiB per signal). */
  window?: number;
  /** Seconds without a point after which the signal is stale (default the engine's). */
  staleAfterS?: number;
  /** This signal's exhaustion horizon in seconds (default the engine's). */
  horizonS?: number;
}

export interface ComponentSpec { name: string; signals: SignalSpec[] }

/** A point or a spec the engine refuses; the message names what is wrong. */
export class RiskInputError extends Error {}

/** Throws RiskInputError for the first thing wrong with the spec, naming its field. */
export function checkComponentSpec(spec: ComponentSpec): void {
  if (!spec.name) throw new RiskInputError("component.name: must not be empty");
  if (spec.name.includes("/") && !spec.name.endsWith("/shadow")) throw new RiskInputError(`component.name: ${JSON.stringify(spec.name)} must not contain "/" (reserved for the shadow's name)`);
  const seen = new Set<string>();
  spec.signals.forEach((s, i) => {
    const where = `component ${spec.name}: signals[${i}]`;
    if (!s.name) throw new RiskInputError(`${where}.name: must not be empty`);
    if (seen.has(s.name)) throw new RiskInputError(`${where}.name: ${s.name} is listed twice`);
    if (!SIGNAL_KINDS.includes(s.kind)) throw new RiskInputError(`${where}.kind: ${s.kind} is not one of ${SIGNAL_KINDS.join(", ")}`);
    // As the configuration's schema: a capacity is where the resource runs out, a positive amount (a
    // ceiling it rises to, or for exhaustion "down" the floor it falls to). Zero or less would make
    // every point of a rising signal "exhausted now".
    if (s.capacity !== undefined && !(Number.isFinite(s.capacity) && s.capacity > 0)) throw new RiskInputError(`${where}.capacity: must be a positive finite number, got ${s.capacity}`);
    if (s.horizonS !== undefined && !(Number.isFinite(s.horizonS) && s.horizonS > 0)) throw new RiskInputError(`${where}.horizonS: must be a positive number of seconds, got ${s.horizonS}`);
    if (s.warnAt !== undefined && !(s.warnAt > 0 && s.warnAt < 1)) throw new RiskInputError(`${where}.warnAt: must be between 0 and 1 (exclusive), got ${s.warnAt}`);
    if (s.warnAt !== undefined && s.capacity === undefined) throw new RiskInputError(`${where}.warnAt: needs a capacity`);
    if (s.slo) {
      if (!(s.slo.target > 0 && s.slo.target < 1)) throw new RiskInputError(`${where}.slo.target: must be between 0 and 1 (exclusive), e.g. 0.999, got ${s.slo.target}`);
      if (s.slo.threshold !== undefined && !Number.isFinite(s.slo.threshold)) throw new RiskInputError(`${where}.slo.threshold: must be a finite number`);
      if (s.slo.periodS !== undefined && !(s.slo.periodS > 0)) throw new RiskInputError(`${where}.slo.periodS: must be a positive number of seconds, got ${s.slo.periodS}`);
      if (s.slo.threshold === undefined && s.kind !== "error_rate") throw new RiskInputError(`${where}.slo.threshold: a ${s.kind} SLO needs the value above which an interval is bad (only an error_rate is itself the bad fraction)`);
    }
    seen.add(s.name);
  });
}
