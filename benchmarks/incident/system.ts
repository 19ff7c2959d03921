// The incident benchmark's system under test, one per mode, deployed on the run's virtual clock in
// front of the simulated pair. The deciders are the production code:
//   none       Envoy's router to the primary's cluster; nothing moves.
//   reactive   the embedded data plane's Envoy outlier detection (defaults) on one cluster whose
//              priority 0 is the primary's locality and priority 1 the shadow's (locality failover),
//              plus a database failover by a stated, safe rule (Patroni's): the writer holds a lease
//              it renews while it is alive, every third of the lease; the replica is promoted (epoch
//              + 1) once that lease has expired. The lease length is shadowmesh's (the policy's
//              promotion.lease), so the comparison isolates prediction and the floor.
//   reactive_unsafe  the same outlier detection, and the shadow promoted the moment the primary is
//              first ejected, with no fence and no lease: two writers are possible. For reference.
//   shadowmesh the controller's core (telemetry store, risk engine, migration manager, xDS traffic
//              router and snapshot cache) configured as the demo, scraping the pair's /metrics; the data
//              plane applies each snapshot with its own resource parsers and runs the real filter
//              (build/shadowmesh.wasm, with its failover floor) in the proxy-wasm host on 4 workers,
//              which report telemetry and mirror reads; the controller grants the writer's lease.
// In shadowmesh mode a scenario's history (history_s) is first replayed into the risk engine
// (warmStart: the primary's signals of those seconds, pair.ts historyPoints), as a controller restored
// from its stored history would have them, and a scenario's season_s becomes the seasonS of the
// signals that follow load; the system records when the component first left Healthy for a
// predictive phase (at_risk_s). The network it adds: 5 ms xDS propagation, 20 ms per action.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ManualClock } from "../../host/clock.js";
import { mulberry32, seededBytes } from "../../host/random.js";
import type { HeaderMap } from "../../host/headers.js";
import { PluginHost } from "../../host/plugin.js";
import { silentLogger } from "../../controller/log.js";
import { parseConfig } from "../../controller/config.js";
import { buildManager, buildRiskCore, tickController } from "../../controller/core.js";
import { SnapshotCache, DEFAULT_GROUP } from "../../controller/xds/cache.js";
import type { Snapshot } from "../../controller/xds/snapshot.js";
import { XdsTrafficRouter } from "../../controller/xds/router.js";
import type { VerifyResult } from "../../controller/xds/server.js";
import { TYPE, pack, type TypeUrl } from "../../protocol/protos.js";
import { PrometheusScraper } from "../../controller/metrics/prometheus.js";
import { MemoryStateStore } from "../../controller/migration/store.js";
import { loadPolicyFile } from "../../controller/migration/policy.js";
import { ActionNotDelivered, type ActionRunner } from "../../controller/migration/manager.js";
import type { Upstreams } from "../../dataplane/upstreams.js";
import { parseCluster, parseExtensionConfig, parseLoadAssignment, parseRouteConfig, routeCluster, selectRoute, selectVirtualHost, type Endpoint, type RouteConfigModel } from "../../dataplane/resources.js";
import type { Scenario } from "../../world/demo/scenario.js";
import { COMPONENT, controllerYaml } from "../../world/demo/run.js";
import { historyPoints, type SimulatedPair } from "./pair.js";
import type { Side } from "../../controller/xds/resources.js";
import { SimCallouts } from "./callouts.js";
import { startPatroniFailover } from "./reactive.js";
import type { ModeResult } from "./result.js";

export const MODES = ["none", "reactive", "reactive_unsafe", "shadowmesh"] as const;
export type Mode = (typeof MODES)[number];

/** The controller's signals a scenario's season_s applies to: those that follow load (not replication lag, divergence or errors). */
export const SEASONAL_SIGNALS = ["request_latency_p99_ms", "cpu", "memory", "disk_io", "queue_depth"] as const;
/** The phases of the predictive path: the first of them reached is "AtRisk" for the benchmark. */
const PREDICTIVE_PHASES = new Set(["AtRisk", "Preflight", "Shifting", "Migrated"]);

const here = path.dirname(fileURLToPath(import.meta.url));
const WASM = path.join(here, "..", "..", "build", "shadowmesh.wasm");
const PRIMARY_EP = { address: "10.0.1.10", port: 7001 };
const SHADOW_EP = { address: "10.0.2.10", port: 7002 };
/** Proxy workers running the filter (Envoy: one VM per worker); the floor acts per worker. */
const WORKERS = 4;
/** Patroni's loop: the lease holder renews every third of the lease. */
const HA_LOOP_MS = 250;
/** How long a fence, promote or lease action takes to reach the component (both failover rules). */
const ACTION_MS = 20;
const XDS_PROPAGATION_MS = 5;

