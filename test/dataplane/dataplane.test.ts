// The embedded data plane against the controller's real ADS server: it warms its listener from
// LDS/RDS/CDS/EDS/ECDS, ACKs what it applies and NACKs (keeping the previous configuration) what it
// cannot, routes by the filter's routing header or by weighted clusters, and behaves as Envoy does
// for timeouts, refused connections, streamed bodies and keep-alive upstream connections.
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../controller/log.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { AdsServer } from "../../controller/xds/server.js";
import { Snapshot } from "../../controller/xds/snapshot.js";
import { pack } from "../../protocol/protos.js";
import { ROUTER_FILTER, buildCluster, buildLoadAssignment } from "../../controller/xds/resources.js";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { mulberry32 } from "../../host/random.js";
import { component, controlPlane } from "../support/xds.js";

const WASM = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "build", "shadowmesh.wasm");

/** An upstream that answers with its name; /slow never answers; /echo returns the request body. */
async function backend(name: string) {
  let connections = 0;
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    if (req.url === "/slow") return; // never answers
    if (req.url === "/echo") { res.writeHead(200, { "content-type": "application/octet-stream" }); req.pipe(res); return; }
    req.resume();
    req.on("end", () => { res.writeHead(200, { "content-type": "text/plain", "x-served-by": name }); res.end(name); });
  });
  server.on("connection", () => { connections++; });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, connections: () => connections, close: () => { server.closeAllConnections(); server.close(); } };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
function send(port: number, o: { method?: string; path?: string; host?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, agent, method: o.method ?? "GET", path: o.path ?? "/", headers: { host: o.host ?? "a.svc", ...o.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on("error", reject);
    req.end(o.body);
  });
}

test("warms from ADS, ACKs every update, and routes by the filter: reads follow the weight, writes the write target", async () => {
  const [p, s] = [await backend("primary"), await backend("shadow")];
  const settings: Record<string, Record<string, unknown>> = { a: { sticky: { header: "x-user" } } };
  const cp = await controlPlane([component("a", p.port, s.port)], {
    envoyListener: { name: "ingress", address: "127.0.0.1", port: 0 }, wasm: { filename: WASM }, filterSettings: settings,
  });
  const dp = new EmbeddedDataPlane({ xds: `127.0.0.1:${cp.port}`, node: { id: "dp-1", cluster: "test", zone: "z1" }, log: silentLogger() });
  try {
    dp.start();
    const port = await dp.listenerPort("ingress");
    assert.ok((await cp.router.verify(cp.initial, 5000)).ok, "the initial snapshot is ACKed");
    const r0 = await send(port, { path: "/kv/x", headers: { "x-user": "u1" } });
    assert.is(r0.body.toString(), "primary");
    assert.is(r0.headers["x-served-by"], "primary");

    let v = cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10_000 }, mirrorFraction: 0, writeTarget: "primary" });
    const verdict = await cp.router.verify(v, 5000);
    assert.ok(verdict.ok, `ACKed: ${JSON.stringify(verdict)}`);
    assert.equal(verdict.acked, ["dp-1"]);
    for (let i = 0; i < 20; i++) {
      assert.is((await send(port, { path: `/kv/${i}`, headers: { "x-user": `u${i}` } })).body.toString(), "shadow", "reads follow the weight");
      assert.is((await send(port, { method: "PUT", path: `/kv/${i}`, body: "v", headers: { "x-user": `u${i}` } })).body.toString(), "primary", "writes stay on the write target");
    }
    v = cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10_000 }, mirrorFraction: 0, writeTarget: "shadow" });
    assert.ok((await cp.router.verify(v, 5000)).ok);
    assert.is((await send(port, { method: "PUT", path: "/kv/1", body: "v" })).body.toString(), "shadow");

    // A configuration the filter refuses is NACKed with its reason; the previous one keeps serving.
    settings.a!.bogus = true;
    v = cp.router.setWeights("a", { primary: 10_000, shadow: 0 });
    const nack = await cp.router.verify(v, 5000);
    assert.not.ok(nack.ok);
    assert.is(nack.nacked[0]?.node, "dp-1");
    assert.match(nack.nacked[0]!.error, /extension config shadowmesh: the Wasm plugin rejected its configuration.*bogus/);
    assert.is((await send(port, { path: "/kv/1", headers: { "x-user": "u1" } })).body.toString(), "shadow", "still the last accepted filter configuration");
    delete settings.a!.bogus;
    v = cp.router.setWeights("a", { primary: 10_000, shadow: 0 });
    assert.ok((await cp.router.verify(v, 5000)).ok, "a good configuration is ACKed again");
    assert.is((await send(port, { path: "/kv/1", headers: { "x-user": "u1" } })).body.toString(), "primary");
    assert.is(dp.xdsStats!.nacks, 1);
  } finally {
    await dp.close(); await cp.close(); p.close(); s.close();
  }
});

