// The replicated sample component: a key-value service over HTTP, one node per zone. The leader
// takes writes and appends them to a log; the follower pulls the log (asynchronous log shipping) and
// applies it in order. Each node exports Prometheus metrics, including the pair's replication lag,
// and obeys the migration engine's actions (fence, unfence, promote) posted to /admin/actions by the
// controller's webhook. Conditions (latency, errors, resource gauges, extra shipping delay) come from
// a function of the moment, so the demo's fault injector can make a node degrade, and fail() makes it
// disappear the way a crashed process does.
//
//   GET  /kv/KEY            200 {"key","value","seq"} | 404
//   PUT  /kv/KEY   (body)   200 {"seq"} on the leader; a follower forwards it to its leader. A
//                           fenced leader holds the write until the switchover ends, then applies
//                           or forwards it. 503 when no leader can take it.
//   GET  /replication/log?after=SEQ   entries after SEQ (the follower's pull; SEQ is also its ack)
//   GET  /metrics           Prometheus text
//   GET  /status            JSON
//   POST /admin/actions     {"component","action":"fence"|"unfence"|"promote"|"lease","side":"primary"|"shadow",
//                            "epoch"?: E, "expiresAtMs"?: T, "term"?: N}   (see "Leader lease and epoch" below;
//                            term: an HA controller's; one below the highest seen answers 409)
//   POST /admin/demote      {"leader": URL, "epoch"?: E}   (sent by a newly promoted leader to the old one)
//   /admin/* requires "authorization: Bearer <adminToken>" when the node has one (world/sample/main.ts: always);
//   401 otherwise. The controller's webhook sends it (actions.headers); a node sends it to its peer.
//
// Leader lease and epoch (opt-in with requireLease; without it writes are never refused for the
// lease, and the epoch is only carried and reported):
//   - Every node has an epoch (an integer, 1 at start, kept in memory, in /status and as the metric
//     kv_leader_epoch). A promotion starts a new epoch: `promote` with "epoch": E makes the new leader
//     adopt E (the controller sends the old epoch + 1); a promote without an epoch takes its own + 1.
//     The new leader then demotes the old one (/admin/demote with its epoch) and, when that gets no
//     answer (the old leader is stopped or cut off), retries every second for two minutes.
//   - With requireLease, the leader applies a write only while now < leaseUntilMs, checked when the
//     write is APPLIED (after any hold or injected latency), so writes that queued in the socket while
//     the process was stopped (SIGSTOP, a long GC pause, a partition) are refused when it wakes: 503
//     {"error":"leader lease expired ..."}. A new leader has no lease: it takes writes once the
//     controller's first `lease` action (sent right after the promote) arrives.
//   - `lease` {"epoch": E, "expiresAtMs": T}: T is an ABSOLUTE wall-clock deadline (Unix ms) set by the
//     controller, not a duration, so a renewal that is delivered late (queued while the node was
//     stopped, delayed in the network) can never extend the lease beyond what the controller granted.
//     Accepted only by the leader and only when E >= its epoch. With E equal to its epoch the lease
//     becomes max(current, T); with E above it the node adopts E and its old lease is void, but the
//     lease is NOT extended (the next renewal at E is): a lease is only ever granted at the epoch the
//     node already had. A lower E answers 409 naming both epochs; a follower answers 409.
//     Assumption: the controller's and the nodes' wall clocks differ by at most a bounded skew S, and
//     the controller promotes the other side only once its own clock has passed T + S for the last T
//     it granted. Then the old leader's clock has passed T too, and it refuses writes before the new
//     leader takes any. Without that bound (a clock stepped backwards) leases give no guarantee.
//   - Every admin action (fence, unfence, promote, lease, demote) carrying an epoch lower than the
//     node's answers 409 and changes nothing. fence and unfence only check the epoch; promote, lease
//     and demote adopt a higher one. /status shows epoch, leaseUntilMs, leaseValid and writable
//     (leader, not fenced, lease valid when required).
//   - Epoch on the wire: header x-shadowmesh-epoch. A follower sends its epoch with the writes it
//     forwards and with its replication pulls; every response carries the node's epoch in the same
//     header. A node that sees a request with a HIGHER epoch than its own adopts it, and if it was the
//     leader it steps down (it has been superseded: someone was promoted past it) and follows its
//     peer. A write (client or forwarded) carrying an epoch LOWER than the node's is refused with 409.
//     A leader serves log entries to a follower of a lower epoch (it is just behind: it adopts the
//     leader's epoch from the answer) but not to one of a higher epoch (it steps down and answers 409);
//     a follower never applies entries from a leader whose epoch is lower than its own.
//   Residual windows: a process stopped between the lease check and sending the acknowledgement (a
//   few microseconds of synchronous code) can still acknowledge a write that the new leader does not
//   have; and a superseded leader's unreplicated entries are not reconciled when it rejoins as a
//   follower (no log truncation): leases prevent two writable sides, not every divergence.
import http from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import { mulberry32, normal } from "../../host/random.js";
import { HEALTHY, type SignalName } from "./conditions.js";

