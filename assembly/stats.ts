// Per-component statistics: what the request path records (live), what a failed report carries
// over (pending), the Envoy stats mirrored from them (the failover floor's counters included), and
// the mirror caps' runtime state. Stats
// are keyed by component name and outlive configuration changes, so a reconfigure loses nothing.
import { Sketch } from "./sketch";
import { ProtoWriter } from "./proto";
import { METRIC_COUNTER, METRIC_GAUGE, defineMetric, proxy_increment_metric, proxy_record_metric } from "./abi";
import { Bytes } from "./bytes";
import { EdgeTable } from "./edges";

export const T_PRIMARY: i32 = 0;
export const T_SHADOW_LIVE: i32 = 1;
export const T_SHADOW_MIRROR: i32 = 2;

// Consistency counters (indices into Counters.consistency; field numbers are index + 1).
export const C_MIRRORED: i32 = 0;
export const C_MATCH: i32 = 1;
export const C_STATUS_MISMATCH: i32 = 2;
export const C_BODY_MISMATCH: i32 = 3;
export const C_SHADOW_ERROR: i32 = 4;
export const C_SHADOW_TIMEOUT: i32 = 5;
export const C_SKIPPED_CAP: i32 = 6;
export const C_ABANDONED: i32 = 7;
// What mirroring costs on the wire: the mirrored requests' header bytes sent to the shadow, and the
// shadow's answers' body bytes received.
export const C_REQUEST_BYTES: i32 = 8;
export const C_RESPONSE_BYTES: i32 = 9;
export const C_COUNT: i32 = 10;

const CONSISTENCY_METRIC_NAMES: StaticArray<string> = [
  "mirror.sent", "mirror.match", "mirror.status_mismatch", "mirror.body_mismatch",
  "mirror.shadow_error", "mirror.shadow_timeout", "mirror.skipped_cap", "mirror.abandoned",
  "mirror.request_bytes", "mirror.response_bytes",
];

// Failover floor counters (indices into Counters.floor; field numbers in the Floor message are index + 1).
export const FL_EJECTIONS: i32 = 0;
export const FL_READS_DIVERTED: i32 = 1;
export const FL_PROBES: i32 = 2;
export const FL_PROBE_FAILURES: i32 = 3;
export const FL_READMISSIONS: i32 = 4;
export const FL_UNFIT_SKIPS: i32 = 5;
export const FL_WRITES_HELD: i32 = 6;
/** Writes held in the proxy while the writer was switched (pause_writes_ms), however each ended. */
export const FL_WRITES_PAUSED: i32 = 7;
export const FL_COUNT: i32 = 8;

const FLOOR_METRIC_NAMES: StaticArray<string> = [
  "floor.ejections", "floor.reads_diverted", "floor.probes", "floor.probe_failures",
  "floor.readmissions", "floor.unfit_skips", "writes_held", "writes_paused",
];

export class TargetStats {
  sketch: Sketch = new Sketch();
  statusClass: StaticArray<u64> = new StaticArray<u64>(6); // [1..5] used
  resets: u64 = 0;
  timeouts: u64 = 0;
  requests: u64 = 0;

  recordStatus(status: u32): void {
    const cls = status / 100;
    if (cls >= 1 && cls <= 5) unchecked(this.statusClass[cls]++);
  }

  isEmpty(): bool { return this.requests == 0 && this.sketch.count == 0 && this.resets == 0 && this.timeouts == 0; }

  merge(o: TargetStats): void {
    this.sketch.merge(o.sketch);
    for (let i = 1; i <= 5; i++) unchecked(this.statusClass[i] += unchecked(o.statusClass[i]));
    this.resets += o.resets; this.timeouts += o.timeouts; this.requests += o.requests;
  }

  clear(): void {
    this.sketch.clear();
    for (let i = 1; i <= 5; i++) unchecked(this.statusClass[i] = 0);
    this.resets = 0; this.timeouts = 0; this.requests = 0;
  }

