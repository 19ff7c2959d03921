// The migration shell: runs reconcile() for every component on each tick and for each operator
// command, persists the returned status and events *before* carrying out its actions (publishing
// routes through the TrafficRouter, running fence/promote actions), and feeds the outcomes (ACK, NACK,
// action results) back on the next pass. On start it resumes each stored migration where it was: it
// re-publishes the persisted routes (the same weights, nothing advanced) and waits for their ACK.
// Leases: with policy.promotion.lease set, the shell grants the lease holder (the writer) an absolute
// deadline every third of the lease, and stops granting the primary's once a failover has started, so
// its lease runs out; the last deadline granted is an input of the next pass. While the primary is at
// risk (AtRisk, Preflight, Shifting) the grants are promotion.leaseAtRisk long, so a predicted death
// costs less write downtime. A grant counts from the moment it is sent, unless the runner proves it
// never arrived (ActionNotDelivered: the connection was refused); a timeout still counts. After a
// restart every side is assumed to hold a lease granted just before it (the previous process may have).
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { wallMs, type Clock } from "../../host/clock.js";
import type { Routes, TrafficRouter } from "../xds/router.js";
import { parsePolicy, type Policy } from "./policy.js";
import { TOTAL_WEIGHT, type Side } from "../xds/resources.js";
import { initialStatus, reconcile, type Action, type ActionKind, type Command, type CommandResult, type EventKind, type MigrationEvent, type MigrationStatus, type ReconcileInputs } from "./reconcile.js";
import type { StateStore, StoredState } from "./store.js";
import type { LagProbe } from "./inputs.js";

/** What the reconciler observes about a component (the metric-source seam). */
export type Observed = Omit<ReconcileInputs, "rollout" | "action" | "commands" | "leaseGrantedUntilMs" | "leaseEnforced">;
/** policy: for windows the policy sets (the emergency path's evidence window). */
export interface InputSource { gather(component: string, status: MigrationStatus, nowMs: number, policy?: Policy): Observed }

/** An action that provably never reached its target (the connection was refused): it had no effect. */
export class ActionNotDelivered extends Error {}

/**
 * What an action carries: for a lease grant or a promotion, the writer's epoch and the lease's
 * absolute deadline (wall ms); for the fence of a primary that is down (an emergency), stop: a side
 * that does not answer may be stopped for good (STONITH) by a driver that can prove it.
 */
export interface LeaseDetail {
  epoch?: number; expiresAtMs?: number; stop?: boolean;
  /** HA: the deciding controller's term (its etcd fencing token); a target that saw a higher one refuses. */
  term?: number;
}
/** What an action reports back: stopped, the side was stopped for good (it ships and writes nothing more). */
export interface ActionOutcome { stopped?: boolean }
/** Runs a component's fence / unfence / promote / lease action (the webhook or command in its config). */
export interface ActionRunner {
  run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void | ActionOutcome>;
  /** Whether the side stops taking writes when its lease runs out (default: it does). */
  leaseEnforced?(component: string, side: Side): boolean;
}

export interface ManagerOptions {
  clock: Clock;
  router: TrafficRouter;
  store: StateStore;
  inputs: InputSource;
  actions: ActionRunner;
  policies: Map<string, Policy>;
  log: Logger;
  /** How long one verify() call waits for ACKs before it is asked again. */
  verifyTimeoutMs?: number;
  /**
   * Read at once when a write move's drain begins (its fence done): the drain counts only a lag
   * measured after the fence, and without this waits for the next scheduled poll or scrape.
   */
  lag?: LagProbe;
}

interface Tracked {
  policy: Policy;
  status: MigrationStatus;
  rollout: ReconcileInputs["rollout"];
  action: ReconcileInputs["action"];
  observed: Observed | null;
  /** The lease grants sent: the last deadline per side, and when and to whom the last one went. */
  lease: { grantedUntil: Map<Side, number>; sentAtMs: number; key: string };
  wakeTimer: { atMs: number } | null;
  /** The last save still in flight (a store that writes over the network): what follows it waits. */
  committing: Promise<void> | null;
}

export class UnknownComponent extends Error {}

