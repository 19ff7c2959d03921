// The impact ranking (controller/impact/rank.ts): a hand-computed diamond with a tier weight and one
// measured propagation matched to the number, cycles and the depth limit, the explanation naming the
// top contributor, the hazard's prior scaled by the mean risk, and bad options refused naming the field.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rankImpact } from "../../controller/impact/rank.js";
import type { GraphSnapshot } from "../../controller/impact/graph.js";
import { mulberry32 } from "../support/random.js";

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

/** A snapshot from [caller, callee, rps, propagation?] (nodes derived the way graph.ts does). */
function snap(edges: [string, string, number, number?][]): GraphSnapshot {
  const names = [...new Set(edges.flatMap(([a, b]) => (a === "other" ? [b] : [a, b])))].sort();
  return {
    atMs: 0,
    nodes: names.map((n) => {
      const inE = edges.filter((e) => e[1] === n);
      return { name: n, inboundRps: inE.reduce((s, e) => s + e[2], 0), errorRatio: 0, callers: inE.length, isCaller: edges.some((e) => e[0] === n), isCallee: inE.length > 0 };
    }),
    edges: edges.map(([caller, callee, rps, p]) => ({ caller, callee, rps, errorRatio: 0.01, meanLatencyMs: 5, propagation: p ?? null, samples: p === undefined ? 0 : 120, lastSeenMs: 0 })),
  };
}

// The diamond: web (tier 3) and admin call api; api calls cart and checkout; both call db; mobile
// calls checkout. Inbound: api 100, cart 50, checkout 30, db 65.
//   q(cart|db) = 25/50 = 0.5 (structural), q(checkout|db) = 0.6 (measured),
//   q(api|cart) = 50/100 = 0.5, q(api|checkout) = 20/100 = 0.2.
// db down: p(cart) = 0.5, p(checkout) = 0.6, p(api) = 1 - (1 - 0.5·0.5)(1 - 0.6·0.2) = 1 - 0.75·0.88 = 0.34.
//   Entry traffic: checkout 10 (mobile, weight 1) -> 0.6·10 = 6; api 80·3 + 20·1 = 260 -> 0.34·260 = 88.4.
//   Weighted 6 + 88.4 = 94.4 req/s (unweighted 6 + 0.34·100 = 40). api's strongest path is via cart
//   (0.25 > 0.12): via cart 88.4, via checkout 6.
//   Hazard: 2 failures in 2,160 h with the prior 1 in 2,160 h: 3/4,320 per hour = 1.5 per 90 days.
//   Per month: 3/4,320 × 730 × 600 s × 94.4 = 28,713.33…
// api down: 240 + 20 = 260; prior only (1 per 90 days): 1/2,160 × 730 × 600 × 260 = 52,722.2…
// cart down: p(api) = 0.5: 130 -> 26,361.1…; checkout down: 10 + 0.2·260 = 62 -> 12,572.2…
const DIAMOND = snap([
  ["web", "api", 80], ["admin", "api", 20], ["api", "cart", 50], ["api", "checkout", 20], ["mobile", "checkout", 10],
  ["cart", "db", 25], ["checkout", "db", 40, 0.6],
]);

test("a hand-computed diamond with a tier weight, matched to the number", () => {
  const r = rankImpact(DIAMOND, { tiers: { web: 3 }, history: { db: { failures: 2, observedHours: 2160 } } });
  assert.equal(r.map((x) => x.component), ["api", "db", "cart", "checkout"]);
  const db = r.find((x) => x.component === "db")!;
  assert.ok(close(db.weightedFailedRps, 94.4), String(db.weightedFailedRps));
  assert.ok(close(db.failedRps, 40));
  assert.ok(close(db.hazardPerHour, 3 / 4320));
  assert.ok(close(db.expectedFailedPerMonth, 28713.333333333332), String(db.expectedFailedPerMonth));
  assert.ok(close(r[0]!.expectedFailedPerMonth, 52722.22222222222));
  assert.ok(close(r[2]!.weightedFailedRps, 130) && close(r[2]!.expectedFailedPerMonth, 26361.111111111111));
  assert.ok(close(r[3]!.weightedFailedRps, 62) && close(r[3]!.expectedFailedPerMonth, 12572.222222222222));
  const [c0, c1] = db.explanation.contributors;
  assert.equal([c0!.kind, c0!.caller], ["via", "cart"]);
  assert.ok(c0?.kind === "via" && close(c0.weightedFailedRps, 88.4) && c0.propagation === 0.5 && c0.propagationSource === "structural");
  assert.ok(c1?.kind === "via" && close(c1.weightedFailedRps, 6) && c1.propagation === 0.6 && c1.propagationSource === "measured");
  assert.is(db.explanation.hazard.per90Days, 1.5);
  assert.is(db.text, "db: 94.4 weighted failed req/s if down (88.4 via cart (propagation 0.5 structural), 6 via checkout (propagation 0.6 measured)); 1.5 failures/90d ⇒ 28.7k failed requests/month");
  assert.is(r[0]!.text, "api: 260 weighted failed req/s if down (direct 240 from web [tier 3], 20 from admin); 1 failures/90d ⇒ 52.7k failed requests/month");
});