export type Role = "leader" | "follower";
export type SideName = "primary" | "shadow";

export interface KvNodeOptions {
  name: string;
  side: SideName;
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

interface Entry { seq: number; key: string; value: string; tMs: number }

const MAX_PULL = 2000;
/** How long a write waits on a fenced leader for the switchover to finish. */
const FENCE_HOLD_MS = 5000;
/** The header that carries the sender's epoch on writes, pulls and answers. */
export const EPOCH_HEADER = "x-shadowmesh-epoch";

type ActionName = "fence" | "unfence" | "promote" | "lease";
const ACTIONS: readonly ActionName[] = ["fence", "unfence", "promote", "lease"];

/** A request body or header whose epoch is refused: status and error. */
class EpochError extends Error { constructor(readonly status: number, message: string) { super(message); } }

export class KvNode {
  readonly name: string;
  readonly side: SideName;
  role: Role;
  fenced = false;
  /** The latest leadership epoch this node knows of (1 at start). */
  epoch = 1;
  /** The highest HA controller term an admin action carried (0: none): lower ones are refused. */
  controllerTerm = 0;
  /** Wall-clock ms until which this node may take writes as leader at `leaseEpoch` (when leases are required). */
  leaseUntilMs = 0;
  private leaseEpoch = 0;
  readonly requireLease: boolean;
  private readonly data = new Map<string, { value: string; seq: number }>();
  private readonly entries: Entry[] = [];
  /** Highest seq applied here (leader: appended). */
  private seq = 0;
  private peer: string | undefined;
  private server?: http.Server;
  private pullTimer?: NodeJS.Timeout;
  private pulling = false;
  /** Settles when the pull in flight ends (the promotion's catch-up waits for it, then pulls again). */
  private pullEnded: Promise<void> = Promise.resolve();
  private failed = false;
  private readonly rand: () => number;
  private readonly now: () => number;
  // Follower's view of the leader.
  private leaderHead = 0;
  private firstUnappliedMs: number | null = null;
  private lastPullOkMs = 0;
  // Leader's view of the follower.
  private followerAck = 0;
  private followerSeenMs = 0;
  readonly counters = { reads: 0, writes: 0, refusedWrites: 0, heldWrites: 0, forwardedWrites: 0, injectedErrors: 0 };
  private fenceWaiters: (() => void)[] = [];
  private demoteTimer?: NodeJS.Timeout;
  port = 0;

  constructor(private readonly o: KvNodeOptions) {
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

  async start(port = 0, host = "127.0.0.1"): Promise<number> {
    const server = http.createServer({ keepAlive: true }, (req, res) => { void this.handle(req, res); });
    server.keepAliveTimeout = 60_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(port, host, () => resolve()); });
    this.port = (server.address() as { port: number }).port;
    this.schedulePull();
    return this.port;
  }

  /** A hard failure: the process is gone (connections reset, nothing answers, nothing ships). */
  fail(): void {
    if (this.failed) return;
    this.failed = true;
    clearTimeout(this.pullTimer);
    clearTimeout(this.demoteTimer);
    this.server?.close();
    this.server?.closeAllConnections();
    this.o.log.warn({ node: this.name }, "hard failure injected: the node is down");
  }

