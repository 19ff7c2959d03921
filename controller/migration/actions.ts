// Fence, unfence, promote and lease, as configured per component: an HTTP webhook (POST JSON, any 2xx
// is success) or a command (argv, exit 0 is success; the action in SHADOWMESH_ACTION/_SIDE/_COMPONENT).
// All must be idempotent: after a restart the controller re-runs an action whose result it never saw.
// A detail (the leadership epoch, a lease's absolute wall-clock deadline in Unix ms) goes into the
// webhook body as "epoch" / "expiresAtMs" and to a command as SHADOWMESH_EPOCH /
// SHADOWMESH_LEASE_EXPIRES_AT_MS; without one the body and environment are exactly as before.
import { spawn } from "node:child_process";
import { ActionNotDelivered, type ActionRunner, type LeaseDetail } from "./manager.js";
export type { LeaseDetail } from "./manager.js";
import type { ActionKind, Side } from "./reconcile.js";

export type ActionConfig = { webhook: string; headers?: Record<string, string> } | { command: string[] };


export class ConfiguredActions implements ActionRunner {
  constructor(private readonly byComponent: Map<string, ActionConfig>, private readonly timeoutMs = 30_000, private readonly fetchFn: typeof fetch = fetch) {}

  async run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void> {
    const cfg = this.byComponent.get(component);
    if (!cfg) throw new Error(`component ${component} has no actions configured (actions.webhook or actions.command): cannot ${kind} the ${side}`);
    const epoch = detail?.epoch, expiresAtMs = detail?.expiresAtMs;
    if ("webhook" in cfg) {
      let res: Response;
      try {
        res = await this.fetchFn(cfg.webhook, {
          method: "POST", headers: { "content-type": "application/json", ...cfg.headers },
          body: JSON.stringify({ component, action: kind, side, ...(epoch !== undefined ? { epoch } : {}), ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (e) {
        // A refused connection proves the request never arrived (a lease grant then never took effect); a timeout does not.
        const code = ((e as { cause?: { code?: string } }).cause?.code) ?? "";
        if (code === "ECONNREFUSED") throw new ActionNotDelivered(`${kind} ${side}: webhook ${cfg.webhook}: connection refused`);
        throw e;
      }
      if (!res.ok) throw new Error(`${kind} ${side}: webhook ${cfg.webhook} answered ${res.status} ${(await res.text()).slice(0, 200)}`);
      return;
    }
    const [cmd, ...args] = cfg.command;
    const env: NodeJS.ProcessEnv = { ...process.env, SHADOWMESH_COMPONENT: component, SHADOWMESH_ACTION: kind, SHADOWMESH_SIDE: side };
    if (epoch !== undefined) env.SHADOWMESH_EPOCH = String(epoch);
    if (expiresAtMs !== undefined) env.SHADOWMESH_LEASE_EXPIRES_AT_MS = String(expiresAtMs);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(cmd!, args, { env, stdio: ["ignore", "ignore", "pipe"], timeout: this.timeoutMs });
      let err = "";
      child.stderr.on("data", (d: Buffer) => { err = (err + d.toString()).slice(-500); });
      child.on("error", (e) => reject(new Error(`${kind} ${side}: cannot run ${cmd}: ${e.message}`)));
      child.on("close", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${kind} ${side}: ${cmd} exited ${code ?? signal}: ${err.trim()}`))));
    });
  }
}

/** For tests: records calls (with their detail, when one was given) and answers as told. */
export class FakeActions implements ActionRunner {
  readonly calls: { component: string; kind: ActionKind | "lease"; side: Side; detail?: LeaseDetail }[] = [];
  fail: string | null = null;
  async run(component: string, kind: ActionKind | "lease", side: Side, detail?: LeaseDetail): Promise<void> {
    this.calls.push(detail === undefined ? { component, kind, side } : { component, kind, side, detail });
    if (this.fail) throw new Error(this.fail);
  }
}