/** The routes a status describes (what the proxies are given for it). */
export function routesOf(s: MigrationStatus): Routes {
  return {
    weights: { primary: TOTAL_WEIGHT - s.shadowWeightBp, shadow: s.shadowWeightBp }, mirrorFraction: s.mirrorFraction, writeTarget: s.writeTarget,
    shadowFit: s.shadowFit ?? false, holdWrites: s.holdWrites ?? null, pauseWritesMs: s.pauseWritesMs ?? 0,
  };
}

/** How often a restarted controller asks whether a proxy confirmed its stored routes yet. */
const RESYNC_RECHECK_MS = 500;

export class MigrationManager extends EventEmitter {
  private readonly comps = new Map<string, Tracked>();
  private readonly recent: MigrationEvent[] = [];
  counters = { publishes: 0, nacks: 0, actions: 0, actionFailures: 0 };
  private stoppedReason: string | null = null;
  private following = false;

  constructor(private readonly o: ManagerOptions) { super(); }

  private now(): number { return wallMs(this.o.clock); }

  /**
   * Loads the stored state and resumes: persisted routes are re-published as they were. Also after
   * stop() or follow() (a replica elected leader): everything is read again from the store.
   */
  start(): void {
    this.stoppedReason = null;
    this.following = false;
    this.comps.clear();
    this.recent.length = 0;
    const stored = this.o.store.load();
    this.recent.push(...stored.events);
    for (const [name, filePolicy] of this.o.policies) {
      const override = stored.policies.get(name);
      const policy = override !== undefined ? parsePolicy(override, `stored policy of ${name}`).components.get(name) ?? filePolicy : filePolicy;
      const prev = stored.statuses.get(name);
      const now = this.now();
      // Conservative after a restart: a lease the previous process granted may still run.
      const t = this.track(name, policy, prev ?? initialStatus(name, now), prev ? (["primary", "shadow"] as Side[]).map((x) => [x, now + policy.promotion.leaseMs]) : []);
      this.renewLease(t);
      if (!prev) { this.durable(t, this.o.store.save(t.status, []), () => {}); continue; }
      const resync = structuredClone(prev);
      resync.revision++;
      // An action re-run now is timed from now: timed from before the crash, a restart slower than
      // the action timeout would give up on an action that went through (and undo a promotion).
      if (resync.pendingAction) resync.pendingAction = { ...resync.pendingAction, sinceMs: this.now() };
      resync.rollout = { id: `${name}/${resync.revision}/resync`, purpose: `re-publish the stored routes after a restart (shadow ${resync.shadowWeightBp / 100}%, writes to ${resync.writeTarget})` };
      const ev: MigrationEvent = { atMs: this.now(), component: name, kind: "rollout", phase: resync.phase, message: `controller restarted: resuming ${resync.phase}${resync.stepIndex >= 0 ? ` at step ${resync.stepIndex + 1}` : ""}`, severity: "info" };
      const saved = this.o.store.save(resync, [ev]);
      t.status = resync;
      this.durable(t, saved, () => {
        this.publish(t, resync.rollout!.id);
        if (resync.pendingAction) {
          const pa = resync.pendingAction;
          this.runAction(t, { kind: pa.kind, id: pa.id, side: pa.side, ...(pa.kind === "promote" ? { epoch: (resync.epoch ?? 1) + 1 } : {}) });
        }
        this.emitEvents([ev]);
      });
    }
  }

  tick(): void {
    if (this.stoppedReason) return;
    for (const t of this.comps.values()) { this.pass(t, []); this.renewLease(t); }
  }

  command(component: string, cmd: Command): CommandResult {
    const t = this.tracked(component);
    if (this.stoppedReason) return { command: cmd, accepted: false, reason: `this controller no longer decides: ${this.stoppedReason}` };
    return this.pass(t, [cmd])[0]!;
  }

  /** A follower replica's manager (follow()): it shows the leader's statuses and decides nothing. */
  get isFollowing(): boolean { return this.following && this.stoppedReason !== null; }
  /** Why this manager stopped deciding (a save was refused: another replica leads), or null. */
  get stopped(): string | null { return this.stoppedReason; }

