// Learning the failure model from outcomes: on a schedule (every retrainEveryS of clock time, default
// an hour, and after a failure is recorded: at once for an operator's mark, a minute after a failover)
// the history's samples are labelled with its
// failures over the model's horizon (labelHistory: positive when the component failed within it; samples
// during an outage dropped), split by time (the older 70 % train, the newer 30 % are the holdout),
// trained (MAP logistic regression centred on the prior) and compared with the prior on the holdout:
// Brier score and expected calibration error. The trained model replaces the prior in the engine only
// when there is enough data (the MIN_* constants) and its holdout Brier is no worse than the prior's;
// otherwise the prior stays (or a model trained earlier stays, when there is now too little data to
// judge a new one) and the reason says why. Deterministic: the same history and clock give the same model.
//
// Saved as stateDir/model.json (temp file, fsync, rename) and loaded at start, checked like input: a bad
// file is an error naming FILE:LINE: field: reason.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { replaceFileText } from "../durable-file.js";
import { z } from "zod";
import { wallMs, type Clock } from "../../host/clock.js";
import { positionOf, zodProblem } from "../yaml-config.js";
import { FailurePredictor, PRIOR, brier, calibration, labelHistory, modelFromJson, modelToJson, train, type LabelledSample, type PredictorModel, type SignalKind, type TrainOptions } from "./predictor.js";
import type { HistoryStore } from "./history.js";

export class ModelFileError extends Error {}

/**
 * Enough data to trust a trained model over the prior. A failure gives horizon / sampleEvery positive
 * samples (90 at 900 s and 10 s), all strongly correlated, so positives alone say little: at least
 * MIN_FAILURES distinct failures (one incident is one anecdote, three begin to show a pattern),
 * MIN_POSITIVES positive samples (a third of one incident's run-up at the defaults), MIN_SAMPLES
 * samples (~3 hours of one component at 10 s: enough quiet time to place the bias), and
 * MIN_HOLDOUT_POSITIVES positives among the newest 30 % (a holdout without failures scores the Brier
 * on quiet samples only, where a model that never predicts failure wins).
 */
export const MIN_FAILURES = 3;
export const MIN_POSITIVES = 30;
export const MIN_SAMPLES = 1000;
export const MIN_HOLDOUT_POSITIVES = 10;
/**
 * The newest labelled samples a retrain uses at most. A retrain runs on the controller's tick: 100,000
 * samples with ~10 % of features set took 1.7 s here, 50,000 about half that, once an hour (and after a
 * failure). 50,000 is ~2.3 days of 2 components at 10 s; a larger fleet trains on its newest day or less.
 */
export const MAX_TRAIN_SAMPLES = 50_000;
export const TRAIN_SHARE = 0.7;
export const DEFAULT_RETRAIN_EVERY_S = 3600;
/** How long after entering Failover the controller retrains (see onFailure). */
export const RETRAIN_AFTER_FAILOVER_MS = 60_000;

export interface ModelInfo {
  version: 1;
  source: "prior" | "trained";
  /** Why this model is in use. */
  reason: string;
  bias: number;
  weights: Record<SignalKind, number>;
  horizonS: number;
  /** When the last retrain ran (null: never). */
  trainedAtMs: number | null;
  /** Labelled samples and their positives the last retrain saw; failures recorded then. */
  samples: number;
  positives: number;
  failures: number;
  holdoutSamples: number;
  holdoutPositives: number;
  /** The model in use, on the holdout (null: no holdout yet). */
  brier: number | null;
  ece: number | null;
  /** The prior on the same holdout. */
  priorBrier: number | null;
  priorEce: number | null;
  /** The model the last retrain trained, adopted or not (null: nothing was trained). */
  trainedBrier: number | null;
  trainedEce: number | null;
}

export interface LearnerOptions {
  /** Directory of model.json; null: not saved. */
  dir: string | null;
  clock: Clock;
  history: HistoryStore;
  engine: { setPredictor(p: FailurePredictor): void };
  /** The horizon the model predicts over (default the prior's, 900 s). */
  horizonS?: number;
  retrainEveryS?: number;
  prior?: PredictorModel;
  trainOptions?: TrainOptions;
}

const num = z.number().finite();
const stat = num.min(0).nullable();
const count = z.number().int().min(0);
const fileSchema = z.strictObject({
  version: z.literal(1), source: z.enum(["prior", "trained"]), reason: z.string(),
  bias: num, weights: z.record(z.string(), num), horizonS: num.positive(), trainedAtMs: num.nullable(),
  samples: count, positives: count, failures: count, holdoutSamples: count, holdoutPositives: count,
  brier: stat, ece: stat, priorBrier: stat, priorEce: stat, trainedBrier: stat, trainedEce: stat,
});

const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);

