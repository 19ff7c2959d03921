// What the risk engine treats differently by signal kind (which kinds are a load on a resource, which
// swing, which fail at exhaustion, which describe the primary/shadow pair) and the shadow's scorer:
// its name in the engine and the signals it is scored on.
import type { SignalKind } from "./predictor.js";
import type { SignalSpec } from "./spec.js";
import type { Side } from "../xds/resources.js";

/** Kinds that are a load on a resource: with a capacity, their surprise weighs by how loaded they are. */
export const RESOURCE_KINDS: ReadonlySet<SignalKind> = new Set(["cpu", "memory", "disk_io", "queue_depth"]);
/** Kinds that fail at exhaustion: their forecast is the exhaustion feature. */
export const EXHAUSTING_KINDS: ReadonlySet<SignalKind> = new Set(["memory", "disk_io", "queue_depth", "replication_lag", "exhaustion", "app", "consistency"]);
/** Kinds whose swings matter (the variance-change view); rates that sit at 0 are left to the tail views. */
export const VOLATILE_KINDS: ReadonlySet<SignalKind> = new Set(["latency", "network_latency", "cpu", "disk_io", "queue_depth", "app"]);

/**
 * The engine's name for a component's shadow, scored on its own signals (component names are DNS-like
 * labels, so the suffix cannot collide with one).
 */
export const shadowKey = (component: string): string => `${component}/shadow`;

/** Kinds that describe the pair rather than one side (the replica's lag, mirrored reads' divergence): not scored for the shadow. */
export const PAIR_KINDS: ReadonlySet<SignalKind> = new Set(["replication_lag", "consistency"]);

/** The signals the shadow is scored on: the component's own, minus the pair's. */
export function shadowSignals(signals: SignalSpec[]): SignalSpec[] { return signals.filter((s) => !PAIR_KINDS.has(s.kind)); }

/** Whether a signal of this kind, measured on the shadow, is the shadow's own (else the pair's, fed to the component). */
export function isShadowsOwn(kind: SignalKind): boolean { return !PAIR_KINDS.has(kind); }

/**
 * Which scorer a value measured on `side` feeds: the shadow's own signals (its CPU, its queue) go to
 * the shadow's scorer when it has that signal; the pair's (the lag) and the primary's to the component.
 */
export function scorerFor(engine: { kindOf(c: string, s: string): SignalKind | undefined; hasSignal(c: string, s: string): boolean }, component: string, side: Side | undefined, signal: string): string {
  if (side !== "shadow") return component;
  const kind = engine.kindOf(component, signal) ?? engine.kindOf(shadowKey(component), signal);
  return kind !== undefined && isShadowsOwn(kind) && engine.hasSignal(shadowKey(component), signal) ? shadowKey(component) : component;
}
