// The impact analysis's costs (controller/impact/): one graph update for 1,000 services × 20 callers
// (a merged window of 20,000 edge deltas, median of several windows), heap bytes per edge, and the
// ranking and plan time for that graph. Writes benchmarks/results/impact.json; every metric is added
// by a section below (sections: each returns its metrics and notes), so more sections (the filter's)
// extend the same results file.
import v8 from "node:v8";
import vm from "node:vm";
import { ServiceGraph, type EdgeDelta, type GraphSnapshot } from "../controller/impact/graph.js";
import { rankImpact, type ImpactEntry } from "../controller/impact/rank.js";
import { planShadows, type ShadowCostInput } from "../controller/impact/plan.js";
import { mulberry32 } from "../host/random.js";
import { medianNs, writeResult } from "./harness.js";

type Section = () => { metrics: Record<string, number>; notes: Record<string, string> };

const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (v8.setFlagsFromString("--expose-gc"), vm.runInNewContext("gc") as () => void);
const timeMs = (fn: () => void) => { const t0 = process.hrtime.bigint(); fn(); return Number(process.hrtime.bigint() - t0) / 1e6; };

const SERVICES = 1000, CALLERS = 20, WINDOW_MS = 10_000, WARM_WINDOWS = 40, TIMED_WINDOWS = 11;
const EDGES = SERVICES * CALLERS;

/** Callee i's 20 callers: distinct other services or, for every fifth service, one client (seeded); per window, seeded counts and error ratios. */
function makeWindows(count: number): EdgeDelta[][] {
  const rand = mulberry32(1);
  const callers = Array.from({ length: SERVICES }, (_, i) => {
    const s = new Set<number>();
    while (s.size < CALLERS) { const c = Math.floor(rand() * SERVICES); if (c !== i) s.add(c); }
    const names = [...s].map((c) => `svc-${c}`);
    if (i % 5 === 0) names[0] = `client-${i % 50}`; // a fifth of the services also serve entry traffic
    return names;
  });
  return Array.from({ length: count }, () => {
    const errRatio = Array.from({ length: SERVICES }, () => (rand() < 0.2 ? rand() * 0.2 : 0));
    const out: EdgeDelta[] = new Array(EDGES);
    let k = 0;
    for (let i = 0; i < SERVICES; i++) for (const caller of callers[i]!) {
      const requests = 10 + Math.floor(rand() * 1000);
      out[k++] = { callee: `svc-${i}`, caller, requests, errors: Math.round(requests * errRatio[i]!), latencyMsSum: requests * (2 + rand() * 20) };
    }
    return out;
  });
}

let snapshot: GraphSnapshot | null = null;
let ranking: ImpactEntry[] = [];

const graphSection: Section = () => {
  const windows = makeWindows(WARM_WINDOWS + TIMED_WINDOWS);
  // Heap per edge: a fresh graph after one window.
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  let g = new ServiceGraph();
  g.observe(WINDOW_MS, WINDOW_MS, windows[0]!);
  gc();
  const bytesPerEdge = (process.memoryUsage().heapUsed - heap0) / g.edgeCount;
  g = new ServiceGraph();
  let w = 0;
  for (; w < WARM_WINDOWS; w++) g.observe((w + 1) * WINDOW_MS, WINDOW_MS, windows[w]!);
  const updateNs = medianNs(TIMED_WINDOWS, () => {
    const deltas = windows[w]!, at = ++w * WINDOW_MS;
    const t0 = process.hrtime.bigint();
    g.observe(at, WINDOW_MS, deltas);
    return Number(process.hrtime.bigint() - t0);
  });
  const snapshotMs = medianNs(5, () => timeMs(() => { snapshot = g.snapshot(); }) * 1e6) / 1e6;
  const measured = snapshot!.edges.filter((e) => e.propagation !== null).length;
  return {
    metrics: { graph_update_ms_1000x20: updateNs / 1e6, graph_update_ns_per_edge: updateNs / EDGES, snapshot_ms_1000x20: snapshotMs, bytes_per_edge: bytesPerEdge },
    notes: { graph: `1,000 services x 20 callers (20,000 edge deltas per 10 s window), median of ${TIMED_WINDOWS} windows after ${WARM_WINDOWS} warm-up windows (${measured} edges with a measured propagation); bytes_per_edge: heap growth after one window / edges` },
  };
};

const rankPlanSection: Section = () => {
  const snap = snapshot!;
  const rankMs = medianNs(5, () => timeMs(() => { ranking = rankImpact(snap, { tiers: { "client-0": 3, "client-5": 3 } }); }) * 1e6) / 1e6;
  const rand = mulberry32(2);
  const costs: ShadowCostInput[] = ranking.map((r) => ({
    component: r.component, cpuCores: 1 + Math.floor(rand() * 16), memoryGiB: 2 + Math.floor(rand() * 64), cpuP95: rand(), replicationBytesPerS: rand() * 5e6,
  }));
  let chosen = 0, method = "";
  const planMs = medianNs(5, () => timeMs(() => {
    const p = planShadows(ranking, costs, { budget: 20_000 });
    chosen = p.candidates.filter((c) => c.verdict === "chosen").length; method = p.method;
  }) * 1e6) / 1e6;
  return {
    metrics: { rank_ms_1000x20: rankMs, plan_ms_1000: planMs },
    notes: { rank_plan: `rankImpact over the graph's snapshot (depth 6, every callee); planShadows for 1,000 candidates, budget 20,000/month, grid 2,000 steps (${method}, ${chosen} chosen)` },
  };
};

// The results file: every section's metrics in one object (extend by adding a section).
const sections: Section[] = [graphSection, rankPlanSection];
const metrics: Record<string, number> = {};
const notes: Record<string, string> = {};
for (const s of sections) { const r = s(); Object.assign(metrics, r.metrics); Object.assign(notes, r.notes); }
writeResult("impact", metrics, { setup: notes });
