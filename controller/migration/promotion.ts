// The migration state machine's write move, stage by stage: have the proxies hold writes (when the
// policy pauses them), fence the writer, drain (wait for zero replication lag), or when the writer
// cannot be fenced wait out its lease, then promote the replica and switch the write target; in an
// emergency the same stages end in the emergency promotion. Pure, called by reconcile() while
// status.promotion is set.
import { abortPromotion, type Pass } from "./reconcile.js";
import { emergencyPromote } from "./emergency.js";

export function promotion(p: Pass): void {
  const s = p.s, pr = s.promotion!;
  switch (pr.stage) {
    case "pause":
      // Every proxy ACKed the pause (awaitRollout): writes wait in the proxies from here on.
      s.promotion = { stage: "fence", sinceMs: p.now };
      p.event("step", `every proxy holds writes; fence the ${p.source} against writes`);
      p.act("fence", p.source);
      return;
    case "fence": return; // the fence action is outstanding (awaitAction moves on)
    case "drain": {
      const lag = p.inputs.replicaLagS, at = p.inputs.replicaLagAtMs;
      // Drained only by a reading measured after the fence (this stage began once it was done): one
      // from before it misses what the writer acknowledged in between (seen: 2 orders lost in a
      // failover whose last reading, 0, predated the fence by most of a second).
      const measuredAfterFence = at === undefined || (at !== null && at >= pr.sinceMs);
      if (lag !== null && lag <= 0 && measuredAfterFence) {
        if (s.emergency) { emergencyPromote(p); return; }
        s.promotion = { stage: "promote", sinceMs: p.now };
        p.act("promote", p.target);
        return;
      }
      if (s.emergency && pr.stopped) {
        p.event("action", `the primary was stopped by its fence (STONITH) and ships nothing more; replication lag is ${lag ?? "unknown"}s: promoting`, "warning");
        emergencyPromote(p);
        return;
      }
      // A fenced primary that is down ships nothing more: once the lease it held has run out (what the
      // lease rule would wait for an unfenced one), waiting for the drain only holds writes longer.
      // One that answered a lag read itself since its fence is not down (a starved or slow primary the
      // floor ejected): it may still be shipping WAL, and promoting past it would lose what it has not
      // shipped. It is drained like a planned move's, up to drainTimeout.
      const granted = p.inputs.leaseGrantedUntilMs ?? null;
      const writerAt = p.inputs.writerAnsweredAtMs ?? null;
      const answersSinceFence = writerAt !== null && writerAt >= pr.sinceMs;
      const leaseOutAt = s.emergency && granted !== null && p.policy.promotion.leaseMs > 0 && !answersSinceFence ? granted + p.policy.promotion.maxClockSkewMs : Infinity;
      if (p.now >= leaseOutAt && p.now - pr.sinceMs < p.policy.promotion.drainTimeoutMs) {
        p.event("action", `the fenced primary is down and its lease expired ${((p.now - granted!) / 1000).toFixed(1)}s ago; replication lag is still ${lag ?? "unknown"}s and cannot drain from a dead primary: promoting`, "warning");
        emergencyPromote(p);
        return;
      }
      if (Number.isFinite(leaseOutAt)) p.wake(Math.min(leaseOutAt, pr.sinceMs + p.policy.promotion.drainTimeoutMs));
      if (p.now - pr.sinceMs >= p.policy.promotion.drainTimeoutMs) {
        // A lag of 0 from before the fence is not a drain: say that, not "did not reach zero (last 0)".
        const drained = `${p.policy.promotion.drainTimeoutMs / 1000}s`;
        const why = lag !== null && lag <= 0 && !measuredAfterFence
          ? `no replication lag reading measured after the fence in ${drained} (the last, ${lag}, was measured ${((pr.sinceMs - at!) / 1000).toFixed(1)}s before it)`
          : `replication lag did not reach zero in ${drained} (last ${lag ?? "unknown"})`;
        if (s.emergency) {
          // The fenced primary accepts no writes, so promoting is safe; what it had not shipped is the
          // asynchronous replication's loss (at most the lag the shadow was fit with).
          p.event("action", `${why}; the primary is fenced and down: promoting`, "warning");
          emergencyPromote(p);
          return;
        }
        abortPromotion(p, why);
        return;
      }
      p.block(lag !== null && lag <= 0 && !measuredAfterFence ? `fenced ${p.source}; waiting for a replication lag reading measured after the fence` : `fenced ${p.source}; waiting for replication lag to reach zero (now ${lag ?? "unknown"}s)`);
      return;
    }
    case "lease": {
      const l = p.policy.promotion;
      if (l.leaseMs <= 0) { p.block("the primary is down and cannot be fenced, and the policy has no lease (promotion.lease): promote the shadow by hand once the primary is known dead"); return; }
      if (p.inputs.leaseEnforced === false) {
        // Nothing makes this primary stop writing when its lease runs out (it may be slow or cut off,
        // not dead): promoting past it could make two writers. Writes stay held; the fence is retried.
        const retryAt = pr.sinceMs + Math.min(5_000, l.actionTimeoutMs);
        if (p.now < retryAt) { p.wake(retryAt); p.block("the primary cannot be fenced and nothing enforces its lease (no lease agent): writes stay held, retrying the fence; give the primary a lease agent, or promote the shadow by hand once the primary is known dead"); return; }
        s.promotion = { stage: "fence", sinceMs: p.now };
        p.act("fence", "primary");
        return;
      }
      // The first attempt waits for the lease; a retry after a failed promote also waits notBeforeMs. A
      // primary our fence reached (fenced, or stopped) takes no writes: its retry needs no lease.
      const granted = p.inputs.leaseGrantedUntilMs ?? null;
      const fenced = s.fenced === p.source;
      const safeAt = Math.max(granted === null || fenced ? 0 : granted + l.maxClockSkewMs, pr.notBeforeMs ?? 0);
      if (p.now < safeAt) { p.wake(safeAt); p.block(fenced ? `retrying the promotion in ${Math.ceil((safeAt - p.now) / 1000)}s (the primary is fenced)` : `the primary cannot be fenced; promoting when its lease expires (${Math.ceil((safeAt - p.now) / 1000)}s)`); return; }
      p.event("action", fenced ? "the primary is fenced: it cannot take writes; promoting again" : granted === null ? "the primary was never granted a lease: it cannot take writes" : `the primary's lease expired ${((p.now - granted) / 1000).toFixed(1)}s ago: it cannot take writes`);
      emergencyPromote(p);
      return;
    }
    case "promote": return;
    case "switch":
      // The same publish ends a pause: the writes the proxies held go on to the new target.
      if (s.writeTarget !== p.target || s.holdWrites || s.pauseWritesMs) { p.publish(`write target -> ${p.target}${s.pauseWritesMs ? " (held writes go on to it)" : ""}`, { writeTarget: p.target, holdWrites: null, pauseWritesMs: 0 }); return; }
      s.promotion = null;
      s.approvals = { firstStep: false, full: false };
      if (s.direction === "forward") {
        s.stepSinceMs = p.now;
        s.riskLowSinceMs = null;
        s.lastVerdict = null;
        const wasEmergency = s.emergency;
        s.emergency = null;
        p.enter("Migrated", wasEmergency
          ? `failover done in ${((p.now - wasEmergency.sinceMs) / 1000).toFixed(1)}s: the shadow is promoted (epoch ${s.epoch}) and takes all reads and writes`
          : "the shadow is promoted: it takes all reads and writes; the primary stays fenced");
      } else {
        s.stepIndex = -1;
        s.stepSinceMs = null;
        s.riskHighSinceMs = null;
        s.riskLowSinceMs = null;
        p.enter("Healthy", "the primary is restored: it takes all reads and writes; the shadow stays fenced as the replica");
      }
  }
}
