// The local demo: the whole system on one machine. It starts the sample component (primary leader
// in zone-a, shadow follower in zone-b), the controller (xDS, telemetry, risk, migration, API,
// dashboard) configured for it, the embedded data plane running the real filter, a load generator
// and the fault injector that plays the scenario's traces on the nodes and kills the primary at its
// hard-failure time. It reports progress once a second and returns the summary.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { KvNode } from "../sample/kv.js";
import { loadScenario, type Scenario, type SignalName } from "./scenario.js";
import { LoadGenerator, type LoadTotals } from "./load.js";
import type { Side } from "../../controller/xds/resources.js";

const here = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_SCENARIO = path.join(here, "..", "scenarios", "latency-creep.json");
export const COMPONENT = "orders";

export interface DemoOptions {
  scenario: Scenario | string;
  /** Run for this many seconds (default: the scenario's duration). */
  durationS?: number;
  log: Logger;
  /** Called once a second with the state of the run. */
  onProgress?: (p: Progress) => void;
  /** The dashboard's address is known once the controller listens. */
  onReady?: (r: { dashboard: string; listener: string }) => void;
  seed?: number;
}

export interface Progress {
  t: number;
  risk: number | null;
  phase: string;
  step: number;
  shadowPercent: number;
  writeTarget: string;
  lagS: number;
  rps: number;
  failed: number;
  requests: number;
  primaryDown: boolean;
}

export interface DemoSummary {
  scenario: string;
  duration_s: number;
  migrated: boolean;
  migrated_at_s: number | null;
  shift_started_s: number | null;
  failed_at_s: number | null;
  requests: number;
  failed_requests: number;
  failed_ratio: number;
  reads: number;
  writes: number;
  acknowledged_writes: number;
  lost_writes: number;
  final_phase: string;
  shadow_weight_percent: number;
  write_target: string;
  events: { t: number; kind: string; message: string }[];
}

/** Where the controller finds the pair: their data endpoints ("host:port") and base URLs (metrics, actions). */
/** adminToken: the pair's /admin/* token, which the controller's webhook sends (none: the nodes take anyone). */
export interface PairAddresses { primaryEndpoint: string; shadowEndpoint: string; primaryUrl: string; shadowUrl: string; adminToken?: string }

/** The demos' controller settings before their components: loopback listeners, the API token, the demo's policy, the compressed risk clock, the embedded data plane. */
export function demoControllerHead(wasm: string, token: string, telemetryToken?: string): string {
  return `
listen: { xds: 127.0.0.1:0, telemetry: 127.0.0.1:0, api: 127.0.0.1:0, http: 127.0.0.1:0 }
api: { tokens: [${token}] }${telemetryToken ? `
telemetry: { tokens: [${telemetryToken}] }` : ""}
policy: ${path.join(here, "policy.yaml")}
tickMs: 250
risk: { riseTauS: 4, fallTauS: 60, horizonS: 120 }
dataplane: { listener: 127.0.0.1:0, wasm: ${wasm}, telemetryIntervalMs: 500 }`;
}

/** The demo's controller configuration (also the incident benchmark's: the same signals, scrapes and policy). */
/** The demo component's first lines (name, hosts, the two sides, stickiness), for the KV and the PostgreSQL demos. */
export function demoComponentHead(primaryEndpoint: string, shadowEndpoint: string): string {
  return `components:
  - name: ${COMPONENT}
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: zone-a, endpoints: ["${primaryEndpoint}"] }
    shadow: { name: orders-shadow, zone: zone-b, endpoints: ["${shadowEndpoint}"] }
    filter: { sticky: { header: x-user } }`;
}

/**
 * The signals both demos score from the proxies and the pair: latency and errors against their SLOs
 * (the latency capacity is the clients' 2 s timeout; the SLO periods are 30 days compressed 40x, as
 * the policy compresses an hour's incident into 90 s), mirrored-read divergence, replication lag.
 */
export const DEMO_TRAFFIC_SIGNALS = `      - { name: request_latency_p99_ms, kind: latency, capacity: 2000, slo: { target: 0.99, threshold: 100, periodS: 64800 } }
      - { name: request_error_rate, kind: error_rate, slo: { target: 0.999, periodS: 64800 } }
      - { name: mirror_divergence, kind: consistency }
      - { name: replication_lag_s, kind: replication_lag }`;

