// The impact analysis's service graph: who calls whom, at what time-decayed rate, error ratio and
// latency, and how much a callee's errors propagate to its caller; bounded in memory, saved to and
// loaded from a JSON file in the controller's state directory (stateDir/impact-graph.json).
//
// Input: one observe(atMs, windowMs, edges) per merged telemetry window (every proxy's report of the
// window summed by the controller); a window may have no edges (no traffic: the rates fall).
//
// Rates: each edge keeps exponentially decayed sums of requests, errors and latency (half-life
// `halfLifeMs`, default 15 min); the graph keeps the decayed sum of the windows' lengths. A rate is
// decayed requests / decayed seconds, i.e. the window-length-weighted average rate, each window
// weighted by 2^(-age/halfLife) where age is the elapsed time since its end (atMs), so irregular or
// missing windows are handled by the elapsed time rather than a window count.
//
// Error propagation, for an edge A -> B where A is itself a callee: per window in which A -> B was seen
// and both A and B served requests, x = B's error ratio (all B's inbound edges), y = A's. Decayed
// (half-life `propagationHalfLifeMs`, default 6 h) sums of 1, x, y, x², xy give the regression slope
// cov(x,y)/var(x), clamped to [0,1]: the share of B's errors that become A's errors. `samples` is the
// decayed count of such windows; the slope is null below `minWindows` (default 30) of them or when
// var(x) < `minErrorVariance` (B's error ratio barely moved: nothing to learn from). Assumption: that
// A's errors rise with B's over many windows is evidence of propagation, not proof (a common cause, e.g.
// a shared database, correlates them too); rank.ts uses it in place of the structural estimate.
//
// The caller "other" is the filter's overflow bucket (callers beyond its top-K): an edge's caller, never
// a node. Bounds: a callee keeps at most `maxCallersPerNode` inbound edges ("other" included); past it
// the lowest-rate ones are folded into its "other" edge (their counts added, not lost). Past `maxNodes`
// nodes, callers that are not callees are folded away first (lowest outbound rate first), then the
// lowest-inbound callees are dropped with their inbound edges (counted in `counters.droppedNodes`).
// Edges not seen for `expireAfterMs` (default 24 h) are dropped.
import { OTHER_CALLER } from "../telemetry/report.js";
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { replaceFileText } from "../durable-file.js";
import { zodProblem } from "../yaml-config.js";

/** Bad input to the impact analysis; the message starts with the field that is wrong. */
export class ImpactError extends Error {
  override name = "ImpactError";
}

/** Checks a number option/input and returns it; the error names `field`. */
export function checkNumber(field: string, v: unknown, o: { min?: number; above?: number; max?: number; integer?: boolean } = {}): number {
  const ok = typeof v === "number" && Number.isFinite(v) && (!o.integer || Number.isInteger(v))
    && (o.min === undefined || v >= o.min) && (o.above === undefined || v > o.above) && (o.max === undefined || v <= o.max);
  if (ok) return v as number;
  const want = [o.integer ? "an integer" : "a finite number", o.min !== undefined ? `≥ ${o.min}` : "", o.above !== undefined ? `> ${o.above}` : "", o.max !== undefined ? `≤ ${o.max}` : ""].filter(Boolean).join(" ");
  throw new ImpactError(`${field}: must be ${want} (got ${typeof v === "number" ? String(v) : JSON.stringify(v) ?? typeof v})`);
}

/** The callers past the filters' top-K, together: the telemetry's own key for them. */
export const OTHER = OTHER_CALLER;

export interface EdgeDelta { callee: string; caller: string; requests: number; errors: number; latencyMsSum: number }

export interface GraphOptions {
  halfLifeMs?: number;
  propagationHalfLifeMs?: number;
  minWindows?: number;
  minErrorVariance?: number;
  maxNodes?: number;
  maxCallersPerNode?: number;
  expireAfterMs?: number;
}

export const DEFAULT_GRAPH_OPTIONS: Readonly<Required<GraphOptions>> = {
  halfLifeMs: 15 * 60_000, propagationHalfLifeMs: 6 * 3_600_000, minWindows: 30, minErrorVariance: 1e-6,
  maxNodes: 5_000, maxCallersPerNode: 64, expireAfterMs: 24 * 3_600_000,
};

