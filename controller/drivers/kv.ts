// The sample key-value component's driver (world/sample/kv.ts): each side is a node with /status, /metrics
// and /admin/actions. Actions go to the side's own node (with the admin token) carrying the epoch and
// the lease's absolute deadline; health and the lag are the node's /status; signals are its /metrics
// gauges (sample_cpu_utilization -> cpu, ... as the demo's scrape maps them).
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { postAction, type ComponentDriver, type LagReading, type LeaseDetail, type SideHealth, type SignalSample } from "./driver.js";
import type { Side } from "../xds/resources.js";

export interface KvDriverOptions {
  component: string;
  /** Each node's base URL (http://host:port). */
  primary: string;
  shadow: string;
  /** The nodes' /admin/* bearer token. */
  adminToken?: string;
  timeoutMs?: number;
  fetchFn?: typeof fetch;
}

/** The node's gauges and the signal each feeds. */
export const KV_SIGNALS: Readonly<Record<string, string>> = {
  sample_cpu_utilization: "cpu", sample_memory_utilization: "memory", sample_disk_io_utilization: "disk_io", sample_queue_depth: "queue_depth",
};

interface KvStatus { role: string; fenced: boolean; writable: boolean; failed: boolean; replicationLagS: number; epoch: number }

export class KvDriver implements ComponentDriver {
  readonly kind = "kv";
  readonly measures = true;
  readonly rejoins = false;
  private readonly fetchFn: typeof fetch;
  constructor(private readonly o: KvDriverOptions) { this.fetchFn = o.fetchFn ?? fetch; }

  private async get(side: Side, p: string): Promise<Response> {
    const res = await this.fetchFn(`${this.o[side]}${p}`, { signal: AbortSignal.timeout(this.o.timeoutMs ?? 2000) });
    if (!res.ok) throw new Error(`${side} ${p}: HTTP ${res.status}`);
    return res;
  }

  private async status(side: Side): Promise<KvStatus> { return (await (await this.get(side, "/status")).json()) as KvStatus; }

  async health(side: Side): Promise<SideHealth> {
    try {
      const s = await this.status(side);
      return { up: !s.failed, writable: s.writable, replica: s.role === "follower", detail: `${s.role}${s.fenced ? ", fenced" : ""}, epoch ${s.epoch}` };
    } catch (e) { return { up: false, writable: null, replica: null, detail: (e as Error).message }; }
  }

  async signals(side: Side): Promise<SignalSample[]> {
    const families = parsePrometheusTextFormat(await (await this.get(side, "/metrics")).text());
    const out: SignalSample[] = [];
    for (const f of families) {
      const signal = KV_SIGNALS[f.name];
      const v = signal && f.metrics[0] && "value" in f.metrics[0] ? Number(f.metrics[0].value) : NaN;
      if (signal && Number.isFinite(v)) out.push({ signal, value: v });
    }
    return out;
  }

  /** The follower's view of the pair's lag (the leader's when the follower cannot be reached). */
  async lag(): Promise<LagReading | null> {
    for (const side of ["shadow", "primary"] as const) {
      try {
        const s = await this.status(side);
        if (s.role === "follower" || side === "primary") return { seconds: s.replicationLagS, bytes: null, drained: s.replicationLagS <= 0 };
      } catch { /* try the other node */ }
    }
    return null;
  }

  private async act(action: string, side: Side, d?: LeaseDetail): Promise<void> {
    const url = `${this.o[side]}/admin/actions`;
    const body = { component: this.o.component, action, side, ...(d?.epoch !== undefined ? { epoch: d.epoch } : {}), ...(d?.expiresAtMs !== undefined ? { expiresAtMs: d.expiresAtMs } : {}) };
    await postAction(this.fetchFn, url, `${action} ${side}: ${url}`, body, this.o.adminToken ? { authorization: `Bearer ${this.o.adminToken}` } : {}, this.o.timeoutMs ?? 10_000);
  }

  fence(side: Side, d?: LeaseDetail): Promise<void> { return this.act("fence", side, d); }
  unfence(side: Side, d?: LeaseDetail): Promise<void> { return this.act("unfence", side, d); }
  promote(side: Side, d?: LeaseDetail): Promise<void> { return this.act("promote", side, d); }
  /** The nodes take writes only under a valid lease (world/sample/kv.ts --require-lease). */
  enforcesLease(): boolean { return true; }
  lease(side: Side, d?: LeaseDetail): Promise<void> { return this.act("lease", side, d); }
  /** A KV node demoted by its successor follows it on its own (/admin/demote): nothing to do. */
  async rejoin(): Promise<void> { /* the new leader demotes the old one (world/sample/kv.ts) */ }
  async close(): Promise<void> { /* stateless */ }
}