/** Which side of the pair an upstream endpoint is. */
export const sideOf = (ep: Endpoint): Side => (ep.address === PRIMARY_EP.address ? "primary" : "shadow");
const DEMO_POLICY = path.join(here, "..", "..", "world", "demo", "policy.yaml");
/** The lease shadowmesh's policy grants, and its clock-skew margin (the reactive baseline's database failover uses both). */
export function demoLease(): { leaseMs: number; skewMs: number } {
  const pr = loadPolicyFile(DEMO_POLICY).defaults.promotion;
  if (pr.leaseMs <= 0) throw new Error(`${DEMO_POLICY}: promotion.lease must be set: the benchmark's database failover uses it`);
  return { leaseMs: pr.leaseMs, skewMs: pr.maxClockSkewMs };
}

/** What a mode's system is deployed into: the run's clock, component, proxy upstreams and record. */
export interface SystemContext {
  scenario: Scenario;
  seed: number;
  clock: ManualClock;
  pair: SimulatedPair;
  upstreams: Upstreams;
  /** The scenario's second 0 on the monotonic clock (nowMs) and on the wall clock. */
  startMs: number;
  wallStartMs: number;
  nowMs: () => number;
  /** Seconds into the scenario, to 0.1 s. */
  tS: () => number;
  lease: { leaseMs: number; skewMs: number };
  /** The run's decisions: the system appends its own. */
  decisions: ModeResult["decisions"];
  /** Receives one line a second: shadowmesh's risk and its top contributions (the CLI's --trace). */
  trace?: (line: string) => void;
}

/** A deployed system, as the run drives it. */
export interface SystemUnderTest {
  /** The cluster the proxy routes a request with these headers to (undefined: no route). */
  routeOf(headers: HeaderMap): string | undefined;
  /** shadowmesh: the filter each request passes through (the proxy-wasm host); else undefined. */
  readonly plugin: PluginHost | undefined;
  /** The proxies that divert reads each on their own: the filter's workers, or the one Envoy. */
  readonly workers: number;
  /** After each answer of the pair: the reactive modes record ejections; reactive_unsafe promotes on the first. */
  answered(): void;
  /** At the end of the run: stops the controller's scrapes and the filter. */
  stop(): void;
  /** What the mode adds to its result (shadowmesh: at_risk_s and peak_risk). */
  extra(): Pick<ModeResult, "at_risk_s" | "peak_risk">;
}

/**
 * Deploying a mode's system: await `ready` (when not null: shadowmesh's first snapshot applied by the
 * data plane), then start() it. Kept in two steps so the run itself awaits, and traffic starts in the
 * same turn as the controller.
 */
export interface Deployment {
  ready: Promise<void> | null;
  start(): SystemUnderTest;
}

export function deploySystem(mode: Mode, ctx: SystemContext): Deployment {
  return mode === "shadowmesh" ? deployShadowmesh(ctx) : deployEnvoy(mode, ctx);
}

/** none, reactive and reactive_unsafe: Envoy as its user configures it, and the database failover of the rule. */
function deployEnvoy(mode: Exclude<Mode, "shadowmesh">, ctx: SystemContext): Deployment {
  const { clock, pair, upstreams, decisions, tS } = ctx;
  // The reactive rule's loop starts when shadowmesh's controller does (after its first route push),
  // so both rules renew leases in the same phase: started 5 ms apart, the later rule's leases ran out
  // 5 ms later, and a write landing in those 5 ms counted against it.
  if (mode === "reactive") clock.setTimer(XDS_PROPAGATION_MS, () => startPatroniFailover(pair, clock, { leaseMs: ctx.lease.leaseMs, skewMs: ctx.lease.skewMs, actionMs: ACTION_MS, loopMs: HA_LOOP_MS }, (what) => decisions.push({ t: tS(), what })));
  // The reactive baseline as an Envoy user writes it: one cluster, the shadow's locality at priority 1.
  const lb = (ep: { address: string; port: number }) => ({ endpoint: { address: { socket_address: { address: ep.address, port_value: ep.port } } } });
  upstreams.setClusters([parseCluster(pack("envoy.config.cluster.v3.Cluster", {
    name: "orders", type: "STATIC", connect_timeout: { seconds: 1 },
    ...(mode !== "none" ? { outlier_detection: {} } : {}),
    load_assignment: {
      cluster_name: "orders",
      endpoints: [
        { locality: { zone: "zone-a" }, priority: 0, lb_endpoints: [lb(PRIMARY_EP)] },
        ...(mode !== "none" ? [{ locality: { zone: "zone-b" }, priority: 1, lb_endpoints: [lb(SHADOW_EP)] }] : []),
      ],
    },
  }))]);
  let promotedOnEjection = false;
  const od = upstreams.outlierDetector("orders");
  let odSeen = 0;
  const system: SystemUnderTest = {
    routeOf: () => "orders",
    plugin: undefined,
    workers: 1,
    answered: () => {
      // The reactive baseline's database failover: promote the shadow when the primary is first ejected.
      if (od && od.log.length > odSeen) {
        for (const e of od.log.slice(odSeen)) decisions.push({ t: Math.round((e.atMs - ctx.wallStartMs) / 100) / 10, what: e.kind === "eject" ? `outlier ejection of ${e.host} (${e.reason}) for ${e.forMs / 1000} s` : `${e.host} back in service` });
        odSeen = od.log.length;
        if (mode === "reactive_unsafe" && !promotedOnEjection && od.log.some((e) => e.kind === "eject")) {
          promotedOnEjection = true;
          if (!pair.isDown("shadow")) { pair.act("promote", "shadow"); decisions.push({ t: tS(), what: "database failover: shadow promoted" }); }
        }
      }
    },
    stop: () => {},
    extra: () => ({}),
  };
  return { ready: null, start: () => system };
}

