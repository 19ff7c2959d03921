// Fuzzing the controller's inputs, each by calling the code that handles it directly (no sockets):
//   report   the Telemetry service's Report handler: random protobuf bytes, mutations of a real report,
//            well-typed reports with extreme numbers (decodeReport, validation, TelemetryStore.ingest)
//   metrics  PushMetrics: random bytes and well-typed batches (decodeMetrics, range checks, engine)
//   xds      the ADS server's stream handling (SotW and delta) on a fake call: random DiscoveryRequests,
//            ACKs and NACKs of the nonces it sent, random protobuf bytes through the method's decoder
//   api      the controller API's handlers with random requests (auth, argument validation, SetPolicy)
//   config   parseConfig: random YAML documents and mutations of a valid configuration
//   policy   parsePolicy: random YAML documents and mutations of examples/policy.yaml
//   journal  FileStateStore.load on a state directory holding random journal lines
// Property: nothing throws except the documented errors (ConfigError/PolicyError/YamlFieldError
// with FILE:LINE:COL, grpc status errors, StateStoreError), every call is answered, no input takes
// longer than HANG_MS. The shared arbitraries and mutators are in arbitraries.ts, the fake gRPC calls
// in fake-grpc.ts.
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ManualClock } from "../../host/clock.js";
import { silentLogger } from "../../controller/log.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { telemetryHandlers, telemetryMethods } from "../../controller/telemetry/service.js";
import { telemetryRoot } from "../../controller/telemetry/report.js";
import { REQUEST_SIGNALS } from "../../controller/telemetry/feed.js";
import { MULTIPLIER, RELATIVE_ACCURACY } from "../../controller/telemetry/sketch.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { ConfigError, parseConfig } from "../../controller/config.js";
import { parsePolicy, PolicyError } from "../../controller/migration/policy.js";
import { YamlFieldError } from "../../controller/yaml-config.js";
import { FileStateStore, StateStoreError } from "../../controller/migration/store.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { AdsServer } from "../../controller/xds/server.js";
import { adsMethods } from "../../protocol/ads.js";
import { XdsTrafficRouter } from "../../controller/xds/router.js";
import { controllerHandlers } from "../../controller/api/service.js";
import { buildManager, buildRiskCore } from "../../controller/core.js";
import { MemoryStateStore } from "../../controller/migration/store.js";
import { ConfiguredActions } from "../../controller/migration/actions.js";
import { PrometheusScraper } from "../../controller/metrics/prometheus.js";
import { byteOps, extremeNumber, i64, mutateBytes, name, resolveNow, u64, yamlDoc } from "./arbitraries.js";
import { FakeAdsCall, fakeUnary, recorder } from "./fake-grpc.js";

export const CONTROLLER_KINDS = ["report", "metrics", "xds", "api", "config", "policy", "journal"] as const;
export type ControllerKind = (typeof CONTROLLER_KINDS)[number];
export const HANG_MS = 2000;

const ROOT = new URL("../../", import.meta.url);
const EXAMPLE_POLICY = readFileSync(new URL("examples/policy.yaml", ROOT), "utf8");
const TOKEN = "fuzz-api-token-0123456789";
const BASE_CONFIG = `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["${TOKEN}"] }
tickMs: 50
components:
  - name: orders
    hostnames: [orders.svc, "orders.svc:80"]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
  - name: users
    hostnames: [users.svc]
    primary: { name: users-primary, zone: a, endpoints: ["127.0.0.1:7003", "127.0.0.1:7004"] }
    shadow: { name: users-shadow, zone: b, endpoints: ["127.0.0.1:7005"] }
`;
/** The variables examples/controller.yaml names (tokenEnv). */
const CONFIG_ENV = { SHADOWMESH_TOKEN: "fuzz-token-0123456789abcdef", SHADOWMESH_TELEMETRY_TOKEN: "fuzz-telemetry-0123456789abcdef" };
const EXAMPLE_CONFIG = (() => {
  const f = new URL("examples/controller.yaml", ROOT);
  return existsSync(f) ? readFileSync(f, "utf8") : BASE_CONFIG;
})();

