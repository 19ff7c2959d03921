// The impact analysis in the running controller: feeds the service graph (graph.ts) from the
// telemetry store's sealed buckets (each component's callers, one window per bucket time, caller
// identities mapped to service names), keeps it in stateDir/graph.json, and answers the ranking
// (rank.ts) and the shadow plan (plan.ts) from the graph, the failure history (risk/history.ts) and
// what is known of each component's resources and measured cost.
import path from "node:path";
import type { Logger } from "pino";
import type { BucketSummary } from "../telemetry/bucket.js";
import type { FailureEvent } from "../risk/history.js";
import type { ShadowCost } from "../drivers/cost.js";
import type { ImpactConfig } from "./config.js";
import { OTHER, ServiceGraph, loadGraph, saveGraph, type EdgeDelta, type GraphSnapshot } from "./graph.js";
import { rankImpact, type FailureHistory, type ImpactEntry } from "./rank.js";
import { planShadows, type ShadowCostInput, type ShadowPlan } from "./plan.js";

export interface ImpactSources {
  /** Failures recorded (controller and operator), for the hazard. */
  failures?: () => readonly FailureEvent[];
  /** Hours each component has been watched (the failure history's samples), for the hazard. */
  observedHours?: (component: string) => number;
  /** The component's mean risk over the failure history (the risk engine's, sampled): scales the hazard's prior. */
  meanRisk?: (component: string) => number | null;
  /** The measured cost of a protected component's shadow (drivers/cost.ts). */
  cost?: (component: string) => ShadowCost | null;
}

export interface ImpactOptions {
  config: ImpactConfig;
  stateDir: string | null;
  log: Logger;
  /** The telemetry store's bucket length (a window of the graph). */
  bucketMs: number;
  /** Components with a shadow already (the plan proposes the others). */
  protectedNames: readonly string[];
  sources?: ImpactSources;
}

/** How long a ranking is reused (the dashboard asks every second). */
const RANK_CACHE_MS = 5_000;

export interface ImpactView { graph: GraphSnapshot; ranking: ImpactEntry[]; protected: string[] }

export class ImpactService {
  readonly graph: ServiceGraph;
  readonly file: string | null;
  /** Bucket start -> the callers every component reported in it (flushed in time order by tick). */
  private readonly pending = new Map<number, EdgeDelta[]>();
  private lastSaveMs = 0;
  private cached: { atMs: number; view: ImpactView } | null = null;
  private readonly protectedSet: ReadonlySet<string>;

  constructor(private readonly o: ImpactOptions) {
    this.file = o.stateDir ? path.join(o.stateDir, "graph.json") : null;
    const graphOptions = { halfLifeMs: o.config.halfLifeS * 1000 };
    this.graph = (this.file ? loadGraph(this.file, graphOptions) : null) ?? new ServiceGraph(graphOptions);
    this.protectedSet = new Set(o.protectedNames);
  }

  /** A caller as recorded -> the service it is (impact.identities), else as recorded. */
  serviceOf(caller: string): string { return this.o.config.identities[caller] ?? caller; }

  /** The telemetry store's listener: a component's bucket, with its callers when the filters record them. */
  onSealed(s: BucketSummary): void {
    if (!s.callers?.length) return;
    if (this.graph.atMs !== null && s.startMs < this.graph.atMs) return; // a bucket sealed late: its window has passed
    let list = this.pending.get(s.startMs);
    if (!list) this.pending.set(s.startMs, (list = []));
    for (const c of s.callers) {
      const caller = c.caller === OTHER ? OTHER : this.serviceOf(c.caller);
      list.push({ callee: s.component, caller, requests: c.requests, errors: c.errors, latencyMsSum: c.latencyUsSum / 1000 });
    }
  }

