// pause_writes_ms: during a planned write switch the filter holds writes (headers paused, body
// buffered) and continues them to the write target the next configuration names; past the bound,
// past MAX_PAUSED, or when an emergency holds writes, it answers them 503. Reads are never held.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { component, config, get, post, rig, roundTrip, stat, tickReports, totals, type Rig } from "../support/filter.js";

const PRIMARY = "orders-primary", SHADOW = "orders-shadow";
const paused = (ms = 2000, over: Record<string, unknown> = {}) => config([component({ pause_writes_ms: ms, ...over })]);
const switched = () => config([component({ write_target: "shadow", shadow_weight_bp: 10000 })]);
const body = (s: { localResponse?: { body: Uint8Array } }) => JSON.parse(Buffer.from(s.localResponse!.body).toString()).error as string;
function flush(r: Rig) { tickReports(r, { intervalMs: 0 }); r.clock.advance(1000); r.callouts.takeGrpc().forEach((c) => c.reply({ status: 0, message: new Uint8Array(0) })); }

test("a write is held while the switch runs and goes on to the new write target once the configuration names it", async () => {
  const r = await rig(paused());
  const w = r.host.newHttpStream();
  assert.is(w.sendRequestHeaders(post(), true), 1, "Pause: held in the proxy");
  assert.ok(w.requestPaused);
  assert.is(w.requestHeadersMap!.get("x-shadowmesh-cluster"), undefined, "not routed while held");
  assert.is(w.localResponse, undefined);
  assert.is(roundTrip(r, get()).requestHeadersMap!.get("x-shadowmesh-cluster"), PRIMARY, "reads are not held");
  r.clock.advance(500); // ticks pass: still held (the bound is 2 s)
  assert.ok(w.requestPaused);
  assert.ok(r.host.reconfigure(switched()));
  assert.not.ok(w.requestPaused, "continued by the configuration that ends the pause");
  assert.is(w.requestHeadersMap!.get("x-shadowmesh-cluster"), SHADOW, "to the new writer");
  assert.is(w.localResponse, undefined);
  w.sendResponseHeaders([[":status", "201"]], true);
  w.complete();
  const t = totals(tickReports(r)).get("orders")!;
  assert.is(t.writes, 1);
  assert.is(t.targets.get("SHADOW_LIVE")?.requests, 1, "recorded against the side that answered it");
  assert.is(t.floor.writesPaused, 1);
  assert.is(t.floor.writesHeld, 0);
  flush(r);
  assert.is(stat(r, "orders", "writes_paused"), 1);
  assert.is(stat(r, "orders", "writes_held") || 0, 0);
  assert.equal(r.host.logsAt(3).filter((m) => m.includes("internal error")), [], "no filter error");
});

test("a held write keeps its body: a body chunk does not continue it (Envoy continues headers on a body Continue)", async () => {
  const r = await rig(paused());
  const w = r.host.newHttpStream();
  assert.is(w.sendRequestHeaders(post(), false), 1);
  assert.is(w.sendRequestBody("{\"qty\":", false), 1, "the body is buffered, not passed");
  assert.is(w.sendRequestBody("3}", true), 1);
  assert.ok(w.requestPaused);
  assert.equal(w.forwardedRequestBody, [], "nothing released while held");
  assert.ok(r.host.reconfigure(config([component({ write_target: "primary" })])));
  assert.not.ok(w.requestPaused);
  assert.is(w.requestHeadersMap!.get("x-shadowmesh-cluster"), PRIMARY, "a switch that ended back on the primary (cancelled) sends it there");
  assert.is(Buffer.concat(w.forwardedRequestBody).toString(), "{\"qty\":3}", "the whole body goes on with it");
});

test("a write held past pause_writes_ms is answered 503 on the tick, never forwarded", async () => {
  const r = await rig(paused(300));
  const w = r.host.newHttpStream();
  w.sendRequestHeaders(post(), true);
  r.clock.advance(200);
  assert.is(w.localResponse, undefined, "within the bound");
  r.clock.advance(120);
  assert.is(w.localResponse?.status, 503, "answered within one fast tick of the bound");
  assert.match(body(w), /orders is switching its writer and this write waited 300 ms \(pause_writes_ms\)/);
  assert.is(w.localResponse!.headers.get("x-shadowmesh-held"), "writes");
  assert.is(w.requestHeadersMap!.get("x-shadowmesh-cluster"), undefined);
  w.complete();
  assert.ok(r.host.reconfigure(switched()));
  assert.is(w.requestHeadersMap!.get("x-shadowmesh-cluster"), undefined, "a later end of the pause does not send it");
  const t = totals(tickReports(r)).get("orders")!;
  assert.is(t.floor.writesPaused, 1);
  assert.is(t.floor.writesHeld, 1, "counted as held (answered 503)");
  assert.is(t.targets.get("PRIMARY")?.requests ?? 0, 0, "neither side answered it");
});

