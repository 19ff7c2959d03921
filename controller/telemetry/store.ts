// The telemetry store: the filters' report deltas merged per component, target and time bucket
// (default 1 s), kept for a configurable retention, and the queries over them. Memory is bounded by
// maxComponents x targets x retention buckets x one sealed sketch (only its used bucket range,
// typically 1-3 KiB). A bucket seals `graceMs` after it ends; sealing hands a summary (p50/p99, error
// rate, consistency) to the listeners, which is how request latency and errors reach the risk engine.
// What a bucket holds, how a report merges into it, sealing and the summary: bucket.ts.
// A report is checked completely before anything is merged, so a bad report changes nothing.
// No backfill: a report's window must end within maxAgeMs before now and maxSkewMs after it, and never
// before the last window accepted from the same proxy (node id + worker id; that map is bounded).
// One proxy is one voice (voices.ts): ingest gives each proxy node's primary a voice in the bucket (past
// maxVoicesPerBucket nodes share one), and the store keeps the latest nodes flagged as outliers.
import { wallMs, type Clock } from "../../host/clock.js";
import {
  FLOOR_COUNTERS, addCounts, addFloor, emptyFloor, emptyTarget,
  type ComponentTotals, type DecodedReport, type TargetName,
} from "./report.js";
import { OVERFLOW_VOICE, addVoice, type ProxyOutlier } from "./voices.js";
import { addLatency, emptyBucket, mergeInto, seal, summarize, type Bucket, type BucketSummary } from "./bucket.js";

export interface StoreOptions {
  clock: Clock;
  bucketMs?: number;
  retentionMs?: number;
  graceMs?: number;
  maxComponents?: number;
  /** How far in the future a report's window may end (clock skew), in ms (default 10 s). */
  maxSkewMs?: number;
  /** How far in the past a report's window may end, in ms (default 30 s): older windows are backfill. */
  maxAgeMs?: number;
  /** Proxies (node id + worker id) whose last sequence and window are remembered (default 100k; the oldest is evicted). */
  maxProxies?: number;
  /**
   * Proxy nodes with a voice of their own in one bucket of one component (default 1,000; the rest share
   * one voice). Bounds the per-node latency sketches kept until the bucket seals.
   */
  maxVoicesPerBucket?: number;
  /** A node's primary requests in one bucket needed for it to be a voice of its own (default 10). */
  minProxyRequests?: number;
  /** A node is an outlier when its error rate exceeds the median's by this much (and by 3 robust sigmas); default 0.1. */
  outlierMargin?: number;
  /** Proxies (workers) whose floor state one bucket of one component remembers; more are not tracked. */
  maxProxiesPerBucket?: number;
}

/** The failover floors of a component's proxies over a time range (TelemetryStore.floor). */
export interface FloorSummary {
  /** Distinct proxies (node id + worker id) that reported the component in the range. */
  reporting: number;
  /** Of those, how many said `ejected: true` in their latest report in the range. */
  ejecting: number;
  /** Distinct proxy nodes, and those most of whose workers have the primary ejected (one node, one voice). */
  nodesReporting: number;
  nodesEjecting: number;
  ejections: number;
  readsDiverted: number;
  probes: number;
  unfitSkips: number;
  writesHeld: number;
  /** Writes the proxies held while the writer was switched. */
  writesPaused: number;
}

export class ReportRejected extends Error {
  constructor(message: string, readonly code: "INVALID_ARGUMENT" | "RESOURCE_EXHAUSTED") { super(message); }
}

/** A component's target since the start: requests, errors (5xx, resets, timeouts), and the latencies' count and sum (µs). */
export interface CumulativeTotals { requests: number; errors: number; latencyCount: number; latencySumUs: number }

export interface StoreStats {
  reports: number; duplicates: number; expired: number; late: number; rejected: number; components: number; buckets: number; bytes: number;
  /** Refused because the window ended before the proxy's last accepted one, too long ago, or in the future. */
  backfill: number;
  /** Component entries dropped because the component is not configured (per name: unknownComponents()). */
  unknownDropped: number;
  /** (bucket, node) pairs flagged as outliers against the other proxies. */
  outlierProxies: number;
  /** Proxies (node/worker) remembered for duplicate and backfill checks. */
  proxies: number;
}

const MAX_NAME = 253;
/** FilterReport.features: a handful of names like "pause_writes". */
const MAX_FEATURES = 32;
const FEATURE_RE = /^[a-z0-9_]{1,64}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/:]*$/;
/** A caller's name as the filter keeps it (128 bytes) with room for a longer one from another reporter. */
const MAX_CALLER_NAME = 256;