export class Learner {
  readonly file: string | null;
  readonly horizonS: number;
  readonly retrainEveryMs: number;
  private readonly prior: PredictorModel;
  private info: ModelInfo;
  private nextMs: number;
  /** A retrain asked for by a recorded failure: due at this clock time (Infinity: none). */
  private failureDueMs = Infinity;

  constructor(private readonly o: LearnerOptions) {
    this.prior = o.prior ?? PRIOR;
    this.horizonS = o.horizonS ?? this.prior.horizonS;
    this.retrainEveryMs = (o.retrainEveryS ?? DEFAULT_RETRAIN_EVERY_S) * 1000;
    if (!(this.horizonS > 0)) throw new Error(`horizonS: must be positive, got ${o.horizonS}`);
    if (!(this.retrainEveryMs > 0)) throw new Error(`retrainEveryS: must be positive, got ${o.retrainEveryS}`);
    if (o.dir) mkdirSync(o.dir, { recursive: true });
    this.file = o.dir ? path.join(o.dir, "model.json") : null;
    this.info = this.priorInfo("the prior: no retrain has run yet");
    this.nextMs = wallMs(o.clock);
  }

  /** The model in use and how it measured. */
  get model(): ModelInfo { return this.info; }
  /** When the next scheduled retrain is due (clock ms). */
  get nextRetrainMs(): number { return Math.min(this.failureDueMs, this.nextMs); }

  /**
   * Loads model.json (if any) and puts a trained model into the engine. The next retrain is due a
   * schedule after the saved one (at once when the file is missing or has another horizon).
   * Returns warnings; throws ModelFileError naming FILE:LINE: field: reason.
   */
  load(): string[] {
    const f = this.file;
    if (!f || !existsSync(f)) return [];
    const text = readFileSync(f, "utf8");
    let raw: unknown;
    try { raw = JSON.parse(text); } catch (e) { throw new ModelFileError(`${f}:1: not valid JSON: ${(e as Error).message}`); }
    const r = fileSchema.safeParse(raw);
    const at = (p: readonly PropertyKey[]) => { try { return positionOf(text, p).line; } catch { return 1; } };
    if (!r.success) {
      const x = zodProblem(r.error, raw, "(document)");
      throw new ModelFileError(`${f}:${at(x.parent)}: ${x.text}`);
    }
    const m = modelFromJson(r.data);
    if (typeof m === "string") throw new ModelFileError(`${f}:${at([m.split(/[.:]/)[0]!, ...(m.startsWith("weights.") ? [m.slice(8).split(":")[0]!] : [])])}: ${m}`);
    const d = r.data;
    this.info = { ...d, weights: m.weights };
    if (d.horizonS !== this.horizonS) {
      this.info = this.priorInfo(`the prior: the saved model predicts over ${d.horizonS} s, the configured horizon is ${this.horizonS} s (retraining)`);
      this.o.engine.setPredictor(new FailurePredictor(this.prior));
      return [`${f}: horizonS ${d.horizonS} differs from the configured ${this.horizonS}: the prior is used until the retrain`];
    }
    this.o.engine.setPredictor(new FailurePredictor(d.source === "trained" ? m : this.prior));
    this.nextMs = (d.trainedAtMs ?? wallMs(this.o.clock)) + this.retrainEveryMs;
    return [];
  }

  /**
   * A failure was recorded: retrain at the first tick `afterMs` from now. The controller waits
   * RETRAIN_AFTER_FAILOVER_MS after its own failover, so the retrain (up to ~0.75 s on the tick) does
   * not delay the emergency's fence, drain and promotion; an operator's mark retrains at once.
   */
  onFailure(afterMs = 0): void { this.failureDueMs = Math.min(this.failureDueMs, wallMs(this.o.clock) + afterMs); }

  /**
   * Retrains when due (the schedule, or a failure since the last); returns the new info or null.
   * busy: some component is mid-decision (at risk, shifting, failing over): a due retrain waits for a
   * calm tick, so its time on the tick never delays a migration or an emergency.
   */
  tick(busy = false): ModelInfo | null {
    const now = wallMs(this.o.clock);
    if (now < this.failureDueMs && now < this.nextMs) return null;
    if (busy) return null;
    return this.retrain();
  }

