// Verification of the side that receives traffic against the other side's healthy baseline: error
// rate, a latency quantile and response consistency of mirrored reads. Each check is a one-sided
// binomial decision with Wilson bounds, so sparse and zero-heavy data are handled honestly: zero errors
// in 50 requests is not evidence of health, it is "inconclusive" until the upper bound clears the
// limit. No data is inconclusive, never a pass. Pure: numbers and sketches in, a verdict out.
//
// A concurrent control (the side the traffic leaves, in the same window: Kayenta's canary against a
// baseline running at the same time) separates the target's own fault from one both sides share (a
// stalled host, a slow network, a load spike): an error-rate or latency failure stands only where the
// target is also worse than the control, by a one-sided two-proportion test at the same confidence.
// Otherwise it is inconclusive (more data, then a pause), never a pass.
// A step checks again at every tick until it passes, fails or times out, so that test must hold at
// every look, not at one: with a fixed z, two sides sharing one error rate come out "target worse" by
// chance in about half of 30 s steps where the confidence promises 1 in 10 (simulated: 49-55 % at 10 looks
// a second). Its z is a confidence sequence's (timeUniformZ), valid however often the step looks.
import type { LatencySketch } from "../telemetry/sketch.js";
import type { VerificationSpec } from "./policy.js";

export type Outcome = "pass" | "fail" | "inconclusive";

/** The side's healthy figures, captured when trouble started (serializable: it lives in the status). */
export interface Baseline { requests: number; errorRate: number; latencyMs: number }

export interface TargetSample { requests: number; errors: number; latency: LatencySketch | null }

export interface VerificationInput {
  baseline: Baseline | null;
  target: TargetSample;
  /** Mirrored reads compared since the window began; null where mirroring does not apply (100%). */
  consistency: { compared: number; diverged: number } | null;
  /** The source side's live traffic in the same window (its writes too); absent or empty: no control. */
  control?: TargetSample | null;
}

export interface CheckResult { check: "error_rate" | "latency" | "consistency"; outcome: Outcome; observed: number; limit: number; detail: string }
export interface Verdict { outcome: Outcome; checks: CheckResult[]; summary: string }

