// What an authenticated caller still cannot do: report for components that are not configured (the
// entries are dropped and counted, taking no store capacity), send NaN/Inf/negative numbers, backfill
// windows older than its last one or long past, report windows in the future, or push metrics out
// of their kind's range. Each refusal is INVALID_ARGUMENT naming the field and changes nothing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { ManualClock } from "../../host/clock.js";
import { rig, config, component, get, roundTrip } from "../support/filter.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { addTelemetryService, telemetryClient } from "../../controller/telemetry/service.js";
import { REQUEST_SIGNALS } from "../../controller/telemetry/feed.js";
import { telemetryRoot } from "../../controller/telemetry/report.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { silentLogger } from "../../controller/log.js";

async function serve(clock: ManualClock, store = new TelemetryStore({ clock })) {
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [
    { name: REQUEST_SIGNALS.errors, kind: "error_rate" }, { name: "replication_lag_s", kind: "replication_lag" },
    { name: "cpu", kind: "cpu" }, { name: "score", kind: "app" },
  ] });
  const server = new grpc.Server();
  addTelemetryService(server, { store, engine, clock, log: silentLogger() });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = telemetryClient(`127.0.0.1:${port}`);
  const call = (method: string, bytes: Uint8Array) => new Promise<{ err: grpc.ServiceError | null; res: any }>((res) => client[method]!(bytes, (err, r) => res({ err, res: r })));
  return { store, engine, call, close: () => { client.close(); server.forceShutdown(); } };
}

async function filterReport(n = 5): Promise<{ bytes: Uint8Array; clock: ManualClock }> {
  const r = await rig(config([component()]));
  for (let i = 0; i < n; i++) roundTrip(r, get(`/item/${i}`), { latencyMs: 5 });
  r.clock.advance(1000);
  const c = r.callouts.takeGrpc().find((x) => x.req.method === "Report")!;
  return { bytes: c.req.message!, clock: r.clock };
}

const FR = () => telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
function edit(bytes: Uint8Array, fn: (o: any) => void): Uint8Array {
  const T = FR();
  const o = T.toObject(T.decode(bytes), { longs: String });
  fn(o);
  return T.encode(T.fromObject(o)).finish();
}
let seq = 100;
const next = (o: any) => { o.sequence = String(++seq); };

test("NaN, Infinity and negative numbers anywhere in a report are INVALID_ARGUMENT naming the field", async () => {
  const { bytes, clock } = await filterReport();
  const s = await serve(clock);
  const lat = (o: any) => o.components[0].targets[0].latency;
  const cases: [(o: any) => void, RegExp][] = [
    [(o) => { lat(o).sum = NaN; }, /components\[0\]\.targets\[0\]\.latency\.sum: NaN is not a finite number/],
    [(o) => { lat(o).max = Infinity; }, /latency\.max: Infinity is not a finite number/],
    [(o) => { lat(o).min = -Infinity; }, /latency\.min: -Infinity is not a finite number/],
    [(o) => { lat(o).min = -3; }, /latency\.min: -3 is negative/],
    [(o) => { lat(o).sum = -1; }, /latency\.sum: -1 is negative/],
    [(o) => { lat(o).relativeAccuracy = NaN; }, /latency\.relative_accuracy: NaN is not a finite number/],
    [(o) => { lat(o).indexMultiplier = NaN; }, /latency\.index_multiplier: NaN is not a finite number/],
    [(o) => { lat(o).min = 9e9; }, /latency\.min: 9000000000 is greater than max/],
    // uint64 counters cannot be negative on the wire: a "-1" arrives as 2^64-1 and is not a count.
    [(o) => { o.components[0].targets[0].status_5xx = "-1"; }, /targets\[PRIMARY\]\.status_5xx: .* is not a count/],
    [(o) => { o.components[0].reads = "-1"; }, /components\[orders\]\.reads: .* is not a count/],
    [(o) => { o.components[0].shadowWeightBp = 20000; }, /shadow_weight_bp: 20000 is over 10000/],
  ];
  for (const [fn, re] of cases) {
    const { err } = await s.call("Report", edit(bytes, (o) => { next(o); fn(o); }));
    assert.is(err?.code, grpc.status.INVALID_ARGUMENT, String(re));
    assert.match(err!.details, re);
  }
  assert.equal(s.store.componentNames(), [], "nothing refused was stored");
  assert.is((await s.call("Report", bytes)).err, null, "the untouched report is fine");
  s.close();
});

test("entries for components that are not configured are dropped and counted, and take no capacity", async () => {
  const { bytes, clock } = await filterReport();
  const store = new TelemetryStore({ clock, maxComponents: 1 });
  const t = await serve(clock, store);
  // One report carrying 1,000 made-up components next to the real one.
  const flood = edit(bytes, (o) => {
    const real = o.components[0];
    for (let i = 0; i < 1000; i++) o.components.push({ ...real, component: `made-up-${i}` });
  });
  const { err } = await t.call("Report", flood);
  assert.is(err, null, "the configured component's data is taken");
  assert.equal(store.componentNames(), ["orders"]);
  assert.is(store.stats.unknownDropped, 1000);
  assert.is(store.unknownComponents().size, 100, "at most 100 names remembered");
  assert.is(store.unknownComponents().get("made-up-0"), 1);
  // Only made-up components: accepted (the proxy is alive), nothing stored, the limit never reached.
  const only = edit(bytes, (o) => { next(o); o.components[0].component = "ghost"; });
  assert.is((await t.call("Report", only)).err, null);
  assert.equal(store.componentNames(), ["orders"]);
  assert.is(store.stats.unknownDropped, 1001);
  t.close();
});

