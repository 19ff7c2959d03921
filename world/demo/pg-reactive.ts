// The reactive baseline on a real PostgreSQL pair, as a team without shadowmesh runs it: Envoy's
// outlier detection with locality failover in front of the two orders APIs (the cluster of
// envoy/reactive-baseline.yaml, its endpoints on loopback: priority 0 the primary's zone, priority 1
// the standby's, outlier detection at Envoy's defaults), and a database failover by Patroni's rule,
// the same stated rule as the incident benchmark (benchmarks/incident/reactive.ts): the writer holds
// a lease that is renewed, every third of the lease, while it answers as a writer; once the lease
// has run out (plus the clock-skew margin) the standby is promoted (pg_promote) with the next epoch.
// The lease is the demo policy's (promotion.lease, 10 s), so the comparison isolates prediction.
// Each instance's lease agent (world/sample/pg-lease-agent.ts) gets the lease, so a writer that is
// cut off or hung fences itself (or is stopped) before its lease ends: never two writers, as with
// Patroni. Not modelled: Patroni restarting a crashed primary in place (master_start_timeout).
import pg from "pg";
import { pack } from "../../protocol/protos.js";
import type { Side } from "../../controller/xds/resources.js";
import type { AnyResource } from "../../dataplane/xds-client.js";

/** The listener and cluster of envoy/reactive-baseline.yaml with the APIs' loopback addresses (STATIC instead of STRICT_DNS). */
export function reactiveStaticResources(o: { primary: { address: string; port: number }; shadow: { address: string; port: number }; listenerPort?: number }): { listeners: AnyResource[]; clusters: AnyResource[] } {
  const ep = (a: { address: string; port: number }) => ({ endpoint: { address: { socket_address: { address: a.address, port_value: a.port } } } });
  const hcm = pack("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
    stat_prefix: "orders-ingress",
    route_config: {
      name: "orders-routes",
      virtual_hosts: [{ name: "orders", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "orders", timeout: { seconds: 15 } } }] }],
    },
    http_filters: [{ name: "envoy.filters.http.router", typed_config: pack("envoy.extensions.filters.http.router.v3.Router", {}) }],
  });
  const listener = pack("envoy.config.listener.v3.Listener", {
    name: "orders-ingress",
    address: { socket_address: { address: "127.0.0.1", port_value: o.listenerPort ?? 0 } },
    filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }] }],
  });
  const cluster = pack("envoy.config.cluster.v3.Cluster", {
    name: "orders", type: "STATIC", connect_timeout: { seconds: 1 },
    outlier_detection: {},
    load_assignment: {
      cluster_name: "orders",
      endpoints: [
        { locality: { zone: "zone-a" }, priority: 0, lb_endpoints: [ep(o.primary)] },
        { locality: { zone: "zone-b" }, priority: 1, lb_endpoints: [ep(o.shadow)] },
      ],
    },
  });
  return { listeners: [listener], clusters: [cluster] };
}


export interface PatroniRuleOptions {
  /** Each side's instance (postgresql:// URL, reached as a superuser, so a full connection table still answers). */
  urls: Record<Side, string>;
  /** Each side's lease agent and its token; without agents nothing fences a writer cut off from the loop. */
  agents?: { urls: Record<Side, string>; token: string };
  leaseMs: number;
  skewMs: number;
  /** How often the loop runs (default 250 ms, as the incident benchmark's). */
  loopMs?: number;
  /** Told each decision, with its wall-clock time. */
  decided?: (atMs: number, what: string) => void;
}

/** Patroni's rule on a real pair: renew the writer's lease while it answers as a writer, promote the standby once it ran out. */
export class PatroniRule {
  writer: Side = "primary";
  epoch = 1;
  /** When the standby was promoted (null: never). */
  promotedAtMs: number | null = null;
  private grantedUntilMs = 0;
  private renewedAtMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;

  constructor(private readonly o: PatroniRuleOptions) {}

  /** Grants the first lease (a deployment grants it before traffic) and starts the loop. */
  async start(): Promise<void> {
    await this.grant(this.writer, Date.now());
    this.timer = setInterval(() => void this.tick(), this.o.loopMs ?? 250);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 20));
  }

  private async grant(side: Side, now: number): Promise<void> {
    const expiresAtMs = now + this.o.leaseMs;
    if (this.o.agents) {
      const r = await fetch(`${this.o.agents.urls[side]}/lease`, {
        method: "POST", headers: { authorization: `Bearer ${this.o.agents.token}`, "content-type": "application/json" },
        body: JSON.stringify({ epoch: this.epoch, expiresAtMs }), signal: AbortSignal.timeout(1000),
      });
      if (!r.ok) throw new Error(`the ${side}'s lease agent answered ${r.status}: ${await r.text()}`);
    }
    this.grantedUntilMs = expiresAtMs;
    this.renewedAtMs = now;
  }

  /** Whether the side answers, and as what (null: it does not answer within a second). */
  private async ask(side: Side): Promise<{ recovery: boolean } | null> {
    const c = new pg.Client({ connectionString: this.o.urls[side], connectionTimeoutMillis: 1000, query_timeout: 1000, application_name: "reactive-ha" });
    c.on("error", () => undefined);
    try {
      await c.connect();
      const r = await c.query("SELECT pg_is_in_recovery() AS rec");
      return { recovery: (r.rows[0] as { rec: boolean }).rec };
    } catch { return null; } finally { await c.end().catch(() => undefined); }
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const now = Date.now();
      const writer = this.writer, replica: Side = writer === "primary" ? "shadow" : "primary";
      if (now - this.renewedAtMs >= this.o.leaseMs / 3) {
        const w = await this.ask(writer);
        // A writer that answers as one keeps (or takes back, if nobody was promoted) its lease; one
        // that does not is left to run out.
        if (w && !w.recovery) await this.grant(writer, Date.now()).catch(() => undefined);
      }
      if (Date.now() >= this.grantedUntilMs + this.o.skewMs && this.promotedAtMs === null) {
        const r = await this.ask(replica);
        if (!r?.recovery) return; // the replica is not there to promote (or already writable): wait
        const c = new pg.Client({ connectionString: this.o.urls[replica], connectionTimeoutMillis: 2000, query_timeout: 40_000, application_name: "reactive-ha" });
        c.on("error", () => undefined);
        try {
          await c.connect();
          await c.query("SELECT pg_promote(true, 30)");
        } finally { await c.end().catch(() => undefined); }
        this.epoch++;
        this.writer = replica;
        const at = Date.now();
        await this.grant(replica, at).catch(() => undefined);
        // Said once the new writer holds its lease and the decision is recorded: a watcher of
        // promotedAtMs then sees the whole promotion (a fresh-clone run read the decision before it).
        this.o.decided?.(at, `database failover: the ${writer}'s lease ran out; the ${replica} promoted (epoch ${this.epoch})`);
        this.promotedAtMs = at;
      }
    } catch (e) {
      this.o.decided?.(Date.now(), `database failover: ${(e as Error).message}`);
    } finally { this.busy = false; }
  }
}
