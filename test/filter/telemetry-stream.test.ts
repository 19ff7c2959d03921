// telemetry.stream: the real filter sends its reports on one gRPC stream per worker (StreamReports)
// and settles each by the ack that comes back on it; nothing is lost when the stream ends, a stream
// refused as UNIMPLEMENTED turns the worker to unary Report calls, a new configuration or an ack that
// never comes gives up the stream, and the controller's StreamReports merges exactly what Report would.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { component, config, get, rig, roundTrip, type Rig } from "../support/filter.js";
import { decodeReport, type DecodedReport } from "../../controller/telemetry/report.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { addTelemetryService, telemetryClient } from "../../controller/telemetry/service.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { FailurePredictor } from "../../controller/risk/predictor.js";
import { DEFAULT_SIGNALS } from "../../controller/config.js";
import { ManualClock } from "../../host/clock.js";
import { silentLogger } from "../../controller/log.js";
import { until } from "../support/until.js";

const TOKEN = "proxy-token-2f6c1e0a9b7d4c3e";
const streaming = (extra: Record<string, unknown> = {}) => config([component()], { telemetry: { cluster: "controller", interval_ms: 1000, stream: true, ...extra } });
const ACK = new Uint8Array([8, 1]); // ReportAck{sequence: 1}: the filter takes any message as the ack of its report in flight

type Stream = Rig["callouts"]["streams"][number];
const live = (r: Rig): Stream[] => r.callouts.streams.filter((s) => !s.cancelled);
/** The reports sent on a stream since `from`, decoded. */
const reportsOn = (s: Stream, from = 0): DecodedReport[] => s.sent.slice(from).map((m) => decodeReport(m));
const reads = (reps: DecodedReport[]) => reps.reduce((a, x) => a + (x.components.get("orders")?.reads ?? 0), 0);

test("one stream per worker carries every report; each ack settles one; no unary calls", async () => {
  const r = await rig(streaming({ token: TOKEN }), { workers: 2 });
  for (let t = 0; t < 3; t++) {
    roundTrip(r, get(), { worker: 0 });
    roundTrip(r, get(), { worker: 1 });
    r.clock.advance(1000);
    for (const s of r.callouts.streams) s.events.message(ACK);
  }
  assert.is(r.callouts.streams.length, 2, "one stream per worker, kept open");
  for (const s of r.callouts.streams) {
    assert.is(s.req.service, "shadowmesh.telemetry.v1.Telemetry");
    assert.is(s.req.method, "StreamReports");
    assert.is(s.req.initialMetadata.get("authorization"), `Bearer ${TOKEN}`);
    const reps = reportsOn(s);
    assert.equal(reps.map((x) => x.sequence), [1, 2, 3], "sequences count up by one on the stream");
    assert.is(reads(reps), 3, "each report holds only its own interval (acked deltas are not resent)");
  }
  assert.is(r.callouts.takeGrpc().length, 0, "no unary Report");
  assert.is(r.host.metricValue("shadowmesh.telemetry.sent"), 6);
  assert.is(r.host.metricValue("shadowmesh.telemetry.streams_opened"), 2);
});

test("a stream that ends with a report in flight: the report's counts go in the next one, on a new stream", async () => {
  const r = await rig(streaming());
  for (let i = 0; i < 7; i++) roundTrip(r, get());
  r.clock.advance(1000);
  const first = r.callouts.streams[0]!;
  assert.is(reads(reportsOn(first)), 7);
  first.events.close(14, "controller restarting"); // no ack: the report is not known to be merged
  for (let i = 0; i < 4; i++) roundTrip(r, get());
  r.clock.advance(1000);
  assert.is(r.callouts.streams.length, 2, "a new stream on the next tick");
  const second = r.callouts.streams[1]!;
  assert.is(reads(reportsOn(second)), 11, "the unacknowledged 7 and the new 4, once");
  second.events.message(ACK);
  roundTrip(r, get());
  r.clock.advance(1000);
  assert.is(reads(reportsOn(second, 1)), 1, "after the ack only the new interval");
  assert.is(r.host.metricValue("shadowmesh.telemetry.failed"), 1);
});