/** A hand-built snapshot: a listener with only the router, over a route given by the test. */
async function plainPlane(route: Record<string, unknown>, clusters: { name: string; port: number }[], extraListener?: Record<string, unknown>) {
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, logger: silentLogger() });
  const xdsPort = await server.listen("127.0.0.1:0");
  const hcm = (filters: unknown[]) => pack("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
    stat_prefix: "plain", rds: { config_source: { ads: {}, resource_api_version: "V3" }, route_config_name: "plain" }, http_filters: filters,
  });
  const listener = (name: string, filters: unknown[]) => ({
    name, address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm(filters) }] }],
  });
  const specs = clusters.map((c) => ({ name: c.name, locality: {}, endpoints: [{ address: "127.0.0.1", port: c.port }] }));
  let n = 0;
  const publish = (listeners: Record<string, unknown>[]) => {
    const version = `t${++n}`;
    cache.setSnapshot("default", Snapshot.build(version, {
      listeners, routes: [{ name: "plain", ...route }], clusters: specs.map(buildCluster), endpoints: specs.map(buildLoadAssignment), extensions: [],
    }));
    return version;
  };
  const first = publish([listener("plain", [ROUTER_FILTER]), ...(extraListener ? [extraListener] : [])]);
  return { cache, server, xdsPort, publish, listener, first };
}

test("weighted_clusters split without any filter, as Envoy's router does", async () => {
  const [p, s] = [await backend("primary"), await backend("shadow")];
  const plane = await plainPlane({
    virtual_hosts: [{ name: "a", domains: ["a.svc"], routes: [{ match: { prefix: "/" }, route: { weighted_clusters: { clusters: [{ name: "a-primary", weight: { value: 75 } }, { name: "a-shadow", weight: { value: 25 } }] } } }] }],
  }, [{ name: "a-primary", port: p.port }, { name: "a-shadow", port: s.port }]);
  const dp = new EmbeddedDataPlane({ xds: `127.0.0.1:${plane.xdsPort}`, node: { id: "dp-w", cluster: "test" }, log: silentLogger(), random: mulberry32(5) });
  try {
    dp.start();
    const port = await dp.listenerPort("plain");
    let shadow = 0;
    const n = 1000;
    for (let i = 0; i < n; i++) if ((await send(port)).body.toString() === "shadow") shadow++;
    assert.ok(Math.abs(shadow / n - 0.25) < 0.04, `shadow share ${shadow / n} is about 25%`);
    assert.is((await send(port, { host: "other.svc" })).status, 404, "no virtual host: 404, as Envoy (route_not_found)");
    // Keep-alive: a thousand requests over a handful of upstream connections.
    assert.ok(p.connections() + s.connections() <= 16, `upstream connections reused (${p.connections() + s.connections()} opened)`);
  } finally {
    await dp.close(); await plane.server.close(); p.close(); s.close();
  }
});

test("route timeout gives 504, a refused connection 503, bodies stream both ways, and bad updates are NACKed", async () => {
  const b = await backend("b");
  const dead = await backend("dead");
  const deadPort = dead.port;
  dead.close();
  const plane = await plainPlane({
    virtual_hosts: [{ name: "a", domains: ["a.svc"], routes: [
      { match: { prefix: "/dead" }, route: { cluster: "dead" } },
      { match: { prefix: "/" }, route: { cluster: "b", timeout: { nanos: 300_000_000 } } },
    ] }],
  }, [{ name: "b", port: b.port }, { name: "dead", port: deadPort }]);
  const dp = new EmbeddedDataPlane({ xds: `127.0.0.1:${plane.xdsPort}`, node: { id: "dp-t", cluster: "test" }, log: silentLogger() });
  try {
    dp.start();
    const port = await dp.listenerPort("plain");
    const t0 = Date.now();
    const slow = await send(port, { path: "/slow" });
    assert.is(slow.status, 504);
    assert.is(slow.body.toString(), "upstream request timeout");
    assert.ok(Date.now() - t0 >= 280 && Date.now() - t0 < 2000, "after the route's 300 ms timeout");
    const refused = await send(port, { path: "/dead" });
    assert.is(refused.status, 503);
    assert.match(refused.body.toString(), /upstream connect error or disconnect\/reset before headers. reset reason: connection failure/);
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    big.write("start", 0); big.write("end", big.length - 3);
    const echo = await send(port, { method: "POST", path: "/echo", body: big });
    assert.is(echo.status, 200);
    assert.ok(echo.body.equals(big), "3 MiB streamed through unchanged");

    // An unknown HTTP filter is NACKed with Envoy's reason; the serving listener is untouched.
    const bad = plane.listener("bad", [{ name: "envoy.filters.http.lua", typed_config: pack("google.protobuf.StringValue", { value: "x" }) }, ROUTER_FILTER]);
    const v = plane.publish([plane.listener("plain", [ROUTER_FILTER]), bad]);
    const verdict = await plane.server.verify("default", v, 5000);
    assert.not.ok(verdict.ok);
    assert.match(verdict.nacked[0]!.error, /Didn't find a registered implementation for type type.googleapis.com\/google.protobuf.StringValue/);
    assert.is((await send(port, { path: "/" })).body.toString(), "b", "the previous listeners keep serving");
  } finally {
    await dp.close(); await plane.server.close(); b.close();
  }
});

test.run();
