// The traffic router seam: how the migration engine moves traffic. XdsTrafficRouter turns weights,
// mirror settings and write targets into a consistent xDS snapshot for every protected component
// (clusters, endpoints, routes, listeners, the Wasm filter's ECDS configuration), publishes it, and
// verifies that every connected proxy ACKed it. Invalid weights are refused before anything is built.
import type { Logger } from "pino";
import { SnapshotCache, DEFAULT_GROUP } from "./cache.js";
import { Snapshot } from "./snapshot.js";
import type { AdsServer, VerifyResult } from "./server.js";
import {
  TOTAL_WEIGHT, buildApiListener, buildCluster, buildEnvoyListener, buildLoadAssignment, buildRoute, buildSharedRoute,
  buildTelemetryCluster, buildWasmFilterConfig, checkWeights, type RouteSpec, type Side, type ObservedSpec, type TelemetryTlsOnProxy, type Weights, type WasmSource,
} from "./resources.js";

export interface MirrorSettings {
  fraction: number;
  maxPerSecond?: number;
  maxInFlight?: number;
  timeoutMs?: number;
  removeHeaders?: string[];
}


export interface TrafficRouter {
  /** Publishes new weights (primary + shadow = 10000 basis points); returns the version to verify. */
  setWeights(component: string, weights: Weights): string;
  getWeights(component: string): Weights;
  /** Publishes new mirror settings for the filter; returns the version. */
  setMirror(component: string, mirror: MirrorSettings): string;
  /** Publishes weights, mirror fraction and write target together, as one version. */
  setRoutes(component: string, routes: Routes): string;
  /** Resolves when every connected proxy ACKed `version`, or reports which NACKed (or are pending). */
  verify(version: string, timeoutMs?: number): Promise<VerifyResult>;
}

/**
 * shadowFit: the filter's failover floor may divert reads to the shadow (default false);
 * holdWrites: while set, the filter answers writes 503 with this reason (an emergency failover);
 * pauseWritesMs: while > 0, the filter holds writes up to this long (the writer is switched) and
 * continues them to the write target of the publish that ends the pause.
 */
export interface Routes { weights: Weights; mirrorFraction: number; writeTarget: Side; shadowFit?: boolean; holdWrites?: string | null; pauseWritesMs?: number }

export class UnknownComponentError extends Error {}

export interface XdsTrafficRouterOptions {
  cache: SnapshotCache;
  /** Only verify() is used: the ADS server, or a stand-in that knows when proxies applied a version. */
  server: Pick<AdsServer, "verify">;
  logger: Logger;
  components: RouteSpec[];
  group?: string;
  /** An Envoy listener carrying the shadowmesh filter (omit for proxyless-only deployments, and for Istio sidecars, which insert the filter themselves). */
  envoyListener?: { name: string; address: string; port: number };
  /**
   * Where the filter reports telemetry: the controller's gRPC address as seen from the proxies; `token`
   * (the filter's telemetry.token, sent as `authorization: Bearer`) when the telemetry server requires one.
   */
  /** stream: the filter's telemetry.stream (only for a module that knows it: an older one refuses unknown fields). */
  telemetry?: { cluster: string; address: string; port: number; intervalMs?: number; token?: string; tls?: TelemetryTlsOnProxy; stream?: boolean };
  /** The module: with it the filter's ECDS configuration is published (with or without a listener). */
  wasm?: WasmSource;
  /** Extra filter settings per component (sticky key, read rule, ...) merged into the plugin configuration. */
  filterSettings?: Record<string, Record<string, unknown>>;
  /** Services the filter observes only (callers and latency): routed to their cluster, never split. */
  observed?: ObservedSpec[];
  /** The filter's `callers` setting (edges.ts); absent: callers are not recorded. */
  callers?: Record<string, unknown>;
}

export const FILTER_NAME = "shadowmesh";
export const ENVOY_ROUTE_NAME = "shadowmesh-routes";

export class XdsTrafficRouter implements TrafficRouter {
  private readonly weights = new Map<string, Weights>();
  private readonly mirrors = new Map<string, MirrorSettings>();
  private readonly writeTargets = new Map<string, Side>();
  private readonly floors = new Map<string, { shadowFit: boolean; holdWrites: string | null; pauseWritesMs: number }>();
  private readonly components = new Map<string, RouteSpec>();
  private seq = 0;
  private readonly group: string;