  /** Labels, splits, trains, compares and adopts (or keeps the prior), saves model.json. */
  retrain(): ModelInfo {
    const now = wallMs(this.o.clock);
    this.failureDueMs = Infinity;
    this.nextMs = now + this.retrainEveryMs;
    const hMs = this.horizonS * 1000;
    const fails = this.o.history.failures();
    // Outages: a controller failure lasts until its recovery (open: still down); an operator's mark is a point.
    const down = fails.map((f) => ({ component: f.component, tMs: f.atMs, recoveredMs: f.recoveredMs ?? (f.source === "controller" ? Infinity : f.atMs) }));
    const outage = new Map<string, { tMs: number; recoveredMs: number }[]>();
    for (const f of down) outage.set(f.component, [...(outage.get(f.component) ?? []), f]);
    const failedWithin = (c: string, t: number) => (outage.get(c) ?? []).some((f) => f.tMs > t && f.tMs <= t + hMs);
    // Time order (ties by component: deterministic); a sample whose horizon has not passed yet is kept
    // only when its failure already happened (a quiet one may still turn out positive).
    const snaps = this.o.history.samples()
      .filter((s) => !(outage.get(s.component) ?? []).some((f) => s.tMs >= f.tMs && s.tMs <= f.recoveredMs))
      .filter((s) => s.tMs + hMs <= now || failedWithin(s.component, s.tMs))
      .sort((a, b) => a.tMs - b.tMs || (a.component < b.component ? -1 : a.component > b.component ? 1 : 0))
      .slice(-MAX_TRAIN_SAMPLES);
    const labelled: LabelledSample[] = labelHistory(snaps, down, this.horizonS);
    const cut = Math.floor(labelled.length * TRAIN_SHARE);
    const trainSet = labelled.slice(0, cut), holdout = labelled.slice(cut);
    const positives = labelled.filter((s) => s.failed).length;
    const holdoutPositives = holdout.filter((s) => s.failed).length;
    const base = { trainedAtMs: now, samples: labelled.length, positives, failures: fails.length, holdoutSamples: holdout.length, holdoutPositives };
    const priorP = new FailurePredictor(this.prior);
    const priorBrier = fin(brier(priorP, holdout)), priorEce = holdout.length ? calibration(priorP, holdout).ece : null;

    const short = [
      fails.length < MIN_FAILURES ? `${fails.length} failures recorded (needs ${MIN_FAILURES})` : "",
      positives < MIN_POSITIVES ? `${positives} positive samples (needs ${MIN_POSITIVES})` : "",
      labelled.length < MIN_SAMPLES ? `${labelled.length} labelled samples (needs ${MIN_SAMPLES})` : "",
      holdoutPositives < MIN_HOLDOUT_POSITIVES ? `${holdoutPositives} positives in the newest 30 % holdout (needs ${MIN_HOLDOUT_POSITIVES})` : "",
      trainSet.every((s) => !s.failed) ? "no positive in the older 70 % to train on" : "",
    ].filter(Boolean);
    if (short.length) {
      const why = `too few data: ${short.join("; ")}`;
      if (this.info.source === "trained" && this.info.horizonS === this.horizonS) {
        // A model that measured better once is not thrown away because the history is thin now.
        this.info = { ...this.info, reason: `kept the model trained at ${new Date(this.info.trainedAtMs ?? 0).toISOString()}: ${why}` };
      } else {
        this.info = { ...this.priorInfo(`the prior: ${why}`), ...base, brier: priorBrier, ece: priorEce, priorBrier, priorEce };
        this.o.engine.setPredictor(priorP);
      }
      this.save();
      return this.info;
    }

    const model = train(trainSet, { ...this.prior, horizonS: this.horizonS }, this.o.trainOptions);
    const trainedP = new FailurePredictor(model);
    const trainedBrier = brier(trainedP, holdout), trainedEce = calibration(trainedP, holdout).ece;
    const measured = `holdout Brier ${trainedBrier.toFixed(4)} vs the prior's ${priorBrier!.toFixed(4)}, ECE ${trainedEce.toFixed(4)} vs ${priorEce!.toFixed(4)} (${holdout.length} samples, ${holdoutPositives} positive)`;
    if (trainedBrier <= priorBrier!) {
      this.info = {
        version: 1, source: "trained", reason: `trained on ${trainSet.length} samples from ${fails.length} failures: ${measured}`,
        ...modelToJson(model), ...base, brier: trainedBrier, ece: trainedEce, priorBrier, priorEce, trainedBrier, trainedEce,
      };
      this.o.engine.setPredictor(trainedP);
    } else {
      this.info = { ...this.priorInfo(`the prior: the trained model is worse on the holdout: ${measured}`), ...base, brier: priorBrier, ece: priorEce, priorBrier, priorEce, trainedBrier, trainedEce };
      this.o.engine.setPredictor(priorP);
    }
    this.save();
    return this.info;
  }

  private priorInfo(reason: string): ModelInfo {
    return {
      version: 1, source: "prior", reason, ...modelToJson({ ...this.prior, horizonS: this.horizonS }), trainedAtMs: null,
      samples: 0, positives: 0, failures: 0, holdoutSamples: 0, holdoutPositives: 0, brier: null, ece: null, priorBrier: null, priorEce: null, trainedBrier: null, trainedEce: null,
    };
  }

  private save(): void {
    if (!this.file) return;
    replaceFileText(this.file, JSON.stringify(this.info, null, 2) + "\n");
  }
}
