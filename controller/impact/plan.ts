// The shadow plan: sizing advice for each candidate's reduced-scale shadow, its monthly cost and
// benefit, and the set to shadow within a monthly budget (0/1 knapsack), with a verdict and the numbers
// for every candidate. Pure: the ranking (rank.ts), the costs and the prices are inputs.
//
// Sizing: scale = max(minScale, cpuP95 × headroom) of the primary (cpuP95 unknown: defaultScale, said
// so); cores = primary cores × scale and memory = primary GiB × max(memoryFloor, scale), both rounded
// up to 0.25 (a database's working set does not shrink with its load). Unknown cores or memory: the
// cost is unknown, the candidate is "needs sizing" (never priced as free) and the advice says what to set.
// Monthly cost = (cores × cpuCoreHour + GiB × memoryGiBHour) × 730 + (replication + mirror bytes/s) ×
// 2,628,000 s / 2^30 × transferGiB (unknown bytes count 0, said so).
// Benefit = expectedFailedPerMonth × expectedReduction (default 0.9: the share of the failed requests a
// shadow avoids).
// Choice: exact DP over costs on a grid of budget/gridSteps (default 2,000) with each cost rounded UP to
// the grid, so the chosen set never exceeds the budget and is optimal up to one grid step per item;
// the leftover budget is then filled greedily with real costs. With more than maxExactCells
// (items × grid) the choice is greedy by benefit/cost (or the best single item, if better), and the
// plan says which method it used.
import { ImpactError, checkNumber } from "./graph.js";
import { HOURS_PER_MONTH, compact } from "./rank.js";

export interface ShadowCostInput {
  component: string; cpuCores?: number; memoryGiB?: number; cpuP95?: number /* 0..1 utilisation */;
  replicationBytesPerS?: number; mirrorBytesPerS?: number; peakRps?: number;
}
export interface Prices { cpuCoreHour: number; memoryGiBHour: number; transferGiB: number }
export const DEFAULT_PRICES: Readonly<Prices> = { cpuCoreHour: 0.04, memoryGiBHour: 0.005, transferGiB: 0.02 };

export interface PlanOptions {
  /** Currency per month. */
  budget: number;
  prices?: Partial<Prices>;
  headroom?: number;
  minScale?: number;
  memoryFloor?: number;
  defaultScale?: number;
  expectedReduction?: number;
  gridSteps?: number;
  maxExactCells?: number;
}
export const DEFAULT_PLAN = { headroom: 1.25, minScale: 0.25, memoryFloor: 0.5, defaultScale: 0.5, expectedReduction: 0.9, gridSteps: 2000, maxExactCells: 20_000_000 } as const;

export type Verdict = "chosen" | "over budget" | "no expected benefit" | "needs sizing";
export interface SizingAdvice {
  scale: number; scaleSource: "cpuP95" | "default";
  cores: number | null; memoryGiB: number | null; transferGiBPerMonth: number;
  monthly: { cpu: number | null; memory: number | null; transfer: number };
  notes: string[];
}
export interface PlanCandidate {
  component: string; verdict: Verdict; reason: string;
  monthlyCost: number | null; expectedFailedPerMonth: number; benefitPerMonth: number; benefitPerCost: number | null;
  sizing: SizingAdvice;
}
export interface ShadowPlan {
  method: "exact" | "greedy"; resolution: number;
  budget: number; totalCost: number; totalBenefit: number; budgetLeft: number;
  candidates: PlanCandidate[]; summary: string;
}

export const SECONDS_PER_MONTH = 2_628_000;
const COST_FIELDS = ["cpuCores", "memoryGiB", "cpuP95", "replicationBytesPerS", "mirrorBytesPerS", "peakRps"] as const;

function ceilTo(x: number, step: number): number { return Math.ceil(x / step - 1e-9) * step; }
const money = (x: number) => x.toFixed(2);