export function controllerYaml(a: PairAddresses, wasm: string, token: string, telemetryToken?: string): string {
  return `${demoControllerHead(wasm, token, telemetryToken)}
${demoComponentHead(a.primaryEndpoint, a.shadowEndpoint)}
    actions: { webhook: "${a.shadowUrl}/admin/actions"${a.adminToken ? `, headers: { authorization: "Bearer ${a.adminToken}" }` : ""} }
    signals:
${DEMO_TRAFFIC_SIGNALS}
      - { name: cpu, kind: cpu, capacity: 1 }
      - { name: memory, kind: memory, capacity: 1, exhaustion: up }
      - { name: disk_io, kind: disk_io, capacity: 1, exhaustion: up }
      - { name: queue_depth, kind: queue_depth, capacity: 50, exhaustion: up }
scrape:
  - component: ${COMPONENT}
    url: ${a.primaryUrl}/metrics
    side: primary
    intervalS: 1
    signals:
      - { signal: cpu, metric: sample_cpu_utilization }
      - { signal: memory, metric: sample_memory_utilization }
      - { signal: disk_io, metric: sample_disk_io_utilization }
      - { signal: queue_depth, metric: sample_queue_depth }
  - component: ${COMPONENT}
    url: ${a.shadowUrl}/metrics
    side: shadow
    intervalS: 1
    signals:
      - { signal: replication_lag_s, metric: sample_replication_lag_seconds }
      # The shadow's own load: scored for the shadow (preflight refuses a shadow at risk).
      - { signal: cpu, metric: sample_cpu_utilization }
      - { signal: memory, metric: sample_memory_utilization }
      - { signal: disk_io, metric: sample_disk_io_utilization }
      - { signal: queue_depth, metric: sample_queue_depth }
`;
}

export interface RunningSystem {
  primary: KvNode;
  shadow: KvNode;
  controller: RunningController;
  dataplane: EmbeddedDataPlane;
  /** The data plane's listener, "127.0.0.1:PORT". */
  listener: string;
  /** The controller API's bearer token. */
  token: string;
  stop(): Promise<void>;
}

/**
 * Starts the sample component's two nodes, the controller configured for them and the embedded data
 * plane, and waits until the data plane's listener is warm. `condition` feeds the nodes' faults.
 */
