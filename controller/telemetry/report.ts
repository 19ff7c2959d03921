// Decoding and merging the filter's FilterReport messages (proto/shadowmesh/telemetry/v1).
// Merging is associative: reports from many workers and proxies add up to the same totals as one
// worker that saw every request.
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import { LatencySketch, SketchDecodeError } from "./sketch.js";

const PROTO = fileURLToPath(new URL("../../proto/shadowmesh/telemetry/v1/telemetry.proto", import.meta.url));
let root: protobuf.Root | undefined;

export function telemetryRoot(): protobuf.Root {
  if (!root) root = protobuf.loadSync(PROTO);
  return root;
}

export const TARGETS = ["TARGET_UNSPECIFIED", "PRIMARY", "SHADOW_LIVE", "SHADOW_MIRROR"] as const;
export type TargetName = (typeof TARGETS)[number];

export interface TargetTotals {
  latency: LatencySketch;
  status: [number, number, number, number, number]; // 1xx..5xx
  resets: number;
  timeouts: number;
  requests: number;
}

/** The filter's failover floor for a component (proto Floor): counter deltas, and its state at report time. */
export interface FloorTotals {
  ejections: number;
  readsDiverted: number;
  probes: number;
  probeFailures: number;
  readmissions: number;
  unfitSkips: number;
  writesHeld: number;
  /** Writes held in the proxy while the writer was switched (proto writes_paused); 0 from filters before it. */
  writesPaused: number;
  /** The floor was diverting reads when the report was sent (merged: any of the merged reports). */
  ejected: boolean;
}

export const FLOOR_COUNTERS = ["ejections", "readsDiverted", "probes", "probeFailures", "readmissions", "unfitSkips", "writesHeld", "writesPaused"] as const;

export function emptyFloor(): FloorTotals {
  return { ejections: 0, readsDiverted: 0, probes: 0, probeFailures: 0, readmissions: 0, unfitSkips: 0, writesHeld: 0, writesPaused: 0, ejected: false };
}

/** Adds the floor counters of `from` into `into` (and ORs the state). */
export function addFloor(into: FloorTotals, from: FloorTotals): void {
  for (const f of FLOOR_COUNTERS) into[f] += from[f];
  into.ejected ||= from.ejected;
}

/** One caller's requests to a component (proto CallerStats). */
export interface CallerTotals { requests: number; errors: number; latencyUsSum: number }
/** The key of the callers past the filter's top-K (proto CallerStats.other). */
export const OTHER_CALLER = "other";

export interface ComponentTotals {
  targets: Map<TargetName, TargetTotals>;
  /** Who called it (the filter's `callers` setting), by name; OTHER_CALLER for the rest. Empty when not recorded. */
  callers: Map<string, CallerTotals>;
  consistency: Record<string, number>;
  reads: number;
  writes: number;
  shadowWeightBp: number;
  floor: FloorTotals;
}

export interface DecodedReport {
  nodeId: string;
  workerId: bigint;
  sequence: number;
  windowStartUnixNanos: bigint;
  windowEndUnixNanos: bigint;
  filterErrors: number;
  configGeneration: number;
  /** FilterReport.features: settings this filter build knows ("pause_writes"); none from an older one. */
  features?: string[];
  components: Map<string, ComponentTotals>;
}

const CONSISTENCY_FIELDS = ["mirrored", "match", "statusMismatch", "bodyMismatch", "shadowError", "shadowTimeout", "skippedCap", "abandoned", "requestBytes", "responseBytes"] as const;

export function emptyTarget(): TargetTotals {
  return { latency: new LatencySketch(), status: [0, 0, 0, 0, 0], resets: 0, timeouts: 0, requests: 0 };
}

function emptyComponent(): ComponentTotals {
  return { targets: new Map(), callers: new Map(), consistency: Object.fromEntries(CONSISTENCY_FIELDS.map((f) => [f, 0])), reads: 0, writes: 0, shadowWeightBp: 0, floor: emptyFloor() };
}

const n = (v: unknown): number => (v === undefined || v === null ? 0 : typeof v === "number" ? v : Number(String(v)));

/**
 * The floating-point fields of a sketch (the integers are unsigned on the wire and checked as counts by
 * the store): each must be a finite number, and sum/min/max not negative (latencies in microseconds),
 * min <= max when anything was counted. NaN or Infinity would poison every quantile and merge.
 */
