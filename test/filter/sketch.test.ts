// The latency sketch: 1% relative error on every quantile against exact quantiles, mergeability,
// and agreement between the filter's mapping (AssemblyScript) and the controller's (TypeScript).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LatencySketch, RELATIVE_ACCURACY, bucketIndex, bucketLowerBound, bucketValue, NUM_BUCKETS, SketchDecodeError } from "../../controller/telemetry/sketch.js";
import fc from "fast-check";
import { decodeSketch, encoded, loadSketchWasm, stage } from "../support/sketch-wasm.js";
import { distributions, mulberry32 } from "../support/random.js";

const QUANTILES = [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];
const N = 100_000;

for (const [name, dist] of Object.entries(distributions)) {
  test(`quantiles within 1% relative error of exact over ${N} samples: ${name}`, () => {
    const w = loadSketchWasm();
    const rand = mulberry32(name.length * 7919);
    const values = Float64Array.from({ length: N }, () => dist(rand));
    w.insertMany(stage(w, values), N, 0);
    const sk = decodeSketch(encoded(w, 0));
    assert.is(sk.count, N);
    const sorted = Float64Array.from(values).sort();
    for (const q of QUANTILES) {
      const exact = sorted[Math.floor(q * (N - 1))]!;
      const est = sk.quantile(q);
      if (exact < 1) { assert.ok(est < 1, `q=${q}: sub-microsecond values are reported as such`); continue; }
      const rel = Math.abs(est - exact) / exact;
      assert.ok(rel <= RELATIVE_ACCURACY + 1e-12, `${name} q=${q}: exact ${exact}, sketch ${est}, error ${(rel * 100).toFixed(3)}%`);
    }
  });
}

test("merging two sketches equals one sketch that saw every value", () => {
  const w = loadSketchWasm();
  const rand = mulberry32(42);
  const values = Float64Array.from({ length: 50_000 }, () => distributions.lognormal!(rand));
  const half = values.length / 2;
  const p = stage(w, values);
  w.insertMany(p, half, 0);
  w.insertMany(p + half * 8, values.length - half, 1);
  const b = decodeSketch(encoded(w, 1));
  w.mergeBIntoA();
  const merged = decodeSketch(encoded(w, 0));
  w.clear(0);
  w.insertMany(p, values.length, 0);
  const whole = decodeSketch(encoded(w, 0));
  assert.ok(merged.equals(whole), "merged inside wasm");
  const jsMerged = decodeSketch(encoded(w, 0));
  jsMerged.merge(new LatencySketch());
  const a = new LatencySketch();
  a.merge(decodeSketch((() => { w.clear(0); w.insertMany(p, half, 0); return encoded(w, 0); })()));
  a.merge(b);
  assert.ok(a.equals(whole), "merged on the controller side");
});

test("the growing bucket store: any order of adds and merges gives the counts of one full array", () => {
  // Values from well below 1 us to the top bucket, added one by one or merged from parts, in any order.
  const value = fc.oneof(fc.double({ min: 0, max: 0.999, noNaN: true }), fc.double({ min: 1, max: 2 ** 33, noNaN: true }));
  fc.assert(fc.property(fc.array(value, { maxLength: 200 }), fc.array(fc.nat(3), { maxLength: 200 }), (vs, parts) => {
    const ref = new Float64Array(NUM_BUCKETS);
    const one = new LatencySketch();
    const pieces = [new LatencySketch(), new LatencySketch(), new LatencySketch(), new LatencySketch()];
    vs.forEach((v, i) => { one.add(v); pieces[parts[i] ?? 0]!.add(v); if (v >= 1) ref[bucketIndex(v)]!++; });
    const merged = new LatencySketch();
    for (const p of [pieces[2]!, pieces[0]!, pieces[3]!, pieces[1]!]) merged.merge(p);
    for (let i = 0; i < NUM_BUCKETS; i++) if (one.countAt(i) !== ref[i] || merged.countAt(i) !== ref[i]) return false;
    return merged.equals(one) && (vs.length === 0 || merged.quantile(0.5) === one.quantile(0.5)) && one.bytes <= NUM_BUCKETS * 8;
  }), { seed: 17, numRuns: 300 });
});

test("the controller's mapping is the filter's: same bucket for every value", () => {
  const w = loadSketchWasm();
  const rand = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const v = i < 1000 ? 1 + i * 0.37 : Math.exp(rand() * Math.log(4e9));
    w.clear(0);
    w.insertOne(v);
    const sk = decodeSketch(encoded(w, 0));
    if (v < 1) continue;
    assert.is(sk.countAt(bucketIndex(v)), 1, `value ${v}`);
  }
});

test("every bucket spans at most gamma, so its harmonic midpoint is within 1% of any member", () => {
  const gamma = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
  for (let i = 0; i < NUM_BUCKETS - 1; i++) {
    const lo = bucketLowerBound(i), hi = bucketLowerBound(i + 1);
    assert.ok(hi / lo <= gamma * (1 + 1e-12), `bucket ${i}: ${lo}..${hi}`);
    const mid = bucketValue(i);
    assert.ok((mid - lo) / lo <= RELATIVE_ACCURACY + 1e-12 && (hi - mid) / hi <= RELATIVE_ACCURACY + 1e-12);
    assert.is(bucketIndex(lo * (1 + 1e-12)), i);
  }
});

test("a sketch with other mapping constants is refused, naming the field", () => {
  assert.throws(() => LatencySketch.fromMessage({ relativeAccuracy: 0.02, indexMultiplier: 25, count: 0 }),
    (e: Error) => e instanceof SketchDecodeError && /relative_accuracy: expected 0.01, got 0.02/.test(e.message));
  const w = loadSketchWasm();
  w.insertOne(100);
  const good = decodeSketch(encoded(w, 0));
  assert.is(good.count, 1);
  assert.throws(() => LatencySketch.fromMessage({ relativeAccuracy: 0.01, indexMultiplier: 1 / Math.log(1.01 / 0.99), indexOffset: NUM_BUCKETS, counts: [1], count: 1 }),
    /index_offset: buckets/);
  assert.throws(() => LatencySketch.fromMessage({ relativeAccuracy: 0.01, indexMultiplier: 1 / Math.log(1.01 / 0.99), indexOffset: 3, counts: [1], count: 5 }),
    /count: 5 does not equal/);
});

test.run();
