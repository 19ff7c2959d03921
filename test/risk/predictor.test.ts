// The failure predictor: the documented prior, training on a synthetic labelled history drawn from a
// known model (seeded), calibration on held-out data, and labelling from a failure log.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FailurePredictor, PRIOR, SIGNAL_KINDS, calibration, emptyFeatures, excess, kindIndex, labelHistory, train, type LabelledSample } from "../../controller/risk/predictor.js";
import { mulberry32 } from "../support/random.js";

const feat = (over: Partial<Record<(typeof SIGNAL_KINDS)[number], number>>) => {
  const f = emptyFeatures();
  for (const [k, v] of Object.entries(over)) f[kindIndex(k as any)] = v!;
  return f;
};

test("the prior: quiet is ~0.25 %, one noisy resource metric stays low, corroborated errors and latency are high", () => {
  const p = new FailurePredictor();
  assert.ok(Math.abs(p.predict(emptyFeatures()) - 0.00247) < 1e-4);
  assert.ok(p.predict(feat({ cpu: 1 })) < 0.05, "one resource metric alone");
  assert.ok(p.predict(feat({ error_rate: 1 })) < 0.3);
  assert.ok(p.predict(feat({ error_rate: 1, latency: 1 })) > 0.9);
  assert.ok(p.predict(feat({ exhaustion: 1 })) > 0.7);
  assert.is(excess(0.5), 0, "a record high at the edge of the range is no evidence");
  assert.is(excess(0.96), 1);
});

/** A labelled history from a known logistic model over sparse features (most snapshots are quiet). */
function history(seed: number, n: number, truth: { bias: number; w: Record<string, number> }): LabelledSample[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const f = emptyFeatures();
    for (let k = 0; k < f.length; k++) if (rand() < 0.15) f[k] = rand();
    let z = truth.bias;
    SIGNAL_KINDS.forEach((k, i) => (z += (truth.w[k] ?? 0) * f[i]!));
    return { features: f, failed: rand() < 1 / (1 + Math.exp(-z)) };
  });
}

test("training on a labelled history recovers the model and is calibrated on held-out data", () => {
  const truth = { bias: -3, w: { error_rate: 6, latency: 3, cpu: 0.5, memory: 4, exhaustion: 5 } };
  const trainSet = history(1, 20_000, truth), heldOut = history(2, 20_000, truth);
  const model = train(trainSet);
  assert.ok(Math.abs(model.bias - truth.bias) < 0.3, `bias ${model.bias}`);
  assert.ok(Math.abs(model.weights.error_rate - 6) < 0.8, `error_rate weight ${model.weights.error_rate}`);
  assert.ok(Math.abs(model.weights.memory - 4) < 0.8, `memory weight ${model.weights.memory}`);
  const trained = calibration(new FailurePredictor(model), heldOut);
  const prior = calibration(new FailurePredictor(PRIOR), heldOut);
  assert.ok(trained.ece < 0.02, `trained ECE ${trained.ece}`);
  assert.ok(prior.ece > 3 * trained.ece, `the prior is worse calibrated for this history: ${prior.ece} vs ${trained.ece}`);
  // Deterministic: the same history gives the same model.
  assert.equal(train(trainSet), model);
});

test("with few labels the model stays near the prior (the prior is a Gaussian around PRIOR)", () => {
  const few = history(3, 20, { bias: -3, w: { cpu: 8 } });
  const m = train(few);
  for (const k of SIGNAL_KINDS) assert.ok(Math.abs(m.weights[k] - PRIOR.weights[k]) < 3, `${k}: ${m.weights[k]}`);
  assert.throws(() => train([]), /no labelled samples/);
});

test("labelHistory: positive within the horizon before a failure, dropped during the outage", () => {
  const f = emptyFeatures();
  const snaps = [0, 100, 500, 900, 1000, 1100, 1500].map((s) => ({ component: "db", tMs: s * 1000, features: f }));
  snaps.push({ component: "queue", tMs: 950_000, features: f });
  const labelled = labelHistory(snaps, [{ component: "db", tMs: 1000_000, recoveredMs: 1200_000 }], 600);
  assert.equal(labelled.map((l) => l.failed), [false, false, true, true, false, false]);
});

test.run();
