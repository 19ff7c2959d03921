// Envoy's outlier detection and priority failover as the embedded data plane implements them: the
// defaults eject on the 5th consecutive 5xx, keep the host out for 30 s x its ejection count and
// bring it back on an interval tick, lower the multiplier while it stays in service; a fully
// ejected priority 0 sends everything to priority 1 (the reactive baseline's locality failover).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ENVOY_OUTLIER_DEFAULTS, OutlierDetector } from "../../dataplane/outlier.js";
import { Upstreams } from "../../dataplane/upstreams.js";
import { parseCluster } from "../../dataplane/resources.js";
import { pack } from "../../protocol/protos.js";
import { mulberry32 } from "../../host/random.js";

test("consecutive 5xx: the 5th ejects at once; a success in between resets the count", () => {
  const d = new OutlierDetector(ENVOY_OUTLIER_DEFAULTS, 0, () => 0.5);
  d.setHosts(["a", "b"]);
  for (let i = 0; i < 4; i++) d.report("a", 503, 100 + i);
  d.report("a", 200, 105);
  for (let i = 0; i < 4; i++) d.report("a", 500, 110 + i);
  assert.is(d.isEjected("a", 120), false, "4 after a success do not eject");
  d.report("a", "local_origin_error", 121);
  assert.is(d.isEjected("a", 121), true, "the 5th consecutive (a connect failure counts as 5xx) ejects inline");
  assert.is(d.isEjected("b", 121), false);
  assert.equal(d.log.map((e) => e.kind), ["eject"]);
});

test("ejection lasts base x multiplier and ends on an interval tick; the multiplier decays while healthy", () => {
  const d = new OutlierDetector(ENVOY_OUTLIER_DEFAULTS, 0, () => 0.5);
  d.setHosts(["a", "b", "c"]);
  const fail = (t: number) => { for (let i = 0; i < 5; i++) d.report("a", 502, t); };
  fail(1_000);
  // Ejected at 1 s for 30 s: still out at the 30 s tick, back at the 40 s tick.
  assert.is(d.isEjected("a", 39_999), true);
  assert.is(d.isEjected("a", 40_000), false);
  fail(41_000); // second ejection: 60 s, so back at the first tick at or after 101 s (110 s)
  assert.is(d.isEjected("a", 109_999), true);
  assert.is(d.isEjected("a", 110_000), false);
  // In service for two intervals (120 s, 130 s): multiplier 2 -> 0, so the next ejection is 30 s again.
  assert.is(d.isEjected("a", 135_000), false);
  fail(135_000);
  const last = d.log.at(-1)!;
  assert.is(last.kind, "eject");
  assert.is(last.kind === "eject" && last.forMs, 30_000);
});

test("max_ejection_percent caps ejections, but one host is always ejectable", () => {
  const d = new OutlierDetector(ENVOY_OUTLIER_DEFAULTS, 0, () => 0.5);
  d.setHosts(["a", "b"]);
  for (let i = 0; i < 5; i++) d.report("a", 500, 10);
  for (let i = 0; i < 5; i++) d.report("b", 500, 10);
  assert.is(d.isEjected("a", 10), true, "the first host is ejected although 50% > 10%");
  assert.is(d.isEjected("b", 10), false, "a second would exceed max_ejection_percent");
});

test("enforcing_consecutive_gateway_failure defaults to 0: gateway failures alone never eject", () => {
  const d = new OutlierDetector({ ...ENVOY_OUTLIER_DEFAULTS, consecutive5xx: 1000 }, 0, () => 0);
  d.setHosts(["a"]);
  for (let i = 0; i < 50; i++) d.report("a", 503, 10);
  assert.is(d.isEjected("a", 10), false);
  const e = new OutlierDetector({ ...ENVOY_OUTLIER_DEFAULTS, consecutive5xx: 1000, enforcingConsecutiveGatewayFailure: 100 }, 0, () => 0);
  e.setHosts(["a"]);
  for (let i = 0; i < 4; i++) e.report("a", 504, 10);
  e.report("a", 500, 10); // a 500 is not a gateway failure: the run starts again
  for (let i = 0; i < 4; i++) e.report("a", 502, 10);
  assert.is(e.isEjected("a", 10), false);
  e.report("a", "local_origin_error", 10);
  assert.is(e.isEjected("a", 10), true);
});

