// The migration state machine's data: its status, its inputs, the actions it asks the shell for,
// its events and operator commands, and a component's initial status. Types only (and one
// constructor): the logic is reconcile.ts, the emergency path emergency.ts.
import type { FeatureGap } from "../xds/features.js";
import type { Baseline, TargetSample, Verdict } from "./verify.js";
import type { Side } from "../xds/resources.js";

export const PHASES = ["Healthy", "AtRisk", "Preflight", "Shifting", "Failover", "Migrated", "Restoring", "RollingBack", "Paused"] as const;
export type Phase = (typeof PHASES)[number];
/** lease: the primary could not be fenced; the promotion waits for its last lease deadline to pass. */
/** pause: the proxies are told to hold writes (promotion.pauseWrites) and must ACK before the fence. */
export type PromotionStage = "pause" | "fence" | "drain" | "lease" | "promote" | "switch";

export interface MigrationStatus {
  component: string;
  phase: Phase;
  /** forward: primary -> shadow (Preflight, Shifting); reverse: shadow -> primary (Restoring). */
  direction: "forward" | "reverse";
  /** Index into policy.steps of the step in force; -1 before the first. */
  stepIndex: number;
  /** The published state of the routes: the shadow's share of reads, the mirror, the write target. */
  shadowWeightBp: number;
  mirrorFraction: number;
  writeTarget: Side;
  /** The side fenced against writes (the former writer after a promotion), if any. */
  fenced: Side | null;
  phaseSinceMs: number;
  /** When the current step's weight was ACKed by every proxy: bake and verification start here. */
  stepSinceMs: number | null;
  riskHighSinceMs: number | null;
  riskLowSinceMs: number | null;
  /** A publish the proxies have not all ACKed yet. */
  rollout: { id: string; purpose: string } | null;
  /** notBeforeMs: a retried promote waits until then. */
  /** stopped: the fenced writer was stopped (STONITH), so there is nothing left to drain from it. */
  promotion: { stage: PromotionStage; sinceMs: number; notBeforeMs?: number; stopped?: boolean } | null;
  /** An external action (fence, promote, unfence) started and not yet reported. */
  pendingAction: { id: string; kind: ActionKind; side: Side; sinceMs: number } | null;
  baseline: Baseline | null;
  approvals: { firstStep: boolean; full: boolean };
  /** Where Resume returns to, and why it stopped (phase === "Paused"). */
  paused: { from: Phase; reason: string } | null;
  lastVerdict: { outcome: string; summary: string; atMs: number } | null;
  /** Why the machine is waiting, when it is (changes produce an event, repeats do not). */
  blockedReason: string | null;
  message: string;
  revision: number;
  /** Published to the filter's floor: whether the shadow may serve reads the floor diverts. */
  shadowFit?: boolean;
  /** Since when the shadow has met the fitness limits without a break (null: it does not). */
  shadowFitSinceMs?: number | null;
  /** Whether the shadow has ever broken a fitness limit (from then on, fit again only after emergency.fitFor, or a passed verification). */
  shadowUnfitSeen?: boolean;
  /** When a step's verification passed on the shadow while it met those limits (null: not since its last break); ends the hold. */
  shadowVerifiedMs?: number | null;
  /** Published to the filter: while set, writes are answered 503 with this reason. */
  holdWrites?: string | null;
  /** While > 0 the writer is switched (a planned move or a failover) and the proxies hold writes up to this long (the filter's pause_writes_ms). */
  pauseWritesMs?: number;
  /** The emergency failover in progress (phase Failover), if any. */
  emergency?: { sinceMs: number; reason: string } | null;
  /** The writer's epoch: every promotion bumps it; the lease holder's lease carries it. */
  epoch?: number;
  /** The side the controller grants the writer's lease to (the promoted side after a promotion). */
  leaseHolder?: Side;
}

export type ActionKind = "fence" | "unfence" | "promote";

export type Action =
  | { kind: "publish"; id: string; shadowWeightBp: number; mirrorFraction: number; writeTarget: Side; shadowFit: boolean; holdWrites: string | null; pauseWritesMs: number }
  | { kind: ActionKind; id: string; side: Side; epoch?: number };

export interface SideSummary { requests: number; errorRate: number; latencyMs: number }
/** reporting: proxies that reported in the window; ejecting: those whose failover floor has the primary ejected. */
export interface PrimaryHealth { requests: number; failures: number; reporting: number; ejecting: number; probeFailures?: number | null }

