// Failure prediction: the probability that a component fails within the horizon, from its signals'
// anomaly scores. A logistic model, p = sigmoid(bias + sum_k w_k * f_k), one weight per signal kind,
// where f_k in [0, 1] is the strongest excess of that kind's detector scores over the "edge of the
// normal range" level (0.5), so ordinary record highs contribute nothing.
//
// The prior (used as is when no failure log exists, and as the centre of a Gaussian prior when
// training): bias -6 (p = 0.25 % with every signal normal); one fully anomalous error-rate signal
// alone gives p ~ 0.27, latency ~ 0.12, a single resource metric ~ 0.03; two corroborating signals
// (errors and latency) give ~ 0.95; a forecast exhaustion inside the horizon alone ~ 0.73. A
// single noisy metric can therefore never carry the risk over a migration threshold by itself.
// Training is MAP logistic regression by damped Newton's method (deterministic), calibrated by
// construction on its training distribution; calibration() reports reliability on held-out data.

export const SIGNAL_KINDS = ["error_rate", "latency", "exhaustion", "cpu", "memory", "disk_io", "network_latency", "queue_depth", "replication_lag", "consistency", "app"] as const;
export type SignalKind = (typeof SIGNAL_KINDS)[number];

export interface PredictorModel {
  bias: number;
  weights: Record<SignalKind, number>;
  /** Horizon the model predicts over, in seconds (documentation and label building). */
  horizonS: number;
}

export const PRIOR: PredictorModel = {
  bias: -6,
  weights: { error_rate: 5, latency: 4, exhaustion: 7, cpu: 2.5, memory: 2.5, disk_io: 2, network_latency: 3, queue_depth: 3, replication_lag: 1.5, consistency: 3, app: 2.5 },
  horizonS: 900,
};

export type Features = Float64Array; // indexed like SIGNAL_KINDS

export function emptyFeatures(): Features { return new Float64Array(SIGNAL_KINDS.length); }
export const kindIndex = (k: SignalKind): number => SIGNAL_KINDS.indexOf(k);

/** A detector score in [0, 1] as a feature: 0 up to the edge of the normal range (0.5), 1 at 0.95. */
export function excess(score: number): number {
  return Math.min(1, Math.max(0, (score - 0.5) / 0.45));
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export class FailurePredictor {
  private readonly w: Float64Array;
  constructor(readonly model: PredictorModel = PRIOR) {
    this.w = Float64Array.from(SIGNAL_KINDS, (k) => model.weights[k]);
  }

  weight(k: number): number { return this.w[k]!; }

  predict(f: Features): number {
    let z = this.model.bias;
    for (let i = 0; i < f.length; i++) z += this.w[i]! * f[i]!;
    return sigmoid(z);
  }
}

export interface LabelledSample { features: Features; failed: boolean }

export interface TrainOptions {
  /** Standard deviation of the Gaussian prior around PRIOR (smaller: trust the prior more). */
  priorSd: number;
  iterations: number;
}

/** MAP logistic regression centred on `prior`; deterministic (Newton's method). */
export function train(samples: LabelledSample[], prior: PredictorModel = PRIOR, opts: TrainOptions = { priorSd: 3, iterations: 30 }): PredictorModel {
  if (samples.length === 0) throw new Error("train: no labelled samples (use the prior)");
  const d = SIGNAL_KINDS.length + 1; // bias last
  const mu = new Float64Array(d);
  SIGNAL_KINDS.forEach((k, i) => (mu[i] = prior.weights[k]));
  mu[d - 1] = prior.bias;
  const beta = Float64Array.from(mu);
  const lambda = 1 / (opts.priorSd * opts.priorSd);
  const x = new Float64Array(d);
  const objective = (b: Float64Array): number => {
    let loss = 0;
    for (let i = 0; i < d; i++) loss += 0.5 * lambda * (b[i]! - mu[i]!) ** 2;
    for (const s of samples) {
      let z = b[d - 1]!;
      for (let i = 0; i < d - 1; i++) z += b[i]! * s.features[i]!;
      // log(1 + e^z) - y z, computed without overflow
      loss += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - (s.failed ? z : 0);
    }
    return loss;
  };
  for (let it = 0; it < opts.iterations; it++) {
    const g = new Float64Array(d);
    const H = new Float64Array(d * d);
    for (let i = 0; i < d; i++) { g[i] = lambda * (beta[i]! - mu[i]!); H[i * d + i] = lambda; }
    for (const s of samples) {
      if (s.features.length !== d - 1) throw new Error(`train: a sample has ${s.features.length} features, expected ${d - 1}`);
      x.set(s.features); x[d - 1] = 1;
      let z = 0;
      for (let i = 0; i < d; i++) z += beta[i]! * x[i]!;
      const p = sigmoid(z), r = p - (s.failed ? 1 : 0), v = p * (1 - p);
      for (let i = 0; i < d; i++) {
        if (x[i] === 0) continue;
        g[i]! += r * x[i]!;
        for (let j = 0; j < d; j++) H[i * d + j]! += v * x[i]! * x[j]!;
      }
    }
    const step = solve(H, g, d);
    // Damped Newton: halve the step until the penalised log-loss does not increase.
    const before = objective(beta);
    let t = 1;
    const next = new Float64Array(d);
    for (; t > 1e-6; t /= 2) {
      for (let i = 0; i < d; i++) next[i] = beta[i]! - t * step[i]!;
      if (objective(next) <= before) break;
    }
    let moved = 0;
    for (let i = 0; i < d; i++) { moved = Math.max(moved, Math.abs(next[i]! - beta[i]!)); beta[i] = next[i]!; }
    if (moved < 1e-9) break;
  }
  const weights = {} as Record<SignalKind, number>;
  SIGNAL_KINDS.forEach((k, i) => (weights[k] = beta[i]!));
  return { bias: beta[d - 1]!, weights, horizonS: prior.horizonS };
}

/** Solves A x = b for a symmetric positive definite A (Cholesky). */
function solve(A: Float64Array, b: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j]!;
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!;
      L[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / L[j * n + j]!;
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) { let s = b[i]!; for (let k = 0; k < i; k++) s -= L[i * n + k]! * y[k]!; y[i] = s / L[i * n + i]!; }
  const out = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) { let s = y[i]!; for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * out[k]!; out[i] = s / L[i * n + i]!; }
  return out;
}