/** Inverse standard normal CDF (Acklam's rational approximation; |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Wilson score bounds for k successes in n trials at one-sided z. */
export function wilson(k: number, n: number, z: number): { lower: number; upper: number } {
  if (n <= 0) return { lower: 0, upper: 1 };
  const p = k / n, z2 = z * z, den = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / den;
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/** Decides whether the true rate behind k/n is above `limit` (fail), at most it (pass), or unknown. */
function rateCheck(check: CheckResult["check"], k: number, n: number, limit: number, z: number, what: string): CheckResult {
  const { lower, upper } = wilson(k, n, z);
  const observed = n ? k / n : NaN;
  const pct = (x: number) => `${(x * 100).toFixed(x < 0.01 ? 3 : 2)}%`;
  if (lower > limit) return { check, outcome: "fail", observed, limit, detail: `${what} ${k}/${n} = ${pct(observed)}: above the limit ${pct(limit)} (lower bound ${pct(lower)})` };
  if (upper <= limit) return { check, outcome: "pass", observed, limit, detail: `${what} ${k}/${n} = ${pct(observed)}: within the limit ${pct(limit)} (upper bound ${pct(upper)})` };
  return { check, outcome: "inconclusive", observed, limit, detail: `${what} ${k}/${n} = ${pct(observed)}: cannot tell against ${pct(limit)} yet (bounds ${pct(lower)}..${pct(upper)})` };
}

export function verify(spec: VerificationSpec, input: VerificationInput): Verdict {
  const z = normalQuantile(spec.confidence);
  const checks: CheckResult[] = [];
  const t = input.target;
  const base = input.baseline;
  if (t.requests < spec.minRequests) {
    checks.push({ check: "error_rate", outcome: "inconclusive", observed: t.requests ? t.errors / t.requests : NaN, limit: NaN, detail: `only ${t.requests} requests (need ${spec.minRequests})` });
  } else {
    const p0 = base && base.requests > 0 && Number.isFinite(base.errorRate) ? base.errorRate : 0;
    const limit = Math.min(1, Math.max(p0 + spec.errorRateSlack, p0 * spec.errorRateRatio));
    // Any control counts: a small one only lowers the test's power (more inconclusive), never passes.
    const ctl = input.control && input.control.requests > 0 ? input.control : null;
    checks.push(againstControl(rateCheck("error_rate", t.errors, t.requests, limit, z, "errors"), t.errors, t.requests, ctl ? [ctl.errors, ctl.requests] : null, spec, "errors"));
    // Latency: the share of requests slower than ratio x the baseline quantile must stay within 1 - q.
    if (!base || !(base.latencyMs > 0) || !t.latency || t.latency.count === 0) {
      checks.push({ check: "latency", outcome: "inconclusive", observed: NaN, limit: NaN, detail: base ? "no latency samples" : "no healthy baseline was captured" });
    } else {
      const limitMs = base.latencyMs * spec.latencyRatio;
      const slow = countAbove(t.latency, limitMs * 1000);
      const what = `requests slower than ${limitMs.toFixed(1)} ms`;
      const cl = ctl?.latency && ctl.latency.count > 0 ? ctl.latency : null;
      const r = againstControl(rateCheck("latency", slow, t.latency.count, 1 - spec.latencyQuantile, z, what), slow, t.latency.count, cl ? [countAbove(cl, limitMs * 1000), cl.count] : null, spec, what);
      checks.push({ ...r, observed: t.latency.quantile(spec.latencyQuantile) / 1000, limit: limitMs, detail: `p${spec.latencyQuantile * 100}: ${r.detail}` });
    }
  }
  const c = input.consistency;
  if (c) {
    if (c.compared < spec.minCompared) checks.push({ check: "consistency", outcome: "inconclusive", observed: c.compared ? c.diverged / c.compared : NaN, limit: spec.maxDivergence, detail: `only ${c.compared} mirrored reads compared (need ${spec.minCompared})` });
    else checks.push(rateCheck("consistency", c.diverged, c.compared, spec.maxDivergence, z, "diverging mirrored reads"));
  }
  const outcome: Outcome = checks.some((x) => x.outcome === "fail") ? "fail" : checks.every((x) => x.outcome === "pass") ? "pass" : "inconclusive";
  const decisive = checks.filter((x) => x.outcome === outcome);
  return { outcome, checks, summary: `${outcome}: ${(decisive.length ? decisive : checks).map((x) => `${x.check} ${x.detail}`).join("; ")}` };
}

/**
 * The z a one-sided test must pass to hold at every look of a sequence, not only at one: the one-sided
 * normal-mixture confidence sequence (Robbins 1970; Howard et al. 2021, "Time-uniform, nonparametric,
 * nonasymptotic confidence sequences"), for a statistic with information t (its variance's inverse,
 * in observations): z_t = sqrt((1 + rho / t) (ln(1 + t / rho) + 2 ln(1 / alpha))). Under the null it
 * is crossed at any t at all with probability at most alpha. rho is where it is tightest (about
 * 2.8-3.3 for alpha 0.1 from rho to 100 rho, against 1.28 for one look); it grows like
 * sqrt(ln t) after that.
 */
export function timeUniformZ(t: number, rho: number, alpha: number): number {
  if (!(t > 0 && rho > 0 && alpha > 0 && alpha < 1)) throw new RangeError(`timeUniformZ: need t > 0, rho > 0, 0 < alpha < 1 (got ${t}, ${rho}, ${alpha})`);
  return Math.sqrt((1 + rho / t) * (Math.log(1 + t / rho) + 2 * Math.log(1 / alpha)));
}

/**
 * A failure against the baseline kept only where the target's rate k/n is also above the control's
 * kc/nc in the same window, by a one-sided pooled two-proportion z-test whose bound holds at every look
 * of the step (timeUniformZ at the policy's confidence, tightest around minRequests, with the test's
 * information n nc / (n + nc)); else inconclusive, naming the control. No control (null): the check
 * as it was.
 */
function againstControl(r: CheckResult, k: number, n: number, control: [number, number] | null, spec: VerificationSpec, what: string): CheckResult {
  if (r.outcome !== "fail" || control === null) return r;
  const [kc, nc] = control;
  const pooled = (k + kc) / (n + nc);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / nc));
  const diff = k / n - kc / nc;
  const source = `${kc}/${nc} = ${((kc / nc) * 100).toFixed(2)}%`;
  const zNeeded = timeUniformZ((n * nc) / (n + nc), spec.minRequests, 1 - spec.confidence);
  const zSeen = se > 0 ? diff / se : diff > 0 ? Infinity : 0;
  if (zSeen > zNeeded) return { ...r, detail: `${r.detail}; the source, in the same window, ${source}` };
  if (diff <= 0) return { ...r, outcome: "inconclusive", detail: `${r.detail}, but the source has as many in the same window (${what}: ${source}): shared by both sides, not the target's own` };
  return { ...r, outcome: "inconclusive", detail: `${r.detail}, but the source is not clearly better in the same window (${what}: ${source}; z ${zSeen.toFixed(2)}, where every look of a step needs ${zNeeded.toFixed(2)}): not shown to be the target's own` };
}

/** Requests strictly slower than `us` microseconds, by whole sketch buckets (1% relative accuracy). */
export function countAbove(s: LatencySketch, us: number): number {
  if (s.count === 0 || us >= s.max) return 0;
  if (us < s.min) return s.count;
  // Rank of `us` from the quantile function: the smallest rank whose value exceeds `us`.
  let lo = 0, hi = s.count - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s.quantile(s.count > 1 ? mid / (s.count - 1) : 0) > us) hi = mid; else lo = mid + 1;
  }
  return s.count - lo;
}
