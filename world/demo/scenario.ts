// Scenario files (JSON) for the demo and the incident benchmark: how long, how much traffic, and for
// the primary and the shadow a trace per signal (piecewise-linear points, or a CSV column replayed at
// a fixed pace, optionally a slice of its rows, scaled then offset) plus an optional hard failure time.
// Optional, for scenarios built from real traces: history_s (the first seconds are history the
// controller already saw before traffic starts), season_s (the traces' cycle, in scenario seconds)
// and first_change_s (when the trouble starts, where noisy traces defeat the automatic rule). Checked
// strictly; every error names the file and the field. A loaded scenario answers "what is signal S of
// side X at second t" and nothing else.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

import { HEALTHY, SIGNALS, type SignalName } from "../sample/conditions.js";
export { HEALTHY, SIGNALS, type SignalName } from "../sample/conditions.js";

const point = z.tuple([z.number().nonnegative(), z.number()]);
const trace = z.union([
  z.array(point).min(1, "needs at least one [t_s, value] point"),
  z.object({
    csv: z.string().min(1), column: z.string().min(1), seconds_per_row: z.number().positive(), scale: z.number().finite().optional(),
    /** Added after scale: value x scale + offset (an affine map from the trace's unit to the signal's). */
    offset: z.number().finite().optional(),
    /** A slice of the data rows (0-based, the header not counted): from_row, then `rows` rows (default: to the end). */
    from_row: z.number().int().nonnegative().optional(),
    rows: z.number().int().positive().optional(),
  }).strict(),
]);
const side = z.object({
  latency_ms: trace.optional(), error_rate: trace.optional(), cpu: trace.optional(), memory: trace.optional(),
  disk_io: trace.optional(), queue_depth: trace.optional(), replication_lag_s: trace.optional(),
  fail_at_s: z.number().nonnegative().optional(),
}).strict();
const schema = z.object({
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  duration_s: z.number().positive(),
  rate_rps: z.number().positive().max(5000),
  read_share: z.number().min(0).max(1),
  keys: z.number().int().positive().optional(),
  /** For healthy-only scenarios: nothing should migrate. */
  expect: z.enum(["migrate", "stay"]).optional(),
  primary: side.optional(),
  shadow: side.optional(),
  /** The first history_s seconds are history the controller saw before traffic starts (default 0). */
  history_s: z.number().nonnegative().optional(),
  /** The period of the traces' cycle in scenario seconds (the controller's signals' seasonS). */
  season_s: z.number().positive().optional(),
  /** When the trouble starts (the first sign of the hard failure), for traces too noisy for the automatic rule. */
  first_change_s: z.number().nonnegative().optional(),
}).strict();

export class ScenarioError extends Error {}

/** Piecewise-linear over sorted points; constant before the first and after the last. */
export class Trace {
  constructor(readonly points: readonly (readonly [number, number])[]) {}
  at(t: number): number {
    const p = this.points;
    if (t <= p[0]![0]) return p[0]![1];
    for (let i = 1; i < p.length; i++) {
      const [t1, v1] = p[i]!;
      if (t <= t1) {
        const [t0, v0] = p[i - 1]!;
        if (t1 === t0) return v1;
        const v = v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
        // Between two values near the largest number the difference overflows: blend them instead.
        if (Number.isFinite(v)) return v;
        const f = (t - t0) / (t1 - t0);
        return v0 * (1 - f) + v1 * f;
      }
    }
    return p.at(-1)![1];
  }
}

export interface SideProfile {
  trace(signal: SignalName): Trace;
  failAtS: number | null;
}

export interface Scenario {
  name: string;
  description: string;
  file: string | null;
  durationS: number;
  rateRps: number;
  readShare: number;
  keys: number;
  expect: "migrate" | "stay";
  primary: SideProfile;
  shadow: SideProfile;
  /** Seconds of history before traffic starts (0: none); traffic runs from historyS to durationS. */
  historyS: number;
  /** The traces' cycle in scenario seconds, or null. */
  seasonS: number | null;
  /** The stated start of the trouble, or null (then the benchmark's automatic rule applies). */
  firstChangeS: number | null;
}

function readCsvColumn(file: string, column: string, where: string): number[] {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) { throw new ScenarioError(`${where}.csv: cannot read ${file}: ${(e as Error).message}`); }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = lines[0]?.split(",").map((h) => h.trim()) ?? [];
  const col = header.indexOf(column);
  if (col < 0) throw new ScenarioError(`${where}.column: ${JSON.stringify(column)} is not a column of ${file} (columns: ${header.join(", ")})`);
  return lines.slice(1).map((l, i) => {
    const cell = l.split(",")[col];
    // Number("") is 0: an empty cell is missing data, not a zero.
    const v = cell === undefined || cell.trim() === "" ? NaN : Number(cell);
    if (!Number.isFinite(v)) throw new ScenarioError(`${where}: ${file} line ${i + 2}, column ${column}: ${JSON.stringify(l.split(",")[col])} is not a number`);
    return v;
  });
}

