// `npm run demo`: the data plane on its own, in simulated time. The real filter (build/shadowmesh.wasm)
// runs in the TypeScript proxy-wasm host with two workers; a primary and a slightly slower, slightly
// stale shadow answer in-process. The shadow weight steps 0 -> 1 -> 5 -> 25 -> 50 -> 100 % as the
// controller would push it; the demo prints where reads and writes went, whether any client moved
// back, what the mirrored reads found, and latency quantiles from the merged telemetry sketches.
// The full system (controller, embedded data plane, replicated store, failing primary) is `npm start`.
import { readFileSync } from "node:fs";
import { ManualClock, PluginHost, RecordingCallouts } from "../host/index.js";
import { decodeReport, mergeComponents, type ComponentTotals } from "../controller/telemetry/report.js";
import { mulberry32, normal } from "../host/random.js";

const rand = mulberry32(2026);
const clock = new ManualClock();
const callouts = new RecordingCallouts(["orders-primary", "orders-shadow", "shadowmesh-controller"]);
const configFor = (weightBp: number) => JSON.stringify({
  telemetry: { cluster: "shadowmesh-controller", interval_ms: 1000 },
  components: [{
    name: "orders", authorities: ["orders.svc"], primary_cluster: "orders-primary", shadow_cluster: "orders-shadow",
    mirror: { fraction: 0.1, max_per_second: 200, max_in_flight: 32, timeout_ms: 250, remove_headers: ["authorization"] },
    shadow_weight_bp: weightBp, sticky: { header: "x-user" },
  }],
});
const host = await PluginHost.create({
  wasm: readFileSync(new URL("../build/shadowmesh.wasm", import.meta.url)),
  workers: 2, clock, callouts, pluginConfig: configFor(0), properties: { "node.id": "demo-sidecar" },
});

// The component: a key-value store; the shadow replays the primary's writes a little late.
const store = new Map<string, number>();
const replica = new Map<string, number>();
const backlog: [string, number][] = [];
const lognormalMs = (medianMs: number) => medianMs * Math.exp(0.5 * normal(rand));
function primary(method: string, key: string): [number, string] {
  if (method === "PUT") { const v = (store.get(key) ?? 0) + 1; store.set(key, v); backlog.push([key, v]); return [204, ""]; }
  return store.has(key) ? [200, JSON.stringify({ key, v: store.get(key) })] : [404, ""];
}
function shadow(key: string): [number, string] {
  return replica.has(key) ? [200, JSON.stringify({ key, v: replica.get(key) })] : [404, ""];
}
function replicate(): void { while (backlog.length > 3) { const [k, v] = backlog.shift()!; replica.set(k, v); } }

const totals = new Map<string, ComponentTotals>();
function collectTelemetry(): void {
  for (const c of callouts.takeGrpc()) {
    mergeComponents(totals, decodeReport(c.req.message!).components);
    c.reply({ status: 0, message: new Uint8Array(0) });
  }
}

const users = Array.from({ length: 400 }, (_, i) => `user-${i}`);
const placement = new Map<string, boolean>();
let movedBack = 0;
console.log("shadow weight | reads to shadow | writes to shadow | clients moved back");
for (const weightBp of [0, 100, 500, 2500, 5000, 10000]) {
  if (!host.reconfigure(configFor(weightBp))) throw new Error("configuration rejected");
  let reads = 0, readsToShadow = 0, writes = 0, writesToShadow = 0;
  for (let i = 0; i < 4000; i++) {
    const user = users[Math.floor(rand() * users.length)]!;
    const key = `k${Math.floor(rand() * 50)}`;
    const method = rand() < 0.2 ? "PUT" : "GET";
    const s = host.newHttpStream();
    s.sendRequestHeaders([[":method", method], [":path", `/kv/${key}`], [":authority", "orders.svc"], ["x-user", user], ["authorization", "Bearer demo"]], true);
    const toShadow = s.requestHeadersMap!.get("x-shadowmesh-cluster") === "orders-shadow";
    if (method === "GET") {
      reads++;
      if (toShadow) readsToShadow++;
      if (placement.get(user) && !toShadow) movedBack++;
      if (toShadow) placement.set(user, true);
    } else { writes++; if (toShadow) writesToShadow++; }
    for (const m of callouts.takeHttp()) {
      const [st, body] = shadow(m.req.headers.get(":path")!.slice(4));
      clock.advance(lognormalMs(0.3));
      m.respond({ headers: [[":status", String(st)]], body });
    }
    const [status, body] = toShadow ? shadow(key) : primary(method, key);
    clock.advance(lognormalMs(toShadow ? 6 : 4));
    s.sendResponseHeaders([[":status", String(status)]], body.length === 0);
    if (body.length > 0) s.sendResponseBody(body, true);
    s.complete();
    if (i % 20 === 0) replicate();
    collectTelemetry();
  }
  const pct = (a: number, b: number) => `${(100 * a / Math.max(1, b)).toFixed(1)}%`.padStart(6);
  console.log(`${(weightBp / 100 + "%").padStart(13)} | ${pct(readsToShadow, reads).padStart(15)} | ${pct(writesToShadow, writes).padStart(16)} | ${movedBack}`);
}
clock.advance(1000);
collectTelemetry();

const t = totals.get("orders")!;
console.log("\nmirrored reads (consistency of the shadow, compared in the proxy):");
for (const [k, v] of Object.entries(t.consistency)) console.log(`  ${k.padEnd(15)} ${v}`);
console.log("\nlatency from the merged telemetry sketches (1% relative error):");
for (const [name, tt] of t.targets) {
  const q = (x: number) => `${(tt.latency.quantile(x) / 1000).toFixed(2)} ms`.padStart(10);
  console.log(`  ${name.padEnd(13)} n=${String(tt.latency.count).padStart(6)}  p50 ${q(0.5)}  p90 ${q(0.9)}  p99 ${q(0.99)}`);
}
console.log(`\nreads ${t.reads}, writes ${t.writes}; filter errors: ${host.metricValue("shadowmesh.filter_errors") ?? 0}`);
host.shutdown();
