// The controller process: wires the xDS server and traffic router, the telemetry service, the risk
// engine (fed by telemetry, pushed metrics and scrapes), the migration manager with its durable store,
// the controller API, event webhooks and an HTTP endpoint with Prometheus /metrics and /healthz, and
// the failure model's learning: a history of features and failures (entering Failover, or an operator's
// incident mark) sampled on the tick, and a learner that retrains the predictor on it.
// Everything with I/O lives here; the decisions are in the pure cores it calls on each tick.
import http from "node:http";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { SystemClock, wallMs, type Clock } from "../host/clock.js";
import { createLogger } from "./log.js";
import { splitHostPort, type ControllerConfig } from "./config.js";
import { DEFAULT_GROUP, SnapshotCache } from "./xds/cache.js";
import { TYPE } from "../protocol/protos.js";
import { AdsServer } from "./xds/server.js";
import { XdsTrafficRouter } from "./xds/router.js";
import { PAUSE_WRITES_FEATURE, featureGap } from "./xds/features.js";
import type { TelemetryStore } from "./telemetry/store.js";
import { addTelemetryService, telemetryServerCredentials } from "./telemetry/service.js";
import { outlierLogger } from "./telemetry/feed.js";
import { shadowKey, type RiskEngine } from "./risk/engine.js";
import { PrometheusScraper } from "./metrics/prometheus.js";
import { controllerMetrics } from "./metrics/exposition.js";
import { PromqlSignalSource } from "./metrics/promql.js";
import type { Registry } from "prom-client";
import { BUILD } from "./build-info.js";
import type { MigrationManager } from "./migration/manager.js";
import { FileStateStore, MemoryStateStore, type StateStore } from "./migration/store.js";
import { buildManager, buildRiskCore, persistRisk, tickController } from "./core.js";
import { DEFAULT_KEEP_POINTS } from "./risk/persist.js";
import { DriverActions } from "./drivers/driver.js";
import { buildDrivers } from "./drivers/factory.js";
import { DriverPoller } from "./drivers/poller.js";
import { RejoinWatcher } from "./drivers/rejoin.js";
import { shadowCost } from "./drivers/cost.js";
import { addControllerApi } from "./api/service.js";
import { EventWebhooks } from "./events/webhooks.js";
import type { MigrationEvent, Phase } from "./migration/reconcile.js";
import { DashboardHistory, handleDashboard, sampleHistory } from "./dashboard/server.js";
import { HistoryStore, type FailureSource } from "./risk/history.js";
import { Learner, RETRAIN_AFTER_FAILOVER_MS } from "./risk/learner.js";
import { CONTROLLER_SERVICE, controllerClient, modelMessage, type ControllerClient, type LearningApi } from "./api/service.js";
import { HealthService } from "./api/health.js";
import { etcdClient } from "./ha/client.js";
import { HaReplica } from "./ha/replica.js";
import { TelemetryForwarder } from "./ha/forward.js";
import { TermActions } from "./ha/actions.js";
import { replicaCredentials } from "./ha/credentials.js";
import { ImpactService } from "./impact/service.js";
import { filterCallers, resolveImpact } from "./impact/config.js";
import os from "node:os";
import type { Side } from "./xds/resources.js";

export interface RunningController {
  manager: MigrationManager;
  /** HA mode: this replica (role, leader, quorum); null for a single process. */
  replica: HaReplica | null;
  engine: RiskEngine;
  telemetry: TelemetryStore;
  router: XdsTrafficRouter;
  ports: { xds: number; telemetry: number; api: number; http: number };
  registry: Registry;
  /** The failure model's history (features and failures) and its learner. */
  history: HistoryStore;
  learner: Learner;
  /** Each component's driver poll: health per side, the lag (drivers/poller.ts). */
  drivers: DriverPoller;
  /** Signals read with PromQL from a Prometheus server (metrics/promql.ts). */
  promql: PromqlSignalSource;
  stop(): Promise<void>;
}

/** Phases in which nothing is being decided: a retrain may take the tick. */
const CALM_PHASES: ReadonlySet<string> = new Set(["Healthy", "Migrated", "Paused"]);
/** How often the risk engine's state is written to stateDir/risk.jsonl. */
const RISK_SAVE_MS = 10_000;


