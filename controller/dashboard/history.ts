// The dashboard's history per component (risk, failure probability, shadow weight, replication lag,
// mirrored-read divergence), in two tiers: the last 15 minutes at one point a second (fine) and the
// last 6 hours at one point per 15 s (coarse: the mean of the fine points of each 15 s bucket). Both
// are columnar rings (one Float64Array for the times, one Float32Array per series, NaN for "no data"):
// about 28 bytes a point, 65 KB per component for both tiers.
//
// Durable when the controller has a stateDir: <stateDir>/dashboard-history.json, written whole (temp
// file, fsync, rename, fsync of the directory) at most every SAVE_EVERY_MS and at stop, loaded at start.
// A missing file starts empty; a corrupt one starts empty with a warning: the history is a picture for
// people, never a reason not to start.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { replaceFileText } from "../durable-file.js";

/** The series kept per point, with the decimals they are rounded to (risk 0.1234, lag 1.234 s). */
export const SERIES = ["risk", "probability", "shadowPercent", "lagS", "divergence"] as const;
export type SeriesName = (typeof SERIES)[number];
const DECIMALS: Record<SeriesName, number> = { risk: 4, probability: 4, shadowPercent: 2, lagS: 3, divergence: 4 };

/** One sample: t in wall ms, null where there is no data. */
export type HistoryPoint = { t: number } & Record<SeriesName, number | null>;
/** Columns of equal length, oldest first; t in wall ms. */
export type HistoryColumns = { t: number[] } & Record<SeriesName, (number | null)[]>;
/** What the chart draws: the coarse tier up to where the fine tier starts (`fineFrom`), then the fine tier. */
export type HistorySeries = HistoryColumns & { fineFrom: number };

export const FILE_NAME = "dashboard-history.json";
export const SAVE_EVERY_MS = 60_000;
const FORMAT_VERSION = 1;

export interface HistoryLogger { warn(obj: object, msg: string): void; info(obj: object, msg: string): void }

export interface DashboardHistoryOptions {
  /** Fine points kept per component (default 900: 15 minutes at one a second). */
  fineCapacity?: number;
  /** The fine tier's nominal spacing (default 1000 ms; a wider gap is drawn as a gap). */
  fineStepMs?: number;
  /** Coarse points kept per component (default 1440: 6 hours at one per 15 s). */
  coarseCapacity?: number;
  /** The coarse bucket (default 15 000 ms). */
  coarseStepMs?: number;
  /** Where the history is saved (null or absent: memory only). */
  file?: string | null;
  log?: HistoryLogger;
}

const round = (v: number, d: number) => { const f = 10 ** d; return Math.round(v * f) / f; };
const norm = (v: number | null | undefined): number => (v === null || v === undefined || !Number.isFinite(v) ? NaN : v);

/** A bounded ring of points, one typed array per column. */
class Ring {
  readonly t: Float64Array;
  readonly v: Float32Array[];
  private head = 0;
  n = 0;
  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.v = SERIES.map(() => new Float32Array(capacity));
  }
  push(t: number, vals: ArrayLike<number>): void {
    const i = (this.head + this.n) % this.capacity;
    this.t[i] = t;
    for (let k = 0; k < SERIES.length; k++) this.v[k]![i] = vals[k]!;
    if (this.n < this.capacity) this.n++;
    else this.head = (this.head + 1) % this.capacity;
  }
  private idx(j: number): number { return (this.head + j) % this.capacity; }
  timeAt(j: number): number { return this.t[this.idx(j)]!; }
  valuesAt(j: number): number[] { const i = this.idx(j); return this.v.map((col) => col[i]!); }
  last(): number { return this.n ? this.timeAt(this.n - 1) : -Infinity; }
  /** Drops the newest points from time t on (a clock that went back). */
  truncateFrom(t: number): void { while (this.n && this.last() >= t) this.n--; }
  /**
   * Appends the points with time under `before` to `out`, null for NaN, and a gap (a null point) where
   * two are more than gapMs apart (firstGapMs: between what `out` held and this ring's first point).
   */
  appendTo(out: HistoryColumns, before: number, gapMs: number, firstGapMs = gapMs): void {
    let prev = out.t.length ? out.t[out.t.length - 1]! : null;
    for (let j = 0; j < this.n; j++) {
      const i = this.idx(j), t = this.t[i]!;
      if (t >= before) break;
      if (prev !== null && t - prev > (j === 0 ? firstGapMs : gapMs)) {
        out.t.push(prev + 1);
        for (const s of SERIES) out[s].push(null);
      }
      out.t.push(t);
      SERIES.forEach((s, k) => { const v = this.v[k]![i]!; out[s].push(Number.isNaN(v) ? null : round(v, DECIMALS[s])); });
      prev = t;
    }
  }
}