  encode(w: ProtoWriter, target: u32, multiplier: f64, accuracy: f64): void {
    w.begin(2);
    w.uint(1, target);
    const s = this.sketch;
    if (s.count > 0) {
      w.begin(2);
      w.double(1, accuracy);
      w.double(2, multiplier);
      if (s.hi >= s.lo) {
        w.sint32(3, s.lo);
        w.begin(4);
        for (let i = s.lo; i <= s.hi; i++) w.varint(<u64>unchecked(s.counts[i]));
        w.end_();
      }
      w.uint(5, s.zeroCount);
      w.double(6, s.sum);
      w.double(7, s.min);
      w.double(8, s.max);
      w.uint(9, s.count);
      w.end_();
    }
    for (let i = 1; i <= 5; i++) w.uint(<u32>(2 + i), unchecked(this.statusClass[i]));
    w.uint(8, this.resets);
    w.uint(9, this.timeouts);
    w.uint(10, this.requests);
    w.end_();
  }
}

export class Counters {
  targets: StaticArray<TargetStats> = [new TargetStats(), new TargetStats(), new TargetStats()];
  consistency: StaticArray<u64> = new StaticArray<u64>(C_COUNT);
  floor: StaticArray<u64> = new StaticArray<u64>(FL_COUNT);
  reads: u64 = 0;
  writes: u64 = 0;
  routedShadow: u64 = 0;

  isEmpty(): bool {
    if (this.reads != 0 || this.writes != 0) return false;
    for (let i = 0; i < C_COUNT; i++) if (unchecked(this.consistency[i]) != 0) return false;
    for (let i = 0; i < FL_COUNT; i++) if (unchecked(this.floor[i]) != 0) return false;
    for (let t = 0; t < 3; t++) if (!unchecked(this.targets[t]).isEmpty()) return false;
    return true;
  }

  merge(o: Counters): void {
    for (let t = 0; t < 3; t++) unchecked(this.targets[t]).merge(unchecked(o.targets[t]));
    for (let i = 0; i < C_COUNT; i++) unchecked(this.consistency[i] += unchecked(o.consistency[i]));
    for (let i = 0; i < FL_COUNT; i++) unchecked(this.floor[i] += unchecked(o.floor[i]));
    this.reads += o.reads; this.writes += o.writes; this.routedShadow += o.routedShadow;
  }

  clear(): void {
    for (let t = 0; t < 3; t++) unchecked(this.targets[t]).clear();
    for (let i = 0; i < C_COUNT; i++) unchecked(this.consistency[i] = 0);
    for (let i = 0; i < FL_COUNT; i++) unchecked(this.floor[i] = 0);
    this.reads = 0; this.writes = 0; this.routedShadow = 0;
  }
}

export class ComponentStats {
  name: string;
  nameBytes: Bytes;
  // live: what requests record now; pending: folded from live on every tick, not yet sent;
  // sent: the report in flight (merged back into pending if it fails).
  live: Counters = new Counters();
  pending: Counters = new Counters();
  sent: Counters = new Counters();
  weightBp: u32 = 0;
  // Mirror caps (per worker): token bucket and in-flight count.
  tokens: f64 = 0;
  lastRefillNs: u64 = 0;
  inFlight: u32 = 0;
  /** The floor diverts this component's reads now (floor.ts sets it; reported and the floor.ejected gauge). */
  ejected: bool = false;
  /** `ejected` as encoded in the last report: a component that was ejected is reported once more when it is not. */
  ejectedReported: bool = false;
  // Envoy stats (proxy_define_metric ids; -1 when the host refused the definition).
  mReads: i32; mWrites: i32; mRoutedShadow: i32; mWeight: i32;
  mConsistency: StaticArray<i32> = new StaticArray<i32>(C_COUNT);
  mFloor: StaticArray<i32> = new StaticArray<i32>(FL_COUNT);
  mEjected: i32;
  /** The gauges' last recorded values (-1: never recorded). */
  recordedWeight: i64 = -1;
  recordedEjected: i32 = -1;

  constructor(name: string) {
    this.name = name;
    this.nameBytes = new Bytes(name);
    const p = "shadowmesh." + name + ".";
    this.mReads = defineMetric(METRIC_COUNTER, p + "reads");
    this.mWrites = defineMetric(METRIC_COUNTER, p + "writes");
    this.mRoutedShadow = defineMetric(METRIC_COUNTER, p + "routed_shadow");
    this.mWeight = defineMetric(METRIC_GAUGE, p + "shadow_weight_bp");
    for (let i = 0; i < C_COUNT; i++) this.mConsistency[i] = defineMetric(METRIC_COUNTER, p + CONSISTENCY_METRIC_NAMES[i]);
    for (let i = 0; i < FL_COUNT; i++) this.mFloor[i] = defineMetric(METRIC_COUNTER, p + FLOOR_METRIC_NAMES[i]);
    this.mEjected = defineMetric(METRIC_GAUGE, p + "floor.ejected");
  }

