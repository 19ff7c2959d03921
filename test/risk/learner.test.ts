// Learning the failure model from outcomes, on a synthetic history (seeded) where failures follow a
// rising error rate and resource spikes are harmless: the trained model beats the prior on the newer
// 30 % holdout (Brier) and is adopted; without failures the prior stays and says why; a restart loads
// model.json and puts the trained model back into the engine; the same history gives the same model;
// retraining follows the injected clock (an hour, or the next tick after a failure).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ManualClock, wallMs } from "../../host/clock.js";
import { HistoryStore } from "../../controller/risk/history.js";
import { Learner, ModelFileError, MIN_FAILURES } from "../../controller/risk/learner.js";
import { FailurePredictor, PRIOR, emptyFeatures, kindIndex } from "../../controller/risk/predictor.js";
import { mulberry32 } from "../support/random.js";

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(path.join(tmpdir(), "sm-learner-")); dirs.push(d); return d; };
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const START = 1_700_000_000_000;
const STEP = 10_000;

/**
 * One day of samples every 10 s for 6 components. Episodes start at random: an error-rate ramp over
 * 10 minutes that ends in a failure (5-minute outage) 80 % of the time; harmless CPU or memory spikes
 * of 5 minutes; latency wobbles. Quiet time has small noise on every feature.
 */
function synthetic(seed: number, h: HistoryStore, withFailures = true): number {
  const rand = mulberry32(seed);
  const end = START + 86_400_000;
  for (let c = 0; c < 6; c++) {
    const component = `svc-${c}`;
    let episode: { kind: "errors" | "cpu" | "memory" | "latency"; from: number; to: number; fails: boolean } | null = null;
    let downUntil = -1;
    for (let t = START; t < end; t += STEP) {
      const f = emptyFeatures();
      for (let k = 0; k < f.length; k++) if (rand() < 0.05) f[k] = rand() * 0.3;
      if (!episode && rand() < 1 / 720) {
        const r = rand();
        const kind = r < 0.4 ? "errors" : r < 0.6 ? "cpu" : r < 0.8 ? "memory" : "latency";
        episode = { kind, from: t, to: t + (kind === "errors" ? 600_000 : 300_000), fails: withFailures && kind === "errors" && rand() < 0.8 };
      }
      if (episode) {
        const x = Math.min(1, (t - episode.from) / (episode.to - episode.from) + 0.3);
        if (episode.kind === "errors") { f[kindIndex("error_rate")] = x * (0.8 + 0.2 * rand()); if (rand() < 0.3) f[kindIndex("latency")] = 0.5 * rand(); }
        else if (episode.kind === "latency") f[kindIndex("latency")] = 0.4 + 0.6 * rand();
        else f[kindIndex(episode.kind)] = 0.6 + 0.4 * rand();
        if (t >= episode.to) {
          if (episode.fails) { h.recordFailure({ component, atMs: t, source: "controller", note: "primary down" }); downUntil = t + 300_000; }
          episode = null;
        }
      }
      if (downUntil > 0 && t >= downUntil) { h.recordRecovery(component, t); downUntil = -1; }
      h.add([{ component, tMs: t, risk: 0, features: f }]);
    }
  }
  return end;
}

function world(seed: number, opts: { withFailures?: boolean; dir?: string } = {}) {
  const clock = new ManualClock(START);
  const history = new HistoryStore({ dir: null, clock, maxSamplesPerComponent: 20_000 });
  const end = synthetic(seed, history, opts.withFailures ?? true);
  clock.advance(end - START);
  const engine = { predictor: new FailurePredictor(), setPredictor(p: FailurePredictor) { this.predictor = p; } };
  const dir = opts.dir ?? tmp();
  const learner = new Learner({ dir, clock, history, engine });
  return { clock, history, engine, learner, dir };
}

