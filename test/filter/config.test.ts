// Plugin configuration: what is accepted, what is rejected (with the field named), and that a
// rejected configuration leaves the previous one in force.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LogLevel } from "../../host/index.js";
import { component, config, get, post, rig, roundTrip } from "../support/filter.js";

test("a full configuration is accepted", async () => {
  const r = await rig(config([
    component({
      authorities: ["orders.svc", "orders.svc.cluster.local"], write_target: "primary",
      read_rule: { methods: ["GET", "HEAD", "POST"], path_prefixes: ["/v1/"], header: { name: "x-read-only", value: "true" } },
      mirror: { fraction: 0.05, max_per_second: 50, max_in_flight: 8, timeout_ms: 800, remove_headers: ["authorization"], compare_body_max_bytes: 65536 },
      shadow_weight_bp: 100, sticky: { cookie: "session" }, routing_header: "x-route",
    }),
    component({ name: "catalog", authorities: [], default: true, primary_cluster: "cat-a", shadow_cluster: "cat-b", sticky: { header: "x-user" } }),
  ], { mirror_marker_header: "x-mirror", node_id: "node-a", telemetry: { cluster: "controller", interval_ms: 500, timeout_ms: 300 } }));
  assert.ok(r.host.logsAt(LogLevel.Info).some((m) => /configuration accepted \(2 components/.test(m)));
});

const rejected: [string, unknown, RegExp][] = [
  ["not JSON", "{components: []", /invalid JSON: expected a string key at byte 1/],
  ["not an object", "[1,2]", /configuration: must be a JSON object, got an array/],
  ["no components", {}, /components: is required/],
  ["empty components", { components: [] }, /components: must list at least one component/],
  ["unknown top-level field", { components: [component()], telemtry: {} }, /telemtry: unknown field/],
  ["unknown component field", { components: [component({ weight: 5 })] }, /components\[0\]\.weight: unknown field/],
  ["missing primary", { components: [{ name: "a", authorities: ["a"], shadow_cluster: "s" }] }, /components\[0\]\.primary_cluster: is required/],
  ["fraction above 1", { components: [component({ mirror: { fraction: 2 } })] }, /components\[0\]\.mirror\.fraction: must be between 0 and 1, got 2/],
  ["fraction as string", { components: [component({ mirror: { fraction: "0.1" } })] }, /mirror\.fraction: must be a number, got a string/],
  ["weight above 10000", { components: [component({ shadow_weight_bp: 10001 })] }, /shadow_weight_bp: must be between 0 and 10000/],
  ["fractional weight", { components: [component({ shadow_weight_bp: 1.5 })] }, /shadow_weight_bp: must be an integer/],
  ["upper-case header", { components: [component({ routing_header: "X-Route" })] }, /routing_header: must be a lower-case HTTP header name/],
  ["lower-case method", { components: [component({ read_rule: { methods: ["get"] } })] }, /read_rule\.methods\[0\]: must be an upper-case HTTP method/],
  ["prefix without slash", { components: [component({ read_rule: { path_prefixes: ["v1"] } })] }, /path_prefixes\[0\]: must start with '\/'/],
  ["pseudo-header removal", { components: [component({ mirror: { remove_headers: [":path"] } })] }, /remove_headers\[0\]: pseudo-headers cannot be removed/],
  ["sticky with both", { components: [component({ sticky: { header: "a", cookie: "b" } })] }, /sticky: must set exactly one/],
  ["bad write target", { components: [component({ write_target: "both" })] }, /write_target: must be "primary" or "shadow", got "both"/],
  ["duplicate name", { components: [component(), component({ authorities: ["x"] })] }, /components\[1\]\.name: duplicates components\[0\]\.name "orders"/],
  ["shared authority", { components: [component(), component({ name: "b" })] }, /components\[1\]\.authorities\[0\]: is already claimed by components\[0\]/],
  ["two defaults", { components: [component({ default: true }), component({ name: "b", authorities: ["b"], default: true })] }, /components\[1\]\.default: only one component/],
  ["no authority, not default", { components: [component({ authorities: [] })] }, /authorities: is required unless "default" is true/],
  ["telemetry interval too small", { components: [component()], telemetry: { cluster: "c", interval_ms: 5 } }, /telemetry\.interval_ms: must be between 100/],
  ["telemetry stream as string", { components: [component()], telemetry: { cluster: "c", stream: "yes" } }, /telemetry\.stream: must be a boolean, got a string/],
  ["floor not an object", { components: [component({ floor: true })] }, /components\[0\]\.floor: must be an object, got a boolean/],
  ["unknown floor field", { components: [component({ floor: { threshold: 3 } })] }, /components\[0\]\.floor\.threshold: unknown field/],
  ["floor share above 1", { components: [component({ floor: { failure_share: 2 } })] }, /components\[0\]\.floor\.failure_share: must be between 0 and 1, got 2/],
  ["floor share 0", { components: [component({ floor: { failure_share: 0 } })] }, /components\[0\]\.floor\.failure_share: must be greater than 0/],
  ["floor probe fraction 0", { components: [component({ floor: { probe_fraction: 0 } })] }, /components\[0\]\.floor\.probe_fraction: must be greater than 0/],
  ["floor consecutive 0", { components: [component({ floor: { consecutive_failures: 0 } })] }, /floor\.consecutive_failures: must be between 1 and 1000, got 0/],
  ["floor consecutive fractional", { components: [component({ floor: { consecutive_failures: 2.5 } })] }, /floor\.consecutive_failures: must be an integer, got 2\.5/],
  ["floor min requests", { components: [component({ floor: { min_requests: 100001 } })] }, /floor\.min_requests: must be between 1 and 100000/],
  ["floor window", { components: [component({ floor: { window_ms: 500 } })] }, /floor\.window_ms: must be between 1000 and 60000, got 500/],
  ["floor base ejection", { components: [component({ floor: { base_ejection_ms: 50 } })] }, /floor\.base_ejection_ms: must be between 100 and 3600000/],
  ["floor max below base", { components: [component({ floor: { base_ejection_ms: 20000, max_ejection_ms: 10000 } })] }, /components\[0\]\.floor\.max_ejection_ms: must be at least base_ejection_ms \(20000\), got 10000/],
  ["floor probe successes", { components: [component({ floor: { probe_successes: 1001 } })] }, /floor\.probe_successes: must be between 1 and 1000/],
  ["floor shadow_fit as string", { components: [component({ floor: { shadow_fit: "true" } })] }, /floor\.shadow_fit: must be a boolean, got a string/],
  ["hold_writes empty", { components: [component({ hold_writes: "" })] }, /components\[0\]\.hold_writes: must not be empty/],
  ["hold_writes not a string", { components: [component({ hold_writes: true })] }, /components\[0\]\.hold_writes: must be a string, got a boolean/],
  ["hold_writes too long", { components: [component({ hold_writes: "x".repeat(257) })] }, /components\[0\]\.hold_writes: is longer than 256 characters/],
  ["duplicate key", '{"components": [], "components": []}', /duplicate key "components"/],
  ["deep nesting", "[".repeat(100), /nesting deeper than 32/],
  ["empty", "", /configuration: is empty/],
];

for (const [name, cfg, why] of rejected) {
  test(`rejected (${name}), with the field and reason logged, and the previous configuration kept`, async () => {
    const r = await rig(config([component({ shadow_weight_bp: 10000 })]));
    const ok = r.host.reconfigure(typeof cfg === "string" ? cfg : JSON.stringify(cfg));
    assert.not.ok(ok, "the filter rejects it");
    const errors = r.host.logsAt(LogLevel.Error);
    assert.ok(errors.some((m) => why.test(m) && /keeping the previous one/.test(m)), `logged: ${errors.join(" | ")}`);
    const s = roundTrip(r, get());
    assert.is(s.requestHeadersMap!.get("x-shadowmesh-cluster"), "orders-shadow", "the previous configuration still routes");
    assert.not.ok(r.host.worker(0).failed);
  });
}

test("a full floor and hold_writes are accepted; the reason is JSON-escaped once, at configure time", async () => {
  const r = await rig(config([component({
    floor: { enabled: true, shadow_fit: true, consecutive_failures: 5, failure_share: 1, min_requests: 1, window_ms: 1500,
      base_ejection_ms: 100, max_ejection_ms: 100, probe_fraction: 1, probe_successes: 1 },
    hold_writes: "a \"quoted\" \\ reason\nwith\tcontrol \u0001 and ünïcode",
  })]));
  assert.ok(r.host.logsAt(LogLevel.Info).some((m) => /configuration accepted/.test(m)));
  const s = roundTrip(r, post());
  assert.is(s.localResponse!.status, 503);
  assert.equal(JSON.parse(Buffer.from(s.localResponse!.body).toString()), { error: "shadowmesh: writes held: a \"quoted\" \\ reason\nwith\tcontrol \u0001 and ünïcode" });
});

test("an accepted reconfiguration takes effect on the next request", async () => {
  const r = await rig();
  assert.is(roundTrip(r, get()).requestHeadersMap!.get("x-shadowmesh-cluster"), "orders-primary");
  assert.ok(r.host.reconfigure(config([component({ shadow_weight_bp: 10000, routing_header: "x-route" })])));
  const s = roundTrip(r, get());
  assert.is(s.requestHeadersMap!.get("x-route"), "orders-shadow");
  assert.is(roundTrip(r, post()).requestHeadersMap!.get("x-route"), "orders-primary", "writes stay on the primary");
});


test("reconfiguring many times does not grow memory: configuration garbage is collected", async () => {
  const { rig: mk, config: cfg, component: comp } = await import("../support/filter.js");
  const r = await mk();
  const mem = () => (r.host.worker(0).instance.exports.memory as WebAssembly.Memory).buffer.byteLength;
  for (let i = 0; i < 50; i++) r.host.reconfigure(cfg([comp({ shadow_weight_bp: i })]));
  const settled = mem();
  for (let i = 0; i < 2000; i++) {
    assert.ok(r.host.reconfigure(cfg([comp({ shadow_weight_bp: i % 10001, mirror: { fraction: 0.1, remove_headers: ["a", "b", "c"] } })])));
  }
  assert.is(mem(), settled, "no memory.grow over 2000 reconfigurations");
});

test("a VM keeps stats for at most 256 distinct component names: past that a configuration is refused, the previous one stays, memory is bounded", async () => {
  const { rig: mk, config: cfg, component: comp, get, roundTrip } = await import("../support/filter.js");
  const r = await mk();
  const mem = () => (r.host.worker(0).instance.exports.memory as WebAssembly.Memory).buffer.byteLength;
  const batch = (k: number) => cfg(Array.from({ length: 64 }, (_, i) => comp({ name: `c${k}-${i}`, authorities: [`c${k}-${i}.svc`] })));
  // The rig's "orders" plus four batches of 64 would be 257: the fourth is refused.
  for (let k = 0; k < 3; k++) assert.ok(r.host.reconfigure(batch(k)), `batch ${k}`);
  const before = mem();
  assert.not.ok(r.host.reconfigure(batch(3)), "257 distinct names refused");
  assert.ok(r.host.logs.some((l) => /rejected plugin configuration: components: 64 new component names would pass the limit of 256 distinct names this VM keeps stats for \(193 kept\)/.test(l.message)));
  // The previous configuration is in force.
  assert.is(roundTrip(r, get("/", [], "c2-5.svc")).requestHeadersMap!.get("x-shadowmesh-cluster"), "orders-primary");
  // Known names still configure; memory no longer grows with new names.
  assert.ok(r.host.reconfigure(batch(1)));
  for (let k = 4; k < 40; k++) assert.not.ok(r.host.reconfigure(batch(k)));
  assert.is(mem(), before, "no growth from refused names");
});

test.run();
