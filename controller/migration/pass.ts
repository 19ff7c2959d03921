// One reconcile pass's working state (the policy, the status being changed, the inputs, the time) and
// the verbs the phase handlers use on it: record an event, enter a phase, block, publish routes, start
// an action, and the derived values (the target side, each step's share, the write pause in force).
// Pure: reconcile.ts creates one per call.
import type { Policy } from "./policy.js";
import { TOTAL_WEIGHT, type Side } from "../xds/resources.js";
import type { Action, ActionKind, EventKind, CommandResult, MigrationEvent, MigrationStatus, Phase, ReconcileInputs } from "./status.js";

const other = (s: Side): Side => (s === "primary" ? "shadow" : "primary");

/** Everything one reconcile pass needs, so the phase handlers stay short. */
export class Pass {
  readonly events: MigrationEvent[] = [];
  readonly actions: Action[] = [];
  readonly commandResults: CommandResult[] = [];
  private seq = 0;
  wakeAtMs: number | null = null;
  constructor(readonly policy: Policy, readonly s: MigrationStatus, readonly inputs: ReconcileInputs, readonly now: number) {}

  event(kind: EventKind, message: string, severity: MigrationEvent["severity"] = "info"): void {
    this.events.push({ atMs: this.now, component: this.s.component, kind, phase: this.s.phase, message, severity });
    this.s.message = message;
  }
  enter(phase: Phase, why: string, severity: MigrationEvent["severity"] = "info"): void {
    const from = this.s.phase;
    this.s.phase = phase;
    this.s.phaseSinceMs = this.now;
    this.s.blockedReason = null;
    // Where Resume returns to belongs to Paused alone: a rollback from a pause leaves it behind.
    if (phase !== "Paused") this.s.paused = null;
    this.event("phase", `${from} -> ${phase}: ${why}`, severity);
  }
  block(reason: string): void {
    // Counts and seconds change every pass; only a different kind of wait is news.
    const shape = (x: string | null) => x?.replace(/\d+(\.\d+)?/g, "#");
    if (shape(this.s.blockedReason) === shape(reason)) { this.s.blockedReason = reason; return; }
    this.s.blockedReason = reason;
    this.event("blocked", reason, "warning");
  }
  unblock(): void { this.s.blockedReason = null; }
  private id(kind: string): string { return `${this.s.component}/${this.s.revision}/${kind}/${this.seq++}`; }
  publish(purpose: string, change: Partial<Pick<MigrationStatus, "shadowWeightBp" | "mirrorFraction" | "writeTarget" | "shadowFit" | "holdWrites" | "pauseWritesMs">>): void {
    Object.assign(this.s, change);
    const id = this.id("publish");
    this.s.rollout = { id, purpose };
    // A later publish in the same pass replaces an earlier one: the proxies only need the last state.
    const prev = this.actions.findIndex((a) => a.kind === "publish");
    if (prev >= 0) this.actions.splice(prev, 1);
    this.actions.push({ kind: "publish", id, shadowWeightBp: this.s.shadowWeightBp, mirrorFraction: this.s.mirrorFraction, writeTarget: this.s.writeTarget, shadowFit: this.s.shadowFit ?? false, holdWrites: this.s.holdWrites ?? null, pauseWritesMs: this.s.pauseWritesMs ?? 0 });
  }
  act(kind: ActionKind, side: Side): void {
    const id = this.id(kind);
    this.s.pendingAction = { id, kind, side, sinceMs: this.now };
    const epoch = kind === "promote" ? (this.s.epoch ?? 1) + 1 : undefined;
    this.actions.push({ kind, id, side, ...(epoch !== undefined ? { epoch } : {}) });
    this.event("action", `${kind} ${side}${epoch !== undefined ? ` (epoch ${epoch})` : ""}`);
  }
  wake(atMs: number): void { this.wakeAtMs = this.wakeAtMs === null ? atMs : Math.min(this.wakeAtMs, atMs); }
  /** The risk is high enough for the policy's fast path. */
  get fast(): boolean { const f = this.policy.fastPath, r = this.inputs.risk; return f !== null && r !== null && r >= f.risk; }
  /** The target side's share of reads at step i of the current direction. */
  targetShareBp(i: number): number { return i < 0 ? 0 : this.policy.steps[i]!.weightBp; }
  shadowBpForStep(i: number): number { return this.s.direction === "forward" ? this.targetShareBp(i) : TOTAL_WEIGHT - this.targetShareBp(i); }
  get target(): Side { return this.s.direction === "forward" ? "shadow" : "primary"; }
  get source(): Side { return other(this.target); }
  get lastStep(): number { return this.policy.steps.length - 1; }
  /**
   * How long writes wait in the proxies through a switch of the writer (promotion.pauseWrites), or 0
   * with the reason (`without`) when a proxy would refuse pause_writes_ms: a filter older than the
   * setting NACKs the whole configuration and keeps its old routes, so the switch goes on without it.
   */
  writePause(): { ms: number; without: string | null } {
    const ms = this.policy.promotion.pauseWritesMs, gap = this.inputs.pauseBlockedBy;
    if (ms === 0 || !gap || gap.lacking.length === 0) return { ms, without: null };
    const n = gap.lacking.length + gap.more;
    const named = gap.lacking.slice(0, 5).join(", ") + (n > 5 ? `, and ${n - 5} more` : "");
    return { ms: 0, without: `writes are not paused through the switch: ${n} prox${n === 1 ? "y" : "ies"} (${named}) run${n === 1 ? "s" : ""} a filter that did not report knowing pause_writes_ms (an older one refuses it); roll out the new filter` };
  }
}

