// The migration state machine, as one pure function: reconcile(policy, status, inputs, nowMs) returns
// the next status, the events it decided, the actions the shell must carry out, and the outcome of any
// operator command. No I/O, no clock, no randomness: the shell (manager.ts) gathers inputs, persists
// the returned status *before* it carries out the actions, and reports their results next time.
//
// Phases: Healthy -> AtRisk -> Preflight -> Shifting(step) -> Migrated -> Restoring(step) -> Healthy,
// plus RollingBack and Paused. Reads move step by step; writes move once, at the end, by a promotion:
// fence the writer, wait for zero replication lag, promote the replica, then switch the write target.
// The fence comes before the promotion and the switch after it, so two sides never accept writes.
// A weight is only advanced after every proxy ACKed the previous publish; a NACK pauses.
// An inconclusive verification pauses; only a failed one rolls back.
// This file holds the phases; pass.ts one pass's working state, status.ts the types it reads and returns, commands.ts the
// operator commands, promotion.ts the write move stage by stage, emergency.ts the Failover path.
//
// Emergency path (Failover, in emergency.ts): prediction can miss, so when the primary is down (most proxies' failover
// floors ejected it, or most of its requests failed over the policy's window) and the shadow is fit,
// every read moves to the shadow in one publish, writes are held (they wait in the proxies up to
// promotion.pauseWrites, then the filter answers 503 with the reason), and the shadow is promoted as
// soon as the primary provably cannot take writes: a fence
// that succeeded (then the usual drain), or, when it cannot be reached, the expiry of the last lease
// deadline granted to it. Every promotion bumps the epoch. A primary that dies mid-shift ends the
// shift this way: no bake, no comparison with a dead primary, no stall. The shadow's fitness (lag,
// errors, divergence within the preflight limits, held for emergency.fitForMs) is published to the
// filter, whose floor diverts reads only to a fit shadow.
import type { Policy } from "./policy.js";
import { verify, type Verdict } from "./verify.js";
import { TOTAL_WEIGHT } from "../xds/resources.js";
import type { MigrationEvent, MigrationStatus, Phase, ReconcileInputs, ReconcileResult } from "./status.js";
import { keepMirrorInBudget, mirrorShare, startMirror } from "./mirror.js";
import { emergency, updateShadowFit } from "./emergency.js";
import { promotion } from "./promotion.js";
import { command } from "./commands.js";
import { Pass } from "./pass.js";
export * from "./status.js";

export { Pass };

export function reconcile(policy: Policy, prev: MigrationStatus, inputs: ReconcileInputs, nowMs: number): ReconcileResult {
  const s: MigrationStatus = structuredClone(prev);
  s.revision++;
  // Statuses stored before these fields existed.
  s.shadowFit ??= false; s.shadowFitSinceMs ??= null; s.holdWrites ??= null; s.pauseWritesMs ??= 0; s.emergency ??= null; s.epoch ??= 1; s.leaseHolder ??= s.writeTarget;
  const p = new Pass(policy, s, inputs, nowMs);
  for (const c of inputs.commands) p.commandResults.push(command(p, c));
  // The primary down outranks everything else, including a publish not yet ACKed (it is superseded).
  if (emergency(p)) return finish(p);
  // A publish must be ACKed everywhere before anything else moves.
  if (!awaitRollout(p)) return finish(p);
  updateShadowFit(p);
  if (!awaitAction(p)) return finish(p);
  if ((s.phase === "AtRisk" || s.phase === "Preflight" || s.phase === "Shifting") && keepMirrorInBudget(p)) return finish(p);
  switch (s.phase) {
    case "Healthy": healthy(p); break;
    case "AtRisk": atRisk(p); break;
    case "Preflight": preflight(p); break;
    case "Shifting": case "Restoring": case "Failover": shifting(p); break;
    case "Migrated": migrated(p); break;
    case "RollingBack": rollingBack(p); break;
    case "Paused": break;
  }
  return finish(p);
}

function finish(p: Pass): ReconcileResult {
  return { status: p.s, events: p.events, actions: p.actions, commandResults: p.commandResults, wakeAtMs: p.wakeAtMs };
}

export function pause(p: Pass, reason: string, severity: MigrationEvent["severity"] = "warning"): void {
  const from = p.s.phase === "Paused" ? p.s.paused!.from : p.s.phase;
  p.s.paused = { from, reason };
  p.enter("Paused", reason, severity);
}