/** The sizing advice and monthly cost of one candidate's shadow. */
export function sizeShadow(c: ShadowCostInput, prices: Prices, o: { headroom: number; minScale: number; memoryFloor: number; defaultScale: number }): SizingAdvice {
  const notes: string[] = [];
  let scale: number, scaleSource: SizingAdvice["scaleSource"];
  if (c.cpuP95 !== undefined) {
    scale = Math.max(o.minScale, c.cpuP95 * o.headroom); scaleSource = "cpuP95";
    notes.push(c.cpuP95 * o.headroom < o.minScale
      ? `cpu p95 ${pct(c.cpuP95)} × headroom ${o.headroom} is below the minimum scale: ${o.minScale} of the primary`
      : `cpu p95 ${pct(c.cpuP95)} × headroom ${o.headroom} = ${round3(scale)} of the primary`);
    if (scale > 1) notes.push("larger than the primary: the primary runs hot, the shadow needs room to take its load");
  } else {
    scale = o.defaultScale; scaleSource = "default";
    notes.push(`cpu p95 unknown: default scale ${o.defaultScale} of the primary (set cpuP95 for advice from the observed load)`);
  }
  const cores = c.cpuCores === undefined ? null : ceilTo(c.cpuCores * scale, 0.25);
  const memScale = Math.max(o.memoryFloor, scale);
  const memoryGiB = c.memoryGiB === undefined ? null : ceilTo(c.memoryGiB * memScale, 0.25);
  if (memoryGiB !== null && memScale > scale) notes.push(`memory kept at ${pct(o.memoryFloor)} of the primary's (a working set does not shrink with the load)`);
  const missing = [c.cpuCores === undefined ? "cpuCores" : "", c.memoryGiB === undefined ? "memoryGiB" : ""].filter(Boolean);
  if (missing.length) notes.push(`cost unknown: set ${missing.join(" and ")} (the primary's) for ${c.component}`);
  if (c.replicationBytesPerS === undefined && c.mirrorBytesPerS === undefined) notes.push("replication and mirror bytes/s unknown: transfer counted as 0");
  if (c.peakRps !== undefined) notes.push(`must take the peak of ${c.peakRps} req/s when it takes over`);
  const transferGiBPerMonth = ((c.replicationBytesPerS ?? 0) + (c.mirrorBytesPerS ?? 0)) * SECONDS_PER_MONTH / 2 ** 30;
  return {
    scale, scaleSource, cores, memoryGiB, transferGiBPerMonth,
    monthly: {
      cpu: cores === null ? null : cores * prices.cpuCoreHour * HOURS_PER_MONTH,
      memory: memoryGiB === null ? null : memoryGiB * prices.memoryGiBHour * HOURS_PER_MONTH,
      transfer: transferGiBPerMonth * prices.transferGiB,
    },
    notes,
  };
}

function resolve(costs: readonly ShadowCostInput[], opts: PlanOptions) {
  if (typeof opts !== "object" || opts === null) throw new ImpactError("options: must be an object with a budget");
  checkNumber("budget", opts.budget, { min: 0 });
  const p = opts.prices ?? {};
  for (const k of Object.keys(p)) if (!(k in DEFAULT_PRICES)) throw new ImpactError(`prices.${k}: unknown price (known: ${Object.keys(DEFAULT_PRICES).join(", ")})`);
  const prices: Prices = { ...DEFAULT_PRICES, ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) };
  for (const k of Object.keys(prices) as (keyof Prices)[]) checkNumber(`prices.${k}`, prices[k], { min: 0 });
  const o = {
    headroom: opts.headroom ?? DEFAULT_PLAN.headroom, minScale: opts.minScale ?? DEFAULT_PLAN.minScale, memoryFloor: opts.memoryFloor ?? DEFAULT_PLAN.memoryFloor,
    defaultScale: opts.defaultScale ?? DEFAULT_PLAN.defaultScale, expectedReduction: opts.expectedReduction ?? DEFAULT_PLAN.expectedReduction,
    gridSteps: opts.gridSteps ?? DEFAULT_PLAN.gridSteps, maxExactCells: opts.maxExactCells ?? DEFAULT_PLAN.maxExactCells,
  };
  checkNumber("headroom", o.headroom, { above: 0 });
  checkNumber("minScale", o.minScale, { above: 0 });
  checkNumber("memoryFloor", o.memoryFloor, { min: 0, max: 1 });
  checkNumber("defaultScale", o.defaultScale, { above: 0 });
  checkNumber("expectedReduction", o.expectedReduction, { min: 0, max: 1 });
  checkNumber("gridSteps", o.gridSteps, { min: 1, max: 1_000_000, integer: true });
  checkNumber("maxExactCells", o.maxExactCells, { min: 0, integer: true });
  if (!Array.isArray(costs)) throw new ImpactError("costs: must be an array");
  const seen = new Set<string>();
  costs.forEach((c, i) => {
    if (typeof c !== "object" || c === null) throw new ImpactError(`costs[${i}]: must be an object`);
    if (typeof c.component !== "string" || !c.component) throw new ImpactError(`costs[${i}].component: must be a non-empty string`);
    if (seen.has(c.component)) throw new ImpactError(`costs[${i}].component: ${c.component} is listed twice`);
    seen.add(c.component);
    for (const k of Object.keys(c)) if (k !== "component" && !(COST_FIELDS as readonly string[]).includes(k)) throw new ImpactError(`costs[${i}].${k}: unknown field (known: component, ${COST_FIELDS.join(", ")})`);
    for (const k of COST_FIELDS) if (c[k] !== undefined) checkNumber(`costs[${i}].${k}`, c[k], k === "cpuP95" ? { min: 0, max: 1 } : { min: 0 });
  });
  return { ...o, budget: opts.budget, prices };
}