function checkSketchNumbers(l: Record<string, any>, where: string): void {
  const fields: [string, string][] = [["relativeAccuracy", "relative_accuracy"], ["indexMultiplier", "index_multiplier"], ["sum", "sum"], ["min", "min"], ["max", "max"]];
  for (const [k, wire] of fields) {
    const v = l[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new SketchDecodeError(`${where}.${wire}: ${v} is not a finite number`);
    if (v < 0) throw new SketchDecodeError(`${where}.${wire}: ${v} is negative`);
  }
  if (n(l.count) > 0 && typeof l.min === "number" && typeof l.max === "number" && l.min > l.max) {
    throw new SketchDecodeError(`${where}.min: ${l.min} is greater than max ${l.max}`);
  }
}

/** Decodes a FilterReport; throws an Error naming the field when it is malformed. */
export function decodeReport(bytes: Uint8Array): DecodedReport {
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
  const msg = T.toObject(T.decode(bytes), { longs: String, enums: String, defaults: true }) as Record<string, any>;
  const out: DecodedReport = {
    nodeId: msg.nodeId, workerId: BigInt(msg.workerId), sequence: n(msg.sequence),
    windowStartUnixNanos: BigInt(msg.windowStartUnixNanos), windowEndUnixNanos: BigInt(msg.windowEndUnixNanos),
    filterErrors: n(msg.filterErrors), configGeneration: n(msg.configGeneration),
    features: (msg.features as string[] | undefined) ?? [], components: new Map(),
  };
  (msg.components as any[]).forEach((c, ci) => {
    const where = `components[${ci}]`;
    if (!c.component) throw new SketchDecodeError(`${where}.component: must not be empty`);
    const comp = emptyComponent();
    comp.reads = n(c.reads); comp.writes = n(c.writes); comp.shadowWeightBp = n(c.shadowWeightBp);
    if (comp.shadowWeightBp > 10_000) throw new SketchDecodeError(`${where}.shadow_weight_bp: ${comp.shadowWeightBp} is over 10000 (basis points)`);
    if (c.consistency) for (const f of CONSISTENCY_FIELDS) comp.consistency[f] = n(c.consistency[f]);
    if (c.floor) {
      for (const f of FLOOR_COUNTERS) comp.floor[f] = n(c.floor[f]);
      comp.floor.ejected = c.floor.ejected === true;
    }
    (c.callers as any[] ?? []).forEach((e, ei) => {
      const caller = e.other === true ? OTHER_CALLER : String(e.caller ?? "");
      if (!caller) throw new SketchDecodeError(`${where}.callers[${ei}].caller: must not be empty unless other is set`);
      const t: CallerTotals = { requests: n(e.requests), errors: n(e.errors), latencyUsSum: n(e.latencyUsSum) };
      if (t.errors > t.requests) throw new SketchDecodeError(`${where}.callers[${ei}].errors: ${t.errors} is more than its requests (${t.requests})`);
      addCaller(comp.callers, caller, t);
    });
    (c.targets as any[]).forEach((t, ti) => {
      const name = t.target as TargetName;
      if (!TARGETS.includes(name) || name === "TARGET_UNSPECIFIED") throw new SketchDecodeError(`${where}.targets[${ti}].target: unknown target ${t.target}`);
      const tt = emptyTarget();
      if (t.latency) checkSketchNumbers(t.latency, `${where}.targets[${ti}].latency`);
      if (t.latency && n(t.latency.count) > 0) {
        tt.latency = LatencySketch.fromMessage({ ...t.latency, zeroCount: n(t.latency.zeroCount), count: n(t.latency.count) }, `${where}.targets[${ti}].latency`);
      }
      tt.status = [n(t.status_1xx), n(t.status_2xx), n(t.status_3xx), n(t.status_4xx), n(t.status_5xx)];
      tt.resets = n(t.resets); tt.timeouts = n(t.timeouts); tt.requests = n(t.requests);
      comp.targets.set(name, tt);
    });
    out.components.set(c.component, comp);
  });
  return out;
}

/** Adds one caller's totals into a map of callers. */
export function addCaller(into: Map<string, CallerTotals>, caller: string, t: CallerTotals): void {
  const acc = into.get(caller);
  if (!acc) { into.set(caller, { ...t }); return; }
  acc.requests += t.requests; acc.errors += t.errors; acc.latencyUsSum += t.latencyUsSum;
}

/** Adds a target's counters (not its latency) into another's. */
export function addCounts(into: Omit<TargetTotals, "latency">, from: Omit<TargetTotals, "latency">): void {
  for (let i = 0; i < 5; i++) into.status[i]! += from.status[i]!;
  into.resets += from.resets; into.timeouts += from.timeouts; into.requests += from.requests;
}

/** Adds `from` into `into` (component by component, target by target). */
export function mergeComponents(into: Map<string, ComponentTotals>, from: Map<string, ComponentTotals>): void {
  for (const [name, c] of from) {
    let acc = into.get(name);
    if (!acc) { acc = emptyComponent(); into.set(name, acc); }
    acc.reads += c.reads; acc.writes += c.writes; acc.shadowWeightBp = c.shadowWeightBp;
    for (const f of CONSISTENCY_FIELDS) acc.consistency[f]! += c.consistency[f]!;
    addFloor(acc.floor, c.floor);
    for (const [caller, t] of c.callers) addCaller(acc.callers, caller, t);
    for (const [tn, t] of c.targets) {
      let at = acc.targets.get(tn);
      if (!at) { at = emptyTarget(); acc.targets.set(tn, at); }
      at.latency.merge(t.latency);
      addCounts(at, t);
    }
  }
}
