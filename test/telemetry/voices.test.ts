// One proxy is one voice: the error rate and p99 the risk engine gets are weighted medians across
// proxy nodes, so one proxy at 100 % errors among nine healthy ones leaves the signal low (and is
// flagged as an outlier), while ten proxies at 30 % raise it; a proxy reporting far more traffic than
// the others cannot outvote them.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock } from "../../host/clock.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import type { BucketSummary } from "../../controller/telemetry/bucket.js";
import { emptyFloor, emptyTarget, type ComponentTotals, type DecodedReport } from "../../controller/telemetry/report.js";
import { feedRisk, REQUEST_SIGNALS } from "../../controller/telemetry/feed.js";
import { RiskEngine } from "../../controller/risk/engine.js";

const seqs = new Map<string, number>();
/** A report from `node` (one worker) with `requests` primary requests, `errors` of them 5xx, each `latencyMs` long. */
function report(node: string, endMs: number, requests: number, errors: number, latencyMs = 5): DecodedReport {
  const t = emptyTarget();
  t.requests = requests; t.status = [0, requests - errors, 0, 0, errors];
  for (let i = 0; i < requests; i++) t.latency.add(latencyMs * 1000);
  const c: ComponentTotals = { callers: new Map(), targets: new Map([["PRIMARY", t]]), consistency: {}, reads: requests, writes: 0, shadowWeightBp: 0, floor: emptyFloor() };
  const sequence = (seqs.get(node) ?? 0) + 1;
  seqs.set(node, sequence);
  return { nodeId: node, workerId: 7n, sequence, windowStartUnixNanos: BigInt(endMs - 1000) * 1_000_000n, windowEndUnixNanos: BigInt(endMs) * 1_000_000n, filterErrors: 0, configGeneration: 1, components: new Map([["orders", c]]) };
}

/** `seconds` one-second buckets where proxy i reports `fleet(i)` = [requests, errors, latencyMs]; returns the sealed summaries and the engine. */
function run(proxies: number, fleet: (i: number) => [number, number, number?], seconds = 20) {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock });
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [{ name: REQUEST_SIGNALS.errors, kind: "error_rate" }, { name: REQUEST_SIGNALS.latency, kind: "latency" }] });
  const sealed: BucketSummary[] = [];
  store.onSealed((s) => { sealed.push(s); feedRisk(engine, s); });
  for (let sec = 0; sec < seconds; sec++) {
    clock.advance(1000);
    const now = Number(clock.realtimeNs() / 1_000_000n);
    for (let i = 0; i < proxies; i++) { const [n, e, l] = fleet(i); store.ingest(report(`proxy-${i}`, now, n, e, l)); }
    store.advance();
  }
  clock.advance(5000);
  store.advance();
  engine.tick();
  const errors = engine.get("orders")!.contributions.find((c) => c.signal === REQUEST_SIGNALS.errors)!;
  const latency = engine.get("orders")!.contributions.find((c) => c.signal === REQUEST_SIGNALS.latency)!;
  return { store, sealed, errors: errors.value, p99: latency.value };
}

test("nine healthy proxies and one at 100 % errors: the component's error rate stays low and the proxy is flagged", () => {
  seqs.clear();
  const r = run(10, (i) => (i === 9 ? [100, 100, 900] : [100, 1, 5]));
  const last = r.sealed.at(-1)!;
  assert.ok(last.targets.PRIMARY!.errorRate > 0.1, `pooled rate ${last.targets.PRIMARY!.errorRate} (what the engine got before)`);
  assert.is(last.robust!.voices, 10);
  assert.is(last.robust!.errorRate, 0.01);
  assert.is(r.errors, 0.01, "the risk engine is fed the median proxy's rate");
  assert.ok(r.p99! < 6, `p99 fed ${r.p99} ms: the outlier's 900 ms latency does not move it`);
  assert.equal(last.outliers.map((o) => o.node), ["proxy-9"]);
  assert.is(last.outliers[0]!.errorRate, 1);
  assert.ok(r.store.stats.outlierProxies >= 20, `${r.store.stats.outlierProxies} (bucket, proxy) flags`);
  assert.equal(r.store.outliers().at(-1)!.component, "orders");
});

test("ten proxies at 30 % errors: the component's error rate rises and nobody is an outlier", () => {
  seqs.clear();
  const r = run(10, () => [100, 30, 5]);
  const last = r.sealed.at(-1)!;
  assert.is(last.robust!.errorRate, 0.3);
  assert.is(r.errors, 0.3);
  assert.equal(last.outliers, []);
  assert.is(r.store.stats.outlierProxies, 0);
});

test("a proxy reporting 100x the others' traffic at 100 % errors cannot outvote them", () => {
  seqs.clear();
  const r = run(10, (i) => (i === 0 ? [10_000, 10_000, 5] : [100, 0, 5]));
  const last = r.sealed.at(-1)!;
  assert.ok(last.targets.PRIMARY!.errorRate > 0.9, "pooled, it would be 91 %");
  assert.is(last.robust!.errorRate, 0);
  assert.equal(last.outliers.map((o) => o.node), ["proxy-0"]);
});

test("low-traffic proxies pool into one voice; with too little traffic overall the pooled rate is used", () => {
  seqs.clear();
  // Ten proxies with 3 requests each (under minProxyRequests = 10) and one with 50 requests all failing.
  const r = run(11, (i) => (i === 10 ? [50, 50, 5] : [3, 0, 5]));
  const last = r.sealed.at(-1)!;
  assert.is(last.robust!.voices, 2, "the attacker and the pooled low-traffic proxies");
  assert.is(last.robust!.errorRate, 0, "the pool weighs as the ten nodes it stands for");
  seqs.clear();
  const tiny = run(2, () => [2, 1, 5]);
  assert.is(tiny.sealed.at(-1)!.robust, null, "no node and no pool reaches 10 requests");
  assert.is(tiny.errors, 0.5, "the pooled rate is fed");
});

test("per-node state is bounded: nodes past maxVoicesPerBucket share one voice", () => {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock, maxVoicesPerBucket: 4 });
  seqs.clear();
  clock.advance(1000);
  const now = Number(clock.realtimeNs() / 1_000_000n);
  for (let i = 0; i < 10; i++) store.ingest(report(`n${i}`, now, 20, 0));
  const by = store.primaryByProxy("orders", 0, Number.MAX_SAFE_INTEGER);
  assert.is(by.size, 5, "four nodes and the shared overflow voice");
  assert.equal(by.get("(untracked proxies)"), { requests: 120, errors: 0 });
});

test.run();
