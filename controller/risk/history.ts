// The failure model's memory (stateDir/history.jsonl): every `sampleEveryS` each component's predictor
// features (engine.featuresOf) and its risk, and the failures that happened: entering Failover (the
// controller saw the primary down) or an operator's `shadowmesh incident mark`. The learner labels the
// samples with the failures and retrains on them.
//
// Bounded: each component keeps its last maxSamplesPerComponent samples (default 8,640: one day at one
// every 10 s), the oldest dropped, and fewer when the configured components would together hold more
// than maxTotalSamples (default 2,000,000: a fleet of 1,000 components keeps 2,000 each, 5.5 hours).
// Failures keep the last maxFailures (default 10,000). In memory a sample is 56 bytes (8 time, 4 risk,
// 4 per feature, in a columnar ring): 8,640 are ~480 KiB a component, 2,000,000 ~110 MiB. On disk a
// sample line is ~85 bytes plus the component's name when most features are 0 (measured in
// test/risk/history.test.ts), up to ~150 when every one is set (4 decimals): ~0.75-1.3 MiB a component
// at the defaults, and the file is at most 1.25x what memory holds before it is compacted.
//
// Durable: samples and failures are appended (one write and one fsync per batch); when the file holds a
// quarter more samples than memory (the dropped oldest ones), it is rewritten (temp file, fsync,
// rename, fsync of the directory). Loaded like input: every line is checked (zod); a bad one is an
// error naming FILE:LINE: field: reason; a torn last line (a crash mid-append) is dropped with a warning.
//
// Format, one JSON record per line:
//   {"t":"history","version":1,"kinds":[...SIGNAL_KINDS]}                        (first; features follow this order)
//   {"t":"sample","component":...,"tMs":...,"risk":0..1,"f":[0..1, ...]}
//   {"t":"failure","component":...,"atMs":...,"source":"controller"|"operator","note"?:...,"by"?:...,"recoveredMs"?:...}
//   {"t":"recovered","component":...,"atMs":...}                                 (closes the component's open failure)
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import path from "node:path";
import { replaceFileDurably } from "../durable-file.js";
import { z } from "zod";
import { zodProblem } from "../yaml-config.js";
import { wallMs, type Clock } from "../../host/clock.js";
import { SIGNAL_KINDS, emptyFeatures, type Features } from "./predictor.js";

export class HistoryError extends Error {}

export const DEFAULT_SAMPLE_EVERY_S = 10;
export const DEFAULT_MAX_SAMPLES_PER_COMPONENT = 8_640;
export const DEFAULT_MAX_TOTAL_SAMPLES = 2_000_000;
export const DEFAULT_MAX_FAILURES = 10_000;
const MAX_TEXT = 500;

export type FailureSource = "controller" | "operator";
export interface FailureEvent {
  component: string; atMs: number; source: FailureSource; note?: string; by?: string;
  /** When the component was healthy again (absent: not yet, or not known). */
  recoveredMs?: number;
}
export interface HistorySample { component: string; tMs: number; risk: number; features: Features }
/** What the store samples: the risk engine. */
export interface FeatureSource {
  featuresOf(component: string): Float64Array | null;
  riskOf(component: string): { risk: number; noData: boolean } | undefined;
}

export interface HistoryOptions {
  /** Directory of history.jsonl; null keeps the history in memory only. */
  dir: string | null;
  clock: Clock;
  sampleEveryS?: number;
  maxSamplesPerComponent?: number;
  /** A bound over every configured component (divides among `components`). */
  maxTotalSamples?: number;
  maxFailures?: number;
  /** The configured components: samples of others are skipped at load (with a warning). */
  components?: readonly string[];
}

