// The generic driver: fence, unfence, promote and lease as an HTTP webhook (POST JSON, any 2xx is
// success) or a command (argv, exit 0 is success; the action in SHADOWMESH_ACTION/_SIDE/_COMPONENT).
// It measures nothing itself: health, signals and lag come from the component's scrape targets.
// All actions must be idempotent: after a restart the controller re-runs an action whose result it
// never saw. A detail (the leadership epoch, a lease's absolute wall-clock deadline in Unix ms) goes
// into the webhook body as "epoch" / "expiresAtMs" and to a command as SHADOWMESH_EPOCH /
// SHADOWMESH_LEASE_EXPIRES_AT_MS; with HA replicas the deciding controller's term (its etcd fencing
// token) as "term" / SHADOWMESH_CONTROLLER_TERM, so a target can refuse a deposed leader's action;
// without one the body and environment are exactly as before.
import { spawn } from "node:child_process";
import type { ActionKind } from "../migration/status.js";
import { DriverUnsupported, postAction, type ComponentDriver, type LagReading, type LeaseDetail, type SideHealth, type SignalSample } from "./driver.js";
import type { Side } from "../xds/resources.js";

export type ActionConfig = { webhook: string; headers?: Record<string, string> } | { command: string[] };

export class WebhookDriver implements ComponentDriver {
  readonly kind = "webhook";
  readonly measures = false;
  readonly rejoins = false;
  constructor(private readonly component: string, private readonly cfg: ActionConfig, private readonly timeoutMs = 30_000, private readonly fetchFn: typeof fetch = fetch) {}

  health(): Promise<SideHealth> { return Promise.reject(new DriverUnsupported("the webhook driver does not check health: give the component scrape targets with a side")); }
  signals(): Promise<SignalSample[]> { return Promise.resolve([]); }
  lag(): Promise<LagReading | null> { return Promise.resolve(null); }
  fence(side: Side, d?: LeaseDetail): Promise<void> { return this.run("fence", side, d); }
  unfence(side: Side, d?: LeaseDetail): Promise<void> { return this.run("unfence", side, d); }
  promote(side: Side, d?: LeaseDetail): Promise<void> { return this.run("promote", side, d); }
  /** The component behind the webhook is trusted to honour the lease it is sent (as the sample KV does). */
  enforcesLease(): boolean { return true; }
  lease(side: Side, d?: LeaseDetail): Promise<void> { return this.run("lease", side, d); }
  rejoin(side: Side): Promise<void> { return this.run("rejoin", side); }
  close(): Promise<void> { return Promise.resolve(); }

  private async run(kind: ActionKind | "lease" | "rejoin", side: Side, detail?: LeaseDetail): Promise<void> {
    const { component, cfg } = this;
    const epoch = detail?.epoch, expiresAtMs = detail?.expiresAtMs, term = detail?.term;
    if ("webhook" in cfg) {
      const body = { component, action: kind, side, ...(epoch !== undefined ? { epoch } : {}), ...(expiresAtMs !== undefined ? { expiresAtMs } : {}), ...(term !== undefined ? { term } : {}) };
      await postAction(this.fetchFn, cfg.webhook, `${kind} ${side}: webhook ${cfg.webhook}`, body, cfg.headers ?? {}, this.timeoutMs);
      return;
    }
    const [cmd, ...args] = cfg.command;
    const env: NodeJS.ProcessEnv = { ...process.env, SHADOWMESH_COMPONENT: component, SHADOWMESH_ACTION: kind, SHADOWMESH_SIDE: side };
    if (epoch !== undefined) env.SHADOWMESH_EPOCH = String(epoch);
    if (expiresAtMs !== undefined) env.SHADOWMESH_LEASE_EXPIRES_AT_MS = String(expiresAtMs);
    if (term !== undefined) env.SHADOWMESH_CONTROLLER_TERM = String(term);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(cmd!, args, { env, stdio: ["ignore", "ignore", "pipe"], timeout: this.timeoutMs });
      let err = "";
      child.stderr.on("data", (d: Buffer) => { err = (err + d.toString()).slice(-500); });
      child.on("error", (e) => reject(new Error(`${kind} ${side}: cannot run ${cmd}: ${e.message}`)));
      child.on("close", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${kind} ${side}: ${cmd} exited ${code ?? signal}: ${err.trim()}`))));
    });
  }
}
