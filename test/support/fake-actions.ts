// The migration engine's ActionRunner fake: records every call (with its detail, when one was given)
// and answers as told.
import type { ActionRunner, LeaseDetail } from "../../controller/migration/manager.js";
import type { ActionKind } from "../../controller/migration/status.js";
import type { Side } from "../../controller/xds/resources.js";

export class FakeActions implements ActionRunner {
  readonly calls: { component: string; kind: ActionKind | "lease"; side: Side; detail?: LeaseDetail }[] = [];
  fail: string | null = null;
  async run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void> {
    this.calls.push(detail === undefined ? { component, kind, side } : { component, kind, side, detail });
    if (this.fail) throw new Error(this.fail);
  }
}
