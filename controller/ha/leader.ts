// Leader election among controller replicas on etcd, and the fencing token that comes with it. One
// key (PREFIX/leader) held by an etcd lease: a replica leads while the key it created exists, and its
// token is that key's create revision, which grows with every new term (etcd revisions only grow).
// Every write the leader makes is a transaction guarded by "the leader key's create revision is still
// my token" (etcd-store.ts), so a leader that lost its lease (a GC pause, SIGSTOP, a partition) and
// wakes up late has its writes refused by etcd itself, whatever it believes. It also steps down on its
// own once its lease cannot have been renewed for a TTL (no keep-alive answered), without waiting for
// etcd to tell it. Followers watch the key and campaign when it goes.
import { EventEmitter } from "node:events";
import type { Etcd3, Lease, Namespace, Watcher } from "etcd3";
import type { Logger } from "pino";

/** What a leader's writes carry: etcd refuses them once another term began. */
export interface LeaderToken { replica: string; leaseId: string; revision: number }

export const LEADER_KEY = "leader";

export interface LeadershipOptions {
  client: Etcd3;
  /** Key prefix of this controller group (default "/shadowmesh/"). */
  prefix?: string;
  replica: string;
  /** The leader's lease (default 5 s): a dead leader is replaced within this plus the campaign. */
  ttlS?: number;
  log: Logger;
  /** Wall time, ms (for the local step-down check). */
  nowMs: () => number;
}

/**
 * Events: "elected" (token), "deposed" (reason): the manager stops at once on "deposed";
 * "leader" (name | null) whenever the observed leader changes.
 */
export class Leadership extends EventEmitter {
  readonly ns: Namespace;
  private lease: Lease | null = null;
  private watcher: Watcher | null = null;
  private current: LeaderToken | null = null;
  private lastRenewedMs = 0;
  private closed = false;
  private campaigning = false;
  private timer: NodeJS.Timeout | null = null;
  private observed: string | null = null;
  readonly ttlS: number;

  constructor(private readonly o: LeadershipOptions) {
    super();
    this.ns = o.client.namespace(o.prefix ?? "/shadowmesh/");
    this.ttlS = o.ttlS ?? 5;
  }

  /** The token while this replica leads and its lease may still run; null otherwise. */
  get token(): LeaderToken | null {
    if (this.current && this.o.nowMs() - this.lastRenewedMs > this.ttlS * 1000) this.stepDown(`no keep-alive answered for ${this.ttlS} s: the lease may have run out`);
    return this.current;
  }
  /** The leader as last seen in etcd (null: none, or etcd not reachable). */
  get leader(): string | null { return this.observed; }

  async start(): Promise<void> {
    this.watcher = await this.ns.watch().key(LEADER_KEY).create();
    this.watcher.on("delete", () => { this.setObserved(null); void this.campaign(); });
    this.watcher.on("put", (kv) => this.setObserved(kv.value.toString()));
    this.watcher.on("error", (e: Error) => this.o.log.warn({ err: e }, "leader watch error"));
    // The local step-down check runs even when nothing asks for the token.
    this.timer = setInterval(() => { void this.token; }, Math.max(100, (this.ttlS * 1000) / 10));
    this.timer.unref?.();
    await this.campaign();
  }

  /** One attempt: create the leader key under a fresh lease, or watch the holder. */
  private async campaign(): Promise<void> {
    if (this.closed || this.current || this.campaigning) return;
    this.campaigning = true;
    try {
      if (!this.lease) {
        const lease = this.ns.lease(this.ttlS, { autoKeepAlive: true });
        lease.on("lost", (e: Error) => { if (this.lease === lease) { this.lease = null; this.stepDown(`lease lost: ${e.message}`); void this.retryLater(); } });
        lease.on("keepaliveSucceeded", () => { if (this.lease === lease) this.lastRenewedMs = this.o.nowMs(); });
        this.lease = lease;
      }
      const lease = this.lease;
      const leaseId = await lease.grant();
      const granted = this.o.nowMs();
      const r = await this.ns.if(LEADER_KEY, "Create", "==", 0).then(this.ns.put(LEADER_KEY).value(this.o.replica).lease(leaseId)).else(this.ns.get(LEADER_KEY)).commit();
      if (r.succeeded) {
        if (this.lease !== lease || this.closed) return;
        this.lastRenewedMs = granted;
        this.current = { replica: this.o.replica, leaseId, revision: Number(r.header.revision) };
        this.setObserved(this.o.replica);
        this.o.log.info({ replica: this.o.replica, revision: this.current.revision }, "elected leader");
        this.emit("elected", this.current);
      } else {
        const kv = r.responses[0]?.response_range?.kvs?.[0];
        this.setObserved(kv ? kv.value.toString() : null);
      }
    } catch (e) {
      this.o.log.warn({ err: e }, "campaign failed (etcd unreachable?)");
      this.setObserved(null);
      void this.retryLater();
    } finally {
      this.campaigning = false;
    }
  }

  private async retryLater(): Promise<void> {
    if (this.closed) return;
    await new Promise((r) => setTimeout(r, 500).unref?.());
    void this.campaign();
  }

  private setObserved(name: string | null): void {
    if (name === this.observed) return;
    this.observed = name;
    this.emit("leader", name);
  }

  private stepDown(reason: string): void {
    if (!this.current) return;
    this.o.log.warn({ replica: this.o.replica, revision: this.current.revision }, `stepping down: ${reason}`);
    this.current = null;
    // A new lease for the next campaign: the old one may still run in etcd (its key with it) or be gone.
    const old = this.lease;
    this.lease = null;
    old?.removeAllListeners();
    void old?.revoke().catch(() => undefined);
    this.emit("deposed", reason);
    void this.retryLater();
  }

  /** Gives up leadership now (revokes the lease, so a follower takes over at once). */
  async resign(): Promise<void> {
    const lease = this.lease;
    this.lease = null;
    if (this.current) { this.current = null; this.emit("deposed", "resigned"); }
    await lease?.revoke().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.resign();
    await this.watcher?.cancel().catch(() => undefined);
  }
}
