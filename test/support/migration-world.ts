// A simulated component for the pure migration reconciler: risk, lag, per-side error rates and
// latencies are knobs; publishes are ACKed (or NACKed) as told; fence/promote act on a model of
// which side accepts writes, so a test can assert that two writers never exist. Deterministic.
import type { FeatureGap } from "../../controller/xds/features.js";
import { reconcile, initialStatus, type Action, type Command, type MigrationEvent, type MigrationStatus, type PrimaryHealth, type ReconcileInputs } from "../../controller/migration/reconcile.js";
import { DEFAULT_POLICY, type Policy } from "../../controller/migration/policy.js";
import type { InputSource, Observed } from "../../controller/migration/manager.js";
import { LatencySketch } from "../../controller/telemetry/sketch.js";

export interface Knobs {
  risk: number | null;
  primaryRisk: number | null;
  /** The shadow's own risk (absent: no data). */
  shadowRisk?: number | null;
  lagS: number | null;
  shadowErrorRate: number;
  primaryErrorRate: number;
  shadowLatencyMs: number;
  primaryLatencyMs: number;
  /** Requests per second each side would serve at 100%. */
  rps: number;
  divergence: number;
  ack: "acked" | "pending" | "nacked";
  nackError: string;
  actionResult: "ok" | "failed" | "pending";
  /** Whether the replica catches up (lag 0) once the writer is fenced, as log shipping does. */
  drainsWhenFenced: boolean;
  /** The primary's health over the emergency window (floor ejections, failed requests); null: no data. */
  health: PrimaryHealth | null;
  /** Whether actions reach the primary (false: dead, paused or partitioned: a fence fails). */
  primaryReachable: boolean;
  /** When the lag reading was measured, given the time now (absent: not stamped). */
  lagMeasuredAt?: (now: number) => number;
  /** When the writer itself last answered a lag read, given the time now (absent: no such proof). */
  writerAnsweredAt?: (now: number) => number | null;
  /** Proxies that would refuse pause_writes_ms (an older filter); absent: none. */
  pauseBlockedBy?: FeatureGap;
  /** Whether a fence the primary cannot answer stops it for good (a lease agent's STONITH): the action reports stopped. */
  stonith?: boolean;
  /** Bytes a mirrored read costs on the wire (0: the proxies report no mirror cost). */
  mirrorBytes?: number;
}

/** The default policy on a test's time scale (10 s bakes, 5 s to enter, 20 s to leave, 30 s of verification wait), then `over`. */
export function testPolicy(over: (p: Policy) => void = () => {}): Policy {
  const p = structuredClone(DEFAULT_POLICY);
  p.steps = p.steps.map((s) => ({ ...s, bakeMs: 10_000 }));
  p.risk.enterForMs = 5_000;
  p.risk.leaveForMs = 20_000;
  p.verification.maxWaitMs = 30_000;
  over(p);
  return p;
}

export function sample(requests: number, errorRate: number, latencyMs: number) {
  const latency = new LatencySketch();
  const n = Math.round(requests);
  for (let i = 0; i < n; i++) latency.add(latencyMs * 1000 * (0.8 + 0.4 * ((i * 7919) % 101) / 100));
  return { requests: n, errors: Math.round(n * errorRate), latency };
}