function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (e, port) => (e ? reject(new Error(`cannot listen on ${address}: ${e.message}`)) : resolve(port))));
}

/** Lets calls in flight finish for a moment, then cuts the rest (watch streams never end by themselves). */
function shutdown(server: grpc.Server, graceMs = 300): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
    server.tryShutdown(() => { clearTimeout(t); resolve(); });
  });
}

export async function startController(cfg: ControllerConfig, opts: { clock?: Clock; log?: Logger; store?: StateStore } = {}): Promise<RunningController> {
  const clock = opts.clock ?? new SystemClock();
  // Logs go to stderr: stdout carries the ready line and nothing else.
  const log = opts.log ?? createLogger("shadowmesh-controller", undefined, 2);
  const core = buildRiskCore(cfg, clock, cfg.stateDir ? { keepPoints: DEFAULT_KEEP_POINTS } : {});
  // The risk continues across restarts (stateDir/risk.jsonl, saved every RISK_SAVE_MS and at stop).
  const riskState = cfg.stateDir ? persistRisk(core, cfg.stateDir, clock, DEFAULT_KEEP_POINTS) : null;
  for (const w of riskState?.warnings ?? []) log.warn({ file: riskState!.file }, `risk state: ${w}`);
  const { engine, telemetry } = core;

  // Bound before the router is built: the proxies are told the port actually bound (it may be :0).
  // Telemetry auth (config `telemetry`): bearer tokens and/or mTLS; without either, anyone may report.
  const telemetryAuth = { tokens: cfg.telemetry.tokens, mtls: !!cfg.telemetry.tls?.clientCa };
  if (!telemetryAuth.tokens.length && !telemetryAuth.mtls) {
    log.warn({ listen: cfg.listen.telemetry }, "telemetry server has no authentication (no telemetry.tokens, tokenEnv or tls.clientCa): anyone who can reach it can report request errors, latencies and replication lag, and so drive migrations");
  }
  // grpc.health.v1 on the API port and on the telemetry port (plaintext where the API has TLS, for
  // Kubernetes' grpc probes, which speak no TLS). Not ready until the state and a snapshot are there.
  let stopping = false;
  let readiness = (): { ready: boolean; xdsSnapshot: string | null; components: number; stopping: boolean; ha?: ReturnType<HaReplica["view"]> } => ({ ready: false, xdsSnapshot: null, components: 0, stopping });
  const health = new HealthService([CONTROLLER_SERVICE], () => readiness().ready);
  const telemetryServer = new grpc.Server();
  health.add(telemetryServer);
  // HA: a follower forwards the reports it merged to the leader (set once the replica exists).
  let forwarder: TelemetryForwarder | null = null;
  addTelemetryService(telemetryServer, { store: telemetry, engine, clock, log, auth: telemetryAuth, forward: (raw) => forwarder?.forward(raw), observed: new Set((cfg.observe ?? []).map((o) => o.name)) });
  const telemetryPort = await bind(telemetryServer, cfg.listen.telemetry, telemetryServerCredentials(cfg.telemetry.tls));
  // One voice per proxy: a proxy whose error rate stands out against the others is a proxy or zone problem.
  telemetry.onSealed(outlierLogger(log));

  // Sidecars without a local copy fetch the module from this controller (dataplane.wasmUrl), checked by its sha256.
  const served = cfg.dataplane?.wasmUrl ? serveableModule(cfg.dataplane.wasm) : null;
  const stream = telemetryStreams(cfg.dataplane, served?.bytes ?? null, log);
  const telemetryListen = splitHostPort(cfg.listen.telemetry).address;
  const cache = new SnapshotCache();
  const ads = new AdsServer({ cache, logger: log, clock });
  const router = new XdsTrafficRouter({
    cache, server: ads, logger: log, components: cfg.components.map((c) => c.route),
    telemetry: { cluster: cfg.dataplane?.telemetryCluster ?? "shadowmesh-telemetry", address: telemetryListen, port: telemetryPort, ...(cfg.dataplane ? { intervalMs: cfg.dataplane.telemetryIntervalMs } : {}), ...(cfg.telemetry.tokens[0] ? { token: cfg.telemetry.tokens[0] } : {}), ...(cfg.dataplane?.telemetryTls ? { tls: cfg.dataplane.telemetryTls } : {}), ...(stream ? { stream } : {}) },
    ...(cfg.dataplane?.listener ? { envoyListener: cfg.dataplane.listener } : {}),
    ...(cfg.dataplane ? { wasm: served ? { uri: cfg.dataplane.wasmUrl!, cluster: cfg.dataplane.wasmCluster!, sha256: served.sha256 } : { filename: cfg.dataplane.wasm } } : {}),
    filterSettings: Object.fromEntries(cfg.components.filter((c) => c.filter).map((c) => [c.route.name, c.filter!])),
    ...(cfg.observe?.length ? { observed: cfg.observe } : {}),
    ...(cfg.impact?.callers ? { callers: filterCallers(cfg.impact.callers) } : {}),
  });
  router.start();
  // TLS from xds.tls; with clientCa the proxies must present a certificate signed by it (mTLS).
  const xdsTls = cfg.xds?.tls;
  const xdsPort = await ads.listen(cfg.listen.xds, xdsTls ? { certFile: xdsTls.cert, keyFile: xdsTls.key, ...(xdsTls.clientCa ? { caFile: xdsTls.clientCa, requireClientCert: true } : {}) } : undefined);


  // HA mode: replicas on etcd (ha/replica.ts); the state lives there and only the leader decides.
  const etcd = cfg.ha ? etcdClient({ endpoints: cfg.ha.endpoints, callTimeoutMs: cfg.ha.callTimeoutMs }) : null;
  const telemetryHost = cfg.ha?.advertise ?? (/^(0\.0\.0\.0|\[?::\]?)$/.test(telemetryListen) ? os.hostname() : telemetryListen);
  const replica = cfg.ha && etcd ? new HaReplica({ client: etcd, prefix: cfg.ha.prefix, replica: cfg.ha.replica, ttlS: cfg.ha.leaseTtlS, log, nowMs: () => wallMs(clock), local: router, telemetryAddress: `${telemetryHost}:${telemetryPort}` }) : null;
  if (replica) forwarder = new TelemetryForwarder({ leader: () => replica.leaderTarget(), leading: () => replica.role === "leader", credentials: replicaCredentials(cfg.telemetry.tls), ...(cfg.telemetry.tokens[0] ? { token: cfg.telemetry.tokens[0] } : {}), log,
    subscribers: { replica: replica.name, nodes: () => ads.subscribers(DEFAULT_GROUP, TYPE.extension) } });
  const store = replica?.store ?? opts.store ?? (cfg.stateDir ? new FileStateStore(cfg.stateDir) : new MemoryStateStore());
  // Each component's driver (drivers/): its actions, and for those that measure, health, signals and lag.
  const built = buildDrivers(cfg.components, clock);
  const actions = new DriverActions(built.drivers);
  const drivers = new DriverPoller(built.targets, engine, clock, log);
  // Built before the manager: scrape targets with a side, and measuring drivers, are that side's active health check.
  const scraper = new PrometheusScraper(cfg.scrape, engine, clock, fetch, log);
  const promql = new PromqlSignalSource(cfg.promql ?? [], engine, clock, fetch, log);
  // A side being rejoined (stopped, rewound or cloned, restarted) fails its health check meanwhile:
  // nothing (a restore, the floor's probes) sends it traffic until it is back as a replica.
  let rejoins: RejoinWatcher | null = null;
  const probes = {
    probeFailures: (c: string, side: Side) => {
      const a = scraper.probeFailures(c, side), b = drivers.probeFailures(c, side);
      const n = a === null ? b : b === null ? a : Math.max(a, b);
      return rejoins?.rejoining(c, side) ? Math.max(n ?? 0, 1) : n;
    },
    writerAnsweredAtMs: (c: string) => drivers.writerAnsweredAtMs(c),
  };
  // The drain after a fence reads the lag at once from every source that measures it: scrape
  // targets and drivers directly, PromQL from what Prometheus last sampled (stamped with that time).
  const lag = { measureLag: async (c: string) => (await Promise.all([scraper.measureLag(c), drivers.measureLag(c), promql.measureLag(c)])).reduce((a, b) => a + b, 0) };
  const manager = buildManager(cfg, core, { clock, router: replica ? replica.router() : router, store, actions: replica ? new TermActions(actions, () => replica.leadership.token, () => replica.store.confirmTerm()) : actions, log, probes, lag,
    // Writes wait in the proxies through a switch only while none would refuse pause_writes_ms (an older filter).
    pauseBlockers: featureGap({ ads, store: telemetry, group: DEFAULT_GROUP, clock }, PAUSE_WRITES_FEATURE) });
  rejoins = new RejoinWatcher(built.drivers, drivers, manager, clock, log);
  const rejoinWatcher = rejoins;
  const cost = (name: string) => { const { status, observed } = manager.get(name); return shadowCost(observed?.recent.mirror, drivers.status().find((d) => d.component === name), status.writeTarget); };
  if (replica) await replica.start(manager); else manager.start();
  // manager.start() loaded the store: what it recovered from (a torn last journal line) is logged.
  for (const w of store.warnings ?? []) log.warn({ stateDir: cfg.stateDir }, `state store: ${w}`);

  // The failure model learns from outcomes: stateDir/history.jsonl and model.json (memory only without a stateDir).
  const learning = cfg.learning ?? {};
  const failureHistory = new HistoryStore({
    dir: cfg.stateDir, clock, components: manager.components(),
    ...(learning.sampleEveryS ? { sampleEveryS: learning.sampleEveryS } : {}), ...(learning.maxSamplesPerComponent ? { maxSamplesPerComponent: learning.maxSamplesPerComponent } : {}),
  });
  failureHistory.load();
  const learner = new Learner({ dir: cfg.stateDir, clock, history: failureHistory, engine, ...(learning.horizonS ? { horizonS: learning.horizonS } : {}), ...(learning.retrainEveryS ? { retrainEveryS: learning.retrainEveryS } : {}) });
  const learnWarnings = [...failureHistory.warnings, ...learner.load()];
  for (const w of learnWarnings) log.warn({ stateDir: cfg.stateDir }, `failure history: ${w}`);
  log.info({ source: learner.model.source, reason: learner.model.reason }, "failure model");

  const webhooks = new EventWebhooks(cfg.webhooks, clock, log);
  const metrics = controllerMetrics({
    clock, build: BUILD, manager, engine, telemetry, ads, drivers, webhooks: () => webhooks.stats,
    model: () => learner.model, historySamples: () => failureHistory.sampleCount(),
    ...(replica ? { ha: () => replica.view() } : {}),
  });
  const registry = metrics.registry;
  manager.on("event", (e: MigrationEvent) => { webhooks.publish(e); metrics.countEvent(e); });
  const recordFailure = (component: string, atMs: number, source: FailureSource, note: string, by?: string): void => {
    failureHistory.recordFailure({ component, atMs, source, ...(note ? { note } : {}), ...(by ? { by } : {}) });
    metrics.countIncident(source);
    learner.onFailure(source === "controller" ? RETRAIN_AFTER_FAILOVER_MS : 0);
  };
  // Labels from what the controller saw: entering Failover (the primary judged down) is a failure, back to
  // Healthy its end; entering Failover again before that is the same outage.
  manager.on("event", (e: MigrationEvent) => {
    if (e.kind !== "phase") return;
    try {
      if (e.phase === "Failover") { if (!failureHistory.isDown(e.component)) recordFailure(e.component, e.atMs, "controller", e.message); }
      else if (e.phase === "Healthy") failureHistory.recordRecovery(e.component, e.atMs);
    } catch (err) { log.error({ err, component: e.component }, "cannot record the failure in the failure history"); }
  });
  // Impact analysis: the service graph from the filters' callers (stateDir/graph.json), its ranking and the shadow plan.
  const impact = new ImpactService({
    config: cfg.impact ?? resolveImpact(undefined, (p, why) => { throw new Error(`${p.join(".")}: ${why}`); }), stateDir: cfg.stateDir, log, bucketMs: telemetry.bucketMs,
    protectedNames: manager.components(),
    sources: { failures: () => failureHistory.failures(), observedHours: (c) => failureHistory.sampleCount(c) * failureHistory.sampleEveryMs / 3_600_000, meanRisk: (c) => failureHistory.meanRisk(c), cost: (c) => (manager.components().includes(c) ? cost(c) : null) },
  });
  telemetry.onSealed((s) => impact.onSealed(s));
  const learningApi: LearningApi = {
    nowMs: () => wallMs(clock),
    mark: (component, atMs, note, by) => recordFailure(component, atMs, "operator", note, by),
    model: () => ({ info: learner.model, historySamples: failureHistory.sampleCount(), nextRetrainMs: learner.nextRetrainMs }),
  };

  // Ready: the xDS server has a snapshot to serve and the migration state is loaded (manager.start()
  // above); not while stopping. /readyz and grpc.health.v1 say the same.
  readiness = () => {
    const snap = cache.getSnapshot(DEFAULT_GROUP);
    return { ready: !stopping && snap !== undefined, xdsSnapshot: snap?.version ?? null, components: manager.components().length, stopping, ...(replica ? { ha: replica.view() } : {}) };
  };
  const apiServer = new grpc.Server();
  health.add(apiServer);
  // HA: a follower passes commands on to the leader's API (the client follows the leader's address).
  let leaderClient: { address: string; client: ControllerClient } | null = null;
  let leaderApiCredentials: grpc.ChannelCredentials | undefined; // read once, when a leader is first dialled
  const leaderApi = (): ControllerClient | null => {
    const l = replica?.leaderApi();
    if (!l) return null;
    if (leaderClient?.address !== l.api) { leaderClient?.client.close(); leaderClient = { address: l.api, client: controllerClient(l.api, null, leaderApiCredentials ??= replicaCredentials(cfg.api.tls)) }; }
    return leaderClient.client;
  };
  addControllerApi(apiServer, { impact: { nowMs: () => wallMs(clock), view: (n) => impact.view(n), plan: (n, b) => impact.plan(n, b) }, proxies: () => ads.status(), filterFeatures: (node) => telemetry.featuresOf(node), manager, engine, auth: { tokens: cfg.api.tokens, mtls: !!cfg.api.tls?.clientCa }, log, stateWarnings: () => [...(store.warnings ?? []), ...(riskState?.warnings ?? []), ...learnWarnings], learning: learningApi, cost, ...(replica ? { leaderApi, replica: replica.name } : {}) });
  const apiCreds = cfg.api.tls
    ? grpc.ServerCredentials.createSsl(cfg.api.tls.clientCa ? readFileSync(cfg.api.tls.clientCa) : null, [{ cert_chain: readFileSync(cfg.api.tls.cert), private_key: readFileSync(cfg.api.tls.key) }], !!cfg.api.tls.clientCa)
    : grpc.ServerCredentials.createInsecure();
  const apiPort = await bind(apiServer, cfg.listen.api, apiCreds);
  if (replica) await replica.advertiseApi(`${telemetryHost}:${apiPort}`);

  // The dashboard's history (15 min at 1 s, 6 h at 15 s), kept in stateDir/dashboard-history.json when there is one.
  const history = DashboardHistory.open({ stateDir: cfg.stateDir, log, components: manager.components() });
  const dashboard = { manager, engine, history, nowMs: () => wallMs(clock), model: () => modelMessage(learningApi.model()), cost, impact, proxies: () => ads.status(), ...(replica ? { ha: () => replica.view() } : {}) };
  const httpServer = http.createServer((req, res) => {
    if (handleDashboard(dashboard, req, res)) return;
    if (served && req.url === WASM_PATH) { res.writeHead(200, { "content-type": "application/wasm", etag: `"${served.sha256}"`, "content-length": served.bytes.length }); res.end(served.bytes); return; }
    if (req.url === "/metrics") {
      metrics.render(req.headers.accept).then(([type, body]) => { res.writeHead(200, { "content-type": type }); res.end(body); },
        (e: Error) => { res.writeHead(500); res.end(e.message); });
    } else if (req.url === "/healthz") { res.writeHead(200, { "content-type": "text/plain" }); res.end("ok\n"); }
    else if (req.url === "/readyz") { const r = readiness(); res.writeHead(r.ready ? 200 : 503, { "content-type": "application/json" }); res.end(`${JSON.stringify(r)}\n`); }
    else { res.writeHead(404, { "content-type": "text/plain" }); res.end("not found: try / (dashboard), /metrics, /healthz or /readyz\n"); }
  });
  const httpAt = splitHostPort(cfg.listen.http);
  const httpPort = await new Promise<number>((resolve, reject) => {
    httpServer.once("error", (e) => reject(new Error(`cannot listen on ${cfg.listen.http}: ${e.message}`)));
    httpServer.listen(httpAt.port, httpAt.address, () => resolve((httpServer.address() as { port: number }).port));
  });

  scraper.start();
  promql.start();
  drivers.start();
  let stopped = false;
  let lastSampleMs = 0;
  let lastRiskSaveMs = wallMs(clock);
  const saveRisk = (): void => {
    if (!riskState) return;
    lastRiskSaveMs = wallMs(clock);
    try { riskState.save(); } catch (e) { log.error({ err: e, file: riskState.file }, "cannot save the risk state"); }
  };
  const loop = (): void => {
    if (stopped) return;
    try {
      tickController(core, manager, clock);
      impact.tick(wallMs(clock));
      health.refresh();
      rejoinWatcher.tick();
      if (wallMs(clock) - lastSampleMs >= 1000) { lastSampleMs = wallMs(clock); sampleHistory(dashboard); history.saveIfDue(lastSampleMs); }
      if (wallMs(clock) - lastRiskSaveMs >= RISK_SAVE_MS) saveRisk();
    } catch (e) { log.error({ err: e }, "controller tick failed"); }
    try {
      failureHistory.maybeSample(engine, manager.components());
      // A retrain (up to ~0.75 s on this tick) waits while any component is mid-decision.
      const busy = manager.components().some((n) => !CALM_PHASES.has(manager.phaseOf(n)));
      const m = learner.tick(busy);
      if (m) log.info({ source: m.source, samples: m.samples, positives: m.positives, brier: m.brier, ece: m.ece, priorBrier: m.priorBrier }, `failure model retrained: ${m.reason}`);
    } catch (e) { log.error({ err: e }, "failure history or model retrain failed"); }
    clock.setTimer(cfg.tickMs, loop);
  };
  clock.setTimer(cfg.tickMs, loop);

  return {
    manager, replica, engine, telemetry, router, registry, history: failureHistory, learner, drivers, promql,
    ports: { xds: xdsPort, telemetry: telemetryPort, api: apiPort, http: httpPort },
    async stop() {
      stopped = true;
      stopping = true;
      health.refresh();
      health.close();
      scraper.stop();
      promql.stop();
      drivers.stop();
      await actions.close();
      httpServer.closeAllConnections();
      await Promise.all([shutdown(apiServer), shutdown(telemetryServer), new Promise<void>((r) => httpServer.close(() => r())), ads.close()]);
      saveRisk();
      history.save();
      impact.save(wallMs(clock));
      store.close();
      forwarder?.close();
      leaderClient?.client.close();
      await replica?.close();
      etcd?.close();
      failureHistory.close();
    },
  };
}