test("failures that follow a rising error rate: the trained model beats the prior on the holdout and is adopted", () => {
  const { learner, engine, history } = world(7);
  const m = learner.retrain();
  console.log(`  ${history.failures().length} failures, ${m.samples} labelled samples (${m.positives} positive); holdout ${m.holdoutSamples} (${m.holdoutPositives} positive)`);
  console.log(`  holdout Brier: prior ${m.priorBrier!.toFixed(4)}, trained ${m.trainedBrier!.toFixed(4)}; ECE: prior ${m.priorEce!.toFixed(4)}, trained ${m.trainedEce!.toFixed(4)}`);
  console.log(`  weights: error_rate ${m.weights.error_rate.toFixed(2)} (prior 5), cpu ${m.weights.cpu.toFixed(2)} (prior 2.5), memory ${m.weights.memory.toFixed(2)}, bias ${m.bias.toFixed(2)} (prior -6)`);
  assert.ok(history.failures().length >= MIN_FAILURES);
  assert.is(m.source, "trained", m.reason);
  assert.ok(m.trainedBrier! < m.priorBrier!, `trained ${m.trainedBrier} < prior ${m.priorBrier}`);
  // Adoption is by Brier; the ECE (10 bins, dominated by the quiet bin for a rare event) is reported and stays small.
  assert.ok(m.trainedEce! < 0.03, `calibrated on the holdout: ECE ${m.trainedEce}`);
  assert.is(m.brier, m.trainedBrier);
  assert.match(m.reason, /^trained on \d+ samples from \d+ failures: holdout Brier/);
  assert.ok(engine.predictor.model.weights.error_rate > PRIOR.weights.error_rate, "errors matter more than the prior thought");
  assert.ok(engine.predictor.model.weights.cpu < PRIOR.weights.cpu, "harmless CPU spikes matter less");
  assert.is(engine.predictor.model.horizonS, PRIOR.horizonS);
  const saved = JSON.parse(readFileSync(learner.file!, "utf8"));
  assert.is(saved.source, "trained");
  assert.is(saved.samples, m.samples);
  assert.is(saved.priorBrier, m.priorBrier);
});

test("no failures: the prior stays, and the reason says what is missing", () => {
  const { learner, engine } = world(7, { withFailures: false });
  const m = learner.retrain();
  assert.is(m.source, "prior");
  assert.is(m.positives, 0);
  assert.match(m.reason, /^the prior: too few data: 0 failures recorded \(needs 3\); 0 positive samples \(needs 30\)/);
  assert.is(m.trainedBrier, null);
  assert.ok(m.priorBrier! < 0.01, "the prior's Brier is still measured on the holdout");
  assert.equal(engine.predictor.model, PRIOR);
});

test("a restart loads model.json and puts the trained model back; the same history gives the same model", () => {
  const first = world(7);
  const m = first.learner.retrain();
  const text = readFileSync(first.learner.file!, "utf8");
  // A new controller on the same state directory (no retrain yet: the file is an hour old at most).
  const clock = new ManualClock(m.trainedAtMs! + 60_000);
  const engine = { predictor: new FailurePredictor(), setPredictor(p: FailurePredictor) { this.predictor = p; } };
  const again = new Learner({ dir: first.dir, clock, history: new HistoryStore({ dir: null, clock }), engine });
  assert.equal(again.load(), []);
  assert.equal(again.model, m);
  assert.equal(engine.predictor.model.weights, m.weights);
  assert.is(engine.predictor.model.bias, m.bias);
  assert.is(again.tick(), null, "not due before an hour after the saved retrain");
  // Deterministic: an independent run over the same seeded history writes the same file.
  const second = world(7);
  second.learner.retrain();
  assert.is(readFileSync(second.learner.file!, "utf8"), text);
  // A bad file is an error naming FILE:LINE: field: reason.
  writeFileSync(first.learner.file!, text.replace(/"samples": \d+/, '"samples": -1'));
  assert.throws(() => new Learner({ dir: first.dir, clock, history: new HistoryStore({ dir: null, clock }), engine }).load(),
    (e: unknown) => e instanceof ModelFileError && /model\.json:\d+: samples: /.test((e as Error).message));
  writeFileSync(first.learner.file!, text.replace(/"error_rate": [-\d.e]+/, '"error_rate": "high"'));
  assert.throws(() => new Learner({ dir: first.dir, clock, history: new HistoryStore({ dir: null, clock }), engine }).load(),
    (e: unknown) => /model\.json:\d+: weights\.error_rate: /.test((e as Error).message));
});

test("the schedule: every hour of clock time, at the next tick after an operator's mark, a minute after a failover", () => {
  const { learner, clock, history } = world(3);
  assert.ok(learner.tick(), "due at start (no model.json yet)");
  clock.advance(59 * 60_000);
  assert.is(learner.tick(), null);
  clock.advance(60_000);
  assert.is(learner.tick(true), null, "due, but a component is mid-decision: it waits for a calm tick");
  assert.ok(learner.tick(), "an hour later, at the first calm tick");
  clock.advance(1000);
  history.recordFailure({ component: "svc-0", atMs: 0, source: "operator" });
  learner.onFailure();
  assert.ok(learner.tick(), "an operator's mark: at the next tick");
  assert.is(learner.tick(), null);
  learner.onFailure(60_000);
  clock.advance(59_000);
  assert.is(learner.tick(), null, "after a failover: not during the emergency's first minute");
  assert.is(learner.nextRetrainMs, wallMs(clock) + 1000);
  clock.advance(1000);
  assert.ok(learner.tick(), "a minute after the failover");
  assert.is(learner.tick(), null);
});

test.run();
