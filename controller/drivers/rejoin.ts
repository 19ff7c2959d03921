// Puts a demoted writer back as a replica, level-triggered: on every controller tick, for each
// component whose driver needs it (drivers with `rejoins`), when no move is in flight, the writer is
// up and writable and the other side is up but not a replica: if that side is writable too (an old
// primary restarted after a crash, a partition healed) it is fenced at once; once it is fenced (a
// switchover's old primary) and the phase has settled (10 s), the driver's rejoin runs. One at a time
// per component, with a doubling backoff after a failed rejoin. So a restore can move back, and a
// crash of the controller in the middle only means the next tick tries again.
import type { Logger } from "pino";
import { wallMs, type Clock } from "../../host/clock.js";
import type { MigrationManager } from "../migration/manager.js";
import type { ComponentDriver } from "./driver.js";
import type { Side } from "../xds/resources.js";
import type { DriverPoller } from "./poller.js";

const other = (s: Side): Side => (s === "primary" ? "shadow" : "primary");
/** Phases in which the writer is settled (nothing is being fenced or promoted). */
const SETTLED: ReadonlySet<string> = new Set(["Healthy", "Migrated", "AtRisk", "Paused"]);

/**
 * settleMs: how long the component must have been in its phase first (default 10 s), so a rejoin (which
 * may copy the whole database from the new writer) does not compete with the check that follows a move.
 */
export interface RejoinOptions { firstBackoffMs?: number; maxBackoffMs?: number; settleMs?: number }

export class RejoinWatcher {
  private readonly state = new Map<string, { running: boolean; side: Side | null; failures: number; notBeforeMs: number }>();
  constructor(
    private readonly drivers: ReadonlyMap<string, ComponentDriver>,
    private readonly poller: Pick<DriverPoller, "status">,
    private readonly manager: Pick<MigrationManager, "get" | "note">,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly o: RejoinOptions = {},
  ) {}

  /** The side that should be rejoined (or, when it is writable, fenced first) now, or null. */
  due(component: string): { side: Side; fence: boolean } | null {
    const d = this.drivers.get(component);
    if (!d?.rejoins) return null;
    const st = this.state.get(component);
    if (st && (st.running || wallMs(this.clock) < st.notBeforeMs)) return null;
    const { status } = this.manager.get(component);
    if (!SETTLED.has(status.phase) || status.promotion || status.pendingAction) return null;
    const h = this.poller.status().find((x) => x.component === component)?.health;
    const writer = status.writeTarget, stale = other(writer);
    const w = h?.[writer], o = h?.[stale];
    if (!w?.up || w.writable !== true || !o?.up || o.replica !== false) return null;
    // An old writer that came back writable (restarted after a crash, a partition healed) is a second
    // writer: it is fenced at once, before anything else.
    if (o.writable === true) return { side: stale, fence: true };
    if (o.writable !== false || wallMs(this.clock) - status.phaseSinceMs < (this.o.settleMs ?? 10_000)) return null;
    return { side: stale, fence: false };
  }

  tick(): void {
    for (const component of this.drivers.keys()) {
      const due = this.due(component);
      if (due === null) continue;
      const side = due.side, driver = this.drivers.get(component)!;
      const st = this.state.get(component) ?? { running: false, side: null, failures: 0, notBeforeMs: 0 };
      this.state.set(component, st);
      st.running = true;
      const t0 = wallMs(this.clock);
      if (due.fence) {
        this.manager.note(component, "action", `the ${side} is writable while the ${other(side)} takes writes: fencing it`, "warning");
        driver.fence(side).then(
          () => this.manager.note(component, "action", `the ${side} is fenced`),
          (e: Error) => this.manager.note(component, "action", `fencing the writable ${side} failed: ${e.message}`, "error"),
        ).finally(() => { st.running = false; });
        continue;
      }
      this.manager.note(component, "action", `rejoin ${side}: it is neither the writer nor a replica; making it a replica of the ${other(side)}`);
      st.side = side;
      driver.rejoin(side).then(
        () => {
          st.failures = 0;
          this.manager.note(component, "action", `rejoin ${side}: done in ${((wallMs(this.clock) - t0) / 1000).toFixed(1)}s: it replicates the ${other(side)}`);
        },
        (e: Error) => {
          st.failures++;
          const backoff = Math.min(this.o.maxBackoffMs ?? 300_000, (this.o.firstBackoffMs ?? 15_000) * 2 ** (st.failures - 1));
          st.notBeforeMs = wallMs(this.clock) + backoff;
          this.log.warn({ component, side, err: e.message }, "rejoin failed");
          this.manager.note(component, "action", `rejoin ${side} failed (${e.message}); retrying in ${Math.round(backoff / 1000)}s`, "warning");
        },
      ).finally(() => { st.running = false; st.side = null; });
    }
  }

  /** Whether `side` is being rejoined now (stopped, rewound or cloned, restarted): it serves nothing meanwhile. */
  rejoining(component: string, side: Side): boolean { const st = this.state.get(component); return !!st?.running && st.side === side; }
}
