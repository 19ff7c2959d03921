// The shadow plan (controller/impact/plan.ts): the budget is never exceeded (property, exact and
// greedy), the exact choice matches a brute-force optimum up to the grid's rounding (property, n ≤ 10),
// sizing advice examples, candidates that need sizing, and bad inputs refused naming the field.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { DEFAULT_PRICES, planShadows, sizeShadow, type ShadowCostInput } from "../../controller/impact/plan.js";

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
const SIZE = { headroom: 1.25, minScale: 0.25, memoryFloor: 0.5, defaultScale: 0.5 };

test("sizing advice from the observed load", () => {
  // 4 cores, 16 GiB at p95 60%: scale 0.6 × 1.25 = 0.75 -> 3 cores, 12 GiB; 1 MiB/s of replication.
  const a = sizeShadow({ component: "orders-db", cpuCores: 4, memoryGiB: 16, cpuP95: 0.6, replicationBytesPerS: 2 ** 20 }, DEFAULT_PRICES, SIZE);
  assert.equal([a.scale, a.scaleSource, a.cores, a.memoryGiB], [0.75, "cpuP95", 3, 12]);
  assert.ok(close(a.transferGiBPerMonth, 2566.40625)); // 2^20 × 2,628,000 / 2^30
  assert.ok(close(a.monthly.cpu!, 87.6) && close(a.monthly.memory!, 43.8) && close(a.monthly.transfer, 51.328125));
  // A quiet primary: the minimum scale 0.25 -> 1 core; memory at the floor, half of 16 GiB.
  const b = sizeShadow({ component: "x", cpuCores: 4, memoryGiB: 16, cpuP95: 0.1 }, DEFAULT_PRICES, SIZE);
  assert.equal([b.scale, b.cores, b.memoryGiB], [0.25, 1, 8]);
  assert.ok(b.notes.some((n) => /minimum scale/.test(n)) && b.notes.some((n) => /working set/.test(n)));
  assert.ok(b.notes.some((n) => /transfer counted as 0/.test(n)));
  // 3 × 0.375 = 1.125 cores, rounded up to 1.25.
  assert.is(sizeShadow({ component: "x", cpuCores: 3, memoryGiB: 10, cpuP95: 0.3 }, DEFAULT_PRICES, SIZE).cores, 1.25);
  // Unknown p95: the default scale, said so.
  const c = sizeShadow({ component: "x", cpuCores: 2, memoryGiB: 4 }, DEFAULT_PRICES, SIZE);
  assert.equal([c.scale, c.scaleSource, c.cores, c.memoryGiB], [0.5, "default", 1, 2]);
  assert.ok(c.notes.some((n) => /cpu p95 unknown/.test(n)));
  // A hot primary: a shadow larger than it.
  const d = sizeShadow({ component: "x", cpuCores: 4, memoryGiB: 8, cpuP95: 0.95, peakRps: 900 }, DEFAULT_PRICES, SIZE);
  assert.equal([d.cores, d.memoryGiB], [4.75, 9.5]);
  assert.ok(d.notes.some((n) => /larger than the primary/.test(n)) && d.notes.some((n) => /900 req\/s/.test(n)));
});

test("a plan: chosen within the budget, over budget, needs sizing, no expected benefit", () => {
  const ranking = [
    { component: "orders-db", expectedFailedPerMonth: 100_000 }, { component: "payments", expectedFailedPerMonth: 60_000 },
    { component: "search", expectedFailedPerMonth: 50_000 }, { component: "cache", expectedFailedPerMonth: 0 },
    { component: "ledger", expectedFailedPerMonth: 80_000 },
  ];
  const costs: ShadowCostInput[] = [
    { component: "orders-db", cpuCores: 4, memoryGiB: 16, cpuP95: 0.6, replicationBytesPerS: 2 ** 20 }, // 182.728125
    { component: "payments", cpuCores: 2, memoryGiB: 4, cpuP95: 0.4 }, // scale 0.5: 1 core, 2 GiB: 29.2 + 7.3 = 36.5
    { component: "search", cpuCores: 16, memoryGiB: 64, cpuP95: 0.8 }, // 16 cores, 64 GiB: 467.2 + 233.6 = 700.8
    { component: "cache", cpuCores: 1, memoryGiB: 1 },
    { component: "ledger", cpuCores: 2 }, // memory unknown
    { component: "batch", cpuCores: 1, memoryGiB: 2 }, // not in the ranking
  ];
  const p = planShadows(ranking, costs, { budget: 250 });
  const v = Object.fromEntries(p.candidates.map((c) => [c.component, c.verdict]));
  assert.equal(v, { "orders-db": "chosen", payments: "chosen", search: "over budget", ledger: "needs sizing", cache: "no expected benefit", batch: "no expected benefit" });
  assert.is(p.method, "exact");
  assert.ok(close(p.totalCost, 182.728125 + 36.5), String(p.totalCost));
  assert.ok(close(p.totalBenefit, 0.9 * 160_000));
  assert.ok(close(p.budgetLeft, 250 - p.totalCost));
  const ledger = p.candidates.find((c) => c.component === "ledger")!;
  assert.is(ledger.monthlyCost, null);
  assert.match(ledger.reason, /memoryGiB/);
  assert.match(p.candidates.find((c) => c.component === "search")!.reason, /more than the whole budget/);
  assert.match(p.summary, /^2 of 6 shadows chosen for 219\.23\/month of 250\.00 .*\(exact\); 1 need sizing$/);
  // No cost input at all: needs sizing too, never free.
  const q = planShadows([{ component: "lonely", expectedFailedPerMonth: 5 }], [], { budget: 1000 });
  assert.equal([q.candidates[0]!.verdict, q.totalCost], ["needs sizing", 0]);
  assert.match(q.candidates[0]!.reason, /cpuCores and memoryGiB/);
});