export interface NodeSnapshot { name: string; inboundRps: number; errorRatio: number; callers: number; isCaller: boolean; isCallee: boolean }
export interface EdgeSnapshot {
  caller: string; callee: string; rps: number; errorRatio: number; meanLatencyMs: number | null;
  propagation: number | null; samples: number; lastSeenMs: number;
}
/** Plain data, sorted (nodes by name, edges by callee then caller); atMs: the last window's (null: none yet). */
export interface GraphSnapshot { atMs: number | null; nodes: NodeSnapshot[]; edges: EdgeSnapshot[] }

class Edge {
  req = 0; err = 0; lat = 0; stamp = 0;
  w = 0; sx = 0; sy = 0; sxx = 0; sxy = 0;
  constructor(readonly caller: string, readonly callee: string, public atMs: number, public lastSeenMs: number) {}
}
interface Node { inbound: Map<string, Edge>; out: Map<string, Edge> }

function resolveOptions(o: GraphOptions, where: string): Required<GraphOptions> {
  const r = { ...DEFAULT_GRAPH_OPTIONS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as Required<GraphOptions>;
  checkNumber(`${where}halfLifeMs`, r.halfLifeMs, { above: 0 });
  checkNumber(`${where}propagationHalfLifeMs`, r.propagationHalfLifeMs, { above: 0 });
  checkNumber(`${where}minWindows`, r.minWindows, { min: 1 });
  checkNumber(`${where}minErrorVariance`, r.minErrorVariance, { min: 0 });
  checkNumber(`${where}maxNodes`, r.maxNodes, { min: 1, integer: true });
  checkNumber(`${where}maxCallersPerNode`, r.maxCallersPerNode, { min: 1, integer: true });
  checkNumber(`${where}expireAfterMs`, r.expireAfterMs, { above: 0 });
  return r;
}

const name = z.string().min(1).max(1000);
const nonNeg = z.number().min(0);
const fileSchema = z.strictObject({
  version: z.literal(1),
  options: z.strictObject({
    halfLifeMs: z.number().positive(), propagationHalfLifeMs: z.number().positive(), minWindows: z.number().min(1), minErrorVariance: nonNeg,
    maxNodes: z.int().min(1), maxCallersPerNode: z.int().min(1), expireAfterMs: z.number().positive(),
  }),
  nowMs: z.number().nullable(),
  span: nonNeg,
  edges: z.array(z.strictObject({
    caller: name, callee: name, requests: nonNeg, errors: nonNeg, latencyMsSum: nonNeg, lastSeenMs: z.number(),
    moments: z.tuple([nonNeg, nonNeg, nonNeg, nonNeg, nonNeg]),
  })),
});
export type GraphFile = z.infer<typeof fileSchema>;

export class ServiceGraph {
  readonly options: Readonly<Required<GraphOptions>>;
  /** Edges folded into "other", callee nodes dropped past maxNodes, edges expired. */
  readonly counters = { foldedEdges: 0, droppedNodes: 0, expiredEdges: 0 };
  private readonly nodes = new Map<string, Node>();
  private nowMs: number | null = null;
  private span = 0; // decayed seconds of windows
  private windows = 0;
  private oldestSeenMs = Infinity; // a lower bound of every edge's lastSeenMs
  private readonly k: number;
  private readonly kp: number;

  constructor(options: GraphOptions = {}) {
    this.options = resolveOptions(options, "options.");
    this.k = Math.LN2 / this.options.halfLifeMs;
    this.kp = Math.LN2 / this.options.propagationHalfLifeMs;
  }

  get atMs(): number | null { return this.nowMs; }
  get edgeCount(): number { let n = 0; for (const v of this.nodes.values()) n += v.inbound.size; return n; }
  get nodeCount(): number { return this.nodes.size; }

  observe(atMs: number, windowMs: number, edges: readonly EdgeDelta[]): void {
    checkNumber("atMs", atMs);
    if (this.nowMs !== null && atMs < this.nowMs) throw new ImpactError(`atMs: goes back in time (${atMs} < ${this.nowMs}, the previous window's)`);
    checkNumber("windowMs", windowMs, { above: 0 });
    if (!Array.isArray(edges)) throw new ImpactError("edges: must be an array");
    for (let i = 0; i < edges.length; i++) checkDelta(edges[i], i);

    this.span = this.span * (this.nowMs === null ? 1 : Math.exp(-this.k * (atMs - this.nowMs))) + windowMs / 1000;
    this.nowMs = atMs;
    const stamp = ++this.windows;
    const win = new Map<string, { req: number; err: number }>(); // this window's totals per callee
    const touched: Edge[] = [];
    const crowded: Node[] = [];
    const max = this.options.maxCallersPerNode;
    for (const d of edges) {
      let callee = this.nodes.get(d.callee);
      if (!callee) this.nodes.set(d.callee, (callee = { inbound: new Map(), out: new Map() }));
      let e = callee.inbound.get(d.caller);
      if (!e) {
        e = new Edge(d.caller, d.callee, atMs, atMs);
        callee.inbound.set(d.caller, e);
        if (atMs < this.oldestSeenMs) this.oldestSeenMs = atMs;
        if (d.caller !== OTHER) {
          let caller = this.nodes.get(d.caller);
          if (!caller) this.nodes.set(d.caller, (caller = { inbound: new Map(), out: new Map() }));
          caller.out.set(d.callee, e);
        }
        if (callee.inbound.size === max + 1) crowded.push(callee);
      } else this.decayTo(e, atMs);
      e.req += d.requests; e.err += d.errors; e.lat += d.latencyMsSum; e.lastSeenMs = atMs;
      if (e.stamp !== stamp) { e.stamp = stamp; touched.push(e); }
      const t = win.get(d.callee);
      if (t) { t.req += d.requests; t.err += d.errors; } else win.set(d.callee, { req: d.requests, err: d.errors });
    }
    for (const e of touched) {
      if (e.caller === OTHER) continue;
      const a = win.get(e.caller), b = win.get(e.callee);
      if (!a || !b || a.req <= 0 || b.req <= 0) continue;
      const x = b.err / b.req, y = a.err / a.req;
      e.w += 1; e.sx += x; e.sy += y; e.sxx += x * x; e.sxy += x * y;
    }
    for (const node of crowded) this.foldExcess(node);
    if (atMs - this.options.expireAfterMs > this.oldestSeenMs) this.expire(atMs - this.options.expireAfterMs);
    if (this.nodes.size > this.options.maxNodes) this.shrinkNodes();
  }

  snapshot(): GraphSnapshot {
    const now = this.nowMs;
    const nodes: NodeSnapshot[] = [];
    const edges: EdgeSnapshot[] = [];
    const names = [...this.nodes.keys()].sort(cmp);
    const perS = this.span > 0 ? 1 / this.span : 0;
    for (const n of names) {
      const node = this.nodes.get(n)!;
      let req = 0, err = 0;
      for (const c of [...node.inbound.keys()].sort(cmp)) {
        const e = node.inbound.get(c)!;
        if (now !== null) this.decayTo(e, now);
        req += e.req; err += e.err;
        edges.push({
          caller: e.caller, callee: e.callee, rps: e.req * perS, errorRatio: e.req > 0 ? e.err / e.req : 0,
          meanLatencyMs: e.req > 0 ? e.lat / e.req : null, propagation: this.propagation(e), samples: e.w, lastSeenMs: e.lastSeenMs,
        });
      }
      nodes.push({ name: n, inboundRps: req * perS, errorRatio: req > 0 ? err / req : 0, callers: node.inbound.size, isCaller: node.out.size > 0, isCallee: node.inbound.size > 0 });
    }
    return { atMs: now, nodes, edges };
  }

  toJSON(): GraphFile {
    const edges: GraphFile["edges"] = [];
    for (const [callee, node] of [...this.nodes].sort((a, b) => cmp(a[0], b[0]))) {
      for (const [caller, e] of [...node.inbound].sort((a, b) => cmp(a[0], b[0]))) {
        if (this.nowMs !== null) this.decayTo(e, this.nowMs);
        edges.push({ caller, callee, requests: e.req, errors: e.err, latencyMsSum: e.lat, lastSeenMs: e.lastSeenMs, moments: [e.w, e.sx, e.sy, e.sxx, e.sxy] });
      }
    }
    return { version: 1, options: { ...this.options }, nowMs: this.nowMs, span: this.span, edges };
  }

  /** A graph from toJSON()'s data; `options` (when given) replace the saved ones. Errors: SOURCE: field: reason. */
  static fromJSON(data: unknown, source: string, options?: GraphOptions): ServiceGraph {
    const r = fileSchema.safeParse(data);
    if (!r.success) throw new ImpactError(`${source}: ${zodProblem(r.error, data, "(graph)").text}`);
    const f = r.data;
    const bad = (field: string, why: string) => new ImpactError(`${source}: ${field}: ${why}`);
    let opts: Required<GraphOptions>;
    try { opts = resolveOptions({ ...f.options, ...Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) }, "options."); } catch (e) { throw bad("options", (e as Error).message); }
    const g = new ServiceGraph(opts);
    if (f.nowMs === null && (f.edges.length > 0 || f.span > 0)) throw bad("nowMs", "null (no window yet) but the graph has data");
    g.nowMs = f.nowMs;
    g.span = f.span;
    const now = f.nowMs ?? 0;
    f.edges.forEach((x, i) => {
      if (x.callee === OTHER) throw bad(`edges[${i}].callee`, `"${OTHER}" is the overflow bucket, not a component`);
      if (x.errors > x.requests * (1 + 1e-9) + 1e-9) throw bad(`edges[${i}].errors`, `more than requests (${x.errors} > ${x.requests})`);
      if (x.lastSeenMs > now) throw bad(`edges[${i}].lastSeenMs`, `after nowMs (${x.lastSeenMs} > ${now})`);
      const [w, sx, sy] = x.moments;
      if (sx > w * (1 + 1e-9) + 1e-9 || sy > w * (1 + 1e-9) + 1e-9) throw bad(`edges[${i}].moments`, "the sums of error ratios exceed the window count");
      let callee = g.nodes.get(x.callee);
      if (!callee) g.nodes.set(x.callee, (callee = { inbound: new Map(), out: new Map() }));
      if (callee.inbound.has(x.caller)) throw bad(`edges[${i}]`, `duplicate edge ${x.caller} -> ${x.callee}`);
      const e = new Edge(x.caller, x.callee, now, x.lastSeenMs);
      e.req = x.requests; e.err = x.errors; e.lat = x.latencyMsSum;
      [e.w, e.sx, e.sy, e.sxx, e.sxy] = x.moments;
      callee.inbound.set(x.caller, e);
      if (x.caller !== OTHER) {
        let caller = g.nodes.get(x.caller);
        if (!caller) g.nodes.set(x.caller, (caller = { inbound: new Map(), out: new Map() }));
        caller.out.set(x.callee, e);
      }
      g.oldestSeenMs = Math.min(g.oldestSeenMs, x.lastSeenMs);
    });
    for (const node of [...g.nodes.values()]) if (node.inbound.size > opts.maxCallersPerNode) g.foldExcess(node);
    if (g.nodes.size > opts.maxNodes) g.shrinkNodes();
    return g;
  }

  private propagation(e: Edge): number | null {
    if (e.w < this.options.minWindows || e.w <= 0) return null;
    const mx = e.sx / e.w, my = e.sy / e.w;
    const varx = e.sxx / e.w - mx * mx;
    if (!(varx > 0) || varx < this.options.minErrorVariance) return null;
    const slope = (e.sxy / e.w - mx * my) / varx;
    return Math.min(1, Math.max(0, slope));
  }

  private decayTo(e: Edge, t: number): void {
    const dt = t - e.atMs;
    if (dt <= 0) return;
    const f = Math.exp(-this.k * dt), g = Math.exp(-this.kp * dt);
    e.req *= f; e.err *= f; e.lat *= f;
    e.w *= g; e.sx *= g; e.sy *= g; e.sxx *= g; e.sxy *= g;
    e.atMs = t;
  }

  /** Folds `e` into its callee's "other" edge (created if missing) and removes it. */
  private fold(e: Edge): void {
    const node = this.nodes.get(e.callee)!;
    const now = this.nowMs ?? e.atMs;
    let o = node.inbound.get(OTHER);
    if (!o) node.inbound.set(OTHER, (o = new Edge(OTHER, e.callee, now, e.lastSeenMs)));
    this.decayTo(o, now); this.decayTo(e, now);
    o.req += e.req; o.err += e.err; o.lat += e.lat;
    o.lastSeenMs = Math.max(o.lastSeenMs, e.lastSeenMs);
    this.counters.foldedEdges++;
    this.remove(e);
  }

  private remove(e: Edge): void {
    const callee = this.nodes.get(e.callee);
    if (callee) { callee.inbound.delete(e.caller); if (callee.inbound.size === 0 && callee.out.size === 0) this.nodes.delete(e.callee); }
    if (e.caller === OTHER) return;
    const caller = this.nodes.get(e.caller);
    if (caller) { caller.out.delete(e.callee); if (caller.inbound.size === 0 && caller.out.size === 0) this.nodes.delete(e.caller); }
  }

  private foldExcess(node: Node): void {
    const max = this.options.maxCallersPerNode;
    if (node.inbound.size <= max) return;
    const now = this.nowMs!;
    const real = [...node.inbound.values()].filter((e) => e.caller !== OTHER);
    for (const e of real) this.decayTo(e, now);
    real.sort((a, b) => a.req - b.req || cmp(a.caller, b.caller));
    const excess = node.inbound.size - max + (node.inbound.has(OTHER) ? 0 : 1);
    for (let i = 0; i < excess && i < real.length; i++) this.fold(real[i]!);
  }

  private expire(before: number): void {
    let oldest = Infinity;
    for (const node of [...this.nodes.values()]) {
      for (const e of [...node.inbound.values()]) {
        if (e.lastSeenMs < before) { this.remove(e); this.counters.expiredEdges++; } else oldest = Math.min(oldest, e.lastSeenMs);
      }
    }
    this.oldestSeenMs = oldest;
  }

  private shrinkNodes(): void {
    const max = this.options.maxNodes;
    const now = this.nowMs!;
    const total = (m: Map<string, Edge>) => { let s = 0; for (const e of m.values()) { this.decayTo(e, now); s += e.req; } return s; };
    const callersOnly = [...this.nodes].filter(([, n]) => n.inbound.size === 0).map(([k, n]) => ({ k, n, r: total(n.out) }));
    callersOnly.sort((a, b) => a.r - b.r || cmp(a.k, b.k));
    for (const { n } of callersOnly) {
      if (this.nodes.size <= max) return;
      for (const e of [...n.out.values()]) this.fold(e);
    }
    const callees = [...this.nodes].map(([k, n]) => ({ k, n, r: total(n.inbound) }));
    callees.sort((a, b) => a.r - b.r || cmp(a.k, b.k));
    for (const { k, n } of callees) {
      if (this.nodes.size <= max) return;
      if (!this.nodes.has(k)) continue;
      for (const e of [...n.inbound.values()]) this.remove(e);
      for (const e of [...n.out.values()]) if (this.nodes.has(e.callee)) this.fold(e);
      this.nodes.delete(k);
      this.counters.droppedNodes++;
    }
  }
}