export class TelemetryStore {
  private readonly components = new Map<string, Bucket[]>();
  private readonly lastSeen = new Map<string, { sequence: number; endNs: bigint }>();
  /** Per node, the features its newest report named (FilterReport.features) and when it came (store ms); the newest maxProxies nodes. */
  private readonly nodeFeatures = new Map<string, { features: readonly string[]; atMs: number }>();
  private readonly replicaSubs = new Map<string, { nodes: readonly string[]; atMs: number }>();
  private readonly unknown = new Map<string, number>();
  private readonly recentOutliers: (ProxyOutlier & { component: string; startMs: number })[] = [];
  private readonly listeners: ((s: BucketSummary) => void)[] = [];
  /** Every request and error reported per component and target since the start (/metrics counters); only configured components. */
  private readonly totals = new Map<string, Map<TargetName, CumulativeTotals>>();
  private readonly o: Required<StoreOptions>;
  /** The buckets' length: the windows the sealed summaries cover. */
  get bucketMs(): number { return this.o.bucketMs; }
  readonly stats: StoreStats = { reports: 0, duplicates: 0, expired: 0, late: 0, rejected: 0, components: 0, buckets: 0, bytes: 0, backfill: 0, unknownDropped: 0, outlierProxies: 0, proxies: 0 };

  constructor(opts: StoreOptions) {
    this.o = { bucketMs: 1000, retentionMs: 300_000, graceMs: 2000, maxComponents: 10_000, maxSkewMs: 10_000, maxAgeMs: 30_000, maxProxies: 100_000, maxProxiesPerBucket: 10_000, maxVoicesPerBucket: 1_000, minProxyRequests: 10, outlierMargin: 0.1, ...opts };
    if (!(this.o.bucketMs > 0 && this.o.retentionMs >= this.o.bucketMs)) throw new RangeError(`telemetry store: bucketMs ${this.o.bucketMs} and retentionMs ${this.o.retentionMs} must be positive, retention at least one bucket`);
  }

  onSealed(fn: (s: BucketSummary) => void): void { this.listeners.push(fn); }

  private now(): number { return wallMs(this.o.clock); }

  /**
   * Checks and merges one report. Throws ReportRejected (and changes nothing) when it is malformed or
   * backfill. `accept` names the configured components: entries for any other are dropped and counted
   * (they take no capacity), the rest of the report is taken.
   */
  ingest(r: DecodedReport, accept?: (component: string) => boolean): "merged" | "duplicate" | "expired" {
    if (accept) {
      const unknown = [...r.components.keys()].filter((n) => !accept(n));
      if (unknown.length) {
        r = { ...r, components: new Map([...r.components].filter(([n]) => accept(n))) };
        for (const n of unknown) this.countUnknown(n);
      }
    }
    const worker = `${r.nodeId}/${r.workerId}`;
    const last = this.lastSeen.get(worker);
    try {
      this.check(r);
      // A resend (same or older sequence) is answered OK and not counted again: checked before the window.
      if (last !== undefined && r.sequence <= last.sequence) { this.stats.duplicates++; return "duplicate"; }
      if (last !== undefined && r.windowEndUnixNanos < last.endNs) {
        this.stats.backfill++;
        throw new ReportRejected(`window_end_unix_nanos: ${r.windowEndUnixNanos} is before the end of the last window accepted from ${worker} (${last.endNs}): backfill is refused`, "INVALID_ARGUMENT");
      }
    } catch (e) {
      this.stats.rejected++;
      throw e;
    }
    const now = this.now();
    const endMs = Number(r.windowEndUnixNanos / 1_000_000n);
    const startMs = endMs - (endMs % this.o.bucketMs);
    this.remember(worker, r.sequence, r.windowEndUnixNanos);
    this.nodeFeatures.delete(r.nodeId);
    this.nodeFeatures.set(r.nodeId, { features: r.features ?? [], atMs: this.now() });
    if (this.nodeFeatures.size > this.o.maxProxies) this.nodeFeatures.delete(this.nodeFeatures.keys().next().value!);
    if (startMs + this.o.bucketMs <= now - this.o.retentionMs) { this.stats.expired++; return "expired"; }
    this.stats.reports++;
    for (const [name, c] of r.components) {
      let tot = this.totals.get(name);
      if (!tot && this.totals.size < this.o.maxComponents) this.totals.set(name, (tot = new Map()));
      if (tot) for (const [tn, t] of c.targets) {
        const x = tot.get(tn) ?? { requests: 0, errors: 0, latencyCount: 0, latencySumUs: 0 };
        x.requests += t.requests; x.errors += t.status[4]! + t.resets + t.timeouts;
        x.latencyCount += t.latency.count; x.latencySumUs += t.latency.sum;
        tot.set(tn, x);
      }
      let list = this.components.get(name);
      if (!list) { list = []; this.components.set(name, list); }
      const b = this.bucket(list, startMs);
      if (b.sealed) this.stats.late++;
      mergeInto(b, c);
      // Sequences only rise per worker (duplicates are refused above): the last one seen is the latest.
      if (b.proxies.has(worker) || b.proxies.size < this.o.maxProxiesPerBucket) b.proxies.set(worker, c.floor.ejected);
      const p = c.targets.get("PRIMARY");
      if (p && p.requests > 0) addVoice(b.voices, b.sealed, b.voices.has(r.nodeId) || b.voices.size < this.o.maxVoicesPerBucket ? r.nodeId : OVERFLOW_VOICE, p);
    }
    this.advance(now);
    return "merged";
  }