interface Item { i: number; cost: number; benefit: number; name: string }

export function planShadows(ranking: readonly { component: string; expectedFailedPerMonth: number }[], costs: readonly ShadowCostInput[], opts: PlanOptions): ShadowPlan {
  const o = resolve(costs, opts);
  if (!Array.isArray(ranking)) throw new ImpactError("ranking: must be an array (rankImpact's result)");
  const expected = new Map<string, number>();
  ranking.forEach((r, i) => {
    if (typeof r?.component !== "string") throw new ImpactError(`ranking[${i}].component: must be a string`);
    expected.set(r.component, checkNumber(`ranking[${i}].expectedFailedPerMonth`, r.expectedFailedPerMonth, { min: 0 }));
  });
  const byName = new Map(costs.map((c) => [c.component, c]));
  const names = [...new Set([...expected.keys(), ...byName.keys()])].sort();
  const cands: PlanCandidate[] = names.map((name) => {
    const sizing = sizeShadow(byName.get(name) ?? { component: name }, o.prices, o);
    const m = sizing.monthly;
    const monthlyCost = m.cpu === null || m.memory === null ? null : m.cpu + m.memory + m.transfer;
    const e = expected.get(name) ?? 0;
    const benefit = e * o.expectedReduction;
    return {
      component: name, verdict: "over budget" as Verdict, reason: "", monthlyCost, expectedFailedPerMonth: e, benefitPerMonth: benefit,
      benefitPerCost: monthlyCost === null ? null : monthlyCost > 0 ? benefit / monthlyCost : benefit > 0 ? Infinity : 0, sizing,
    };
  });

  const items: Item[] = [];
  const chosen = new Set<number>();
  cands.forEach((c, i) => {
    if (c.monthlyCost === null) {
      c.verdict = "needs sizing";
      c.reason = `${byName.has(c.component) ? "cost unknown" : "no cost input"}: set ${[c.sizing.cores === null ? "cpuCores" : "", c.sizing.memoryGiB === null ? "memoryGiB" : ""].filter(Boolean).join(" and ")} (the primary's) to price its shadow`;
    } else if (!(c.benefitPerMonth > 0)) {
      c.verdict = "no expected benefit";
      c.reason = expected.has(c.component) ? "no failed requests expected if it failed (no traffic through it)" : "not in the impact ranking (not a callee in the service graph)";
    } else if (c.monthlyCost === 0) chosen.add(i);
    else if (c.monthlyCost > o.budget) c.reason = `costs ${money(c.monthlyCost)}/month, more than the whole budget of ${money(o.budget)}`;
    else items.push({ i, cost: c.monthlyCost, benefit: c.benefitPerMonth, name: c.component });
  });

  const steps = o.gridSteps;
  const method: ShadowPlan["method"] = items.length * (steps + 1) <= o.maxExactCells ? "exact" : "greedy";
  const picked = method === "exact" ? knapsack(items, o.budget, steps) : greedy(items, o.budget);
  // Float safety: never over the budget; then fill what the grid's rounding left with real costs.
  let spent = picked.reduce((s, it) => s + it.cost, 0);
  const byRatio = (a: Item, b: Item) => b.benefit / b.cost - a.benefit / a.cost || (a.name < b.name ? -1 : 1);
  picked.sort(byRatio);
  while (spent > o.budget && picked.length) spent -= picked.pop()!.cost;
  const taken = new Set(picked.map((it) => it.i));
  for (const it of [...items].sort(byRatio)) if (!taken.has(it.i) && spent + it.cost <= o.budget) { taken.add(it.i); spent += it.cost; }
  for (const i of taken) chosen.add(i);
  // The total as reported (summed in candidate order) must not exceed the budget either.
  const sum = () => [...chosen].sort((a, b) => a - b).reduce((s, i) => s + cands[i]!.monthlyCost!, 0);
  let totalCost = sum();
  while (totalCost > o.budget) {
    const worst = items.filter((it) => chosen.has(it.i)).sort(byRatio).pop();
    if (!worst) break;
    chosen.delete(worst.i);
    totalCost = sum();
  }
  let totalBenefit = 0;
  for (const i of [...chosen].sort((a, b) => a - b)) totalBenefit += cands[i]!.benefitPerMonth;
  const left = o.budget - totalCost;
  for (const i of chosen) {
    const c = cands[i]!;
    c.verdict = "chosen";
    c.reason = `avoids ~${compact(c.benefitPerMonth)} weighted failed requests/month for ${money(c.monthlyCost!)}/month`;
  }
  for (const it of items) if (!chosen.has(it.i)) {
    cands[it.i]!.reason = `${money(it.cost)}/month does not fit: the chosen shadows avoid more within the budget (${money(left)} left)`;
  }
  const rank: Record<Verdict, number> = { chosen: 0, "over budget": 1, "needs sizing": 2, "no expected benefit": 3 };
  cands.sort((a, b) => rank[a.verdict] - rank[b.verdict] || b.benefitPerMonth - a.benefitPerMonth || (a.component < b.component ? -1 : 1));
  const sizing = cands.filter((c) => c.verdict === "needs sizing").length;
  return {
    method, resolution: o.budget / steps, budget: o.budget, totalCost, totalBenefit, budgetLeft: left, candidates: cands,
    summary: `${chosen.size} of ${cands.length} shadows chosen for ${money(totalCost)}/month of ${money(o.budget)} (${money(left)} left), avoiding ~${compact(totalBenefit)} weighted failed requests/month (${method})${sizing ? `; ${sizing} need sizing` : ""}`,
  };
}