  /** Called on tick, before live is folded into pending: live holds exactly the delta since the last tick. */
  flushMetrics(): void {
    bump(this.mReads, this.live.reads);
    bump(this.mWrites, this.live.writes);
    bump(this.mRoutedShadow, this.live.routedShadow);
    for (let i = 0; i < C_COUNT; i++) bump(unchecked(this.mConsistency[i]), unchecked(this.live.consistency[i]));
    for (let i = 0; i < FL_COUNT; i++) bump(unchecked(this.mFloor[i]), unchecked(this.live.floor[i]));
    this.flushGauges();
  }

  /** The gauges, recorded only when they changed (one host call each otherwise, every tick, for every name kept). */
  flushGauges(): void {
    if (this.mWeight >= 0 && this.weightBp != this.recordedWeight) { proxy_record_metric(<u32>this.mWeight, <u64>this.weightBp); this.recordedWeight = this.weightBp; }
    const e: i32 = this.ejected ? 1 : 0;
    if (this.mEjected >= 0 && e != this.recordedEjected) { proxy_record_metric(<u32>this.mEjected, <u64>e); this.recordedEjected = e; }
  }

  /** Its callers (edges.ts), once the configuration asks for them; kept, like the counters, across reconfigurations. */
  edges: EdgeTable | null = null;

  /** Whether the next report must carry this component (something to send, or the floor's state to tell). */
  mustReport(): bool {
    const e = this.edges;
    return !this.sent.isEmpty() || this.ejected || this.ejectedReported || (e !== null && e.hasSent());
  }

  /** Moves pending into sent (sent must be empty: no report in flight). */
  beginSend(): void {
    const t = this.sent;
    this.sent = this.pending;
    this.pending = t;
    const e = this.edges;
    if (e !== null) e.beginSend();
  }

  /** No telemetry cluster: what was counted is dropped. */
  discard(): void {
    this.pending.clear();
    const e = this.edges;
    if (e !== null) e.discard();
  }

  endSend(ok: bool): void {
    if (!ok) {
      this.pending.merge(this.sent);
      this.ejectedReported = true; // the controller may not have the floor's state: tell it again
    }
    this.sent.clear();
    const e = this.edges;
    if (e !== null) e.endSend(ok);
  }

  encode(w: ProtoWriter, multiplier: f64, accuracy: f64): void {
    const c = this.sent;
    w.begin(6);
    w.bytes(1, this.nameBytes.ptr, this.nameBytes.len);
    for (let t = 0; t < 3; t++) {
      const ts = unchecked(c.targets[t]);
      if (!ts.isEmpty()) ts.encode(w, <u32>(t + 1), multiplier, accuracy);
    }
    let any = false;
    for (let i = 0; i < C_COUNT; i++) if (unchecked(c.consistency[i]) != 0) any = true;
    if (any) {
      w.begin(3);
      for (let i = 0; i < C_COUNT; i++) w.uint(<u32>(i + 1), unchecked(c.consistency[i]));
      w.end_();
    }
    w.uint(4, c.reads);
    w.uint(5, c.writes);
    w.uint(6, <u64>this.weightBp);
    let anyFloor = this.ejected;
    for (let i = 0; i < FL_COUNT; i++) if (unchecked(c.floor[i]) != 0) anyFloor = true;
    if (anyFloor) {
      w.begin(7);
      // Counters are fields 1-7 and 9 (writes_paused came after the ejected flag, field 8).
      for (let i = 0; i < FL_COUNT; i++) w.uint(<u32>(i < FL_WRITES_PAUSED ? i + 1 : i + 2), unchecked(c.floor[i]));
      w.uint(8, this.ejected ? 1 : 0);
      w.end_();
    }
    this.ejectedReported = this.ejected;
    const e = this.edges;
    if (e !== null) e.encode(w);
    w.end_();
  }
}

export function bump(id: i32, delta: u64): void {
  if (id >= 0 && delta != 0) proxy_increment_metric(<u32>id, <i64>delta);
}
