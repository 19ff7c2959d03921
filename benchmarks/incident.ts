// `npm run -s bench:incident -- --scenario FILE [--scenario FILE ...] [--seed N] [--mode M] [--trace]`:
// runs each scenario three ways (no protection, Envoy's reactive outlier detection with locality
// failover, shadowmesh) on a virtual clock and prints one JSON object per scenario: per mode the
// requests, failed requests, p99 during the incident, when the shift started and was done, false
// migrations, and the reduction in failed requests against the reactive baseline.
import { Command, InvalidArgumentError } from "commander";
import { loadScenario, ScenarioError } from "../world/demo/scenario.js";
import { runScenario } from "./incident/compare.js";
import { MODES, type Mode } from "./incident/system.js";

const program = new Command("bench:incident")
  .description("predictive (shadowmesh) vs reactive (Envoy outlier detection + locality failover) vs no protection, on one scenario")
  .requiredOption("--scenario <file...>", "scenario file(s) (JSON, as in world/scenarios/)")
  .option("--seed <n>", "seed for traffic and noise", (v) => { const n = Number(v); if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--seed must be a non-negative integer, got ${JSON.stringify(v)}`); return n; }, 1)
  .option("--mode <mode...>", `modes to run (${MODES.join(", ")})`)
  .option("--trace", "print shadowmesh's risk and its top signals once a simulated second (stderr)")
  .option("--decisions", "include every decision (ejections, migration events) in the output")
  .showHelpAfterError();
program.parse();
const o = program.opts<{ scenario: string[]; seed: number; mode?: string[]; trace?: boolean; decisions?: boolean }>();
const modes = (o.mode ?? [...MODES]) as Mode[];
for (const m of modes) if (!MODES.includes(m)) { console.error(`--mode: ${JSON.stringify(m)} is not one of ${MODES.join(", ")}`); process.exit(2); }

for (const file of o.scenario) {
  let scenario;
  try { scenario = loadScenario(file); } catch (e) {
    if (e instanceof ScenarioError || (e as NodeJS.ErrnoException).code === "ENOENT") { console.error((e as Error).message); process.exit(2); }
    throw e;
  }
  const r = await runScenario(scenario, { seed: o.seed, modes, ...(o.trace ? { trace: (l: string) => process.stderr.write(`${l}\n`) } : {}) });
  if (!o.decisions) for (const m of Object.values(r.modes)) delete (m as { decisions?: unknown }).decisions;
  console.log(JSON.stringify(r));
}
