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
//   POST /admin/actions     {"component","action":"fence"|"unfence"|"promote","side":"primary"|"shadow"}
import http from "node:http";
import type { Logger } from "pino";
import { mulberry32, normal } from "../host/random.js";
import { HEALTHY, type SignalName } from "../demo/scenario.js";

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
  log: Logger;
}

interface Entry { seq: number; key: string; value: string; tMs: number }

const MAX_PULL = 2000;
/** How long a write waits on a fenced leader for the switchover to finish. */
const FENCE_HOLD_MS = 5000;

export class KvNode {
  readonly name: string;
  readonly side: SideName;
  role: Role;
  fenced = false;
  private readonly data = new Map<string, { value: string; seq: number }>();
  private readonly entries: Entry[] = [];
  /** Highest seq applied here (leader: appended). */
  private seq = 0;
  private peer: string | undefined;
  private server?: http.Server;
  private pullTimer?: NodeJS.Timeout;
  private pulling = false;
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
  port = 0;

  constructor(private readonly o: KvNodeOptions) {
    this.name = o.name;
    this.side = o.side;
    this.role = o.role;
    this.peer = o.peer;
    this.rand = mulberry32(o.seed ?? 7);
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
    this.server?.close();
    this.server?.closeAllConnections();
    this.o.log.warn({ node: this.name }, "hard failure injected: the node is down");
  }

  get isFailed(): boolean { return this.failed; }

  async stop(): Promise<void> {
    clearTimeout(this.pullTimer);
    const s = this.server;
    if (!s || this.failed) return;
    this.failed = true;
    await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
  }

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

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const json = (status: number, body: unknown) => {
      const b = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(b) });
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
            const r = await fetch(`${this.peer}/kv/${encodeURIComponent(key)}`, { method: "PUT", body, headers: { "content-type": "text/plain", "x-forwarded-write": this.name }, signal: AbortSignal.timeout(5000) })
              .catch((e: Error) => ({ status: 503, json: async () => ({ error: `${this.name} is a follower and its leader is unreachable: ${e.message}` }) }));
            return json(r.status, await r.json());
          }
          if (this.role !== "leader") { this.counters.refusedWrites++; return json(503, { error: `${this.name} is a read-only follower` }); }
          if (this.fenced) { this.counters.refusedWrites++; return json(503, { error: `${this.name} is fenced: writes were held ${FENCE_HOLD_MS} ms and the switchover did not finish` }); }
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
        if (this.role !== "leader") return json(409, { error: `${this.name} is not the leader`, role: this.role });
        this.followerAck = Math.max(this.followerAck, after);
        this.followerSeenMs = this.now();
        const start = this.entries.findIndex((e) => e.seq > after);
        const oldest = this.entries[0]?.seq ?? this.seq + 1;
        if (after + 1 < oldest && this.seq > after) return json(410, { error: `log entries after ${after} were trimmed; resync needed` });
        return json(200, { head: this.seq, entries: start < 0 ? [] : this.entries.slice(start, start + MAX_PULL) });
      }
      if (url.pathname === "/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        return void res.end(this.metrics());
      }
      if (url.pathname === "/status") return json(200, this.status());
      if (url.pathname === "/admin/actions" && req.method === "POST") {
        let a: { action?: string; side?: string; component?: string };
        try { a = JSON.parse(await readBody(req)); } catch { return json(400, { error: "body: expected JSON {component, action, side}" }); }
        if (a.side !== "primary" && a.side !== "shadow") return json(400, { error: `side: must be "primary" or "shadow", got ${JSON.stringify(a.side)}` });
        if (!["fence", "unfence", "promote"].includes(a.action ?? "")) return json(400, { error: `action: must be fence, unfence or promote, got ${JSON.stringify(a.action)}` });
        if (a.side !== this.side) {
          if (req.headers["x-forwarded-action"]) return json(400, { error: `side ${a.side} is not this node (${this.side})` });
          if (!this.peer) return json(503, { error: `no peer to forward ${a.action} ${a.side} to` });
          const r = await fetch(`${this.peer}/admin/actions`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-action": "1" }, body: JSON.stringify(a), signal: AbortSignal.timeout(10_000) });
          return json(r.status, await r.json());
        }
        await this.act(a.action as "fence" | "unfence" | "promote");
        return json(200, this.status());
      }
      if (url.pathname === "/admin/demote" && req.method === "POST") {
        let leader: unknown;
        try { ({ leader } = JSON.parse(await readBody(req)) as { leader?: unknown }); } catch { return json(400, { error: "body: expected JSON {leader}" }); }
        if (typeof leader !== "string" || !/^https?:\/\//.test(leader)) return json(400, { error: `leader: the new leader's URL is required, got ${JSON.stringify(leader)}` });
        this.demote(leader);
        return json(200, this.status());
      }
      json(404, { error: `no route ${req.method} ${url.pathname}` });
    } catch (e) {
      if (!res.headersSent) json(500, { error: (e as Error).message });
    }
  }

  status() {
    return { name: this.name, side: this.side, role: this.role, fenced: this.fenced, seq: this.seq, replicationLagS: this.replicationLagS(), failed: this.failed };
  }

  private metrics(): string {
    return sampleMetricsText({
      lagS: this.replicationLagS(), leader: this.role === "leader", fenced: this.fenced,
      cpu: this.cond("cpu"), memory: this.cond("memory"), diskIo: this.cond("disk_io"), queueDepth: this.cond("queue_depth"),
      reads: this.counters.reads, writes: this.counters.writes,
    }, this.rand);
  }

  // ------------------------------------------------------------------ actions (idempotent)

  private async act(action: "fence" | "unfence" | "promote"): Promise<void> {
    if (action === "fence") { this.fenced = true; return; }
    if (action === "unfence") { this.fenced = false; this.releaseHeldWrites(); return; }
    if (this.role === "leader") { this.fenced = false; return; }
    // Promotion: one last pull without the injected delay, so what the (fenced) leader acknowledged
    // is here before this node takes writes; then the old leader follows this node.
    clearTimeout(this.pullTimer);
    await this.pullOnce(true).catch((e: Error) => this.o.log.warn({ node: this.name, error: e.message }, "final catch-up before promotion failed; promoting with what was shipped"));
    this.role = "leader";
    this.fenced = false;
    this.followerAck = this.seq;
    this.followerSeenMs = this.now();
    this.firstUnappliedMs = null;
    this.o.log.info({ node: this.name, seq: this.seq }, "promoted to leader");
    if (this.peer) {
      await fetch(`${this.peer}/admin/demote`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ leader: this.url }), signal: AbortSignal.timeout(5000) })
        .catch((e: Error) => this.o.log.warn({ node: this.name, error: e.message }, "could not demote the old leader (it is down?)"));
    }
  }

  private releaseHeldWrites(): void {
    for (const w of this.fenceWaiters.splice(0)) w();
  }

  private demote(leader: string): void {
    if (this.role === "follower") return;
    this.role = "follower";
    this.fenced = false;
    this.peer = leader;
    this.lastPullOkMs = this.now();
    this.o.log.info({ node: this.name, leader, seq: this.seq }, "now following the new leader");
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
    if (!this.peer || this.pulling) return;
    this.pulling = true;
    try {
      for (;;) {
        const r = await fetch(`${this.peer}/replication/log?after=${this.seq}`, { signal: AbortSignal.timeout(2000) });
        if (!r.ok) throw new Error(`pull from ${this.peer}: ${r.status}`);
        const body = (await r.json()) as { head: number; entries: Entry[] };
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
    } finally { this.pulling = false; }
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