function checkDelta(d: EdgeDelta | undefined, i: number): void {
  const at = `edges[${i}]`;
  if (d === null || typeof d !== "object") throw new ImpactError(`${at}: must be an object`);
  for (const f of ["callee", "caller"] as const) if (typeof d[f] !== "string" || d[f].length === 0) throw new ImpactError(`${at}.${f}: must be a non-empty string (got ${JSON.stringify(d[f])})`);
  if (d.callee === OTHER) throw new ImpactError(`${at}.callee: "${OTHER}" is the overflow bucket, not a component`);
  checkNumber(`${at}.requests`, d.requests, { min: 0 });
  checkNumber(`${at}.errors`, d.errors, { min: 0 });
  if (d.errors > d.requests) throw new ImpactError(`${at}.errors: more than requests (${d.errors} > ${d.requests})`);
  checkNumber(`${at}.latencyMsSum`, d.latencyMsSum, { min: 0 });
}

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

/** Saves the graph durably (temp file, fsync, rename, fsync of the directory). */
export function saveGraph(file: string, graph: ServiceGraph): void {
  replaceFileText(file, JSON.stringify(graph.toJSON()) + "\n");
}

/** The saved graph (null: no file yet). Errors name FILE: field: reason. */
export function loadGraph(file: string, options?: GraphOptions): ServiceGraph | null {
  if (!existsSync(file)) return null;
  let raw: unknown;
  try { raw = JSON.parse(readFileSync(file, "utf8")); } catch (e) { throw new ImpactError(`${file}: not valid JSON: ${(e as Error).message}`); }
  return ServiceGraph.fromJSON(raw, file, options);
}