  /**
   * Durable first, also for a store that writes over the network: what the status describes (routes,
   * actions, events to listeners) is carried out only once its save is durable, in the order of the
   * saves. A refused or failed save stops this manager for good (stoppedReason, event "stopped"):
   * another replica leads, or the store cannot be trusted; nothing after it is carried out.
   */
  private durable(t: Tracked, saved: void | Promise<void>, then: () => void): void {
    if (!(saved instanceof Promise) && !t.committing) { if (!this.stoppedReason) then(); return; }
    // Handled in the chain below; marked handled now, as it may reject before the saves ahead of it end.
    if (saved instanceof Promise) saved.catch(() => undefined);
    const prev = t.committing ?? Promise.resolve();
    const mine: Promise<void> = prev.then(() => saved).then(
      () => { if (!this.stoppedReason) then(); },
      (e: Error) => this.stop(`a save was refused: ${e.message}`),
    ).finally(() => { if (t.committing === mine) t.committing = null; });
    t.committing = mine;
  }

  /**
   * A follower replica (ha/replica.ts): shows the statuses and events the leader stored, decides
   * nothing (every command is refused with `reason`), until start() makes it decide.
   */
  follow(stored: StoredState, reason: string): void {
    this.stoppedReason = reason;
    this.following = true;
    this.comps.clear();
    this.recent.length = 0;
    this.recent.push(...stored.events);
    const now = this.now();
    for (const [name, policy] of this.o.policies) {
      const status = stored.statuses.get(name) ?? initialStatus(name, now);
      this.track(name, policy, status, []);
    }
  }
  /** A component's tracking from its status, with the lease deadlines assumed granted. */
  private track(name: string, policy: Policy, status: MigrationStatus, grantedUntil: [Side, number][]): Tracked {
    const t: Tracked = { policy, status, rollout: null, action: null, observed: null, wakeTimer: null, committing: null, lease: { grantedUntil: new Map(grantedUntil), sentAtMs: -Infinity, key: "" } };
    this.comps.set(name, t);
    return t;
  }

  /** A follower: why it does not decide (who leads now), as commands are told. */
  followReason(reason: string): void { if (this.following) this.stoppedReason = reason; }
  /** A follower: the leader stored this status (or event); shown, never acted on. */
  followed(status: MigrationStatus): void {
    const t = this.comps.get(status.component);
    if (!t || !this.stoppedReason) return;
    t.status = structuredClone(status);
    this.emit("status", structuredClone(status));
  }
  followedEvent(e: MigrationEvent): void {
    if (!this.stoppedReason || !this.comps.has(e.component)) return;
    this.recent.push(e);
    if (this.recent.length > 5000) this.recent.splice(0, this.recent.length - 5000);
    this.emit("event", e);
  }

  /** Stops deciding (no more passes, publishes or actions); what was durable stays. */
  stop(reason: string): void {
    if (this.stoppedReason) return;
    this.stoppedReason = reason;
    for (const t of this.comps.values()) t.wakeTimer = null;
    this.o.log.warn({ reason }, "migration manager stopped deciding");
    this.emit("stopped", reason);
  }

  /** Replaces a component's policy; with its YAML, the policy is stored and survives a restart. */
  setPolicy(component: string, policy: Policy, yaml?: string): void {
    const t = this.tracked(component);
    if (this.stoppedReason) throw new Error(`this controller no longer decides: ${this.stoppedReason}`);
    if (yaml !== undefined) this.durable(t, this.o.store.savePolicy(component, yaml), () => {});
    t.policy = policy;
    const ev: MigrationEvent = { atMs: this.now(), component, kind: "command", phase: t.status.phase, message: "policy replaced", severity: "info" };
    this.durable(t, this.o.store.save(t.status, [ev]), () => this.emitEvents([ev]));
  }

  get(component: string): { status: MigrationStatus; policy: Policy; observed: Observed | null } {
    const t = this.tracked(component);
    return { status: structuredClone(t.status), policy: t.policy, observed: t.observed };
  }
  /**
   * Records an event about a component decided outside the reconciler (a driver's follow-up such as a
   * rejoin): durable like the reconciler's, and published to the same listeners.
   */
  note(component: string, kind: EventKind, message: string, severity: MigrationEvent["severity"] = "info"): void {
    const t = this.tracked(component);
    const e: MigrationEvent = { atMs: this.now(), component, kind, phase: t.status.phase, message, severity };
    if (this.stoppedReason) return;
    this.durable(t, this.o.store.save(t.status, [e]), () => this.emitEvents([e]));
  }
  /** A component's phase, without copying its status (for per-tick checks over many components). */
  phaseOf(component: string): MigrationStatus["phase"] { return this.tracked(component).status.phase; }
  components(): string[] { return [...this.comps.keys()]; }
  events(component?: string, limit = 50): MigrationEvent[] {
    const list = component ? this.recent.filter((e) => e.component === component) : this.recent;
    return list.slice(-limit);
  }

