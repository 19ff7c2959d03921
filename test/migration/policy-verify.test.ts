// Policy files are rejected with their file, line, column and field; defaults and durations resolve as
// documented. Verification decides pass/fail only with evidence: sparse and zero-heavy samples are
// inconclusive, no data is never a pass, and a clear regression fails.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEFAULT_POLICY, loadPolicyFile, parsePolicy, PolicyError } from "../../controller/migration/policy.js";
import { countAbove, normalQuantile, timeUniformZ, verify, wilson } from "../../controller/migration/verify.js";
import { mulberry32 } from "../../host/random.js";
import { LatencySketch } from "../../controller/telemetry/sketch.js";

const rejects = (text: string, re: RegExp) =>
  assert.throws(() => parsePolicy(text, "p.yaml"), (e: unknown) => e instanceof PolicyError && re.test(e.message), `expected ${re}`);

test("a bad policy file is rejected with its line, column and field", () => {
  rejects("components:\n  orders:\n    steps: [1, 5, 150]\n", /^p\.yaml:3:19: components\.orders\.steps\[2\]: must be at most 100 \(percent\)$/);
  rejects("components:\n  orders:\n    steps: [10, 5, 100]\n", /^p\.yaml:3:17: components\.orders\.steps\[1\]: weights must increase: 5% after 10%$/);
  rejects("components:\n  orders:\n    steps: [10, 50]\n", /steps\[1\]: the last step must be 100/);
  rejects("components:\n  orders:\n    risk:\n      enter: 0.5\n      leave: 0.6\n", /^p\.yaml:5:7: components\.orders\.risk\.leave: must be below risk\.enter \(0\.5\)/);
  rejects("components:\n  orders:\n    preflight:\n      maxLag: 3\n", /^p\.yaml:4:7: components\.orders\.preflight\.maxLag: unknown field \(allowed: maxReplicationLagSeconds,/);
  rejects("components:\n  orders:\n    steps:\n      - weight: 10\n        bake: 5 minutes\n      - 100\n", /^p\.yaml:5:9: components\.orders\.steps\[0\]\.bake: must be a duration such as "30s"/);
  rejects("defaults:\n  risk: { enter: 0.3 }\ncomponents:\n  orders: {}\n", /^p\.yaml:2:\d+: defaults\.risk\.leave: must be below risk\.enter/);
  rejects("components:\n  orders: {\n", /^p\.yaml:\d+:\d+: \(document\): YAML syntax/);
  rejects("components:\n  Orders DB: {}\n", /components\.Orders DB: invalid name: component names are lower-case/);
  const dir = mkdtempSync(path.join(tmpdir(), "sm-policy-"));
  try {
    const f = path.join(dir, "policy.yaml");
    writeFileSync(f, "components:\n  orders:\n    gates: { approveFull: yes please }\n");
    assert.throws(() => loadPolicyFile(f), (e: unknown) => e instanceof PolicyError && e.file === f && e.line === 3 && e.field === "components.orders.gates.approveFull");
  } finally { rmSync(dir, { recursive: true }); }
});

test("defaults, durations and per-step settings resolve", () => {
  const set = parsePolicy(`
defaults:
  bake: 30s
  risk: { enterFor: 1m }
components:
  orders:
    steps: [{ weight: 2, bake: 2m, check: none }, 50, 100]
  cache: ~
`, "p.yaml");
  const o = set.components.get("orders")!;
  assert.equal(o.steps, [{ weightBp: 200, bakeMs: 120_000, check: "none" }, { weightBp: 5000, bakeMs: 30_000, check: "verify" }, { weightBp: 10_000, bakeMs: 30_000, check: "verify" }]);
  assert.is(o.risk.enterForMs, 60_000);
  assert.is(o.risk.enter, DEFAULT_POLICY.risk.enter);
  assert.equal(set.components.get("cache")!.steps.map((s) => s.weightBp), [100, 500, 2500, 5000, 10_000]);
  assert.ok(set.components.get("cache")!.steps.every((s) => s.bakeMs === 30_000));
});

const spec = DEFAULT_POLICY.verification;
const baseline = { requests: 10_000, errorRate: 0.001, latencyMs: 20 };
function lat(n: number, ms: (i: number) => number): LatencySketch {
  const s = new LatencySketch();
  for (let i = 0; i < n; i++) s.add(ms(i) * 1000);
  return s;
}

test("emergency, fast path and lease settings resolve, and bad ones are refused by field", () => {
  const p = parsePolicy("defaults:\n  promotion: { lease: 20s, leaseAtRisk: 5s, maxClockSkew: 250ms }\n  emergency: { window: 3s, minRequests: 10 }\n  fastPath: { risk: 0.95 }\ncomponents:\n  orders: { fastPath: false }\n  cart: {}\n", "p.yaml");
  assert.equal(p.defaults.promotion, { drainTimeoutMs: 60_000, actionTimeoutMs: 30_000, leaseMs: 20_000, leaseAtRiskMs: 5_000, maxClockSkewMs: 250, pauseWritesMs: 5_000 });
  assert.equal(p.defaults.emergency, { ...DEFAULT_POLICY.emergency, windowMs: 3_000, minRequests: 10 });
  assert.equal(p.defaults.fastPath, { risk: 0.95, bakeScale: 0.25, mergeSteps: true });
  assert.is(p.components.get("orders")!.fastPath, null, "fastPath: false turns it off");
  assert.equal(p.components.get("cart")!.fastPath, p.defaults.fastPath);
  assert.is(DEFAULT_POLICY.fastPath, null, "off unless asked for");
  rejects("defaults:\n  promotion: { lease: 500ms }\n", /p\.yaml:\d+:\d+: defaults\.promotion\.lease: must be at least 1s/);
  rejects("defaults:\n  promotion: { lease: 10s, leaseAtRisk: 20s }\n", /defaults\.promotion\.leaseAtRisk: must be between 1s and promotion\.lease \(10s\), got 20s/);
  rejects("defaults:\n  promotion: { pauseWrites: 2m }\n", /p\.yaml:\d+:\d+: defaults\.promotion\.pauseWrites: must be a whole number of milliseconds up to 60s .*got 120000ms/);
  assert.is(parsePolicy("defaults:\n  promotion: { pauseWrites: 0s }\n", "p.yaml").defaults.promotion.pauseWritesMs, 0, "0 turns the pause off");
  rejects("defaults:\n  fastPath: { risk: 0.5 }\n", /defaults\.fastPath\.risk: must be at or above risk\.enter \(0\.7\)/);
  rejects("defaults:\n  emergency: { maxFailureShare: 0 }\n", /defaults\.emergency\.maxFailureShare/);
  rejects("defaults:\n  emergency: { ejectShare: 0.5 }\n", /defaults\.emergency.*ejectShare/);
});

test("Wilson bounds and the normal quantile", () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5);
  assert.ok(Math.abs(normalQuantile(0.05) + 1.644854) < 1e-5);
  const w = wilson(0, 100, 1.645);
  assert.is(w.lower, 0);
  assert.ok(Math.abs(w.upper - 0.02634) < 1e-4, String(w.upper));
});