// ------------------------------------------------------------------ the targets

export interface ControllerFailure { kind: "crash" | "hang"; target: ControllerKind; message: string; input: unknown }

export class ControllerFuzzer {
  readonly clock = new ManualClock(Date.now());
  private readonly log = silentLogger();
  private readonly store = new TelemetryStore({ clock: this.clock });
  private readonly engine = new RiskEngine({ clock: this.clock });
  private readonly report: (call: any, cb: any) => void;
  private readonly push: (call: any, cb: any) => void;
  private readonly FR = telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
  private readonly MB = telemetryRoot().lookupType("shadowmesh.telemetry.v1.MetricsBatch");
  private ads!: AdsServer;
  private adsDecode!: { sotw: (b: Buffer) => unknown; delta: (b: Buffer) => unknown; sotwRes: (b: Buffer) => any; deltaRes: (b: Buffer) => any };
  private api!: grpc.UntypedServiceImplementation;
  private manager!: ReturnType<typeof buildManager>;
  private router!: XdsTrafficRouter;
  private readonly dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-fuzz-"));
  /** Distinct node ids sent to the ADS server (its per-node ACK log is keyed by them). */
  xdsNodes = 0;
  /** Inputs that were accepted (answered OK, parsed, loaded), per kind: how deep the fuzzing gets. */
  readonly accepted: Record<ControllerKind, number> = Object.fromEntries(CONTROLLER_KINDS.map((k) => [k, 0])) as Record<ControllerKind, number>;
  readonly arbitraries: Record<ControllerKind, fc.Arbitrary<any>>;

  private constructor() {
    this.engine.setComponent({ name: "orders", signals: [
      // Every view the engine has: an SLO's burn rates, saturation and the exhaustion forecast, a learnt profile, volatility.
      { name: REQUEST_SIGNALS.errors, kind: "error_rate", slo: { target: 0.999, periodS: 3600 } }, { name: "replication_lag_s", kind: "replication_lag", capacity: 30 },
      { name: "cpu", kind: "cpu", capacity: 1, warnAt: 0.8, seasonS: 600 }, { name: "score", kind: "app", slo: { target: 0.99, threshold: 0.5 } },
    ] });
    const h = telemetryHandlers({ store: this.store, engine: this.engine, clock: this.clock, log: this.log });
    this.report = h.Report as any;
    this.push = h.PushMetrics as any;
    this.arbitraries = this.buildArbitraries();
  }

  private seq = 1;
  /** A report the service accepts, for the clock's present (a new sequence each time). */
  private validReport(): Uint8Array {
    const nowNs = this.clock.realtimeNs();
    return this.FR.encode(this.FR.fromObject({
      nodeId: "fuzz-node", workerId: "1", sequence: String(++this.seq), windowStartUnixNanos: String(nowNs - 1_000_000_000n), windowEndUnixNanos: String(nowNs),
      components: [{ component: "orders", reads: "10", writes: "2", shadowWeightBp: 100,
        targets: [{ target: 1, requests: "10", status_2xx: "9", status_5xx: "1",
          latency: { relativeAccuracy: RELATIVE_ACCURACY, indexMultiplier: MULTIPLIER, indexOffset: 100, counts: [1, 2, 3], zeroCount: "1", sum: 30, min: 1, max: 20, count: "7" } }],
        consistency: { mirrored: "3", match: "2", statusMismatch: "1" }, floor: { ejections: "1", ejected: true } }],
    })).finish();
  }

  private validMetrics(): Uint8Array {
    return this.MB.encode(this.MB.fromObject({ points: [{ component: "orders", signal: "cpu", value: 0.5, timestampUnixNanos: String(this.clock.realtimeNs()) }] })).finish();
  }