const K = SIGNAL_KINDS.length;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** One component's last `max` samples, columnar, growing by doubling up to `max`. */
class SampleRing {
  private t = new Float64Array(16);
  private r = new Float32Array(16);
  private f = new Float32Array(16 * K);
  private head = 0; // index of the oldest
  n = 0;
  constructor(private readonly max: number) {}
  private get cap(): number { return this.t.length; }
  push(tMs: number, risk: number, features: ArrayLike<number>): boolean {
    if (this.n === this.cap && this.cap < this.max) this.grow(Math.min(this.max, this.cap * 2));
    const full = this.n === this.cap;
    const i = full ? this.head : (this.head + this.n) % this.cap;
    this.t[i] = tMs; this.r[i] = risk;
    for (let k = 0; k < K; k++) this.f[i * K + k] = features[k] ?? 0;
    if (full) this.head = (this.head + 1) % this.cap; else this.n++;
    return full;
  }
  private grow(cap: number): void {
    const t = new Float64Array(cap), r = new Float32Array(cap), f = new Float32Array(cap * K);
    for (let j = 0; j < this.n; j++) {
      const i = (this.head + j) % this.cap;
      t[j] = this.t[i]!; r[j] = this.r[i]!;
      f.set(this.f.subarray(i * K, i * K + K), j * K);
    }
    this.t = t; this.r = r; this.f = f; this.head = 0;
  }
  /** The mean of the stored risks (null without samples). */
  meanRisk(): number | null {
    if (this.n === 0) return null;
    let sum = 0;
    for (let j = 0; j < this.n; j++) sum += this.r[(this.head + j) % this.cap]!;
    return sum / this.n;
  }
  *entries(): Generator<{ tMs: number; risk: number; features: Features }> {
    for (let j = 0; j < this.n; j++) {
      const i = (this.head + j) % this.cap;
      yield { tMs: this.t[i]!, risk: this.r[i]!, features: Float64Array.from(this.f.subarray(i * K, i * K + K)) };
    }
  }
}

const num = z.number().finite();
const unit = z.number().min(0).max(1);
const name = z.string().min(1).max(253);
const lineSchema = z.discriminatedUnion("t", [
  z.strictObject({ t: z.literal("history"), version: z.literal(1), kinds: z.array(z.string().min(1)).min(1).max(64) }),
  z.strictObject({ t: z.literal("sample"), component: name, tMs: num, risk: unit, f: z.array(unit).max(64) }),
  z.strictObject({
    t: z.literal("failure"), component: name, atMs: num, source: z.enum(["controller", "operator"]),
    note: z.string().max(MAX_TEXT).optional(), by: z.string().max(MAX_TEXT).optional(), recoveredMs: num.optional(),
  }),
  z.strictObject({ t: z.literal("recovered"), component: name, atMs: num }),
]);

/** The file's lines (UTF-8), each with whether a newline ended it, read a MiB at a time. */
function* readLines(file: string): Generator<[string, boolean]> {
  const fd = openSync(file, "r");
  const buf = Buffer.alloc(1 << 20);
  let carry = Buffer.alloc(0);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const chunk = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) { yield [chunk.toString("utf8", start, nl), true]; start = nl + 1; }
      carry = Buffer.from(chunk.subarray(start));
    }
    if (carry.length) yield [carry.toString("utf8"), false];
  } finally { closeSync(fd); }
}

export class HistoryStore {
  readonly file: string | null;
  readonly sampleEveryMs: number;
  readonly maxSamples: number;
  readonly maxFailures: number;
  /** What load() recovered from or skipped (a torn last line, components no longer configured). */
  warnings: string[] = [];
  private readonly rings = new Map<string, SampleRing>();
  private fails: FailureEvent[] = [];
  private fd: number | null = null;
  /** Sample lines in the file that memory no longer holds (dropped as oldest): the compaction trigger. */
  private stale = 0;
  private lastSampleMs = -Infinity;

  constructor(private readonly o: HistoryOptions) {
    this.sampleEveryMs = (o.sampleEveryS ?? DEFAULT_SAMPLE_EVERY_S) * 1000;
    const perComponent = o.maxSamplesPerComponent ?? DEFAULT_MAX_SAMPLES_PER_COMPONENT;
    const share = o.components?.length ? Math.floor((o.maxTotalSamples ?? DEFAULT_MAX_TOTAL_SAMPLES) / o.components.length) : Infinity;
    this.maxSamples = Math.max(1, Math.min(perComponent, share));
    this.maxFailures = o.maxFailures ?? DEFAULT_MAX_FAILURES;
    if (!(this.sampleEveryMs > 0)) throw new HistoryError(`sampleEveryS: must be positive, got ${o.sampleEveryS}`);
    if (!(Number.isInteger(this.maxSamples) && this.maxSamples >= 1)) throw new HistoryError(`maxSamplesPerComponent: must be a positive integer, got ${this.maxSamples}`);
    if (o.dir) mkdirSync(o.dir, { recursive: true });
    this.file = o.dir ? path.join(o.dir, "history.jsonl") : null;
  }

