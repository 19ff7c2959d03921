// The controller's deciding core, apart from its sockets: the risk engine fed by the telemetry
// store, the migration manager with its policies, and the tick that advances them. main.ts wraps it
// in gRPC, HTTP and xDS servers on the system clock; the incident benchmark runs the very same core
// on a virtual clock, so what decides there is what decides in production.
import type { Logger } from "pino";
import { wallMs, type Clock } from "../host/clock.js";
import type { ControllerConfig } from "./config.js";
import { TelemetryStore } from "./telemetry/store.js";
import { feedRisk } from "./telemetry/feed.js";
import { RiskEngine, shadowKey, shadowSignals } from "./risk/engine.js";
import { FailurePredictor } from "./risk/predictor.js";
import { DEFAULT_KEEP_POINTS, RiskStateFile } from "./risk/persist.js";
import { DEFAULT_POLICY, loadPolicyFile, type Policy } from "./migration/policy.js";
import { MigrationManager, type ActionRunner } from "./migration/manager.js";
import type { StateStore } from "./migration/store.js";
import { TelemetryInputSource, type HealthProbes, type LagProbe } from "./migration/inputs.js";
import type { TrafficRouter } from "./xds/router.js";
import type { FeatureGap } from "./xds/features.js";

export interface RiskCore { engine: RiskEngine; telemetry: TelemetryStore }

/**
 * The risk engine with every configured component, fed by the telemetry store's sealed buckets.
 * keepPoints: each signal keeps its last N points for persistRisk (0, the default: none).
 */
export function buildRiskCore(cfg: ControllerConfig, clock: Clock, opts: { keepPoints?: number } = {}): RiskCore {
  const engine = new RiskEngine({ clock, predictor: new FailurePredictor(), ...cfg.risk, ...(opts.keepPoints ? { keepPoints: opts.keepPoints } : {}) });
  for (const c of cfg.components) {
    engine.setComponent({ name: c.route.name, signals: c.signals });
    // The shadow is scored too, on its own signals: it may serve everything soon.
    engine.setComponent({ name: shadowKey(c.route.name), signals: shadowSignals(c.signals) });
  }
  const telemetry = new TelemetryStore({ clock });
  const names = new Set(cfg.components.map((c) => c.route.name));
  telemetry.onSealed((s) => { if (names.has(s.component)) feedRisk(engine, s); });
  return { engine, telemetry };
}

export interface RiskPersistence {
  /** stateDir/risk.jsonl */
  file: string;
  /** What the restore skipped (components or signals no longer configured). */
  warnings: string[];
  /** Writes the engine's state now (atomically; the caller decides how often). */
  save(): void;
}

/**
 * The risk continues across restarts: restores the engine (built with keepPoints) from
 * stateDir/risk.jsonl, if there is one, before any point arrives. Throws RiskStateError on a bad file.
 */
export function persistRisk(core: RiskCore, stateDir: string, clock: Clock, keepPoints = DEFAULT_KEEP_POINTS): RiskPersistence {
  const f = new RiskStateFile(stateDir);
  const snap = f.load();
  const warnings = snap ? core.engine.restore(snap) : [];
  return { file: f.file, warnings, save: () => f.save(core.engine.snapshot(), wallMs(clock), keepPoints) };
}

/** Each component's policy: its own from the policy file, else the file's defaults, else the built-in one. */
export function loadPolicies(cfg: ControllerConfig): Map<string, Policy> {
  const policies = new Map<string, Policy>();
  const fromFile = cfg.policyFile ? loadPolicyFile(cfg.policyFile) : null;
  for (const c of cfg.components) policies.set(c.route.name, fromFile?.components.get(c.route.name) ?? fromFile?.defaults ?? DEFAULT_POLICY);
  return policies;
}

/** probes: each side's active health check (the scraper, for scrape targets with a side); pauseBlockers: proxies that would refuse pause_writes_ms; lag: reads the replication lag on demand (the drain after a fence). */
export function buildManager(cfg: ControllerConfig, core: RiskCore, d: { clock: Clock; router: TrafficRouter; store: StateStore; actions: ActionRunner; log: Logger; probes?: HealthProbes; pauseBlockers?: () => FeatureGap; lag?: LagProbe }): MigrationManager {
  return new MigrationManager({
    clock: d.clock, router: d.router, store: d.store, actions: d.actions, log: d.log, policies: loadPolicies(cfg), ...(d.lag ? { lag: d.lag } : {}),
    inputs: new TelemetryInputSource({ engine: core.engine, store: core.telemetry, ...(d.probes ? { probes: d.probes } : {}), ...(d.pauseBlockers ? { pauseBlockers: d.pauseBlockers } : {}) }),
  });
}

/** One controller tick: seal due telemetry buckets, update risk, reconcile every migration. */
export function tickController(core: RiskCore, manager: MigrationManager, clock: Clock): void {
  core.telemetry.advance(wallMs(clock));
  core.engine.tick();
  manager.tick();
}