  /** The features the node's newest report named; null when no report from it arrived (or it was evicted). */
  featuresOf(node: string): readonly string[] | null { return this.nodeFeatures.get(node)?.features ?? null; }

  /** A follower replica's filter subscribers (ECDS), replacing the list it sent before (HA: the leader counts them). */
  setReplicaSubscribers(replica: string, nodes: readonly string[]): void { this.replicaSubs.set(replica, { nodes, atMs: this.now() }); }

  /** The nodes in the lists replicas sent within the last `withinMs` (a replica gone that long no longer counts). */
  replicaSubscribers(withinMs: number): string[] {
    const since = this.now() - withinMs, out = new Set<string>();
    for (const [r, l] of this.replicaSubs) { if (l.atMs < since) { this.replicaSubs.delete(r); continue; } for (const n of l.nodes) out.add(n); }
    return [...out];
  }

  /** Nodes whose newest report, received within the last `withinMs`, did not name `feature` (an older filter). */
  reportedWithout(feature: string, withinMs: number): string[] {
    const since = this.now() - withinMs, out: string[] = [];
    for (const [n, f] of this.nodeFeatures) if (f.atMs >= since && !f.features.includes(feature)) out.push(n);
    return out;
  }

  private remember(worker: string, sequence: number, endNs: bigint): void {
    this.lastSeen.delete(worker);
    this.lastSeen.set(worker, { sequence, endNs });
    // Workers come and go (restarts pick a new random id): keep the newest maxProxies (insertion order = last report).
    while (this.lastSeen.size > this.o.maxProxies) this.lastSeen.delete(this.lastSeen.keys().next().value!);
    this.stats.proxies = this.lastSeen.size;
  }

  private countUnknown(name: string): void {
    this.stats.unknownDropped++;
    const key = name.slice(0, 80);
    if (this.unknown.has(key) || this.unknown.size < 100) this.unknown.set(key, (this.unknown.get(key) ?? 0) + 1);
  }

  /** Component names (first 100, cut to 80 characters) whose entries were dropped as not configured, with counts. */
  unknownComponents(): Map<string, number> { return new Map(this.unknown); }

  /** The latest outlier flags (at most 100), oldest first. */
  outliers(): (ProxyOutlier & { component: string; startMs: number })[] { return [...this.recentOutliers]; }