export interface Calibration {
  /** Expected calibration error: the count-weighted mean |predicted - observed| over the bins. */
  ece: number;
  bins: { lo: number; hi: number; n: number; predicted: number; observed: number }[];
}

/** Reliability of a predictor on labelled samples, in `nBins` equal-width probability bins. */
export function calibration(p: FailurePredictor, samples: LabelledSample[], nBins = 10): Calibration {
  const bins = Array.from({ length: nBins }, (_, i) => ({ lo: i / nBins, hi: (i + 1) / nBins, n: 0, predicted: 0, observed: 0 }));
  for (const s of samples) {
    const q = p.predict(s.features);
    const b = bins[Math.min(nBins - 1, Math.floor(q * nBins))]!;
    b.n++; b.predicted += q; b.observed += s.failed ? 1 : 0;
  }
  let ece = 0;
  for (const b of bins) if (b.n) { b.predicted /= b.n; b.observed /= b.n; ece += (b.n / samples.length) * Math.abs(b.predicted - b.observed); }
  return { ece, bins };
}

/**
 * Labels a history of feature snapshots with a failure log: a snapshot is positive when its
 * component failed within (t, t + horizon]. Snapshots during a failure (between a failure and the
 * component's recovery, if given) are dropped: they describe the outage, not its run-up.
 */
export function labelHistory(
  snapshots: { component: string; tMs: number; features: Features }[],
  failures: { component: string; tMs: number; recoveredMs?: number }[],
  horizonS: number,
): LabelledSample[] {
  const byComponent = new Map<string, { tMs: number; recoveredMs: number }[]>();
  for (const f of failures) {
    if (!Number.isFinite(f.tMs)) throw new Error(`failure log: component ${f.component}: time ${f.tMs} is not a number`);
    const list = byComponent.get(f.component) ?? [];
    list.push({ tMs: f.tMs, recoveredMs: f.recoveredMs ?? f.tMs });
    byComponent.set(f.component, list);
  }
  const out: LabelledSample[] = [];
  for (const s of snapshots) {
    const fs = byComponent.get(s.component) ?? [];
    if (fs.some((f) => s.tMs >= f.tMs && s.tMs <= f.recoveredMs)) continue;
    const failed = fs.some((f) => f.tMs > s.tMs && f.tMs <= s.tMs + horizonS * 1000);
    out.push({ features: s.features, failed });
  }
  return out;
}

/** Brier score: the mean squared difference between the predicted probability and the outcome (0 or 1); lower is better. */
export function brier(p: FailurePredictor, samples: LabelledSample[]): number {
  if (samples.length === 0) return NaN;
  let s = 0;
  for (const x of samples) s += (p.predict(x.features) - (x.failed ? 1 : 0)) ** 2;
  return s / samples.length;
}

/** A model as plain JSON (weights by kind name, so a file outlives a reordering of SIGNAL_KINDS). */
export function modelToJson(m: PredictorModel): { bias: number; weights: Record<SignalKind, number>; horizonS: number } {
  const weights = {} as Record<SignalKind, number>;
  for (const k of SIGNAL_KINDS) weights[k] = m.weights[k];
  return { bias: m.bias, weights, horizonS: m.horizonS };
}

/**
 * A model from its JSON form, or the reason it is not one: every kind needs a finite weight (a kind
 * the file does not name is an error, not a silent 0), the bias is finite and the horizon positive.
 */
export function modelFromJson(x: { bias: number; weights: Record<string, number>; horizonS: number }): PredictorModel | string {
  if (!Number.isFinite(x.bias)) return `bias: must be a finite number, got ${x.bias}`;
  if (!(Number.isFinite(x.horizonS) && x.horizonS > 0)) return `horizonS: must be a positive number of seconds, got ${x.horizonS}`;
  const weights = {} as Record<SignalKind, number>;
  for (const k of SIGNAL_KINDS) {
    const w = x.weights[k];
    if (typeof w !== "number" || !Number.isFinite(w)) return `weights.${k}: must be a finite number, got ${JSON.stringify(w)}`;
    weights[k] = w;
  }
  for (const k of Object.keys(x.weights)) if (!(SIGNAL_KINDS as readonly string[]).includes(k)) return `weights.${k}: not a signal kind (known: ${SIGNAL_KINDS.join(", ")})`;
  return { bias: x.bias, weights, horizonS: x.horizonS };
}