interface Tiers {
  fine: Ring;
  coarse: Ring;
  /** The coarse bucket being filled: its index, per series the sum and count of its non-null values. */
  bucket: number | null;
  sum: Float64Array;
  count: Uint32Array;
}

function emptyColumns(): HistoryColumns {
  return { t: [], risk: [], probability: [], shadowPercent: [], lagS: [], divergence: [] };
}

/** Every component's two tiers; persisted to `file` when one is given. */
export class DashboardHistory {
  private readonly tiers = new Map<string, Tiers>();
  private readonly o: Required<Omit<DashboardHistoryOptions, "file" | "log">>;
  readonly file: string | null;
  private readonly log: HistoryLogger | null;
  private lastSaveMs: number | null = null;

  constructor(opts: DashboardHistoryOptions = {}) {
    this.o = { fineCapacity: opts.fineCapacity ?? 900, fineStepMs: opts.fineStepMs ?? 1000, coarseCapacity: opts.coarseCapacity ?? 1440, coarseStepMs: opts.coarseStepMs ?? 15_000 };
    this.file = opts.file ?? null;
    this.log = opts.log ?? null;
  }

  /** The history for a controller with (or without) a stateDir, loaded from its file; components not listed are dropped. */
  static open(o: { stateDir: string | null; log: HistoryLogger; components?: string[] } & Omit<DashboardHistoryOptions, "file" | "log">): DashboardHistory {
    const { stateDir, components, ...rest } = o;
    const h = new DashboardHistory({ ...rest, file: stateDir ? path.join(stateDir, FILE_NAME) : null });
    h.load(components);
    return h;
  }

  private tiersOf(component: string): Tiers {
    let t = this.tiers.get(component);
    if (!t) {
      t = { fine: new Ring(this.o.fineCapacity), coarse: new Ring(this.o.coarseCapacity), bucket: null, sum: new Float64Array(SERIES.length), count: new Uint32Array(SERIES.length) };
      this.tiers.set(component, t);
    }
    return t;
  }

  components(): string[] { return [...this.tiers.keys()]; }

  /** Records one sample (values rounded to their series' decimals); a sample older than the newest drops the newer ones. */
  sample(component: string, p: HistoryPoint): void {
    const tr = this.tiersOf(component);
    if (p.t <= tr.fine.last()) {
      // The clock went back: drop what is newer, and refill the open bucket from the fine points left in it.
      const start = Math.floor(p.t / this.o.coarseStepMs) * this.o.coarseStepMs;
      tr.fine.truncateFrom(p.t);
      tr.coarse.truncateFrom(start);
      tr.bucket = null;
      tr.sum.fill(0);
      tr.count.fill(0);
      for (let j = 0; j < tr.fine.n; j++) if (tr.fine.timeAt(j) >= start) this.accumulate(tr, tr.fine.timeAt(j), tr.fine.valuesAt(j));
    }
    const vals = SERIES.map((s) => { const v = norm(p[s]); return Number.isNaN(v) ? v : round(v, DECIMALS[s]); });
    tr.fine.push(p.t, vals);
    this.accumulate(tr, p.t, vals);
  }

  /** Adds a fine point to the coarse bucket; a point in a later bucket first closes the open one into the coarse tier. */
  private accumulate(tr: Tiers, t: number, vals: number[]): void {
    const b = Math.floor(t / this.o.coarseStepMs);
    if (tr.bucket !== null && b !== tr.bucket) {
      tr.coarse.push(tr.bucket * this.o.coarseStepMs, SERIES.map((_, k) => (tr.count[k]! ? tr.sum[k]! / tr.count[k]! : NaN)));
      tr.sum.fill(0);
      tr.count.fill(0);
    }
    tr.bucket = b;
    vals.forEach((v, k) => { if (!Number.isNaN(v)) { tr.sum[k]! += v; tr.count[k]!++; } });
  }

  /** The chart's series: coarse points whose bucket ends before the first fine point, then the fine points. */
  get(component: string): HistorySeries {
    const tr = this.tiers.get(component);
    const out = emptyColumns();
    if (!tr) return { ...out, fineFrom: 0 };
    const fineStart = tr.fine.n ? tr.fine.timeAt(0) : Infinity;
    tr.coarse.appendTo(out, fineStart - this.o.coarseStepMs + 1, 3 * this.o.coarseStepMs);
    const fineFrom = out.t.length;
    tr.fine.appendTo(out, Infinity, 3 * this.o.fineStepMs, 3 * this.o.coarseStepMs);
    return { ...out, fineFrom };
  }

  /** One tier as columns (tests, and the file). */
  tier(component: string, which: "fine" | "coarse"): HistoryColumns {
    const out = emptyColumns();
    this.tiers.get(component)?.[which].appendTo(out, Infinity, Infinity);
    return out;
  }