  /** The bytes of an input: raw, or built now (a valid message, a mutated one, a typed one with "@now" times). */
  private bytesOf(kind: "report" | "metrics", b: any): Uint8Array {
    if (b instanceof Uint8Array) return b;
    const T = kind === "report" ? this.FR : this.MB;
    const base = () => (kind === "report" ? this.validReport() : this.validMetrics());
    if (b.valid) return base();
    if (b.ops) return mutateBytes(base(), b.ops);
    return T.encode(T.fromObject(resolveNow(b.typed, this.clock.realtimeNs()) as object)).finish();
  }

  static async create(): Promise<ControllerFuzzer> {
    const f = new ControllerFuzzer();
    const cfg = parseConfig(BASE_CONFIG, path.join(f.dir, "controller.yaml"), {}, { checkFiles: false });
    const cache = new SnapshotCache();
    f.ads = new AdsServer({ cache, logger: f.log });
    f.router = new XdsTrafficRouter({ cache, server: f.ads, logger: f.log, components: cfg.components.map((c) => c.route), telemetry: { cluster: "shadowmesh-telemetry", address: "127.0.0.1", port: 1 } });
    f.router.start();
    const m = adsMethods();
    f.adsDecode = {
      sotw: m.StreamAggregatedResources!.requestDeserialize as any, delta: m.DeltaAggregatedResources!.requestDeserialize as any,
      sotwRes: m.StreamAggregatedResources!.responseDeserialize as any, deltaRes: m.DeltaAggregatedResources!.responseDeserialize as any,
    };
    const core = buildRiskCore(cfg, f.clock, {});
    const scraper = new PrometheusScraper([], core.engine, f.clock, (() => Promise.reject(new Error("no network"))) as typeof fetch, f.log);
    f.manager = buildManager(cfg, core, { clock: f.clock, router: f.router, store: new MemoryStateStore(), actions: new ConfiguredActions(new Map()), log: f.log, probes: scraper, lag: scraper });
    f.manager.start();
    f.api = controllerHandlers({ manager: f.manager, engine: core.engine, auth: { tokens: [TOKEN, { name: "alice", token: "alice-token-0123456789" }], mtls: false }, log: f.log });
    return f;
  }

