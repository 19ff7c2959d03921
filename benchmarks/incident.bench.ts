// Incident benchmark over every scenario in benchmarks/scenarios/ at seeds 1-5: no protection, Envoy's
// reactive outlier detection + locality failover with a lease-safe database failover (reactive), the
// same with an instant unfenced promotion (reactive_unsafe, for reference), and shadowmesh, on a
// virtual clock (benchmarks/incident/).
// Targets (issues 7 and 15): on every scenario and seed shadowmesh fails no more requests than reactive
// and no more reads than reactive_unsafe (scenarios_worse_than_reactive = 0); a reduction of at least
// 0.9 against reactive wherever the warning (hard failure minus first sign) lasts 30 s or more; 0 false
// migrations on the healthy scenarios.
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenario, type Scenario } from "../demo/scenario.js";
import { runScenario, type ScenarioResult } from "./incident/compare.js";
import { incidentStartS, MODES, type Mode } from "./incident/run.js";
import { writeResult } from "./harness.js";

const SEEDS = [1, 2, 3, 4, 5];
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "scenarios");
const results: ScenarioResult[] = [];
const warningS = new Map<string, number>();
const t0 = Date.now();
for (const f of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const sc: Scenario = loadScenario(path.join(dir, f));
  const start = incidentStartS(sc);
  // The warning a predictor had: from the first sign of trouble to the hard failure (none: 0).
  if (start !== null) warningS.set(sc.name, sc.primary.failAtS === null ? 0 : Math.max(0, sc.primary.failAtS - start));
  for (const seed of SEEDS) {
    const r = await runScenario(sc, { seed });
    for (const m of Object.values(r.modes)) delete (m as { decisions?: unknown }).decisions;
    results.push(r);
    const m = r.modes;
    console.error(`${r.scenario} seed ${seed}: failed none ${m.none!.failed_requests}, reactive ${m.reactive!.failed_requests} (${m.reactive!.failed_reads} reads), unsafe ${m.reactive_unsafe!.failed_requests} (${m.reactive_unsafe!.failed_reads} reads), shadowmesh ${m.shadowmesh!.failed_requests} (${m.shadowmesh!.failed_reads} reads); reduction ${r.reduction_vs_reactive ?? "-"}${r.not_worse_than_reactive === false ? " WORSE" : ""}; shift ${m.shadowmesh!.shift_started_s ?? "-"}..${m.shadowmesh!.shift_done_s ?? "-"} s`);
  }
}
const degrading = results.filter((r) => r.expect === "migrate");
const healthy = results.filter((r) => r.expect === "stay");
const min = (xs: (number | null)[]) => { const v = xs.filter((x): x is number => x !== null); return v.length ? Math.min(...v) : null; };
const max = (xs: (number | null | undefined)[]) => { const v = xs.filter((x): x is number => typeof x === "number"); return v.length ? Math.max(...v) : null; };
const sum = (xs: ScenarioResult[], mode: Mode, f: "failed_requests" | "failed_reads" | "failed_writes" = "failed_requests") => xs.reduce((s, r) => s + r.modes[mode]![f], 0);
const warned = degrading.filter((r) => (warningS.get(r.scenario) ?? 0) >= 30);
const worst = degrading.reduce<ScenarioResult | null>((w, r) => (r.reduction_vs_reactive !== null && (w === null || r.reduction_vs_reactive < w.reduction_vs_reactive!) ? r : w), null);
const death = results.filter((r) => r.scenario === "sudden-death");
const sm = (r: ScenarioResult) => r.modes.shadowmesh!;
writeResult("incident", {
  worst_reduction_vs_reactive: worst?.reduction_vs_reactive ?? NaN,
  worst_reduction_vs_reactive_warned_30s: min(warned.map((r) => r.reduction_vs_reactive)) ?? NaN,
  scenarios_worse_than_reactive: degrading.concat(healthy).filter((r) => r.not_worse_than_reactive === false).length,
  false_migrations_total: healthy.reduce((s, r) => s + sm(r).false_migrations, 0),
  reactive_false_migrations_total: healthy.reduce((s, r) => s + r.modes.reactive!.false_migrations, 0),
  two_writer_samples_shadowmesh: results.reduce((s, r) => s + sm(r).two_writers_samples, 0),
  two_writer_samples_reactive: results.reduce((s, r) => s + r.modes.reactive!.two_writers_samples, 0),
  two_writer_samples_reactive_unsafe: results.reduce((s, r) => s + r.modes.reactive_unsafe!.two_writers_samples, 0),
  failed_none_total: sum(degrading, "none"),
  failed_reactive_total: sum(degrading, "reactive"),
  failed_reactive_unsafe_total: sum(degrading, "reactive_unsafe"),
  failed_shadowmesh_total: sum(degrading, "shadowmesh"),
  failed_reads_reactive_total: sum(degrading, "reactive", "failed_reads"),
  failed_reads_reactive_unsafe_total: sum(degrading, "reactive_unsafe", "failed_reads"),
  failed_reads_shadowmesh_total: sum(degrading, "shadowmesh", "failed_reads"),
  failed_writes_reactive_total: sum(degrading, "reactive", "failed_writes"),
  failed_writes_reactive_unsafe_total: sum(degrading, "reactive_unsafe", "failed_writes"),
  failed_writes_shadowmesh_total: sum(degrading, "shadowmesh", "failed_writes"),
  sudden_death_reads_diverted_p50_s: max(death.map((r) => sm(r).after_death?.reads_diverted_p50_s)) ?? NaN,
  sudden_death_reads_diverted_p99_s: max(death.map((r) => sm(r).after_death?.reads_diverted_p99_s)) ?? NaN,
  sudden_death_writes_accepted_s: max(death.map((r) => sm(r).after_death?.writes_accepted_s)) ?? NaN,
  sudden_death_reactive_reads_diverted_s: max(death.map((r) => r.modes.reactive!.after_death?.reads_diverted_p50_s)) ?? NaN,
  sudden_death_reactive_writes_accepted_s: max(death.map((r) => r.modes.reactive!.after_death?.writes_accepted_s)) ?? NaN,
  scenarios: new Set(results.map((r) => r.scenario)).size,
  seeds: SEEDS.length,
  wall_s: (Date.now() - t0) / 1000,
}, {
  targets: {
    scenarios_worse_than_reactive: "= 0", worst_reduction_vs_reactive_warned_30s: ">= 0.9", false_migrations_total: "= 0",
    two_writer_samples_shadowmesh: "= 0", worst_reduction_vs_reactive: "reported (includes no-warning scenarios, where it cannot reach 0.9)",
  },
  worst_case: worst ? { scenario: worst.scenario, seed: worst.seed, reduction_vs_reactive: worst.reduction_vs_reactive } : null,
  warning_s: Object.fromEntries(warningS),
  modes: MODES,
  // Seed 1, in the shape earlier versions reported.
  per_scenario: Object.fromEntries(results.filter((r) => r.seed === 1).map((r) => [r.scenario, { expect: r.expect, reduction_vs_reactive: r.reduction_vs_reactive, ...r.modes }])),
  per_scenario_seed: results.map((r) => ({ scenario: r.scenario, seed: r.seed, expect: r.expect, reduction_vs_reactive: r.reduction_vs_reactive, not_worse_than_reactive: r.not_worse_than_reactive, ...r.modes })),
  method: "virtual clock; deciders are production code (controller core, filter .wasm on 4 worker VMs in the proxy-wasm host, data plane outlier detection and priority load); the component, network and time are simulated (benchmarks/incident/pair.ts, run.ts); reactive's database failover waits out the writer's lease (the policy's promotion.lease), reactive_unsafe promotes on the first ejection",
});
