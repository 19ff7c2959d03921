// Fail open: when a host call fails, the request passes untouched and the error is counted.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Action, Status } from "../../host/index.js";
import { component, config, get, rig, tickReports } from "../support/filter.js";

const faults: [string, number, string][] = [
  ["proxy_get_header_map_pairs", Status.InternalFailure, "request headers unavailable"],
  ["proxy_replace_header_map_value", Status.BadArgument, "could not set the routing header"],
  ["proxy_get_header_map_value", Status.NotFound, "response :status unavailable"],
  ["proxy_http_call", Status.InternalFailure, "proxy_http_call to the shadow failed"],
  ["proxy_set_effective_context", Status.BadArgument, "set_effective_context failed"],
];

for (const [fn, status, message] of faults) {
  test(`${fn} failing: the request goes through and the error is counted`, async () => {
    const r = await rig(config([component({ mirror: { fraction: 1 } })]));
    r.host.injectFault(fn, status);
    const s = r.host.newHttpStream();
    assert.is(s.sendRequestHeaders(get("/x", [["x-a", "1"]]), true), Action.Continue);
    s.sendResponseHeaders([[":status", "200"]], false);
    s.sendResponseBody("body", true);
    s.complete();
    r.host.injectFault(fn, undefined);
    assert.not.ok(r.host.worker(0).failed, "no trap");
    assert.is(s.localResponse, undefined);
    assert.is(s.requestHeadersMap!.get("x-a"), "1");
    assert.is(Buffer.concat(s.forwardedResponseBody).toString(), "body");
    const reports = tickReports(r);
    assert.ok((r.host.metricValue("shadowmesh.filter_errors") ?? 0) >= 1, "shadowmesh.filter_errors counts it");
    assert.ok(reports[0]!.filterErrors >= 1, "and the report carries it");
    assert.ok(r.host.logs.some((l) => l.message.includes(message)), `logged: ${message}`);
    const after = r.host.newHttpStream();
    after.sendRequestHeaders(get(), true);
    assert.is(after.requestHeadersMap!.get("x-shadowmesh-cluster"), "orders-primary", "the next request is handled normally");
  });
}

test("an allocator the host cannot use (memory exhausted) is reported, never a trap", async () => {
  const r = await rig();
  const huge = "v".repeat(300 * 1024); // larger than the per-callback arena
  const s = r.host.newHttpStream();
  s.sendRequestHeaders(get("/", [["x-big", huge]]), true);
  assert.not.ok(r.host.worker(0).failed);
  assert.is(s.requestHeadersMap!.get("x-shadowmesh-cluster"), "orders-primary", "large headers are handled through the heap fallback");
});

test("error logs are rate-limited to one a second", async () => {
  const r = await rig();
  r.host.injectFault("proxy_get_header_map_pairs", Status.InternalFailure);
  for (let i = 0; i < 100; i++) r.host.newHttpStream().sendRequestHeaders(get(), true);
  assert.is(r.host.logs.filter((l) => l.message.includes("request headers unavailable")).length, 1);
  r.clock.advance(1000);
  assert.is(r.host.metricValue("shadowmesh.filter_errors"), 100);
});

test.run();
