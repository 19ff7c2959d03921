// Migration policy: the YAML file an operator writes, validated into the numbers the reconciler uses.
// Every error names the file, line, column and field (`components.orders.steps[2].weight`), because a
// policy is edited by hand under pressure and "invalid input" helps nobody. Durations are written like
// Flagger's ("30s", "5m", "1h"; a bare number is seconds); weights are percent of read traffic.
import { z } from "zod";
import { parseYamlStrict, readYamlFile, YamlFieldError } from "../yaml-config.js";

export interface StepSpec {
  /** Shadow's share of read traffic in basis points (1% = 100). */
  weightBp: number;
  bakeMs: number;
  /** "verify": the step must pass verification before the next; "none": bake only. */
  check: "verify" | "none";
}

export interface VerificationSpec {
  /** The shadow may exceed the primary's healthy error rate by this much (absolute) ... */
  errorRateSlack: number;
  /** ... or by this factor, whichever allows more. */
  errorRateRatio: number;
  latencyQuantile: number;
  /** The shadow's latency quantile may be this many times the primary's healthy one. */
  latencyRatio: number;
  /** Below this many shadow requests in the window a check is inconclusive. */
  minRequests: number;
  /** Highest tolerated share of mirrored reads whose responses differ. */
  maxDivergence: number;
  /** Compared mirrored reads needed to judge consistency. */
  minCompared: number;
  /** One-sided confidence of the pass/fail decisions (the rest is inconclusive). */
  confidence: number;
  /** How long past the bake an inconclusive step keeps collecting data before it pauses. */
  maxWaitMs: number;
}

/**
 * The emergency path: when the primary is down (most proxies' failover floors ejected it, or most of its
 * requests failed over the window), every read moves to a fit shadow at once, writes are held (503 with
 * the reason) and the shadow is promoted as soon as the primary provably cannot take writes.
 */
export interface EmergencySpec {
  enabled: boolean;
  /** The evidence window (failed requests and floor ejections are counted over it). */
  windowMs: number;
  /** The primary is down when at least this share of its requests in the window failed ... */
  maxFailureShare: number;
  /** ... out of at least this many; */
  minRequests: number;
  /** or when at least this share of the reporting proxies' floors ejected it. */
  ejectingShare: number;
  /** The shadow must have met the preflight limits (lag, errors, divergence) this long to be fit. */
  fitForMs: number;
  /** Failed active health checks in a row (scrape targets with a side) that mean down: the primary for the emergency, the shadow unfit. 0: ignored. */
  probeFailures: number;
}

/** High confidence moves faster: at or above this risk, bakes (and AtRisk's confirmation) scale down and steps merge. */
export interface FastPathSpec { risk: number; bakeScale: number; mergeSteps: boolean }

export interface Policy {
  risk: { enter: number; leave: number; enterForMs: number; leaveForMs: number };
  steps: StepSpec[];
  /** mirrorMaxBytesPerS: the mirror's budget on the wire (request and response bytes a second, every proxy together; 0: none): the mirrored share is cut to fit. */
  preflight: { maxReplicationLagS: number; maxShadowErrorRate: number; maxDivergence: number; minCompared: number; mirrorFraction: number; timeoutMs: number; mirrorMaxBytesPerS: number };
  verification: VerificationSpec;
  gates: { approveFirstStep: boolean; approveFull: boolean };
  /**
   * leaseMs: the writer's lease (renewed by the controller with an absolute deadline; 0: no lease). A
   * primary that cannot be fenced is promoted past only once the last deadline granted to it, plus
   * maxClockSkewMs, has passed. leaseAtRiskMs: the shorter lease granted while the primary is at risk
   * (AtRisk, Preflight, Shifting): a predicted death then costs less write downtime (0: the full lease).
   * pauseWritesMs: how long a proxy holds a write through a planned switch (fence, drain, promote, new
   * write target) before answering it 503; 0: no pause, writes meanwhile meet the fenced writer.
   */
  promotion: { drainTimeoutMs: number; actionTimeoutMs: number; leaseMs: number; maxClockSkewMs: number; leaseAtRiskMs: number; pauseWritesMs: number };
  recovery: { mode: "stay" | "restore"; coolDownMs: number; maxReplicationLagS: number };
  emergency: EmergencySpec;
  /** null: off. */
  fastPath: FastPathSpec | null;
}