/** 0/1 knapsack, exact on the grid budget/steps with costs rounded up. */
function knapsack(items: readonly Item[], budget: number, steps: number): Item[] {
  const n = items.length;
  if (n === 0 || budget <= 0) return [];
  const unit = budget / steps;
  const w = items.map((it) => {
    let k = Math.ceil(it.cost / unit);
    while (k * unit < it.cost) k++;
    return Math.min(k, steps); // cost ≤ budget = steps·unit, so at most `steps` in reals
  });
  const W = steps + 1;
  const dp = new Float64Array(W);
  const keep = new Uint8Array(n * W);
  for (let i = 0; i < n; i++) {
    const wi = w[i]!, bi = items[i]!.benefit, row = i * W;
    for (let c = steps; c >= wi; c--) {
      const v = dp[c - wi]! + bi;
      if (v > dp[c]!) { dp[c] = v; keep[row + c] = 1; }
    }
  }
  const out: Item[] = [];
  let c = steps;
  for (let i = n - 1; i >= 0; i--) if (keep[i * W + c]) { out.push(items[i]!); c -= w[i]!; }
  return out;
}

/** Greedy by benefit/cost, or the single most beneficial item when that is better. */
function greedy(items: readonly Item[], budget: number): Item[] {
  const sorted = [...items].sort((a, b) => b.benefit / b.cost - a.benefit / a.cost || (a.name < b.name ? -1 : 1));
  const out: Item[] = [];
  let spent = 0, total = 0;
  for (const it of sorted) if (spent + it.cost <= budget) { out.push(it); spent += it.cost; total += it.benefit; }
  const best = items.reduce<Item | null>((b, it) => (it.cost <= budget && (!b || it.benefit > b.benefit) ? it : b), null);
  return best && best.benefit > total ? [best] : out;
}

function pct(x: number): string { return `${Math.round(x * 1000) / 10}%`; }
function round3(x: number): number { return Math.round(x * 1000) / 1000; }