/** Where the controller's HTTP port serves the filter's module for sidecars (dataplane.wasmUrl names it). */
export const WASM_PATH = "/wasm/shadowmesh.wasm";

/**
 * Whether the proxies are told to stream their reports (the filter's telemetry.stream): as configured
 * (dataplane.telemetryStream), else when the module the proxies run can be read here and imports
 * proxy_grpc_stream (the build that added streaming also added the setting; an older build refuses a
 * configuration with a field it does not know, so it must not get one). Without a module to look at:
 * unary calls, said once in the log.
 */
export function telemetryStreams(dp: ControllerConfig["dataplane"], bytes: Buffer | null, log: Logger): boolean {
  if (!dp) return false;
  if (dp.telemetryStream !== undefined) return dp.telemetryStream;
  let module: WebAssembly.Module;
  try { module = new WebAssembly.Module(new Uint8Array(bytes ?? readFileSync(dp.wasm))); }
  catch (e) {
    log.info({ wasm: dp.wasm, err: (e as Error).message }, "telemetry on unary Report calls: the filter module cannot be read here to check that it streams (set dataplane.telemetryStream: true to stream)");
    return false;
  }
  return WebAssembly.Module.imports(module).some((i) => i.module === "env" && i.name === "proxy_grpc_stream");
}

/** The module to serve and its sha256 (what the ECDS configuration's remote code is checked against). */
function serveableModule(file: string): { bytes: Buffer; sha256: string } {
  let bytes: Buffer;
  try { bytes = readFileSync(file); } catch (e) { throw new Error(`dataplane.wasm ${file}: cannot read the module the sidecars fetch: ${(e as Error).message}`); }
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}