  constructor(private readonly opts: XdsTrafficRouterOptions) {
    this.group = opts.group ?? DEFAULT_GROUP;
    for (const c of opts.components) {
      if (this.components.has(c.name)) throw new Error(`component ${c.name} is defined twice`);
      this.components.set(c.name, c);
      this.weights.set(c.name, { primary: TOTAL_WEIGHT, shadow: 0 });
      this.mirrors.set(c.name, { fraction: 0 });
      this.writeTargets.set(c.name, "primary");
      this.floors.set(c.name, { shadowFit: false, holdWrites: null, pauseWritesMs: 0 });
    }
  }

  private component(name: string): RouteSpec {
    const c = this.components.get(name);
    if (!c) throw new UnknownComponentError(`unknown component ${JSON.stringify(name)} (known: ${[...this.components.keys()].join(", ")})`);
    return c;
  }

  /** Builds and publishes the initial snapshot; returns its version. */
  start(): string { return this.publish("initial"); }

  setWeights(component: string, weights: Weights): string {
    this.component(component);
    checkWeights(component, weights);
    const prev = this.weights.get(component)!;
    this.weights.set(component, { ...weights });
    try {
      return this.publish(`weights ${component} ${weights.primary}/${weights.shadow}`);
    } catch (e) {
      this.weights.set(component, prev);
      throw e;
    }
  }

  getWeights(component: string): Weights {
    this.component(component);
    return { ...this.weights.get(component)! };
  }

  setMirror(component: string, mirror: MirrorSettings): string {
    this.component(component);
    if (!(mirror.fraction >= 0 && mirror.fraction <= 1)) throw new RangeError(`${component}: mirror fraction must be between 0 and 1, got ${mirror.fraction}`);
    const prev = this.mirrors.get(component)!;
    this.mirrors.set(component, { ...mirror });
    try {
      return this.publish(`mirror ${component} ${mirror.fraction}`);
    } catch (e) {
      this.mirrors.set(component, prev);
      throw e;
    }
  }

  setRoutes(component: string, routes: Routes): string {
    this.component(component);
    checkWeights(component, routes.weights);
    if (!(routes.mirrorFraction >= 0 && routes.mirrorFraction <= 1)) throw new RangeError(`${component}: mirror fraction must be between 0 and 1, got ${routes.mirrorFraction}`);
    if (routes.holdWrites !== undefined && routes.holdWrites !== null && (routes.holdWrites.length === 0 || routes.holdWrites.length > 256)) throw new RangeError(`${component}: holdWrites must be 1 to 256 characters, got ${routes.holdWrites.length}`);
    if (routes.pauseWritesMs !== undefined && !(Number.isInteger(routes.pauseWritesMs) && routes.pauseWritesMs >= 0 && routes.pauseWritesMs <= 60_000)) throw new RangeError(`${component}: pauseWritesMs must be a whole number from 0 to 60000, got ${routes.pauseWritesMs}`);
    const prev = { w: this.weights.get(component)!, m: this.mirrors.get(component)!, t: this.writeTargets.get(component)!, f: this.floors.get(component)! };
    this.weights.set(component, { ...routes.weights });
    this.mirrors.set(component, { ...prev.m, fraction: routes.mirrorFraction });
    this.writeTargets.set(component, routes.writeTarget);
    this.floors.set(component, {
      shadowFit: routes.shadowFit ?? prev.f.shadowFit, holdWrites: routes.holdWrites === undefined ? prev.f.holdWrites : routes.holdWrites,
      pauseWritesMs: routes.pauseWritesMs ?? prev.f.pauseWritesMs,
    });
    try {
      const f = this.floors.get(component)!;
      return this.publish(`routes ${component} ${routes.weights.primary}/${routes.weights.shadow} mirror ${routes.mirrorFraction} writes ${routes.writeTarget}${f.holdWrites ? " (held)" : f.pauseWritesMs ? " (paused)" : ""} shadow ${f.shadowFit ? "fit" : "unfit"}`);
    } catch (e) {
      this.weights.set(component, prev.w);
      this.mirrors.set(component, prev.m);
      this.writeTargets.set(component, prev.t);
      this.floors.set(component, prev.f);
      throw e;
    }
  }

  /** Moves the write target (after the shadow's promotion, or back when restoring). */
  setWriteTarget(component: string, target: Side): string {
    this.component(component);
    this.writeTargets.set(component, target);
    return this.publish(`write target ${component} ${target}`);
  }