  close(): void {
    try { (this.manager as unknown as { stop?: () => void }).stop?.(); } catch { /* best effort */ }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private buildArbitraries(): Record<ControllerKind, fc.Arbitrary<any>> {
    const nowNs = BigInt(this.clock.realtimeNs());
    void nowNs;
    const near = fc.oneof({ arbitrary: fc.bigInt({ min: -60_000_000_000n, max: 20_000_000_000n }).map((d) => `@now${d >= 0n ? "+" : ""}${d}`), weight: 4 }, { arbitrary: i64, weight: 1 });
    const sketch = fc.record({
      relativeAccuracy: fc.oneof(fc.constant(RELATIVE_ACCURACY), extremeNumber), indexMultiplier: fc.oneof(fc.constant(MULTIPLIER), extremeNumber), indexOffset: fc.oneof(fc.integer(), fc.constantFrom(-2147483648, 2147483647, 0, 100)),
      counts: fc.oneof(fc.array(fc.nat(), { maxLength: 20 }), fc.array(fc.constantFrom(0, 4294967295, 1), { maxLength: 5000, size: "max" })),
      zeroCount: u64, sum: extremeNumber, min: extremeNumber, max: extremeNumber, count: u64,
    }, { requiredKeys: [] });
    const target = fc.record({ target: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer()), latency: sketch, status_1xx: u64, status_2xx: u64, status_3xx: u64, status_4xx: u64, status_5xx: u64, resets: u64, timeouts: u64, requests: u64 }, { requiredKeys: [] });
    const component = fc.record({
      component: name, targets: fc.array(target, { maxLength: 5 }),
      consistency: fc.record({ mirrored: u64, match: u64, statusMismatch: u64, bodyMismatch: u64, shadowError: u64, shadowTimeout: u64, skippedCap: u64, abandoned: u64 }, { requiredKeys: [] }),
      reads: u64, writes: u64, shadowWeightBp: fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.nat()),
      floor: fc.record({ ejections: u64, readsDiverted: u64, probes: u64, probeFailures: u64, readmissions: u64, unfitSkips: u64, writesHeld: u64, writesPaused: u64, ejected: fc.boolean() }, { requiredKeys: [] }),
    }, { requiredKeys: [] });
    const typedReport = fc.record({
      nodeId: fc.oneof(fc.constantFrom("n1", "n2", "", "x".repeat(400)), fc.string({ maxLength: 20 })), workerId: u64, sequence: u64,
      windowStartUnixNanos: near, windowEndUnixNanos: near, components: fc.array(component, { maxLength: 4 }), filterErrors: u64, configGeneration: fc.nat(),
      features: fc.oneof(fc.array(fc.constantFrom("pause_writes", "", "Pause-Writes", "x".repeat(65)), { maxLength: 3 }), fc.array(fc.string({ maxLength: 8 }), { maxLength: 40 })),
    }, { requiredKeys: [] }).map((o) => ({ typed: o }));
    const md = fc.array(fc.tuple(fc.constantFrom("authorization", "x-shadowmesh-user", "x-other"), fc.oneof(fc.constantFrom(`Bearer ${TOKEN}`, "Bearer alice-token-0123456789", "Bearer x", "bearer  " + TOKEN, "Basic abc", ""), fc.string({ maxLength: 30 }))), { maxLength: 3 });
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 2048 }));
    const point = fc.record({ component: name, signal: fc.oneof(fc.constantFrom("cpu", "replication_lag_s", "score", REQUEST_SIGNALS.errors, ""), fc.string({ maxLength: 10 })), value: extremeNumber, timestampUnixNanos: fc.oneof(near, fc.constant("0")) }, { requiredKeys: [] });

    const typeUrl = fc.oneof(fc.constantFrom(
      "type.googleapis.com/envoy.config.listener.v3.Listener", "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
      "type.googleapis.com/envoy.config.cluster.v3.Cluster", "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
      "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", "", "type.googleapis.com/x"), fc.string({ maxLength: 30 }));
    const resName = fc.oneof(fc.constantFrom("*", "orders-primary", "orders-shadow", "users-primary", "shadowmesh-telemetry", "shadowmesh", "", "x".repeat(5000)), fc.string({ maxLength: 20 }));
    const names = fc.oneof({ arbitrary: fc.array(resName, { maxLength: 6 }), weight: 20 }, { arbitrary: fc.nat(2).map((k) => new Array<string>(99_999 + k).fill("n")), weight: 1 });
    const node = fc.option(fc.record({ id: fc.oneof(fc.constantFrom("envoy-1", "envoy-2", ""), fc.string({ maxLength: 12 })), cluster: fc.string({ maxLength: 8 }),
      locality: fc.option(fc.record({ zone: fc.constantFrom("a", "b", ""), region: fc.string({ maxLength: 4 }) })),
      metadata: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })) }, { requiredKeys: [] }), { freq: 8 });
    const nonce = fc.oneof(fc.constant("" as const), fc.constant("@last" as const), fc.constant("@prev" as const), fc.string({ maxLength: 6 }));
    const errorDetail = fc.option(fc.record({ code: fc.integer(), message: fc.string({ maxLength: 40 }) }, { requiredKeys: [] }), { freq: 4 });
    const sotwReq = fc.record({ version_info: fc.oneof(fc.constant("@last"), fc.string({ maxLength: 10 })), node, resource_names: names, type_url: typeUrl, response_nonce: nonce, error_detail: errorDetail });
    const deltaReq = fc.record({ node, type_url: typeUrl, resource_names_subscribe: names, resource_names_unsubscribe: fc.array(resName, { maxLength: 4 }),
      initial_resource_versions: fc.dictionary(resName, fc.string({ maxLength: 6 }), { maxKeys: 4 }), response_nonce: nonce, error_detail: errorDetail });
    const xds = fc.record({
      delta: fc.boolean(),
      // A stream's messages: typed requests (what grpc-js hands the server after decoding) or raw bytes through the decoder.
      messages: fc.array(fc.oneof({ arbitrary: fc.record({ raw: fc.constant(false), req: fc.oneof(sotwReq, deltaReq) }), weight: 8 }, { arbitrary: fc.record({ raw: fc.constant(true), bytes: fc.uint8Array({ maxLength: 200 }) }), weight: 1 }), { minLength: 1, maxLength: 8 }),
      end: fc.constantFrom("end", "cancelled", "close", "error"),
    });

    const apiMethod = fc.constantFrom("ListComponents", "GetComponent", "Pause", "Resume", "Approve", "Promote", "Rollback", "SetPolicy");
    const apiReq = fc.record({
      method: apiMethod,
      md: fc.oneof({ arbitrary: fc.constant([["authorization", `Bearer ${TOKEN}`]] as [string, string][]), weight: 4 }, { arbitrary: md, weight: 1 }),
      request: fc.record({
        component: fc.oneof(name, fc.constant(undefined), fc.integer(), fc.constant(null)), name: fc.oneof(name, fc.constant(undefined), fc.integer()),
        reason: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(undefined), fc.constant("x".repeat(100_000))),
        policyYaml: fc.oneof(fc.constant(undefined), fc.integer(), yamlDoc(EXAMPLE_POLICY.replace(/^\s*orders:/m, "  orders:"))),
      }, { requiredKeys: [] }),
    });

    const statusObj = fc.record({ component: name, phase: fc.oneof(fc.constantFrom("Healthy", "AtRisk", "Preflight", "Shifting", "Failover", "Migrated", "Restoring", "RollingBack", "Paused"), fc.string({ maxLength: 8 })),
      stepIndex: extremeNumber, shadowWeightBp: extremeNumber, mirrorFraction: extremeNumber, writeTarget: fc.constantFrom("primary", "shadow", "x"), epoch: extremeNumber, direction: fc.constantFrom("forward", "back", "x") }, { requiredKeys: [] });
    const journalLine = fc.oneof(
      fc.record({ t: fc.constant("status"), status: statusObj }).map((o) => JSON.stringify(o)),
      fc.record({ t: fc.constant("event"), event: fc.dictionary(fc.constantFrom("atMs", "component", "kind", "phase", "message", "severity", "x"), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 6 }) }).map((o) => JSON.stringify(o)),
      fc.record({ t: fc.constant("policy"), component: name, yaml: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(EXAMPLE_POLICY)) }).map((o) => JSON.stringify(o)),
      fc.json({ maxDepth: 3 }),
      fc.string({ maxLength: 60 }),
      fc.constantFrom("", "{", "null", "[]", '{"t":"status"}', '{"t":"x"}', '{"__proto__":{"t":"status"}}', '{"t":"status","status":{"constructor":{"prototype":{}}}}'),
    );
    const journal = fc.record({ lines: fc.array(journalLine, { maxLength: 8 }), trailingNewline: fc.boolean(), snapshot: fc.option(fc.oneof(fc.json({ maxDepth: 3 }), fc.constant('{"statuses":[],"events":[]}'), fc.string({ maxLength: 40 })), { freq: 4 }) });

    return {
      report: fc.record({ md: fc.oneof(fc.constant([] as [string, string][]), md), bytes: fc.oneof({ arbitrary: bytes, weight: 2 }, { arbitrary: byteOps.map((ops) => ({ ops })), weight: 3 }, { arbitrary: typedReport, weight: 4 }, { arbitrary: fc.constant({ valid: true }), weight: 1 }) }),
      metrics: fc.record({ md: fc.constant([] as [string, string][]), bytes: fc.oneof(bytes, byteOps.map((ops) => ({ ops })), fc.constant({ valid: true }), fc.array(point, { maxLength: 6 }).map((points) => ({ typed: { points } }))) }),
      xds,
      api: apiReq,
      config: yamlDoc(EXAMPLE_CONFIG),
      policy: yamlDoc(EXAMPLE_POLICY),
      journal,
    };
  }

  /** Runs one input of `kind`; returns the property it broke, or null. */
  run(kind: ControllerKind, x: any): ControllerFailure | null {
    const t0 = performance.now();
    let bad: string | null;
    try {
      bad = this.apply(kind, x);
    } catch (e) {
      bad = `uncaught ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.stack ?? String(e)}`;
    }
    const ms = performance.now() - t0;
    if (bad) return { kind: "crash", target: kind, message: bad, input: x };
    if (ms > HANG_MS) return { kind: "hang", target: kind, message: `took ${ms.toFixed(0)} ms (limit ${HANG_MS})`, input: x };
    return null;
  }

  private apply(kind: ControllerKind, x: any): string | null {
    switch (kind) {
      case "report": case "metrics": {
        const [r, cb] = recorder();
        (kind === "report" ? this.report : this.push)(fakeUnary(Buffer.from(this.bytesOf(kind, x.bytes)), x.md), cb);
        if (r.calls !== 1) return `${kind}: the handler answered ${r.calls} times`;
        if (r.err && (typeof r.err.code !== "number" || r.err.code === grpc.status.INTERNAL || r.err.code === grpc.status.UNKNOWN)) return `${kind}: answered ${r.err.code}: ${r.err.details}`;
        if (!r.err) this.accepted[kind]++;
        // Keep the store's clock moving so buckets seal and windows age.
        this.clock.advance(7);
        return null;
      }
      case "xds": return this.xds(x);
      case "api": {
        const [r, cb] = recorder();
        const fn = this.api[x.method] as (call: any, cb: any) => void;
        fn(fakeUnary(x.request, x.md), cb);
        if (r.calls !== 1) return `api ${x.method}: answered ${r.calls} times`;
        if (r.err && (typeof r.err.code !== "number" || r.err.code === grpc.status.INTERNAL || r.err.code === grpc.status.UNKNOWN)) return `api ${x.method}: answered ${r.err.code}: ${r.err.details}`;
        if (!r.err) this.accepted.api++;
        return null;
      }
      case "config": {
        try { parseConfig(x, "fuzz.yaml", CONFIG_ENV, { checkFiles: false }); this.accepted.config++; } catch (e) { return documented(e, "fuzz.yaml", [ConfigError]); }
        return null;
      }
      case "policy": {
        try { parsePolicy(x, "fuzz-policy.yaml"); this.accepted.policy++; } catch (e) { return documented(e, "fuzz-policy.yaml", [PolicyError]); }
        return null;
      }
      case "journal": {
        const journalFile = path.join(this.dir, "journal.jsonl"), snap = path.join(this.dir, "state.json");
        writeFileSync(journalFile, x.lines.join("\n") + (x.trailingNewline ? "\n" : ""));
        if (x.snapshot !== null) writeFileSync(snap, x.snapshot); else if (existsSync(snap)) unlinkSync(snap);
        try { const s = new FileStateStore(this.dir); s.load(); s.close(); this.accepted.journal++; }
        catch (e) { if (!(e instanceof StateStoreError)) return `journal: ${(e as Error)?.constructor?.name}: ${(e as Error)?.stack ?? e}`; }
        for (const f of [journalFile, snap]) if (existsSync(f)) unlinkSync(f);
        return null;
      }
    }
  }

  private xds(x: any): string | null {
    const call = this.xdsExchange(x);
    const internal = call.statuses.find((s) => s.code === grpc.status.INTERNAL || s.code === grpc.status.UNKNOWN);
    if (internal) return `xds: stream closed with ${internal.code}: ${internal.details}`;
    return null;
  }

  /** One ADS stream: opens it on a fake call, sends the messages ("@last"/"@prev" nonces are the ones the server sent), ends it. */
  xdsExchange(x: { delta: boolean; messages: any[]; end: "end" | "cancelled" | "close" | "error" }): FakeAdsCall {
    const call = new FakeAdsCall();
    (this.ads as unknown as { open(c: unknown, delta: boolean): void }).open(call, x.delta);
    let lastNonce = "", prevNonce = "", lastVersion = "";
    const decode = (b: Buffer) => {
      // The response's nonce (field 5 of DiscoveryResponse, 5 of DeltaDiscoveryResponse) and version (1 / 1).
      try {
        const o = x.delta ? this.adsDecode.deltaRes(b) : this.adsDecode.sotwRes(b);
        return { nonce: String(o.nonce ?? ""), version: String(o.version_info ?? o.system_version_info ?? "") };
      } catch { return { nonce: "", version: "" }; }
    };
    for (const m of x.messages) {
      if (call.statuses.length) break;
      let req: any;
      if (m.raw) {
        try { req = (x.delta ? this.adsDecode.delta : this.adsDecode.sotw)(Buffer.from(m.bytes)); } catch { continue; } // grpc-js answers a bad message itself
      } else {
        req = { ...m.req };
        if (req.node?.id) this.xdsNodes++;
        const fix = (k: string) => { if (req[k] === "@last") req[k] = lastNonce; else if (req[k] === "@prev") req[k] = prevNonce; };
        fix("response_nonce");
        if (req.version_info === "@last") req.version_info = lastVersion;
        // grpc-js's decoder (defaults: true) gives every field; a typed request has them all.
        if (x.delta) req = { type_url: "", resource_names_subscribe: [], resource_names_unsubscribe: [], initial_resource_versions: {}, response_nonce: "", ...req, version_info: undefined, resource_names: undefined };
        else req = { version_info: "", resource_names: [], type_url: "", response_nonce: "", ...req, resource_names_subscribe: undefined, resource_names_unsubscribe: undefined, initial_resource_versions: undefined };
        if (req.node === null) delete req.node;
      }
      call.emit("data", req);
      const last = call.written[call.written.length - 1];
      if (last) { const d = decode(last); if (d.nonce) { prevNonce = lastNonce; lastNonce = d.nonce; lastVersion = d.version; } }
    }
    if (call.written.length && !call.statuses.length) this.accepted.xds++;
    if (x.end === "error") call.emit("error", Object.assign(new Error("cancelled by the client"), { code: grpc.status.CANCELLED, details: "cancelled by the client" }));
    else call.emit(x.end);
    if (x.end !== "close") call.emit("close");
    return call;
  }

  /** The ADS server's ACK/NACK history for a node. */
  xdsAcks(node: string): unknown[] { return this.ads.acks(node); }

  /** Number of streams the ADS server still tracks (must return to 0: no stream leaks). */
  openStreams(): number { return (this.ads as unknown as { streams: Set<unknown> }).streams.size; }
  ackLogNodes(): number { return this.ads.ackLogNodes(); }
}

/** null when `e` is a documented configuration error naming FILE:LINE:COL; else why not. */
function documented(e: unknown, file: string, classes: (new (...a: any[]) => Error)[]): string | null {
  if (!(e instanceof YamlFieldError) || !classes.some((C) => e instanceof C)) return `${(e as Error)?.constructor?.name ?? typeof e} (not ${classes.map((c) => c.name).join("/")}): ${(e as Error)?.stack ?? e}`;
  if (!new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `).test(e.message)) return `${e.constructor.name} without FILE:LINE:COL: ${e.message}`;
  return null;
}

export { telemetryMethods };