test("success rate: judged per interval over hosts with enough requests, only with >= 5 such hosts", () => {
  const d = new OutlierDetector(ENVOY_OUTLIER_DEFAULTS, 0, () => 0.5);
  const hosts = ["a", "b", "c", "d", "e", "f"];
  d.setHosts(hosts);
  for (const h of hosts) for (let i = 0; i < 200; i++) d.report(h, h === "f" && i % 3 === 0 ? 500 : 200, 5_000);
  assert.is(d.isEjected("f", 9_999), false, "nothing before the interval ends");
  assert.is(d.isEjected("f", 10_000), true, "f's 66.5% is below mean - 1.9 stdev");
  assert.is(d.ejectedCount(10_000), 1);
  const few = new OutlierDetector(ENVOY_OUTLIER_DEFAULTS, 0, () => 0.5);
  few.setHosts(["a", "b", "f"]);
  for (const h of ["a", "b", "f"]) for (let i = 0; i < 200; i++) few.report(h, h === "f" && i % 3 === 0 ? 500 : 200, 5_000);
  assert.is(few.isEjected("f", 10_000), false, "3 hosts are below success_rate_minimum_hosts");
});

function failoverCluster(outlier: Record<string, unknown> | undefined) {
  return parseCluster(pack("envoy.config.cluster.v3.Cluster", {
    name: "orders", type: "STATIC", connect_timeout: { seconds: 1 },
    ...(outlier ? { outlier_detection: outlier } : {}),
    load_assignment: {
      cluster_name: "orders",
      endpoints: [
        { locality: { zone: "zone-a" }, priority: 0, lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } } }] },
        { locality: { zone: "zone-b" }, priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.1.1", port_value: 80 } } } }] },
      ],
    },
  }));
}

test("priority failover: everything to priority 0 while healthy, to priority 1 once it is ejected, back after the ejection", () => {
  let now = 0;
  const u = new Upstreams({ nowMs: () => now, random: mulberry32(7) });
  const c = failoverCluster({});
  assert.equal(c.outlierDetection, ENVOY_OUTLIER_DEFAULTS, "an empty outlier_detection means Envoy's defaults");
  u.setClusters([c]);
  const zones = (n: number) => { const z: Record<string, number> = {}; for (let i = 0; i < n; i++) { const e = u.pick("orders")!; z[e.zone!] = (z[e.zone!] ?? 0) + 1; } return z; };
  assert.equal(zones(100), { "zone-a": 100 });
  for (let i = 0; i < 5; i++) { now += 10; u.report("orders", u.pick("orders")!, "local_origin_error"); }
  assert.equal(zones(100), { "zone-b": 100 }, "priority 0 has 0% health: all load spills to priority 1");
  now = 40_000;
  assert.equal(zones(100), { "zone-a": 100 }, "back after 30 s, on the 40 s interval tick");
});

test("outlier_detection: unknown semantics are refused by name, percentages are range-checked", () => {
  assert.throws(() => failoverCluster({ split_external_local_origin_errors: true }), (e: Error) => /outlier_detection\.split_external_local_origin_errors: not supported/.test(e.message));
  assert.throws(() => failoverCluster({ max_ejection_percent: { value: 150 } }), (e: Error) => /max_ejection_percent: must be at most 100, got 150/.test(e.message));
  const c = failoverCluster({ consecutive_5xx: { value: 3 }, base_ejection_time: { seconds: 5 } });
  assert.is(c.outlierDetection!.consecutive5xx, 3);
  assert.is(c.outlierDetection!.baseEjectionTimeMs, 5_000);
  assert.is(c.outlierDetection!.intervalMs, 10_000);
  assert.is(failoverCluster(undefined).outlierDetection, undefined);
});

test.run();
