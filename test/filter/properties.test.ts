// Property-based tests (fast-check): random configurations, headers, methods, bodies, statuses
// and shadow answers never trap the filter, and never make it change a request it must not.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { LogLevel } from "../../host/index.js";
import { component, config, debugFilterModule, rig, type Rig } from "../support/filter.js";

const SEED = 20261124;
const RUNS = Number(process.env.FC_RUNS ?? 150);

const headerName = fc.oneof(
  fc.constantFrom("x-user", "cookie", "x-shadowmesh-mirror", "x-shadowmesh-cluster", "x-read-only", "authorization", ":status"),
  fc.stringMatching(/^[a-z0-9-]{1,20}$/),
  fc.string({ maxLength: 30 }),
);
const headerValue = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: "binary", maxLength: 40 }), fc.constantFrom("", "sid=abc; theme=x", "1"));
const method = fc.oneof(fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", ""), fc.string({ maxLength: 12 }));
const authority = fc.oneof(fc.constantFrom("orders.svc", "orders.svc:80", "orders.svc:", ":80", "other", ""), fc.string({ maxLength: 30 }));
const status = fc.oneof(fc.constantFrom("200", "404", "503", "99", "1000", "abc", "", "20"), fc.string({ maxLength: 5 }));

const request = fc.record({
  method, authority,
  path: fc.oneof(fc.constantFrom("/", "/query/a", "/v1/get"), fc.string({ maxLength: 80 })),
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 }),
  requestBody: fc.option(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 3 })),
  status,
  responseBody: fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }),
  shadow: fc.oneof(fc.constant("fail" as const), fc.constant("timeout" as const), fc.constant("never" as const),
    fc.record({ status, body: fc.uint8Array({ maxLength: 200 }) })),
  shadowFirst: fc.boolean(),
  latencyMs: fc.double({ min: 0, max: 5000, noNaN: true }),
});

type Req = typeof request extends fc.Arbitrary<infer T> ? T : never;

function drive(r: Rig, q: Req): void {
  const s = r.host.newHttpStream();
  const headers: [string, string][] = [[":method", q.method], [":path", q.path], [":authority", q.authority], ...q.headers];
  const hasBody = q.requestBody !== null && q.requestBody.length > 0;
  s.sendRequestHeaders(headers, !hasBody);
  if (hasBody) q.requestBody!.forEach((c, i) => s.sendRequestBody(c, i === q.requestBody!.length - 1));
  const answer = () => {
    for (const c of r.callouts.takeHttp()) {
      if (q.shadow === "fail") c.fail();
      else if (q.shadow === "timeout") r.clock.advance(c.req.timeoutMs);
      else if (q.shadow !== "never") c.respond({ headers: [[":status", q.shadow.status]], body: q.shadow.body });
    }
  };
  if (q.shadowFirst) answer();
  r.clock.advance(q.latencyMs);
  s.sendResponseHeaders([[":status", q.status]], q.responseBody.length === 0);
  q.responseBody.forEach((c, i) => s.sendResponseBody(c, i === q.responseBody.length - 1));
  s.complete();
  if (!q.shadowFirst) answer();
}

const baseConfig = config([
  component({ shadow_weight_bp: 4000, sticky: { cookie: "sid" }, mirror: { fraction: 0.7, max_in_flight: 4, max_per_second: 1000, compare_body_max_bytes: 128 },
    read_rule: { methods: ["GET", "HEAD"], header: { name: "x-read-only" } } }),
  component({ name: "dflt", authorities: [], default: true, primary_cluster: "d-p", shadow_cluster: "d-s", sticky: { header: "x-user" }, shadow_weight_bp: 9999, mirror: { fraction: 1 } }),
]);