  private check(r: DecodedReport): void {
    const bad = (m: string) => new ReportRejected(m, "INVALID_ARGUMENT");
    if (!r.nodeId) throw bad("node_id: must not be empty");
    if (r.windowEndUnixNanos <= 0n) throw bad("window_end_unix_nanos: must be set (Unix nanoseconds)");
    if (r.windowEndUnixNanos < r.windowStartUnixNanos) throw bad(`window_end_unix_nanos (${r.windowEndUnixNanos}) is before window_start_unix_nanos (${r.windowStartUnixNanos})`);
    const ahead = Number(r.windowEndUnixNanos / 1_000_000n) - this.now();
    if (ahead > this.o.maxSkewMs) { this.stats.backfill++; throw bad(`window_end_unix_nanos is ${(ahead / 1000).toFixed(0)} s in the future (the limit for clock skew is ${this.o.maxSkewMs / 1000} s)`); }
    if (-ahead > this.o.maxAgeMs) { this.stats.backfill++; throw bad(`window_end_unix_nanos is ${(-ahead / 1000).toFixed(0)} s in the past (the limit is ${this.o.maxAgeMs / 1000} s): backfill is refused`); }
    if (!Number.isSafeInteger(r.filterErrors) || r.filterErrors < 0) throw bad(`filter_errors: ${r.filterErrors} is not a count`);
    const features = r.features ?? [];
    if (features.length > MAX_FEATURES) throw bad(`features: ${features.length} entries, at most ${MAX_FEATURES}`);
    features.forEach((f, i) => { if (!FEATURE_RE.test(f)) throw bad(`features[${i}]: ${JSON.stringify(f.slice(0, 80))} is not a feature name (a-z, 0-9 and _, at most 64)`); });
    let fresh = 0;
    for (const [name, c] of r.components) {
      const where = `components[${name}]`;
      if (name.length > MAX_NAME || !NAME_RE.test(name)) throw bad(`${where}.component: ${JSON.stringify(name.slice(0, 80))} is not a valid component name (letters, digits, . _ - / :, at most ${MAX_NAME})`);
      if (!this.components.has(name)) fresh++;
      for (const [k, v] of [["reads", c.reads], ["writes", c.writes]] as const) if (!Number.isSafeInteger(v) || v < 0) throw bad(`${where}.${k}: ${v} is not a count`);
      for (const [k, v] of Object.entries(c.consistency)) if (!Number.isSafeInteger(v) || v < 0) throw bad(`${where}.consistency.${k}: ${v} is not a count`);
      for (const [caller, t] of c.callers) {
        const cw = `${where}.callers[${JSON.stringify(caller.slice(0, 80))}]`;
        if (caller.length > MAX_CALLER_NAME) throw bad(`${cw}.caller: longer than ${MAX_CALLER_NAME} characters`);
        for (const [k, v] of [["requests", t.requests], ["errors", t.errors], ["latency_us_sum", t.latencyUsSum]] as const) if (!Number.isSafeInteger(v) || v < 0) throw bad(`${cw}.${k}: ${v} is not a count`);
      }
      for (const k of FLOOR_COUNTERS) if (!Number.isSafeInteger(c.floor[k]) || c.floor[k] < 0) throw bad(`${where}.floor.${k}: ${c.floor[k]} is not a count`);
      for (const [tn, t] of c.targets) {
        const tw = `${where}.targets[${tn}]`;
        for (const [k, v] of [["requests", t.requests], ["resets", t.resets], ["timeouts", t.timeouts], ...t.status.map((v, i) => [`status_${i + 1}xx`, v] as const)] as const) {
          if (!Number.isSafeInteger(v) || v < 0) throw bad(`${tw}.${k}: ${v} is not a count`);
        }
        const responses = t.status.reduce((a, b) => a + b, 0);
        if (responses > t.requests) throw bad(`${tw}: ${responses} status counts for ${t.requests} requests`);
        if (t.latency.count > t.requests) throw bad(`${tw}.latency.count: ${t.latency.count} latencies for ${t.requests} requests`);
      }
    }
    if (this.components.size + fresh > this.o.maxComponents) {
      throw new ReportRejected(`the store holds ${this.components.size} components and this report adds ${fresh}: over the limit of ${this.o.maxComponents} (telemetry.maxComponents)`, "RESOURCE_EXHAUSTED");
    }
  }

  private bucket(list: Bucket[], startMs: number): Bucket {
    // Buckets are kept in time order; reports almost always land in the newest one.
    for (let i = list.length - 1; i >= 0; i--) {
      const b = list[i]!;
      if (b.startMs === startMs) return b;
      if (b.startMs < startMs) { const nb = emptyBucket(startMs); list.splice(i + 1, 0, nb); return nb; }
    }
    const nb = emptyBucket(startMs);
    list.unshift(nb);
    return nb;
  }

