// The component-driver seam: what the controller needs from one kind of protected component (the
// sample KV, PostgreSQL, anything behind a webhook), as Flagger has one small interface and one file
// per mesh. A driver answers for both sides of a pair: is each side up and writable (health), what
// does it measure (signals), how far is the replica behind (lag), and it carries out the migration
// engine's actions (fence, unfence, promote, lease) and puts a demoted primary back as a replica of
// the new one (rejoin). The reconciler never sees a driver: it emits actions, DriverActions runs them
// here, and DriverPoller (poller.ts) feeds health, signals and lag to the risk engine.
import { ActionNotDelivered, type ActionOutcome, type ActionRunner, type LeaseDetail } from "../migration/manager.js";
import type { ActionKind } from "../migration/status.js";
import type { Side } from "../xds/resources.js";

export type { ActionOutcome, LeaseDetail } from "../migration/manager.js";

/**
 * One side's health as the driver sees it: reachable at all, whether it takes writes now, and whether
 * it is a replica following the other side (null: the driver cannot tell).
 */
export interface SideHealth { up: boolean; writable: boolean | null; replica: boolean | null; detail: string }

/** One measured value, named as the component's signal it feeds (a driver's samples are documented in its file). */
export interface SignalSample { signal: string; value: number }

/**
 * The replica's distance behind the writer. drained: exactly caught up (the replica has replayed
 * everything the writer has written), which the write move waits for; seconds: the lag the engine
 * scores (0 when drained; null when neither side says).
 */
export interface LagReading { seconds: number | null; bytes: number | null; drained: boolean }

export interface ComponentDriver {
  /** The backend's name, as in the configuration (webhook, kv, postgres). */
  readonly kind: string;
  /** Whether the driver measures anything itself (else health, signals and lag come from scrape targets). */
  readonly measures: boolean;
  /** Whether a demoted writer must be rejoined by the controller (else the component does it itself). */
  readonly rejoins: boolean;
  health(side: Side): Promise<SideHealth>;
  signals(side: Side): Promise<SignalSample[]>;
  /** The pair's lag (null: this driver does not know it). */
  lag(): Promise<LagReading | null>;
  /**
   * Makes the side refuse writes, proven. With detail.stop (an emergency: the primary is down), a
   * driver that can stop a side that does not answer for good, and prove it, may do so and report
   * { stopped: true }: the promotion then has nothing to wait for.
   */
  fence(side: Side, detail?: LeaseDetail): Promise<void | ActionOutcome>;
  unfence(side: Side, detail?: LeaseDetail): Promise<void>;
  promote(side: Side, detail?: LeaseDetail): Promise<void>;
  /**
   * Whether the side stops taking writes by itself when its lease runs out (the sample KV's nodes; a
   * PostgreSQL side with a lease agent). When it does not, a granted lease proves nothing, and a
   * writer that cannot be fenced is never promoted past.
   */
  enforcesLease(side: Side): boolean;
  /** Extends the writer's lease to detail.expiresAtMs (a driver without leases accepts and does nothing). */
  lease(side: Side, detail?: LeaseDetail): Promise<void>;
  /** Makes `side` (a demoted writer) a replica of the other side, so a later restore can move back. */
  rejoin(side: Side): Promise<void>;
  close(): Promise<void>;
}

/** A driver that cannot do what was asked: the message names the driver and the operation. */
export class DriverUnsupported extends Error {}

/** The migration engine's ActionRunner over the configured drivers, one per component. */
export class DriverActions implements ActionRunner {
  constructor(private readonly drivers: ReadonlyMap<string, ComponentDriver>) {}

  async run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void | ActionOutcome> {
    const d = this.drivers.get(component);
    if (!d) throw new Error(`component ${component} has no actions configured (driver, actions.webhook or actions.command): cannot ${kind} the ${side}`);
    switch (kind) {
      case "fence": return d.fence(side, detail);
      case "unfence": return d.unfence(side, detail);
      case "promote": return d.promote(side, detail);
      case "lease": return d.lease(side, detail);
    }
  }

  leaseEnforced(component: string, side: Side): boolean { return this.drivers.get(component)?.enforcesLease(side) ?? true; }

  driver(component: string): ComponentDriver | undefined { return this.drivers.get(component); }
  async close(): Promise<void> { await Promise.all([...this.drivers.values()].map((d) => d.close().catch(() => undefined))); }
}

/**
 * POSTs an action as JSON and fails unless the answer is 2xx; `label` starts every error ("fence
 * primary: webhook URL"). A refused connection proves the request never arrived (ActionNotDelivered:
 * a lease grant then never took effect); a timeout does not. Resolves to the answer's JSON body (null
 * when it has none or it is not JSON).
 */
export async function postAction(fetchFn: typeof fetch, url: string, label: string, body: unknown, headers: Record<string, string>, timeoutMs: number): Promise<unknown> {
  let res: Response;
  try {
    res = await fetchFn(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    if (((e as { cause?: { code?: string } }).cause?.code) === "ECONNREFUSED") throw new ActionNotDelivered(`${label}: connection refused`);
    throw e;
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${label} answered ${res.status} ${text.slice(0, 200)}`);
  try { return text ? JSON.parse(text) as unknown : null; } catch { return null; }
}
