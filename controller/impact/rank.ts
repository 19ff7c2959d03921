// The impact ranking: for every callee of a graph snapshot (graph.ts), how many requests per second
// would fail if it failed (weighted by the callers' criticality), how often it has failed (a Gamma
// posterior on its failure history), their product per month, and an explanation (structured and one
// line of text). Pure: the snapshot and the history are inputs.
//
// Failure model. When B fails, every request it serves fails (p(B) = 1). A caller A that is itself a
// callee fails a fraction q(A|N) of its own requests when its dependency N fails: the measured
// propagation of the edge A -> N when the graph has one, else the structural estimate
// min(1, rate(A->N) / inbound(A)) (A's calls to N per request it serves, capped at 1: a call to a failed
// dependency fails the request). Failure probabilities go up the graph along paths:
// p(A) = 1 - Π over A's failed dependencies N of (1 - p(N)·q(A|N)), i.e. independent paths combined.
// Cycle-safe: the nodes within `depthLimit` (default 6) hops of B are visited once each, in a DFS order
// with the back edges (those closing a cycle) left out. A failed request is counted where it enters the
// graph: at the edges from callers that are not callees (entry points, clients) and from "other", so a
// request that fails at three services is counted once; each node contributes p(node) × its entry rate.
//
// Criticality: `tiers` maps a caller (or a node) to a weight; a failed request entering through the
// edge X -> N counts tiers[X] ?? tiers[N] ?? defaultWeight (default 1). SLO tiers are expressed as
// weights too, e.g. 99.99% → 10, 99.9% → 3, best effort → 1.
//
// Hazard (failures per hour): (failures + a·s) / (observedHours + b), the posterior mean of a Poisson
// rate with a Gamma(a, b) prior (`prior`, default one failure per 2,160 h = 90 days). meanRisk (0..1, the
// risk engine's average for the component) scales only the prior's failures:
// s = clamp(meanRisk / referenceRisk, 0.25, 4) with referenceRisk (default 0.1) the risk at which a
// component is "typical"; the observed failures are never scaled, so history outweighs the risk as it
// grows. expectedFailedPerMonth = hazard × 730 h × outage seconds (meanOutageS, default 600) × weighted
// failed req/s.
import type { EdgeSnapshot, GraphSnapshot } from "./graph.js";
import { ImpactError, OTHER, checkNumber } from "./graph.js";

export interface FailureHistory { failures: number; observedHours: number; meanRisk?: number; meanOutageS?: number }

export interface RankOptions {
  /** Caller or node name -> weight of a failed request. */
  tiers?: Record<string, number>;
  defaultWeight?: number;
  /** Per component; missing: no failures observed in 0 hours (the prior alone). */
  history?: Record<string, FailureHistory>;
  prior?: { failures: number; hours: number };
  referenceRisk?: number;
  defaultOutageS?: number;
  depthLimit?: number;
  topContributors?: number;
}

export interface DirectContributor { kind: "direct"; caller: string; rps: number; errorRatio: number; weight: number; failedRps: number; weightedFailedRps: number }
export interface ViaContributor {
  kind: "via"; caller: string; edgeRps: number; errorRatio: number; propagation: number; propagationSource: "measured" | "structural";
  samples: number; failedRps: number; weightedFailedRps: number;
}
export type Contributor = DirectContributor | ViaContributor;
export interface HazardExplanation {
  failures: number; observedHours: number; priorFailures: number; priorHours: number; meanRisk: number | null; riskScale: number;
  perHour: number; per90Days: number; outageS: number;
}
export interface ImpactEntry {
  component: string;
  /** Requests per second that would fail (unweighted / weighted by tiers). */
  failedRps: number;
  weightedFailedRps: number;
  directWeightedRps: number;
  hazardPerHour: number;
  outageS: number;
  expectedFailedPerMonth: number;
  explanation: { contributors: Contributor[]; moreContributors: number; reached: number; depthLimited: boolean; hazard: HazardExplanation };
  text: string;
}

export const HOURS_PER_MONTH = 730;
export const DEFAULT_RANK = { defaultWeight: 1, prior: { failures: 1, hours: 2160 }, referenceRisk: 0.1, defaultOutageS: 600, depthLimit: 6, topContributors: 3 } as const;

