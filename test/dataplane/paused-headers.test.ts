// A Wasm filter that pauses the request headers (returns Pause from proxy_on_request_headers) holds
// the request, body included, in the embedded data plane as in Envoy (decodeHeaders StopIteration):
// the request goes upstream when the filter continues it from a later callback (here its tick, through
// proxy_set_effective_context), with the headers it changed meanwhile, or it is answered by the
// filter's local response sent then. Before, the data plane answered every paused request 500.
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { silentLogger } from "../../controller/log.js";
import { ordersCluster, wasmListener } from "../support/static-listener.js";

const PROBE = fileURLToPath(new URL("../../build/probe.wasm", import.meta.url));

/** An upstream that echoes what reached it: method, the header the filter added, the body. */
async function echo(): Promise<{ port: number; close: () => Promise<void> }> {
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => { res.writeHead(200, { "content-type": "text/plain" }); res.end(`${req.method} ${req.headers["x-resumed"] ?? "-"} ${Buffer.concat(chunks).toString()}`); });
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  return { port: (s.address() as { port: number }).port, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

/** One worker VM: its root context is 1, and the requests' contexts 2, 3, ... in order. */
async function plane(script: Record<string, unknown>, upstreamPort: number): Promise<{ dp: EmbeddedDataPlane; port: number }> {
  const dp = new EmbeddedDataPlane({ staticResources: { listeners: [wasmListener(PROBE, JSON.stringify(script))], clusters: [ordersCluster(upstreamPort)] }, node: { id: "t", cluster: "t" }, workers: 1, log: silentLogger() });
  dp.start();
  return { dp, port: await dp.listenerPort("ingress", 5000) };
}

/** Every tick, for the streams 2 and 3: mark the request and continue it, twice (the second changes nothing; a stream that is gone fails the calls). */
const resumeEveryTick = [2, 3].flatMap((c) => [["set_effective", c], ["replace_map_value", 0, "x-resumed", "yes"], ["continue", 0], ["continue", 0]]);

test("paused request headers: held until the filter continues them from its tick, then sent upstream with its changes and the body", async () => {
  const up = await echo();
  const { dp, port } = await plane({ on_configure: [["set_tick", 150]], on_tick: resumeEveryTick, return: { on_request_headers: 1 } }, up.port);
  try {
    const t0 = Date.now();
    const get = await fetch(`http://127.0.0.1:${port}/orders/1`, { signal: AbortSignal.timeout(5000) });
    assert.equal([get.status, await get.text()], [200, "GET yes "], "the paused GET went upstream once continued, with the header set while it was held");
    const post = await fetch(`http://127.0.0.1:${port}/orders`, { method: "POST", body: "qty=3", signal: AbortSignal.timeout(5000) });
    assert.equal([post.status, await post.text()], [200, "POST yes qty=3"], "a paused POST keeps its body");
    assert.ok(Date.now() - t0 >= 100, "held until a tick, not passed at once");
    assert.is(dp.stats.upstreamRequests, 2, "each request went upstream once, however often it was continued");
  } finally { await dp.close(); await up.close(); }
});

test("paused request headers answered later by the filter's local response: the client gets it, nothing goes upstream", async () => {
  const up = await echo();
  const { dp, port } = await plane({ on_configure: [["set_tick", 150]], on_tick: [["set_effective", 2], ["local_response", 503, "held_too_long", "writes held", [["x-why", "probe"]]]], return: { on_request_headers: 1 } }, up.port);
  try {
    const r = await fetch(`http://127.0.0.1:${port}/orders`, { method: "POST", body: "qty=1", signal: AbortSignal.timeout(5000) });
    assert.equal([r.status, r.headers.get("x-why"), await r.text()], [503, "probe", "writes held"]);
    assert.is(dp.stats.upstreamRequests, 0, "the held request never reached the upstream");
  } finally { await dp.close(); await up.close(); }
});

test.run();