test("an emergency that holds writes answers the paused ones with its reason; a client that left is dropped quietly", async () => {
  const r = await rig(paused(5000));
  const w = r.host.newHttpStream();
  w.sendRequestHeaders(post(), true);
  const gone = r.host.newHttpStream();
  gone.sendRequestHeaders(post(), true);
  gone.complete(); // the client went away while held
  assert.ok(r.host.reconfigure(config([component({ hold_writes: "the primary is down" })])));
  assert.is(w.localResponse?.status, 503);
  assert.is(body(w), "shadowmesh: writes held: the primary is down");
  assert.is(gone.localResponse, undefined);
  w.complete();
  const t = totals(tickReports(r)).get("orders")!;
  assert.is(t.floor.writesPaused, 2);
  assert.is(t.floor.writesHeld, 1);
  assert.is(t.targets.get("PRIMARY")?.requests ?? 0, 0, "the write whose client left is not a reset of the primary");
  assert.is(r.host.metricValue("shadowmesh.filter_errors") ?? 0, 0);
});

test("a failover holds writes with both hold_writes and pause_writes_ms: they wait, past the bound get its reason, and go on to the new leader", async () => {
  const failover = (ms: number) => config([component({ shadow_weight_bp: 10000, hold_writes: "the primary is down (ejected)", pause_writes_ms: ms })]);
  const r = await rig(failover(400));
  const early = r.host.newHttpStream();
  assert.is(early.sendRequestHeaders(post(), true), 1);
  assert.is(early.localResponse, undefined, "waits instead of a 503");
  r.clock.advance(420);
  assert.is(early.localResponse?.status, 503, "past the bound");
  assert.is(body(early), "shadowmesh: writes held: the primary is down (ejected)", "with the failover's reason");
  early.complete();
  const w = r.host.newHttpStream();
  w.sendRequestHeaders(post(), true);
  assert.ok(r.host.reconfigure(failover(400)), "the same failover again (a superseded publish)");
  assert.ok(w.requestPaused, "still waiting");
  assert.ok(r.host.reconfigure(switched()));
  assert.is(w.requestHeadersMap!.get("x-shadowmesh-cluster"), SHADOW, "to the promoted shadow");
  assert.is(w.localResponse, undefined);
  assert.is(roundTrip(r, get()).requestHeadersMap!.get("x-shadowmesh-cluster"), SHADOW);
  const t = totals(tickReports(r)).get("orders")!;
  assert.equal([t.floor.writesPaused, t.floor.writesHeld], [2, 1]);
});

test("past MAX_PAUSED (1024 a worker) a write is answered 503 at once", async () => {
  const r = await rig(paused(5000));
  const held = [];
  for (let i = 0; i < 1024; i++) { const s = r.host.newHttpStream(); s.sendRequestHeaders(post(), true); held.push(s); }
  assert.ok(held.every((s) => s.requestPaused && !s.localResponse));
  const over = r.host.newHttpStream();
  assert.is(over.sendRequestHeaders(post(), true), 1);
  assert.is(over.localResponse?.status, 503);
  assert.match(body(over), /too many writes are waiting for the write switch/);
  assert.ok(r.host.reconfigure(switched()));
  assert.ok(held.every((s) => !s.requestPaused && s.requestHeadersMap!.get("x-shadowmesh-cluster") === SHADOW), "all 1024 continued");
});

test("pause_writes_ms: bad values are refused with the field's path; observed components cannot pause", async () => {
  const r = await rig(config());
  for (const [v, why] of [[-1, "must be between 0 and 60000, got -1"], [60001, "must be between 0 and 60000, got 60001"], [1.5, "must be an integer, got 1.5"], ["5s", "must be a number, got a string"]] as const) {
    assert.not.ok(r.host.reconfigure(config([component({ pause_writes_ms: v })])));
    assert.ok(r.host.logsAt(4).some((m) => m.includes(`components[0].pause_writes_ms: ${why}`)), `${v}: ${r.host.logsAt(4).slice(-1)}`);
  }
  assert.not.ok(r.host.reconfigure(config([{ name: "audit", authorities: ["audit.svc"], primary_cluster: "audit", observe: true, pause_writes_ms: 1000 }])));
  assert.ok(r.host.logsAt(4).some((m) => m.includes("pause_writes_ms: must not be set on an observed component")));
  assert.ok(r.host.reconfigure(config([component({ pause_writes_ms: 0 })])), "0: no pause");
  assert.is(roundTrip(r, post()).requestHeadersMap!.get("x-shadowmesh-cluster"), PRIMARY);
});

test.run();
