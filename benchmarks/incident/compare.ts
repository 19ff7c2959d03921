// One scenario through every mode, with the comparison the benchmark reports: the reduction in
// failed requests against the reactive baseline (and against the unsafe one, for reads), and whether a
// healthy scenario migrated.
import type { Scenario } from "../../world/demo/scenario.js";
import { runIncident } from "./run.js";
import { MODES, type Mode } from "./system.js";
import type { ModeResult } from "./result.js";

export interface ScenarioResult {
  scenario: string;
  file: string | null;
  expect: "migrate" | "stay";
  duration_s: number;
  failed_at_s: number | null;
  seed: number;
  modes: Partial<Record<Mode, ModeResult>>;
  /** 1 - failed(shadowmesh) / failed(reactive); null when the reactive baseline failed nothing or a mode was not run. */
  reduction_vs_reactive: number | null;
  /** shadowmesh failed no more requests than reactive, and no more reads than reactive_unsafe (null: a mode was not run). */
  not_worse_than_reactive: boolean | null;
}

export async function runScenario(s: Scenario, o: { seed?: number; modes?: readonly Mode[]; trace?: (l: string) => void } = {}): Promise<ScenarioResult> {
  const seed = o.seed ?? 1;
  const modes: Partial<Record<Mode, ModeResult>> = {};
  for (const m of o.modes ?? MODES) modes[m] = await runIncident(s, m, { seed, ...(m === "shadowmesh" && o.trace ? { trace: o.trace } : {}) });
  const re = modes.reactive, un = modes.reactive_unsafe, sm = modes.shadowmesh;
  return {
    scenario: s.name, file: s.file, expect: s.expect, duration_s: s.durationS, failed_at_s: s.primary.failAtS, seed,
    modes,
    reduction_vs_reactive: re && sm && re.failed_requests > 0 ? Math.round((1 - sm.failed_requests / re.failed_requests) * 1000) / 1000 : null,
    not_worse_than_reactive: re && un && sm ? sm.failed_requests <= re.failed_requests && sm.failed_reads <= un.failed_reads : null,
  };
}