test("no backfill: a window before the proxy's last accepted one, long past, or in the future is refused", async () => {
  const { bytes, clock } = await filterReport();
  const s = await serve(clock);
  assert.is((await s.call("Report", bytes)).err, null);
  const end = (o: any) => BigInt(o.windowEndUnixNanos);
  const cases: [(o: any) => void, RegExp][] = [
    // Same proxy (node + worker), newer sequence, window ending 2 s before the accepted one.
    [(o) => { o.windowStartUnixNanos = String(end(o) - 3_000_000_000n); o.windowEndUnixNanos = String(end(o) - 2_000_000_000n); }, /window_end_unix_nanos: \d+ is before the end of the last window accepted from sidecar-1\/\d+ .*backfill is refused/],
    // A fresh worker id claiming a healthy window two minutes ago.
    [(o) => { o.workerId = "424242"; o.windowStartUnixNanos = String(end(o) - 121_000_000_000n); o.windowEndUnixNanos = String(end(o) - 120_000_000_000n); }, /window_end_unix_nanos is 120 s in the past \(the limit is 30 s\): backfill is refused/],
    [(o) => { o.workerId = "424243"; o.windowEndUnixNanos = String(end(o) + 60_000_000_000n); }, /window_end_unix_nanos is 60 s in the future \(the limit for clock skew is 10 s\)/],
  ];
  for (const [fn, re] of cases) {
    const { err } = await s.call("Report", edit(bytes, (o) => { next(o); fn(o); }));
    assert.is(err?.code, grpc.status.INVALID_ARGUMENT, String(re));
    assert.match(err!.details, re);
  }
  assert.is(s.store.stats.backfill, 3);
  assert.is(s.store.stats.reports, 1);
  // A resend of the accepted report is still answered OK (a lost answer), and not counted again.
  assert.is((await s.call("Report", bytes)).err, null);
  assert.is(s.store.stats.duplicates, 1);
  s.close();
});

test("the per-proxy map of last windows is bounded, evicting the proxy heard from longest ago", async () => {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock, maxProxies: 3 });
  const now = BigInt(Number(clock.realtimeNs() / 1_000_000n)) * 1_000_000n;
  const rep = (worker: number, sequence: number) => ({
    nodeId: "n", workerId: BigInt(worker), sequence, windowStartUnixNanos: now - 1_000_000_000n, windowEndUnixNanos: now,
    filterErrors: 0, configGeneration: 1, components: new Map(),
  });
  for (let w = 1; w <= 5; w++) store.ingest(rep(w, 1));
  assert.is(store.stats.proxies, 3);
  assert.is(store.ingest(rep(5, 1)), "duplicate", "a remembered proxy's resend is a duplicate");
  assert.is(store.ingest(rep(1, 1)), "merged", "proxy 1 was evicted: its sequence is no longer known");
});

test("PushMetrics: a negative lag, a share above 1, NaN, Infinity, or a point long past are refused with the metric named", async () => {
  const clock = new ManualClock();
  const s = await serve(clock);
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.MetricsBatch");
  const batch = (points: object[]) => T.encode(T.fromObject({ points })).finish();
  const nowNs = clock.realtimeNs();
  for (const [points, re] of [
    [[{ component: "orders", signal: "replication_lag_s", value: 0 }, { component: "orders", signal: "replication_lag_s", value: -5 }], /points\[1\]: orders\/replication_lag_s: value -5 is out of range for a replication_lag signal \[0, Infinity\]/],
    [[{ component: "orders", signal: REQUEST_SIGNALS.errors, value: 1.5 }], /points\[0\]: orders\/request_error_rate: value 1.5 is out of range for a error_rate signal \[0, 1\]/],
    [[{ component: "orders", signal: REQUEST_SIGNALS.errors, value: -0.1 }], /value -0.1 is out of range/],
    [[{ component: "orders", signal: "cpu", value: Number.NaN }], /points\[0\]: orders\/cpu: value NaN is not a finite number/],
    [[{ component: "orders", signal: "replication_lag_s", value: Infinity }], /orders\/replication_lag_s: value Infinity is not a finite number/],
    [[{ component: "orders", signal: "cpu", value: 0.2, timestampUnixNanos: String(nowNs - 120_000_000_000n) }], /points\[0\]: orders\/cpu: timestamp is 120 s in the past \(the limit is 60 s\): backfill is refused/],
    [[{ component: "orders", signal: "cpu", value: 0.2, timestampUnixNanos: String(nowNs + 60_000_000_000n) }], /points\[0\]: orders\/cpu: timestamp is 60 s in the future/],
  ] as const) {
    const { err } = await s.call("PushMetrics", batch(points as unknown as object[]));
    assert.is(err?.code, grpc.status.INVALID_ARGUMENT, String(re));
    assert.match(err!.details, re);
  }
  const ok = await s.call("PushMetrics", batch([{ component: "orders", signal: "replication_lag_s", value: 0 }, { component: "orders", signal: "score", value: -3 }, { component: "orders", signal: REQUEST_SIGNALS.errors, value: 1 }]));
  assert.is(ok.err, null, "a lag of 0, a negative app signal and a share of exactly 1 are in range");
  s.close();
});

test.run();