test("sparse and zero-heavy data are inconclusive; no data is never a pass", () => {
  let v = verify(spec, { baseline, target: { requests: 0, errors: 0, latency: null }, consistency: null });
  assert.is(v.outcome, "inconclusive");
  assert.match(v.summary, /only 0 requests/);
  // Zero errors in 250 requests: the bound still allows more than 1.15% errors.
  v = verify({ ...spec, errorRateSlack: 0.001 }, { baseline, target: { requests: 250, errors: 0, latency: lat(250, () => 10) }, consistency: null });
  assert.is(v.checks[0]!.outcome, "inconclusive");
  // Zero-heavy latency (most answers under a microsecond) against a zero baseline: inconclusive, not a division by zero.
  v = verify(spec, { baseline: { requests: 1000, errorRate: 0, latencyMs: 0 }, target: { requests: 5000, errors: 0, latency: lat(5000, (i) => (i % 10 ? 0 : 5)) }, consistency: null });
  assert.is(v.checks.find((c) => c.check === "latency")!.outcome, "inconclusive");
  // Mirrored comparisons that have not happened: inconclusive.
  v = verify(spec, { baseline, target: { requests: 5000, errors: 2, latency: lat(5000, () => 15) }, consistency: { compared: 3, diverged: 0 } });
  assert.is(v.outcome, "inconclusive");
  assert.match(v.summary, /only 3 mirrored reads compared/);
});

