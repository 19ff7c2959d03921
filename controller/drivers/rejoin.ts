// Puts a demoted writer back as a replica, level-triggered: on every controller tick, for each
// component whose driver needs it (drivers with `rejoins`), when no move is in flight, the writer is
// up and writable and the other side is up but neither writable nor a replica (a fenced old primary
// after a switchover, or an old primary that came back after a failover), the driver's rejoin runs,
// one at a time per component, with a doubling backoff after a failure. So a restore can move back,
// and a crash of the controller in the middle only means the next tick tries again.
import type { Logger } from "pino";
import { wallMs, type Clock } from "../../host/clock.js";
import type { MigrationManager } from "../migration/manager.js";
import type { ComponentDriver, Side } from "./driver.js";
import type { DriverPoller } from "./poller.js";

const other = (s: Side): Side => (s === "primary" ? "shadow" : "primary");
/** Phases in which the writer is settled (nothing is being fenced or promoted). */
const SETTLED: ReadonlySet<string> = new Set(["Healthy", "Migrated", "AtRisk", "Paused"]);

export interface RejoinOptions { firstBackoffMs?: number; maxBackoffMs?: number }

export class RejoinWatcher {
  private readonly state = new Map<string, { running: boolean; failures: number; notBeforeMs: number }>();
  constructor(
    private readonly drivers: ReadonlyMap<string, ComponentDriver>,
    private readonly poller: DriverPoller,
    private readonly manager: MigrationManager,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly o: RejoinOptions = {},
  ) {}

  /** The side that should be rejoined now, or null. */
  due(component: string): Side | null {
    const d = this.drivers.get(component);
    if (!d?.rejoins) return null;
    const st = this.state.get(component);
    if (st && (st.running || wallMs(this.clock) < st.notBeforeMs)) return null;
    const { status } = this.manager.get(component);
    if (!SETTLED.has(status.phase) || status.promotion || status.pendingAction) return null;
    const h = this.poller.status().find((x) => x.component === component)?.health;
    const writer = status.writeTarget, stale = other(writer);
    const w = h?.[writer], o = h?.[stale];
    if (!w?.up || w.writable !== true || !o?.up || o.replica !== false || o.writable !== false) return null;
    return stale;
  }

  tick(): void {
    for (const component of this.drivers.keys()) {
      const side = this.due(component);
      if (side === null) continue;
      const st = this.state.get(component) ?? { running: false, failures: 0, notBeforeMs: 0 };
      this.state.set(component, st);
      st.running = true;
      const t0 = wallMs(this.clock);
      this.manager.note(component, "action", `rejoin ${side}: it is neither the writer nor a replica; making it a replica of the ${other(side)}`);
      this.drivers.get(component)!.rejoin(side).then(
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
      ).finally(() => { st.running = false; });
    }
  }
}