export const DEFAULT_POLICY: Policy = {
  risk: { enter: 0.7, leave: 0.4, enterForMs: 30_000, leaveForMs: 120_000 },
  steps: [1, 5, 25, 50, 100].map((p) => ({ weightBp: p * 100, bakeMs: 60_000, check: "verify" as const })),
  preflight: { maxReplicationLagS: 5, maxShadowErrorRate: 0.01, maxDivergence: 0.01, minCompared: 100, mirrorFraction: 0.05, timeoutMs: 600_000, mirrorMaxBytesPerS: 0 },
  verification: { errorRateSlack: 0.01, errorRateRatio: 1.5, latencyQuantile: 0.99, latencyRatio: 1.5, minRequests: 200, maxDivergence: 0.01, minCompared: 100, confidence: 0.95, maxWaitMs: 120_000 },
  gates: { approveFirstStep: false, approveFull: false },
  promotion: { drainTimeoutMs: 60_000, actionTimeoutMs: 30_000, leaseMs: 0, maxClockSkewMs: 500, leaseAtRiskMs: 0, pauseWritesMs: 5_000 },
  recovery: { mode: "stay", coolDownMs: 600_000, maxReplicationLagS: 5 },
  emergency: { enabled: true, windowMs: 5_000, maxFailureShare: 0.5, minRequests: 20, ejectingShare: 0.5, fitForMs: 10_000, probeFailures: 3 },
  fastPath: null,
};

export class PolicyError extends YamlFieldError {}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** "30s", "5m", "500ms", "1h" in ms (the policy file's durations; the CLI's too), or null when it is not one. */
export function durationMs(text: string): number | null {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : null;
}
const duration = z.union([z.number().nonnegative(), z.string().regex(DURATION, 'must be a duration such as "30s", "5m" or "1h"')])
  .transform((v) => (typeof v === "number" ? v * 1000 : durationMs(v)!));
const fraction = z.number().min(0).max(1);

const stepSchema = z.object({
  weight: z.number().gt(0, "must be above 0").max(100, "must be at most 100 (percent)"),
  bake: duration.optional(),
  check: z.enum(["verify", "none"]).optional(),
}).strict();

const componentSchema = z.object({
  risk: z.object({ enter: fraction, leave: fraction, enterFor: duration, leaveFor: duration }).partial().strict().optional(),
  steps: z.array(z.union([z.number().gt(0, "must be above 0").max(100, "must be at most 100 (percent)"), stepSchema])).min(1, "needs at least one step").optional(),
  bake: duration.optional(),
  preflight: z.object({
    maxReplicationLagSeconds: z.number().nonnegative(), maxShadowErrorRate: fraction, maxDivergence: fraction,
    minCompared: z.number().int().nonnegative(), mirrorFraction: fraction, timeout: duration,
    mirrorMaxBytesPerSecond: z.number().int().nonnegative(),
  }).partial().strict().optional(),
  verification: z.object({
    errorRateSlack: fraction, errorRateRatio: z.number().min(1), latencyQuantile: z.number().gt(0).lt(1), latencyRatio: z.number().min(1),
    minRequests: z.number().int().min(1), maxDivergence: fraction, minCompared: z.number().int().min(1), confidence: z.number().min(0.5).lt(1), maxWait: duration,
  }).partial().strict().optional(),
  gates: z.object({ approveFirstStep: z.boolean(), approveFull: z.boolean() }).partial().strict().optional(),
  promotion: z.object({ drainTimeout: duration, actionTimeout: duration, lease: duration, maxClockSkew: duration, leaseAtRisk: duration, pauseWrites: duration }).partial().strict().optional(),
  emergency: z.object({
    enabled: z.boolean(), window: duration, maxFailureShare: z.number().gt(0).max(1), minRequests: z.number().int().min(1),
    ejectingShare: z.number().gt(0).max(1), fitFor: duration, probeFailures: z.number().int().min(0),
  }).partial().strict().optional(),
  fastPath: z.union([z.literal(false), z.object({ risk: fraction, bakeScale: z.number().gt(0).max(1), mergeSteps: z.boolean() }).partial().strict()]).optional(),
  recovery: z.object({ mode: z.enum(["stay", "restore"]), coolDown: duration, maxReplicationLagSeconds: z.number().nonnegative() }).partial().strict().optional(),
}).strict();

