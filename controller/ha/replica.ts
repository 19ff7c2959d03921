// One controller replica of an HA group on etcd. Every replica serves xDS to the proxies that connect
// to it; only the leader (leader.ts) decides: its migration manager runs on the etcd store
// (etcd-store.ts) and stops the moment a save is refused. Followers show the statuses and events the
// leader stored (a watch on the group's prefix) and serve the routes those statuses describe, so a
// proxy on any replica gets what the leader decided, and only once it is durable. After applying, a
// follower verifies its own proxies and records the outcome (acks/<replica>/<component>, under its
// registration lease); the leader's router (HaRouter) counts a version as applied only once its own
// proxies and every live replica's (replicas/<name>, leased) ACKed the same routes. On election the
// replica reads the state again and its manager resumes (the stored routes re-published unchanged:
// no proxy sees a weight change); on losing the lease, or a refused save, it follows again. Without
// a quorum nobody can be elected or save: every replica keeps serving its last routes and says so.
import { EventEmitter } from "node:events";
import type { Lease, Namespace, Watcher } from "etcd3";
import type { MigrationManager } from "../migration/manager.js";
import { routesOf } from "../migration/manager.js";
import type { MigrationStatus } from "../migration/reconcile.js";
import type { MirrorSettings, Routes, TrafficRouter } from "../xds/router.js";
import type { Weights } from "../xds/resources.js";
import type { VerifyResult } from "../xds/server.js";
import { EtcdStateStore, storedEvent, storedStatus } from "./etcd-store.js";
import { Leadership, type LeadershipOptions } from "./leader.js";

export type Role = "leader" | "follower" | "no-quorum";

export interface HaReplicaOptions extends LeadershipOptions {
  /** This replica's own router (its xDS snapshot cache). */
  local: TrafficRouter;
  /** Where the other replicas reach this one's telemetry port (host:port). */
  telemetryAddress: string;
}

/** The part of an etcd key after `marker` (keys may come with or without the group's prefix). */
const after = (k: string, marker: string) => k.slice(k.lastIndexOf(marker) + marker.length);
const key = (r: Routes) => JSON.stringify([r.weights.primary, r.weights.shadow, r.mirrorFraction, r.writeTarget, r.shadowFit ?? false, r.holdWrites ?? null, r.pauseWritesMs ?? 0]);

/**
 * The leader's router: publishes on this replica, and verify() resolves once every live replica's
 * proxies ACKed the same routes too (pending until then; a replica's NACK is a NACK).
 */
export class HaRouter implements TrafficRouter {
  private readonly versions = new Map<string, { component: string; key: string }>();
  constructor(private readonly local: TrafficRouter, private readonly replica: HaReplica) {}
  setWeights(component: string, weights: Weights): string { return this.local.setWeights(component, weights); }
  getWeights(component: string): Weights { return this.local.getWeights(component); }
  setMirror(component: string, mirror: MirrorSettings): string { return this.local.setMirror(component, mirror); }
  setRoutes(component: string, routes: Routes): string {
    // A leader that lost its term publishes nothing (the manager reports it and stops on its next save).
    if (!this.replica.leadership.token) throw new Error(`replica ${this.replica.name} no longer leads: routes of ${component} not published`);
    const v = this.local.setRoutes(component, routes);
    this.versions.set(v, { component, key: key(routes) });
    if (this.versions.size > 1000) this.versions.delete(this.versions.keys().next().value!);
    return v;
  }
  async verify(version: string, timeoutMs = 10_000): Promise<VerifyResult> {
    const own = await this.local.verify(version, timeoutMs);
    const v = this.versions.get(version);
    if (!own.ok || !v) return own;
    const others = await this.replica.peerAcks(v.component);
    const r: VerifyResult = { ...own, acked: [...own.acked], nacked: [...own.nacked], pending: [...own.pending] };
    for (const [name, a] of others) {
      const node = `replica ${name}`;
      if (a && a.key === v.key && a.state === "acked") r.acked.push(node);
      else if (a && a.key === v.key && a.state === "nacked") r.nacked.push({ node, type: "routes", error: a.error ?? "NACK" });
      else r.pending.push(node);
    }
    r.ok = r.nacked.length === 0 && r.pending.length === 0;
    // Still pending on another replica: answer after a short wait (the manager asks again).
    if (!r.ok && r.nacked.length === 0) await new Promise((res) => setTimeout(res, Math.min(200, timeoutMs)));
    return r;
  }
}

interface PeerAck { key: string; state: "acked" | "nacked" | "pending"; error?: string }
/** What a replica registers (replicas/<name>, under its lease). */
interface Registration { replica: string; telemetry: string; api?: string }

