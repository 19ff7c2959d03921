// The telemetry store: the filters' report deltas merged per component, target and time bucket
// (default 1 s), kept for a configurable retention. Memory is bounded by maxComponents x targets x
// retention buckets x one sealed sketch (only its used bucket range, typically 1-3 KiB). A bucket
// seals `graceMs` after it ends; sealing hands a summary (p50/p99, error rate, consistency) to the
// listeners, which is how request latency and errors reach the risk engine.
// Each bucket also keeps the failover floor's counters and, per proxy (node id + worker id) whose
// report landed in it, whether that proxy's floor was ejecting (capped at maxProxiesPerBucket).
// A report is checked completely before anything is merged, so a bad report changes nothing.
import { wallMs, type Clock } from "../../host/clock.js";
import { CompactSketch, LatencySketch } from "./sketch.js";
import {
  FLOOR_COUNTERS, TARGETS, addCounts, addFloor, emptyFloor, emptyTarget,
  type ComponentTotals, type DecodedReport, type FloorTotals, type TargetName, type TargetTotals,
} from "./report.js";

export interface StoreOptions {
  clock: Clock;
  bucketMs?: number;
  retentionMs?: number;
  graceMs?: number;
  maxComponents?: number;
  /** How far in the future a report's window may end (clock skew), in ms. */
  maxSkewMs?: number;
  /** Proxies (workers) whose floor state one bucket of one component remembers; more are not tracked. */
  maxProxiesPerBucket?: number;
}

/** The failover floors of a component's proxies over a time range (TelemetryStore.floor). */
export interface FloorSummary {
  /** Distinct proxies (node id + worker id) that reported the component in the range. */
  reporting: number;
  /** Of those, how many said `ejected: true` in their latest report in the range. */
  ejecting: number;
  ejections: number;
  readsDiverted: number;
  probes: number;
  unfitSkips: number;
  writesHeld: number;
}

export class ReportRejected extends Error {
  constructor(message: string, readonly code: "INVALID_ARGUMENT" | "RESOURCE_EXHAUSTED") { super(message); }
}

/** A target's totals in one bucket; the sketch is compacted when the bucket seals. */
type TargetBucket = Omit<TargetTotals, "latency"> & { latency: LatencySketch | CompactSketch };

interface Bucket {
  startMs: number;
  sealed: boolean;
  targets: Map<TargetName, TargetBucket>;
  consistency: Record<string, number>;
  reads: number;
  writes: number;
  shadowWeightBp: number;
  floor: FloorTotals;
  /** Proxy (node/worker) -> its floor was ejecting, as of its latest report in this bucket. */
  proxies: Map<string, boolean>;
}

export interface TargetSummary {
  requests: number;
  /** (5xx + resets + timeouts) / requests; NaN without requests. */
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
}

export interface BucketSummary {
  component: string;
  startMs: number;
  endMs: number;
  targets: Partial<Record<TargetName, TargetSummary>>;
  /** Mirrored reads whose shadow answer differed (status or body) / mirrored reads compared. */
  divergence: number;
  mirrored: number;
  shadowWeightBp: number;
}

export interface StoreStats { reports: number; duplicates: number; expired: number; late: number; rejected: number; components: number; buckets: number; bytes: number }

const MAX_NAME = 253;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/:]*$/;

export class TelemetryStore {
  private readonly components = new Map<string, Bucket[]>();
  private readonly lastSequence = new Map<string, number>();
  private readonly listeners: ((s: BucketSummary) => void)[] = [];
  private readonly o: Required<StoreOptions>;
  readonly stats: StoreStats = { reports: 0, duplicates: 0, expired: 0, late: 0, rejected: 0, components: 0, buckets: 0, bytes: 0 };

  constructor(opts: StoreOptions) {
    this.o = { bucketMs: 1000, retentionMs: 300_000, graceMs: 2000, maxComponents: 10_000, maxSkewMs: 300_000, maxProxiesPerBucket: 10_000, ...opts };
    if (!(this.o.bucketMs > 0 && this.o.retentionMs >= this.o.bucketMs)) throw new RangeError(`telemetry store: bucketMs ${this.o.bucketMs} and retentionMs ${this.o.retentionMs} must be positive, retention at least one bucket`);
  }