/** True when no publish is outstanding. A NACK pauses with the proxies' error. */
function awaitRollout(p: Pass): boolean {
  const r = p.s.rollout;
  if (!r) return true;
  const res = p.inputs.rollout;
  if (!res || res.id !== r.id || res.state === "pending") { p.block(`waiting for every proxy to ACK: ${r.purpose}`); return false; }
  if (res.state === "acked") {
    p.s.rollout = null;
    p.unblock();
    p.event("rollout", `every proxy ACKed: ${r.purpose}`);
    if ((p.s.phase === "Shifting" || p.s.phase === "Restoring") && p.s.stepSinceMs === null) p.s.stepSinceMs = p.now;
    return true;
  }
  if (res.state === "superseded") {
    // Another publish replaced ours before every proxy confirmed it: publish our state again.
    p.publish(`${r.purpose} (again, superseded)`, {});
    return false;
  }
  if (p.s.phase !== "Paused") pause(p, `a proxy rejected (NACK) ${r.purpose}: ${res.error ?? "no detail"}`, "error");
  return false;
}

/** True when no external action is outstanding. A failed or timed-out action undoes the promotion. */
function awaitAction(p: Pass): boolean {
  const a = p.s.pendingAction;
  if (!a) return true;
  const res = p.inputs.action;
  const timedOut = p.now - a.sinceMs >= p.policy.promotion.actionTimeoutMs;
  if ((!res || res.id !== a.id || res.state === "pending") && !timedOut) { p.block(`waiting for ${a.kind} ${a.side}`); return false; }
  p.s.pendingAction = null;
  p.unblock();
  if (res && res.id === a.id && res.state === "ok") {
    p.event("action", `${a.kind} ${a.side}: done`);
    if (a.kind === "fence") p.s.fenced = a.side;
    if (a.kind === "unfence" && p.s.fenced === a.side) p.s.fenced = null;
    if (a.kind === "promote") {
      p.s.promotion = { stage: "switch", sinceMs: p.now };
      if (p.s.fenced === a.side) p.s.fenced = null;
      p.s.epoch = (p.s.epoch ?? 1) + 1;
      p.s.leaseHolder = a.side;
    }
    if (a.kind === "fence" && p.s.promotion) p.s.promotion = { stage: "drain", sinceMs: p.now, ...(res.stopped ? { stopped: true } : {}) };
    return true;
  }
  const why = timedOut ? `timed out after ${p.policy.promotion.actionTimeoutMs / 1000}s` : `failed: ${res!.error ?? "no detail"}`;
  p.event("action", `${a.kind} ${a.side} ${why}`, "error");
  if (a.kind === "unfence") { pause(p, `unfence ${a.side} ${why}; the side stays fenced until an operator acts`, "error"); return false; }
  if (p.s.emergency && p.s.promotion) {
    // The primary is down: a fence it cannot answer proves nothing, its lease will. A failed promote is
    // retried; meanwhile writes are held again (they were sent to the shadow with the promote). Promoting
    // is idempotent: one that failed is retried after up to 5 s, one that timed out (it already waited
    // the action timeout, and may have finished) at once.
    if (a.kind === "promote") p.publish("the promotion failed: writes held again", { writeTarget: "primary", holdWrites: `the primary is down (${p.s.emergency.reason}); promoting the shadow failed, retrying` });
    p.s.promotion = { stage: "lease", sinceMs: p.now, ...(a.kind === "promote" && !timedOut ? { notBeforeMs: p.now + Math.min(5_000, p.policy.promotion.actionTimeoutMs) } : {}) };
    if (a.kind === "fence") p.event("action", p.inputs.leaseEnforced === false ? `the primary cannot be fenced (${why}) and nothing enforces its lease: writes stay held, the fence is retried` : `the primary cannot be fenced (${why}); promoting once its lease has expired`, "warning");
    return true;
  }
  abortPromotion(p, `${a.kind} ${a.side} ${why}`);
  return false;
}

/** Undoes a promotion that has not switched writes: lift the fence (the writer never changed). */
export function cancelPromotion(p: Pass): void {
  p.s.promotion = null;
  if (p.s.pauseWritesMs) p.publish(`writes flow again to the ${p.source} (the switch stopped)`, { pauseWritesMs: 0 });
  if (p.s.fenced === p.source) p.act("unfence", p.source);
}

export function abortPromotion(p: Pass, why: string): void {
  cancelPromotion(p);
  pause(p, `promotion stopped, writes stay on ${p.source}: ${why}`, "error");
}

