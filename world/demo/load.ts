// The demo's load generator: an open-loop client (requests leave on schedule whether or not earlier
// ones came back, as real users do) sending reads and writes to the data plane over keep-alive
// connections. What a request is comes from a workload (the sample KV's by default; the orders API's
// in world/sample/orders-load.ts). Writes remember what was acknowledged, so a run can check that no
// acknowledged write was lost; reads ask for acknowledged things (a 404 there is a stale read, not a
// failure). A failed request is a 5xx, a reset or no answer within the timeout.
import http from "node:http";
import { mulberry32 } from "../../host/random.js";

export interface LoadOptions {
  /** The data plane listener, "host:port". */
  target: string;
  /** :authority the requests carry (the component's hostname). */
  host: string;
  rateRps: number;
  readShare: number;
  /** Distinct clients (the sticky key x-user). */
  keys: number;
  seed: number;
  timeoutMs?: number;
  /** What the requests are (default the sample KV's). */
  workload?: Workload;
}

/** One request of a workload, and how its answer is recorded (read: a 404 is a stale read). */
export interface WorkRequest { read: boolean; method: string; path: string; body?: string; contentType?: string; key: string }
/**
 * The shape of a workload's requests: `next` picks one (a read of something acknowledged, or a
 * write), `acknowledged` records a write the component accepted (with its answer's body).
 */
export interface Workload {
  next(read: boolean, user: string, rand: () => number): WorkRequest;
  /** Whether a read can be made yet (something was acknowledged). */
  canRead(): boolean;
  acknowledge(r: WorkRequest, status: number, body: string): void;
  /** Every acknowledged write: key -> the value it holds. */
  acknowledged(): ReadonlyMap<string, string>;
}

/** The sample KV: PUT /kv/wN (fresh keys), GET /kv/KEY of acknowledged keys. */
export class KvWorkload implements Workload {
  private readonly acked = new Map<string, string>();
  private readonly keys: string[] = [];
  private seq = 0;
  canRead(): boolean { return this.keys.length > 0; }
  next(read: boolean, _user: string, rand: () => number): WorkRequest {
    if (read) { const key = this.keys[Math.floor(rand() * this.keys.length)]!; return { read, method: "GET", path: `/kv/${key}`, key }; }
    const key = `w${++this.seq}`;
    return { read, method: "PUT", path: `/kv/${key}`, key, body: `value-${this.seq}-${Math.floor(rand() * 1e9)}`, contentType: "text/plain" };
  }
  acknowledge(r: WorkRequest, status: number): void { if (!r.read && status === 200) { this.acked.set(r.key, r.body!); this.keys.push(r.key); } }
  acknowledged(): ReadonlyMap<string, string> { return this.acked; }
}

/** failures: by cause ("503", "timeout", "error: ECONNRESET", ...). */
export interface LoadTotals { requests: number; failed: number; reads: number; writes: number; staleReads: number; inFlight: number; failedReads: number; failedWrites: number; failures: Record<string, number> }

export class LoadGenerator {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  private readonly rand: () => number;
  private readonly work: Workload;
  private readonly t = { requests: 0, failed: 0, reads: 0, writes: 0, staleReads: 0, inFlight: 0, failedReads: 0, failedWrites: 0 };
  private timer?: NodeJS.Timeout;
  private startMs = 0;
  private issued = 0;
  private readonly perSecond: number[] = [];
  private readonly address: { host: string; port: number };
  private drained?: () => void;

  constructor(private readonly o: LoadOptions) {
    this.rand = mulberry32(o.seed);
    this.work = o.workload ?? new KvWorkload();
    const i = o.target.lastIndexOf(":");
    this.address = { host: o.target.slice(0, i), port: Number(o.target.slice(i + 1)) };
  }

  start(): void {
    this.startMs = Date.now();
    const pump = () => {
      const due = Math.floor(((Date.now() - this.startMs) / 1000) * this.o.rateRps);
      while (this.issued < due) { this.issued++; this.one(); }
      this.timer = setTimeout(pump, 5);
    };
    pump();
  }

  /** Stops issuing and waits (at most the timeout) for requests in flight. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    if (this.t.inFlight > 0) await new Promise<void>((r) => { this.drained = r; setTimeout(r, this.o.timeoutMs ?? 2000); });
    this.agent.destroy();
  }

  private readonly failures: Record<string, number> = {};
  private readonly writeAcks: number[] = [];
  /** When each acknowledged write was answered (ms, in order): the gaps are the write unavailability. */
  writeAckTimes(): readonly number[] { return this.writeAcks; }
  totals(): LoadTotals { return { ...this.t, failures: { ...this.failures } }; }
  acknowledged(): ReadonlyMap<string, string> { return this.work.acknowledged(); }

  /** Requests issued in the last full second. */
  recentRps(): number {
    const s = Math.floor((Date.now() - this.startMs) / 1000) - 1;
    return this.perSecond[s] ?? 0;
  }

  private one(): void {
    const sec = Math.floor((Date.now() - this.startMs) / 1000);
    this.perSecond[sec] = (this.perSecond[sec] ?? 0) + 1;
    const user = `user-${Math.floor(this.rand() * this.o.keys)}`;
    const read = this.rand() < this.o.readShare && this.work.canRead();
    const w = this.work.next(read, user, this.rand);
    if (read) this.t.reads++; else this.t.writes++;
    this.t.requests++;
    this.t.inFlight++;
    let settled = false;
    const done = (ok: boolean, stale = false, cause = "") => {
      if (settled) return;
      settled = true;
      this.t.inFlight--;
      if (!ok) { const k = `${read ? "read" : "write"} ${cause}`; this.failures[k] = (this.failures[k] ?? 0) + 1; }
      if (!ok) { this.t.failed++; if (read) this.t.failedReads++; else this.t.failedWrites++; }
      if (stale) this.t.staleReads++;
      if (this.t.inFlight === 0) this.drained?.();
    };
    const body = w.body;
    const req = http.request({
      host: this.address.host, port: this.address.port, agent: this.agent, method: w.method, path: w.path,
      headers: { host: this.o.host, "x-user": user, ...(body !== undefined ? { "content-type": w.contentType ?? "application/json", "content-length": Buffer.byteLength(body) } : {}) },
      timeout: this.o.timeoutMs ?? 2000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => { if (!read) chunks.push(c); });
      res.on("end", () => {
        const s = res.statusCode ?? 0;
        if (s >= 500) return done(false, false, String(s));
        if (!read) { this.work.acknowledge(w, s, Buffer.concat(chunks).toString("utf8")); if (s < 400) this.writeAcks.push(Date.now()); }
        done(s < 400 || (read && s === 404), read && s === 404);
      });
      res.on("error", (e) => done(false, false, `error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    req.on("timeout", () => { req.destroy(); done(false, false, "timeout"); });
    req.on("error", (e) => done(false, false, `error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.end(body);
  }
}
