// One scenario, one protection mode, on a virtual clock. The deciders are the production code:
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
// Requests leave open-loop on the load generator's schedule; a request fails on a 5xx, a refused
// connection or no answer within 2 s, as in the demo. A scenario with history_s starts traffic at
// history_s (every time reported is scenario time); in shadowmesh mode the primary's signals of those
// seconds (pair.ts historyPoints) are first replayed into the risk engine (warmStart), as a controller
// restored from its stored history would have them, and a scenario's season_s becomes the seasonS of
// the signals that follow load. The result records when the component first left Healthy for a
// predictive phase (at_risk_s). What is simulated is the component (pair.ts),
// the network (0.2 ms connect refusals, 5 ms xDS propagation) and time itself.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ManualClock, wallMs } from "../../host/clock.js";
import { mulberry32, seededBytes } from "../../host/random.js";
import { HeaderMap } from "../../host/headers.js";
import { PluginHost } from "../../host/plugin.js";
import type { HttpStream } from "../../host/stream.js";
import { silentLogger } from "../../controller/log.js";
import { parseConfig } from "../../controller/config.js";
import { buildManager, buildRiskCore, tickController } from "../../controller/core.js";
import { SnapshotCache, DEFAULT_GROUP } from "../../controller/xds/cache.js";
import type { Snapshot } from "../../controller/xds/snapshot.js";
import { XdsTrafficRouter } from "../../controller/xds/router.js";
import type { VerifyResult } from "../../controller/xds/server.js";
import { TYPE, pack, type TypeUrl } from "../../controller/xds/protos.js";
import { PrometheusScraper } from "../../controller/metrics/prometheus.js";
import { MemoryStateStore } from "../../controller/migration/store.js";
import { loadPolicyFile } from "../../controller/migration/policy.js";
import { ActionNotDelivered, type ActionRunner } from "../../controller/migration/manager.js";
import { RESPONSE_FLAGS } from "../../dataplane/http-proxy.js";
import { Upstreams } from "../../dataplane/upstreams.js";
import { parseCluster, parseExtensionConfig, parseLoadAssignment, parseRouteConfig, routeCluster, selectRoute, selectVirtualHost, type Endpoint, type RouteConfigModel } from "../../dataplane/resources.js";
import type { Scenario } from "../../world/demo/scenario.js";
import { COMPONENT, controllerYaml } from "../../world/demo/run.js";
import { historyPoints, SimulatedPair, type PairAnswer, type Side } from "./pair.js";
import { SimCallouts } from "./callouts.js";
import { startPatroniFailover } from "./reactive.js";

export const MODES = ["none", "reactive", "reactive_unsafe", "shadowmesh"] as const;
export type Mode = (typeof MODES)[number];

export interface ModeResult {
  requests: number;
  failed_requests: number;
  failed_reads: number;
  failed_writes: number;
  /** p99 latency of the requests sent from the first sign of trouble to the end (null without an incident). */
  p99_ms_during_incident: number | null;
  /** When traffic first left the primary, and when all of it had (seconds into the scenario). */
  shift_started_s: number | null;
  shift_done_s: number | null;
  /** A scenario that should stay: 1 if the mode moved traffic off a healthy primary, else 0. */
  false_migrations: number;
  /** Every decision, for the report: ejections, migration events. */
  decisions: { t: number; what: string }[];
  /**
   * With a hard failure: seconds from the death to reads diverted (per proxy worker, p50 and p99; the
   * first read each worker sent to the shadow after the death) and to the first write acknowledged
   * again (null: none in the run). null without a hard failure.
   */
  after_death: { reads_diverted_p50_s: number | null; reads_diverted_p99_s: number | null; writes_accepted_s: number | null } | null;
  /** Moments both sides would have accepted a write (sampled every 100 ms); must be 0 but for reactive_unsafe. */
  two_writers_samples: number;
  /**
   * shadowmesh only: when the migration manager first left Healthy for a predictive phase (AtRisk,
   * or a later one of the same path; not the emergency Failover), seconds into the scenario; null: never.
   */
  at_risk_s?: number | null;
  /** shadowmesh only: the highest smoothed risk of the run (on a healthy run, how far from the policy's enter it stayed). */
  peak_risk?: number;
}

