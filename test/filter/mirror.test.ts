// Read-only mirroring to the shadow: sampling, caps, what the mirror carries, that the primary is
// never touched, and the consistency verdicts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Action } from "../../host/index.js";
import { component, config, get, post, rig, stat, tickReports, totals, type Rig } from "../support/filter.js";

const mirrorAll = (over: Record<string, unknown> = {}) =>
  config([component({ mirror: { fraction: 1, max_per_second: 100000, max_in_flight: 1024, timeout_ms: 1000, ...over } })]);

test("reads are mirrored at the configured fraction (within 3 sigma); writes never", async () => {
  const r = await rig(config([component({ mirror: { fraction: 0.2, max_per_second: 1000000, max_in_flight: 1024 } })]));
  const n = 5000;
  for (let i = 0; i < n; i++) {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(get(`/i/${i}`), true);
    for (const c of r.callouts.takeHttp()) c.respond({ headers: [[":status", "200"]] });
    s.sendResponseHeaders([[":status", "200"]], true);
    s.complete();
  }
  r.clock.advance(1000);
  const sent = stat(r, "orders", "mirror.sent");
  assert.ok(Math.abs(sent - n * 0.2) <= 3 * Math.sqrt(n * 0.2 * 0.8), `${sent} of ${n} mirrored`);
  const w = await rig(mirrorAll());
  for (let i = 0; i < 200; i++) {
    const s = w.host.newHttpStream();
    s.sendRequestHeaders(post(), true);
    s.sendResponseHeaders([[":status", "201"]], true);
    s.complete();
  }
  assert.is(w.callouts.http.length, 0, "fraction 1 and still no write mirrored");
});

test("the mirror copies the request to the shadow cluster with the marker, minus removed and routing headers", async () => {
  const r = await rig(mirrorAll({ remove_headers: ["authorization", "cookie"] }));
  const s = r.host.newHttpStream();
  const action = s.sendRequestHeaders(get("/items?q=1", [["authorization", "Bearer x"], ["cookie", "a=b"], ["x-trace", "t1"]]), true);
  assert.is(action, Action.Continue, "the primary request is never paused");
  const [call] = r.callouts.takeHttp();
  assert.ok(call);
  assert.is(call.req.cluster, "orders-shadow");
  assert.is(call.req.timeoutMs, 1000);
  const h = call.req.headers;
  assert.equal([h.get(":method"), h.get(":path"), h.get(":authority"), h.get("x-trace"), h.get("x-shadowmesh-mirror")],
    ["GET", "/items?q=1", "orders.svc", "t1", "1"]);
  assert.is(h.get("authorization"), undefined);
  assert.is(h.get("cookie"), undefined);
  assert.is(h.get("x-shadowmesh-cluster"), undefined);
  assert.is(call.req.contextId, r.host.worker(0).rootContextId, "owned by the root context, so it survives the stream");
  assert.is(s.requestHeadersMap!.get("authorization"), "Bearer x", "the primary request keeps every header");
  s.sendResponseHeaders([[":status", "200"], ["x-p", "1"]], false);
  s.sendResponseBody("primary", true);
  assert.equal(s.responseHeadersMap!.entries(), [[":status", "200"], ["x-p", "1"]]);
  assert.is(Buffer.concat(s.forwardedResponseBody).toString(), "primary", "the primary response is untouched");
});

test("what mirroring costs: the request header bytes sent and the shadow's body bytes received are counted", async () => {
  const r = await rig(mirrorAll());
  for (let i = 0; i < 3; i++) {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(get(`/items/${i}`), true);
    const [call] = r.callouts.takeHttp();
    call!.respond({ headers: [[":status", "200"]], body: "0123456789" });
    s.sendResponseHeaders([[":status", "200"]], false);
    s.sendResponseBody("0123456789", true);
    s.complete();
  }
  const cons = totals(tickReports(r)).get("orders")!.consistency;
  assert.is(cons.responseBytes, 30, "the telemetry report carries them to the controller");
  assert.ok(cons.requestBytes! > 0);
  assert.is(stat(r, "orders", "mirror.response_bytes"), 30, "three 10-byte answers");
  const req = stat(r, "orders", "mirror.request_bytes");
  assert.is(req, cons.requestBytes);
  // Each mirror carries :method, :path, :authority and the marker (the serialized header map, 20+ bytes of names alone).
  assert.ok(req >= 3 * 40 && req < 3 * 400, `request header bytes ${req}`);
});