  private tracked(component: string): Tracked {
    const t = this.comps.get(component);
    if (!t) throw new UnknownComponent(`unknown component ${JSON.stringify(component)} (known: ${[...this.comps.keys()].join(", ") || "none"})`);
    return t;
  }

  private pass(t: Tracked, commands: Command[]): CommandResult[] {
    const now = this.now();
    t.observed = this.o.inputs.gather(t.status.component, t.status, now, t.policy);
    const inputs: ReconcileInputs = { ...t.observed, rollout: t.rollout, action: t.action, commands, leaseGrantedUntilMs: t.lease.grantedUntil.get("primary") ?? null, leaseEnforced: this.o.actions.leaseEnforced?.(t.status.component, "primary") ?? true };
    const r = reconcile(t.policy, t.status, inputs, now);
    const drainBegan = r.status.promotion?.stage === "drain" && t.status.promotion?.stage !== "drain";
    // Durable first: the status describing a traffic change is on disk before the change is made.
    const saved = this.o.store.save(r.status, r.events);
    t.status = r.status;
    this.durable(t, saved, () => {
      this.emitEvents(r.events);
      for (const a of r.actions) this.apply(t, a);
      if (r.events.length || r.actions.length) this.emit("status", structuredClone(r.status));
      if (drainBegan) this.measureLag(t, r.status.promotion!.sinceMs);
    });
    if (r.wakeAtMs !== null && (!t.wakeTimer || t.wakeTimer.atMs > r.wakeAtMs)) {
      const w = { atMs: r.wakeAtMs };
      t.wakeTimer = w;
      this.o.clock.setTimer(Math.max(0, r.wakeAtMs - now), () => { if (t.wakeTimer === w && !this.stoppedReason) { t.wakeTimer = null; this.pass(t, []); } });
    }
    return r.commandResults;
  }

  /** The drain that began at `sinceMs` has a lag reading begun after its fence as soon as one can be taken, and is reconciled on it. */
  private measureLag(t: Tracked, sinceMs: number): void {
    if (!this.o.lag) return;
    const component = t.status.component;
    this.o.lag.measureLag(component).then((fed) => {
      const pr = t.status.promotion;
      if (fed > 0 && this.comps.get(component) === t && pr?.stage === "drain" && pr.sinceMs === sinceMs && !this.stoppedReason) this.pass(t, []);
    }, (e: Error) => this.o.log.warn({ component }, `replication lag read after the fence failed: ${e.message}`));
  }

  /** During a failover every moment counts: an ACK or an action result is acted on at once, not at the next tick. */
  private urgent(t: Tracked): void {
    if (t.status.phase === "Failover") queueMicrotask(() => { if (t.status.phase === "Failover" && !this.stoppedReason) this.pass(t, []); });
  }

  /** Grants the lease holder a fresh deadline every third of the lease (the primary's stops once a failover started). */
  private renewLease(t: Tracked): void {
    const pr = t.policy.promotion;
    if (pr.leaseMs <= 0 || this.stoppedReason) return;
    const s = t.status, holder = s.leaseHolder ?? s.writeTarget, epoch = s.epoch ?? 1;
    if (s.emergency && holder === "primary") return;
    const atRisk = holder === "primary" && pr.leaseAtRiskMs > 0 && ["AtRisk", "Preflight", "Shifting"].includes(s.phase);
    const ms = atRisk ? pr.leaseAtRiskMs : pr.leaseMs;
    const now = this.now(), key = `${holder}/${epoch}/${ms}`;
    if (t.lease.key === key && now - t.lease.sentAtMs < ms / 3) return;
    t.lease.key = key;
    t.lease.sentAtMs = now;
    const until = now + ms;
    // Recorded when sent, not when answered: the deadline is absolute, so a late delivery cannot extend it.
    const before = t.lease.grantedUntil.get(holder);
    t.lease.grantedUntil.set(holder, Math.max(before ?? 0, until));
    this.o.actions.run(s.component, "lease", holder, { epoch, expiresAtMs: until }).catch((e: Error) => {
      // Refused before it was sent: the holder never saw this deadline (unless a later grant raised it).
      if (e instanceof ActionNotDelivered && t.lease.grantedUntil.get(holder) === until) {
        if (before === undefined) t.lease.grantedUntil.delete(holder); else t.lease.grantedUntil.set(holder, before);
      }
      this.o.log.warn({ component: s.component, side: holder }, `lease grant failed: ${e.message}`);
    });
  }