test("enough healthy data passes; a clear regression fails and names the check", () => {
  let v = verify(spec, { baseline, target: { requests: 5000, errors: 3, latency: lat(5000, (i) => 10 + (i % 7)) }, consistency: { compared: 2000, diverged: 0 } });
  assert.is(v.outcome, "pass", v.summary);
  v = verify(spec, { baseline, target: { requests: 400, errors: 40, latency: lat(400, () => 12) }, consistency: null });
  assert.is(v.outcome, "fail");
  assert.match(v.summary, /^fail: error_rate errors 40\/400 = 10\.00%: above the limit 1\.10%/);
  v = verify(spec, { baseline, target: { requests: 2000, errors: 0, latency: lat(2000, (i) => (i % 10 === 0 ? 200 : 12)) }, consistency: null });
  assert.is(v.outcome, "fail");
  assert.match(v.summary, /latency p99: requests slower than 30\.0 ms 200\/2000/);
  v = verify(spec, { baseline, target: { requests: 5000, errors: 0, latency: lat(5000, () => 12) }, consistency: { compared: 3000, diverged: 150 } });
  assert.is(v.outcome, "fail");
  assert.match(v.summary, /consistency diverging mirrored reads 150\/3000/);
});

test("checked at every tick of a step, a fault both sides share is called the target's own at most 1 - confidence of the time; a target twice as bad still fails", () => {
  // A 30 s step looked at 10 times a second, as the reconciler does: 7 target and 4 source requests a
  // tick. With one look's z at every look, the shared case failed 147 of these 300 steps (not 30).
  const step = { ...spec, confidence: 0.9, minRequests: 30 };
  const run = (seed: number, pt: number, pc: number): boolean => {
    const rand = mulberry32(seed);
    const t = { requests: 0, errors: 0, latency: null }, c = { requests: 0, errors: 0, latency: null };
    for (let tick = 0; tick < 300; tick++) {
      for (let i = 0; i < 7; i++) { t.requests++; if (rand() < pt) t.errors++; }
      for (let i = 0; i < 4; i++) { c.requests++; if (rand() < pc) c.errors++; }
      if (verify(step, { baseline, target: t, consistency: null, control: c }).outcome === "fail") return true;
    }
    return false;
  };
  const runs = 300;
  let shared = 0, worse = 0;
  for (let seed = 1; seed <= runs; seed++) { if (run(seed, 0.1, 0.1)) shared++; if (run(10_000 + seed, 0.2, 0.1)) worse++; }
  assert.ok(shared / runs <= 0.1, `a shared 10 % error rate failed ${shared} of ${runs} steps`);
  assert.is(worse, runs, "20 % against the source's 10 % fails every step");
  // The bound itself: about 2.8-3.3 across two decades from rho at alpha 0.1, above one look's 1.28.
  for (const t of [30, 300, 3000]) { const z = timeUniformZ(t, 30, 0.1); assert.ok(z > 2.7 && z < 3.3, `z ${z} at ${t}`); }
  assert.throws(() => timeUniformZ(0, 30, 0.1), /need t > 0/);
});