test("caps: in-flight and per-second limits hold, and count skips", async () => {
  const r = await rig(mirrorAll({ max_in_flight: 3, max_per_second: 1000 }));
  const streams = Array.from({ length: 10 }, () => { const s = r.host.newHttpStream(); s.sendRequestHeaders(get(), true); return s; });
  assert.is(r.callouts.http.length, 3, "three in flight at most");
  for (const c of r.callouts.takeHttp()) c.respond({ headers: [[":status", "200"]] });
  const more = r.host.newHttpStream();
  more.sendRequestHeaders(get(), true);
  assert.is(r.callouts.takeHttp().length, 1, "answered mirrors free their slots");
  for (const s of [...streams, more]) { s.sendResponseHeaders([[":status", "200"]], true); s.complete(); }
  r.clock.advance(1000);
  assert.is(stat(r, "orders", "mirror.skipped_cap"), 7);

  const p = await rig(mirrorAll({ max_per_second: 5 }));
  const fire = (n: number) => { for (let i = 0; i < n; i++) p.host.newHttpStream().sendRequestHeaders(get(), true); return p.callouts.takeHttp().length; };
  assert.is(fire(20), 5, "a burst is capped at the per-second rate");
  p.clock.advance(400);
  assert.is(fire(20), 2, "tokens refill with time: 0.4 s x 5/s");
  p.clock.advance(10000);
  assert.is(fire(20), 5, "the bucket never holds more than one second's worth");
});

interface Case { name: string; primary: [number, string]; shadow: "error" | "timeout" | [number, string]; expect: string; max?: number; shadowFirst?: boolean }

const cases: Case[] = [
  { name: "identical", primary: [200, "{\"id\":1}"], shadow: [200, "{\"id\":1}"], expect: "match" },
  { name: "different status", primary: [200, "x"], shadow: [404, "x"], expect: "status_mismatch" },
  { name: "different body", primary: [200, "{\"id\":1}"], shadow: [200, "{\"id\":2}"], expect: "body_mismatch" },
  { name: "different length", primary: [200, "abc"], shadow: [200, "abcd"], expect: "body_mismatch" },
  { name: "primary failed (5xx): not a comparison", primary: [503, "down"], shadow: [200, "x"], expect: "abandoned" },
  { name: "shadow answered 5xx to a good primary", primary: [200, "x"], shadow: [500, "x"], expect: "status_mismatch" },
  { name: "shadow failed", primary: [200, "x"], shadow: "error", expect: "shadow_error" },
  { name: "shadow timed out", primary: [200, "x"], shadow: "timeout", expect: "shadow_timeout" },
  { name: "above the size limit: same length, other bytes", primary: [200, "aaaaaaaaaa"], shadow: [200, "bbbbbbbbbb"], expect: "match", max: 4 },
  { name: "above the size limit: other length", primary: [200, "aaaaaaaaaa"], shadow: [200, "bbbbbbbbbbb"], expect: "body_mismatch", max: 4 },
  { name: "identical, shadow answers first", primary: [200, "same"], shadow: [200, "same"], expect: "match", shadowFirst: true },
  { name: "different body, shadow answers first", primary: [200, "same"], shadow: [200, "diff"], expect: "body_mismatch", shadowFirst: true },
];

const VERDICTS = ["match", "status_mismatch", "body_mismatch", "shadow_error", "shadow_timeout", "abandoned"];

function answer(r: Rig, shadow: Case["shadow"]) {
  const [call] = r.callouts.takeHttp();
  assert.ok(call, "a mirror was sent");
  if (shadow === "error") call.fail();
  else if (shadow === "timeout") r.clock.advance(1000);
  else call.respond({ headers: [[":status", String(shadow[0])]], body: shadow[1] });
}

for (const c of cases) {
  test(`consistency: ${c.name} -> ${c.expect}`, async () => {
    const r = await rig(mirrorAll(c.max ? { compare_body_max_bytes: c.max } : {}));
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(get(), true);
    if (c.shadowFirst) answer(r, c.shadow);
    r.clock.advance(3);
    s.sendResponseHeaders([[":status", String(c.primary[0])]], false);
    // Two chunks: the digest is computed while the body streams.
    s.sendResponseBody(c.primary[1].slice(0, 2), false);
    s.sendResponseBody(c.primary[1].slice(2), true);
    s.complete();
    if (!c.shadowFirst) answer(r, c.shadow);
    // Two ticks: a verdict that lands on a tick boundary is reported on the next one.
    const reports = [...tickReports(r), ...tickReports(r)];
    for (const v of VERDICTS) assert.is(stat(r, "orders", `mirror.${v}`), v === c.expect ? 1 : 0, `mirror.${v}`);
    const cons = totals(reports).get("orders")!.consistency;
    assert.is(cons.mirrored, 1);
    assert.is(cons[c.expect.replace(/_(\w)/g, (_, x: string) => x.toUpperCase())], 1, "the report carries the verdict too");
  });
}

test("consistency: a primary reset before its response is abandoned, not a mismatch", async () => {
  const r = await rig(mirrorAll());
  const s = r.host.newHttpStream();
  s.sendRequestHeaders(get(), true);
  s.complete();
  answer(r, [200, "x"]);
  r.clock.advance(1000);
  assert.is(stat(r, "orders", "mirror.abandoned"), 1);
  assert.is(stat(r, "orders", "mirror.match"), 0);
});

test.run();
