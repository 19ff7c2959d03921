// `npm run fuzz -- --seconds N [--seed S] [--target filter|controller|all]`: fuzzes the filter (the
// real build/shadowmesh.wasm in the TypeScript host) and the controller's inputs (telemetry reports
// and metrics, xDS requests, API calls, configuration and policy YAML, state journal lines) for N
// seconds (scripts/fuzz/). Progress every 10 s on stderr; the summary as JSON on stdout, and in
// benchmarks/results/fuzz.json when N >= 60. Exits 1 when anything trapped, crashed or hung.
import { Command, InvalidArgumentError, Option } from "commander";
import { existsSync } from "node:fs";
import { runFuzz, type Target } from "./fuzz/run.js";
import { WASM_URL } from "./fuzz/filter.js";
import { writeResult } from "../benchmarks/harness.js";

const positive = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(v) || !(n > 0)) throw new InvalidArgumentError(`${flag} must be a positive number of seconds, got ${JSON.stringify(v)}`);
  return n;
};
const integer = (flag: string) => (v: string) => {
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`${flag} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v) | 0;
};
const share = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`--controller-share must be a number between 0 and 1 (exclusive), got ${JSON.stringify(v)}`);
  return n;
};

const program = new Command("fuzz")
  .description("fuzz the filter and the controller's inputs")
  .requiredOption("--seconds <n>", "how long to run", positive("--seconds"))
  .option("--seed <s>", "seed for every input (default: random, printed)", integer("--seed"))
  .addOption(new Option("--target <t>", "what to fuzz").choices(["filter", "controller", "all"]).default("all"))
  .option("--controller-share <x>", "share of the time the controller gets with --target all", share, 0.2)
  .option("--no-result", "do not write benchmarks/results/fuzz.json even when --seconds >= 60")
  .parse(process.argv);

const opts = program.opts<{ seconds: number; seed?: number; target: Target; controllerShare: number; result: boolean }>();
if (opts.target !== "controller" && !existsSync(WASM_URL)) program.error(`--target ${opts.target}: ${WASM_URL.pathname} is missing: run \`npm run build\``);
const seed = opts.seed ?? ((Date.now() ^ (process.pid << 16)) | 0);
process.stderr.write(`fuzz: target ${opts.target}, ${opts.seconds} s, seed ${seed} (repeat with --seed ${seed})\n`);

const s = await runFuzz({ seconds: opts.seconds, seed, target: opts.target, controllerShare: opts.controllerShare, progressMs: 10_000 });
const traps = s.filter?.traps ?? 0, crashes = (s.filter?.crashes ?? 0) + (s.controller?.crashes ?? 0), hangs = s.controller?.hangs ?? 0;
const metrics: Record<string, number> = {
  seconds: s.seconds,
  filter_inputs: s.filter?.inputs ?? 0, filter_inputs_per_s: s.filter?.perSecond ?? 0,
  controller_inputs: s.controller?.inputs ?? 0, controller_inputs_per_s: s.controller?.perSecond ?? 0,
  traps, crashes, hangs,
  heap_mb_start: s.memory.heapMbStart, heap_mb_after_warmup: s.memory.heapMbAfterWarmup, heap_mb_end: s.memory.heapMbEnd,
};
if (s.filter) { metrics.wasm_pages_after_warmup = Math.max(0, ...s.filter.wasmPagesAfterWarmup); metrics.wasm_pages_end = Math.max(0, ...s.filter.wasmPagesEnd); }
const extra = { seed: s.seed, target: s.target, filter: s.filter, controller: s.controller, memory: s.memory, failures: s.failures };
if (opts.seconds >= 60 && opts.result) writeResult("fuzz", metrics, extra); // prints the JSON too
else console.log(JSON.stringify({ benchmark: "fuzz", metrics, ...extra }, null, 2));
process.exit(traps + crashes + hangs > 0 ? 1 : 0);