  verify(version: string, timeoutMs?: number): Promise<VerifyResult> {
    return this.opts.server.verify(this.group, version, timeoutMs);
  }

  /** The plugin configuration (JSON) the filter receives over ECDS. */
  pluginConfig(): string {
    const t = this.opts.telemetry;
    return JSON.stringify({
      // stream: reports on one StreamReports stream per worker, which this controller serves (a filter
      // falls back to unary Report calls by itself if a stream is refused as unimplemented).
      ...(t ? { telemetry: { cluster: t.cluster, interval_ms: t.intervalMs ?? 1000, ...(t.stream ? { stream: true } : {}), ...(t.token ? { token: t.token } : {}) } } : {}),
      ...(this.opts.callers ? { callers: this.opts.callers } : {}),
      components: [...(this.opts.observed ?? []).map((o) => ({ name: o.name, authorities: o.hostnames, primary_cluster: o.cluster.name, observe: true })), ...[...this.components.values()].map((c) => {
        const m = this.mirrors.get(c.name)!;
        // Mirror limits from the configuration sit under the fraction the migration engine sets.
        const { mirror: mirrorLimits, floor: floorSettings, ...settings } = (this.opts.filterSettings?.[c.name] ?? {}) as { mirror?: Record<string, unknown>; floor?: Record<string, unknown> };
        const fl = this.floors.get(c.name)!;
        return {
          name: c.name,
          authorities: c.hostnames,
          primary_cluster: c.primary.name,
          shadow_cluster: c.shadow.name,
          write_target: this.writeTargets.get(c.name),
          mirror: {
            ...mirrorLimits,
            fraction: m.fraction,
            ...(m.maxPerSecond !== undefined ? { max_per_second: m.maxPerSecond } : {}),
            ...(m.maxInFlight !== undefined ? { max_in_flight: m.maxInFlight } : {}),
            ...(m.timeoutMs !== undefined ? { timeout_ms: m.timeoutMs } : {}),
            ...(m.removeHeaders ? { remove_headers: m.removeHeaders } : {}),
          },
          shadow_weight_bp: this.weights.get(c.name)!.shadow,
          ...(c.routingHeader ? { routing_header: c.routingHeader } : {}),
          ...settings,
          // The floor's limits from the configuration; whether the shadow may take its reads is the engine's call.
          floor: { ...floorSettings, shadow_fit: fl.shadowFit },
          ...(fl.holdWrites ? { hold_writes: fl.holdWrites } : {}),
          ...(fl.pauseWritesMs > 0 ? { pause_writes_ms: fl.pauseWritesMs } : {}),
        };
      })],
    });
  }

  /** Builds the whole snapshot from the current state and publishes it (the cache checks consistency). */
  private publish(reason: string): string {
    const comps = [...this.components.values()];
    const version = `v${++this.seq}`;
    const observed = this.opts.observed ?? [];
    const clusters = [...comps.flatMap((c) => [buildCluster(c.primary), buildCluster(c.shadow)]), ...observed.map((o) => buildCluster(o.cluster))];
    const endpoints = [...comps.flatMap((c) => [buildLoadAssignment(c.primary), buildLoadAssignment(c.shadow)]), ...observed.map((o) => buildLoadAssignment(o.cluster))];
    const routes = comps.map((c) => buildRoute({ ...c, mode: "weighted_clusters" }, this.weights.get(c.name)!));
    const listeners = comps.map((c) => buildApiListener(c));
    const extensions: Record<string, unknown>[] = [];
    const el = this.opts.envoyListener;
    if (el) {
      routes.push(buildSharedRoute(ENVOY_ROUTE_NAME, comps, this.writeTargets, observed));
      listeners.push(buildEnvoyListener({ ...el, routeConfigName: ENVOY_ROUTE_NAME, filterName: FILTER_NAME }));
    }
    if (el || this.opts.wasm) extensions.push(buildWasmFilterConfig(FILTER_NAME, this.pluginConfig(), this.opts.wasm ?? {}));
    const t = this.opts.telemetry;
    if (t) clusters.push(buildTelemetryCluster(t.cluster, t.address, t.port, t.tls));
    const snapshot = Snapshot.build(version, { listeners, routes, clusters, endpoints, extensions });
    this.opts.cache.setSnapshot(this.group, snapshot);
    this.opts.logger.info({ version, reason }, "xds snapshot published");
    return version;
  }
}