test("UNIMPLEMENTED (a controller without StreamReports): this worker calls Report from then on, and loses nothing", async () => {
  const r = await rig(streaming());
  for (let i = 0; i < 5; i++) roundTrip(r, get());
  r.clock.advance(1000);
  r.callouts.streams[0]!.events.close(12, "unknown method StreamReports");
  roundTrip(r, get());
  r.clock.advance(1000);
  const calls = r.callouts.takeGrpc().filter((c) => c.req.method === "Report");
  assert.is(calls.length, 1, "a unary Report");
  assert.is(reads([decodeReport(calls[0]!.req.message!)]), 6);
  calls[0]!.reply({ status: 0, message: new Uint8Array(0) });
  r.clock.advance(1000);
  assert.is(r.callouts.streams.length, 1, "no stream is tried again");
  assert.is(r.callouts.takeGrpc().filter((c) => c.req.method === "Report").length, 1);
});

test("a host without gRPC streams: unary Report calls", async () => {
  const r = await rig(streaming());
  (r.callouts as { grpcStream?: unknown }).grpcStream = undefined; // as hosts that leave streaming out
  roundTrip(r, get());
  r.clock.advance(1000);
  assert.is(r.callouts.takeGrpc().filter((c) => c.req.method === "Report").length, 1);
});

test("a new configuration with another token closes the idle stream gracefully; the same cluster and token keep it; an ack that never comes gives it up", async () => {
  const r = await rig(streaming({ token: TOKEN }));
  roundTrip(r, get());
  r.clock.advance(1000);
  r.callouts.streams[0]!.events.message(ACK);
  assert.ok(r.host.reconfigure(config([component({ shadow_weight_bp: 500 })], { telemetry: { cluster: "controller", interval_ms: 1000, stream: true, token: TOKEN } })));
  assert.not.ok(r.callouts.streams[0]!.closed || r.callouts.streams[0]!.cancelled, "same cluster and token: the stream stays");
  roundTrip(r, get());
  r.clock.advance(1000);
  assert.is(r.callouts.streams.length, 1, "and carries the next report");
  r.callouts.streams[0]!.events.message(ACK);
  const other = "proxy-token-99999999999999999";
  assert.ok(r.host.reconfigure(streaming({ token: other })));
  assert.ok(r.callouts.streams[0]!.closed && !r.callouts.streams[0]!.cancelled, "another token: the idle stream is half-closed, not cancelled");
  r.callouts.streams[0]!.events.close(0, ""); // the controller ends it: no longer this worker's stream, nothing counted
  roundTrip(r, get());
  r.clock.advance(1000);
  assert.is(live(r).length, 2);
  assert.is(r.callouts.streams[1]!.req.initialMetadata.get("authorization"), `Bearer ${other}`, "the new stream carries the new token");
  assert.is(r.host.metricValue("shadowmesh.telemetry.failed"), 0);
  // No ack for 3 x timeout_ms (2 s): the stream is cancelled and the report counted failed.
  for (let i = 0; i < 7; i++) r.clock.advance(1000);
  assert.ok(r.callouts.streams[1]!.cancelled, "the silent stream is given up");
  assert.ok(live(r).length === 2 && live(r).at(-1) !== r.callouts.streams[1], "and a new one opened");
  assert.ok((r.host.metricValue("shadowmesh.telemetry.failed") ?? 0) >= 1);
});

