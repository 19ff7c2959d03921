// The fuzzing loop shared by `npm run fuzz` and test/fuzz: batches of inputs drawn with fc.sample
// from a seed derived from (seed, target, kind, batch), run for a time budget, with progress lines,
// failures replayed and shrunk (fc.check with the batch's seed), and memory measured after warm-up
// and at the end (the filter's wasm pages per worker; the process heap after a full GC).
import fc from "fast-check";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { Worker } from "node:worker_threads";
import { FilterRig, filterInput, shrinkFilter, type FilterInput } from "./filter.js";
import { ControllerFuzzer, CONTROLLER_KINDS, type ControllerKind } from "./controller.js";

/** A JSON-safe, truncated rendering of an input (bigint, bytes and long strings shortened). */
function describe(x: unknown, maxString = 200): string {
  return JSON.stringify(x, (_k, v) => {
    if (typeof v === "bigint") return `${v}n`;
    if (v instanceof Uint8Array) return v.length > 64 ? `<${v.length} bytes: ${Buffer.from(v.subarray(0, 32)).toString("hex")}...>` : `<hex ${Buffer.from(v).toString("hex")}>`;
    if (typeof v === "string" && v.length > maxString) return `${v.slice(0, maxString)}...<${v.length} chars>`;
    return v;
  });
}

export type Target = "filter" | "controller" | "all";

export interface FuzzOptions {
  seconds: number;
  seed: number;
  target: Target;
  /** Share of the time the controller gets when target is "all" (default 0.2). */
  controllerShare?: number;
  /** Progress line every this many ms on stderr (0: none). */
  progressMs?: number;
  /** Failures shrunk and printed per target (default 3). */
  maxShrink?: number;
  log?: (line: string) => void;
  /** An input running longer than this ends the process (SIGTERM) naming it; default WATCHDOG_MS. */
  watchdogMs?: number;
}

export interface FailureRecord {
  target: "filter" | ControllerKind;
  kind: "trap" | "crash" | "hang";
  message: string;
  /** Replay: fc.sample(arbitrary, { seed: batchSeed, numRuns: index + 1 })[index] (filter: after the inputs before it). */
  batchSeed: number;
  index: number;
  input: string;
  shrunk?: string;
  reproducedAlone?: boolean;
}

export interface FuzzSummary {
  seconds: number;
  seed: number;
  target: Target;
  filter: { inputs: number; perSecond: number; busySeconds: number; traps: number; crashes: number; rigs: number; wasmPagesAfterWarmup: number[]; wasmPagesEnd: number[]; largestConfigBytes: number; growthAfterWarmup: FilterRig["growth"]; flat: boolean } | null;
  controller: { inputs: number; perSecond: number; busySeconds: number; crashes: number; hangs: number; byKind: Record<string, { inputs: number; accepted: number; perSecond: number; crashes: number; hangs: number; maxMs: number }>; xdsOpenStreamsEnd: number; xdsAckLogNodes: number; yamlCollectionKeyWarnings: number } | null;
  memory: { heapMbStart: number; heapMbAfterWarmup: number; heapMbEnd: number; rssMbEnd: number; flat: boolean };
  failures: FailureRecord[];
}

