// The read mirror's share: the preflight's fraction, cut to fit the mirror's byte budget on the wire
// (policy preflight.mirrorMaxBytesPerSecond) from what the proxies report it costs, started with the
// consistency sample, and kept within the budget as traffic changes. Pure, called by reconcile().
import type { Pass } from "./reconcile.js";

/**
 * The share of reads to mirror: the preflight's, cut to fit the mirror's byte budget when it has one
 * (budget / (reads a second x bytes a mirrored read costs), from the recent window; at least 0.001 so
 * a sample still accrues). Rounded down to 3 digits, so small changes in traffic do not republish.
 */
export function mirrorShare(p: Pass): number {
  const f = p.policy.preflight.mirrorFraction, budget = p.policy.preflight.mirrorMaxBytesPerS, m = p.inputs.recent.mirror;
  if (!(budget > 0) || !m || !(m.mirroredPerS > 0) || !(m.readsPerS > 0)) return f;
  const perMirror = m.bytesPerS / m.mirroredPerS;
  return Math.min(f, Math.max(0.001, Math.floor((1000 * budget) / (m.readsPerS * perMirror)) / 1000));
}

/** Mirrors the preflight's share of reads to the shadow (within the budget); the consistency sample counts from now. */
export function startMirror(p: Pass, why = ""): void {
  p.s.stepSinceMs = p.now;
  const f = mirrorShare(p);
  p.publish(`mirror ${f} of reads to the shadow${why}${f < p.policy.preflight.mirrorFraction ? ` (cut from ${p.policy.preflight.mirrorFraction} to fit the ${p.policy.preflight.mirrorMaxBytesPerS} bytes/s budget)` : ""}`, { mirrorFraction: f });
}

/** While mirroring, keeps the share within the budget as traffic changes (a change of more than a quarter republishes: true). */
export function keepMirrorInBudget(p: Pass): boolean {
  const cur = p.s.mirrorFraction;
  if (!(cur > 0) || !(p.policy.preflight.mirrorMaxBytesPerS > 0)) return false;
  const f = mirrorShare(p), m = p.inputs.recent.mirror;
  if (!(f < cur / 1.25 || (f > cur * 1.25 && cur < p.policy.preflight.mirrorFraction))) return false;
  p.publish(`mirror ${f} of reads to the shadow: ${m ? Math.round(m.bytesPerS) : "?"} bytes/s against the budget of ${p.policy.preflight.mirrorMaxBytesPerS}`, { mirrorFraction: f });
  return true;
}