  /** Reads history.jsonl (if any). Throws HistoryError naming FILE:LINE: field: reason on a bad line. */
  load(): void {
    this.warnings = [];
    const f = this.file;
    if (!f || !existsSync(f)) return;
    const known = this.o.components ? new Set(this.o.components) : null;
    const skipped = new Map<string, number>();
    let map: number[] | null = null; // file kind index -> SIGNAL_KINDS index (-1: unknown kind)
    let rewrite = false;
    let i = -1, empty = true;
    for (const [line, terminated] of readLines(f)) {
      i++;
      if (!line) continue;
      empty = false;
      const where = `${f}:${i + 1}`;
      let raw: unknown;
      try { raw = JSON.parse(line); } catch (e) {
        if (!terminated) {
          this.warnings.push(`${where}: torn last record dropped (${line.length} bytes without a newline: a crash while appending)`);
          rewrite = true;
          break;
        }
        throw new HistoryError(`${where}: not valid JSON: ${(e as Error).message}`);
      }
      const r = lineSchema.safeParse(raw);
      if (!r.success) throw new HistoryError(`${where}: ${zodProblem(r.error, raw).text}`);
      const x = r.data;
      if (!map && x.t !== "history") throw new HistoryError(`${where}: t: the first record must be the header {"t":"history","version":1,"kinds":[...]}`);
      if (x.t === "history") {
        if (map) throw new HistoryError(`${where}: t: a second header`);
        map = x.kinds.map((k) => (SIGNAL_KINDS as readonly string[]).indexOf(k));
        if (map.some((j) => j < 0) || x.kinds.length !== K) rewrite = true;
      } else if (x.t === "sample") {
        if (x.f.length !== map!.length) throw new HistoryError(`${where}: f: ${x.f.length} features, the header names ${map!.length} kinds`);
        if (known && !known.has(x.component)) { skipped.set(x.component, (skipped.get(x.component) ?? 0) + 1); rewrite = true; continue; }
        const feats = emptyFeatures();
        x.f.forEach((v, j) => { if (map![j]! >= 0) feats[map![j]!] = v; });
        if (this.ring(x.component).push(x.tMs, x.risk, feats)) this.stale++;
      } else if (x.t === "failure") {
        this.fails.push({ component: x.component, atMs: x.atMs, source: x.source, ...(x.note !== undefined ? { note: x.note } : {}), ...(x.by !== undefined ? { by: x.by } : {}), ...(x.recoveredMs !== undefined ? { recoveredMs: x.recoveredMs } : {}) });
      } else if (!this.closeFailure(x.component, x.atMs)) {
        throw new HistoryError(`${where}: component: ${x.component} has no open controller failure before ${x.atMs} to recover from`);
      }
    }
    if (!map && !empty && !rewrite) throw new HistoryError(`${f}:1: t: no header record`);
    for (const [c, n] of skipped) this.warnings.push(`${f}: ${n} samples of ${c} skipped: not a configured component`);
    if (this.fails.length > this.maxFailures) { this.fails.splice(0, this.fails.length - this.maxFailures); rewrite = true; }
    if (rewrite || this.stale > 0) this.compact();
  }

  /** Takes one sample per component (with data) when sampleEveryS has passed since the last; returns how many. */
  maybeSample(src: FeatureSource, components: readonly string[]): number {
    const now = wallMs(this.o.clock);
    if (now - this.lastSampleMs < this.sampleEveryMs) return 0;
    this.lastSampleMs = now;
    const batch: HistorySample[] = [];
    for (const c of components) {
      const r = src.riskOf(c), f = src.featuresOf(c);
      if (!r || r.noData || !f) continue;
      batch.push({ component: c, tMs: now, risk: r.risk, features: f });
    }
    this.add(batch);
    return batch.length;
  }

  /** Appends samples (durable when it returns). */
  add(samples: readonly HistorySample[]): void {
    if (!samples.length) return;
    let out = "";
    for (const s of samples) {
      const f = Array.from({ length: K }, (_, k) => round4(Math.min(1, Math.max(0, s.features[k] ?? 0))));
      const risk = round4(Math.min(1, Math.max(0, s.risk)));
      if (this.ring(s.component).push(s.tMs, risk, f)) this.stale++;
      out += JSON.stringify({ t: "sample", component: s.component, tMs: s.tMs, risk, f }) + "\n";
    }
    this.append(out);
  }

