// The controller's own /metrics, in Prometheus's conventions (`promtool check metrics` is clean, tested):
// counters are counters (`_total`), values in base units (seconds, bytes) and ratios (0-1), the
// process and Node.js metrics under their default names (process_cpu_seconds_total, nodejs_*) so
// standard dashboards work, one shadowmesh_build_info, the xDS fleet (proxies connected, where each
// stands against the version it was sent), and per component and side what the proxies reported:
// requests and errors as counters, latency quantiles over the last minute from the merged sketches.
// Served as text 0.0.4, or as OpenMetrics when the scraper asks for it (Accept: application/openmetrics-text).
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { wallMs, type Clock } from "../../host/clock.js";
import type { AdsServer } from "../xds/server.js";
import { resourceState } from "../xds/proxy-status.js";
import type { TelemetryStore } from "../telemetry/store.js";
import { LatencySketch } from "../telemetry/sketch.js";
import { addLatency } from "../telemetry/bucket.js";
import { shadowKey, type RiskEngine } from "../risk/engine.js";
import type { MigrationManager } from "../migration/manager.js";
import type { MigrationEvent } from "../migration/reconcile.js";
import type { DriverPoller } from "../drivers/poller.js";
import type { ModelInfo } from "../risk/learner.js";
import type { WebhookStats } from "../events/webhooks.js";
import { PHASES } from "../migration/status.js";
import { TOTAL_WEIGHT } from "../xds/resources.js";


/** The version and revision the controller reports (package.json's version; SHADOWMESH_REVISION when the image build sets it). */
export interface BuildInfo { version: string; revision: string }

export interface ExpositionSources {
  clock: Clock;
  build: BuildInfo;
  manager: MigrationManager;
  engine: RiskEngine;
  telemetry: TelemetryStore;
  ads: AdsServer;
  drivers: DriverPoller;
  webhooks: () => WebhookStats;
  model: () => ModelInfo;
  historySamples: () => number;
  /** HA mode (controller replicas on etcd): this replica's role, its leader and whether etcd has a quorum. */
  ha?: () => { replica: string; role: string; leader: string | null; quorum: boolean };
}

/** The side and traffic a telemetry target is. */
const TARGET_LABELS = { PRIMARY: { side: "primary", traffic: "live" }, SHADOW_LIVE: { side: "shadow", traffic: "live" }, SHADOW_MIRROR: { side: "shadow", traffic: "mirror" } } as const;
const QUANTILES = [0.5, 0.9, 0.99] as const;
const LATENCY_WINDOW_MS = 60_000;

export interface ControllerMetrics {
  registry: Registry;
  /** Counts a migration event (shadowmesh_migration_events_total). */
  countEvent(e: MigrationEvent): void;
  /** Counts a failure recorded for the failure model. */
  countIncident(source: "controller" | "operator"): void;
  /** The exposition for an Accept header: [content type, body]. */
  render(accept: string | undefined): Promise<[string, string]>;
}