  /** Seals buckets past their grace period (notifying listeners) and drops those past retention. */
  advance(now = this.now()): void {
    let buckets = 0, bytes = 0;
    for (const [name, list] of this.components) {
      while (list.length && list[0]!.startMs + this.o.bucketMs <= now - this.o.retentionMs) list.shift();
      for (const b of list) {
        if (!b.sealed && b.startMs + this.o.bucketMs + this.o.graceMs <= now) {
          const s = summarize(name, b, this.o.bucketMs, this.o.minProxyRequests, this.o.outlierMargin);
          seal(b);
          if (s.outliers.length) {
            this.stats.outlierProxies += s.outliers.length;
            for (const o of s.outliers) this.recentOutliers.push({ ...o, component: name, startMs: b.startMs });
            if (this.recentOutliers.length > 100) this.recentOutliers.splice(0, this.recentOutliers.length - 100);
          }
          for (const fn of this.listeners) fn(s);
        }
        buckets++;
        for (const t of b.targets.values()) bytes += t.latency.bytes;
      }
      if (list.length === 0) this.components.delete(name);
    }
    Object.assign(this.stats, { components: this.components.size, buckets, bytes });
  }

  /** Requests and errors (5xx, resets, timeouts) reported for each component and target since the start: they only rise. */
  cumulative(): ReadonlyMap<string, ReadonlyMap<TargetName, Readonly<CumulativeTotals>>> { return this.totals; }

  /** Totals of one component over [fromMs, toMs), merged across buckets; undefined if none. */
  window(component: string, fromMs: number, toMs: number): ComponentTotals | undefined {
    const list = this.components.get(component);
    if (!list) return undefined;
    let out: ComponentTotals | undefined;
    for (const b of list) {
      if (b.startMs < fromMs || b.startMs >= toMs) continue;
      out ??= { targets: new Map(), callers: new Map(), consistency: {}, reads: 0, writes: 0, shadowWeightBp: 0, floor: emptyFloor() };
      out.reads += b.reads; out.writes += b.writes; out.shadowWeightBp = b.shadowWeightBp;
      addFloor(out.floor, b.floor);
      for (const [k, v] of Object.entries(b.consistency)) out.consistency[k] = (out.consistency[k] ?? 0) + v;
      for (const [tn, t] of b.targets) {
        let acc = out.targets.get(tn);
        if (!acc) { acc = emptyTarget(); out.targets.set(tn, acc); }
        addLatency(acc.latency, t.latency);
        addCounts(acc, t);
      }
    }
    return out;
  }

  /** Floor activity of a component's proxies between fromMs and toMs (wall ms). */
  floor(component: string, fromMs: number, toMs: number): FloorSummary {
    const out: FloorSummary = { reporting: 0, ejecting: 0, ejections: 0, readsDiverted: 0, probes: 0, unfitSkips: 0, writesHeld: 0, writesPaused: 0, nodesReporting: 0, nodesEjecting: 0 };
    const list = this.components.get(component);
    if (!list) return out;
    const latest = new Map<string, boolean>();
    for (const b of list) { // buckets are in time order: a later bucket's state wins
      if (b.startMs < fromMs || b.startMs >= toMs) continue;
      out.ejections += b.floor.ejections; out.readsDiverted += b.floor.readsDiverted; out.probes += b.floor.probes;
      out.unfitSkips += b.floor.unfitSkips; out.writesHeld += b.floor.writesHeld; out.writesPaused += b.floor.writesPaused;
      for (const [w, e] of b.proxies) latest.set(w, e);
    }
    out.reporting = latest.size;
    // One node is one voice however many workers it claims: a node ejects when most of its workers do.
    const nodes = new Map<string, { workers: number; ejected: number }>();
    for (const [w, e] of latest) {
      if (e) out.ejecting++;
      const node = w.slice(0, w.lastIndexOf("/"));
      const n = nodes.get(node) ?? { workers: 0, ejected: 0 };
      n.workers++; if (e) n.ejected++;
      nodes.set(node, n);
    }
    out.nodesReporting = nodes.size;
    for (const n of nodes.values()) if (n.ejected * 2 > n.workers) out.nodesEjecting++;
    return out;
  }

  componentNames(): string[] { return [...this.components.keys()]; }

  /** The primary's requests and errors per node id over [fromMs, toMs) (nodes past the per-bucket cap share one entry). */
  primaryByProxy(component: string, fromMs: number, toMs: number): Map<string, { requests: number; errors: number }> {
    const out = new Map<string, { requests: number; errors: number }>();
    for (const b of this.components.get(component) ?? []) {
      if (b.startMs < fromMs || b.startMs >= toMs) continue;
      for (const [node, v] of b.voices) {
        const acc = out.get(node) ?? { requests: 0, errors: 0 };
        acc.requests += v.requests; acc.errors += v.errors;
        out.set(node, acc);
      }
    }
    return out;
  }
}
