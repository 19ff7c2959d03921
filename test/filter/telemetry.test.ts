// Telemetry: reports decode with the proto, several workers' reports merge into exactly what one
// sketch of every request would hold, and nothing is lost when a report fails.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LatencySketch } from "../../controller/telemetry/sketch.js";
import { decodeReport, type DecodedReport } from "../../controller/telemetry/report.js";
import { component, config, get, post, rig, tickReports, totals, type Rig } from "../support/filter.js";
import { mulberry32 } from "../support/random.js";

/** Acknowledges every report sent so far and returns them decoded. */
function ack(r: Rig, into: DecodedReport[]): void {
  for (const c of r.callouts.takeGrpc()) {
    into.push(decodeReport(c.req.message!));
    c.reply({ status: 0, message: new Uint8Array(0) });
  }
}

test("reports from several workers merge into one sketch that saw every request", async () => {
  const r = await rig(config([component({ shadow_weight_bp: 3000, sticky: { header: "x-user" } })]), { workers: 3 });
  const rand = mulberry32(99);
  const expected = { PRIMARY: new LatencySketch(), SHADOW_LIVE: new LatencySketch() };
  const status = { PRIMARY: [0, 0, 0, 0, 0], SHADOW_LIVE: [0, 0, 0, 0, 0] };
  const reports: DecodedReport[] = [];
  let reads = 0, writes = 0;
  for (let i = 0; i < 900; i++) {
    const write = i % 5 === 0;
    const s = r.host.newHttpStream({ worker: i % 3 });
    s.sendRequestHeaders(write ? post() : get("/", [["x-user", `u${i % 97}`]]), true);
    const latencyMs = Math.round(Math.exp(rand() * 6) * 1000) / 1000; // 1 us resolution, up to ~400 ms
    r.clock.advance(latencyMs);
    const code = rand() < 0.1 ? 503 : 200;
    s.sendResponseHeaders([[":status", String(code)]], true);
    s.complete();
    const target = s.requestHeadersMap!.get("x-shadowmesh-cluster") === "orders-shadow" ? "SHADOW_LIVE" : "PRIMARY";
    expected[target].add(Number(BigInt(Math.round(latencyMs * 1e6))) * 1e-3);
    status[target][Math.floor(code / 100) - 1]!++;
    if (write) writes++; else reads++;
    ack(r, reports);
  }
  r.clock.advance(1000);
  ack(r, reports);
  assert.ok(reports.length >= 3, "every worker reported");
  assert.equal(new Set(reports.map((x) => x.workerId)).size, 3, "three workers, three ids");
  for (const rep of reports) assert.is(rep.nodeId, "sidecar-1");
  const t = totals(reports).get("orders")!;
  assert.is(t.reads, reads);
  assert.is(t.writes, writes);
  for (const name of ["PRIMARY", "SHADOW_LIVE"] as const) {
    const got = t.targets.get(name)!;
    assert.ok(got.latency.equals(expected[name]), `${name}: merged sketch equals the one that saw every request`);
    assert.equal(got.status, status[name], `${name} status classes`);
    assert.is(got.requests, expected[name].count);
    assert.ok(Math.abs(got.latency.quantile(0.99) - expected[name].quantile(0.99)) < 1e-9);
  }
  const seqByWorker = new Map<bigint, number[]>();
  for (const rep of reports) seqByWorker.set(rep.workerId, [...(seqByWorker.get(rep.workerId) ?? []), rep.sequence]);
  for (const seqs of seqByWorker.values()) assert.equal(seqs, seqs.map((_, i) => i + 1), "sequences count up by one per worker");
});

test("a failed report is merged into the next one: nothing is lost", async () => {
  const r = await rig();
  for (let i = 0; i < 10; i++) {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(get(), true);
    r.clock.advance(2);
    s.sendResponseHeaders([[":status", "200"]], true);
    s.complete();
  }
  const failed = tickReports(r, { ok: false, intervalMs: 980 });
  assert.is(failed.length, 1);
  assert.is(failed[0]!.components.get("orders")!.reads, 10);
  for (let i = 0; i < 5; i++) {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(get(), true);
    r.clock.advance(2);
    s.sendResponseHeaders([[":status", "200"]], true);
    s.complete();
  }
  const next = tickReports(r, { intervalMs: 990 });
  assert.is(next.length, 1);
  const c = next[0]!.components.get("orders")!;
  assert.is(c.reads, 15, "the failed window's 10 plus the new 5");
  assert.is(c.targets.get("PRIMARY")!.latency.count, 15);
  assert.is(next[0]!.windowStartUnixNanos, failed[0]!.windowStartUnixNanos, "the window starts where the failed one did");
  assert.is(next[0]!.sequence, failed[0]!.sequence + 1);
  assert.is(r.host.metricValue("shadowmesh.telemetry.failed"), 1);
  assert.is(r.host.metricValue("shadowmesh.telemetry.sent"), 1);
  const after = tickReports(r);
  assert.is(after[0]!.components.size, 0, "once acknowledged, it is not sent again");
});