  onSealed(fn: (s: BucketSummary) => void): void { this.listeners.push(fn); }

  private now(): number { return wallMs(this.o.clock); }

  /** Checks and merges one report. Throws ReportRejected (and changes nothing) when it is malformed. */
  ingest(r: DecodedReport): "merged" | "duplicate" | "expired" {
    try {
      this.check(r);
    } catch (e) {
      this.stats.rejected++;
      throw e;
    }
    const now = this.now();
    const worker = `${r.nodeId}/${r.workerId}`;
    const last = this.lastSequence.get(worker);
    if (last !== undefined && r.sequence <= last) { this.stats.duplicates++; return "duplicate"; }
    const endMs = Number(r.windowEndUnixNanos / 1_000_000n);
    const startMs = endMs - (endMs % this.o.bucketMs);
    this.remember(worker, r.sequence);
    if (startMs + this.o.bucketMs <= now - this.o.retentionMs) { this.stats.expired++; return "expired"; }
    this.stats.reports++;
    for (const [name, c] of r.components) {
      let list = this.components.get(name);
      if (!list) { list = []; this.components.set(name, list); }
      const b = this.bucket(list, startMs);
      if (b.sealed) this.stats.late++;
      mergeInto(b, c);
      // Sequences only rise per worker (duplicates are refused above): the last one seen is the latest.
      if (b.proxies.has(worker) || b.proxies.size < this.o.maxProxiesPerBucket) b.proxies.set(worker, c.floor.ejected);
    }
    this.advance(now);
    return "merged";
  }

  private remember(worker: string, seq: number): void {
    this.lastSequence.delete(worker);
    this.lastSequence.set(worker, seq);
    // Workers come and go (restarts pick a new random id): keep the newest 100k.
    if (this.lastSequence.size > 100_000) this.lastSequence.delete(this.lastSequence.keys().next().value!);
  }