/** The controller's signals a scenario's season_s applies to: those that follow load (not replication lag, divergence or errors). */
export const SEASONAL_SIGNALS = ["request_latency_p99_ms", "cpu", "memory", "disk_io", "queue_depth"] as const;
/** The phases of the predictive path: the first of them reached is "AtRisk" for the benchmark. */
const PREDICTIVE_PHASES = new Set(["AtRisk", "Preflight", "Shifting", "Migrated"]);

const here = path.dirname(fileURLToPath(import.meta.url));
const WASM = path.join(here, "..", "..", "build", "shadowmesh.wasm");
const PRIMARY_EP = { address: "10.0.1.10", port: 7001 };
const SHADOW_EP = { address: "10.0.2.10", port: 7002 };
const CLIENT_TIMEOUT_MS = 2_000;
/** Proxy workers running the filter (Envoy: one VM per worker); the floor acts per worker. */
const WORKERS = 4;
/** Patroni's loop: the lease holder renews every third of the lease. */
const HA_LOOP_MS = 250;
/** How long a fence, promote or lease action takes to reach the component (both failover rules). */
const ACTION_MS = 20;
const XDS_PROPAGATION_MS = 5;
/** The async work (ACK verification, actions, scrapes) settles between steps of this size. */
const STEP_MS = 5;


const sideOf = (ep: Endpoint): Side => (ep.address === PRIMARY_EP.address ? "primary" : "shadow");
const DEMO_POLICY = path.join(here, "..", "..", "world", "demo", "policy.yaml");
/** The lease shadowmesh's policy grants, and its clock-skew margin (the reactive baseline's database failover uses both). */
function demoLease(): { leaseMs: number; skewMs: number } {
  const pr = loadPolicyFile(DEMO_POLICY).defaults.promotion;
  if (pr.leaseMs <= 0) throw new Error(`${DEMO_POLICY}: promotion.lease must be set: the benchmark's database failover uses it`);
  return { leaseMs: pr.leaseMs, skewMs: pr.maxClockSkewMs };
}

/**
 * When the scenario's trouble starts: its stated first_change_s, else the first moment after the
 * history (history_s, default 0) that any primary signal leaves its value there by more than 10 %.
 */
export function incidentStartS(s: Scenario): number | null {
  if (s.expect === "stay") return null;
  if (s.firstChangeS !== null) return s.firstChangeS;
  let start = s.primary.failAtS ?? s.durationS;
  for (const sig of ["latency_ms", "error_rate", "cpu", "memory", "disk_io", "queue_depth"] as const) {
    const tr = s.primary.trace(sig);
    const v0 = tr.at(s.historyS);
    for (let t = s.historyS; t < start; t += 0.5) if (Math.abs(tr.at(t) - v0) > Math.max(1e-9, Math.abs(v0) * 0.1)) { start = t; break; }
  }
  return start;
}

interface Request { atMs: number; read: boolean; key: string; user: string }

export interface RunOptions {
  seed?: number;
  /** Receives one line a second: shadowmesh's risk and its top contributions (the CLI's --trace). */
  trace?: (line: string) => void;
}