export class HaReplica extends EventEmitter {
  readonly leadership: Leadership;
  readonly store: EtcdStateStore;
  readonly ns: Namespace;
  private manager: MigrationManager | null = null;
  private readonly applied = new Map<string, string>();
  private watchers: Watcher[] = [];
  private regLease: Lease | null = null;
  private quorum = true;
  private closed = false;
  /** Live replicas (replicas/<name>): where each one's telemetry port and API are. */
  private readonly peers = new Map<string, Registration>();
  private apiAddress: string | null = null;
  /** When this replica's registration lease was last renewed: none for a TTL means no quorum (etcd answers keep-alives only with one). */
  private lastRenewedMs = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: HaReplicaOptions) {
    super();
    this.leadership = new Leadership(o);
    this.ns = this.leadership.ns;
    this.store = new EtcdStateStore(this.ns, () => this.leadership.token);
  }

  get name(): string { return this.o.replica; }
  get role(): Role { return this.leadership.token ? "leader" : this.quorum ? "follower" : "no-quorum"; }
  /** What status, /metrics and the dashboard say about this replica. */
  view(): { replica: string; role: Role; leader: string | null; term: number | null; quorum: boolean } {
    return { replica: this.o.replica, role: this.role, leader: this.leadership.leader, term: this.leadership.token?.revision ?? null, quorum: this.quorum };
  }

  /** The router the leader's manager publishes through. */
  router(): HaRouter { return new HaRouter(this.o.local, this); }

  /** Reads the state, follows the leader's statuses, registers, and campaigns. */
  async start(manager: MigrationManager): Promise<void> {
    this.manager = manager;
    await this.store.open();
    const stored = this.store.load();
    manager.follow(stored, this.followReason());
    for (const s of stored.statuses.values()) this.apply(s);
    manager.on("stopped", (reason: string) => {
      this.o.log.warn({ replica: this.o.replica, reason }, "the manager stopped: following again");
      void this.leadership.resign().then(() => this.follow());
    });
    this.leadership.on("elected", () => void this.lead());
    this.leadership.on("deposed", (reason: string) => { this.manager?.stop(`deposed: ${reason}`); void this.follow(); });
    this.leadership.on("leader", (name: string | null) => { if (!this.leadership.token) this.manager?.followReason(this.followReason()); this.emit("leader", name); });
    const w = await this.ns.watch().prefix("status/").create();
    w.on("put", (kv) => { try { this.onStatus(storedStatus(kv.key.toString(), kv.value.toString())); } catch (e) { this.o.log.error({ err: e }, "a stored status does not check: not applied"); } });
    const ew = await this.ns.watch().prefix("event/").create();
    ew.on("put", (kv) => { try { if (!this.leadership.token) this.manager?.followedEvent(storedEvent(kv.key.toString(), kv.value.toString())); } catch { /* shown only */ } });
    const rw = await this.ns.watch().prefix("replicas/").create();
    rw.on("put", (kv) => { try { this.peers.set(after(kv.key.toString(), "replicas/"), JSON.parse(kv.value.toString()) as Registration); } catch { /* not ours */ } });
    rw.on("delete", (kv) => this.peers.delete(after(kv.key.toString(), "replicas/")));
    for (const [k, v] of Object.entries(await this.ns.getAll().prefix("replicas/").strings())) { try { this.peers.set(after(k, "replicas/"), JSON.parse(v) as Registration); } catch { /* not ours */ } }
    this.watchers = [w, ew, rw];
    await this.register();
    // Watches keep working on a member without a quorum: only a renewed lease proves one.
    this.timer = setInterval(() => { if (this.o.nowMs() - this.lastRenewedMs > this.leadership.ttlS * 1000) this.setQuorum(false); }, Math.max(100, this.leadership.ttlS * 250));
    this.timer.unref?.();
    await this.leadership.start();
  }

  private setQuorum(q: boolean): void {
    if (this.quorum === q) return;
    this.quorum = q;
    this.o.log.warn({ replica: this.o.replica, quorum: q }, q ? "etcd reachable again" : "etcd unreachable (no quorum?): serving the last routes, deciding nothing");
    if (!this.leadership.token) this.manager?.followReason(this.followReason());
    this.emit("quorum", q);
  }

  /** replicas/<name> under this replica's own lease: the leader waits for the ACKs of the live ones. */
  private async register(): Promise<void> {
    const lease = this.ns.lease(this.leadership.ttlS, { autoKeepAlive: true });
    lease.on("lost", () => { if (this.closed) return; this.regLease = null; this.setQuorum(false); setTimeout(() => void this.register().catch(() => undefined), 500).unref?.(); });
    lease.on("keepaliveSucceeded", () => { this.lastRenewedMs = this.o.nowMs(); this.setQuorum(true); });
    lease.on("keepaliveFailed", () => this.setQuorum(false));
    await lease.put(`replicas/${this.o.replica}`).value(JSON.stringify(this.registration()));
    this.lastRenewedMs = this.o.nowMs();
    this.setQuorum(true);
    this.regLease = lease;
  }

  private async lead(): Promise<void> {
    try {
      await this.store.open();
      if (!this.leadership.token || !this.manager) return;
      for (const s of this.store.load().statuses.values()) this.applied.set(s.component, key(routesOf(s)));
      this.manager.start();
      this.o.log.info({ replica: this.o.replica, term: this.leadership.token?.revision }, "leading: the manager resumes from etcd");
      this.emit("role", "leader");
    } catch (e) {
      this.o.log.error({ err: e }, "cannot take the lead: reading the state from etcd failed");
      await this.leadership.resign();
      void this.follow();
    }
  }

  private async follow(): Promise<void> {
    if (this.closed || !this.manager) return;
    try { await this.store.open(); } catch { /* no quorum: keep what is shown */ }
    this.manager.follow(this.store.load(), this.followReason());
    this.emit("role", this.role);
  }

  private registration(): Registration { return { replica: this.o.replica, telemetry: this.o.telemetryAddress, ...(this.apiAddress ? { api: this.apiAddress } : {}) }; }

  /** Where the other replicas reach this one's API (once it listens): a follower passes commands on to it. */
  async advertiseApi(address: string): Promise<void> {
    this.apiAddress = address;
    await this.regLease?.put(`replicas/${this.o.replica}`).value(JSON.stringify(this.registration())).catch((e: Error) => this.o.log.warn({ err: e }, "cannot advertise the API address in etcd"));
  }

  /** The leader's telemetry port while this replica follows (where it forwards proxy reports). */
  leaderTarget(): { replica: string; telemetry: string } | null {
    const p = this.leaderPeer();
    return p?.reg.telemetry ? { replica: p.replica, telemetry: p.reg.telemetry } : null;
  }
  /** The leader's API while this replica follows (null: it leads, or no leader or address is known). */
  leaderApi(): { replica: string; api: string } | null {
    const p = this.leaderPeer();
    return p?.reg.api ? { replica: p.replica, api: p.reg.api } : null;
  }
  /** The leader's registration while this replica follows (null: it leads, or no leader is known). */
  private leaderPeer() {
    const l = this.leadership.leader;
    if (this.leadership.token || !l || l === this.o.replica) return null;
    const reg = this.peers.get(l);
    return reg ? { replica: l, reg } : null;
  }

  private followReason(): string {
    if (!this.quorum) return "a follower replica without an etcd quorum: nobody decides until it is back";
    return `a follower replica: ${this.leadership.leader ?? "no replica"} leads`;
  }

  private onStatus(s: MigrationStatus): void {
    if (this.leadership.token) return; // the leader's own manager publishes
    this.manager?.followed(s);
    this.apply(s);
  }

  /** Serves the routes a stored status describes (when they changed), then records the ACK outcome. */
  private apply(s: MigrationStatus): void {
    const routes = routesOf(s), k = key(routes);
    if (this.applied.get(s.component) === k) return;
    this.applied.set(s.component, k);
    let version: string;
    try { version = this.o.local.setRoutes(s.component, routes); } catch (e) {
      void this.ack(s.component, { key: k, state: "nacked", error: `replica ${this.o.replica} could not publish: ${(e as Error).message}` });
      return;
    }
    const ask = (): void => {
      void this.o.local.verify(version, 10_000).then((v) => {
        if (this.applied.get(s.component) !== k) return;
        if (v.ok) void this.ack(s.component, { key: k, state: "acked" });
        else if (v.nacked.length) void this.ack(s.component, { key: k, state: "nacked", error: v.nacked.map((n) => `${n.node} (${n.type}): ${n.error}`).join("; ") });
        else if (!v.superseded) ask();
      });
    };
    ask();
  }

  private async ack(component: string, a: PeerAck): Promise<void> {
    const lease = this.regLease;
    if (!lease) return;
    await lease.put(`acks/${this.o.replica}/${component}`).value(JSON.stringify(a)).catch((e: Error) => this.o.log.warn({ err: e }, "cannot record the ACK in etcd"));
  }

  /** Every other live replica's last recorded outcome for a component (undefined: none yet). */
  async peerAcks(component: string): Promise<Map<string, PeerAck | undefined>> {
    const [replicas, acks] = await Promise.all([this.ns.getAll().prefix("replicas/").keys(), this.ns.getAll().prefix("acks/").strings()]);
    const out = new Map<string, PeerAck | undefined>();
    const byName = new Map(Object.entries(acks).map(([k, v]) => [after(k, "acks/"), v]));
    for (const r of replicas) {
      const name = after(r, "replicas/");
      if (name === this.o.replica) continue;
      const raw = byName.get(`${name}/${component}`);
      out.set(name, raw ? JSON.parse(raw) as PeerAck : undefined);
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.watchers) await w.cancel().catch(() => undefined);
    await this.leadership.close();
    await this.regLease?.revoke().catch(() => undefined);
  }
}
