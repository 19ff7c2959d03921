// What one mode's run of the incident benchmark reports (ModeResult), and its assembly from what the
// run counted (Tallies): the failed requests, when traffic shifted to the shadow (per simulated
// second), the p99 latency from the first sign of trouble, after a hard failure how long until reads
// were diverted and writes accepted again, moments with two writers, and false migrations.
import type { Scenario } from "../../world/demo/scenario.js";

export interface ModeResult {
  requests: number;
  failed_requests: number;
  failed_reads: number;
  failed_writes: number;
  /** p99 latency of the requests sent from the first sign of trouble to the end (null without an incident). */
  p99_ms_during_incident: number | null;
  /** When traffic first left the primary, and when all of it had (seconds into the scenario). */
  shift_started_s: number | null;
  shift_done_s: number | null;
  /** A scenario that should stay: 1 if the mode moved traffic off a healthy primary, else 0. */
  false_migrations: number;
  /** Every decision, for the report: ejections, migration events. */
  decisions: { t: number; what: string }[];
  /**
   * With a hard failure: seconds from the death to reads diverted (per proxy worker, p50 and p99; the
   * first read each worker sent to the shadow after the death) and to the first write acknowledged
   * again (null: none in the run). null without a hard failure.
   */
  after_death: { reads_diverted_p50_s: number | null; reads_diverted_p99_s: number | null; writes_accepted_s: number | null } | null;
  /** Moments both sides would have accepted a write (sampled every 100 ms); must be 0 but for reactive_unsafe. */
  two_writers_samples: number;
  /**
   * shadowmesh only: when the migration manager first left Healthy for a predictive phase (AtRisk,
   * or a later one of the same path; not the emergency Failover), seconds into the scenario; null: never.
   */
  at_risk_s?: number | null;
  /** shadowmesh only: the highest smoothed risk of the run (on a healthy run, how far from the policy's enter it stayed). */
  peak_risk?: number;
}

/** What a run counted (times in virtual monotonic ms). */
export interface Tallies {
  totals: { requests: number; failed: number; failedReads: number; failedWrites: number };
  /** Per second of the scenario (sparse): the requests sent, and how many of them went to the shadow. */
  sidesSeen: { t: number; toShadow: number; total: number }[];
  /** The latency of each request sent from the incident's start on (a timeout counts as the timeout). */
  incidentLatencies: number[];
  /** When the primary died (null: it does not). */
  deathMs: number | null;
  /** Per proxy worker, the first read sent to the shadow after the death. */
  divertedAt: Map<number, number>;
  /** The first write sent after the death that was acknowledged. */
  writeAcceptedAt: number | null;
  twoWriters: number;
}

/**
 * The mode's result: `workers` is how many proxies divert reads on their own (a worker that never
 * diverted one counts as never), `extra` what the mode adds (shadowmesh: at_risk_s, peak_risk).
 */
export function modeResult(scenario: Scenario, t: Tallies, decisions: ModeResult["decisions"], workers: number, extra: Pick<ModeResult, "at_risk_s" | "peak_risk">): ModeResult {
  const { totals, sidesSeen, incidentLatencies, deathMs, divertedAt, writeAcceptedAt, twoWriters } = t;
  // Shift: the first second any request went to the shadow, and the first second from which all did.
  let started: number | null = null, done: number | null = null;
  for (const s of sidesSeen) {
    if (!s || s.total === 0) continue;
    if (started === null && s.toShadow > 0) started = s.t;
    if (s.toShadow === s.total) { done ??= s.t; } else done = null;
  }
  const falseMigration = scenario.expect === "stay" && started !== null ? 1 : 0;
  incidentLatencies.sort((a, b) => a - b);
  const p99 = incidentLatencies.length ? incidentLatencies[Math.min(incidentLatencies.length - 1, Math.floor(incidentLatencies.length * 0.99))]! : null;
  const after = (at: number | null) => (at === null || deathMs === null ? null : Math.round((at - deathMs) / 10) / 100);
  const div = [...divertedAt.values()].map((v) => v - deathMs!).sort((a, b) => a - b);
  // A worker that never diverted a read counts as never (the quantile is then null).
  const q = (f: number) => { const i = Math.ceil(f * workers) - 1; return i < div.length ? Math.round(div[i]! / 10) / 100 : null; };
  return {
    requests: totals.requests, failed_requests: totals.failed, failed_reads: totals.failedReads, failed_writes: totals.failedWrites,
    after_death: deathMs === null ? null : { reads_diverted_p50_s: q(0.5), reads_diverted_p99_s: q(0.99), writes_accepted_s: after(writeAcceptedAt) },
    two_writers_samples: twoWriters,
    p99_ms_during_incident: p99 === null ? null : Math.round(p99 * 10) / 10,
    shift_started_s: started, shift_done_s: started === null ? null : done,
    false_migrations: falseMigration, decisions,
    ...extra,
  };
}
