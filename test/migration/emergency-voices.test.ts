// The emergency path's evidence is one voice per proxy node, as the risk engine's request signals
// are: a node reporting a flood of failed requests, or claiming fifty ejecting workers, among nine
// healthy nodes cannot fail the primary over; every node seeing the primary fail does.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock, wallMs } from "../../host/clock.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { emptyFloor, emptyTarget, type ComponentTotals, type DecodedReport } from "../../controller/telemetry/report.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { TelemetryInputSource } from "../../controller/migration/inputs.js";
import { initialStatus, reconcile } from "../../controller/migration/reconcile.js";
import { DEFAULT_POLICY } from "../../controller/migration/policy.js";

const seqs = new Map<string, number>();
/** One worker's report: `requests` to the primary, `errors` of them 5xx, the floor's ejected state. */
function report(node: string, worker: number, endMs: number, requests: number, errors: number, ejected: boolean): DecodedReport {
  const t = emptyTarget();
  t.requests = requests; t.status = [0, requests - errors, 0, 0, errors];
  for (let i = 0; i < requests; i++) t.latency.add(5000);
  const c: ComponentTotals = { callers: new Map(), targets: new Map([["PRIMARY", t]]), consistency: {}, reads: requests, writes: 0, shadowWeightBp: 0, floor: { ...emptyFloor(), ejected } };
  const key = `${node}/${worker}`;
  const sequence = (seqs.get(key) ?? 0) + 1;
  seqs.set(key, sequence);
  return { nodeId: node, workerId: BigInt(worker), sequence, windowStartUnixNanos: BigInt(endMs - 1000) * 1_000_000n, windowEndUnixNanos: BigInt(endMs) * 1_000_000n, filterErrors: 0, configGeneration: 1, components: new Map([["orders", c]]) };
}

/** Five seconds of reports from nine healthy nodes plus `bad` (each node a list of [requests, errors, ejected] per worker). */
function health(bad: (node: number) => [number, number, boolean][]) {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock });
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [] });
  for (let sec = 0; sec < 5; sec++) {
    clock.advance(1000);
    const now = wallMs(clock);
    for (let n = 0; n < 10; n++) bad(n).forEach(([r, e, ej], w) => store.ingest(report(`node-${n}`, w, now, r, e, ej)));
  }
  const inputs = new TelemetryInputSource({ engine, store });
  const status = { ...initialStatus("orders", 0), shadowFit: true };
  return { h: inputs.gather("orders", status, wallMs(clock), DEFAULT_POLICY).health!, status, inputs, clock };
}

const healthy: [number, number, boolean] = [20, 0, false];

test("one node flooding failures and claiming 50 ejecting workers, nine healthy: no emergency", () => {
  const { h, status, clock } = health((n) => (n === 0 ? Array.from({ length: 50 }, () => [10_000, 10_000, true] as [number, number, boolean]) : [healthy]));
  assert.is(h.reporting, 10, "nodes, not workers");
  assert.is(h.ejecting, 1);
  assert.ok(h.requests > 100_000, "the flood is there");
  assert.is(h.failures, 0, "but the median node saw no failure");
  const r = reconcile(DEFAULT_POLICY, status, { risk: 0.1, primaryRisk: 0.1, replicaLagS: 0.1, recent: { primary: null, shadow: null }, window: null, rollout: null, action: null, commands: [], health: h }, Number(clock.realtimeNs() / 1_000_000n));
  assert.is(r.status.phase, "Healthy");
});

test("every node seeing the primary fail (and most ejecting it) is an emergency", () => {
  const { h, status, clock } = health(() => [[20, 20, true], [20, 18, true]]);
  assert.equal([h.reporting, h.ejecting], [10, 10]);
  assert.ok(h.failures / h.requests > 0.9);
  const r = reconcile(DEFAULT_POLICY, status, { risk: 0.1, primaryRisk: 0.1, replicaLagS: 0.1, recent: { primary: null, shadow: null }, window: null, rollout: null, action: null, commands: [], health: h }, Number(clock.realtimeNs() / 1_000_000n));
  assert.is(r.status.phase, "Failover");
});

test.run();