export async function runIncident(scenario: Scenario, mode: Mode, o: RunOptions = {}): Promise<ModeResult> {
  const seed = o.seed ?? 1;
  const clock = new ManualClock(1_800_000_000_000);
  /** Traffic starts now; the scenario's second 0 lies history_s before (times in results are scenario time). */
  const runStartMs = clock.monotonicNs() / 1e6;
  const startMs = runStartMs - scenario.historyS * 1000;
  const nowMs = () => clock.monotonicNs() / 1e6;
  const tS = () => Math.round((nowMs() - startMs) / 100) / 10;
  const { leaseMs, skewMs: LEASE_SKEW_MS } = demoLease();
  const leased = mode === "reactive" || mode === "shadowmesh";
  const pair = new SimulatedPair(scenario, clock, startMs, mulberry32(seed * 3), { leaseRequired: leased, commonRandom: true });
  // The writer's lease from before the run (a deployment grants it before traffic).
  if (leased) pair.act("lease", "primary", { epoch: 1, expiresAtMs: wallMs(clock) + leaseMs });
  const wallStartMs = wallMs(clock) - scenario.historyS * 1000;
  const decisions: ModeResult["decisions"] = [];
  const upstreams = new Upstreams({ nowMs: () => wallMs(clock), random: mulberry32(seed * 7) });
  let routeOf: (headers: HeaderMap) => string | undefined;
  let plugin: PluginHost | undefined;
  let controllerTick: (() => void) | undefined;
  let stopController = () => {};
  let atRiskS: number | null = null;
  let peakRisk = 0;

  // The reactive rule's loop starts when shadowmesh's controller does (after its first route push),
  // so both rules renew leases in the same phase: started 5 ms apart, the later rule's leases ran out
  // 5 ms later, and a write landing in those 5 ms counted against it.
  if (mode === "reactive") clock.setTimer(XDS_PROPAGATION_MS, () => startPatroniFailover(pair, clock, { leaseMs, skewMs: LEASE_SKEW_MS, actionMs: ACTION_MS, loopMs: HA_LOOP_MS }, (what) => decisions.push({ t: tS(), what })));

  if (mode !== "shadowmesh") {
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
    routeOf = () => "orders";
  } else {
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
      for (const [signal, pts] of Object.entries(h)) core.engine.warmStart(COMPONENT, signal, pts.map(([t, v]) => [wallStartMs + t * 1000, v] as const));
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
    await chain;
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
    const manager = buildManager(cfg, core, { clock, router, store: new MemoryStateStore(), actions, log, probes: scraper });
    manager.on("event", (e: { kind: string; message: string; phase: string }) => {
      decisions.push({ t: tS(), what: `${e.kind}: ${e.message}` });
      if (atRiskS === null && e.kind === "phase" && PREDICTIVE_PHASES.has(e.phase)) atRiskS = tS();
    });
    manager.start();
    scraper.start();
    stopController = () => scraper.stop();
    controllerTick = () => tickController(core, manager, clock);
    routeOf = (h) => {
      const vh = routes && selectVirtualHost(routes, h.get(":authority") ?? "");
      const r = vh && selectRoute(vh, h.get(":path") ?? "/", (n) => h.get(n));
      return r && routeCluster(r.action, (n) => h.get(n), routeRandom);
    };
    const tickMs = cfg.tickMs;
    let lastTrace = -1;
    const loop = () => {
      controllerTick!();
      const now = core.engine.riskOf(COMPONENT);
      if (now && now.risk > peakRisk) peakRisk = now.risk;
      const sec = Math.floor((nowMs() - startMs) / 1000);
      if (o.trace && sec > lastTrace) {
        lastTrace = sec;
        const r = core.engine.get(COMPONENT)!;
        const top = r.contributions.filter((c) => c.contribution > 0 || c.signal === "request_latency_p99_ms").slice(0, 5)
          .map((c) => `${c.signal}=${c.value?.toPrecision(3)} s${c.score.toFixed(2)}${c.view ? ` ${c.view}` : ""}${c.exhaustionS !== null ? ` tte${c.exhaustionS.toFixed(0)}` : ""}`);
        o.trace(`t=${sec} risk=${r.risk.toFixed(2)} p=${r.probability.toFixed(2)} phase=${manager.get(COMPONENT).status.phase} ${top.join(" | ")}`);
      }
      clock.setTimer(tickMs, loop);
    };
    clock.setTimer(tickMs, loop);
  }

  // ---------------------------------------------------------------- traffic
  const rand = mulberry32(seed);
  const acked: string[] = [];
  let writeSeq = 0;
  const incidentS = incidentStartS(scenario);
  const totals = { requests: 0, failed: 0, failedReads: 0, failedWrites: 0 };
  const deathMs = scenario.primary.failAtS === null ? null : startMs + scenario.primary.failAtS * 1000;
  /** Per worker (reactive: one proxy), the first read sent to the shadow after the death. */
  const divertedAt = new Map<number, number>();
  let writeAcceptedAt: number | null = null;
  let twoWriters = 0;
  const checkWriters = () => { if (pair.writable("primary") && pair.writable("shadow")) twoWriters++; clock.setTimer(100, checkWriters); };
  clock.setTimer(100, checkWriters);
  const incidentLatencies: number[] = [];
  const sidesSeen: { t: number; toShadow: number; total: number }[] = [];
  const perSecond = (t: number) => { const s = Math.floor(t); sidesSeen[s] ??= { t: s, toShadow: 0, total: 0 }; return sidesSeen[s]!; };
  let promotedOnEjection = false;
  const od = upstreams.outlierDetector("orders");
  let odSeen = 0;

  const send = (r: Request) => {
    totals.requests++;
    const t0 = nowMs(), tAt = (t0 - startMs) / 1000;
    let settled = false;
    const settle = (failed: boolean) => {
      if (settled) return;
      settled = true;
      if (failed) { totals.failed++; if (r.read) totals.failedReads++; else totals.failedWrites++; }
      else if (!r.read && deathMs !== null && t0 >= deathMs) writeAcceptedAt ??= nowMs();
      if (incidentS !== null && tAt >= incidentS) incidentLatencies.push(Math.min(nowMs() - t0, CLIENT_TIMEOUT_MS));
    };
    clock.setTimer(CLIENT_TIMEOUT_MS, () => settle(true));
    const headers = new HeaderMap([[":authority", "orders.svc"], [":path", `/kv/${r.key}`], [":method", r.read ? "GET" : "PUT"], [":scheme", "http"], ["x-user", r.user], ["x-request-id", `req-${totals.requests}`]]);
    if (!r.read) { headers.set("content-type", "text/plain"); headers.set("content-length", "24"); }
    let stream: HttpStream | undefined;
    const worker = totals.requests % WORKERS;
    if (plugin) {
      stream = plugin.newHttpStream({ worker });
      stream.sendRequestHeaders(headers, r.read);
      const local = stream.localResponse;
      if (local) {
        // The filter answered itself (writes held during a failover): nothing reaches an upstream.
        stream.complete();
        settle(local.status >= 500);
        return;
      }
      if (!r.read) stream.sendRequestBody(`value-${writeSeq}`.padEnd(24, "."), true);
    }
    const finish = (status: number, body: string, flags: number) => {
      if (stream) {
        if (flags) stream.setProperty("response.flags", BigInt(flags));
        stream.sendResponseHeaders(new HeaderMap([[":status", String(status)], ["content-type", "application/json"]]), false);
        stream.sendResponseBody(body, true);
        stream.complete();
      }
      settle(status >= 500);
      if (status === 200 && !r.read) acked.push(r.key);
    };
    const cluster = routeOf(headers);
    const ep = cluster ? upstreams.pick(cluster) : undefined;
    if (!cluster || !ep) { finish(503, "no healthy upstream", RESPONSE_FLAGS.NoHealthyUpstream); return; }
    const side = sideOf(ep);
    if (r.read && side === "shadow" && deathMs !== null && t0 >= deathMs) {
      const w = plugin ? worker : 0;
      if (!divertedAt.has(w)) divertedAt.set(w, t0);
    }
    const sec = perSecond(tAt);
    sec.total++;
    if (side === "shadow") sec.toShadow++;
    stream?.setProperty("xds.cluster_name", cluster);
    pair.request(side, { write: !r.read, key: r.key }, (a: PairAnswer) => {
      if ("refused" in a) {
        upstreams.report(cluster, ep, "local_origin_error");
        finish(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure", RESPONSE_FLAGS.UpstreamConnectionFailure);
      } else {
        upstreams.report(cluster, ep, a.status);
        finish(a.status, a.body, 0);
      }
      // The reactive baseline's database failover: promote the shadow when the primary is first ejected.
      if (od && od.log.length > odSeen) {
        for (const e of od.log.slice(odSeen)) decisions.push({ t: Math.round((e.atMs - wallStartMs) / 100) / 10, what: e.kind === "eject" ? `outlier ejection of ${e.host} (${e.reason}) for ${e.forMs / 1000} s` : `${e.host} back in service` });
        odSeen = od.log.length;
        if (mode === "reactive_unsafe" && !promotedOnEjection && od.log.some((e) => e.kind === "eject")) {
          promotedOnEjection = true;
          if (!pair.isDown("shadow")) { pair.act("promote", "shadow"); decisions.push({ t: tS(), what: "database failover: shadow promoted" }); }
        }
      }
    });
  };

  const interval = 1000 / scenario.rateRps;
  let issued = 0;
  const endMs = startMs + scenario.durationS * 1000;
  const pump = () => {
    const due = Math.floor(((nowMs() - runStartMs) / 1000) * scenario.rateRps);
    while (issued < due) {
      issued++;
      const user = `user-${Math.floor(rand() * scenario.keys)}`;
      const read = rand() < scenario.readShare && acked.length > 0;
      const key = read ? acked[Math.floor(rand() * acked.length)]! : `w${++writeSeq}`;
      send({ atMs: nowMs(), read, key, user });
    }
  };
  while (nowMs() < endMs) {
    clock.advance(Math.min(STEP_MS, interval));
    pump();
    await new Promise((r) => setImmediate(r));
  }
  // Let requests in flight finish (or time out).
  for (let i = 0; i < CLIENT_TIMEOUT_MS / STEP_MS; i++) { clock.advance(STEP_MS); await new Promise((r) => setImmediate(r)); }
  stopController();
  plugin?.shutdown();

  // Shift: the first second any request went to the shadow, and the first second from which all did.
  let started: number | null = null, done: number | null = null;
  for (const s of sidesSeen) {
    if (!s || s.total === 0) continue;
    if (started === null && s.toShadow > 0) started = s.t;
    if (s.toShadow === s.total) { done ??= s.t; } else done = null;
  }
  const falseMigration = scenario.expect === "stay" && started !== null ? 1 : 0;
  incidentLatencies.sort((a, b) => a - b);
  const p99 = incidentLatencies.length ? incidentLatencies[Math.min(incidentLatencies.length - 1, Math.floor(incidentLatencies.length * 0.99))]! : null;
  const after = (at: number | null) => (at === null || deathMs === null ? null : Math.round((at - deathMs) / 10) / 100);
  const div = [...divertedAt.values()].map((v) => v - deathMs!).sort((a, b) => a - b);
  const workers = mode === "shadowmesh" ? WORKERS : 1;
  // A worker that never diverted a read counts as never (the quantile is then null).
  const q = (f: number) => { const i = Math.ceil(f * workers) - 1; return i < div.length ? Math.round(div[i]! / 10) / 100 : null; };
  return {
    requests: totals.requests, failed_requests: totals.failed, failed_reads: totals.failedReads, failed_writes: totals.failedWrites,
    after_death: deathMs === null ? null : { reads_diverted_p50_s: q(0.5), reads_diverted_p99_s: q(0.99), writes_accepted_s: after(writeAcceptedAt) },
    two_writers_samples: twoWriters,
    p99_ms_during_incident: p99 === null ? null : Math.round(p99 * 10) / 10,
    shift_started_s: started, shift_done_s: started === null ? null : done,
    false_migrations: falseMigration, decisions,
    ...(mode === "shadowmesh" ? { at_risk_s: atRiskS, peak_risk: Math.round(peakRisk * 1000) / 1000 } : {}),
  };
}