function resolve(opts: RankOptions) {
  const o = {
    tiers: opts.tiers ?? {}, history: opts.history ?? {},
    defaultWeight: opts.defaultWeight ?? DEFAULT_RANK.defaultWeight, prior: opts.prior ?? DEFAULT_RANK.prior,
    referenceRisk: opts.referenceRisk ?? DEFAULT_RANK.referenceRisk, defaultOutageS: opts.defaultOutageS ?? DEFAULT_RANK.defaultOutageS,
    depthLimit: opts.depthLimit ?? DEFAULT_RANK.depthLimit, topContributors: opts.topContributors ?? DEFAULT_RANK.topContributors,
  };
  if (typeof o.tiers !== "object" || o.tiers === null) throw new ImpactError("tiers: must be an object of name -> weight");
  for (const [k, v] of Object.entries(o.tiers)) checkNumber(`tiers.${k}`, v, { min: 0 });
  checkNumber("defaultWeight", o.defaultWeight, { min: 0 });
  if (typeof o.prior !== "object" || o.prior === null) throw new ImpactError("prior: must be { failures, hours }");
  checkNumber("prior.failures", o.prior.failures, { min: 0 });
  checkNumber("prior.hours", o.prior.hours, { above: 0 });
  checkNumber("referenceRisk", o.referenceRisk, { above: 0, max: 1 });
  checkNumber("defaultOutageS", o.defaultOutageS, { min: 0 });
  checkNumber("depthLimit", o.depthLimit, { min: 0, integer: true });
  checkNumber("topContributors", o.topContributors, { min: 0, integer: true });
  if (typeof o.history !== "object" || o.history === null) throw new ImpactError("history: must be an object of component -> { failures, observedHours }");
  for (const [k, h] of Object.entries(o.history)) {
    if (typeof h !== "object" || h === null) throw new ImpactError(`history.${k}: must be { failures, observedHours, meanRisk?, meanOutageS? }`);
    checkNumber(`history.${k}.failures`, h.failures, { min: 0 });
    checkNumber(`history.${k}.observedHours`, h.observedHours, { min: 0 });
    if (h.meanRisk !== undefined) checkNumber(`history.${k}.meanRisk`, h.meanRisk, { min: 0, max: 1 });
    if (h.meanOutageS !== undefined) checkNumber(`history.${k}.meanOutageS`, h.meanOutageS, { min: 0 });
  }
  return o;
}

/** The hazard (failures per hour) and its explanation; see the file's comment. */
export function hazardOf(h: FailureHistory | undefined, o: { prior: { failures: number; hours: number }; referenceRisk: number; defaultOutageS: number }): HazardExplanation {
  const failures = h?.failures ?? 0, observedHours = h?.observedHours ?? 0;
  const riskScale = h?.meanRisk === undefined ? 1 : Math.min(4, Math.max(0.25, h.meanRisk / o.referenceRisk));
  const perHour = (failures + o.prior.failures * riskScale) / (observedHours + o.prior.hours);
  return {
    failures, observedHours, priorFailures: o.prior.failures, priorHours: o.prior.hours, meanRisk: h?.meanRisk ?? null, riskScale,
    perHour, per90Days: perHour * 2160, outageS: h?.meanOutageS ?? o.defaultOutageS,
  };
}

