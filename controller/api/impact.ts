// The impact analysis on the API: the service graph and ranking (GetImpact) and the shadow plan
// (PlanShadows) as the proto messages of controller.proto, from impact/service.ts's plain data.
import type { ImpactView } from "../impact/service.js";
import type { ShadowPlan } from "../impact/plan.js";

const opt = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? null : x);

export function impactMessage(v: ImpactView) {
  const prot = new Set(v.protected);
  return {
    atUnixMs: v.graph.atMs,
    nodes: v.graph.nodes.map((n) => ({ name: n.name, inboundRps: n.inboundRps, errorRatio: n.errorRatio, callers: n.callers, protected: prot.has(n.name) })),
    edges: v.graph.edges.map((e) => ({ caller: e.caller, callee: e.callee, rps: e.rps, errorRatio: e.errorRatio, meanLatencyMs: opt(e.meanLatencyMs), propagation: opt(e.propagation), samples: e.samples })),
    ranking: v.ranking.map((r) => ({
      component: r.component, failedRps: r.failedRps, weightedFailedRps: r.weightedFailedRps, hazardPerHour: r.hazardPerHour, outageS: r.outageS,
      expectedFailedPerMonth: r.expectedFailedPerMonth, explanation: r.text,
      failures: r.explanation.hazard.failures, observedHours: r.explanation.hazard.observedHours,
      contributors: r.explanation.contributors.map((c) => c.kind === "direct"
        ? { kind: c.kind, caller: c.caller, rps: c.rps, errorRatio: c.errorRatio, weightedFailedRps: c.weightedFailedRps, weight: c.weight, propagation: null, propagationSource: "" }
        : { kind: c.kind, caller: c.caller, rps: c.edgeRps, errorRatio: c.errorRatio, weightedFailedRps: c.weightedFailedRps, weight: null, propagation: c.propagation, propagationSource: c.propagationSource }),
    })),
  };
}

export function planMessage(p: ShadowPlan & { protected: string[] }) {
  return {
    method: p.method, budget: p.budget, totalCost: p.totalCost, totalBenefit: p.totalBenefit, budgetLeft: p.budgetLeft, summary: p.summary, protected: p.protected,
    candidates: p.candidates.map((c) => ({
      component: c.component, verdict: c.verdict, reason: c.reason, monthlyCost: opt(c.monthlyCost), expectedFailedPerMonth: c.expectedFailedPerMonth,
      benefitPerMonth: c.benefitPerMonth, cores: opt(c.sizing.cores), memoryGib: opt(c.sizing.memoryGiB), scale: c.sizing.scale, scaleSource: c.sizing.scaleSource,
      transferGibPerMonth: c.sizing.transferGiBPerMonth, notes: c.sizing.notes,
    })),
  };
}
