// Callers (assembly/edges.ts): who calls each component, from the configured source (header, peer
// certificate, source address, the proxy's own workload), reported with the telemetry as exact
// deltas; a full table keeps its busiest callers and counts the rest as "other" without losing a
// request; a failed report carries its callers over; an observed component is counted, never split.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { LogLevel } from "../../host/index.js";
import { OTHER_CALLER } from "../../controller/telemetry/report.js";
import { component, config, get, post, rig, roundTrip, tickReports, totals, type Rig } from "../support/filter.js";

const byHeader = { callers: { from: ["header"], header: "x-caller" } };

function callersOf(r: Rig, ok = true): Map<string, { requests: number; errors: number; latencyUsSum: number }> {
  return totals(tickReports(r, { ok })).get("orders")?.callers ?? new Map();
}

test("callers by header: requests, errors and latency per caller, exactly", async () => {
  const r = await rig(config([component()], byHeader));
  const want = new Map<string, { requests: number; errors: number; latencyUsSum: number }>();
  for (let i = 0; i < 60; i++) {
    const caller = ["web", "checkout", "batch"][i % 3]!;
    const status = i % 10 === 0 ? 503 : 200;
    const latencyMs = 2 + (i % 7);
    roundTrip(r, i % 4 === 0 ? post("/o", [["x-caller", caller]]) : get("/o", [["x-caller", caller]]), { status, latencyMs });
    const w = want.get(caller) ?? { requests: 0, errors: 0, latencyUsSum: 0 };
    w.requests++; if (status >= 500) w.errors++; w.latencyUsSum += latencyMs * 1000;
    want.set(caller, w);
  }
  roundTrip(r, get("/o")); // no caller header: not an edge
  const got = callersOf(r);
  assert.equal(Object.fromEntries(got), Object.fromEntries(want));
  assert.equal(callersOf(r).size, 0, "the next report has nothing more");
});

test("sources in order: the peer certificate, then the source address without its port, then the proxy's own workload", async () => {
  const r = await rig(config([component()], { callers: { from: ["peer", "address", "node"] } }), {
    properties: { "node.id": "sidecar-1", "node.metadata.WORKLOAD_NAME": "web-v1", "node.metadata.NAMESPACE": "shop" },
  });
  const one = (props: Record<string, string>) => {
    const s = r.host.newHttpStream();
    for (const [k, v] of Object.entries(props)) s.setProperty(k, v);
    s.sendRequestHeaders(get(), true);
    r.clock.advance(3);
    s.sendResponseHeaders([[":status", "200"]], true);
    s.complete();
  };
  one({ "connection.uri_san_peer_certificate": "spiffe://cluster.local/ns/shop/sa/checkout", "source.address": "10.0.0.7:41234" });
  one({ "source.address": "10.0.0.7:41234" });
  one({ "source.address": "[fd00::1]:8080" });
  one({});
  const got = callersOf(r);
  assert.equal([...got.keys()].sort(), ["10.0.0.7", "fd00::1", "spiffe://cluster.local/ns/shop/sa/checkout", "web-v1.shop"]);
  for (const v of got.values()) assert.is(v.requests, 1);
});

test("a failed report carries its callers into the next one; nothing is counted twice", async () => {
  const r = await rig(config([component()], byHeader));
  for (let i = 0; i < 10; i++) roundTrip(r, get("/", [["x-caller", "web"]]));
  assert.is(callersOf(r, false).get("web")?.requests, 10, "sent, then failed");
  for (let i = 0; i < 5; i++) roundTrip(r, get("/", [["x-caller", "web"]]));
  assert.is(callersOf(r).get("web")?.requests, 15, "the failed window and the new one");
  assert.equal(callersOf(r).size, 0);
});