const candidates = fc.array(fc.record({
  expected: fc.oneof(fc.constant(0), fc.double({ min: 1, max: 1e6, noNaN: true })),
  cores: fc.oneof(fc.constant(0), fc.double({ min: 0.1, max: 64, noNaN: true })),
  mem: fc.double({ min: 0, max: 256, noNaN: true }),
  p95: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
  bytes: fc.option(fc.double({ min: 0, max: 1e7, noNaN: true }), { nil: undefined }),
}), { maxLength: 40 });
const inputs = (cs: { expected: number; cores: number; mem: number; p95?: number; bytes?: number }[]) => ({
  ranking: cs.map((c, i) => ({ component: `c${i}`, expectedFailedPerMonth: c.expected })),
  costs: cs.map((c, i): ShadowCostInput => ({ component: `c${i}`, cpuCores: c.cores, memoryGiB: c.mem, ...(c.p95 === undefined ? {} : { cpuP95: c.p95 }), ...(c.bytes === undefined ? {} : { mirrorBytesPerS: c.bytes }) })),
});

test("the budget is never exceeded, exact or greedy (property)", () => {
  fc.assert(fc.property(candidates, fc.double({ min: 0, max: 5000, noNaN: true }), fc.boolean(), (cs, budget, exact) => {
    const { ranking, costs } = inputs(cs);
    const p = planShadows(ranking, costs, { budget, ...(exact ? {} : { maxExactCells: 0 }) });
    const chosen = p.candidates.filter((c) => c.verdict === "chosen");
    const sum = chosen.reduce((s, c) => s + c.monthlyCost!, 0);
    const contested = p.candidates.some((c) => c.monthlyCost !== null && c.monthlyCost > 0 && c.monthlyCost <= budget && c.benefitPerMonth > 0);
    return (exact ? p.method === "exact" : p.method === "greedy" || !contested) && p.totalCost <= budget && sum <= budget * (1 + 1e-12) && p.budgetLeft >= 0
      && chosen.every((c) => c.benefitPerMonth > 0) && p.candidates.length === cs.length;
  }), { numRuns: 300, seed: 1 });
});

test("for n ≤ 10 the exact choice is a brute-force optimum up to the grid's rounding (property)", () => {
  fc.assert(fc.property(candidates.filter((cs) => cs.length <= 10), fc.double({ min: 1, max: 3000, noNaN: true }), fc.constantFrom(50, 2000), (cs, budget, gridSteps) => {
    const { ranking, costs } = inputs(cs);
    const p = planShadows(ranking, costs, { budget, gridSteps });
    const items = p.candidates.filter((c) => c.monthlyCost !== null && c.benefitPerMonth > 0);
    const brute = (cap: number) => {
      let best = 0;
      for (let m = 0; m < 1 << items.length; m++) {
        let cost = 0, benefit = 0;
        items.forEach((it, i) => { if (m & (1 << i)) { cost += it.monthlyCost!; benefit += it.benefitPerMonth; } });
        if (cost <= cap && benefit > best) best = benefit;
      }
      return best;
    };
    // Rounding each cost up by less than one grid step loses at most n steps of budget.
    const lower = brute(budget - items.length * (budget / gridSteps)), upper = brute(budget);
    return p.totalBenefit >= lower * (1 - 1e-9) && p.totalBenefit <= upper * (1 + 1e-9);
  }), { numRuns: 300, seed: 2 });
});

test("bad inputs are refused naming the field", () => {
  const r = [{ component: "a", expectedFailedPerMonth: 1 }];
  const c: ShadowCostInput[] = [{ component: "a", cpuCores: 1, memoryGiB: 1 }];
  assert.throws(() => planShadows(r, c, { budget: -1 }), /^budget: must be a finite number ≥ 0 \(got -1\)/);
  assert.throws(() => planShadows(r, c, { budget: Infinity }), /^budget: .*got Infinity/);
  assert.throws(() => planShadows(r, c, { budget: NaN }), /^budget: .*got NaN/);
  assert.throws(() => planShadows(r, c, { budget: 10, prices: { cpuCoreHour: -0.1 } }), /^prices\.cpuCoreHour: /);
  assert.throws(() => planShadows(r, c, { budget: 10, prices: { gpuHour: 1 } as never }), /^prices\.gpuHour: unknown price/);
  assert.throws(() => planShadows(r, c, { budget: 10, expectedReduction: 2 }), /^expectedReduction: must be a finite number ≥ 0 ≤ 1/);
  assert.throws(() => planShadows(r, [{ component: "a", cpuCores: 1, memoryGiB: 1, cpuP95: 1.5 }], { budget: 10 }), /^costs\[0\]\.cpuP95: /);
  assert.throws(() => planShadows(r, [...c, { component: "a" }], { budget: 10 }), /^costs\[1\]\.component: a is listed twice/);
  assert.throws(() => planShadows(r, [{ component: "a", cpus: 2 } as never], { budget: 10 }), /^costs\[0\]\.cpus: unknown field/);
  assert.throws(() => planShadows([{ component: "a", expectedFailedPerMonth: -3 }], c, { budget: 10 }), /^ranking\[0\]\.expectedFailedPerMonth: /);
});

test.run();
