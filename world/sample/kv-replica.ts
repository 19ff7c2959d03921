// One node of the sample key-value pair without its HTTP server (kv.ts serves it): its state (the
// data and its log, the role, the fence, the leadership epoch and the leader lease), the admin
// actions' effects (fence, unfence, promote with its catch-up pull and the old leader's demotion,
// lease, demote), stepping down when a newer epoch shows up, and the follower's side of log shipping
// (pull the leader's log, apply it in order). The protocol it follows is described at the top of kv.ts.
import type { Logger } from "pino";
import { mulberry32 } from "../../host/random.js";
import { HEALTHY, type SignalName } from "./conditions.js";
import { EPOCH_HEADER, EpochError } from "./kv-http.js";
import type { Side } from "../../controller/xds/resources.js";

export type Role = "leader" | "follower";

export interface KvNodeOptions {
  name: string;
  side: Side;
  zone: string;
  role: Role;
  /** The other node's base URL (replication pulls, forwarded actions); set later with setPeer when ports are dynamic. */
  peer?: string;
  /** Current value of a condition (the fault injector); default: healthy. */
  condition?: (signal: SignalName) => number;
  /** Wall clock in ms (lag is measured against the leader's append times). */
  nowMs?: () => number;
  pullIntervalMs?: number;
  seed?: number;
  /** Refuse writes unless the controller's lease is valid (see the header comment). Default false. */
  requireLease?: boolean;
  /**
   * The bearer token /admin/* requires (the controller's webhook and the peer send it). Without one
   * (in-process tests only) the admin endpoints take anyone; world/sample/main.ts always sets one.
   */
  adminToken?: string;
  log: Logger;
}

export interface Entry { seq: number; key: string; value: string; tMs: number }

export type ActionName = "fence" | "unfence" | "promote" | "lease";
export const ACTIONS: readonly ActionName[] = ["fence", "unfence", "promote", "lease"];

/** The node's state machine; KvNode (kv.ts) serves it over HTTP. */
export abstract class KvReplica {
  readonly name: string;
  readonly side: Side;
  role: Role;
  fenced = false;
  /** The latest leadership epoch this node knows of (1 at start). */
  epoch = 1;
  /** The highest HA controller term an admin action carried (0: none): lower ones are refused. */
  controllerTerm = 0;
  /** Wall-clock ms until which this node may take writes as leader at `leaseEpoch` (when leases are required). */
  leaseUntilMs = 0;
  protected leaseEpoch = 0;
  readonly requireLease: boolean;
  protected readonly data = new Map<string, { value: string; seq: number }>();
  protected readonly entries: Entry[] = [];
  /** Highest seq applied here (leader: appended). */
  protected seq = 0;
  protected peer: string | undefined;
  protected pullTimer?: NodeJS.Timeout;
  private pulling = false;
  /** Settles when the pull in flight ends (the promotion's catch-up waits for it, then pulls again). */
  private pullEnded: Promise<void> = Promise.resolve();
  protected failed = false;
  protected readonly rand: () => number;
  protected readonly now: () => number;
  // Follower's view of the leader.
  private leaderHead = 0;
  private firstUnappliedMs: number | null = null;
  private lastPullOkMs = 0;
  // Leader's view of the follower.
  protected followerAck = 0;
  protected followerSeenMs = 0;
  readonly counters = { reads: 0, writes: 0, refusedWrites: 0, heldWrites: 0, forwardedWrites: 0, injectedErrors: 0 };
  protected fenceWaiters: (() => void)[] = [];
  protected demoteTimer?: NodeJS.Timeout;
  port = 0;

  constructor(protected readonly o: KvNodeOptions) {
    this.name = o.name;
    this.side = o.side;
    this.role = o.role;
    this.peer = o.peer;
    this.rand = mulberry32(o.seed ?? 7);
    this.requireLease = o.requireLease ?? false;
    this.now = o.nowMs ?? Date.now;
    this.lastPullOkMs = this.now();
    this.followerSeenMs = this.now();
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }
  get appliedSeq(): number { return this.seq; }
  setPeer(url: string): void { this.peer = url; }
  get(key: string): string | undefined { return this.data.get(key)?.value; }

  get isFailed(): boolean { return this.failed; }

  /** True while this node holds a lease for its current epoch (wall clock before leaseUntilMs). */
  leaseValid(): boolean { return this.leaseEpoch === this.epoch && this.now() < this.leaseUntilMs; }
  /** True when a write arriving now would be applied here (leader, not fenced, lease valid when required). */
  get writable(): boolean { return !this.failed && this.role === "leader" && !this.fenced && (!this.requireLease || this.leaseValid()); }

  protected cond(s: SignalName): number { return this.o.condition ? this.o.condition(s) : HEALTHY[s]; }