test("many distinct callers: at most top_k by name plus other, every request counted once, across failed reports (property)", async () => {
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 1, max: 8 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.boolean()), { minLength: 1, maxLength: 300 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }),
    async (topK, reqs, oks) => {
      const r = await rig(config([component()], { callers: { from: ["header"], header: "x-caller", top_k: topK } }));
      let delivered = 0;
      const per = Math.ceil(reqs.length / oks.length);
      for (let w = 0; w < oks.length; w++) {
        for (const [c, err] of reqs.slice(w * per, (w + 1) * per)) roundTrip(r, get("/", [["x-caller", `caller-${c}`]]), { status: err ? 500 : 200 });
        const reps = tickReports(r, { ok: oks[w] });
        const cs = totals(reps).get("orders")?.callers ?? new Map();
        const named = [...cs.keys()].filter((k) => k !== OTHER_CALLER);
        assert.ok(named.length <= topK, `${named.length} named callers > top_k ${topK}`);
        if (oks[w]) for (const v of cs.values()) delivered += v.requests;
      }
      for (let i = 0; i < 3; i++) for (const v of (totals(tickReports(r)).get("orders")?.callers ?? new Map()).values()) delivered += v.requests;
      assert.is(delivered, reqs.length, "every request reported once");
    }), { numRuns: 40, seed: 21 });
});

test("a busy caller keeps its name while one-off callers churn through the last slot into other", async () => {
  const r = await rig(config([component()], { callers: { from: ["header"], header: "x-caller", top_k: 3 } }));
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 20; i++) roundTrip(r, get("/", [["x-caller", "web"]]));
    for (let i = 0; i < 10; i++) roundTrip(r, get("/", [["x-caller", "checkout"]]));
    for (let i = 0; i < 8; i++) roundTrip(r, get("/", [["x-caller", `scanner-${round}-${i}`]]));
    const cs = callersOf(r);
    assert.is(cs.get("web")?.requests, 20, `round ${round}: web by name`);
    assert.is(cs.get("checkout")?.requests, 10, `round ${round}: checkout by name`);
    let rest = 0;
    for (const [k, v] of cs) if (k !== "web" && k !== "checkout") rest += v.requests;
    assert.is(rest, 8, "the one-off callers, by name or as other");
  }
});

test("an observed component is counted with its callers and left where the route sends it: no routing header, no mirror", async () => {
  const r = await rig(config([component(), { name: "catalog", authorities: ["catalog.svc"], primary_cluster: "catalog", observe: true }], byHeader));
  for (let i = 0; i < 20; i++) {
    const s = roundTrip(r, get("/c", [["x-caller", "web"]], "catalog.svc"), { status: i < 2 ? 503 : 200 });
    assert.is(s.requestHeadersMap!.get("x-shadowmesh-cluster"), undefined, "no routing header");
  }
  assert.is(r.callouts.takeHttp().length, 0, "nothing mirrored");
  const t = totals(tickReports(r)).get("catalog")!;
  assert.is(t.targets.get("PRIMARY")!.requests, 20);
  assert.is(t.reads, 20);
  assert.equal(t.callers.get("web"), { requests: 20, errors: 2, latencyUsSum: 20 * 5000 });
});

const rejected: [string, Record<string, unknown>, RegExp][] = [
  ["unknown source", { callers: { from: ["header", "cookie"], header: "x-c" } }, /callers\.from\[1\]: must be one of peer, header, address, node, got "cookie"/],
  ["header without its name", { callers: { from: ["header"] } }, /callers\.header: is required when "from" lists header/],
  ["no sources", { callers: { from: [] } }, /callers\.from: must be a non-empty array/],
  ["top_k too big", { callers: { from: ["node"], top_k: 65 } }, /callers\.top_k: must be between 1 and 64, got 65/],
  ["observed and split", { components: [component({ observe: true, shadow_weight_bp: 10 })] }, /components\[0\]\.shadow_cluster: must not be set on an observed component/],
  ["observed with a mirror", { components: [{ name: "c", authorities: ["c"], primary_cluster: "c", observe: true, mirror: { fraction: 0.1 } }] }, /components\[0\]\.mirror: must not be set on an observed component/],
];
for (const [name, extra, why] of rejected) {
  test(`callers and observe: rejected (${name}), with the field named`, async () => {
    const r = await rig(config([component()]));
    const cfg = { telemetry: { cluster: "controller" }, components: [component()], ...extra };
    assert.not.ok(r.host.reconfigure(JSON.stringify(cfg)));
    const errors = r.host.logsAt(LogLevel.Error);
    assert.ok(errors.some((m) => why.test(m)), `logged: ${errors.join(" | ")}`);
  });
}

test.run();
