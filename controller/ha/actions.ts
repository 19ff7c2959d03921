// The leader's actions carry its term: every fence, unfence, promote and lease grant the manager runs
// goes out with the leader's fencing token (LeaseDetail.term) and only while this replica still holds
// it: a replica that lost it refuses locally; etcd confirms the term first (a guarded read, so a leader
// that woke up late, a GC pause or SIGSTOP, is refused before its timer has noticed that its lease
// ran out: this covers targets that cannot check a term themselves, as PostgreSQL's SQL fence and
// promote); and a target that saw a higher term refuses it too (the sample KV node, the lease agent,
// the webhook body's "term"). What remains is the action's own flight time after the confirmation.
import type { ActionRunner, ActionOutcome, LeaseDetail } from "../migration/manager.js";
import type { ActionKind } from "../migration/status.js";
import type { Side } from "../xds/resources.js";
import type { LeaderToken } from "./leader.js";

/** Refused locally: this replica no longer leads. */
export class NotLeaderAction extends Error {}

export class TermActions implements ActionRunner {
  /** confirm: asks etcd whether the term is still current (EtcdStateStore.confirmTerm); rejects when not. */
  constructor(private readonly inner: ActionRunner, private readonly token: () => LeaderToken | null, private readonly confirm?: () => Promise<void>) {}
  async run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void | ActionOutcome> {
    const t = this.token();
    if (!t) throw new NotLeaderAction(`${kind} ${side} of ${component} refused: this replica no longer leads`);
    if (this.confirm) {
      try { await this.confirm(); }
      catch (e) { throw new NotLeaderAction(`${kind} ${side} of ${component} refused: etcd did not confirm term ${t.revision} (${(e as Error).message})`); }
      if (this.token() !== t) throw new NotLeaderAction(`${kind} ${side} of ${component} refused: this replica no longer leads`);
    }
    return this.inner.run(component, kind, side, { ...detail, term: t.revision });
  }
  leaseEnforced(component: string, side: Side): boolean { return this.inner.leaseEnforced?.(component, side) ?? true; }
}