  /** Saves when SAVE_EVERY_MS passed since the last save (or the first call); never throws. */
  saveIfDue(nowMs: number): void {
    if (!this.file) return;
    if (this.lastSaveMs === null) { this.lastSaveMs = nowMs; return; }
    if (nowMs - this.lastSaveMs < SAVE_EVERY_MS) return;
    this.lastSaveMs = nowMs;
    this.save();
  }

  /** Writes both tiers of every component to the file, atomically; logs (never throws) on failure. Returns whether it saved. */
  save(): boolean {
    if (!this.file) return false;
    try {
      const components: Record<string, { fine: HistoryColumns; coarse: HistoryColumns }> = {};
      for (const name of this.tiers.keys()) components[name] = { fine: this.tier(name, "fine"), coarse: this.tier(name, "coarse") };
      const body = JSON.stringify({ version: FORMAT_VERSION, fineStepMs: this.o.fineStepMs, coarseStepMs: this.o.coarseStepMs, components });
      // The rename is done either way; a directory fsync is best effort here.
      replaceFileText(this.file, body, { dirFsync: "best-effort" });
      return true;
    } catch (e) {
      this.log?.warn({ err: e, file: this.file }, "cannot save the dashboard history");
      return false;
    }
  }

  /**
   * Replaces the history with the file's (only the listed components, when given). Missing file: empty,
   * logged as info (a first start). Corrupt file: empty, logged as a warning, and returned.
   */
  load(components?: string[]): string[] {
    if (!this.file) return [];
    if (!existsSync(this.file)) { this.log?.info({ file: this.file }, "no saved dashboard history: starting empty"); return []; }
    let parsed: Map<string, { fine: HistoryColumns; coarse: HistoryColumns }>;
    try {
      parsed = parseFile(readFileSync(this.file, "utf8"), this.o.coarseStepMs);
    } catch (e) {
      const w = `${this.file}: ${(e as Error).message}: the dashboard history starts empty`;
      this.log?.warn({ file: this.file }, w);
      return [w];
    }
    this.tiers.clear();
    const keep = components ? new Set(components) : null;
    for (const [name, c] of parsed) {
      if (keep && !keep.has(name)) continue;
      const tr = this.tiersOf(name);
      const row = (cols: HistoryColumns, j: number) => SERIES.map((s) => norm(cols[s][j]));
      for (let j = 0; j < c.coarse.t.length; j++) tr.coarse.push(c.coarse.t[j]!, row(c.coarse, j));
      // The open bucket was not saved: it is rebuilt from the fine points after the last coarse one.
      const lastCoarse = tr.coarse.last();
      for (let j = 0; j < c.fine.t.length; j++) {
        const t = c.fine.t[j]!, vals = row(c.fine, j);
        tr.fine.push(t, vals);
        if (t >= lastCoarse + this.o.coarseStepMs) this.accumulate(tr, t, vals);
      }
    }
    return [];
  }
}

/** Checks the file's shape: version, the same coarse bucket, per component two tiers of equal-length columns with ascending times. */
function parseFile(text: string, coarseStepMs: number): Map<string, { fine: HistoryColumns; coarse: HistoryColumns }> {
  let data: unknown;
  try { data = JSON.parse(text); } catch (e) { throw new Error(`not JSON (${(e as Error).message})`); }
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!obj(data)) throw new Error("not a JSON object");
  if (data.version !== FORMAT_VERSION) throw new Error(`version: ${JSON.stringify(data.version)}, expected ${FORMAT_VERSION}`);
  if (data.coarseStepMs !== coarseStepMs) throw new Error(`coarseStepMs: ${JSON.stringify(data.coarseStepMs)}, expected ${coarseStepMs}`);
  if (!obj(data.components)) throw new Error("components: not an object");
  const out = new Map<string, { fine: HistoryColumns; coarse: HistoryColumns }>();
  for (const [name, c] of Object.entries(data.components)) {
    if (!obj(c)) throw new Error(`components.${name}: not an object`);
    const tier = (which: "fine" | "coarse"): HistoryColumns => {
      const where = `components.${name}.${which}`, x = c[which];
      if (!obj(x)) throw new Error(`${where}: not an object`);
      const t = x.t;
      if (!Array.isArray(t) || !t.every((v, i) => typeof v === "number" && Number.isFinite(v) && (i === 0 || v > (t[i - 1] as number)))) throw new Error(`${where}.t: not ascending finite numbers`);
      const cols = { t: t as number[] } as HistoryColumns;
      for (const s of SERIES) {
        const v = x[s];
        if (!Array.isArray(v) || v.length !== t.length || !v.every((y) => y === null || (typeof y === "number" && Number.isFinite(y)))) throw new Error(`${where}.${s}: not ${t.length} numbers or nulls`);
        cols[s] = v as (number | null)[];
      }
      return cols;
    };
    out.set(name, { fine: tier("fine"), coarse: tier("coarse") });
  }
  return out;
}