  private check(r: DecodedReport): void {
    const bad = (m: string) => new ReportRejected(m, "INVALID_ARGUMENT");
    if (!r.nodeId) throw bad("node_id: must not be empty");
    if (r.windowEndUnixNanos <= 0n) throw bad("window_end_unix_nanos: must be set (Unix nanoseconds)");
    if (r.windowEndUnixNanos < r.windowStartUnixNanos) throw bad(`window_end_unix_nanos (${r.windowEndUnixNanos}) is before window_start_unix_nanos (${r.windowStartUnixNanos})`);
    const ahead = Number(r.windowEndUnixNanos / 1_000_000n) - this.now();
    if (ahead > this.o.maxSkewMs) throw bad(`window_end_unix_nanos is ${(ahead / 1000).toFixed(0)} s in the future (the limit for clock skew is ${this.o.maxSkewMs / 1000} s)`);
    let fresh = 0;
    for (const [name, c] of r.components) {
      const where = `components[${name}]`;
      if (name.length > MAX_NAME || !NAME_RE.test(name)) throw bad(`${where}.component: ${JSON.stringify(name.slice(0, 80))} is not a valid component name (letters, digits, . _ - / :, at most ${MAX_NAME})`);
      if (!this.components.has(name)) fresh++;
      for (const [k, v] of Object.entries(c.consistency)) if (!Number.isSafeInteger(v) || v < 0) throw bad(`${where}.consistency.${k}: ${v} is not a count`);
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
          seal(b);
          const s = summarize(name, b, this.o.bucketMs);
          for (const fn of this.listeners) fn(s);
        }
        buckets++;
        for (const t of b.targets.values()) bytes += t.latency instanceof CompactSketch ? t.latency.bytes : t.latency.counts.byteLength;
      }
      if (list.length === 0) this.components.delete(name);
    }
    Object.assign(this.stats, { components: this.components.size, buckets, bytes });
  }

  /** Totals of one component over [fromMs, toMs), merged across buckets; undefined if none. */
  window(component: string, fromMs: number, toMs: number): ComponentTotals | undefined {
    const list = this.components.get(component);
    if (!list) return undefined;
    let out: ComponentTotals | undefined;
    for (const b of list) {
      if (b.startMs < fromMs || b.startMs >= toMs) continue;
      out ??= { targets: new Map(), consistency: {}, reads: 0, writes: 0, shadowWeightBp: 0, floor: emptyFloor() };
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
  floor(component: string, fromMs: number, toMs: number): { reporting: number; ejecting: number; ejections: number; readsDiverted: number; probes: number; unfitSkips: number; writesHeld: number } {
    const out: FloorSummary = { reporting: 0, ejecting: 0, ejections: 0, readsDiverted: 0, probes: 0, unfitSkips: 0, writesHeld: 0 };
    const list = this.components.get(component);
    if (!list) return out;
    const latest = new Map<string, boolean>();
    for (const b of list) { // buckets are in time order: a later bucket's state wins
      if (b.startMs < fromMs || b.startMs >= toMs) continue;
      out.ejections += b.floor.ejections; out.readsDiverted += b.floor.readsDiverted; out.probes += b.floor.probes;
      out.unfitSkips += b.floor.unfitSkips; out.writesHeld += b.floor.writesHeld;
      for (const [w, e] of b.proxies) latest.set(w, e);
    }
    out.reporting = latest.size;
    for (const e of latest.values()) if (e) out.ejecting++;
    return out;
  }

  componentNames(): string[] { return [...this.components.keys()]; }
}

function emptyBucket(startMs: number): Bucket {
  return { startMs, sealed: false, targets: new Map(), consistency: {}, reads: 0, writes: 0, shadowWeightBp: 0, floor: emptyFloor(), proxies: new Map() };
}

function addLatency(into: LatencySketch, from: LatencySketch | CompactSketch): void {
  if (from instanceof CompactSketch) from.addTo(into); else into.merge(from);
}

function mergeInto(b: Bucket, c: ComponentTotals): void {
  b.reads += c.reads; b.writes += c.writes; b.shadowWeightBp = c.shadowWeightBp;
  for (const k of FLOOR_COUNTERS) b.floor[k] += c.floor[k];
  for (const [k, v] of Object.entries(c.consistency)) b.consistency[k] = (b.consistency[k] ?? 0) + v;
  for (const [tn, t] of c.targets) {
    let acc = b.targets.get(tn);
    if (!acc) { acc = emptyTarget(); b.targets.set(tn, acc); }
    if (acc.latency instanceof CompactSketch) {
      // A late report for a sealed bucket: reopen its sketch, merge, seal again.
      const dense = new LatencySketch();
      acc.latency.addTo(dense);
      dense.merge(t.latency);
      acc.latency = CompactSketch.from(dense);
    } else acc.latency.merge(t.latency);
    addCounts(acc, t);
  }
}

function seal(b: Bucket): void {
  b.sealed = true;
  for (const t of b.targets.values()) if (t.latency instanceof LatencySketch) t.latency = CompactSketch.from(t.latency);
}

function summarize(component: string, b: Bucket, bucketMs: number): BucketSummary {
  const targets: Partial<Record<TargetName, TargetSummary>> = {};
  for (const tn of TARGETS) {
    const t = b.targets.get(tn);
    if (!t) continue;
    const dense = new LatencySketch();
    addLatency(dense, t.latency);
    const errors = t.status[4]! + t.resets + t.timeouts;
    targets[tn] = { requests: t.requests, errorRate: t.requests ? errors / t.requests : NaN, p50Ms: dense.quantile(0.5) / 1000, p99Ms: dense.quantile(0.99) / 1000 };
  }
  const c = b.consistency;
  const compared = (c.match ?? 0) + (c.statusMismatch ?? 0) + (c.bodyMismatch ?? 0);
  return {
    component, startMs: b.startMs, endMs: b.startMs + bucketMs, targets,
    divergence: compared ? ((c.statusMismatch ?? 0) + (c.bodyMismatch ?? 0)) / compared : NaN,
    mirrored: c.mirrored ?? 0, shadowWeightBp: b.shadowWeightBp,
  };
}