export function captureBaseline(p: Pass, direction: "forward" | "reverse"): void {
  const side = direction === "forward" ? p.inputs.recent.primary : p.inputs.recent.shadow;
  if (side && side.requests > 0) p.s.baseline = { requests: side.requests, errorRate: side.errorRate, latencyMs: side.latencyMs };
}

function trackRisk(p: Pass, risk: number | null): { high: number; low: number } {
  const s = p.s, r = p.policy.risk;
  if (risk === null) return { high: 0, low: 0 };
  if (risk >= r.enter) s.riskHighSinceMs ??= p.now; else s.riskHighSinceMs = null;
  if (risk <= r.leave) s.riskLowSinceMs ??= p.now; else s.riskLowSinceMs = null;
  return { high: s.riskHighSinceMs === null ? 0 : p.now - s.riskHighSinceMs, low: s.riskLowSinceMs === null ? 0 : p.now - s.riskLowSinceMs };
}

function healthy(p: Pass): void {
  const risk = p.inputs.risk;
  trackRisk(p, risk);
  // The baseline verification compares against is the primary while it was last clearly healthy.
  if (risk !== null && risk <= p.policy.risk.leave) captureBaseline(p, "forward");
  if (risk !== null && risk >= p.policy.risk.enter) {
    p.enter("AtRisk", `risk ${risk.toFixed(2)} reached ${p.policy.risk.enter}`, "warning");
    // Mirroring reads is safe (the shadow's answers are only compared, never served), so it starts
    // while the risk is still confirming: preflight then finds its consistency sample waiting.
    startMirror(p, " while the risk confirms");
  }
}

function atRisk(p: Pass): void {
  const { high, low } = trackRisk(p, p.inputs.risk);
  if (low >= p.policy.risk.leaveForMs) {
    p.s.approvals = { firstStep: false, full: false };
    p.enter("Healthy", `risk stayed at or below ${p.policy.risk.leave} for ${p.policy.risk.leaveForMs / 1000}s`);
    if (p.s.mirrorFraction > 0) p.publish("mirror off", { mirrorFraction: 0 });
    p.s.stepSinceMs = null;
    return;
  }
  const enterFor = p.fast ? p.policy.risk.enterForMs * p.policy.fastPath!.bakeScale : p.policy.risk.enterForMs;
  if (high >= enterFor) startPreflight(p, `risk stayed at or above ${p.policy.risk.enter} for ${enterFor / 1000}s${p.fast ? " (fast path)" : ""}`);
}

export function startPreflight(p: Pass, why: string): void {
  p.s.direction = "forward";
  p.s.stepIndex = -1;
  p.enter("Preflight", why, "warning");
  // Consistency must be judged before any live request reaches the shadow. Coming from AtRisk the
  // mirror is already on and its sample (counted from stepSinceMs) carries over.
  if (p.s.mirrorFraction > 0 && p.s.mirrorFraction === mirrorShare(p) && p.s.stepSinceMs !== null) return;
  startMirror(p);
}

function preflight(p: Pass): void {
  const s = p.s, f = p.policy.preflight;
  s.stepSinceMs ??= p.now;
  const { low } = trackRisk(p, p.inputs.risk);
  if (low >= p.policy.risk.leaveForMs) {
    s.approvals = { firstStep: false, full: false };
    p.enter("Healthy", "risk went away during preflight; mirroring off");
    p.publish("mirror off", { mirrorFraction: 0 });
    return;
  }
  const problems: string[] = [];
  const lag = p.inputs.replicaLagS;
  if (lag === null) problems.push("replication lag is unknown");
  else if (lag > f.maxReplicationLagS) problems.push(`replication lag ${lag.toFixed(1)}s is over the limit ${f.maxReplicationLagS}s`);
  const sh = p.inputs.recent.shadow;
  if (!sh || sh.requests === 0) problems.push("no shadow traffic seen yet (mirrored reads)");
  else if (sh.errorRate > f.maxShadowErrorRate) problems.push(`shadow error rate ${(sh.errorRate * 100).toFixed(2)}% is over ${(f.maxShadowErrorRate * 100).toFixed(2)}%`);
  const sr = p.inputs.shadowRisk ?? null;
  if (sr !== null && sr >= p.policy.risk.enter) problems.push(`the shadow is itself at risk (${sr.toFixed(2)}, at or above ${p.policy.risk.enter}): moving would not lower the risk`);
  const c = p.inputs.window?.consistency;
  if (!c || c.compared < f.minCompared) problems.push(`only ${c?.compared ?? 0} mirrored reads compared (need ${f.minCompared})`);
  else if (c.diverged / c.compared > f.maxDivergence) problems.push(`mirrored reads diverge ${((c.diverged / c.compared) * 100).toFixed(2)}% (limit ${(f.maxDivergence * 100).toFixed(2)}%)`);
  if (problems.length) {
    if (p.now - s.phaseSinceMs >= f.timeoutMs) pause(p, `preflight did not pass in ${f.timeoutMs / 1000}s: ${problems.join("; ")}`);
    else p.block(`preflight: ${problems.join("; ")}`);
    return;
  }
  if (p.policy.gates.approveFirstStep && !s.approvals.firstStep) { p.block("preflight passed; waiting for approval of the first step"); return; }
  p.enter("Shifting", "preflight passed: the shadow is in sync and consistent");
  advance(p, 0);
}