test("a controller that never answers: the report times out and its data goes back into the next", async () => {
  const r = await rig(config([component()], { telemetry: { cluster: "controller", interval_ms: 1000, timeout_ms: 300 } }));
  const s = r.host.newHttpStream();
  s.sendRequestHeaders(get(), true);
  s.sendResponseHeaders([[":status", "200"]], true);
  s.complete();
  r.clock.advance(1000);
  const lost = r.callouts.takeGrpc();
  assert.is(lost.length, 1, "sent, never answered (the host times it out after 300 ms)");
  const next = tickReports(r);
  assert.is(next.length, 1);
  assert.is(next[0]!.components.get("orders")!.reads, 1);
});

test("the floor's counters and state are reported; a failed report keeps its counters for the next", async () => {
  const r = await rig(config([component({ floor: { shadow_fit: true, base_ejection_ms: 60000 }, hold_writes: "failover" })]));
  const roundTrip = (h: [string, string][], status = 200) => {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(h, true);
    if (!s.localResponse) s.sendResponseHeaders([[":status", String(status)]], true);
    s.complete();
  };
  for (let i = 0; i < 3; i++) roundTrip(get(), 503);
  for (let i = 0; i < 4; i++) roundTrip(get());
  roundTrip(post());
  const failed = tickReports(r, { ok: false });
  const f0 = failed[0]!.components.get("orders")!.floor;
  assert.equal(f0, { ejections: 1, readsDiverted: 4, probes: 0, probeFailures: 0, readmissions: 0, unfitSkips: 0, writesHeld: 1, writesPaused: 0, ejected: true });
  roundTrip(get());
  const next = tickReports(r);
  assert.equal(next[0]!.components.get("orders")!.floor, { ejections: 1, readsDiverted: 5, probes: 0, probeFailures: 0, readmissions: 0, unfitSkips: 0, writesHeld: 1, writesPaused: 0, ejected: true },
    "the failed report's counters plus the new diverted read");
  const idle = tickReports(r);
  const c = idle[0]!.components.get("orders");
  assert.ok(c, "an ejected component is reported even without traffic");
  assert.equal(c!.floor, { ejections: 0, readsDiverted: 0, probes: 0, probeFailures: 0, readmissions: 0, unfitSkips: 0, writesHeld: 0, writesPaused: 0, ejected: true });
  // The controller marks the shadow unfit: the floor stops diverting; one more report says so, then silence.
  r.host.reconfigure(config([component({ floor: { shadow_fit: false, base_ejection_ms: 60000 } })]));
  const unfit = tickReports(r);
  assert.equal(unfit[0]!.components.get("orders")?.floor.ejected, false);
  assert.is(tickReports(r)[0]!.components.size, 0);
  assert.is(r.host.metricValue("shadowmesh.orders.floor.ejections"), 1);
  assert.is(r.host.metricValue("shadowmesh.orders.floor.reads_diverted"), 5);
  assert.is(r.host.metricValue("shadowmesh.orders.writes_held"), 1);
  assert.is(r.host.metricValue("shadowmesh.orders.floor.ejected"), 0);
});

test("Envoy stats mirror the counters (proxy_define_metric)", async () => {
  const r = await rig(config([component({ shadow_weight_bp: 10000 })]));
  for (const h of [get(), get(), post()]) {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(h, true);
    s.sendResponseHeaders([[":status", "200"]], true);
    s.complete();
  }
  tickReports(r);
  assert.is(r.host.metricValue("shadowmesh.orders.reads"), 2);
  assert.is(r.host.metricValue("shadowmesh.orders.writes"), 1);
  assert.is(r.host.metricValue("shadowmesh.orders.routed_shadow"), 2);
  assert.is(r.host.metricValue("shadowmesh.orders.shadow_weight_bp"), 10000);
  tickReports(r);
  assert.is(r.host.metricValue("shadowmesh.orders.reads"), 2, "counted once, however many ticks pass");
});

test("timeouts and resets from Envoy's response flags; streams without a response count as resets; each failure is counted once", async () => {
  const r = await rig();
  const timedOut = r.host.newHttpStream({ properties: { "response.flags": 0x4n } });
  timedOut.sendRequestHeaders(get(), true);
  r.clock.advance(15000);
  timedOut.sendResponseHeaders([[":status", "504"]], true);
  timedOut.complete();
  const reset = r.host.newHttpStream({ properties: { "response.flags": 0x10n } });
  reset.sendRequestHeaders(get(), true);
  reset.complete();
  const refused = r.host.newHttpStream({ properties: { "response.flags": 0x20n } });
  refused.sendRequestHeaders(get(), true);
  refused.sendResponseHeaders([[":status", "503"]], true);
  refused.complete();
  const reports = [...tickReports(r), ...tickReports(r)];
  const p = totals(reports).get("orders")!.targets.get("PRIMARY")!;
  assert.is(p.timeouts, 1);
  assert.is(p.resets, 2);
  // The local 504 and 503 are the timeout and the refused connection, not 5xx answers besides.
  assert.equal(p.status, [0, 0, 0, 0, 0]);
  assert.is(p.requests, 3);
  assert.is(p.status[4]! + p.resets + p.timeouts, 3, "errors = requests: 3 failures, each once");
  assert.is(p.latency.count, 2, "no latency for a stream that never got a response");
});

test.run();
