// TelemetryStore.floor(): the failover floors of a component's proxies over a time range, from the
// filter's Floor messages: counters summed, distinct proxies (node id + worker id) counted, and
// each proxy's latest ejected state in the range.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock } from "../../host/clock.js";
import { TelemetryStore, ReportRejected } from "../../controller/telemetry/store.js";
import { decodeReport, emptyFloor, type ComponentTotals, type DecodedReport, type FloorTotals } from "../../controller/telemetry/report.js";
import { component, config, get, rig, roundTrip, tickReports } from "../support/filter.js";

function comp(floor: Partial<FloorTotals>): ComponentTotals {
  return { callers: new Map(), targets: new Map(), consistency: {}, reads: 0, writes: 0, shadowWeightBp: 0, floor: { ...emptyFloor(), ...floor } };
}

const seqs = new Map<string, number>();
/** A report from node/worker whose window ends at wall `endMs`, carrying `orders` with these floor fields. */
function report(node: string, worker: number, endMs: number, floor: Partial<FloorTotals>, name = "orders"): DecodedReport {
  const key = `${node}/${worker}`;
  const sequence = (seqs.get(key) ?? 0) + 1;
  seqs.set(key, sequence);
  return {
    nodeId: node, workerId: BigInt(worker), sequence, windowStartUnixNanos: BigInt(endMs - 1000) * 1_000_000n,
    windowEndUnixNanos: BigInt(endMs) * 1_000_000n, filterErrors: 0, configGeneration: 1, components: new Map([[name, comp(floor)]]),
  };
}

test("floor(): counters summed over the range, proxies counted once, the latest state of each decides", async () => {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock });
  const t0 = Math.floor(Number(clock.realtimeNs() / 1_000_000n) / 1000) * 1000 + 500;
  store.ingest(report("a", 1, t0, { ejections: 1, readsDiverted: 10, ejected: true }));
  store.ingest(report("a", 2, t0, { unfitSkips: 3 }));
  store.ingest(report("b", 1, t0, { ejections: 1, readsDiverted: 4, probes: 2, ejected: true, writesHeld: 5 }));
  store.ingest(report("a", 1, t0 + 1000, { readsDiverted: 7, ejected: true }));
  store.ingest(report("b", 1, t0 + 1000, { probes: 3, probeFailures: 0, readmissions: 1, ejected: false }));
  store.ingest(report("c", 9, t0 + 1000, {}, "catalog"));
  const all = store.floor("orders", t0 - 1000, t0 + 2000);
  assert.equal(all, { reporting: 3, ejecting: 1, ejections: 2, readsDiverted: 21, probes: 5, unfitSkips: 3, writesHeld: 5, writesPaused: 0, nodesReporting: 2, nodesEjecting: 0 },
    "a/1 still ejected; b/1 re-admitted in its latest report; a/2 never ejected; node a is 1 of 2 workers ejecting, not a majority");
  const first = store.floor("orders", t0 - 1000, t0 + 500);
  assert.equal(first, { reporting: 3, ejecting: 2, ejections: 2, readsDiverted: 14, probes: 2, unfitSkips: 3, writesHeld: 5, writesPaused: 0, nodesReporting: 2, nodesEjecting: 1 }, "only the first second (node b: its one worker ejected)");
  assert.equal(store.floor("orders", t0 + 5000, t0 + 9000), { reporting: 0, ejecting: 0, ejections: 0, readsDiverted: 0, probes: 0, unfitSkips: 0, writesHeld: 0, writesPaused: 0, nodesReporting: 0, nodesEjecting: 0 });
  assert.equal(store.floor("nothing", 0, Number.MAX_SAFE_INTEGER).reporting, 0);
  assert.is(store.floor("catalog", t0 - 1000, t0 + 2000).reporting, 1);
  assert.is(store.window("orders", t0 - 1000, t0 + 2000)!.floor.readsDiverted, 21, "window() carries the floor counters too");
});

test("floor(): memory stays bounded (proxies per bucket capped, buckets expire with retention)", async () => {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock, maxProxiesPerBucket: 5, retentionMs: 10_000 });
  const now = Number(clock.realtimeNs() / 1_000_000n);
  for (let w = 0; w < 20; w++) store.ingest(report("n", 1000 + w, now, { ejected: w % 2 === 0, readsDiverted: 1 }));
  const f = store.floor("orders", now - 5000, now + 5000);
  assert.is(f.reporting, 5, "at most maxProxiesPerBucket proxies tracked per bucket");
  assert.is(f.readsDiverted, 20, "counters are never dropped");
  clock.advance(60_000);
  store.advance();
  assert.is(store.floor("orders", 0, Number.MAX_SAFE_INTEGER).reporting, 0, "expired with the bucket");
});

test("a report with a bad floor counter is refused whole", async () => {
  const clock = new ManualClock();
  const store = new TelemetryStore({ clock });
  const now = Number(clock.realtimeNs() / 1_000_000n);
  assert.throws(() => store.ingest(report("x", 1, now, { probes: -1 })), (e: unknown) => e instanceof ReportRejected && /components\[orders\]\.floor\.probes: -1 is not a count/.test((e as Error).message));
  assert.is(store.floor("orders", 0, Number.MAX_SAFE_INTEGER).reporting, 0);
});

test("from the real filter: ejecting workers are counted as ejecting (one ejection, adopted by the other worker at its tick), and as reporting while they have no traffic", async () => {
  const r = await rig(config([component({ floor: { shadow_fit: true } })]), { workers: 2 });
  const store = new TelemetryStore({ clock: r.clock });
  for (let i = 0; i < 3; i++) roundTrip(r, get(), { status: 503, worker: 0 });
  roundTrip(r, get(), { worker: 1 });
  for (const rep of tickReports(r)) store.ingest(rep);
  for (const rep of tickReports(r)) store.ingest(rep); // no traffic at all in this second
  const now = Number(r.clock.realtimeNs() / 1_000_000n);
  const f = store.floor("orders", now - 10_000, now + 1000);
  assert.is(f.reporting, 2);
  assert.is(f.ejecting, 2, "worker 1 adopted worker 0's ejection (the floor is shared by the workers)");
  assert.is(f.ejections, 1, "one ejection decided");
  const last = store.floor("orders", now - (now % 1000), now + 1000); // the last report's bucket only
  assert.equal([last.reporting, last.ejecting], [2, 2], "idle ejected workers still report their state");
});

test.run();
