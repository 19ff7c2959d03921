// The migration state machine's emergency path (Failover): when is the primary down, is the shadow
// fit to take over, the one publish that moves every read and holds writes, and the promotion once
// the primary provably cannot take writes. Called by reconcile() on every pass; pure like it.
import type { Phase } from "./status.js";
import { TOTAL_WEIGHT } from "../xds/resources.js";
import { startRollback, type Pass } from "./reconcile.js";


const LAG_UNKNOWN = "replication lag is unknown";

/** Why the primary is down by the policy's rules, or null. */
export function primaryDown(p: Pass): string | null {
  const e = p.policy.emergency, h = p.inputs.health;
  if (!e.enabled || !h) return null;
  if (h.reporting > 0 && h.ejecting > 0 && h.ejecting / h.reporting >= e.ejectingShare) return `the failover floor of ${h.ejecting} of ${h.reporting} proxies ejected the primary`;
  // Our own fence makes the primary refuse writes: failed requests then say nothing about its health.
  if (p.s.fenced !== "primary" && h.requests >= e.minRequests && h.failures / h.requests >= e.maxFailureShare) return `${h.failures} of ${h.requests} requests to the primary failed in the last ${e.windowMs / 1000}s`;
  // The active health check sees a dead primary that takes no traffic.
  if (e.probeFailures > 0 && (h.probeFailures ?? 0) >= e.probeFailures) return `the primary failed ${h.probeFailures} health checks in a row`;
  return null;
}

/**
 * Why the shadow may not serve by the preflight's absolute limits, or null when it may. `lag: false`
 * leaves the lag out: once the primary is down the measured lag only says how long it has been silent.
 */
export function shadowUnfit(p: Pass, o: { lag: boolean } = { lag: true }): string | null {
  const f = p.policy.preflight, lag = p.inputs.replicaLagS;
  const probe = p.inputs.shadowProbeFailures ?? 0, limit = p.policy.emergency.probeFailures;
  if (limit > 0 && probe >= limit) return `the shadow failed ${probe} health checks in a row`;
  if (o.lag && lag === null) return LAG_UNKNOWN;
  if (o.lag && lag !== null && lag > f.maxReplicationLagS) return `replication lag ${lag.toFixed(1)}s is over ${f.maxReplicationLagS}s`;
  const sh = p.inputs.recent.shadow;
  if (sh && sh.requests >= p.policy.verification.minRequests && sh.errorRate > f.maxShadowErrorRate) return `shadow error rate ${(sh.errorRate * 100).toFixed(2)}% is over ${(f.maxShadowErrorRate * 100).toFixed(2)}%`;
  const c = p.inputs.recent.consistency;
  if (c && c.compared >= f.minCompared && c.diverged / c.compared > f.maxDivergence) return `mirrored reads diverge ${((c.diverged / c.compared) * 100).toFixed(2)}%`;
  return null;
}

/**
 * Keeps status.shadowFit (published to the floor) current: unfit at once, fit again only after the limits
 * held for emergency.fitForMs or a step's verification passed on the shadow (the first time, as soon as
 * they hold). While the primary shows trouble the verdict is frozen: a dead primary makes
 * the shadow's measured lag grow (nothing arrives), which says nothing about the data the shadow has.
 */
export function updateShadowFit(p: Pass): void {
  const s = p.s;
  if (s.writeTarget !== "primary" || s.phase === "Failover") return;
  const h = p.inputs.health;
  if (h && (h.ejecting > 0 || (h.probeFailures ?? 0) > 0 || (h.requests > 0 && h.failures / h.requests >= p.policy.emergency.maxFailureShare / 2))) return;
  const why = shadowUnfit(p);
  if (why === null) s.shadowFitSinceMs ??= p.now; else { s.shadowFitSinceMs = null; s.shadowVerifiedMs = null; }
  // The hold is hysteresis against a shadow that flaps across its limits: before any limit was ever
  // broken (a lag not measured yet is missing data, not a break), the first reading within the limits
  // is the evidence there is, and a primary that dies in the controller's first seconds still fails over.
  if (why !== null && why !== LAG_UNKNOWN) s.shadowUnfitSeen = true;
  const held = why === null ? p.now - s.shadowFitSinceMs! : 0, heldLong = held >= p.policy.emergency.fitForMs;
  // A step's verification that passed on the shadow taking reads, since its limits hold again, is
  // stronger evidence than the hold (error rate, latency and consistency, each decided with
  // confidence): the shadow is fit from then until its next break (README: "Other seeds").
  const v = s.lastVerdict;
  if (why === null && p.target === "shadow" && v?.outcome === "pass" && v.atMs >= s.shadowFitSinceMs!) s.shadowVerifiedMs ??= v.atMs;
  const verified = s.shadowVerifiedMs != null; // cleared by every break above
  const fit = why === null && (heldLong || !s.shadowUnfitSeen || verified);
  if (fit === s.shadowFit) return;
  p.publish(fit ? "the shadow is fit to serve the floor's reads" : `the shadow is not fit to serve the floor's reads: ${why}`, { shadowFit: fit });
  const because = !s.shadowUnfitSeen ? "within its limits, never outside them"
    : heldLong ? `limits held ${p.policy.emergency.fitForMs / 1000}s`
    : `within its limits, and a step's verification passed on it ${((p.now - s.shadowVerifiedMs!) / 1000).toFixed(1)} s ago`;
  p.event("risk", fit ? `shadow fit for failover (${because})` : `shadow unfit for failover: ${why}`, fit ? "info" : "warning");
}