export interface ReconcileInputs {
  /** The risk of the side currently serving (the primary until migrated); null without data. */
  risk: number | null;
  /** The primary's risk, which decides recovery while migrated; null without data. */
  primaryRisk: number | null;
  /** The shadow's own risk (its signals, scored like the primary's); null or absent without data. Preflight refuses a shadow at risk. */
  shadowRisk?: number | null;
  /** Replication lag of the replica (the side that is not the write target) behind the writer. */
  replicaLagS: number | null;
  /**
   * When that lag was measured (its source's stamp; the driver poller stamps the start of the
   * measurement). The drain after a fence trusts only a reading measured after the fence: one from
   * before it misses the writes acknowledged in between. Absent: not known, every reading counts.
   */
  replicaLagAtMs?: number | null;
  /** Each side's last minute, for baselines and the preflight health check (consistency: mirrored reads compared). */
  recent: { primary: SideSummary | null; shadow: SideSummary | null; consistency?: { compared: number; diverged: number }; mirror?: MirrorCost | null };
  /** The primary over the last policy.emergency.windowMs: its live requests and failures, and the proxies' floors. */
  health?: PrimaryHealth | null;
  /** The shadow's active health check: failed checks in a row (null: none configured). */
  shadowProbeFailures?: number | null;
  /**
   * When the writer itself last answered a lag read (its WAL position), by when the read began; null
   * or absent: no such proof. A fenced writer that answered after its fence is alive and may still be
   * shipping WAL: its lease running out does not let the emergency drain promote past it.
   */
  writerAnsweredAtMs?: number | null;
  /**
   * Proxies that would refuse pause_writes_ms (their filter did not report knowing it; at most 20
   * named, `more` the rest): while any, writes are not paused through a switch. Absent: none.
   */
  pauseBlockedBy?: FeatureGap | null;
  /** The last lease deadline (wall ms) granted to status.leaseHolder; null when none was granted. */
  leaseGrantedUntilMs?: number | null;
  /**
   * Whether the primary stops taking writes by itself once its lease runs out (default true). False
   * (e.g. PostgreSQL without a lease agent): its lease proves nothing, so a primary that cannot be
   * fenced is never promoted past; the fence is retried instead.
   */
  leaseEnforced?: boolean;
  /** Traffic since stepSinceMs (or, in Preflight, since the mirror was ACKed). */
  window: { primary: TargetSample; shadow: TargetSample; consistency: { compared: number; diverged: number } } | null;
  /** The proxies' answer to status.rollout. */
  rollout: { id: string; state: "acked" | "pending" | "nacked" | "superseded"; error?: string } | null;
  /** The result of status.pendingAction. */
  /** stopped: the action ended with the side stopped for good (a fence done by STONITH: it ships nothing more). */
  action: { id: string; state: "ok" | "failed" | "pending"; error?: string; stopped?: boolean } | null;
  commands: Command[];
}

/** What mirroring cost over the recent window: bytes on the wire (requests and answers) and mirrored reads a second, and reads a second. */
export interface MirrorCost { bytesPerS: number; mirroredPerS: number; readsPerS: number }

export type CommandKind = "pause" | "resume" | "approve" | "promote" | "rollback";
/** nextStep (promote only): advance one step, as Argo Rollouts' promote does, instead of skipping to the final step. */
export interface Command { kind: CommandKind; by: string; reason?: string; nextStep?: boolean }
export interface CommandResult { command: Command; accepted: boolean; reason: string }

export type EventKind = "phase" | "step" | "blocked" | "verification" | "rollout" | "action" | "command" | "risk";
export interface MigrationEvent { atMs: number; component: string; kind: EventKind; phase: Phase; message: string; severity: "info" | "warning" | "error" }

/** wakeAtMs: the shell should reconcile again at this time (a lease expiring) even if no tick falls there. */
export interface ReconcileResult { status: MigrationStatus; events: MigrationEvent[]; actions: Action[]; commandResults: CommandResult[]; wakeAtMs: number | null }

export function initialStatus(component: string, nowMs: number): MigrationStatus {
  return {
    component, phase: "Healthy", direction: "forward", stepIndex: -1, shadowWeightBp: 0, mirrorFraction: 0, writeTarget: "primary", fenced: null,
    phaseSinceMs: nowMs, stepSinceMs: null, riskHighSinceMs: null, riskLowSinceMs: null, rollout: null, promotion: null, pendingAction: null,
    baseline: null, approvals: { firstStep: false, full: false }, paused: null, lastVerdict: null, blockedReason: null, message: "healthy", revision: 0,
    shadowFit: false, shadowFitSinceMs: null, holdWrites: null, emergency: null, epoch: 1, leaseHolder: "primary",
  };
}