  private emitEvents(events: MigrationEvent[]): void {
    for (const e of events) {
      this.recent.push(e);
      this.o.log.info({ component: e.component, phase: e.phase, kind: e.kind }, e.message);
      this.emit("event", e);
    }
    if (this.recent.length > 5000) this.recent.splice(0, this.recent.length - 5000);
  }

  private apply(t: Tracked, a: Action): void {
    if (a.kind === "publish") this.publish(t, a.id);
    else this.runAction(t, a);
  }

  private publish(t: Tracked, id: string): void {
    const s = t.status;
    let version: string;
    t.rollout = { id, state: "pending" };
    this.counters.publishes++;
    try {
      version = this.o.router.setRoutes(s.component, routesOf(s));
    } catch (e) {
      // The controller refused its own routes: report it as a NACK so the migration pauses with the reason.
      this.counters.nacks++;
      t.rollout = { id, state: "nacked", error: `the controller could not publish: ${(e as Error).message}` };
      return;
    }
    const ask = (): void => {
      this.o.router.verify(version, this.o.verifyTimeoutMs ?? 10_000).then((v) => {
        if (t.rollout?.id !== id) return;
        // After a restart no proxy may have reconnected yet, and "every proxy ACKed" would be true of
        // none: the stored routes count as applied only once a proxy confirms them, so nothing
        // advances (and no proxy skips a step) before one is back.
        if (v.ok && v.acked.length === 0 && id.endsWith("/resync")) { this.o.clock.setTimer(RESYNC_RECHECK_MS, ask); return; }
        if (v.ok) { t.rollout = { id, state: "acked" }; this.urgent(t); }
        else if (v.nacked.length) {
          this.counters.nacks++;
          t.rollout = { id, state: "nacked", error: v.nacked.map((n) => `${n.node} (${n.type}): ${n.error}`).join("; ") };
        } else if (v.superseded) t.rollout = { id, state: "superseded" };
        else ask(); // still pending: ask again (a proxy that never answers keeps the step where it is)
      }, (e: Error) => { if (t.rollout?.id === id) t.rollout = { id, state: "nacked", error: `verify failed: ${e.message}` }; });
    };
    ask();
  }

  private runAction(t: Tracked, a: { kind: ActionKind; id: string; side: Side; epoch?: number }): void {
    t.action = { id: a.id, state: "pending" };
    this.counters.actions++;
    // A promotion carries the new leader's first lease, so it takes writes the moment it leads.
    let detail: LeaseDetail | undefined;
    if (a.kind === "fence" && t.status.emergency && a.side === "primary") detail = { stop: true };
    if (a.epoch !== undefined) {
      detail = { epoch: a.epoch };
      const ms = t.policy.promotion.leaseMs;
      if (ms > 0) {
        detail.expiresAtMs = this.now() + ms;
        t.lease.grantedUntil.set(a.side, Math.max(t.lease.grantedUntil.get(a.side) ?? 0, detail.expiresAtMs));
      }
    }
    this.o.actions.run(t.status.component, a.kind, a.side, detail).then(
      (out) => {
        if (t.action?.id !== a.id) return;
        t.action = { id: a.id, state: "ok", ...(out?.stopped ? { stopped: true } : {}) };
        // The promoted side holds the lease the promote carried; renewals follow from the next tick.
        if (a.kind === "promote") { t.lease.key = `${a.side}/${a.epoch ?? 0}/${t.policy.promotion.leaseMs}`; t.lease.sentAtMs = this.now(); }
        this.urgent(t);
      },
      (e: Error) => { this.counters.actionFailures++; if (t.action?.id === a.id) { t.action = { id: a.id, state: "failed", error: e.message }; this.urgent(t); } },
    );
  }

}
