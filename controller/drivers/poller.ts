// Feeds what the component drivers measure into the risk engine: every interval, each side's health
// (consecutive failures: the side's active health check, as a scrape target with a side is), its
// signals (the shadow's own to the shadow's scorer) and the pair's lag (exactly 0 once drained, so the
// write move's drain waits for the replica to have replayed everything the fenced writer wrote).
import type { Logger } from "pino";
import { repeatAfter, wallMs, type Clock } from "../../host/clock.js";
import type { RiskEngine } from "../risk/engine.js";
import { scorerFor } from "../risk/kinds.js";
import type { HealthProbes } from "../migration/inputs.js";
import type { ComponentDriver, LagReading, SideHealth } from "./driver.js";
import type { Side } from "../xds/resources.js";

export interface DriverTarget {
  component: string;
  driver: ComponentDriver;
  intervalS: number;
  /** The component's signal the lag feeds (default replication_lag_s). */
  lagSignal?: string;
}

export interface DriverStatus {
  component: string;
  driver: string;
  health: Record<Side, (SideHealth & { consecutiveFailures: number }) | null>;
  lag: LagReading | null;
  /** Each side's values on the last poll (what the driver measured, whether or not a signal scores it). */
  signals: Record<Side, Record<string, number>>;
  lastError: string | null;
  lastPollMs: number | null;
}

/** The least lag a reading that is not drained feeds (1 ms): above 0, so the drain waits for a drained one. */
export const NOT_DRAINED_MIN_S = 0.001;

export class DriverPoller implements HealthProbes {
  private readonly statuses: DriverStatus[];
  /** Per component, when its writer last answered a lag read itself (writerAnsweredAtMs). */
  private readonly writerAnswered = new Map<string, number>();
  private loops: { stop(): void }[] = [];

  constructor(private readonly targets: DriverTarget[], private readonly engine: RiskEngine, private readonly clock: Clock, private readonly log: Logger) {
    this.statuses = targets.map((t) => ({ component: t.component, driver: t.driver.kind, health: { primary: null, shadow: null }, lag: null, signals: { primary: {}, shadow: {} }, lastError: null, lastPollMs: null }));
  }

  status(): DriverStatus[] { return this.statuses.map((s) => ({ ...s, health: { ...s.health }, signals: { primary: { ...s.signals.primary }, shadow: { ...s.signals.shadow } } })); }

  probeFailures(component: string, side: Side): number | null {
    let out: number | null = null;
    for (const s of this.statuses) if (s.component === component && s.health[side]) out = Math.max(out ?? 0, s.health[side]!.consecutiveFailures);
    return out;
  }

  /** Polls target i once: both sides' health and signals, then the lag. Returns the points fed. */
  async poll(i: number): Promise<number> {
    const t = this.targets[i]!, st = this.statuses[i]!;
    const errors: string[] = [];
    let fed = 0;
    for (const side of ["primary", "shadow"] as const) {
      const prev = st.health[side]?.consecutiveFailures ?? 0;
      let h: SideHealth;
      try { h = await t.driver.health(side); } catch (e) { h = { up: false, writable: null, replica: null, detail: (e as Error).message }; }
      st.health[side] = { ...h, consecutiveFailures: h.up ? 0 : prev + 1 };
      if (!h.up) { errors.push(`${side}: ${h.detail}`); continue; }
      try {
        const tMs = wallMs(this.clock);
        const got: Record<string, number> = {};
        for (const s of await t.driver.signals(side)) { got[s.signal] = s.value; fed += this.feed(t.component, side, s.signal, tMs, s.value) ? 1 : 0; }
        st.signals[side] = got;
      } catch (e) { errors.push(`${side} signals: ${(e as Error).message}`); }
    }
    try { fed += await this.readLag(i); } catch (e) { st.lag = null; errors.push(`lag: ${(e as Error).message}`); }
    st.lastPollMs = wallMs(this.clock);
    st.lastError = errors.length ? errors.join("; ") : null;
    if (st.lastError) this.log.warn({ component: t.component, driver: t.driver.kind, err: st.lastError }, "driver poll");
    return fed;
  }

  /** Measures target i's lag and feeds it, stamped when the measurement began: a drain after a fence trusts only a reading begun after it. */
  private async readLag(i: number): Promise<number> {
    const t = this.targets[i]!, st = this.statuses[i]!;
    const begun = wallMs(this.clock);
    const lag = (st.lag = await t.driver.lag());
    // A reading in bytes came from the writer's own WAL position: the writer answered, it is alive.
    if (lag && lag.bytes !== null) this.writerAnswered.set(t.component, Math.max(begun, this.writerAnswered.get(t.component) ?? -Infinity));
    // Not drained is never 0 s: a time estimate (PostgreSQL's replay_lag, else the time since the
    // standby's last replayed commit, clamped at 0) can read 0 while bytes are still to ship, and the
    // drain after a fence promotes on a lag of 0 (seen: 6 acknowledged orders lost on an io-starved primary).
    return lag && lag.seconds !== null && this.feed(t.component, undefined, t.lagSignal ?? "replication_lag_s", begun, lag.drained ? 0 : Math.max(lag.seconds, NOT_DRAINED_MIN_S)) ? 1 : 0;
  }

  /**
   * When the component's writer last answered a lag read itself (its WAL position; by when the read
   * began), null if never: proof that a fenced writer is alive and may still be shipping WAL, so its
   * lease running out does not make it down (migration/promotion.ts). Drivers that read the lag from
   * the replica alone (bytes null) give no such proof.
   */
  writerAnsweredAtMs(component: string): number | null { return this.writerAnswered.get(component) ?? null; }

  /**
   * Measures the component's lag now, out of schedule (the drain after a fence waits for a reading
   * begun after it). A failure is logged; the scheduled poll still runs. Resolves to the points fed.
   */
  async measureLag(component: string): Promise<number> {
    const reads = this.targets.flatMap((t, i) => (t.component === component ? [this.readLag(i).catch((e: Error) => { this.log.warn({ component, driver: t.driver.kind, err: e.message }, "replication lag read failed"); return 0; })] : []));
    return (await Promise.all(reads)).reduce((a, b) => a + b, 0);
  }

  private feed(component: string, side: Side | undefined, signal: string, tMs: number, v: number): boolean {
    const to = scorerFor(this.engine, component, side, signal);
    if (!this.engine.hasSignal(to, signal) || this.engine.check(to, signal, tMs, v) !== null) return false;
    this.engine.observe(to, signal, tMs, v);
    return true;
  }

  start(): void { this.loops = this.targets.map((t, i) => repeatAfter(this.clock, t.intervalS * 1000, () => this.poll(i))); }

  stop(): void { for (const l of this.loops) l.stop(); this.loops = []; }
}
