// NAB's score calibration (controller/risk/nab/calibrate.ts): the views' raw score times its ratio
// to the series' record (the highest raw score in the last `memory` points before it), then alarm
// suppression; strictly streaming.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CalibratedDetector, DEFAULT_CALIBRATION, relativeToRecord } from "../../controller/risk/nab/calibrate.js";
import { SeriesDetector, seriesOptions } from "../../controller/risk/detectors/series.js";
import { scoreSeries } from "../../controller/risk/nab/detector.js";
import { DEFAULT_ENVELOPE } from "../../controller/risk/detectors/envelope.js";
import { mulberry32, normal } from "../support/random.js";

/** An inner detector whose only view (the baseline) gives the scores listed, in order. */
function scripted(raws: number[]): SeriesDetector {
  let i = 0;
  const d = { baselineScore: 0, changePoint: null, trend: null, envelope: null, profile: null, volatility: null, rawScore: 0, update() { this.baselineScore = this.rawScore = raws[i++] ?? 0; return this.baselineScore; } };
  return d as unknown as SeriesDetector;
}
const run = (raws: number[], opts = DEFAULT_CALIBRATION) => {
  const c = new CalibratedDetector(scripted(raws), opts);
  return raws.map((_, i) => c.update(i, 0));
};
const close = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-12);

test("relativeToRecord: a record is unchanged, a lower score is raw^2 / record, no record leaves it unchanged", () => {
  assert.is(relativeToRecord(0.9, 0.8), 0.9);
  assert.is(relativeToRecord(0.9, 0.9), 0.9);
  assert.ok(Math.abs(relativeToRecord(0.5, 1) - 0.25) < 1e-12);
  assert.ok(Math.abs(relativeToRecord(0.9, 0.95) - 0.81 / 0.95) < 1e-12);
  assert.is(relativeToRecord(0.4, 0), 0.4);
  assert.is(relativeToRecord(0, 0.7), 0);
});

test("defaults: the envelope view's memory and SeriesDetector's 200-point rest", () => {
  assert.is(DEFAULT_CALIBRATION.memory, DEFAULT_ENVELOPE.memory);
  assert.is(DEFAULT_CALIBRATION.restPoints, seriesOptions().restPoints);
});

test("the same raw score is reported in full by a series that never scored higher, discounted by one that did", () => {
  const opts = { memory: 100, restPoints: 0 };
  const quiet = run([0.1, 0.2, 0.1, 0.7], opts);
  const noisy = run([0.1, 0.95, 0.1, 0.7], opts);
  assert.ok(Math.abs(quiet[3]! - 0.7) < 1e-12);
  assert.ok(Math.abs(noisy[3]! - 0.49 / 0.95) < 1e-12);
});

test("the record forgets scores older than `memory` points", () => {
  const raws = [0.9, 0, 0, 0, 0.5, 0.5];
  const s = run(raws, { memory: 4, restPoints: 0 });
  assert.ok(Math.abs(s[4]! - 0.25 / 0.9) < 1e-12, "0.9 is 4 points back: still remembered");
  assert.ok(Math.abs(s[5]! - 0.5) < 1e-12, "0.9 is 5 points back: forgotten, 0.5 ties the record");
});

test("alarm suppression applies to the calibrated score: within restPoints only a higher score is reported in full", () => {
  const s = run([0.8, 0.8, 0.8, 0.9, 0, 0.6], { memory: 100, restPoints: 3 });
  assert.ok(close(s, [0.8, 0.4, 0.4, 0.9, 0, (0.36 / 0.9) * 0.5]), String(s));
  const later = run([0.8, 0, 0, 0, 0.8], { memory: 100, restPoints: 3 });
  assert.ok(Math.abs(later[4]! - 0.8) < 1e-12, "after the rest a repeat is reported in full");
});

test("the views NAB uses are combined before calibration, and the calibrated detector is strictly streaming", () => {
  const rand = mulberry32(7);
  const n = 3000;
  const times = new Float64Array(n), values = new Float64Array(n);
  for (let i = 0; i < n; i++) { times[i] = i * 300_000; values[i] = 50 + 10 * Math.sin(i / 40) + normal(rand) + (i > 2500 && i < 2510 ? 30 : 0); }
  const inner = new SeriesDetector(seriesOptions({ side: "both", changePoint: true, envelope: true }));
  const c = new CalibratedDetector(inner);
  let record = 0;
  for (let i = 0; i < n; i++) {
    const s = c.update(times[i]!, values[i]!);
    assert.is(c.raw, Math.max(inner.baselineScore, inner.changeScore, inner.envelopeScore));
    assert.is(c.recordScore, record);
    assert.ok(s >= 0 && s <= 1 && s <= c.raw + 1e-15);
    record = Math.max(record, c.raw);
  }
  const full = scoreSeries(times, values);
  for (const cut of [1, 17, 1234, 2505]) assert.equal(Array.from(scoreSeries(times.subarray(0, cut), values.subarray(0, cut))), Array.from(full.subarray(0, cut)));
});

test("refuses a memory that is not a positive integer", () => {
  assert.throws(() => new CalibratedDetector(scripted([]), { memory: 0, restPoints: 200 }), /memory/);
  assert.throws(() => new CalibratedDetector(scripted([]), { memory: 2.5, restPoints: 200 }), /memory/);
});

test.run();