  /** The pair's replication lag in seconds, as this node sees it (0 when nothing is behind). */
  replicationLagS(): number {
    const now = this.now();
    if (this.role === "follower") {
      const silent = Math.max(0, now - this.lastPullOkMs - 2 * (this.o.pullIntervalMs ?? 50)) / 1000;
      const behind = this.firstUnappliedMs === null ? 0 : Math.max(0, now - this.firstUnappliedMs) / 1000;
      return Math.max(silent, behind);
    }
    const oldest = this.entries.find((e) => e.seq > this.followerAck);
    const behind = oldest ? Math.max(0, now - oldest.tMs) / 1000 : 0;
    const silent = Math.max(0, now - this.followerSeenMs - 2000) / 1000;
    return Math.max(behind, silent);
  }

  /** The admin token as the peer's /admin/* expects it (the demote, a forwarded action). */
  protected adminHeader(): Record<string, string> { return this.o.adminToken === undefined ? {} : { authorization: `Bearer ${this.o.adminToken}` }; }

  status() {
    return {
      name: this.name, side: this.side, role: this.role, fenced: this.fenced, seq: this.seq, replicationLagS: this.replicationLagS(), failed: this.failed,
      epoch: this.epoch, requireLease: this.requireLease, leaseUntilMs: this.leaseEpoch === this.epoch ? this.leaseUntilMs : 0, leaseValid: this.leaseValid(), writable: this.writable,
    };
  }

  // ------------------------------------------------------------------ epoch

  /** An admin action carrying an epoch lower than this node's changes nothing: 409 naming both. */
  protected checkActionEpoch(action: string, epoch: number | undefined): void {
    if (epoch !== undefined && epoch < this.epoch) throw new EpochError(409, `${action} at epoch ${epoch} refused: ${this.name} is at epoch ${this.epoch}`);
  }

  /** Takes a newer epoch (a lease held at the old one is void); never goes back. */
  protected adoptEpoch(e: number): void {
    if (e <= this.epoch) return;
    this.epoch = e;
    this.leaseUntilMs = 0;
  }

  /** A request showed a newer epoch than ours: adopt it, and a leader steps down (it was superseded). */
  protected observeEpoch(e: number, what: string): void {
    if (!Number.isInteger(e) || e <= this.epoch) return;
    const was = this.epoch;
    this.adoptEpoch(e);
    if (this.role === "leader") {
      this.o.log.warn({ node: this.name, epoch: was, newer: e, via: what }, "superseded by a newer epoch: stepping down");
      this.becomeFollower();
    }
  }

  // ------------------------------------------------------------------ actions (idempotent)

  /** Runs an action on this node; for `lease`, returns whether the lease was extended (false when a newer epoch was only adopted). */
  protected async act(action: ActionName, epoch?: number, expiresAtMs?: number): Promise<boolean> {
    if (action === "fence") { this.fenced = true; return true; }
    if (action === "unfence") { this.fenced = false; this.releaseHeldWrites(); return true; }
    if (action === "lease") {
      if (this.role !== "leader") throw new EpochError(409, `lease refused: ${this.name} is not the leader (a ${this.role} at epoch ${this.epoch})`);
      const e = epoch!;
      if (e > this.epoch) { this.adoptEpoch(e); this.o.log.info({ node: this.name, epoch: e }, "lease at a newer epoch: epoch adopted, lease not extended until a renewal at this epoch"); return false; }
      this.leaseUntilMs = this.leaseEpoch === this.epoch ? Math.max(this.leaseUntilMs, expiresAtMs!) : expiresAtMs!;
      this.leaseEpoch = this.epoch;
      return true;
    }
    if (this.role === "leader") {
      // Already the leader (a re-run of the action): a newer epoch is adopted and needs a new lease.
      if (epoch !== undefined) this.adoptEpoch(epoch);
      this.fenced = false;
      return true;
    }
    // Promotion: one last pull without the injected delay, so what the (fenced) leader acknowledged
    // is here before this node takes writes; then the old leader follows this node.
    clearTimeout(this.pullTimer);
    // The catch-up pull runs at the old epoch, so the old (fenced) leader still serves it.
    await this.pullOnce(true).catch((e: Error) => this.o.log.warn({ node: this.name, error: e.message }, "final catch-up before promotion failed; promoting with what was shipped"));
    this.checkActionEpoch("promote", epoch);
    if ((this.role as Role) === "leader") return true; // a concurrent promote finished first
    this.adoptEpoch(epoch ?? this.epoch + 1);
    // A promote may carry the new leader's first lease (expiresAtMs); without one it takes writes
    // (when leases are required) once the controller's first lease arrives.
    this.leaseUntilMs = expiresAtMs ?? 0;
    this.leaseEpoch = this.epoch;
    this.role = "leader";
    this.fenced = false;
    this.followerAck = this.seq;
    this.followerSeenMs = this.now();
    this.firstUnappliedMs = null;
    this.o.log.info({ node: this.name, seq: this.seq, epoch: this.epoch }, "promoted to leader");
    if (this.peer && !(await this.demotePeer())) {
      this.o.log.warn({ node: this.name }, "could not demote the old leader (it is down or stopped?); retrying every second in the background");
      this.retryDemote(this.epoch, 120);
    }
    return true;
  }

