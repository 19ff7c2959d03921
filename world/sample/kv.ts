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
//
// This file serves the node over HTTP (the routes above, the write path, the admin endpoints); the
// node's state, the actions' effects and log shipping are in kv-replica.ts, the epoch header and body
// parsing in kv-http.ts, the Prometheus text in kv-metrics.ts.
import http from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import { normal } from "../../host/random.js";
import { EPOCH_HEADER, EpochError, isEpoch, readBody, requestEpoch } from "./kv-http.js";
import { epochMetricsText, sampleMetricsText } from "./kv-metrics.js";
import { ACTIONS, KvReplica, type ActionName, type Entry } from "./kv-replica.js";

const MAX_PULL = 2000;
/** How long a write waits on a fenced leader for the switchover to finish. */
const FENCE_HOLD_MS = 5000;

/** A node of the pair: its state machine (KvReplica) served over HTTP. */
export class KvNode extends KvReplica {
  private server?: http.Server;

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

  async stop(): Promise<void> {
    clearTimeout(this.pullTimer);
    clearTimeout(this.demoteTimer);
    const s = this.server;
    if (!s || this.failed) return;
    this.failed = true;
    await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
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

  private metrics(): string {
    return sampleMetricsText({
      lagS: this.replicationLagS(), leader: this.role === "leader", fenced: this.fenced,
      cpu: this.cond("cpu"), memory: this.cond("memory"), diskIo: this.cond("disk_io"), queueDepth: this.cond("queue_depth"),
      reads: this.counters.reads, writes: this.counters.writes,
    }, this.rand) + epochMetricsText(this.epoch, this.leaseValid());
  }
}