/** Publishes step i's weight; bake starts once every proxy ACKed it. */
export function advance(p: Pass, i: number): void {
  const s = p.s;
  s.stepIndex = i;
  s.stepSinceMs = null;
  const bp = p.shadowBpForStep(i);
  p.event("step", `step ${i + 1}/${p.policy.steps.length}: ${p.target} gets ${p.targetShareBp(i) / 100}% of reads`);
  // The mirror only makes sense while the source still serves reads.
  p.publish(`step ${i + 1}: shadow weight ${bp / 100}%`, { shadowWeightBp: bp, mirrorFraction: p.targetShareBp(i) < TOTAL_WEIGHT && p.s.direction === "forward" ? mirrorShare(p) : 0 });
}

function stepVerdict(p: Pass): Verdict {
  const w = p.inputs.window;
  const target = w ? (p.target === "shadow" ? w.shadow : w.primary) : { requests: 0, errors: 0, latency: null };
  const mirrorApplies = p.s.direction === "forward" && p.s.shadowWeightBp < TOTAL_WEIGHT && p.s.mirrorFraction > 0;
  // The control: the side the reads leave, in the same window (a slowdown both share is not the target's).
  const control = w ? (p.target === "shadow" ? w.primary : w.shadow) : null;
  return verify(p.policy.verification, { baseline: p.s.baseline, target, consistency: mirrorApplies ? (w?.consistency ?? { compared: 0, diverged: 0 }) : null, control });
}

function shifting(p: Pass): void {
  const s = p.s;
  if (s.promotion) { promotion(p); return; }
  if (s.stepSinceMs === null) return;
  const step = p.policy.steps[s.stepIndex]!;
  const baked = p.now - s.stepSinceMs;
  // The fast path (risk very high) shortens bakes; it never skips a verification.
  const bakeMs = p.fast && s.direction === "forward" ? step.bakeMs * p.policy.fastPath!.bakeScale : step.bakeMs;
  if (baked < bakeMs) { p.block(`baking step ${s.stepIndex + 1} (${Math.ceil((bakeMs - baked) / 1000)}s left${bakeMs < step.bakeMs ? ", fast path" : ""})`); return; }
  if (step.check === "verify") {
    const v = stepVerdict(p);
    if (v.outcome !== "pass" || s.lastVerdict?.outcome !== "pass") s.lastVerdict = { outcome: v.outcome, summary: v.summary, atMs: p.now };
    if (v.outcome === "fail") {
      p.event("verification", `step ${s.stepIndex + 1} failed verification: ${v.summary}`, "error");
      startRollback(p, `verification failed at step ${s.stepIndex + 1}`);
      return;
    }
    if (v.outcome === "inconclusive") {
      if (baked >= bakeMs + p.policy.verification.maxWaitMs) pause(p, `verification inconclusive at step ${s.stepIndex + 1}: ${v.summary}`);
      else p.block(`step ${s.stepIndex + 1} verification inconclusive, collecting more data: ${v.summary}`);
      return;
    }
    p.event("verification", `step ${s.stepIndex + 1} passed: ${v.summary}`);
  }
  if (s.stepIndex >= p.lastStep) {
    p.unblock();
    const { ms: pauseMs, without } = p.writePause();
    if (without) p.event("step", without, "warning");
    if (pauseMs > 0) {
      // The proxies hold writes first (ACKed before the fence), so none reaches a writer that refuses it.
      s.promotion = { stage: "pause", sinceMs: p.now };
      p.event("step", `all reads on the ${p.target}; promoting it: the proxies hold writes (up to ${pauseMs / 1000}s each) while the ${p.source} is fenced and the ${p.target} promoted`);
      p.publish(`hold writes for the switch to the ${p.target}`, { pauseWritesMs: pauseMs });
      return;
    }
    s.promotion = { stage: "fence", sinceMs: p.now };
    p.event("step", `all reads on the ${p.target}; promoting it: fence the ${p.source} against writes`);
    p.act("fence", p.source);
    return;
  }
  // The fast path merges steps: it skips the next one (never the last, whose gate still applies).
  const next = p.fast && s.direction === "forward" && p.policy.fastPath!.mergeSteps ? Math.min(s.stepIndex + 2, p.lastStep) : s.stepIndex + 1;
  if (next === p.lastStep && p.policy.gates.approveFull && !s.approvals.full) { p.block(`waiting for approval before 100% on the ${p.target}`); return; }
  if (next > s.stepIndex + 1) p.event("step", `fast path: risk ${p.inputs.risk!.toFixed(2)} >= ${p.policy.fastPath!.risk}, merging step ${s.stepIndex + 2} into step ${next + 1}`, "warning");
  advance(p, next);
}