  get isFailed(): boolean { return this.failed; }

  async stop(): Promise<void> {
    clearTimeout(this.pullTimer);
    clearTimeout(this.demoteTimer);
    const s = this.server;
    if (!s || this.failed) return;
    this.failed = true;
    await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
  }

  /** True while this node holds a lease for its current epoch (wall clock before leaseUntilMs). */
  leaseValid(): boolean { return this.leaseEpoch === this.epoch && this.now() < this.leaseUntilMs; }
  /** True when a write arriving now would be applied here (leader, not fenced, lease valid when required). */
  get writable(): boolean { return !this.failed && this.role === "leader" && !this.fenced && (!this.requireLease || this.leaseValid()); }

  private cond(s: SignalName): number { return this.o.condition ? this.o.condition(s) : HEALTHY[s]; }

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

  // ------------------------------------------------------------------ HTTP

  /** The admin token, compared in constant time (a token of the wrong length fails without a timing hint). */
  private adminAuthorized(req: http.IncomingMessage): boolean {
    const want = this.o.adminToken;
    if (want === undefined) return true;
    const got = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
    const a = createHash("sha256").update(got).digest(), b = createHash("sha256").update(want).digest();
    return timingSafeEqual(a, b);
  }

  private adminHeader(): Record<string, string> { return this.o.adminToken === undefined ? {} : { authorization: `Bearer ${this.o.adminToken}` }; }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const json = (status: number, body: unknown) => {
      const b = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(b), [EPOCH_HEADER]: String(this.epoch) });
      res.end(b);
    };
    try {
      if (url.pathname.startsWith("/kv/")) {
        const key = decodeURIComponent(url.pathname.slice(4));
        if (!key) return json(400, { error: "the key is empty: use /kv/KEY" });
        const body = req.method === "PUT" || req.method === "POST" ? await readBody(req) : "";
        // The fault injector's service time and error rate apply to the component's own API only.
        const latency = this.cond("latency_ms") * Math.exp(0.25 * normal(this.rand));
        if (latency > 0.5) await new Promise((r) => setTimeout(r, latency));
        if (this.rand() < this.cond("error_rate")) { this.counters.injectedErrors++; return json(500, { error: "internal error (injected)" }); }
        if (req.method === "GET" || req.method === "HEAD") {
          this.counters.reads++;
          const v = this.data.get(key);
          return v ? json(200, { key, value: v.value, seq: v.seq }) : json(404, { error: `no key ${key}` });
        }
        if (req.method === "PUT" || req.method === "POST") {
          // The sender's epoch: lower than ours is a stale view (refused); higher means someone was
          // promoted past this node (adopted; a leader steps down and the write goes to its peer).
          const reqEpoch = requestEpoch(req);
          const stale = () => reqEpoch !== undefined && reqEpoch < this.epoch;
          const staleAnswer = () => { this.counters.refusedWrites++; return json(409, { error: `the write carries epoch ${reqEpoch}, older than ${this.name}'s epoch ${this.epoch}`, epoch: this.epoch, requestEpoch: reqEpoch }); };
          if (stale()) return staleAnswer();
          if (reqEpoch !== undefined) this.observeEpoch(reqEpoch, "a write");
          let heldByFence = false;
          if (this.role === "leader" && this.fenced) {
            // A switchover pauses writes instead of failing them: hold the write until the fence
            // lifts (it is applied here) or this node is demoted (it goes to the new leader).
            heldByFence = true;
            this.counters.heldWrites++;
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, FENCE_HOLD_MS);
              this.fenceWaiters.push(() => { clearTimeout(t); resolve(); });
            });
          }
          if (this.role === "follower" && this.peer && !req.headers["x-forwarded-write"]) {
            // A follower forwards writes to its leader: writes still routed here while the proxies
            // learn the new write target (a promotion just happened) succeed instead of failing.
            this.counters.forwardedWrites++;
            const r = await fetch(`${this.peer}/kv/${encodeURIComponent(key)}`, { method: "PUT", body, headers: { "content-type": "text/plain", "x-forwarded-write": this.name, [EPOCH_HEADER]: String(this.epoch) }, signal: AbortSignal.timeout(5000) })
              .catch((e: Error) => ({ status: 503, headers: new Headers(), json: async () => ({ error: `${this.name} is a follower and its leader is unreachable: ${e.message}` }) }));
            this.observeEpoch(Number(r.headers.get(EPOCH_HEADER) ?? 0), "the leader's answer to a forwarded write");
            return json(r.status, await r.json());
          }
          if (this.role !== "leader") { this.counters.refusedWrites++; return json(503, { error: `${this.name} is a read-only follower` }); }
          if (this.fenced) { this.counters.refusedWrites++; return json(503, { error: `${this.name} is fenced: writes were held ${FENCE_HOLD_MS} ms and the switchover did not finish` }); }
          // Checked where the write is applied, after every wait: a write that queued while the
          // process was stopped sees the time it is applied at, not the time it arrived.
          if (stale()) return staleAnswer();
          if (this.requireLease && !this.leaseValid()) {
            this.counters.refusedWrites++;
            const why = this.leaseEpoch !== this.epoch ? `no lease granted at epoch ${this.epoch} yet` : `it ended at ${this.leaseUntilMs}, now ${this.now()}`;
            return json(503, { error: `leader lease expired on ${this.name} (epoch ${this.epoch}): ${why}`, epoch: this.epoch });
          }
          this.counters.writes++;
          const e: Entry = { seq: ++this.seq, key, value: body, tMs: this.now() };
          this.entries.push(e);
          this.data.set(key, { value: body, seq: e.seq });
          this.trimLog();
          return json(200, { seq: e.seq });
        }
        return json(405, { error: `method ${req.method} is not allowed on /kv/KEY (GET, HEAD, PUT, POST)` });
      }
      if (url.pathname === "/replication/log" && req.method === "GET") {
        const after = Number(url.searchParams.get("after") ?? "0");
        if (!Number.isInteger(after) || after < 0) return json(400, { error: "after: must be a non-negative integer" });
        const pe = requestEpoch(req);
        if (pe !== undefined && pe > this.epoch) {
          // A follower of a newer epoch: this node was superseded; it must not serve (or take) writes.
          const was = this.epoch;
          this.observeEpoch(pe, "a replication pull");
          return json(409, { error: `${this.name} was superseded: the puller is at epoch ${pe}, this node was at ${was}`, role: this.role, epoch: this.epoch });
        }
        if (this.role !== "leader") return json(409, { error: `${this.name} is not the leader`, role: this.role });
        this.followerAck = Math.max(this.followerAck, after);
        this.followerSeenMs = this.now();
        const start = this.entries.findIndex((e) => e.seq > after);
        const oldest = this.entries[0]?.seq ?? this.seq + 1;
        if (after + 1 < oldest && this.seq > after) return json(410, { error: `log entries after ${after} were trimmed; resync needed` });
        return json(200, { head: this.seq, epoch: this.epoch, entries: start < 0 ? [] : this.entries.slice(start, start + MAX_PULL) });
      }
      if (url.pathname === "/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        return void res.end(this.metrics());
      }
      if (url.pathname === "/status") return json(200, this.status());
      if (url.pathname.startsWith("/admin/") && !this.adminAuthorized(req)) {
        return json(401, { error: `${url.pathname}: requires "authorization: Bearer <the node's admin token>"` });
      }
      if (url.pathname === "/admin/actions" && req.method === "POST") {
        let a: { action?: string; side?: string; component?: string; epoch?: unknown; expiresAtMs?: unknown; term?: unknown };
        try { a = JSON.parse(await readBody(req)); } catch { return json(400, { error: "body: expected JSON {component, action, side}" }); }
        if (typeof a !== "object" || a === null) return json(400, { error: "body: expected JSON {component, action, side}" });
        if (a.side !== "primary" && a.side !== "shadow") return json(400, { error: `side: must be "primary" or "shadow", got ${JSON.stringify(a.side)}` });
        if (!ACTIONS.includes(a.action as ActionName)) return json(400, { error: `action: must be fence, unfence, promote or lease, got ${JSON.stringify(a.action)}` });
        if (a.epoch !== undefined && !isEpoch(a.epoch)) return json(400, { error: `epoch: must be a positive integer, got ${JSON.stringify(a.epoch)}` });
        if (a.action === "lease") {
          if (a.epoch === undefined) return json(400, { error: "lease: epoch is required" });
          if (typeof a.expiresAtMs !== "number" || !Number.isFinite(a.expiresAtMs)) return json(400, { error: `lease: expiresAtMs must be an absolute wall-clock time in ms, got ${JSON.stringify(a.expiresAtMs)}` });
        }
        if (a.side !== this.side) {
          if (req.headers["x-forwarded-action"]) return json(400, { error: `side ${a.side} is not this node (${this.side})` });
          if (!this.peer) return json(503, { error: `no peer to forward ${a.action} ${a.side} to` });
          const r = await fetch(`${this.peer}/admin/actions`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-action": "1", ...this.adminHeader() }, body: JSON.stringify(a), signal: AbortSignal.timeout(10_000) });
          return json(r.status, await r.json());
        }
        if (a.term !== undefined && !isEpoch(a.term)) return json(400, { error: `term: must be a positive integer, got ${JSON.stringify(a.term)}` });
        // HA controllers: an action from a term below the highest seen comes from a deposed leader.
        if (a.term !== undefined) {
          if ((a.term as number) < this.controllerTerm) return json(409, { error: `${a.action} from controller term ${a.term} refused: ${this.name} has seen term ${this.controllerTerm} (a deposed leader?)` });
          this.controllerTerm = a.term as number;
        }
        const epoch = a.epoch as number | undefined;
        this.checkActionEpoch(a.action!, epoch);
        const granted = await this.act(a.action as ActionName, epoch, a.expiresAtMs as number | undefined);
        return json(200, a.action === "lease" ? { ...this.status(), leaseGranted: granted } : this.status());
      }
      if (url.pathname === "/admin/demote" && req.method === "POST") {
        let leader: unknown, epoch: unknown;
        try { ({ leader, epoch } = JSON.parse(await readBody(req)) as { leader?: unknown; epoch?: unknown }); } catch { return json(400, { error: "body: expected JSON {leader}" }); }
        if (typeof leader !== "string" || !/^https?:\/\//.test(leader)) return json(400, { error: `leader: the new leader's URL is required, got ${JSON.stringify(leader)}` });
        if (epoch !== undefined && !isEpoch(epoch)) return json(400, { error: `epoch: must be a positive integer, got ${JSON.stringify(epoch)}` });
        this.checkActionEpoch("demote", epoch as number | undefined);
        if (epoch !== undefined) this.adoptEpoch(epoch as number);
        this.demote(leader);
        return json(200, this.status());
      }
      json(404, { error: `no route ${req.method} ${url.pathname}` });
    } catch (e) {
      if (e instanceof EpochError) { if (!res.headersSent) json(e.status, { error: e.message, epoch: this.epoch }); return; }
      if (!res.headersSent) json(500, { error: (e as Error).message });
    }
  }

  status() {
    return {
      name: this.name, side: this.side, role: this.role, fenced: this.fenced, seq: this.seq, replicationLagS: this.replicationLagS(), failed: this.failed,
      epoch: this.epoch, requireLease: this.requireLease, leaseUntilMs: this.leaseEpoch === this.epoch ? this.leaseUntilMs : 0, leaseValid: this.leaseValid(), writable: this.writable,
    };
  }

  private metrics(): string {
    return sampleMetricsText({
      lagS: this.replicationLagS(), leader: this.role === "leader", fenced: this.fenced,
      cpu: this.cond("cpu"), memory: this.cond("memory"), diskIo: this.cond("disk_io"), queueDepth: this.cond("queue_depth"),
      reads: this.counters.reads, writes: this.counters.writes,
    }, this.rand) + epochMetricsText(this.epoch, this.leaseValid());
  }

  // ------------------------------------------------------------------ epoch

  /** An admin action carrying an epoch lower than this node's changes nothing: 409 naming both. */
  private checkActionEpoch(action: string, epoch: number | undefined): void {
    if (epoch !== undefined && epoch < this.epoch) throw new EpochError(409, `${action} at epoch ${epoch} refused: ${this.name} is at epoch ${this.epoch}`);
  }

  /** Takes a newer epoch (a lease held at the old one is void); never goes back. */
  private adoptEpoch(e: number): void {
    if (e <= this.epoch) return;
    this.epoch = e;
    this.leaseUntilMs = 0;
  }

  /** A request showed a newer epoch than ours: adopt it, and a leader steps down (it was superseded). */
  private observeEpoch(e: number, what: string): void {
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
  private async act(action: ActionName, epoch?: number, expiresAtMs?: number): Promise<boolean> {
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

  private demote(leader: string): void {
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

  private schedulePull(): void {
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

  private trimLog(): void {
    // The log keeps enough for the follower (and for a promoted follower's own follower) to catch up.
    const keep = Math.min(this.followerAck, this.seq - 50_000);
    if (this.entries.length > 60_000 && keep > 0) {
      const i = this.entries.findIndex((e) => e.seq > keep);
      if (i > 0) this.entries.splice(0, i);
    }
  }
}

function isEpoch(x: unknown): x is number { return typeof x === "number" && Number.isInteger(x) && x >= 1; }

/** The x-shadowmesh-epoch header of a request, if any (400 when it is not a positive integer). */
function requestEpoch(req: http.IncomingMessage): number | undefined {
  const h = req.headers[EPOCH_HEADER];
  if (h === undefined) return undefined;
  const n = Number(Array.isArray(h) ? h[0] : h);
  if (!isEpoch(n)) throw new EpochError(400, `${EPOCH_HEADER}: must be a positive integer, got ${JSON.stringify(h)}`);
  return n;
}

/** The node's epoch and lease as Prometheus gauges (kv_leader_epoch, kv_leader_lease_valid). */
export function epochMetricsText(epoch: number, leaseValid: boolean): string {
  return `# HELP kv_leader_epoch The latest leadership epoch this node knows of\n# TYPE kv_leader_epoch gauge\nkv_leader_epoch ${epoch}\n`
    + `# HELP kv_leader_lease_valid 1 while this node holds a valid leader lease for its epoch\n# TYPE kv_leader_lease_valid gauge\nkv_leader_lease_valid ${leaseValid ? 1 : 0}\n`;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => { size += c.length; if (size > 1 << 20) { reject(new Error("body over 1 MiB")); req.destroy(); } else chunks.push(c); });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export interface SampleGauges { lagS: number; leader: boolean; fenced: boolean; cpu: number; memory: number; diskIo: number; queueDepth: number; reads: number; writes: number }

/** The node's /metrics page (Prometheus text), with the measurement noise a real exporter shows; shared with the incident benchmark's simulated pair. */
export function sampleMetricsText(v: SampleGauges, rand: () => number): string {
  const g = (name: string, help: string, x: number, labels = "") => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name}${labels} ${x}\n`;
  const jitter = () => 1 + 0.03 * normal(rand);
  return [
    g("sample_replication_lag_seconds", "How far the pair's follower is behind the leader", v.lagS),
    g("sample_leader", "1 when this node takes writes", v.leader ? 1 : 0),
    g("sample_fenced", "1 while writes are fenced", v.fenced ? 1 : 0),
    g("sample_cpu_utilization", "CPU busy fraction", Math.max(0, v.cpu * jitter())),
    g("sample_memory_utilization", "Memory used fraction", Math.min(1, Math.max(0, v.memory * (1 + 0.005 * normal(rand))))),
    g("sample_disk_io_utilization", "Disk busy fraction", Math.max(0, v.diskIo * jitter())),
    g("sample_queue_depth", "Requests waiting", Math.max(0, Math.round(v.queueDepth * jitter()))),
    `# HELP sample_requests_total Requests served\n# TYPE sample_requests_total counter\nsample_requests_total{op="read"} ${v.reads}\nsample_requests_total{op="write"} ${v.writes}\n`,
  ].join("");
}
