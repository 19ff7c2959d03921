// The embedded data plane on Envoy's bootstrap static_resources alone (no controller): the reactive
// baseline's listener and cluster (world/demo/pg-reactive.ts, as envoy/reactive-baseline.yaml) proxy
// to priority 0 while it answers, eject it on the 5th consecutive 5xx and send everything to
// priority 1; a bad static resource is refused at start() naming it, as Envoy refuses the bootstrap.
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { silentLogger } from "../../controller/log.js";
import { pack } from "../../protocol/protos.js";
import { reactiveStaticResources } from "../../world/demo/pg-reactive.js";

async function upstream(name: string, status: () => number): Promise<{ port: number; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const s = http.createServer((_req, res) => { hits++; res.writeHead(status(), { "content-type": "text/plain" }); res.end(name); });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  return { port: (s.address() as { port: number }).port, hits: () => hits, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

async function get(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/orders/1`, { signal: AbortSignal.timeout(3000) });
  return { status: r.status, body: await r.text() };
}

test("static resources: priority 0 while healthy; five 5xx eject it and priority 1 takes everything", async () => {
  let primaryStatus = 200;
  const a = await upstream("primary", () => primaryStatus), b = await upstream("shadow", () => 200);
  const dp = new EmbeddedDataPlane({ staticResources: reactiveStaticResources({ primary: { address: "127.0.0.1", port: a.port }, shadow: { address: "127.0.0.1", port: b.port } }), node: { id: "t", cluster: "t" }, log: silentLogger() });
  try {
    dp.start();
    assert.is(dp.xdsStats, null, "no ADS stream without xds");
    const port = await dp.listenerPort("orders-ingress", 5000);
    for (let i = 0; i < 10; i++) assert.equal(await get(port), { status: 200, body: "primary" });
    assert.is(b.hits(), 0, "priority 1 takes nothing while priority 0 is healthy");
    primaryStatus = 503;
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) seen.push((await get(port)).body);
    assert.equal(seen.slice(0, 5), ["primary", "primary", "primary", "primary", "primary"], "the first five 5xx reach the primary");
    assert.equal(seen.slice(5), ["shadow", "shadow", "shadow", "shadow", "shadow"], "ejected on the 5th: everything to priority 1");
    assert.is(dp.upstreams.outlierDetector("orders")!.log[0]!.kind, "eject");
  } finally { await dp.close(); await a.close(); await b.close(); }
});

test("static resources: none at all, or a bad one, is refused naming what is wrong", () => {
  assert.throws(() => new EmbeddedDataPlane({ node: { id: "t", cluster: "t" }, log: silentLogger() }), /needs xds .* or staticResources/);
  const bad = pack("envoy.config.cluster.v3.Cluster", { name: "orders", type: "STATIC", connect_timeout: { seconds: 1 } });
  const dp = new EmbeddedDataPlane({ staticResources: { clusters: [bad] }, node: { id: "t", cluster: "t" }, log: silentLogger() });
  assert.throws(() => dp.start(), /orders.*load_assignment: a STATIC cluster needs endpoints/);
  void dp.close();
});

test.run();
