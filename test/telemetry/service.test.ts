// The Telemetry gRPC service: the real filter's report bytes go in over gRPC and come out merged per
// component, target and second; malformed and inconsistent reports are INVALID_ARGUMENT with the
// field named and leave the store exactly as it was; sealed buckets feed the risk engine.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { ManualClock } from "../../host/clock.js";
import { rig, config, component, get, roundTrip } from "../support/filter.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { addTelemetryService, telemetryClient, MAX_REPLICA_SUBSCRIBERS } from "../../controller/telemetry/service.js";
import { feedRisk, REQUEST_SIGNALS } from "../../controller/telemetry/feed.js";
import { telemetryRoot, decodeReport } from "../../controller/telemetry/report.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { silentLogger } from "../../controller/log.js";

async function serve(clock: ManualClock, store = new TelemetryStore({ clock })) {
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [
    { name: REQUEST_SIGNALS.latency, kind: "latency" }, { name: REQUEST_SIGNALS.errors, kind: "error_rate" }, { name: "cpu", kind: "cpu" },
  ] });
  const server = new grpc.Server();
  addTelemetryService(server, { store, engine, clock, log: silentLogger() });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = telemetryClient(`127.0.0.1:${port}`);
  const call = (method: string, bytes: Uint8Array) => new Promise<{ err: grpc.ServiceError | null; res: any }>((res) => client[method]!(bytes, (err, r) => res({ err, res: r })));
  const callObj = (method: string, req: object) => new Promise<{ err: grpc.ServiceError | null; res: any }>((res) => (client[method] as unknown as (q: object, cb: (e: grpc.ServiceError | null, r: any) => void) => void)(req, (err, r) => res({ err, res: r })));
  return { store, engine, call, callObj, close: () => { client.close(); server.forceShutdown(); } };
}

/** Report bytes as the filter sends them, after `n` reads answered with `status`. */
async function filterReport(n: number, status = 200, latencyMs = 5): Promise<{ bytes: Uint8Array; clock: ManualClock }> {
  const r = await rig(config([component()], { telemetry: { cluster: "controller", interval_ms: 1000 } }));
  for (let i = 0; i < n; i++) roundTrip(r, get(`/item/${i}`), { status, latencyMs });
  r.clock.advance(1000);
  const call = r.callouts.takeGrpc().find((c) => c.req.method === "Report");
  assert.ok(call, "the filter sent a report");
  return { bytes: call!.req.message!, clock: r.clock };
}

const FilterReport = () => telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
function reencode(bytes: Uint8Array, edit: (o: any) => void): Uint8Array {
  const T = FilterReport();
  const o = T.toObject(T.decode(bytes), { longs: String });
  edit(o);
  return T.encode(T.fromObject(o)).finish();
}

test("a filter report over gRPC is merged per component, target and second", async () => {
  const { bytes, clock } = await filterReport(20, 200, 7);
  const s = await serve(clock);
  const { err, res } = await s.call("Report", bytes);
  assert.is(err, null);
  assert.ok(Number(res.sequence) >= 1);
  const now = Number(clock.realtimeNs() / 1_000_000n);
  const w = s.store.window("orders", now - 10_000, now + 1000)!;
  const p = w.targets.get("PRIMARY")!;
  assert.is(p.requests, 20);
  assert.is(p.status[1], 20);
  assert.ok(Math.abs(p.latency.quantile(0.5) / 1000 - 7) < 0.15, `p50 ${p.latency.quantile(0.5)} us`);
  // The same report again (a resend after a lost answer) is not counted twice.
  assert.is((await s.call("Report", bytes)).err, null);
  assert.is(s.store.window("orders", now - 10_000, now + 1000)!.targets.get("PRIMARY")!.requests, 20);
  assert.is(s.store.stats.duplicates, 1);
  s.close();
});

