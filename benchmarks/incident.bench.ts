// Incident benchmark over every scenario in benchmarks/scenarios/: no protection, Envoy's reactive
// outlier detection + locality failover, and shadowmesh, on a virtual clock (benchmarks/incident/).
// Targets (issue 7): worst_reduction_vs_reactive >= 0.9 over the degrading scenarios (the smallest
// 1 - failed_shadowmesh / failed_reactive) and false_migrations_total = 0 over the healthy ones.
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenario } from "../demo/scenario.js";
import { runScenario, type ScenarioResult } from "./incident/compare.js";
import { writeResult } from "./harness.js";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "scenarios");
const results: ScenarioResult[] = [];
const t0 = Date.now();
for (const f of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const r = await runScenario(loadScenario(path.join(dir, f)), { seed: 1 });
  for (const m of Object.values(r.modes)) delete (m as { decisions?: unknown }).decisions;
  results.push(r);
  const m = r.modes;
  console.error(`${r.scenario}: failed none ${m.none!.failed_requests}, reactive ${m.reactive!.failed_requests}, shadowmesh ${m.shadowmesh!.failed_requests}; reduction ${r.reduction_vs_reactive ?? "-"}; shadowmesh shift ${m.shadowmesh!.shift_started_s ?? "-"}..${m.shadowmesh!.shift_done_s ?? "-"} s`);
}
const degrading = results.filter((r) => r.expect === "migrate");
const healthy = results.filter((r) => r.expect === "stay");
const reductions = degrading.map((r) => r.reduction_vs_reactive).filter((x): x is number => x !== null);
const sum = (xs: ScenarioResult[], mode: "none" | "reactive" | "shadowmesh") => xs.reduce((s, r) => s + r.modes[mode]!.failed_requests, 0);
writeResult("incident", {
  worst_reduction_vs_reactive: reductions.length ? Math.min(...reductions) : NaN,
  false_migrations_total: healthy.reduce((s, r) => s + r.modes.shadowmesh!.false_migrations, 0),
  reactive_false_migrations_total: healthy.reduce((s, r) => s + r.modes.reactive!.false_migrations, 0),
  failed_none_total: sum(degrading, "none"),
  failed_reactive_total: sum(degrading, "reactive"),
  failed_shadowmesh_total: sum(degrading, "shadowmesh"),
  scenarios: results.length,
  wall_s: (Date.now() - t0) / 1000,
}, {
  targets: { worst_reduction_vs_reactive: ">= 0.9", false_migrations_total: "= 0" },
  per_scenario: Object.fromEntries(results.map((r) => [r.scenario, { expect: r.expect, reduction_vs_reactive: r.reduction_vs_reactive, ...r.modes }])),
  method: "virtual clock; deciders are production code (controller core, filter .wasm in the proxy-wasm host, data plane outlier detection and priority load); the component, network and time are simulated (benchmarks/incident/pair.ts, run.ts)",
});