  /** After the telemetry store sealed what was due: every complete window goes into the graph, in order; saved when due. */
  tick(nowMs: number): void {
    if (this.pending.size) {
      for (const start of [...this.pending.keys()].sort((a, b) => a - b)) {
        this.graph.observe(start, this.o.bucketMs, this.pending.get(start)!);
        this.pending.delete(start);
      }
      this.cached = null;
    }
    if (this.file && nowMs - this.lastSaveMs >= this.o.config.saveEveryS * 1000) this.save(nowMs);
  }

  save(nowMs: number): void {
    if (!this.file) return;
    this.lastSaveMs = nowMs;
    try { saveGraph(this.file, this.graph); } catch (e) { this.o.log.error({ err: e, file: this.file }, "cannot save the service graph"); }
  }

  /** The graph and the ranking (reused for RANK_CACHE_MS). */
  view(nowMs: number): ImpactView {
    if (this.cached && nowMs - this.cached.atMs < RANK_CACHE_MS) return this.cached.view;
    const graph = this.graph.snapshot();
    const c = this.o.config;
    const ranking = rankImpact(graph, { tiers: c.tiers, defaultWeight: c.defaultWeight, defaultOutageS: c.outageS, history: this.histories(graph) });
    const view = { graph, ranking, protected: [...this.protectedSet] };
    this.cached = { atMs: nowMs, view };
    return view;
  }

  /** Which unprotected components to shadow within `budget` (currency per month); the protected ones are listed apart. */
  plan(nowMs: number, budget: number): ShadowPlan & { protected: string[] } {
    const { ranking, graph } = this.view(nowMs);
    const c = this.o.config;
    const candidates = ranking.filter((r) => !this.protectedSet.has(r.component));
    const rps = new Map(graph.nodes.map((n) => [n.name, n.inboundRps]));
    const costs: ShadowCostInput[] = candidates.map((r) => {
      const res = c.resources[r.component] ?? {};
      const m = this.o.sources?.cost?.(r.component) ?? null;
      return {
        component: r.component,
        ...(res.cpuCores !== undefined ? { cpuCores: res.cpuCores } : {}),
        ...(res.memoryGiB !== undefined ? { memoryGiB: res.memoryGiB } : {}),
        ...(m?.primaryCpu != null && res.cpuCores ? { cpuP95: Math.min(1, m.primaryCpu / res.cpuCores) } : {}),
        ...(m?.replicationBytesPerS != null ? { replicationBytesPerS: m.replicationBytesPerS } : {}),
        ...(m?.mirrorBytesPerS != null ? { mirrorBytesPerS: m.mirrorBytesPerS } : {}),
        peakRps: rps.get(r.component) ?? 0,
      };
    });
    const plan = planShadows(candidates, costs, { budget, prices: c.prices, expectedReduction: c.expectedReduction });
    return { ...plan, protected: [...this.protectedSet].filter((n) => rps.has(n)) };
  }

  /** Failures, hours watched and mean outage per component, from the failure history. */
  private histories(graph: GraphSnapshot): Record<string, FailureHistory> {
    const out: Record<string, FailureHistory> = {};
    const byComponent = new Map<string, FailureEvent[]>();
    for (const f of this.o.sources?.failures?.() ?? []) { const l = byComponent.get(f.component); if (l) l.push(f); else byComponent.set(f.component, [f]); }
    for (const n of graph.nodes) {
      if (!n.isCallee) continue;
      const own = byComponent.get(n.name) ?? [];
      const outages = own.filter((f) => f.recoveredMs !== undefined).map((f) => (f.recoveredMs! - f.atMs) / 1000);
      const hours = this.o.sources?.observedHours?.(n.name) ?? 0;
      const risk = this.o.sources?.meanRisk?.(n.name) ?? null;
      out[n.name] = {
        failures: own.length, observedHours: hours, ...(risk !== null ? { meanRisk: risk } : {}),
        ...(outages.length ? { meanOutageS: outages.reduce((a, b) => a + b, 0) / outages.length } : {}),
      };
    }
    return out;
  }
}
