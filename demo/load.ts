// The demo's load generator: an open-loop client (requests leave on schedule whether or not earlier
// ones came back, as real users do) sending reads and writes to the data plane over keep-alive
// connections. Writes use fresh keys and remember what was acknowledged, so a run can check that no
// acknowledged write was lost; reads ask for acknowledged keys (a 404 there is a stale read, not a
// failure). A failed request is a 5xx, a reset or no answer within the timeout.
import http from "node:http";
import { mulberry32 } from "../host/random.js";

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
}

/** failures: by cause ("503", "timeout", "error: ECONNRESET", ...). */
export interface LoadTotals { requests: number; failed: number; reads: number; writes: number; staleReads: number; inFlight: number; failedReads: number; failedWrites: number; failures: Record<string, number> }

export class LoadGenerator {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  private readonly rand: () => number;
  private readonly acked = new Map<string, string>();
  private readonly ackedKeys: string[] = [];
  private readonly t = { requests: 0, failed: 0, reads: 0, writes: 0, staleReads: 0, inFlight: 0, failedReads: 0, failedWrites: 0 };
  private timer?: NodeJS.Timeout;
  private startMs = 0;
  private issued = 0;
  private writeSeq = 0;
  private readonly perSecond: number[] = [];
  private readonly address: { host: string; port: number };
  private drained?: () => void;

  constructor(private readonly o: LoadOptions) {
    this.rand = mulberry32(o.seed);
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
  totals(): LoadTotals { return { ...this.t, failures: { ...this.failures } }; }
  acknowledged(): ReadonlyMap<string, string> { return this.acked; }

  /** Requests issued in the last full second. */
  recentRps(): number {
    const s = Math.floor((Date.now() - this.startMs) / 1000) - 1;
    return this.perSecond[s] ?? 0;
  }

  private one(): void {
    const sec = Math.floor((Date.now() - this.startMs) / 1000);
    this.perSecond[sec] = (this.perSecond[sec] ?? 0) + 1;
    const user = `user-${Math.floor(this.rand() * this.o.keys)}`;
    const read = this.rand() < this.o.readShare && this.ackedKeys.length > 0;
    let key: string, body: string | undefined;
    if (read) {
      key = this.ackedKeys[Math.floor(this.rand() * this.ackedKeys.length)]!;
    } else {
      key = `w${++this.writeSeq}`;
      body = `value-${this.writeSeq}-${Math.floor(this.rand() * 1e9)}`;
    }
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
    const req = http.request({
      host: this.address.host, port: this.address.port, agent: this.agent, method: read ? "GET" : "PUT", path: `/kv/${key}`,
      headers: { host: this.o.host, "x-user": user, ...(body ? { "content-type": "text/plain", "content-length": Buffer.byteLength(body) } : {}) },
      timeout: this.o.timeoutMs ?? 2000,
    }, (res) => {
      res.resume();
      res.on("end", () => {
        const s = res.statusCode ?? 0;
        if (s >= 500) return done(false, false, String(s));
        if (!read && s === 200) { this.acked.set(key, body!); this.ackedKeys.push(key); }
        done(s < 400 || (read && s === 404), read && s === 404);
      });
      res.on("error", (e) => done(false, false, `error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    req.on("timeout", () => { req.destroy(); done(false, false, "timeout"); });
    req.on("error", (e) => done(false, false, `error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.end(body);
  }
}