export function rankImpact(snap: GraphSnapshot, opts: RankOptions = {}): ImpactEntry[] {
  const o = resolve(opts);
  if (!snap || !Array.isArray(snap.nodes) || !Array.isArray(snap.edges)) throw new ImpactError("snapshot: must be a graph snapshot { atMs, nodes, edges }");
  const callees = snap.nodes.filter((x) => x.isCallee);
  const n = callees.length;
  const id = new Map<string, number>();
  callees.forEach((x, i) => id.set(x.name, i));
  const own = <T>(r: Record<string, T>, k: string): T | undefined => (Object.hasOwn(r, k) ? r[k] : undefined);
  const weightOf = (caller: string, node: string) => own(o.tiers, caller) ?? own(o.tiers, node) ?? o.defaultWeight;

  // Entry traffic per node, and the "up" adjacency (node -> its callers that are callees) as CSR.
  const entryRaw = new Float64Array(n), entryW = new Float64Array(n);
  const entries: number[][] = Array.from({ length: n }, () => []);
  const upCount = new Int32Array(n + 1);
  const link: { b: number; a: number; e: number }[] = [];
  snap.edges.forEach((e, i) => {
    const b = id.get(e.callee);
    if (b === undefined) return;
    const a = e.caller === OTHER ? undefined : id.get(e.caller);
    if (a === undefined) {
      entryRaw[b]! += e.rps; entryW[b]! += e.rps * weightOf(e.caller, e.callee); entries[b]!.push(i);
    } else if (a !== b) { link.push({ b, a, e: i }); upCount[b + 1]!++; }
  });
  const upStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) upStart[i + 1] = upStart[i]! + upCount[i + 1]!;
  const fill = upStart.slice(0, n);
  const upNode = new Int32Array(link.length), upQ = new Float64Array(link.length), upEdge = new Int32Array(link.length);
  for (const { b, a, e } of link) {
    const k = fill[b]!++;
    const edge = snap.edges[e]!;
    const inbound = callees[a]!.inboundRps;
    upNode[k] = a; upEdge[k] = e;
    upQ[k] = edge.propagation ?? (inbound > 0 ? Math.min(1, edge.rps / inbound) : edge.rps > 0 ? 1 : 0);
  }

  const depth = o.depthLimit;
  const dist = new Int32Array(n).fill(-1), pos = new Int32Array(n), queue = new Int32Array(n), order = new Int32Array(n);
  const stackNode = new Int32Array(n), stackIdx = new Int32Array(n), state = new Uint8Array(n);
  const acc = new Float64Array(n).fill(1), best = new Float64Array(n), via = new Int32Array(n), viaW = new Float64Array(n), viaRaw = new Float64Array(n);
  const out: ImpactEntry[] = [];

  for (let B = 0; B < n; B++) {
    // Reach: BFS up to `depth` hops.
    let tail = 0;
    queue[tail++] = B; dist[B] = 0;
    for (let head = 0; head < tail; head++) {
      const N = queue[head]!;
      if (dist[N]! >= depth) continue;
      for (let k = upStart[N]!; k < upStart[N + 1]!; k++) { const A = upNode[k]!; if (dist[A] === -1) { dist[A] = dist[N]! + 1; queue[tail++] = A; } }
    }
    let depthLimited = false;
    for (let i = 0; i < tail && !depthLimited; i++) {
      const N = queue[i]!;
      if (dist[N] === depth) for (let k = upStart[N]!; k < upStart[N + 1]!; k++) if (dist[upNode[k]!] === -1) { depthLimited = true; break; }
    }
    // Order: reverse DFS postorder over the reached nodes (every edge but the back edges goes forward in it).
    let po = tail, sp = 1;
    stackNode[0] = B; stackIdx[0] = upStart[B]!; state[B] = 1;
    while (sp > 0) {
      const N = stackNode[sp - 1]!, k = stackIdx[sp - 1]!;
      if (dist[N]! < depth && k < upStart[N + 1]!) {
        stackIdx[sp - 1] = k + 1;
        const A = upNode[k]!;
        if (dist[A] !== -1 && state[A] === 0) { state[A] = 1; stackNode[sp] = A; stackIdx[sp] = upStart[A]!; sp++; }
      } else { sp--; state[N] = 2; order[--po] = N; pos[N] = po; }
    }
    // Probabilities in that order.
    let raw = 0, w = 0;
    for (let i = 0; i < tail; i++) {
      const N = order[i]!;
      const p = i === 0 ? 1 : 1 - acc[N]!;
      if (!(p > 0)) continue;
      const fr = p * entryRaw[N]!, fw = p * entryW[N]!;
      raw += fr; w += fw;
      if (N !== B) { viaW[via[N]!]! += fw; viaRaw[via[N]!]! += fr; }
      if (dist[N]! >= depth) continue;
      for (let k = upStart[N]!; k < upStart[N + 1]!; k++) {
        const A = upNode[k]!;
        if (pos[A]! <= pos[N]! || dist[A] === -1) continue;
        const c = p * upQ[k]!;
        if (!(c > 0)) continue;
        acc[A]! *= 1 - c;
        if (c > best[A]!) { best[A] = c; via[A] = N === B ? A : via[N]!; }
      }
    }

    const contributors: Contributor[] = [];
    for (const i of entries[B]!) {
      const e = snap.edges[i]!, wt = weightOf(e.caller, e.callee);
      contributors.push({ kind: "direct", caller: e.caller, rps: e.rps, errorRatio: e.errorRatio, weight: wt, failedRps: e.rps, weightedFailedRps: e.rps * wt });
    }
    for (let k = upStart[B]!; k < upStart[B + 1]!; k++) {
      const A = upNode[k]!, e: EdgeSnapshot = snap.edges[upEdge[k]!]!;
      if (viaW[A]! > 0 || viaRaw[A]! > 0) {
        contributors.push({
          kind: "via", caller: e.caller, edgeRps: e.rps, errorRatio: e.errorRatio, propagation: upQ[k]!,
          propagationSource: e.propagation === null ? "structural" : "measured", samples: e.samples, failedRps: viaRaw[A]!, weightedFailedRps: viaW[A]!,
        });
      }
      viaW[A] = 0; viaRaw[A] = 0;
    }
    for (let i = 0; i < tail; i++) { const N = queue[i]!; dist[N] = -1; state[N] = 0; acc[N] = 1; best[N] = 0; }

    contributors.sort((x, y) => y.weightedFailedRps - x.weightedFailedRps || (x.caller < y.caller ? -1 : x.caller > y.caller ? 1 : 0));
    const name = callees[B]!.name;
    const hazard = hazardOf(own(o.history, name), o);
    const expected = hazard.perHour * HOURS_PER_MONTH * hazard.outageS * w;
    const top = contributors.slice(0, o.topContributors);
    out.push({
      component: name, failedRps: raw, weightedFailedRps: w, directWeightedRps: entryW[B]!,
      hazardPerHour: hazard.perHour, outageS: hazard.outageS, expectedFailedPerMonth: expected,
      explanation: { contributors: top, moreContributors: contributors.length - top.length, reached: tail, depthLimited, hazard },
      text: describe(name, w, top, contributors.length - top.length, hazard, expected, o.defaultWeight),
    });
  }
  out.sort((a, b) => b.expectedFailedPerMonth - a.expectedFailedPerMonth || (a.component < b.component ? -1 : a.component > b.component ? 1 : 0));
  return out;
}