for (const build of ["optimized", "debug (assertions and bounds checks on)"]) test(`random requests, bodies, statuses and shadow answers never trap, and ticks keep reporting: ${build} build`, async () => {
  const r = await rig(baseConfig, { workers: 2, ...(build === "optimized" ? {} : { wasm: debugFilterModule() }) });
  fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 8 }), (reqs) => {
    for (const q of reqs) drive(r, q);
    r.clock.advance(1000);
    for (const c of r.callouts.takeGrpc()) c.reply({ status: 0, message: new Uint8Array(0) });
    return !r.host.worker(0).failed && !r.host.worker(1).failed;
  }), { seed: SEED, numRuns: RUNS });
  assert.not.ok(r.host.worker(0).failed || r.host.worker(1).failed, r.host.worker(0).failure?.message);
});

test("writes are never mirrored and never routed to a shadow that is not the write target", async () => {
  const r = await rig(baseConfig);
  fc.assert(fc.property(request, fc.constantFrom("POST", "PUT", "DELETE", "PATCH"), (q, m) => {
    const cleaned = { ...q, method: m, headers: q.headers.filter(([k]) => k.toLowerCase() !== "x-shadowmesh-mirror") };
    const s = r.host.newHttpStream();
    s.sendRequestHeaders([[":method", cleaned.method], [":path", cleaned.path], [":authority", cleaned.authority], ...cleaned.headers], true);
    const routed = s.requestHeadersMap!.get("x-shadowmesh-cluster");
    const mirrored = r.callouts.takeHttp().length;
    s.sendResponseHeaders([[":status", "200"]], true);
    s.complete();
    return mirrored === 0 && routed !== "orders-shadow" && routed !== "d-s";
  }), { seed: SEED, numRuns: RUNS });
});

// Configurations: valid ones mutated, plus arbitrary JSON and arbitrary bytes.
const jsonValue = fc.jsonValue({ maxDepth: 4 });
const mutated = fc.record({
  name: fc.oneof(fc.string({ maxLength: 10 }), jsonValue),
  authorities: fc.oneof(fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }), jsonValue),
  primary_cluster: fc.oneof(fc.string({ maxLength: 10 }), jsonValue),
  shadow_cluster: fc.oneof(fc.string({ maxLength: 10 }), jsonValue),
  shadow_weight_bp: fc.oneof(fc.integer({ min: -5, max: 20000 }), fc.double(), jsonValue),
  mirror: fc.oneof(fc.record({ fraction: fc.oneof(fc.double(), jsonValue), max_in_flight: fc.oneof(fc.integer(), jsonValue), remove_headers: fc.oneof(fc.array(fc.string({ maxLength: 8 })), jsonValue) }), jsonValue),
  sticky: fc.oneof(fc.record({ header: fc.string({ maxLength: 8 }) }), fc.record({ cookie: fc.string({ maxLength: 8 }) }), jsonValue),
  read_rule: fc.oneof(fc.record({ methods: fc.array(fc.string({ maxLength: 6 })), path_prefixes: fc.array(fc.string({ maxLength: 6 })) }), jsonValue),
  routing_header: fc.oneof(fc.string({ maxLength: 12 }), jsonValue),
}, { requiredKeys: [] });
const configText = fc.oneof(
  fc.array(mutated, { maxLength: 3 }).map((cs) => JSON.stringify({ components: cs })),
  jsonValue.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
);

test("random and malformed configurations never trap: each is accepted or rejected with a reason", async () => {
  const r = await rig(baseConfig);
  fc.assert(fc.property(configText, (text) => {
    const before = r.host.logs.length;
    const ok = r.host.reconfigure(text);
    if (r.host.worker(0).failed) return false;
    if (!ok) {
      const logged = r.host.logs.slice(before).filter((l) => l.level === LogLevel.Error).map((l) => l.message);
      if (!logged.some((m) => /rejected plugin configuration: .+: .+; keeping the previous one/.test(m))) return false;
    }
    r.host.reconfigure(baseConfig);
    const s = r.host.newHttpStream();
    s.sendRequestHeaders([[":method", "GET"], [":path", "/"], [":authority", "other"]], true);
    return s.requestHeadersMap!.get("x-shadowmesh-cluster") !== undefined;
  }), { seed: SEED, numRuns: RUNS * 2 });
});

test.run();
