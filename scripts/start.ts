// `npm start [-- --duration S] [-- --scenario FILE] [-- --component postgres]`: the local demo
// (world/demo/run.ts; with --component postgres, world/demo/postgres.ts on a real PostgreSQL pair). Live progress
// and the human summary go to stderr; the last line on stdout is the JSON summary. Logs of the parts
// go to a file (its path is printed), so the terminal shows the story, not the chatter.
import { Command, InvalidArgumentError } from "commander";
import { openSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { runDemo, DEFAULT_SCENARIO, type DemoSummary, type Progress } from "../world/demo/run.js";
import { POSTGRES_FAULTS, runPostgresDemo, type PostgresDemoSummary, type PostgresFaultName } from "../world/demo/postgres.js";
import { pgAvailable } from "../world/demo/pg-pair.js";
import { loadScenario, ScenarioError } from "../world/demo/scenario.js";

const seconds = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 86_400)) throw new InvalidArgumentError(`--duration: expected seconds between 1 and 86400, got ${JSON.stringify(v)}`);
  return n;
};

const program = new Command("npm start --")
  .description("shadowmesh on one machine: controller, embedded data plane, a replicated sample component, load and a failing primary")
  .option("--duration <seconds>", "run this long (default: the scenario's duration)", seconds)
  .option("--scenario <file>", "scenario file (JSON; see README)", DEFAULT_SCENARIO)
  .option("--seed <n>", "seed of the load generator and the nodes' noise", (v) => Number(v), 1)
  .option("--component <kind>", "the protected component: kv (the sample key-value pair, simulated faults) or postgres (a real PostgreSQL primary and hot standby whose disk fills up)", (v) => {
    if (v !== "kv" && v !== "postgres") throw new InvalidArgumentError(`--component: expected kv or postgres, got ${JSON.stringify(v)}`);
    return v;
  }, "kv")
  .option("--fault <name>", `with --component postgres: the fault on the primary (${POSTGRES_FAULTS.join(", ")})`, (v) => {
    if (!(POSTGRES_FAULTS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--fault: expected one of ${POSTGRES_FAULTS.join(", ")}, got ${JSON.stringify(v)}`);
    return v;
  }, "disk-fill")
  .parse();
const opts = program.opts<{ duration?: number; scenario: string; seed: number; component: "kv" | "postgres"; fault: PostgresFaultName }>();
if (opts.component === "postgres") {
  const why = pgAvailable() ?? (process.getuid?.() === 0 ? null : "the primary's filling disk is a tmpfs: run as root");
  if (why) { console.error(`error: --component postgres: ${why}
  install: apt-get update && apt-get install -y postgresql`); process.exit(2); }
}

let scenario: ReturnType<typeof loadScenario>;
try { scenario = loadScenario(opts.scenario); } catch (e) {
  if (e instanceof ScenarioError) { console.error(`error: ${e.message}`); process.exit(2); }
  throw e;
}
const logFile = path.join(os.tmpdir(), `shadowmesh-demo-${process.pid}.log`);
const log = pino({ level: process.env.SHADOWMESH_LOG_LEVEL ?? "info" }, pino.destination(openSync(logFile, "a")));
const err = (s: string) => process.stderr.write(s + "\n");
const tty = process.stderr.isTTY;

if (opts.component === "postgres") err(`shadowmesh demo: PostgreSQL 15 primary and hot standby; fault ${opts.fault} on the primary from 15 s (${opts.duration ?? 100} s)`);
else err(`shadowmesh demo: scenario ${scenario.name} (${opts.duration ?? scenario.durationS} s)${scenario.description ? ` - ${scenario.description}` : ""}`);
err(`logs: ${logFile}`);
let lastPhase = "";
const fmt = (p: Progress) => {
  const risk = p.risk === null ? "  -  " : p.risk.toFixed(2).padStart(5);
  const bar = "#".repeat(Math.round((p.risk ?? 0) * 20)).padEnd(20, ".");
  const lag = Number.isFinite(p.lagS) ? `${p.lagS.toFixed(2)}s` : "-";
  return `${p.t.toFixed(0).padStart(4)}s  risk ${risk} [${bar}]  ${p.phase.padEnd(10)} shadow ${String(p.shadowPercent).padStart(3)}%  writes->${p.writeTarget.padEnd(7)} lag ${lag.padStart(6)}  ${String(p.rps).padStart(4)} rps  failed ${p.failed}/${p.requests}${p.primaryDown ? "  PRIMARY DOWN" : ""}`;
};
const hooks = {
  ...(opts.duration ? { durationS: opts.duration } : {}), log, seed: opts.seed,
  onReady: (r: { dashboard: string; listener: string }) => err(`dashboard: ${r.dashboard}   data plane listener: ${r.listener}\n`),
  onProgress: (p: Progress) => {
    const line = fmt(p);
    if (p.phase !== lastPhase || !tty) { err(line); lastPhase = p.phase; } else process.stderr.write(`\r${line}`);
  },
};
const summary: DemoSummary = opts.component === "postgres" ? await runPostgresDemo({ ...hooks, fault: opts.fault }) : await runDemo({ scenario, ...hooks });
if (tty) err("");
err("");
err(`summary: ${summary.migrated ? `all traffic moved to the shadow at ${summary.migrated_at_s} s` : "traffic was not migrated"}` +
  `${summary.failed_at_s !== null ? `; the primary failed at ${summary.failed_at_s} s` : ""}`);
const pgs = summary as Partial<PostgresDemoSummary>;
if (pgs.two_writer_samples !== undefined) err(`  two-writer checker: ${pgs.two_writer_samples} samples, ${pgs.two_writer_overlaps} with two writable sides`);
err(`  requests ${summary.requests}, failed ${summary.failed_requests} (${(100 * summary.failed_ratio).toFixed(3)}%), acknowledged writes ${summary.acknowledged_writes}, lost ${summary.lost_writes}`);
for (const e of summary.events.filter((x) => x.kind !== "publish")) err(`  ${String(e.t).padStart(5)}s  ${e.kind.padEnd(18)} ${e.message}`);
process.stdout.write(JSON.stringify(summary) + "\n");
process.exit(0);