function buildSide(s: z.infer<typeof side> | undefined, dir: string, where: string): SideProfile {
  const traces = new Map<SignalName, Trace>();
  for (const name of SIGNALS) {
    const t = s?.[name];
    const w = `${where}.${name}`;
    if (t === undefined) { traces.set(name, new Trace([[0, HEALTHY[name]]])); continue; }
    if (Array.isArray(t)) {
      for (let i = 1; i < t.length; i++) if (t[i]![0] < t[i - 1]![0]) throw new ScenarioError(`${w}[${i}]: times must not decrease (${t[i]![0]} after ${t[i - 1]![0]})`);
      traces.set(name, new Trace(t));
    } else {
      const all = readCsvColumn(path.resolve(dir, t.csv), t.column, w);
      if (all.length === 0) throw new ScenarioError(`${w}.csv: ${t.csv} has no rows`);
      const from = t.from_row ?? 0;
      if (from >= all.length) throw new ScenarioError(`${w}.from_row: ${from} is past the last row of ${t.csv} (it has ${all.length} data rows, numbered from 0)`);
      if (t.rows !== undefined && from + t.rows > all.length) throw new ScenarioError(`${w}.rows: ${t.rows} rows from row ${from} run past the end of ${t.csv} (it has ${all.length} data rows)`);
      const values = all.slice(from, t.rows === undefined ? undefined : from + t.rows);
      const points = values.map((v, i) => [i * t.seconds_per_row, v * (t.scale ?? 1) + (t.offset ?? 0)] as const);
      const bad = points.findIndex(([, v]) => !Number.isFinite(v));
      if (bad >= 0) throw new ScenarioError(`${w}: ${t.csv} data row ${from + bad}: ${values[bad]} x scale ${t.scale ?? 1} + offset ${t.offset ?? 0} is not a finite number`);
      traces.set(name, new Trace(points));
    }
    if (name === "error_rate") for (const [, v] of traces.get(name)!.points) if (v < 0 || v > 1) throw new ScenarioError(`${w}: error rates must be in [0, 1], got ${v}`);
  }
  return { trace: (n) => traces.get(n)!, failAtS: s?.fail_at_s ?? null };
}

export function parseScenario(text: string, file: string | null): Scenario {
  const label = file ?? "scenario";
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new ScenarioError(`${label}: not JSON: ${(e as Error).message}`); }
  const r = schema.safeParse(raw);
  if (!r.success) {
    let issue = r.error.issues[0]!;
    // A trace is points or a CSV replay: report the branch that matches the input's kind, not "Invalid input".
    while (issue.code === "invalid_union") {
      const branches = issue.errors;
      const best = branches.find((b) => b[0] !== undefined && !(b[0].code === "invalid_type" && b[0].path.length === 0)) ?? branches[0];
      const pick = best?.find((i) => i.code === "unrecognized_keys") ?? best?.[0];
      if (!pick) break;
      issue = { ...pick, path: [...issue.path, ...pick.path] } as typeof issue;
    }
    const at = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
    const extra = issue.code === "unrecognized_keys" ? ` (allowed here: ${allowedAt(issue.path)})` : "";
    throw new ScenarioError(`${label}: ${at || "(top)"}: ${issue.message}${extra}`);
  }
  const d = r.data;
  if (d.history_s !== undefined && d.history_s >= d.duration_s) throw new ScenarioError(`${label}: history_s: must be less than duration_s (${d.duration_s}), got ${d.history_s}: traffic runs from history_s to duration_s`);
  for (const sd of ["primary", "shadow"] as const) {
    const f = d[sd]?.fail_at_s;
    if (d.history_s !== undefined && f !== undefined && f < d.history_s) throw new ScenarioError(`${label}: ${sd}.fail_at_s: must not be before history_s (${d.history_s}): the history is what came before traffic, got ${f}`);
  }
  if (d.first_change_s !== undefined) {
    if (d.first_change_s > d.duration_s) throw new ScenarioError(`${label}: first_change_s: must be at most duration_s (${d.duration_s}), got ${d.first_change_s}`);
    const fail = d.primary?.fail_at_s;
    if (fail !== undefined && d.first_change_s > fail) throw new ScenarioError(`${label}: first_change_s: must not be after primary.fail_at_s (${fail}), got ${d.first_change_s}`);
  }
  const dir = file ? path.dirname(path.resolve(file)) : process.cwd();
  return {
    name: d.name ?? (file ? path.basename(file, ".json") : "scenario"), description: d.description ?? "", file,
    durationS: d.duration_s, rateRps: d.rate_rps, readShare: d.read_share, keys: d.keys ?? 500,
    expect: d.expect ?? (d.primary?.fail_at_s !== undefined ? "migrate" : "stay"),
    primary: buildSide(d.primary, dir, `${label}: primary`), shadow: buildSide(d.shadow, dir, `${label}: shadow`),
    historyS: d.history_s ?? 0, seasonS: d.season_s ?? null, firstChangeS: d.first_change_s ?? null,
  };
}

/** The keys allowed where an unknown one was found: the top level, a side, or a CSV trace. */
function allowedAt(p: PropertyKey[]): string {
  if (p.length === 0) return Object.keys(schema.shape).join(", ");
  if (p.length === 1) return Object.keys(side.shape).join(", ");
  // The original four first, as earlier versions listed them; then the slice and the offset.
  return "csv, column, seconds_per_row, scale) (and from_row, rows, offset";
}

/**
 * The shipped scenarios moved from benchmarks/scenarios/ to world/scenarios/; command lines written
 * for the old place keep working: a missing path under benchmarks/scenarios/ is read from its new place.
 */
export function movedScenarioPath(file: string): string {
  if (existsSync(file)) return file;
  const parts = path.normalize(file).split(path.sep);
  const i = parts.findIndex((p, k) => p === "benchmarks" && parts[k + 1] === "scenarios");
  if (i < 0) return file;
  const moved = [...parts.slice(0, i), "world", "scenarios", ...parts.slice(i + 2)].join(path.sep);
  return existsSync(moved) ? moved : file;
}

export function loadScenario(file: string): Scenario {
  let text: string;
  const at = movedScenarioPath(file);
  try { text = readFileSync(at, "utf8"); } catch (e) { throw new ScenarioError(`${file}: cannot read: ${(e as Error).message}`); }
  if (at !== file) file = at;
  return parseScenario(text, file);
}