function describe(name: string, w: number, top: Contributor[], more: number, h: HazardExplanation, expected: number, defaultWeight: number): string {
  let direct = false;
  const parts = top.map((c) => {
    if (c.kind === "direct") {
      const s = `${direct ? "" : "direct "}${rate(c.weightedFailedRps)} from ${c.caller}${c.weight !== defaultWeight ? ` [tier ${num(c.weight)}]` : ""}`;
      direct = true;
      return s;
    }
    return `${rate(c.weightedFailedRps)} via ${c.caller} (propagation ${num(c.propagation)} ${c.propagationSource})`;
  });
  if (more > 0) parts.push(`+${more} more`);
  const why = parts.length ? parts.join(", ") : "no traffic seen";
  return `${name}: ${rate(w)} weighted failed req/s if down (${why}); ${num(h.per90Days)} failures/90d ⇒ ${compact(expected)} failed requests/month`;
}

/** 1,240 / 88.4 / 6.3 / 0.052 */
export function rate(x: number): string {
  if (x >= 1000) return grouped(Math.round(x));
  if (x >= 10) return String(Math.round(x * 10) / 10);
  return num(x);
}
/** Two significant digits: 0.8, 0.55, 12, 340. */
export function num(x: number): string {
  if (x === 0) return "0";
  return x >= 100 ? grouped(Math.round(x)) : String(Number(x.toPrecision(2)));
}
/** 9.1k, 28.7k, 1.2M. */
export function compact(x: number): string {
  for (const [unit, v] of [["G", 1e9], ["M", 1e6], ["k", 1e3]] as const) if (x >= v) return `${Number((x / v).toPrecision(x / v >= 100 ? 3 : x / v >= 10 ? 3 : 2))}${unit}`;
  return rate(x);
}
function grouped(n: number): string { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