/** What a component with these knobs shows the reconciler (shared by the world and FakeInputSource). */
export function observe(k: Knobs, s: MigrationStatus, now: number, writable: { primary: boolean; shadow: boolean }, writesTo: "primary" | "shadow"): Observed {
  const since = s.stepSinceMs ?? now;
  const secs = Math.max(0, (now - since) / 1000);
  const shadowShare = s.shadowWeightBp / 10_000;
  const compared = Math.round(secs * k.rps * (1 - shadowShare) * s.mirrorFraction);
  return {
    risk: k.risk, primaryRisk: k.primaryRisk, shadowRisk: k.shadowRisk ?? null, replicaLagS: k.drainsWhenFenced && !writable[writesTo] ? 0 : k.lagS, health: k.health,
    ...(k.pauseBlockedBy ? { pauseBlockedBy: k.pauseBlockedBy } : {}),
    ...(k.lagMeasuredAt ? { replicaLagAtMs: k.lagMeasuredAt(now) } : {}),
    ...(k.writerAnsweredAt ? { writerAnsweredAtMs: k.writerAnsweredAt(now) } : {}),
    recent: {
      primary: { requests: 60 * k.rps, errorRate: k.primaryErrorRate, latencyMs: k.primaryLatencyMs },
      shadow: shadowShare > 0 || s.mirrorFraction > 0 ? { requests: 60 * k.rps * Math.max(shadowShare, s.mirrorFraction), errorRate: k.shadowErrorRate, latencyMs: k.shadowLatencyMs } : null,
      ...(k.mirrorBytes ? { mirror: { bytesPerS: k.rps * (1 - shadowShare) * s.mirrorFraction * k.mirrorBytes, mirroredPerS: k.rps * (1 - shadowShare) * s.mirrorFraction, readsPerS: k.rps } } : {}),
    },
    window: {
      primary: sample(secs * k.rps * (1 - shadowShare), k.primaryErrorRate, k.primaryLatencyMs),
      shadow: sample(secs * k.rps * shadowShare, k.shadowErrorRate, k.shadowLatencyMs),
      consistency: { compared, diverged: Math.round(compared * k.divergence) },
    },
  };
}

export const DEFAULT_KNOBS: Knobs = {
  risk: 0.1, primaryRisk: 0.1, lagS: 0.2, shadowErrorRate: 0.001, primaryErrorRate: 0.001, shadowLatencyMs: 10, primaryLatencyMs: 10,
  rps: 2000, divergence: 0, ack: "acked", nackError: "", actionResult: "ok", drainsWhenFenced: true,
  health: null, primaryReachable: true,
};

/** Health as the proxies would report a dead primary: every floor ejected it, every request failed. */
export const PRIMARY_DEAD: PrimaryHealth = { requests: 400, failures: 400, reporting: 4, ejecting: 4 };
/** Health as the proxies report a healthy primary. */
export const PRIMARY_OK: PrimaryHealth = { requests: 400, failures: 0, reporting: 4, ejecting: 0 };

/** The manager's InputSource over the same knobs; the write model follows the fake actions' calls. */
export class FakeInputSource implements InputSource {
  knobs: Knobs = { ...DEFAULT_KNOBS };
  writable = { primary: true, shadow: false };
  writesTo: "primary" | "shadow" = "primary";
  gather(_component: string, status: MigrationStatus, nowMs: number): Observed {
    this.writesTo = status.writeTarget;
    return observe(this.knobs, status, nowMs, this.writable, this.writesTo);
  }
}

export class MigrationWorld {
  now = 0;
  status: MigrationStatus;
  readonly events: MigrationEvent[] = [];
  readonly actions: Action[] = [];
  readonly phases: string[] = [];
  /** Which sides accept writes: starts with the primary only. */
  readonly writable = { primary: true, shadow: false };
  writesTo: "primary" | "shadow" = "primary";
  maxWriters = 1;
  /** The writer's lease as the controller grants it (absolute deadline), renewed every tick while it holds it. */
  leaseMs = 0;
  leaseUntil = new Map<"primary" | "shadow", number>();
  /** Whether the primary stops writing when its lease runs out (false: PostgreSQL without a lease agent). */
  leaseEnforced = true;
  /** The last deadline the primary itself saw (a partitioned primary sees no later grant). */
  primaryLeaseSeen = 0;
  private lastAck: ReconcileInputs["rollout"] = null;
  private lastAction: ReconcileInputs["action"] = null;
  knobs: Knobs = { ...DEFAULT_KNOBS };

  constructor(readonly policy: Policy, readonly tickMs = 1000, status?: MigrationStatus) {
    this.status = status ?? initialStatus("orders", 0);
    this.phases.push(this.status.phase);
  }

  private inputs(commands: Command[]): ReconcileInputs {
    return { ...observe(this.knobs, this.status, this.now, this.writable, this.writesTo), rollout: this.lastAck, action: this.lastAction, commands, leaseGrantedUntilMs: this.leaseUntil.get("primary") ?? null, leaseEnforced: this.leaseEnforced };
  }