test("a tier on a node weighs the traffic entering there; \"other\" is entry traffic", () => {
  const s = snap([["other", "checkout", 10], ["mobile", "checkout", 5], ["checkout", "pay", 15]]);
  const r = rankImpact(s, { tiers: { checkout: 2, mobile: 4 } });
  const pay = r.find((x) => x.component === "pay")!;
  assert.ok(close(pay.weightedFailedRps, 10 * 2 + 5 * 4) && close(pay.failedRps, 15));
  // Names are data, not object keys: no prototype lookups.
  const proto = rankImpact(snap([["toString", "constructor", 2]]), { tiers: {}, history: {} })[0]!;
  assert.equal([proto.weightedFailedRps, proto.hazardPerHour], [2, 1 / 2160]);
});

test("the mean risk scales the prior's failures only", () => {
  const h = (meanRisk?: number) => rankImpact(snap([["c", "s", 1]]), { history: { s: { failures: 1, observedHours: 1000, ...(meanRisk === undefined ? {} : { meanRisk }) } } })[0]!.hazardPerHour;
  assert.ok(close(h(), 2 / 3160));
  assert.ok(close(h(0.2), 3 / 3160)); // 0.2 / 0.1 = 2× the prior's 1 failure
  assert.ok(close(h(1), 5 / 3160)); // capped at 4×
  assert.ok(close(h(0), 1.25 / 3160)); // floored at 0.25×
});

test("cycles terminate, and no node's failure fails more than the traffic that enters", () => {
  const ring = rankImpact(snap([["client", "a", 10], ["a", "b", 10], ["b", "c", 10], ["c", "a", 10]]));
  for (const x of ring) assert.ok(Number.isFinite(x.weightedFailedRps) && x.weightedFailedRps <= 10 + 1e-9, x.text);
  // c down: q(b|c) = 10/10, so b fails fully; q(a|b) = 10/20 (a serves the client's 10 and c's 10): 0.5·10 = 5.
  assert.ok(close(ring.find((x) => x.component === "c")!.weightedFailedRps, 5));
  const rand = mulberry32(5);
  const edges: [string, string, number, number?][] = [];
  for (let i = 0; i < 60; i++) {
    edges.push([`client${i % 4}`, `s${i}`, 1 + Math.floor(rand() * 50)]);
    for (let k = 0; k < 6; k++) edges.push([`s${i}`, `s${Math.floor(rand() * 60)}`, 1 + Math.floor(rand() * 80), rand() < 0.3 ? rand() : undefined]);
  }
  const uniq = [...new Map(edges.map((e) => [`${e[0]}>${e[1]}`, e])).values()];
  const s = snap(uniq);
  const entry = uniq.filter((e) => e[0].startsWith("client")).reduce((a, e) => a + e[2], 0);
  const r = rankImpact(s, { depthLimit: 20 });
  assert.is(r.length, 60);
  for (const x of r) assert.ok(x.weightedFailedRps <= entry + 1e-9 && x.weightedFailedRps >= 0, x.text);
});

test("the depth limit stops the walk and says so", () => {
  const chain: [string, string, number][] = [["client", "n0", 7]];
  for (let i = 0; i < 10; i++) chain.push([`n${i}`, `n${i + 1}`, 7]);
  const at = (depthLimit: number) => rankImpact(snap(chain), { depthLimit }).find((x) => x.component === "n10")!;
  assert.is(at(6).weightedFailedRps, 0);
  assert.is(at(6).explanation.depthLimited, true);
  assert.is(at(6).explanation.reached, 7);
  assert.ok(close(at(10).weightedFailedRps, 7));
  assert.is(at(10).explanation.depthLimited, false);
});

test("bad options are refused naming the field", () => {
  assert.throws(() => rankImpact(DIAMOND, { tiers: { web: -1 } }), /^tiers\.web: must be a finite number ≥ 0 \(got -1\)/);
  assert.throws(() => rankImpact(DIAMOND, { history: { db: { failures: 1, observedHours: 10, meanRisk: 2 } } }), /^history\.db\.meanRisk: /);
  assert.throws(() => rankImpact(DIAMOND, { prior: { failures: 1, hours: 0 } }), /^prior\.hours: /);
  assert.throws(() => rankImpact(DIAMOND, { depthLimit: 1.5 }), /^depthLimit: must be an integer/);
});

test.run();
