// Telemetry across replicas: a follower forwards every proxy report it merged, as received (the same
// bytes, the proxy's own node id and sequence, so the leader's store de-duplicates a proxy that moved
// between replicas), to the leader's telemetry port with the telemetry bearer token, in batches
// (ForwardReports: up to BATCH reports or BATCH_BYTES per call, sent every FLUSH_MS or when a batch is
// full). The
// leader thus merges the whole fleet's sketches; a replica lost loses at most what it had queued
// (one flush interval) and what was in flight. While no leader is known (an election, or etcd slow
// to answer) the reports wait and the flush retries; once this replica leads, what waited is
// dropped quietly (it was merged here). Bounded: at most MAX_QUEUED reports wait and one call
// runs at a time (in order); past that, reports are dropped and counted.
// Every SUBSCRIBERS_MS a follower also sends its filter subscribers (ECDS node ids, in a call of its
// own, at most 2 MiB of them), so the leader's check of what the fleet's filters know counts a proxy connected here
// before its first report (xds/features.ts).
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { telemetryClient } from "../telemetry/service.js";

export interface ForwardTarget { replica: string; telemetry: string }

/** Per call: at most BATCH reports and BATCH_BYTES (well under gRPC's 4 MiB message limit). */
const BATCH = 1000, BATCH_BYTES = 1 << 20, FLUSH_MS = 50, RETRY_MS = 200, MAX_QUEUED = 50_000;
/** How often a follower sends its subscriber list (well inside the leader's one-minute window). */
export const SUBSCRIBERS_MS = 5000;
/** At most this many bytes of node ids in one list (the leader takes up to 100,000 ids). */
const LIST_BYTES = 2 << 20;
/**
 * One call at a time: a proxy's reports must reach the leader in the order they were merged here (its
 * store refuses a sequence below one it took), and concurrent calls were seen to overtake each other
 * (the HA benchmark: ~2 % of the forwarded reports refused as duplicates with 4 in flight).
 */
const MAX_IN_FLIGHT = 1;

interface Batch { reports: Buffer[]; subscribers?: { replica: string; nodes: string[] } }
type BatchClient = grpc.Client & { ForwardReports(req: Batch, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { merged: number; refused: number }) => void): void };

export class TelemetryForwarder {
  private client: BatchClient | null = null;
  private address = "";
  private queue: Buffer[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly subsTimer: NodeJS.Timeout | null = null;
  /** The subscriber list is sent next (at start, then every SUBSCRIBERS_MS). */
  private subscribersDue: boolean;
  private warnedCut = false;
  readonly stats = { forwarded: 0, merged: 0, refused: 0, failed: 0, dropped: 0, calls: 0 };

  /**
   * leader: the leader's telemetry port while this replica follows (null: none known, or this one
   * leads); leading: whether this replica leads (its reports need no forwarding); credentials: how the
   * leader's telemetry port is reached (ha/credentials.ts; default plaintext); subscribers: this
   * replica's name and its filter subscribers (none: no list is sent).
   */
  constructor(private readonly o: { leader: () => ForwardTarget | null; leading?: () => boolean; token?: string; log: Logger; timeoutMs?: number; credentials?: grpc.ChannelCredentials; subscribers?: { replica: string; nodes: () => string[] } }) {
    this.subscribersDue = !!o.subscribers;
    if (o.subscribers) {
      this.subsTimer = setInterval(() => { this.subscribersDue = true; this.schedule(0); }, SUBSCRIBERS_MS);
      this.subsTimer.unref?.();
      this.schedule(FLUSH_MS);
    }
  }

  forward(raw: Buffer): void {
    if (this.o.leading?.()) return;
    if (this.queue.length >= MAX_QUEUED) { this.stats.dropped++; return; }
    this.queue.push(raw);
    if (this.queue.length >= BATCH) this.flush();
    else this.schedule(FLUSH_MS);
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.flush(); }, ms);
    this.timer.unref?.();
  }

  private flush(): void {
    if (this.o.leading?.()) { this.queue = []; this.subscribersDue = false; return; } // it leads now: what waited was merged here
    const to = this.o.leader();
    if (!to) { if (this.queue.length > 0 || this.subscribersDue) this.schedule(RETRY_MS); return; } // no leader known yet: wait, bounded
    while ((this.queue.length > 0 || this.subscribersDue) && this.inFlight < MAX_IN_FLIGHT) {
      // The subscriber list goes in a call of its own: one that fails (too large, say) holds up no report.
      const req: Batch = this.subscribersDue && this.o.subscribers ? { reports: [], subscribers: this.subscriberList() } : { reports: this.takeBatch() };
      this.subscribersDue = false;
      const batch = req.reports;
      if (this.address !== to.telemetry) { this.client?.close(); this.client = telemetryClient(to.telemetry, this.o.credentials) as unknown as BatchClient; this.address = to.telemetry; }
      const md = new grpc.Metadata();
      if (this.o.token) md.set("authorization", `Bearer ${this.o.token}`);
      this.inFlight++;
      this.stats.calls++;
      this.client!.ForwardReports(req, md, { deadline: Date.now() + (this.o.timeoutMs ?? 5000) }, (e, r) => {
        this.inFlight--;
        if (!e) { this.stats.forwarded += batch.length; this.stats.merged += r?.merged ?? 0; this.stats.refused += r?.refused ?? 0; }
        else if (++this.stats.failed <= 5 || this.stats.failed % 1000 === 0) this.o.log.warn({ leader: to.replica, err: e.message, reports: batch.length, subscribers: req.subscribers?.nodes.length, failed: this.stats.failed }, req.subscribers ? "cannot send this replica's filter subscribers to the leader (sent again in 5 s)" : "cannot forward telemetry reports to the leader");
        if (this.queue.length > 0 || this.subscribersDue) this.flush();
      });
    }
  }

  /** The next batch of queued reports: up to BATCH reports and BATCH_BYTES. */
  private takeBatch(): Buffer[] {
    let n = 0, bytes = 0;
    while (n < this.queue.length && n < BATCH && (n === 0 || bytes + this.queue[n]!.length <= BATCH_BYTES)) bytes += this.queue[n++]!.length;
    return this.queue.splice(0, n);
  }

  /** This replica's subscribers, at most LIST_BYTES of node ids (under gRPC's 4 MiB message limit); logged when cut. */
  private subscriberList(): { replica: string; nodes: string[] } {
    const all = this.o.subscribers!.nodes(), nodes: string[] = [];
    let bytes = 0;
    for (const n of all) { if (bytes + n.length + 4 > LIST_BYTES) break; bytes += n.length + 4; nodes.push(n); }
    if (nodes.length < all.length && !this.warnedCut) { this.warnedCut = true; this.o.log.warn({ sent: nodes.length, subscribers: all.length }, "this replica's filter subscriber list is over 2 MiB: the leader is sent the first ones only"); }
    return { replica: this.o.subscribers!.replica, nodes };
  }

  close(): void { if (this.timer) clearTimeout(this.timer); if (this.subsTimer) clearInterval(this.subsTimer); this.client?.close(); this.client = null; }
}