export async function startSystem(o: { log: Logger; seed?: number; condition?: (side: Side, s: SignalName) => number }): Promise<RunningSystem> {
  const cond = o.condition;
  // The leader takes writes only under the lease the controller grants (world/demo/policy.yaml: promotion.lease).
  // The pair's admin endpoints take only the controller's webhook (and each other).
  const adminToken = randomBytes(16).toString("hex");
  const primary = new KvNode({ name: "orders-zone-a", side: "primary", zone: "zone-a", role: "leader", requireLease: true, adminToken, ...(cond ? { condition: (s) => cond("primary", s) } : {}), seed: (o.seed ?? 1) * 3, log: o.log });
  const shadow = new KvNode({ name: "orders-zone-b", side: "shadow", zone: "zone-b", role: "follower", requireLease: true, adminToken, ...(cond ? { condition: (s) => cond("shadow", s) } : {}), seed: (o.seed ?? 1) * 5, log: o.log });
  await primary.start();
  await shadow.start();
  primary.setPeer(shadow.url);
  shadow.setPeer(primary.url);
  const dir = mkdtempSync(path.join(os.tmpdir(), "shadowmesh-demo-"));
  const configFile = path.join(dir, "controller.yaml");
  const wasm = path.join(here, "..", "..", "build", "shadowmesh.wasm");
  const token = randomBytes(16).toString("hex");
  writeFileSync(configFile, controllerYaml({ primaryEndpoint: `127.0.0.1:${primary.port}`, shadowEndpoint: `127.0.0.1:${shadow.port}`, primaryUrl: primary.url, shadowUrl: shadow.url, adminToken }, wasm, token, randomBytes(16).toString("hex")));
  let controller: RunningController | undefined;
  let dataplane: EmbeddedDataPlane | undefined;
  const stop = async () => {
    await dataplane?.close();
    await controller?.stop();
    await primary.stop();
    await shadow.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    controller = await startController(parseConfig(readFileSync(configFile, "utf8"), configFile), { log: o.log });
    dataplane = new EmbeddedDataPlane({ xds: `127.0.0.1:${controller.ports.xds}`, node: { id: "demo-sidecar", cluster: "demo", zone: "zone-a" }, log: o.log });
    dataplane.start();
    const port = await dataplane.listenerPort("shadowmesh-ingress", 15_000);
    return { primary, shadow, controller, dataplane, listener: `127.0.0.1:${port}`, token, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const scenario = typeof o.scenario === "string" ? loadScenario(o.scenario) : o.scenario;
  const durationS = o.durationS ?? scenario.durationS;
  let t0 = Date.now();
  const elapsedS = () => (Date.now() - t0) / 1000;
  const sys = await startSystem({ log: o.log, seed: o.seed ?? 1, condition: (side, s) => scenario[side].trace(s).at(elapsedS()) });
  const { primary, shadow, controller } = sys;
  t0 = Date.now(); // the scenario's clock starts with traffic
  let load: LoadGenerator | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    o.onReady?.({ dashboard: `http://127.0.0.1:${controller.ports.http}/`, listener: sys.listener });

    const events: DemoSummary["events"] = [];
    let shiftStartedS: number | null = null, migratedAtS: number | null = null;
    controller.manager.on("event", (e: { kind: string; message: string; phase: string }) => {
      const t = Math.round(elapsedS() * 10) / 10;
      events.push({ t, kind: e.kind, message: e.message });
      if (shiftStartedS === null && e.phase === "Shifting") shiftStartedS = t;
      if (migratedAtS === null && e.phase === "Migrated") migratedAtS = t;
    });

    load = new LoadGenerator({ target: sys.listener, host: "orders.svc", rateRps: scenario.rateRps, readShare: scenario.readShare, keys: scenario.keys, seed: o.seed ?? 1 });
    load.start();

    let failedAtS: number | null = null;
    const kill = (node: KvNode, at: number | null) => {
      if (at === null || at >= durationS) return;
      timers.push(setTimeout(() => { node.fail(); if (node === primary) failedAtS = Math.round(elapsedS() * 10) / 10; }, at * 1000));
    };
    kill(primary, scenario.primary.failAtS);
    kill(shadow, scenario.shadow.failAtS);

    const c = controller;
    const tick = () => {
      const st = c.manager.get(COMPONENT).status;
      const r = c.engine.get(COMPONENT);
      const lag = r?.contributions.find((x) => x.kind === "replication_lag");
      const tot = load!.totals();
      o.onProgress?.({
        t: elapsedS(), risk: r && !r.noData ? r.risk : null, phase: st.phase, step: st.stepIndex, shadowPercent: st.shadowWeightBp / 100,
        writeTarget: st.writeTarget, lagS: lag?.value ?? NaN, rps: load!.recentRps(), failed: tot.failed, requests: tot.requests, primaryDown: primary.isFailed,
      });
    };
    timers.push(setInterval(tick, 1000));
    await new Promise((r) => timers.push(setTimeout(r, durationS * 1000)));
    for (const t of timers) clearTimeout(t);
    await load.stop();

    const totals: LoadTotals = load.totals();
    // Every acknowledged write must be on the side that takes writes now.
    const leader = primary.role === "leader" && !primary.isFailed ? primary : shadow;
    let lost = 0;
    for (const [k, v] of load.acknowledged()) if (leader.get(k) !== v) lost++;
    const st = controller.manager.get(COMPONENT).status;
    return {
      scenario: scenario.name, duration_s: durationS,
      migrated: st.writeTarget === "shadow" && st.shadowWeightBp === 10_000,
      migrated_at_s: migratedAtS, shift_started_s: shiftStartedS, failed_at_s: failedAtS,
      requests: totals.requests, failed_requests: totals.failed, failed_ratio: totals.requests ? totals.failed / totals.requests : 0,
      reads: totals.reads, writes: totals.writes, acknowledged_writes: load.acknowledged().size, lost_writes: lost,
      final_phase: st.phase, shadow_weight_percent: st.shadowWeightBp / 100, write_target: st.writeTarget, events,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    await load?.stop();
    await sys.stop();
  }
}