test("a failure both sides share in the same window (a stalled host) is inconclusive; one the source does not share still fails", () => {
  // 30 % of the target's requests over 3x the baseline: a failure against the baseline alone.
  const slowTarget = { requests: 400, errors: 0, latency: lat(400, (i) => (i % 10 < 3 ? 200 : 12)) };
  assert.is(verify(spec, { baseline, target: slowTarget, consistency: null }).outcome, "fail");
  // The source, in the same window, as slow: the host, not the target.
  let v = verify(spec, { baseline, target: slowTarget, consistency: null, control: { requests: 1600, errors: 0, latency: lat(1600, (i) => (i % 10 < 3 ? 200 : 12)) } });
  assert.is(v.outcome, "inconclusive", v.summary);
  assert.match(v.summary, /latency p99: requests slower than 30\.0 ms 120\/400 = 30\.00%.*but the source has as many in the same window \(requests slower than 30\.0 ms: 480\/1600 = 30\.00%\): shared by both sides/);
  // The source fast: the target's own regression, which fails and says what the source showed.
  v = verify(spec, { baseline, target: slowTarget, consistency: null, control: { requests: 1600, errors: 0, latency: lat(1600, () => 12) } });
  assert.is(v.outcome, "fail", v.summary);
  assert.match(v.summary, /the source, in the same window, 0\/1600 = 0\.00%/);
  // An empty source is no control: the baseline alone decides. A small one still tells a clear
  // regression (100 fast requests against 30 % slow) and, as slow, makes it inconclusive. 10 fast
  // requests do not tell it at every look of a step (0 of 10 slow happens 3 % of the time at 30 %):
  // inconclusive, with the z it showed and the z it needed.
  v = verify(spec, { baseline, target: slowTarget, consistency: null, control: { requests: 0, errors: 0, latency: null } });
  assert.is(v.outcome, "fail", v.summary);
  v = verify(spec, { baseline, target: slowTarget, consistency: null, control: { requests: 100, errors: 0, latency: lat(100, () => 12) } });
  assert.is(v.outcome, "fail", v.summary);
  v = verify(spec, { baseline, target: slowTarget, consistency: null, control: { requests: 100, errors: 0, latency: lat(100, (i) => (i % 10 < 3 ? 200 : 12)) } });
  assert.is(v.outcome, "inconclusive", v.summary);
  v = verify(spec, { baseline, target: slowTarget, consistency: null, control: { requests: 10, errors: 0, latency: lat(10, () => 12) } });
  assert.is(v.outcome, "inconclusive", v.summary);
  assert.match(v.summary, /but the source is not clearly better in the same window \(requests slower than 30\.0 ms: 0\/10 = 0\.00%; z 2\.06, where every look of a step needs \d+\.\d\d\): not shown to be the target's own/);
  // Errors: the same rule. 10 % errors on both sides is shared; 10 % against 0.5 % is the target's.
  const erring = { requests: 400, errors: 40, latency: lat(400, () => 12) };
  v = verify(spec, { baseline, target: erring, consistency: null, control: { requests: 2000, errors: 220, latency: lat(2000, () => 12) } });
  assert.is(v.outcome, "inconclusive", v.summary);
  assert.match(v.summary, /error_rate errors 40\/400 = 10\.00%: above the limit 1\.10%.*but the source has as many/);
  v = verify(spec, { baseline, target: erring, consistency: null, control: { requests: 2000, errors: 10, latency: lat(2000, () => 12) } });
  assert.is(v.outcome, "fail", v.summary);
  // Never a pass on a shared failure: a target both slow and erring against a source as bad stays inconclusive.
  v = verify(spec, { baseline, target: { ...slowTarget, errors: 40 }, consistency: null, control: { requests: 1600, errors: 200, latency: lat(1600, (i) => (i % 10 < 4 ? 200 : 12)) } });
  assert.is(v.outcome, "inconclusive", v.summary);
  // Diverging mirrored reads have no control: they fail as before.
  v = verify(spec, { baseline, target: { requests: 5000, errors: 0, latency: lat(5000, () => 12) }, consistency: { compared: 3000, diverged: 150 }, control: { requests: 5000, errors: 0, latency: lat(5000, () => 12) } });
  assert.is(v.outcome, "fail", v.summary);
});

test("countAbove counts from the sketch within its accuracy", () => {
  const s = lat(1000, (i) => i + 1); // 1..1000 ms
  const n = countAbove(s, 900_000);
  assert.ok(n >= 95 && n <= 105, String(n));
  assert.is(countAbove(s, 2_000_000), 0);
  assert.is(countAbove(s, 0), 1000);
});

test.run();