function migrated(p: Pass): void {
  const s = p.s;
  // Verification after 100%: once, after the last step's bake, the promoted shadow against the baseline.
  const bake = p.policy.steps[p.lastStep]!.bakeMs;
  if (s.stepSinceMs !== null && p.now - s.stepSinceMs >= bake) {
    const v = stepVerdict(p);
    s.lastVerdict = { outcome: v.outcome, summary: v.summary, atMs: p.now };
    if (v.outcome === "pass") { p.event("verification", `after migration: ${v.summary}`); s.stepSinceMs = null; }
    else if (v.outcome === "fail") { s.stepSinceMs = null; pause(p, `the promoted shadow fails verification: ${v.summary}`, "error"); return; }
    else if (p.now - s.stepSinceMs >= bake + p.policy.verification.maxWaitMs) { s.stepSinceMs = null; p.event("verification", `after migration, inconclusive: ${v.summary}`, "warning"); }
  }
  // The shadow now serves everything: its own risk is the one that matters, and the operator is told.
  const sr = p.inputs.shadowRisk ?? null;
  if (sr !== null && sr >= p.policy.risk.enter) p.block(`the shadow, serving everything, is itself at risk (${sr.toFixed(2)}); the primary's risk is ${p.inputs.primaryRisk === null ? "unknown" : p.inputs.primaryRisk.toFixed(2)}${p.policy.recovery.mode === "restore" ? ": restore follows the primary's recovery" : " (recovery.mode stay: restoring is the operator's call)"}`);
  else if (p.s.blockedReason?.startsWith("the shadow, serving everything")) p.unblock();
  if (p.policy.recovery.mode !== "restore") return;
  const r = p.inputs.primaryRisk;
  if (r === null || r > p.policy.risk.leave) { s.riskLowSinceMs = null; return; }
  s.riskLowSinceMs ??= p.now;
  if (p.now - s.riskLowSinceMs < p.policy.recovery.coolDownMs) return;
  const lag = p.inputs.replicaLagS;
  if (lag === null || lag > p.policy.recovery.maxReplicationLagS) { p.block(`primary recovered; restore waits for its replication lag (${lag ?? "unknown"}s, limit ${p.policy.recovery.maxReplicationLagS}s)`); return; }
  startRestore(p, `the primary has been healthy for ${p.policy.recovery.coolDownMs / 1000}s`);
}

export function startRestore(p: Pass, why: string): void {
  p.s.direction = "reverse";
  captureBaseline(p, "reverse");
  p.enter("Restoring", why);
  advance(p, 0);
}

export function startRollback(p: Pass, why: string): void {
  const s = p.s;
  s.emergency = null;
  p.enter("RollingBack", why, "warning");
  const back = s.direction === "forward" ? 0 : TOTAL_WEIGHT;
  p.publish(`rollback: all reads to the ${p.source}`, { shadowWeightBp: back, mirrorFraction: 0, holdWrites: null });
}

function rollingBack(p: Pass): void {
  const s = p.s;
  // Reached only once the rollback publish is ACKed.
  s.stepIndex = -1;
  s.stepSinceMs = null;
  s.approvals = { firstStep: false, full: false };
  const back: Phase = s.direction === "forward" ? "Healthy" : "Migrated";
  if (s.direction === "reverse") s.direction = "forward";
  s.paused = { from: back, reason: "rolled back" };
  s.phase = "Paused";
  s.phaseSinceMs = p.now;
  p.event("phase", `RollingBack -> Paused: all reads are back on the ${back === "Healthy" ? "primary" : "shadow"}; resume returns to ${back}`, "warning");
}