/** Starts (or refuses) the emergency failover; true when this pass is done. */
export function emergency(p: Pass): boolean {
  const s = p.s;
  if (s.phase === "Failover") return false;
  const why = primaryDown(p);
  if (why === null) return false;
  if (s.phase === "Restoring") {
    // Reads were coming back to a primary that just went down: send them back to the serving shadow.
    if (s.promotion) return false;
    startRollback(p, `the primary went down while restoring: ${why}`);
    return true;
  }
  const forwardPhase = (ph: Phase) => ["Healthy", "AtRisk", "Preflight", "Shifting", "RollingBack"].includes(ph);
  const from = s.phase === "Paused" ? s.paused!.from : s.phase;
  if (s.writeTarget !== "primary" || !forwardPhase(from) || s.direction !== "forward") return false;
  if (s.promotion && (s.promotion.stage === "promote" || s.promotion.stage === "switch")) return false; // already promoting: it finishes
  if (!s.shadowFit) { p.block(`the primary is down (${why}) but the shadow is not fit to take over: reads and writes stay on the primary`); return false; }
  const unfit = shadowUnfit(p, { lag: false });
  if (unfit !== null) { p.block(`the primary is down (${why}) but the shadow fails its absolute limits: ${unfit}`); return false; }
  s.emergency = { sinceMs: p.now, reason: why };
  s.paused = null;
  s.direction = "forward";
  s.stepIndex = p.lastStep;
  s.stepSinceMs = null;
  s.approvals = { firstStep: false, full: false };
  const { ms: pauseMs, without } = p.writePause();
  p.enter("Failover", `the primary is down: ${why}; every read to the shadow now, writes held${pauseMs > 0 ? ` (waiting in the proxies up to ${pauseMs / 1000}s each)` : ""} until it is promoted`, "error");
  if (without) p.event("step", without, "warning");
  p.publish("failover: every read to the shadow, writes held", { shadowWeightBp: TOTAL_WEIGHT, mirrorFraction: 0, holdWrites: `the primary is down (${why}); the shadow is being promoted`, pauseWritesMs: pauseMs });
  if (s.fenced === "primary") { s.promotion = { stage: "drain", sinceMs: p.now }; return true; }
  const a = s.pendingAction;
  if (a && a.kind === "fence" && a.side === "primary") { s.promotion = { stage: "fence", sinceMs: a.sinceMs }; return true; }
  s.promotion = { stage: "fence", sinceMs: p.now };
  p.act("fence", "primary");
  return true;
}

/**
 * The emergency promotion: nobody can take writes now (the primary is fenced, or its lease ran out).
 * With writes paused in the proxies (promotion.pauseWrites) the switch follows the promote as in a
 * planned move, and the held writes go on to the new leader. Without a pause (0) the write target moves
 * to the shadow in the same instant as the promote instead of after it: writes that reach the shadow
 * before it leads fail (or are forwarded to the fenced primary, which holds them), as held ones would,
 * and flow the moment it leads.
 */
export function emergencyPromote(p: Pass): void {
  p.s.promotion = { stage: "promote", sinceMs: p.now };
  p.act("promote", p.target);
  // Writes wait in the proxies (promotion.pauseWrites): the switch after the promote sends them on to
  // the new leader; moving the target now would send them to a shadow that does not lead yet.
  if (p.s.pauseWritesMs) return;
  p.publish(`write target -> ${p.target} with its promotion (nobody can take writes meanwhile)`, { writeTarget: p.target, holdWrites: null });
}