let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    try { v8.setFlagsFromString("--expose-gc"); gcFn = runInNewContext("gc") as () => void; } catch { gcFn = () => {}; }
  }
  gcFn();
}
const heapMb = () => { gc(); return process.memoryUsage().heapUsed / 2 ** 20; };
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** A 32-bit seed for one batch. */
export function batchSeed(seed: number, stream: string, batch: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  const s = `${stream}#${batch}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d) >>> 0; h ^= h >>> 12;
  return h | 0;
}

/**
 * A watchdog thread: the loop stamps [input start (ms since t0), target id, batch seed, index] before
 * each input; an input still running after WATCHDOG_MS (it can only be stuck in a loop) makes the
 * watchdog print where and end the process (SIGTERM), since the stuck thread cannot report it.
 */
export const WATCHDOG_MS = 30_000;
const TARGET_IDS = ["filter", ...CONTROLLER_KINDS];
function startWatchdog(seed: number, limitMs: number, log: (l: string) => void): { stamp: (target: string, bs: number, i: number) => void; idle: () => void; stop: () => void } {
  const shared = new Int32Array(new SharedArrayBuffer(20));
  const origin = Date.now();
  const w = new Worker(`
    const { workerData } = require("node:worker_threads");
    const s = workerData.shared, names = workerData.names;
    setInterval(() => {
      if (Atomics.load(s, 4) !== 1) return;
      const ms = Date.now() - workerData.origin - Atomics.load(s, 0);
      if (ms > workerData.limit) {
        require("node:fs").writeSync(2, "fuzz: HANG: " + names[Atomics.load(s, 1)] + " input still running after " + ms + " ms (seed " + workerData.seed + ", batch seed " + Atomics.load(s, 2) + ", index " + Atomics.load(s, 3) + ")\\n");
        process.kill(process.pid, "SIGTERM");
      }
    }, 1000);
  `, { eval: true, workerData: { shared, names: TARGET_IDS, origin, limit: limitMs, seed } });
  w.unref();
  w.on("error", (e: Error) => log(`fuzz: the watchdog failed: ${e.message}`));
  return {
    stamp: (target, bs, i) => { shared[0] = Date.now() - origin; shared[1] = TARGET_IDS.indexOf(target); shared[2] = bs; shared[3] = i; Atomics.store(shared, 4, 1); },
    idle: () => Atomics.store(shared, 4, 0),
    stop: () => { void w.terminate(); },
  };
}

const FILTER_BATCH = 100;
const CONTROLLER_BATCH = 50;
const SLICE_MS = 50;
/** Failures kept in the summary and printed as they happen (all are counted). */
const MAX_RECORDED = 100;
const MAX_PRINTED = 20;

export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const doFilter = o.target !== "controller", doController = o.target !== "filter";
  const share = doFilter && doController ? (o.controllerShare ?? 0.2) : doController ? 1 : 0;
  const maxShrink = o.maxShrink ?? 3;
  const failures: FailureRecord[] = [];
  const heapStart = heapMb();
  // The yaml library warns (process.emitWarning) when a document has a collection as a mapping key;
  // thousands of those would bury the progress lines: counted instead while the fuzzer runs.
  let yamlKeyWarnings = 0;
  const warningListeners = process.listeners("warning");
  process.removeAllListeners("warning");
  const onWarning = (w: Error) => { if (/Keys with collection values/.test(w.message)) yamlKeyWarnings++; else for (const l of warningListeners) l(w); };
  process.on("warning", onWarning);

  let rig = doFilter ? await FilterRig.create(o.seed) : null;
  let rigs = rig ? 1 : 0;
  const ctl = doController ? await ControllerFuzzer.create() : null;

  const f = { inputs: 0, busyMs: 0, traps: 0, crashes: 0, batch: 0 };
  const c = { inputs: 0, busyMs: 0, crashes: 0, hangs: 0, batch: 0 };
  const byKind = Object.fromEntries(CONTROLLER_KINDS.map((k) => [k, { inputs: 0, busyMs: 0, crashes: 0, hangs: 0, maxMs: 0, batch: 0 }]));
  const toShrink: { rec: FailureRecord; run: () => Promise<void> }[] = [];
  let kindIdx = 0;

  const watchdog = startWatchdog(o.seed, o.watchdogMs ?? WATCHDOG_MS, log);
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  const warmupAt = t0 + Math.min(10_000, o.seconds * 100); // 10 % of the run, at most 10 s
  let warm: { pages: number[]; heap: number; input: number } | null = null;
  let nextProgress = o.progressMs ? t0 + o.progressMs : Infinity;

  const progress = () => {
    const s = (performance.now() - t0) / 1000;
    const parts = [`fuzz ${s.toFixed(0)}s`];
    if (doFilter) parts.push(`filter ${f.inputs} (${Math.round(f.inputs / s)}/s) traps ${f.traps} crashes ${f.crashes} pages ${rig?.pages().join("/")}`);
    if (doController) parts.push(`controller ${c.inputs} (${Math.round(c.inputs / s)}/s) crashes ${c.crashes} hangs ${c.hangs}`);
    parts.push(`heap ${round(process.memoryUsage().heapUsed / 2 ** 20)} MB`);
    log(parts.join(" | "));
  };

  const filterBatch = async () => {
    const bs = batchSeed(o.seed, "filter", f.batch++);
    const xs = fc.sample(filterInput, { seed: bs, numRuns: FILTER_BATCH });
    const t = performance.now();
    for (let i = 0; i < xs.length; i++) {
      watchdog.stamp("filter", bs, i);
      const fail = rig!.run(xs[i]!);
      f.inputs++;
      if (!fail) continue;
      if (fail.kind === "trap") f.traps++; else f.crashes++;
      const rec: FailureRecord = { target: "filter", kind: fail.kind, message: fail.message.slice(0, 2000), batchSeed: bs, index: i, input: describe(fail.input).slice(0, 4000) };
      if (failures.length < MAX_RECORDED) failures.push(rec);
      if (f.traps + f.crashes + c.crashes + c.hangs <= MAX_PRINTED) log(`FILTER ${fail.kind.toUpperCase()}: ${fail.message.split("\n")[0]} (seed ${o.seed}, batch seed ${bs}, index ${i})\n  input: ${rec.input.slice(0, 1000)}`);
      if (toShrink.filter((x) => x.rec.target === "filter").length < maxShrink) {
        toShrink.push({ rec, run: async () => { const r = await shrinkFilter(bs, i); rec.reproducedAlone = r.reproduced; if (r.counterexample !== undefined) rec.shrunk = describe(r.counterexample).slice(0, 4000); } });
      }
      if (rig!.failedVm()) { rig!.host.shutdown(); rig = await FilterRig.create(o.seed + rigs); rigs++; warm = null; }
    }
    f.busyMs += performance.now() - t;
  };

  const controllerBatch = () => {
    const kind = CONTROLLER_KINDS[kindIdx++ % CONTROLLER_KINDS.length]!;
    const k = byKind[kind]!;
    const bs = batchSeed(o.seed, kind, k.batch++);
    const arb = ctl!.arbitraries[kind];
    const xs = fc.sample(arb, { seed: bs, numRuns: CONTROLLER_BATCH });
    const t = performance.now();
    for (let i = 0; i < xs.length; i++) {
      const ti = performance.now();
      watchdog.stamp(kind, bs, i);
      const fail = ctl!.run(kind, xs[i]);
      k.maxMs = Math.max(k.maxMs, performance.now() - ti);
      c.inputs++; k.inputs++;
      if (!fail) continue;
      if (fail.kind === "hang") { c.hangs++; k.hangs++; } else { c.crashes++; k.crashes++; }
      const rec: FailureRecord = { target: kind, kind: fail.kind, message: fail.message.slice(0, 2000), batchSeed: bs, index: i, input: describe(fail.input).slice(0, 4000) };
      if (failures.length < MAX_RECORDED) failures.push(rec);
      if (f.traps + f.crashes + c.crashes + c.hangs <= MAX_PRINTED) log(`CONTROLLER ${kind} ${fail.kind.toUpperCase()}: ${fail.message.split("\n")[0]} (seed ${o.seed}, batch seed ${bs}, index ${i})\n  input: ${rec.input.slice(0, 1000)}`);
      if (toShrink.filter((x) => x.rec.target === kind).length < maxShrink) {
        toShrink.push({ rec, run: async () => {
          const d = fc.check(fc.property(arb, (x) => ctl!.run(kind, x) === null), { seed: bs, numRuns: i + 1, endOnFailure: false });
          rec.reproducedAlone = d.failed;
          if (d.failed) rec.shrunk = describe(d.counterexample?.[0]).slice(0, 4000);
        } });
      }
    }
    const ms = performance.now() - t;
    k.busyMs += ms; c.busyMs += ms;
  };

  while (performance.now() < end) {
    const sliceEnd = Math.min(end, performance.now() + SLICE_MS);
    // Who runs this slice: the one furthest behind its share of the busy time.
    const total = f.busyMs + c.busyMs;
    const controllerTurn = share >= 1 || (share > 0 && c.busyMs <= total * share);
    while (performance.now() < sliceEnd) {
      if (controllerTurn) controllerBatch(); else await filterBatch();
    }
    watchdog.idle();
    // Let callbacks, timers and the progress line run between slices.
    await new Promise<void>((r) => setImmediate(r));
    const now = performance.now();
    if (!warm && now >= warmupAt) warm = { pages: rig?.pages() ?? [], heap: heapMb(), input: rig?.inputs ?? 0 };
    if (now >= nextProgress) { progress(); nextProgress += o.progressMs!; }
  }
  const elapsed = (performance.now() - t0) / 1000;
  for (const s of toShrink) {
    try { await s.run(); } catch (e) { s.rec.shrunk = `shrinking failed: ${(e as Error).message}`; }
    if (s.rec.shrunk) log(`shrunk (${s.rec.target}, batch seed ${s.rec.batchSeed}, index ${s.rec.index}): ${s.rec.shrunk.slice(0, 2000)}`);
    else log(`${s.rec.target} failure at batch seed ${s.rec.batchSeed}, index ${s.rec.index} did not reproduce alone (it needs the inputs before it)`);
  }
  const pagesEnd = rig?.pages() ?? [];
  const heapEnd = heapMb();
  const heapWarm = warm?.heap ?? heapStart;
  const summary: FuzzSummary = {
    seconds: round(elapsed), seed: o.seed, target: o.target,
    filter: doFilter ? {
      inputs: f.inputs, perSecond: Math.round(f.inputs / elapsed), busySeconds: round(f.busyMs / 1000), traps: f.traps, crashes: f.crashes, rigs,
      wasmPagesAfterWarmup: warm?.pages ?? [], wasmPagesEnd: pagesEnd, largestConfigBytes: rig?.maxConfigBytes ?? 0,
      growthAfterWarmup: (rig?.growth ?? []).filter((g) => g.input > (warm?.input ?? 0)).slice(0, 20),
      // Flat: after warm-up the wasm memory grew only to hold a configuration larger than any before it
      // (the filter parses the whole configuration at once); requests, ticks and answers never grew it.
      flat: !!warm && (rig?.growth ?? []).filter((g) => g.input > warm!.input).every((g) => g.newLargestConfig),
    } : null,
    controller: doController ? {
      inputs: c.inputs, perSecond: Math.round(c.inputs / elapsed), busySeconds: round(c.busyMs / 1000), crashes: c.crashes, hangs: c.hangs,
      byKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, { inputs: v.inputs, accepted: ctl!.accepted[k as ControllerKind], perSecond: Math.round(v.inputs / Math.max(1e-9, v.busyMs / 1000)), crashes: v.crashes, hangs: v.hangs, maxMs: round(v.maxMs) }])),
      xdsOpenStreamsEnd: ctl!.openStreams(), xdsAckLogNodes: ctl!.ackLogNodes(), yamlCollectionKeyWarnings: yamlKeyWarnings,
    } : null,
    // Flat: the heap after a full GC grew by less than 32 MB (or 25 %) from warm-up to the end.
    memory: { heapMbStart: round(heapStart), heapMbAfterWarmup: round(heapWarm), heapMbEnd: round(heapEnd), rssMbEnd: round(process.memoryUsage().rss / 2 ** 20), flat: heapEnd - heapWarm < Math.max(32, heapWarm * 0.25) },
    failures,
  };
  watchdog.stop();
  rig?.host.shutdown();
  ctl?.close();
  process.off("warning", onWarning);
  for (const l of warningListeners) process.on("warning", l);
  return summary;
}

export type { FilterInput };