export function controllerMetrics(s: ExpositionSources): ControllerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // The default metrics that break the convention (gauges named _total, which promtool flags) go;
  // nodejs_active_{resources,handles,requests}{type} carry the same numbers by type.
  for (const m of ["nodejs_active_resources_total", "nodejs_active_handles_total", "nodejs_active_requests_total"]) registry.removeSingleMetric(m);
  const registers = [registry];
  const components = () => s.manager.components();

  new Gauge({ name: "shadowmesh_build_info", help: "The controller's version and revision (always 1)", labelNames: ["version", "revision", "nodejs"], registers }).set({ version: s.build.version, revision: s.build.revision, nodejs: process.version }, 1);

  const events = new Counter({ name: "shadowmesh_migration_events_total", help: "Migration events decided, by component, kind and severity", labelNames: ["component", "kind", "severity"], registers });
  const incidents = new Counter({ name: "shadowmesh_incidents_marked_total", help: "Failures recorded for the failure model, by source (controller: the primary judged down; operator: incident mark)", labelNames: ["source"], registers });
  for (const source of ["controller", "operator"]) incidents.inc({ source }, 0);

  /** A counter whose value another part keeps (it only rises): set at each scrape. */
  const mirrored = (name: string, help: string, labelNames: string[], values: () => [Record<string, string>, number][]) => new Counter({ name, help, labelNames, registers, collect() {
    this.reset();
    for (const [labels, v] of values()) this.inc(labels, v);
  } });
  mirrored("shadowmesh_xds_publishes_total", "Route publishes by the migration engine", [], () => [[{}, s.manager.counters.publishes]]);
  mirrored("shadowmesh_xds_nacks_total", "Publishes a proxy rejected (NACK)", [], () => [[{}, s.manager.counters.nacks]]);
  mirrored("shadowmesh_actions_total", "Fence, unfence, promote and lease actions run", [], () => [[{}, s.manager.counters.actions]]);
  mirrored("shadowmesh_action_failures_total", "Of those, the ones that failed", [], () => [[{}, s.manager.counters.actionFailures]]);
  mirrored("shadowmesh_webhook_deliveries_total", "Event webhook deliveries by outcome", ["outcome"], () => Object.entries(s.webhooks()).map(([outcome, v]) => [{ outcome }, v]));
  /** One of the telemetry store's totals per component, side and traffic. */
  const perTarget = (field: "requests" | "errors") => () => {
    const out: [Record<string, string>, number][] = [];
    for (const [component, targets] of s.telemetry.cumulative()) for (const [t, v] of targets) { const l = TARGET_LABELS[t as keyof typeof TARGET_LABELS]; if (l) out.push([{ component, ...l }, v[field]]); }
    return out;
  };
  mirrored("shadowmesh_requests_total", "Requests the proxies reported, per component, side and traffic (live: routed; mirror: mirrored copies)", ["component", "side", "traffic"], perTarget("requests"));
  mirrored("shadowmesh_request_errors_total", "Of those, the ones that failed (5xx, reset or timed out)", ["component", "side", "traffic"], perTarget("errors"));

  // The xDS fleet: proxies connected, and where each stream stands against what it was last sent.
  if (s.ha) {
    const ha = s.ha;
    new Gauge({ name: "shadowmesh_ha_leader", help: "1 while this replica leads (decides and acts), else 0", labelNames: ["replica"], registers, collect() { const v = ha(); this.reset(); this.set({ replica: v.replica }, v.role === "leader" ? 1 : 0); } });
    new Gauge({ name: "shadowmesh_ha_quorum", help: "1 while etcd answers with a quorum, else 0 (no replica decides; the last routes are served)", registers, collect() { this.set(ha().quorum ? 1 : 0); } });
  }
  new Gauge({ name: "shadowmesh_xds_connected_proxies", help: "Proxies (distinct node ids) with an open xDS stream", registers, collect() { this.set(s.ads.connectedNodes().length); } });
  new Gauge({ name: "shadowmesh_xds_streams", help: "Open xDS streams by resource type and state against the version last sent (synced, pending, nacked)", labelNames: ["type", "state"], registers, collect() {
    this.reset();
    const n = new Map<string, number>();
    for (const st of s.ads.status()) for (const [type, t] of Object.entries(st.types)) {
      if (!t) continue;
      const state = resourceState(t);
      n.set(`${type}\u0000${state}`, (n.get(`${type}\u0000${state}`) ?? 0) + 1);
    }
    for (const [k, v] of n) { const [type, state] = k.split("\u0000"); this.set({ type: type!, state: state! }, v); }
  } });
  new Gauge({ name: "shadowmesh_xds_acked_version_streams", help: "Open xDS streams per resource type and the version they last ACKed", labelNames: ["type", "version"], registers, collect() {
    this.reset();
    const n = new Map<string, number>();
    for (const st of s.ads.status()) for (const [type, t] of Object.entries(st.types)) if (t?.confirmed) n.set(`${type}\u0000${t.confirmed}`, (n.get(`${type}\u0000${t.confirmed}`) ?? 0) + 1);
    for (const [k, v] of n) { const [type, version] = k.split("\u0000"); this.set({ type: type!, version: version! }, v); }
  } });

  // The failure model.
  const gauge = (name: string, help: string, value: () => number | null) => new Gauge({ name, help, registers, collect() {
    this.reset();
    const v = value();
    if (v !== null) this.set(v);
  } });
  gauge("shadowmesh_predictor_brier", "Brier score of the failure model in use on the newest 30% of the labelled history (absent before the first retrain with data)", () => s.model().brier);
  gauge("shadowmesh_predictor_ece", "Expected calibration error of the failure model in use on the same holdout", () => s.model().ece);
  gauge("shadowmesh_predictor_samples", "Labelled samples the last retrain saw", () => s.model().samples);
  gauge("shadowmesh_predictor_positives", "Of those, the samples followed by a failure within the horizon", () => s.model().positives);
  gauge("shadowmesh_predictor_trained", "1 while a model trained on outcomes is in use, 0 while the prior is", () => (s.model().source === "trained" ? 1 : 0));
  gauge("shadowmesh_predictor_trained_timestamp_seconds", "When the last retrain ran (absent: never)", () => (s.model().trainedAtMs === null ? null : s.model().trainedAtMs! / 1000));
  gauge("shadowmesh_predictor_history_samples", "Samples held in the failure history", () => s.historySamples());
  gauge("shadowmesh_failure_probability_horizon_seconds", "The horizon shadowmesh_failure_probability is over", () => s.model().horizonS);

  /** A gauge per component (absent when value() is null). */
  const perComponent = (name: string, help: string, value: (component: string) => number | null) => new Gauge({ name, help, labelNames: ["component"], registers, collect() {
    this.reset();
    for (const component of components()) { const v = value(component); if (v !== null) this.set({ component }, v); }
  } });
  const risk = (key: string) => { const r = s.engine.riskOf(key); return r && !r.noData ? r : null; };
  perComponent("shadowmesh_risk", "Smoothed risk per component, 0-1 (absent without data)", (c) => risk(c)?.risk ?? null);
  perComponent("shadowmesh_shadow_risk", "The shadow's own smoothed risk, 0-1, from its own signals (absent without data)", (c) => risk(shadowKey(c))?.risk ?? null);
  perComponent("shadowmesh_failure_probability", "Predicted probability that the component fails within the horizon (shadowmesh_failure_probability_horizon_seconds)", (c) => risk(c)?.probability ?? null);
  perComponent("shadowmesh_mirror_bytes_per_second", "What mirroring reads costs on the wire over the last minute (request header and answer body bytes, every proxy together)", (c) => s.manager.get(c).observed?.recent.mirror?.bytesPerS ?? null);
  perComponent("shadowmesh_shadow_weight_ratio", "Share of reads routed to the shadow, 0-1", (c) => s.manager.get(c).status.shadowWeightBp / TOTAL_WEIGHT);
  perComponent("shadowmesh_migration_step", "Index of the step in force (-1 before the first)", (c) => s.manager.get(c).status.stepIndex);
  perComponent("shadowmesh_shadow_fit", "1 while the filter's failover floor may divert reads to the shadow", (c) => (s.manager.get(c).status.shadowFit ? 1 : 0));
  perComponent("shadowmesh_writes_held", "1 while a failover holds writes (the filter answers them 503)", (c) => (s.manager.get(c).status.holdWrites ? 1 : 0));
  perComponent("shadowmesh_writes_paused", "1 while the writer is switched (a planned move or a failover) and the proxies hold writes (up to promotion.pauseWrites each)", (c) => ((s.manager.get(c).status.pauseWritesMs ?? 0) > 0 ? 1 : 0));
  perComponent("shadowmesh_writer_epoch", "The writer's epoch (every promotion bumps it)", (c) => s.manager.get(c).status.epoch ?? 1);
  perComponent("shadowmesh_replication_lag_seconds", "The replica's lag the migration engine sees (absent when unknown)", (c) => s.manager.get(c).observed?.replicaLagS ?? null);
  new Gauge({ name: "shadowmesh_migration_phase", help: "1 for the phase each component is in", labelNames: ["component", "phase"], registers, collect() {
    for (const c of components()) { const p = s.manager.get(c).status.phase; for (const ph of PHASES) this.set({ component: c, phase: ph }, ph === p ? 1 : 0); }
  } });
  new Gauge({ name: "shadowmesh_floor_proxies", help: "Proxy workers that reported in the last 5 s, and those whose failover floor has the primary ejected", labelNames: ["component", "state"], registers, collect() {
    const now = wallMs(s.clock);
    for (const c of components()) { const f = s.telemetry.floor(c, now - 5_000, now); this.set({ component: c, state: "reporting" }, f.reporting); this.set({ component: c, state: "ejecting" }, f.ejecting); }
  } });

  // What each component's driver saw on its last poll (absent for drivers that measure nothing).
  new Gauge({ name: "shadowmesh_driver_side_up", help: "1 when the driver reached the side on its last poll, 0 when not", labelNames: ["component", "side", "driver"], registers, collect() {
    this.reset();
    for (const d of s.drivers.status()) for (const side of ["primary", "shadow"] as const) { const h = d.health[side]; if (h) this.set({ component: d.component, side, driver: d.driver }, h.up ? 1 : 0); }
  } });
  new Gauge({ name: "shadowmesh_driver_side_writable", help: "1 when the side takes writes (the driver asked it), 0 when not; absent when it cannot tell", labelNames: ["component", "side", "driver"], registers, collect() {
    this.reset();
    for (const d of s.drivers.status()) for (const side of ["primary", "shadow"] as const) { const h = d.health[side]; if (h && h.writable !== null) this.set({ component: d.component, side, driver: d.driver }, h.writable ? 1 : 0); }
  } });
  new Gauge({ name: "shadowmesh_driver_replication_lag_bytes", help: "Bytes the replica has not replayed (the driver's reading; absent when unknown)", labelNames: ["component", "driver"], registers, collect() {
    this.reset();
    for (const d of s.drivers.status()) if (d.lag?.bytes !== null && d.lag?.bytes !== undefined) this.set({ component: d.component, driver: d.driver }, d.lag.bytes);
  } });
  new Gauge({ name: "shadowmesh_driver_signal", help: "Each value a component's driver measured on its last poll, per side, in the signal's own unit (e.g. pg_wal_bytes_per_s: replication bytes; process_cpu_ratio: the side's resource use)", labelNames: ["component", "side", "signal"], registers, collect() {
    this.reset();
    for (const d of s.drivers.status()) for (const side of ["primary", "shadow"] as const) for (const [signal, v] of Object.entries(d.signals[side])) this.set({ component: d.component, side, signal }, v);
  } });

  /**
   * Latency per component, side and traffic as a summary: quantiles over the last minute from the
   * proxies' merged sketches, _sum and _count since the start. prom-client's Summary computes its
   * own quantiles from observations; these are the fleet's, so the family is written here.
   */
  const latencySummary = (): string => {
    const name = "shadowmesh_request_duration_seconds";
    const lines = [`# HELP ${name} Request latency reported by the proxies per component, side and traffic: quantiles over the last minute (merged sketches), sum and count since the start`, `# TYPE ${name} summary`];
    const now = wallMs(s.clock);
    for (const [component, targets] of s.telemetry.cumulative()) {
      const w = s.telemetry.window(component, now - LATENCY_WINDOW_MS, now);
      for (const [t, tot] of targets) {
        const l = TARGET_LABELS[t as keyof typeof TARGET_LABELS];
        if (!l) continue;
        const labels = `component="${esc(component)}",side="${l.side}",traffic="${l.traffic}"`;
        const recent = w?.targets.get(t);
        if (recent && recent.latency.count > 0) {
          const sk = new LatencySketch();
          addLatency(sk, recent.latency);
          // The sketches hold microseconds.
          for (const q of QUANTILES) lines.push(`${name}{${labels},quantile="${q}"} ${sk.quantile(q) / 1e6}`);
        }
        lines.push(`${name}_sum{${labels}} ${tot.latencySumUs / 1e6}`, `${name}_count{${labels}} ${tot.latencyCount}`);
      }
    }
    return `${lines.join("\n")}\n`;
  };

  return {
    registry,
    countEvent: (e) => events.inc({ component: e.component, kind: e.kind, severity: e.severity }),
    countIncident: (source) => incidents.inc({ source }),
    async render(accept) {
      const text = `${await registry.metrics()}\n${latencySummary()}`;
      // OpenMetrics only when asked for, as Prometheus does: text 0.0.4 stays the default.
      if (accept && /application\/openmetrics-text/.test(accept)) return [OPENMETRICS_TYPE, toOpenMetrics(text)];
      return [registry.contentType, text];
    },
  };
}

const OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/**
 * The text format 0.0.4 as OpenMetrics 1.0: a counter family is named without its _total (its samples
 * keep it), and the exposition ends with # EOF. (prom-client's own OpenMetrics mode renames the
 * counters in place, so a registry switched to it and back serves `x 1` for `x_total 1`: seen with
 * prom-client 15.)
 */
export function toOpenMetrics(text: string): string {
  const counters = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) counter$/gm)) counters.add(m[1]!);
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = /^# (HELP|TYPE) (\S+)(.*)$/.exec(line);
    if (m && counters.has(m[2]!) && m[2]!.endsWith("_total")) { out.push(`# ${m[1]} ${m[2]!.slice(0, -6)}${m[3]}`); continue; }
    out.push(line);
  }
  out.push("# EOF");
  return `${out.join("\n")}\n`;
}
