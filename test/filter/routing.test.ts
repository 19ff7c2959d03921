// Classification and the weighted, sticky split carried by the routing header.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { component, config, get, post, rig, roundTrip, type Rig } from "../support/filter.js";

const route = (r: Rig, headers: [string, string][]) => roundTrip(r, headers).requestHeadersMap!.get("x-shadowmesh-cluster");

test("reads and writes go to the primary at weight 0; writes stay there at weight 100%", async () => {
  const r = await rig(config([component()]));
  assert.is(route(r, get()), "orders-primary");
  assert.is(route(r, post()), "orders-primary");
  r.host.reconfigure(config([component({ shadow_weight_bp: 10000 })]));
  assert.is(route(r, get()), "orders-shadow");
  assert.is(route(r, [[":method", "HEAD"], [":path", "/"], [":authority", "orders.svc"]]), "orders-shadow");
  for (const m of ["POST", "PUT", "PATCH", "DELETE"]) {
    assert.is(route(r, [[":method", m], [":path", "/"], [":authority", "orders.svc"]]), "orders-primary", `${m} is a write`);
  }
});

test("after promotion the write target is the shadow", async () => {
  const r = await rig(config([component({ write_target: "shadow", shadow_weight_bp: 10000 })]));
  assert.is(route(r, post()), "orders-shadow");
});

test("read rule: methods, path prefixes, header match", async () => {
  const r = await rig(config([component({
    shadow_weight_bp: 10000,
    read_rule: { methods: ["GET", "POST"], path_prefixes: ["/query/", "/v1/get"], header: { name: "x-read-only", value: "yes" } },
  })]));
  assert.is(route(r, get("/query/a", [["x-read-only", "yes"]])), "orders-shadow");
  assert.is(route(r, post("/v1/get-items", [["x-read-only", "yes"]])), "orders-shadow", "POST listed as a read method");
  assert.is(route(r, get("/write/a", [["x-read-only", "yes"]])), "orders-primary", "path outside the prefixes");
  assert.is(route(r, get("/query/a", [["x-read-only", "no"]])), "orders-primary", "header value differs");
  assert.is(route(r, get("/query/a")), "orders-primary", "header missing");
  assert.is(route(r, [[":method", "HEAD"], [":path", "/query/a"], [":authority", "orders.svc"], ["x-read-only", "yes"]]), "orders-primary",
    "HEAD not in the configured methods");
});

test("components are matched by :authority, with or without port, else the default, else untouched", async () => {
  const r = await rig(config([
    component({ shadow_weight_bp: 10000 }),
    component({ name: "cat", authorities: [], default: true, primary_cluster: "cat-p", shadow_cluster: "cat-s" }),
  ]));
  assert.is(route(r, get("/", [], "orders.svc:8080")), "orders-shadow");
  assert.is(route(r, get("/", [], "unknown.svc")), "cat-p");
  const r2 = await rig(config([component()]));
  const s = roundTrip(r2, get("/", [], "unknown.svc"));
  assert.is(s.requestHeadersMap!.get("x-shadowmesh-cluster"), undefined, "no component, no change");
  assert.not.ok(s.routeCacheCleared);
});

test("a client's routing header is overwritten, never trusted", async () => {
  const r = await rig(config([component()]));
  assert.is(route(r, post("/", [["x-shadowmesh-cluster", "orders-shadow"]])), "orders-primary");
});

test("mirror-marked requests are not split again: reads keep to the shadow, writes to the write target", async () => {
  const r = await rig(config([component({ mirror: { fraction: 1 } })]));
  assert.is(route(r, get("/", [["x-shadowmesh-mirror", "1"]])), "orders-shadow");
  assert.is(route(r, post("/", [["x-shadowmesh-mirror", "1"]])), "orders-primary", "a forged marker cannot send a write to the replica");
  assert.is(r.callouts.http.length, 0, "and they are never mirrored");
});

/** Binomial 3-sigma bound for n trials at probability p. */
const within3Sigma = (k: number, n: number, p: number) => Math.abs(k - n * p) <= 3 * Math.sqrt(n * p * (1 - p));

test("split share within 3 sigma, without and with a stickiness key", async () => {
  for (const sticky of [undefined, { header: "x-user" }]) {
    const r = await rig(config([component({ shadow_weight_bp: 2500, ...(sticky ? { sticky } : {}) })]));
    const n = 8000;
    let shadow = 0;
    for (let i = 0; i < n; i++) if (route(r, get("/", sticky ? [["x-user", `user-${i}`]] : [])) === "orders-shadow") shadow++;
    assert.ok(within3Sigma(shadow, n, 0.25), `${sticky ? "sticky" : "random"}: ${shadow}/${n} near 25%`);
  }
});

test("stickiness: the same key always lands on the same side, and a rising weight never moves a client back", async () => {
  const keys = Array.from({ length: 1500 }, (_, i) => `session-${i * 7919}`);
  const r = await rig(config([component({ sticky: { cookie: "sid" } })]));
  let previous = new Set<string>();
  for (const w of [100, 500, 2500, 5000, 7500, 10000]) {
    r.host.reconfigure(config([component({ shadow_weight_bp: w, sticky: { cookie: "sid" } })]));
    const now = new Set<string>();
    for (const k of keys) {
      const first = route(r, get("/", [["cookie", `theme=dark; sid=${k}; x=1`]]));
      const again = route(r, get("/", [["cookie", `sid=${k}`]]));
      assert.is(first, again, "deterministic per key");
      if (first === "orders-shadow") now.add(k);
    }
    for (const k of previous) assert.ok(now.has(k), `client ${k} moved back at weight ${w}`);
    assert.ok(within3Sigma(now.size, keys.length, w / 10000), `weight ${w}: ${now.size}/${keys.length}`);
    previous = now;
  }
});

test("placement is independent across components (salted by component name)", async () => {
  const r = await rig(config([
    component({ shadow_weight_bp: 5000, sticky: { header: "x-user" } }),
    component({ name: "users", authorities: ["users.svc"], primary_cluster: "u-p", shadow_cluster: "u-s", shadow_weight_bp: 5000, sticky: { header: "x-user" } }),
  ]));
  let same = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const a = route(r, get("/", [["x-user", `u${i}`]])) === "orders-shadow";
    const b = route(r, get("/", [["x-user", `u${i}`]], "users.svc")) === "u-s";
    if (a === b) same++;
  }
  assert.ok(within3Sigma(same, n, 0.5), `${same}/${n} agree, as for independent coins`);
});

test.run();