  /** Tells the peer (the old leader) to follow this node at this node's epoch; true when it answered 2xx. */
  private async demotePeer(): Promise<boolean> {
    const r = await fetch(`${this.peer}/admin/demote`, { method: "POST", headers: { "content-type": "application/json", ...this.adminHeader() }, body: JSON.stringify({ leader: this.url, epoch: this.epoch }), signal: AbortSignal.timeout(5000) })
      .catch(() => null);
    return r !== null && r.ok;
  }

  /** A stopped old leader learns about the new epoch when it wakes (its lease already refuses writes). */
  private retryDemote(epoch: number, left: number): void {
    clearTimeout(this.demoteTimer);
    if (left <= 0) return;
    this.demoteTimer = setTimeout(() => {
      if (this.failed || this.role !== "leader" || this.epoch !== epoch) return;
      void this.demotePeer().then((ok) => { if (!ok) this.retryDemote(epoch, left - 1); else this.o.log.info({ node: this.name }, "the old leader follows this node now"); });
    }, 1000);
    this.demoteTimer.unref();
  }

  private releaseHeldWrites(): void {
    for (const w of this.fenceWaiters.splice(0)) w();
  }

  protected demote(leader: string): void {
    if (this.role === "follower") return;
    this.peer = leader;
    this.becomeFollower();
    this.o.log.info({ node: this.name, leader, seq: this.seq, epoch: this.epoch }, "now following the new leader");
  }

  private becomeFollower(): void {
    this.role = "follower";
    this.fenced = false;
    this.leaseUntilMs = 0;
    this.lastPullOkMs = this.now();
    this.releaseHeldWrites();
    this.schedulePull();
  }

  // ------------------------------------------------------------------ log shipping (follower)

  protected schedulePull(): void {
    clearTimeout(this.pullTimer);
    if (this.failed || this.role !== "follower") return;
    this.pullTimer = setTimeout(() => {
      void this.pullOnce(false).catch(() => undefined).finally(() => this.schedulePull());
    }, this.o.pullIntervalMs ?? 50);
  }

  private async pullOnce(ignoreDelay: boolean): Promise<void> {
    // The promotion's catch-up (ignoreDelay) must not be skipped because a regular pull is in flight:
    // that pull may have asked before the last acknowledged writes (a promote then missed them).
    while (ignoreDelay && this.pulling) await this.pullEnded;
    if (!this.peer || this.pulling) return;
    this.pulling = true;
    let ended!: () => void;
    this.pullEnded = new Promise((r) => { ended = r; });
    try {
      for (;;) {
        const r = await fetch(`${this.peer}/replication/log?after=${this.seq}`, { headers: { [EPOCH_HEADER]: String(this.epoch) }, signal: AbortSignal.timeout(2000) });
        if (!r.ok) throw new Error(`pull from ${this.peer}: ${r.status}`);
        const body = (await r.json()) as { head: number; epoch?: number; entries: Entry[] };
        // Entries from a leader of an older epoch are a superseded leader's: never applied.
        if (typeof body.epoch === "number" && body.epoch < this.epoch) throw new Error(`pull from ${this.peer}: its epoch ${body.epoch} is older than ours (${this.epoch}); entries not applied`);
        if (typeof body.epoch === "number") this.observeEpoch(body.epoch, "the leader's log");
        this.lastPullOkMs = this.now();
        this.leaderHead = body.head;
        const delayMs = ignoreDelay ? 0 : this.cond("replication_lag_s") * 1000;
        const cutoff = this.now() - delayMs;
        let applied = 0;
        this.firstUnappliedMs = null;
        for (const e of body.entries) {
          if (e.seq !== this.seq + 1) break; // in order only
          if (e.tMs > cutoff) { this.firstUnappliedMs = e.tMs; break; }
          this.data.set(e.key, { value: e.value, seq: e.seq });
          this.entries.push(e);
          this.seq = e.seq;
          applied++;
        }
        this.trimLog();
        if (!ignoreDelay || this.seq >= this.leaderHead || applied === 0) return;
      }
    } finally { this.pulling = false; ended(); }
  }

  protected trimLog(): void {
    // The log keeps enough for the follower (and for a promoted follower's own follower) to catch up.
    const keep = Math.min(this.followerAck, this.seq - 50_000);
    if (this.entries.length > 60_000 && keep > 0) {
      const i = this.entries.findIndex((e) => e.seq > keep);
      if (i > 0) this.entries.splice(0, i);
    }
  }
}
