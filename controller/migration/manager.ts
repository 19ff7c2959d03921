// The migration shell: runs reconcile() for every component on each tick and for each operator
// command, persists the returned status and events *before* carrying out its actions (publishing
// routes through the TrafficRouter, running fence/promote actions), and feeds the outcomes (ACK, NACK,
// action results) back on the next pass. On start it resumes each stored migration where it was: it
// re-publishes the persisted routes (the same weights, nothing advanced) and waits for their ACK.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { wallMs, type Clock } from "../../host/clock.js";
import type { TrafficRouter } from "../xds/router.js";
import { parsePolicy, type Policy } from "./policy.js";
import { initialStatus, reconcile, TOTAL_BP, type Action, type ActionKind, type Command, type CommandResult, type MigrationEvent, type MigrationStatus, type ReconcileInputs, type Side } from "./reconcile.js";
import type { StateStore } from "./store.js";

/** What the reconciler observes about a component (the metric-source seam). */
export type Observed = Omit<ReconcileInputs, "rollout" | "action" | "commands">;
export interface InputSource { gather(component: string, status: MigrationStatus, nowMs: number): Observed }

/** Runs a component's fence / unfence / promote action (the webhook or command in its config). */
export interface ActionRunner { run(component: string, kind: ActionKind, side: Side): Promise<void> }

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
}

interface Tracked {
  policy: Policy;
  status: MigrationStatus;
  rollout: ReconcileInputs["rollout"];
  action: ReconcileInputs["action"];
  observed: Observed | null;
}

export class UnknownComponent extends Error {}

export class MigrationManager extends EventEmitter {
  private readonly comps = new Map<string, Tracked>();
  private readonly recent: MigrationEvent[] = [];
  counters = { publishes: 0, nacks: 0, actions: 0, actionFailures: 0 };

  constructor(private readonly o: ManagerOptions) { super(); }

  private now(): number { return wallMs(this.o.clock); }

  /** Loads the stored state and resumes: persisted routes are re-published as they were. */
  start(): void {
    const stored = this.o.store.load();
    this.recent.push(...stored.events);
    for (const [name, filePolicy] of this.o.policies) {
      const override = stored.policies.get(name);
      const policy = override !== undefined ? parsePolicy(override, `stored policy of ${name}`).components.get(name) ?? filePolicy : filePolicy;
      const prev = stored.statuses.get(name);
      const t: Tracked = { policy, status: prev ?? initialStatus(name, this.now()), rollout: null, action: null, observed: null };
      this.comps.set(name, t);
      if (!prev) { this.o.store.save(t.status, []); continue; }
      const resync = structuredClone(prev);
      resync.revision++;
      resync.rollout = { id: `${name}/${resync.revision}/resync`, purpose: `re-publish the stored routes after a restart (shadow ${resync.shadowWeightBp / 100}%, writes to ${resync.writeTarget})` };
      const ev: MigrationEvent = { atMs: this.now(), component: name, kind: "rollout", phase: resync.phase, message: `controller restarted: resuming ${resync.phase}${resync.stepIndex >= 0 ? ` at step ${resync.stepIndex + 1}` : ""}`, severity: "info" };
      this.o.store.save(resync, [ev]);
      t.status = resync;
      this.publish(t, resync.rollout.id);
      if (resync.pendingAction) this.runAction(t, { kind: resync.pendingAction.kind, id: resync.pendingAction.id, side: resync.pendingAction.side });
      this.emitEvents([ev]);
    }
  }

  tick(): void { for (const t of this.comps.values()) this.pass(t, []); }

  command(component: string, cmd: Command): CommandResult {
    const t = this.tracked(component);
    return this.pass(t, [cmd])[0]!;
  }

  /** Replaces a component's policy; with its YAML, the policy is stored and survives a restart. */
  setPolicy(component: string, policy: Policy, yaml?: string): void {
    const t = this.tracked(component);
    if (yaml !== undefined) this.o.store.savePolicy(component, yaml);
    t.policy = policy;
    const ev: MigrationEvent = { atMs: this.now(), component, kind: "command", phase: t.status.phase, message: "policy replaced", severity: "info" };
    this.o.store.save(t.status, [ev]);
    this.emitEvents([ev]);
  }

  get(component: string): { status: MigrationStatus; policy: Policy; observed: Observed | null } {
    const t = this.tracked(component);
    return { status: structuredClone(t.status), policy: t.policy, observed: t.observed };
  }
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
    t.observed = this.o.inputs.gather(t.status.component, t.status, now);
    const inputs: ReconcileInputs = { ...t.observed, rollout: t.rollout, action: t.action, commands };
    const r = reconcile(t.policy, t.status, inputs, now);
    // Durable first: the status describing a traffic change is on disk before the change is made.
    this.o.store.save(r.status, r.events);
    t.status = r.status;
    this.emitEvents(r.events);
    for (const a of r.actions) this.apply(t, a);
    if (r.events.length || r.actions.length) this.emit("status", structuredClone(t.status));
    return r.commandResults;
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
      version = this.o.router.setRoutes(s.component, {
        weights: { primary: TOTAL_BP - s.shadowWeightBp, shadow: s.shadowWeightBp }, mirrorFraction: s.mirrorFraction, writeTarget: s.writeTarget,
      });
    } catch (e) {
      // The controller refused its own routes: report it as a NACK so the migration pauses with the reason.
      this.counters.nacks++;
      t.rollout = { id, state: "nacked", error: `the controller could not publish: ${(e as Error).message}` };
      return;
    }
    const ask = (): void => {
      this.o.router.verify(version, this.o.verifyTimeoutMs ?? 10_000).then((v) => {
        if (t.rollout?.id !== id) return;
        if (v.ok) t.rollout = { id, state: "acked" };
        else if (v.nacked.length) {
          this.counters.nacks++;
          t.rollout = { id, state: "nacked", error: v.nacked.map((n) => `${n.node} (${n.type}): ${n.error}`).join("; ") };
        } else if (v.superseded) t.rollout = { id, state: "superseded" };
        else ask(); // still pending: ask again (a proxy that never answers keeps the step where it is)
      }, (e: Error) => { if (t.rollout?.id === id) t.rollout = { id, state: "nacked", error: `verify failed: ${e.message}` }; });
    };
    ask();
  }

  private runAction(t: Tracked, a: { kind: ActionKind; id: string; side: Side }): void {
    t.action = { id: a.id, state: "pending" };
    this.counters.actions++;
    this.o.actions.run(t.status.component, a.kind, a.side).then(
      () => { if (t.action?.id === a.id) t.action = { id: a.id, state: "ok" }; },
      (e: Error) => { this.counters.actionFailures++; if (t.action?.id === a.id) t.action = { id: a.id, state: "failed", error: e.message }; },
    );
  }
}