const fileSchema = z.object({
  defaults: componentSchema.optional(),
  components: z.record(z.string().regex(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/, "component names are lower-case DNS-like labels"), componentSchema.nullable()).default({}),
}).strict();

type ComponentInput = z.infer<typeof componentSchema>;

function resolve(base: Policy, c: ComponentInput | null | undefined): Policy {
  if (!c) return structuredClone(base);
  const p = structuredClone(base);
  if (c.risk) {
    p.risk = { enter: c.risk.enter ?? p.risk.enter, leave: c.risk.leave ?? p.risk.leave, enterForMs: c.risk.enterFor ?? p.risk.enterForMs, leaveForMs: c.risk.leaveFor ?? p.risk.leaveForMs };
  }
  const bake = c.bake;
  // Steps without their own bake take the component's, else the one the defaults gave.
  const inherited = bake ?? base.steps[0]?.bakeMs ?? DEFAULT_POLICY.steps[0]!.bakeMs;
  if (c.steps) {
    p.steps = c.steps.map((s) => typeof s === "number"
      ? { weightBp: Math.round(s * 100), bakeMs: inherited, check: "verify" as const }
      : { weightBp: Math.round(s.weight * 100), bakeMs: s.bake ?? inherited, check: s.check ?? "verify" });
  } else if (bake !== undefined) {
    p.steps = p.steps.map((s) => ({ ...s, bakeMs: bake }));
  }
  if (c.preflight) {
    const f = c.preflight;
    p.preflight = {
      maxReplicationLagS: f.maxReplicationLagSeconds ?? p.preflight.maxReplicationLagS, maxShadowErrorRate: f.maxShadowErrorRate ?? p.preflight.maxShadowErrorRate,
      maxDivergence: f.maxDivergence ?? p.preflight.maxDivergence, minCompared: f.minCompared ?? p.preflight.minCompared,
      mirrorFraction: f.mirrorFraction ?? p.preflight.mirrorFraction, timeoutMs: f.timeout ?? p.preflight.timeoutMs,
      mirrorMaxBytesPerS: f.mirrorMaxBytesPerSecond ?? p.preflight.mirrorMaxBytesPerS,
    };
  }
  if (c.verification) {
    const { maxWait, ...rest } = c.verification;
    p.verification = { ...p.verification, ...stripUndefined(rest), ...(maxWait !== undefined ? { maxWaitMs: maxWait } : {}) };
  }
  if (c.gates) p.gates = { ...p.gates, ...stripUndefined(c.gates) };
  if (c.promotion) {
    p.promotion = {
      drainTimeoutMs: c.promotion.drainTimeout ?? p.promotion.drainTimeoutMs, actionTimeoutMs: c.promotion.actionTimeout ?? p.promotion.actionTimeoutMs,
      leaseMs: c.promotion.lease ?? p.promotion.leaseMs, maxClockSkewMs: c.promotion.maxClockSkew ?? p.promotion.maxClockSkewMs,
      leaseAtRiskMs: c.promotion.leaseAtRisk ?? p.promotion.leaseAtRiskMs, pauseWritesMs: c.promotion.pauseWrites ?? p.promotion.pauseWritesMs,
    };
  }
  if (c.emergency) {
    const e = c.emergency;
    p.emergency = {
      enabled: e.enabled ?? p.emergency.enabled, windowMs: e.window ?? p.emergency.windowMs, maxFailureShare: e.maxFailureShare ?? p.emergency.maxFailureShare,
      minRequests: e.minRequests ?? p.emergency.minRequests, ejectingShare: e.ejectingShare ?? p.emergency.ejectingShare, fitForMs: e.fitFor ?? p.emergency.fitForMs,
      probeFailures: e.probeFailures ?? p.emergency.probeFailures,
    };
  }
  if (c.fastPath === false) p.fastPath = null;
  else if (c.fastPath) {
    const base = p.fastPath ?? { risk: 0.9, bakeScale: 0.25, mergeSteps: true };
    p.fastPath = { risk: c.fastPath.risk ?? base.risk, bakeScale: c.fastPath.bakeScale ?? base.bakeScale, mergeSteps: c.fastPath.mergeSteps ?? base.mergeSteps };
  }
  if (c.recovery) {
    p.recovery = { mode: c.recovery.mode ?? p.recovery.mode, coolDownMs: c.recovery.coolDown ?? p.recovery.coolDownMs, maxReplicationLagS: c.recovery.maxReplicationLagSeconds ?? p.recovery.maxReplicationLagS };
  }
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Cross-field rules zod's per-field schema cannot express; returns [path, reason] pairs. */
export function policyProblems(p: Policy): [(string | number)[], string][] {
  const out: [(string | number)[], string][] = [];
  if (!(p.risk.leave < p.risk.enter)) out.push([["risk", "leave"], `must be below risk.enter (${p.risk.enter}) so that the thresholds have hysteresis`]);
  p.steps.forEach((s, i) => {
    if (i > 0 && s.weightBp <= p.steps[i - 1]!.weightBp) out.push([["steps", i], `weights must increase: ${s.weightBp / 100}% after ${p.steps[i - 1]!.weightBp / 100}%`]);
  });
  const last = p.steps[p.steps.length - 1];
  if (last && last.weightBp !== 10_000) out.push([["steps", p.steps.length - 1], `the last step must be 100 (the promotion), got ${last.weightBp / 100}`]);
  if (p.promotion.leaseMs > 0 && p.promotion.leaseMs < 1000) out.push([["promotion", "lease"], `must be at least 1s (renewed every third of it), got ${p.promotion.leaseMs}ms`]);
  if (p.promotion.leaseAtRiskMs > 0 && (p.promotion.leaseAtRiskMs < 1000 || p.promotion.leaseAtRiskMs > p.promotion.leaseMs)) out.push([["promotion", "leaseAtRisk"], `must be between 1s and promotion.lease (${p.promotion.leaseMs / 1000}s), got ${p.promotion.leaseAtRiskMs / 1000}s`]);
  if (p.promotion.pauseWritesMs > 60_000 || !Number.isInteger(p.promotion.pauseWritesMs)) out.push([["promotion", "pauseWrites"], `must be a whole number of milliseconds up to 60s (a write held longer has usually been given up by its client), got ${p.promotion.pauseWritesMs}ms`]);
  if (p.fastPath && p.fastPath.risk < p.risk.enter) out.push([["fastPath", "risk"], `must be at or above risk.enter (${p.risk.enter}): the fast path is for high confidence`]);
  return out;
}

export interface PolicySet { defaults: Policy; components: Map<string, Policy> }

/** Parses and validates a policy document; throws PolicyError for the first problem, in document order. */
export function parsePolicy(text: string, file = "<policy>"): PolicySet {
  const { data, fail } = parseYamlStrict(text, file, fileSchema, PolicyError);
  const defaults = resolve(DEFAULT_POLICY, data.defaults);
  for (const [path, reason] of policyProblems(defaults)) fail(["defaults", ...path], reason);
  const components = new Map<string, Policy>();
  for (const [name, c] of Object.entries(data.components)) {
    const p = resolve(defaults, c);
    for (const [path, reason] of policyProblems(p)) {
      // Point at the component's own field if it set one, else at the defaults it inherited.
      const own = c && (path[0] === "steps" ? c.steps : (c as Record<string, unknown>)[String(path[0])]);
      fail(own ? ["components", name, ...path] : ["defaults", ...path], reason);
    }
    components.set(name, p);
  }
  return { defaults, components };
}

/** Reads and parses a policy file; one over the size limit is refused before it is read (the other limits: parseYamlStrict). */
export function loadPolicyFile(file: string): PolicySet {
  const text = readYamlFile(file, PolicyError);
  return parsePolicy(text, file);
}
