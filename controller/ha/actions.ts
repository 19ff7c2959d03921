// The leader's actions carry its term: every fence, unfence, promote and lease grant the manager runs
// goes out with the leader's fencing token (LeaseDetail.term) and only while this replica still holds
// it; a replica that lost it refuses locally, and a target that saw a higher term refuses it too (the
// sample KV node, the webhook body's "term"). So a leader that wakes up late cannot act.
import type { ActionRunner, ActionOutcome, LeaseDetail } from "../migration/manager.js";
import type { ActionKind, Side } from "../migration/status.js";
import type { LeaderToken } from "./leader.js";

/** Refused locally: this replica no longer leads. */
export class NotLeaderAction extends Error {}

export class TermActions implements ActionRunner {
  constructor(private readonly inner: ActionRunner, private readonly token: () => LeaderToken | null) {}
  run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void | ActionOutcome> {
    const t = this.token();
    if (!t) return Promise.reject(new NotLeaderAction(`${kind} ${side} of ${component} refused: this replica no longer leads`));
    return this.inner.run(component, kind, side, { ...detail, term: t.revision });
  }
  leaseEnforced(component: string, side: Side): boolean { return this.inner.leaseEnforced?.(component, side) ?? true; }
}