  /** With a lease, a side takes writes only while its lease runs; a cut-off primary's runs out on its own. */
  private writableNow(side: "primary" | "shadow"): boolean {
    if (!this.writable[side]) return false;
    if (this.leaseMs <= 0 || (side === "primary" && !this.leaseEnforced)) return true;
    return this.now < (side === "primary" ? this.primaryLeaseSeen : (this.leaseUntil.get(side) ?? 0));
  }

  private grantLease(): void {
    if (this.leaseMs <= 0) return;
    const holder = this.status.leaseHolder ?? "primary";
    if (this.status.emergency && holder === "primary") return; // as the manager: no more grants to a primary that is down
    const until = this.now + this.leaseMs;
    this.leaseUntil.set(holder, until);
    if (holder === "primary" && this.knobs.primaryReachable) this.primaryLeaseSeen = until;
  }

  tick(commands: Command[] = []) {
    this.now += this.tickMs;
    this.grantLease();
    const r = reconcile(this.policy, this.status, this.inputs(commands), this.now);
    this.status = r.status;
    this.events.push(...r.events);
    for (const a of r.actions) {
      this.actions.push(a);
      if (a.kind === "publish") {
        this.lastAck = { id: a.id, state: this.knobs.ack, ...(this.knobs.ack === "nacked" ? { error: this.knobs.nackError } : {}) };
        if (this.knobs.ack === "acked") this.writesTo = a.writeTarget;
      } else {
        const reaches = a.side !== "primary" || this.knobs.primaryReachable;
        if (!reaches && a.kind === "fence" && this.knobs.stonith && this.status.emergency) {
          this.lastAction = { id: a.id, state: "ok", stopped: true };
          this.writable.primary = false;
          continue;
        }
        this.lastAction = { id: a.id, state: reaches ? this.knobs.actionResult : "failed", ...(reaches ? {} : { error: "connection refused" }) };
        if (reaches && this.knobs.actionResult === "ok") {
          if (a.kind === "fence") this.writable[a.side] = false;
          if (a.kind === "unfence") this.writable[a.side] = true;
          if (a.kind === "promote") this.writable[a.side] = true;
        }
      }
    }
    this.maxWriters = Math.max(this.maxWriters, Number(this.writableNow("primary")) + Number(this.writableNow("shadow")));
    if (this.status.phase !== this.phases[this.phases.length - 1]) this.phases.push(this.status.phase);
    return r;
  }

  /** Re-answers the outstanding publish with the current knob (after changing `ack`). */
  reanswer() { if (this.status.rollout) this.lastAck = { id: this.status.rollout.id, state: this.knobs.ack, ...(this.knobs.ack === "nacked" ? { error: this.knobs.nackError } : {}) }; }

  run(seconds: number, until?: (w: MigrationWorld) => boolean) {
    const end = this.now + seconds * 1000;
    while (this.now < end) { this.tick(); if (until?.(this)) return true; }
    return false;
  }

  /** Publishes that move traffic: those that only tell the floor the shadow's fitness are left out. */
  routePublishes(): Extract<Action, { kind: "publish" }>[] {
    let prev: Extract<Action, { kind: "publish" }> | null = null;
    const out: Extract<Action, { kind: "publish" }>[] = [];
    for (const a of this.actions) {
      if (a.kind !== "publish") continue;
      const same = prev !== null && prev.shadowWeightBp === a.shadowWeightBp && prev.mirrorFraction === a.mirrorFraction && prev.writeTarget === a.writeTarget && prev.holdWrites === a.holdWrites;
      const fitOnly = a.shadowFit !== (prev?.shadowFit ?? false) && (same || (prev === null && a.shadowWeightBp === 0 && a.mirrorFraction === 0 && a.writeTarget === "primary" && a.holdWrites === null));
      if (!fitOnly) out.push(a);
      prev = a;
    }
    return out;
  }

  publishedWeights(): number[] { return this.routePublishes().map((a) => a.shadowWeightBp); }
}