test("ForwardReports (a follower replica's batch): each report merged like its proxy's own, duplicates and malformed ones refused and counted", async () => {
  const { bytes, clock } = await filterReport(20, 200, 7);
  const s = await serve(clock);
  const other = reencode(bytes, (o) => { o.nodeId = "sidecar-2"; });
  const forward = (reports: Uint8Array[]) => s.callObj("ForwardReports", { reports });
  const r = await forward([bytes, bytes, other, Uint8Array.from([0x0a, 0xff, 0xff])]);
  assert.is(r.err, null);
  assert.equal([r.res.merged, r.res.refused], [2, 2], "two proxies merged; the duplicate and the malformed one refused");
  const now = Number(clock.realtimeNs() / 1_000_000n);
  assert.is(s.store.window("orders", now - 10_000, now + 1000)!.targets.get("PRIMARY")!.requests, 40);
  assert.is(s.store.stats.duplicates, 1);
  const big = await forward(Array.from({ length: 5001 }, () => bytes));
  assert.is(big.err?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(big.err!.details, /5001 reports, at most 5000/);
  // The follower's subscriber list, with no reports: kept for the leader's feature check.
  const subs = await s.callObj("ForwardReports", { reports: [], subscribers: { replica: "replica-b", nodes: ["on-b-1", "on-b-2"] } });
  assert.is(subs.err, null);
  assert.equal(s.store.replicaSubscribers(60_000), ["on-b-1", "on-b-2"]);
  for (const [bad, why] of [[{ replica: "", nodes: ["x"] }, /subscribers\.replica: empty/], [{ replica: "r", nodes: ["a", ""] }, /subscribers\.nodes\[1\]: empty node id/],
    [{ replica: "r", nodes: Array.from({ length: MAX_REPLICA_SUBSCRIBERS + 1 }, (_, i) => `n${i}`) }, new RegExp(`subscribers\\.nodes: ${MAX_REPLICA_SUBSCRIBERS + 1} nodes, at most ${MAX_REPLICA_SUBSCRIBERS}`)]] as const) {
    const r = await s.callObj("ForwardReports", { reports: [bytes], subscribers: bad });
    assert.is(r.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(r.err!.details, why);
  }
  assert.equal(s.store.replicaSubscribers(60_000), ["on-b-1", "on-b-2"], "a refused batch changes nothing");
  s.close();
});

test("malformed and inconsistent reports are INVALID_ARGUMENT, name the field, and change nothing", async () => {
  const { bytes, clock } = await filterReport(5);
  const s = await serve(clock);
  assert.is((await s.call("Report", bytes)).err, null);
  const now = Number(clock.realtimeNs() / 1_000_000n);
  const before = JSON.stringify([...s.store.window("orders", 0, now + 10_000)!.targets.get("PRIMARY")!.status]);
  const bump = (o: any) => { o.sequence = String(Number(o.sequence) + 1); };
  const cases: [Uint8Array, RegExp][] = [
    [Uint8Array.from([0x0a, 0xff, 0xff]), /FilterReport: /],
    [reencode(bytes, (o) => { bump(o); o.components[0].targets[0].status_2xx = "999"; }), /targets\[PRIMARY\]: 999 status counts for 5 requests/],
    [reencode(bytes, (o) => { bump(o); o.components[0].component = ""; }), /component: must not be empty/],
    [reencode(bytes, (o) => { bump(o); o.components[0].targets[0].latency.indexMultiplier = 3; }), /latency\.index_multiplier: expected/],
    [reencode(bytes, (o) => { bump(o); o.windowEndUnixNanos = String(BigInt(o.windowStartUnixNanos) - 1n); }), /window_end_unix_nanos .* is before window_start_unix_nanos/],
    [reencode(bytes, (o) => { bump(o); o.windowEndUnixNanos = String(BigInt(o.windowEndUnixNanos) + 3_600_000_000_000n); }), /s in the future/],
    [reencode(bytes, (o) => { bump(o); o.nodeId = ""; }), /node_id: must not be empty/],
  ];
  for (const [b, re] of cases) {
    const { err } = await s.call("Report", b);
    assert.ok(err, `refused: ${re}`);
    assert.is(err!.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err!.details, re);
  }
  assert.is(JSON.stringify([...s.store.window("orders", 0, now + 10_000)!.targets.get("PRIMARY")!.status]), before, "no refused report changed the store");
  assert.is(s.store.stats.rejected, 4, "the four that decode reached the store and were refused there; the others failed decoding");
  s.close();
});

test("a store at its component limit refuses a report that would add one, with RESOURCE_EXHAUSTED", async () => {
  const { bytes, clock } = await filterReport(3);
  const s = await serve(clock, new TelemetryStore({ clock, maxComponents: 0 }));
  const { err } = await s.call("Report", bytes);
  assert.is(err!.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(err!.details, /over the limit of 0 \(telemetry.maxComponents\)/);
  s.close();
});

test("sealed buckets feed p99 latency and error rate to the risk engine; retention drops old buckets", async () => {
  const r = await rig(config([component()], { telemetry: { cluster: "controller", interval_ms: 1000 } }));
  const clock = r.clock;
  const store = new TelemetryStore({ clock, retentionMs: 10_000, graceMs: 1000 });
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [{ name: REQUEST_SIGNALS.latency, kind: "latency" }, { name: REQUEST_SIGNALS.errors, kind: "error_rate" }] });
  let sealed = 0;
  store.onSealed((sum) => { sealed++; feedRisk(engine, sum); });
  for (let sec = 0; sec < 30; sec++) {
    for (let i = 0; i < 10; i++) roundTrip(r, get(`/item/${i}`), { status: i === 0 ? 503 : 200, latencyMs: 4 });
    clock.advance(960);
    for (const c of r.callouts.takeGrpc()) {
      if (c.req.method !== "Report") continue;
      store.ingest(decodeReport(c.req.message!));
      c.reply({ status: 0, message: new Uint8Array(0) });
    }
  }
  store.advance();
  engine.tick();
  const risk = engine.get("orders")!;
  const errors = risk.contributions.find((c) => c.signal === REQUEST_SIGNALS.errors)!;
  assert.is(errors.state, "ok");
  assert.ok(Math.abs(errors.value! - 0.1) < 1e-9, `error rate ${errors.value}`);
  const lat = risk.contributions.find((c) => c.signal === REQUEST_SIGNALS.latency)!;
  assert.ok(lat.value! >= 4 && lat.value! < 5, `p99 ${lat.value} ms`);
  assert.ok(sealed >= 25, `${sealed} buckets sealed`);
  assert.ok(store.stats.buckets <= 11, `retention keeps <= 11 one-second buckets, has ${store.stats.buckets}`);
  assert.ok(store.stats.bytes < 11 * 2 * 4096, `sealed buckets are compact: ${store.stats.bytes} bytes`);
});

test("PushMetrics takes a good batch and refuses a batch with any bad point whole", async () => {
  const clock = new ManualClock();
  const s = await serve(clock);
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.MetricsBatch");
  const batch = (points: object[]) => T.encode(T.fromObject({ points })).finish();
  const ok = await s.call("PushMetrics", batch([{ component: "orders", signal: "cpu", value: 0.4 }, { component: "orders", signal: "cpu", value: 0.5 }]));
  assert.is(ok.err, null);
  assert.is(ok.res.accepted, 2);
  for (const [points, re] of [
    [[{ component: "orders", signal: "cpu", value: 0.5 }, { component: "orders", signal: "disk", value: 1 }], /points\[1\]: component orders: unknown signal "disk" \(configured: request_latency_p99_ms, request_error_rate, cpu\)/],
    [[{ component: "billing", signal: "cpu", value: 1 }], /points\[0\]: unknown component "billing"/],
    [[{ component: "orders", signal: "cpu", value: Number.NaN }], /points\[0\]: orders\/cpu: value NaN is not a finite number/],
    [[{ component: "orders", signal: "cpu", value: 1, timestampUnixNanos: "1000" }], /points\[0\]: orders\/cpu: timestamp 0 is before the previous point/],
  ] as const) {
    const { err } = await s.call("PushMetrics", batch(points as unknown as object[]));
    assert.is(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err!.details, re);
  }
  s.engine.tick();
  assert.is(s.engine.get("orders")!.contributions.find((c) => c.signal === "cpu")!.value, 0.5, "nothing from a refused batch was applied");
  s.close();
});

test.run();