  /** Records a failure (durable when it returns). */
  recordFailure(f: FailureEvent): void {
    if (!Number.isFinite(f.atMs)) throw new HistoryError(`failure of ${f.component}: time ${f.atMs} is not a number`);
    const rec: FailureEvent = { component: f.component, atMs: f.atMs, source: f.source };
    if (f.note) rec.note = f.note.slice(0, MAX_TEXT);
    if (f.by) rec.by = f.by.slice(0, MAX_TEXT);
    if (f.recoveredMs !== undefined) rec.recoveredMs = f.recoveredMs;
    this.fails.push(rec);
    this.append(JSON.stringify({ t: "failure", ...rec }) + "\n");
    if (this.fails.length > this.maxFailures) { this.fails.splice(0, this.fails.length - this.maxFailures); this.compact(); }
  }

  /**
   * Closes the component's open controller failure (the latest at or before atMs); false when there is
   * none. An operator's mark is a point in time: it is never open.
   */
  recordRecovery(component: string, atMs: number): boolean {
    if (!this.closeFailure(component, atMs)) return false;
    this.append(JSON.stringify({ t: "recovered", component, atMs }) + "\n");
    return true;
  }

  private closeFailure(component: string, atMs: number): boolean {
    let open: FailureEvent | null = null;
    for (const f of this.fails) {
      if (f.component === component && f.source === "controller" && f.recoveredMs === undefined && f.atMs <= atMs && (!open || f.atMs >= open.atMs)) open = f;
    }
    if (!open) return false;
    open.recoveredMs = atMs;
    return true;
  }

  /** True while the component has a controller failure without a recovery. */
  isDown(component: string): boolean { return this.fails.some((f) => f.component === component && f.source === "controller" && f.recoveredMs === undefined); }

  failures(): readonly FailureEvent[] { return this.fails; }

  /** Every stored sample, per component oldest first. */
  samples(): HistorySample[] {
    const out: HistorySample[] = [];
    for (const [component, ring] of this.rings) for (const e of ring.entries()) out.push({ component, ...e });
    return out;
  }

  /** The component's mean risk over its stored samples (null without any): how risky it has been. */
  meanRisk(component: string): number | null { return this.rings.get(component)?.meanRisk() ?? null; }

  sampleCount(component?: string): number {
    if (component !== undefined) return this.rings.get(component)?.n ?? 0;
    let n = 0;
    for (const r of this.rings.values()) n += r.n;
    return n;
  }

  /** Rewrites the file with what memory holds, atomically (temp file, fsync, rename, fsync of the directory). */
  compact(): void {
    this.stale = 0;
    if (!this.file) return;
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
    replaceFileDurably(this.file, (fd) => {
      // Written a component at a time: a large fleet's history never has to fit in one string.
      writeSync(fd, JSON.stringify({ t: "history", version: 1, kinds: SIGNAL_KINDS }) + "\n");
      for (const [component, ring] of this.rings) {
        let out = "";
        for (const s of ring.entries()) out += JSON.stringify({ t: "sample", component, tMs: s.tMs, risk: round4(s.risk), f: Array.from(s.features, round4) }) + "\n";
        if (out) writeSync(fd, out);
      }
      let out = "";
      for (const f of this.fails) out += JSON.stringify({ t: "failure", ...f }) + "\n";
      if (out) writeSync(fd, out);
    });
  }

  close(): void {
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
  }

  private ring(component: string): SampleRing {
    let r = this.rings.get(component);
    if (!r) { r = new SampleRing(this.maxSamples); this.rings.set(component, r); }
    return r;
  }

  private append(text: string): void {
    if (!this.file) return;
    if (this.fd === null) {
      // No file yet: the rewrite holds what memory holds, this record included.
      if (!existsSync(this.file)) { this.compact(); return; }
      this.fd = openSync(this.file, "a");
    }
    writeSync(this.fd, text);
    fsyncSync(this.fd);
    if (this.stale > Math.max(16, this.sampleCount() / 4)) this.compact();
  }
}
