// The scenario format's optional fields for scenarios built from real traces: a CSV trace's slice
// (from_row, rows) and affine map (scale, then offset), and a scenario's history_s, season_s and
// first_change_s. Old files load unchanged; each bad value is refused as "FILE: field: reason"; every
// shipped scenario and every real-trace scenario (world/scenarios/real/) loads; the benchmark's
// first-change rule and history replay follow history_s.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenario, parseScenario, ScenarioError } from "../../world/demo/scenario.js";
import { historyPoints } from "../../benchmarks/incident/pair.js";
import { incidentStartS } from "../../benchmarks/incident/run.js";
import { mulberry32 } from "../../host/random.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const scenarios = path.join(root, "world", "scenarios");
const base = { duration_s: 100, rate_rps: 10, read_share: 0.5 };
const rejects = (o: unknown, re: RegExp, file = "s.json") =>
  assert.throws(() => parseScenario(JSON.stringify(o), file), (e: unknown) => e instanceof ScenarioError && re.test(e.message), `expected ${re}`);

/** A scenario directory with a 10-row CSV (values 0..9 in column v). */
function withCsv(fn: (dir: string, load: (o: unknown) => ReturnType<typeof loadScenario>) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-fmt-"));
  try {
    writeFileSync(path.join(dir, "d.csv"), `timestamp,v\n${Array.from({ length: 10 }, (_, i) => `t${i},${i}`).join("\n")}\n`);
    let n = 0;
    fn(dir, (o) => { const f = path.join(dir, `s${n++}.json`); writeFileSync(f, JSON.stringify(o)); return loadScenario(f); });
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

test("old files load unchanged: no history, no season, no stated first change", () => {
  const s = parseScenario(JSON.stringify({ ...base, primary: { cpu: [[0, 0.3], [50, 0.9]], fail_at_s: 60 } }), "s.json");
  assert.is(s.historyS, 0);
  assert.is(s.seasonS, null);
  assert.is(s.firstChangeS, null);
  assert.ok(Math.abs(s.primary.trace("cpu").at(25) - 0.6) < 1e-12);
  withCsv((_dir, load) => {
    const c = load({ ...base, primary: { memory: { csv: "d.csv", column: "v", seconds_per_row: 2, scale: 0.1 } } });
    assert.ok(Math.abs(c.primary.trace("memory").at(3) - 0.15) < 1e-12, "scale alone, every row, as before");
    assert.ok(Math.abs(c.primary.trace("memory").at(99) - 0.9) < 1e-12);
  });
});

test("a CSV trace's slice and affine map: rows from_row.., value x scale + offset", () => {
  withCsv((_dir, load) => {
    const s = load({ ...base, primary: { latency_ms: { csv: "d.csv", column: "v", seconds_per_row: 1, from_row: 3, rows: 4, scale: -2, offset: 20 } } });
    const tr = s.primary.trace("latency_ms");
    assert.equal(tr.points.map(([t, v]) => [t, v]), [[0, 14], [1, 12], [2, 10], [3, 8]], "rows 3..6, time from 0, 20 - 2 x value");
    assert.is(tr.at(10), 8, "constant after the slice");
    const open = load({ ...base, primary: { cpu: { csv: "d.csv", column: "v", seconds_per_row: 1, from_row: 8, offset: 0.5 } } });
    assert.equal(open.primary.trace("cpu").points.map(([, v]) => v), [8.5, 9.5], "without rows: to the end; offset alone (scale 1)");
  });
});

test("a trace between two values near the largest number stays finite (their difference overflowed to Infinity)", () => {
  const s = parseScenario(JSON.stringify({ ...base, primary: { cpu: [[0, -1e308], [10, 1e308]] } }), "s.json");
  assert.is(s.primary.trace("cpu").at(5), 0);
  assert.ok(Math.abs(s.primary.trace("cpu").at(7.5) - 5e307) < 1e293);
});

test("history_s, season_s and first_change_s are read", () => {
  const s = parseScenario(JSON.stringify({ ...base, history_s: 40, season_s: 24, first_change_s: 55, primary: { cpu: [[0, 0.3]], fail_at_s: 90 } }), "s.json");
  assert.is(s.historyS, 40);
  assert.is(s.seasonS, 24);
  assert.is(s.firstChangeS, 55);
  assert.is(s.expect, "migrate");
});

test("bad values are refused with FILE: field: reason", () => {
  const csv = (extra: Record<string, unknown>) => ({ ...base, primary: { cpu: { csv: "d.csv", column: "v", seconds_per_row: 1, ...extra } } });
  rejects(csv({ offset: "1" }), /^s\.json: primary\.cpu\.offset: .*expected number/i);
  rejects(csv({ scale: null }), /^s\.json: primary\.cpu\.scale: /);
  rejects(csv({ from_row: -1 }), /^s\.json: primary\.cpu\.from_row: .*(>=|greater|non-?negative)/i);
  rejects(csv({ from_row: 1.5 }), /^s\.json: primary\.cpu\.from_row: .*int/i);
  rejects(csv({ rows: 0 }), /^s\.json: primary\.cpu\.rows: .*(>|greater|positive)/i);
  rejects(csv({ offst: 1 }), /^s\.json: primary\.cpu: Unrecognized key: "offst" \(allowed here: csv, column, seconds_per_row, scale\) \(and from_row, rows, offset\)/);
  rejects({ ...base, history_s: -1 }, /^s\.json: history_s: .*(>=|greater|non-?negative)/i);
  rejects({ ...base, history_s: "10" }, /^s\.json: history_s: .*expected number/i);
  rejects({ ...base, history_s: 100 }, /^s\.json: history_s: must be less than duration_s \(100\), got 100/);
  rejects({ ...base, season_s: 0 }, /^s\.json: season_s: .*(>|greater|positive)/i);
  rejects({ ...base, first_change_s: -5 }, /^s\.json: first_change_s: /);
  rejects({ ...base, first_change_s: 101 }, /^s\.json: first_change_s: must be at most duration_s \(100\), got 101/);
  rejects({ ...base, first_change_s: 70, primary: { fail_at_s: 60 } }, /^s\.json: first_change_s: must not be after primary\.fail_at_s \(60\), got 70/);
  rejects({ ...base, history_s: 50, primary: { fail_at_s: 40 } }, /^s\.json: primary\.fail_at_s: must not be before history_s \(50\)/);
  rejects({ ...base, history_s: 50, shadow: { fail_at_s: 10 } }, /^s\.json: shadow\.fail_at_s: must not be before history_s/);
  rejects({ ...base, sesaon_s: 5 }, /^s\.json: \(top\): Unrecognized key: "sesaon_s" \(allowed here: .*history_s, season_s, first_change_s\)/);
  withCsv((dir, load) => {
    const where = (re: RegExp) => (e: unknown) => e instanceof ScenarioError && re.test(e.message);
    assert.throws(() => load(csv({ from_row: 10 })), where(/s\d\.json: primary\.cpu\.from_row: 10 is past the last row of d\.csv \(it has 10 data rows, numbered from 0\)/));
    assert.throws(() => load(csv({ from_row: 7, rows: 4 })), where(/s\d\.json: primary\.cpu\.rows: 4 rows from row 7 run past the end of d\.csv \(it has 10 data rows\)/));
    // A scale that overflows a row is refused at that row (it played Infinity before).
    assert.throws(() => load(csv({ scale: 1e308 })), where(/s\d\.json: primary\.cpu: d\.csv data row 2: 2 x scale 1e\+308 \+ offset 0 is not a finite number/));
    // An empty cell is missing data, not a 0 (it played 0 before).
    writeFileSync(path.join(dir, "d.csv"), "timestamp,v\nt0,1\nt1,\nt2,3\n");
    assert.throws(() => load(csv({})), where(/s\d\.json: primary\.cpu: .*d\.csv line 3, column v: "" is not a number/));
    assert.ok(dir.length > 0);
  });
});

test("every shipped and every real-trace scenario loads; the real ones state history, warning and failure", () => {
  const shipped = readdirSync(scenarios).filter((f) => f.endsWith(".json"));
  assert.is(shipped.length, 11, "the 11 shipped scenarios");
  for (const f of shipped) {
    const s = loadScenario(path.join(scenarios, f));
    assert.is(s.historyS, 0, `${f}: no history`);
  }
  const real = readdirSync(path.join(scenarios, "real")).filter((f) => f.endsWith(".json"));
  const loaded = real.map((f) => loadScenario(path.join(scenarios, "real", f)));
  const degrading = loaded.filter((s) => s.expect === "migrate"), healthy = loaded.filter((s) => s.expect === "stay");
  assert.ok(degrading.length >= 8, `at least 8 degrading, got ${degrading.length}`);
  assert.ok(healthy.length >= 6, `at least 6 healthy, got ${healthy.length}`);
  for (const s of loaded) {
    assert.is(s.name, path.basename(s.file!, ".json"), `${s.file}: named as its file`);
    assert.ok(s.historyS > 0, `${s.name}: has history`);
    assert.ok(/NAB .*data rows \d+-\d+/.test(s.description), `${s.name}: names its NAB slice`);
  }
  for (const s of degrading) {
    assert.ok(s.firstChangeS !== null && s.primary.failAtS !== null, `${s.name}: first change and hard failure stated`);
    assert.ok(s.firstChangeS! >= s.historyS, `${s.name}: the trouble starts after the history`);
    const warning = s.primary.failAtS! - s.firstChangeS!;
    assert.ok(warning >= 24.9, `${s.name}: warning ${warning} s`);
  }
  assert.ok(degrading.some((s) => Math.abs(s.primary.failAtS! - s.firstChangeS! - 25) < 1), "one short precursor of ~25 s");
  assert.ok(degrading.filter((s) => s.primary.failAtS! - s.firstChangeS! >= 30).length >= 7, "the others have >= 30 s of warning");
});

test("the benchmark's first change: stated, or the automatic rule from history_s on", () => {
  const auto = parseScenario(JSON.stringify({ ...base, history_s: 20, primary: { cpu: [[0, 0.9], [20, 0.3], [30, 0.3], [40, 0.6]], fail_at_s: 60 } }), "s.json");
  const t = incidentStartS(auto)!;
  assert.ok(t > 30 && t < 32, `the history's values do not count: ${t}`);
  const stated = parseScenario(JSON.stringify({ ...base, first_change_s: 33, primary: { cpu: [[0, 0.3], [10, 0.9]], fail_at_s: 60 } }), "s.json");
  assert.is(incidentStartS(stated), 33);
  const old = parseScenario(JSON.stringify({ ...base, primary: { cpu: [[0, 0.3], [10, 0.3], [20, 0.9]], fail_at_s: 60 } }), "s.json");
  assert.is(incidentStartS(old), 10.5, "old files: unchanged rule");
});

test("history replay: one point a second per signal, seeded, following the traces", () => {
  const s = parseScenario(JSON.stringify({ ...base, rate_rps: 200, history_s: 30, primary: { cpu: [[0, 0.2], [30, 0.8]], latency_ms: [[0, 10]], error_rate: [[0, 0.1]], queue_depth: [[0, 20]] } }), "s.json");
  const a = historyPoints(s, "primary", 30, mulberry32(5)), b = historyPoints(s, "primary", 30, mulberry32(5));
  assert.equal(a, b, "the same seed gives the same history");
  for (const [k, pts] of Object.entries(a)) {
    assert.is(pts.length, 30, `${k}: 30 points`);
    assert.equal(pts.map(([t]) => t), Array.from({ length: 30 }, (_, i) => i), `${k}: one a second from 0`);
  }
  assert.ok(Math.abs(a.cpu[15]![1] - 0.5) < 0.1, `cpu follows its trace (${a.cpu[15]![1]})`);
  const p99 = a.request_latency_p99_ms.map(([, v]) => v).sort((x, y) => x - y)[15]!;
  assert.ok(p99 > 14 && p99 < 23, `p99 of 10 ms x e^(0.25 N) is about 17.9 ms, got ${p99}`);
  const err = a.request_error_rate.reduce((x, [, v]) => x + v, 0) / 30;
  assert.ok(err > 0.07 && err < 0.13, `error rate about 0.1, got ${err}`);
  assert.ok(a.queue_depth.every(([, v]) => Number.isInteger(v)), "queue depth whole, as the node exports it");
});

test.run();