/** shadowmesh: the controller's core and the data plane with the filter, connected by xDS. */
function deployShadowmesh(ctx: SystemContext): Deployment {
  const { scenario, seed, clock, pair, upstreams, decisions, tS, nowMs, startMs } = ctx;
  let plugin: PluginHost | undefined;
  let atRiskS: number | null = null;
  let peakRisk = 0;
  const cfg = parseConfig(controllerYaml({
    primaryEndpoint: `${PRIMARY_EP.address}:${PRIMARY_EP.port}`, shadowEndpoint: `${SHADOW_EP.address}:${SHADOW_EP.port}`,
    primaryUrl: "http://primary.sim", shadowUrl: "http://shadow.sim",
  }, WASM, "incident-bench-token"), "incident-bench.yaml");
  // The scenario's cycle, as an operator sets seasonS on the signals that follow load.
  if (scenario.seasonS !== null) {
    const seasonS = scenario.seasonS;
    for (const c of cfg.components) c.signals = c.signals.map((sg) => ((SEASONAL_SIGNALS as readonly string[]).includes(sg.name) ? { ...sg, seasonS } : sg));
  }
  const log = silentLogger();
  const core = buildRiskCore(cfg, clock);
  // The history the controller already has: the primary's signals of the first history_s seconds.
  if (scenario.historyS > 0) {
    const h = historyPoints(scenario, "primary", scenario.historyS, mulberry32(seed * 17));
    for (const [signal, pts] of Object.entries(h)) core.engine.warmStart(COMPONENT, signal, pts.map(([t, v]) => [ctx.wallStartMs + t * 1000, v] as const));
  }
  const cache = new SnapshotCache();
  // The data plane side of xDS: each snapshot lands after the propagation delay; verify() resolves once applied.
  let applied = 0;
  const waiting: { version: number; resolve: (r: VerifyResult) => void }[] = [];
  const verNum = (v: string) => Number(v.slice(1));
  const allAcked = (version: string): VerifyResult => ({ version, ok: true, acked: ["incident-sidecar"], nacked: [], pending: [], superseded: false });
  let routes: RouteConfigModel | undefined;
  const wasmBytes = readFileSync(WASM);
  const routeRandom = mulberry32(seed * 13);
  const callouts = new SimCallouts(pair, upstreams, clock, core.telemetry, sideOf);
  const apply = async (snap: Snapshot) => {
    const list = (t: TypeUrl, msg: string) => [...snap.resources(t).values()].map((r) => pack(msg, r.object as Record<string, unknown>));
    upstreams.setClusters(list(TYPE.cluster, "envoy.config.cluster.v3.Cluster").map(parseCluster));
    for (const a of list(TYPE.endpoint, "envoy.config.endpoint.v3.ClusterLoadAssignment").map(parseLoadAssignment)) upstreams.setEndpoints(a.cluster, a.endpoints, a.overprovisioningPercent);
    routes = list(TYPE.route, "envoy.config.route.v3.RouteConfiguration").map(parseRouteConfig).find((r) => r.name === "shadowmesh-routes");
    const ext = list(TYPE.extension, "envoy.config.core.v3.TypedExtensionConfig").map(parseExtensionConfig)[0]!;
    if (!plugin) {
      plugin = await PluginHost.create({ wasm: wasmBytes, workers: WORKERS, clock, callouts, pluginConfig: ext.configuration, rootId: ext.rootId, vmId: ext.vmId, pluginName: ext.name, failOpen: ext.failOpen, random: seededBytes(mulberry32(seed * 11)), properties: { "node.id": "incident-sidecar", "node.cluster": "bench" } });
    } else if (!plugin.reconfigure(ext.configuration)) throw new Error("the filter rejected its configuration");
    applied = Math.max(applied, verNum(snap.version));
    for (const w of waiting.splice(0)) {
      if (applied >= w.version) w.resolve(allAcked(`v${w.version}`));
      else waiting.push(w);
    }
  };
  let chain = Promise.resolve();
  cache.watch(DEFAULT_GROUP, (snap) => { clock.setTimer(XDS_PROPAGATION_MS, () => { chain = chain.then(() => apply(snap)); }); });
  const router = new XdsTrafficRouter({
    cache, logger: log, components: cfg.components.map((c) => c.route),
    server: { verify: (_g, version) => new Promise<VerifyResult>((resolve) => { if (applied >= verNum(version)) resolve(allAcked(version)); else waiting.push({ version: verNum(version), resolve }); }) },
    telemetry: { cluster: "shadowmesh-telemetry", address: "10.0.0.2", port: 18001, intervalMs: cfg.dataplane!.telemetryIntervalMs },
    envoyListener: cfg.dataplane!.listener ?? undefined, wasm: { filename: WASM },
    filterSettings: Object.fromEntries(cfg.components.filter((c) => c.filter).map((c) => [c.route.name, c.filter!])),
  });
  router.start();
  clock.advance(XDS_PROPAGATION_MS);

  const start = (): SystemUnderTest => {
    const actions: ActionRunner = {
      // A dead side refuses the connection: the action provably never arrived.
      run: (_c, kind, side, detail) => new Promise((resolve, reject) => clock.setTimer(ACTION_MS, () => {
        if (pair.isDown(side)) { reject(new ActionNotDelivered(`${kind} ${side}: connection refused`)); return; }
        try { pair.act(kind, side, detail); resolve(); } catch (e) { reject(e); }
      })),
    };
    // Resolves through microtasks only (a real Response body settles on I/O turns, which would make runs differ).
    const scrapeFetch = async (url: string | URL | Request) => {
      const side: Side = String(url).includes("primary") ? "primary" : "shadow";
      if (pair.isDown(side)) throw new Error("connection refused");
      const body = pair.metricsText(side);
      return { ok: true, status: 200, text: async () => body } as unknown as Response;
    };
    const scraper = new PrometheusScraper(cfg.scrape, core.engine, clock, scrapeFetch, log);
    const manager = buildManager(cfg, core, { clock, router, store: new MemoryStateStore(), actions, log, probes: scraper, lag: scraper });
    manager.on("event", (e: { kind: string; message: string; phase: string }) => {
      decisions.push({ t: tS(), what: `${e.kind}: ${e.message}` });
      if (atRiskS === null && e.kind === "phase" && PREDICTIVE_PHASES.has(e.phase)) atRiskS = tS();
    });
    manager.start();
    scraper.start();
    const controllerTick = () => tickController(core, manager, clock);
    const routeOf = (h: HeaderMap) => {
      const vh = routes && selectVirtualHost(routes, h.get(":authority") ?? "");
      const r = vh && selectRoute(vh, h.get(":path") ?? "/", (n) => h.get(n));
      return r && routeCluster(r.action, (n) => h.get(n), routeRandom);
    };
    const tickMs = cfg.tickMs;
    let lastTrace = -1;
    const loop = () => {
      controllerTick();
      const now = core.engine.riskOf(COMPONENT);
      if (now && now.risk > peakRisk) peakRisk = now.risk;
      const sec = Math.floor((nowMs() - startMs) / 1000);
      if (ctx.trace && sec > lastTrace) {
        lastTrace = sec;
        const r = core.engine.get(COMPONENT)!;
        const top = r.contributions.filter((c) => c.contribution > 0 || c.signal === "request_latency_p99_ms").slice(0, 5)
          .map((c) => `${c.signal}=${c.value?.toPrecision(3)} s${c.score.toFixed(2)}${c.view ? ` ${c.view}` : ""}${c.exhaustionS !== null ? ` tte${c.exhaustionS.toFixed(0)}` : ""}`);
        ctx.trace(`t=${sec} risk=${r.risk.toFixed(2)} p=${r.probability.toFixed(2)} phase=${manager.get(COMPONENT).status.phase} ${top.join(" | ")}`);
      }
      clock.setTimer(tickMs, loop);
    };
    clock.setTimer(tickMs, loop);
    return {
      routeOf,
      get plugin() { return plugin; },
      workers: WORKERS,
      answered: () => {},
      stop: () => { scraper.stop(); plugin?.shutdown(); },
      extra: () => ({ at_risk_s: atRiskS, peak_risk: Math.round(peakRisk * 1000) / 1000 }),
    };
  };
  return { ready: chain, start };
}
