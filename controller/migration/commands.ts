// Operator commands in the migration state machine (pause, resume, approve, promote, rollback): what
// each does in each phase, or why it is refused. Pure, applied by reconcile() before the phase handler.
import type { Command, CommandResult } from "./status.js";
import { advance, cancelPromotion, captureBaseline, pause, startPreflight, startRestore, startRollback, type Pass } from "./reconcile.js";

export function command(p: Pass, c: Command): CommandResult {
  const s = p.s;
  const ok = (reason: string): CommandResult => { p.event("command", `${c.kind} by ${c.by}${c.reason ? ` (${c.reason})` : ""}: ${reason}`); return { command: c, accepted: true, reason }; };
  const no = (reason: string): CommandResult => ({ command: c, accepted: false, reason });
  const midPromotion = s.promotion !== null && s.promotion.stage !== "fence" && s.promotion.stage !== "pause";
  if (s.phase === "Failover" && c.kind !== "rollback") return no(`the primary is down and the shadow is being promoted (stage ${s.promotion?.stage ?? "publish"}): ${c.kind} does not apply; rollback returns reads to the primary before the promotion`);
  switch (c.kind) {
    case "pause":
      if (s.phase === "Paused") return no("already paused");
      if (s.phase === "Healthy") return no("nothing is in progress");
      if (midPromotion) return no(`cannot pause during the promotion (stage ${s.promotion!.stage}): the writer is fenced`);
      // Nothing is fenced yet: the promotion starts over on resume, and the proxies stop holding writes now.
      if (s.promotion?.stage === "pause") cancelPromotion(p);
      pause(p, `paused by ${c.by}${c.reason ? `: ${c.reason}` : ""}`);
      return ok("paused");
    case "resume": {
      if (s.phase !== "Paused") return no(`not paused (phase ${s.phase})`);
      const from = s.paused!.from;
      s.paused = null;
      p.enter(from, `resumed by ${c.by}`);
      if (from === "Shifting" || from === "Restoring") s.stepSinceMs = s.rollout ? null : p.now;
      if (from === "Preflight") s.stepSinceMs = null;
      if (s.rollout) p.publish(`${s.rollout.purpose} (again, after resume)`, {});
      return ok(`resumed to ${from}`);
    }
    case "approve":
      if (!["AtRisk", "Preflight", "Shifting", "Restoring", "Migrated", "Paused"].includes(s.phase)) return no(`nothing awaits approval (phase ${s.phase})`);
      if (s.stepIndex < 0 && !s.approvals.firstStep) { s.approvals.firstStep = true; return ok("approved the first step"); }
      s.approvals.full = true;
      return ok("approved the final step (100% and the promotion)");
    case "promote":
      if (s.phase === "Healthy" || s.phase === "AtRisk") {
        s.approvals.firstStep = true;
        if (!s.baseline) captureBaseline(p, "forward");
        startPreflight(p, `manual promote by ${c.by}`);
        return ok("migration started (preflight checks still apply)");
      }
      if ((s.phase === "Shifting" || s.phase === "Restoring") && !s.promotion && c.nextStep) {
        if (s.stepIndex < p.lastStep) {
          advance(p, s.stepIndex + 1);
          return ok(`skipped to step ${s.stepIndex + 1}/${p.lastStep + 1} (its bake and verification still apply)`);
        }
        s.approvals.full = true;
        return ok("on the final step: its promotion approved (its bake and verification still apply)");
      }
      if ((s.phase === "Shifting" || s.phase === "Restoring") && !s.promotion) {
        s.approvals.full = true;
        if (s.stepIndex < p.lastStep) advance(p, p.lastStep);
        return ok("skipping to the final step (its bake and verification still apply)");
      }
      if (s.phase === "Preflight") { s.approvals.firstStep = true; return ok("first step approved; preflight checks still apply"); }
      return no(`cannot promote in phase ${s.phase}`);
    case "rollback":
      // Paused after 100% (e.g. the promoted shadow failed its verification): rolling back is the
      // restore, with the same checks, as Argo Rollouts lets an operator abort from any pause.
      if (s.phase === "Migrated" || (s.phase === "Paused" && s.paused!.from === "Migrated")) {
        if (s.fenced !== null && s.fenced !== "primary") return no("the primary is not the fenced side");
        // Reads go back to the primary at once: it must answer and hold the shadow's data first.
        const probe = p.inputs.health?.probeFailures ?? 0;
        if (probe > 0) return no(`the primary fails its health check (${probe} in a row): it must be up before reads go back to it`);
        const lag = p.inputs.replicaLagS, max = p.policy.recovery.maxReplicationLagS;
        if (lag === null || lag > max) return no(`the primary's replication lag is ${lag === null ? "unknown" : `${lag.toFixed(1)}s`} (limit ${max}s): it must be a caught-up replica of the shadow before it takes reads back`);
        s.paused = null;
        startRestore(p, `rollback by ${c.by}`);
        return ok("restoring to the primary now");
      }
      if (midPromotion && (s.promotion!.stage === "switch" || s.promotion!.stage === "promote")) return no(`the shadow is being promoted (stage ${s.promotion!.stage}); roll back once migrated`);
      if (["AtRisk", "Preflight", "Shifting", "Restoring", "Failover", "Paused"].includes(s.phase)) {
        if (s.phase === "Paused" && ["Healthy", "RollingBack"].includes(s.paused!.from)) return no(`nothing to roll back (paused from ${s.paused!.from})`);
        if (s.promotion) cancelPromotion(p);
        startRollback(p, `rollback by ${c.by}${c.reason ? `: ${c.reason}` : ""}`);
        return ok("rolling back");
      }
      return no(`nothing to roll back (phase ${s.phase})`);
  }
}