test("a new token while a report is in flight: its ack still settles it (counted once), then the stream is closed and a new one opened", async () => {
  const r = await rig(streaming({ token: TOKEN }));
  for (let i = 0; i < 6; i++) roundTrip(r, get());
  r.clock.advance(1000);
  const first = r.callouts.streams[0]!;
  assert.ok(r.host.reconfigure(streaming({ token: "proxy-token-99999999999999999" })));
  assert.not.ok(first.closed || first.cancelled, "kept while its report waits for the ack");
  first.events.message(ACK);
  assert.ok(first.closed, "closed once the report is settled");
  for (let i = 0; i < 2; i++) roundTrip(r, get());
  r.clock.advance(1000);
  assert.is(r.callouts.streams.length, 2);
  assert.is(reads(reportsOn(first)), 6);
  assert.is(reads(reportsOn(r.callouts.streams[1]!)), 2, "the acknowledged 6 are not sent again");
  assert.is(r.host.metricValue("shadowmesh.telemetry.failed"), 0);
});

test("after UNIMPLEMENTED, a new configuration tries a stream again", async () => {
  const r = await rig(streaming());
  roundTrip(r, get());
  r.clock.advance(1000);
  r.callouts.streams[0]!.events.close(12, "unknown method StreamReports");
  r.clock.advance(1000);
  const unary = r.callouts.takeGrpc().filter((c) => c.req.method === "Report");
  assert.is(unary.length, 1);
  unary[0]!.reply({ status: 0, message: new Uint8Array(0) });
  assert.ok(r.host.reconfigure(streaming({ interval_ms: 500 })));
  r.clock.advance(500);
  assert.is(r.callouts.streams.length, 2, "a stream again");
  assert.is(r.callouts.takeGrpc().length, 0);
});

test("the controller's StreamReports merges the real filter's reports, acks each by sequence, and refuses bad ones by closing", async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const store = new TelemetryStore({ clock });
  const engine = new RiskEngine({ clock, predictor: new FailurePredictor() });
  engine.setComponent({ name: "orders", signals: DEFAULT_SIGNALS });
  const server = new grpc.Server();
  addTelemetryService(server, { store, engine, clock, log: silentLogger(), auth: { tokens: [TOKEN], mtls: false } });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = telemetryClient(`127.0.0.1:${port}`) as unknown as grpc.Client;
  try {
    // Three real reports from the filter (sequences 1..3).
    const r = await rig(streaming());
    const sent: Uint8Array[] = [];
    for (let t = 0; t < 3; t++) {
      roundTrip(r, get(), { latencyMs: 4 });
      r.clock.advance(1000);
      sent.push(r.callouts.streams[0]!.sent.at(-1)!);
      r.callouts.streams[0]!.events.message(ACK);
    }
    const open = (md: grpc.Metadata) => client.makeBidiStreamRequest("/shadowmesh.telemetry.v1.Telemetry/StreamReports", (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, md);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);
    const s = open(md);
    const acks: Buffer[] = [];
    const ended = new Promise<grpc.StatusObject>((res) => s.on("status", res));
    s.on("data", (b: Buffer) => acks.push(b));
    s.on("error", () => undefined);
    for (const m of sent) s.write(m);
    await until("3 acks", () => acks.length >= 3, 5000, () => `${acks.length} of 3`);
    assert.equal(acks.map((b) => b[1]), [1, 2, 3], "one ack per report, in order, with its sequence");
    assert.is(store.stats.reports, 3);
    s.write(new Uint8Array([0x0a, 0xff])); // a truncated message
    const st = await ended;
    assert.is(st.code, grpc.status.INVALID_ARGUMENT);
    assert.match(st.details, /^FilterReport: /);
    // Without the token: UNAUTHENTICATED before anything is read.
    const anon = open(new grpc.Metadata());
    anon.on("error", () => undefined);
    anon.on("data", () => undefined);
    anon.write(sent[0]!);
    const refused = await new Promise<grpc.StatusObject>((res) => anon.on("status", res));
    assert.is(refused.code, grpc.status.UNAUTHENTICATED);
    assert.is(store.stats.reports, 3, "nothing merged from the unauthenticated stream");
  } finally {
    client.close();
    server.forceShutdown();
  }
});

test.run();
