// Scenario files are checked strictly (file and field in every error), traces interpolate as
// documented (points and CSV replay), and `npm start -- --duration S --scenario FILE` prints one JSON
// summary line with the documented fields.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenario, parseScenario, ScenarioError } from "../../world/demo/scenario.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const rejects = (text: string, re: RegExp) =>
  assert.throws(() => parseScenario(text, "s.json"), (e: unknown) => e instanceof ScenarioError && re.test(e.message), `expected ${re}`);

test("scenario files: strict fields, interpolation, CSV replay", () => {
  rejects("{", /^s\.json: not JSON/);
  rejects('{"duration_s": 10, "rate_rps": 5}', /^s\.json: read_share: /);
  rejects('{"duration_s": 10, "rate_rps": 5, "read_share": 0.5, "primary": {"latncy_ms": [[0, 1]]}}', /primary: Unrecognized key.*latncy_ms.*allowed here: latency_ms, error_rate/);
  rejects('{"duration_s": 10, "rate_rps": 5, "read_share": 0.5, "primary": {"latency_ms": [[5, 1], [2, 3]]}}', /primary\.latency_ms\[1\]: times must not decrease/);
  rejects('{"duration_s": 10, "rate_rps": 5, "read_share": 0.5, "primary": {"error_rate": [[0, 2]]}}', /error rates must be in \[0, 1\], got 2/);
  rejects('{"duration_s": 10, "rate_rps": 5, "read_share": 0.5, "primary": {"memory": {"csv": "m.csv", "colum": "m", "seconds_per_row": 1}}}', /primary\.memory: Unrecognized key: "colum" \(allowed here: csv, column, seconds_per_row, scale\)/);
  const s = parseScenario('{"duration_s": 10, "rate_rps": 5, "read_share": 0.5, "primary": {"latency_ms": [[10, 2], [20, 12]], "fail_at_s": 30}}', null);
  assert.is(s.primary.trace("latency_ms").at(0), 2, "constant before the first point");
  assert.is(s.primary.trace("latency_ms").at(15), 7, "linear between points");
  assert.is(s.primary.trace("latency_ms").at(99), 12, "constant after the last");
  assert.is(s.primary.trace("cpu").at(5), 0.25, "an absent signal is healthy");
  assert.is(s.primary.failAtS, 30);
  assert.is(s.expect, "migrate");
  const dir = mkdtempSync(path.join(tmpdir(), "sm-scn-"));
  try {
    writeFileSync(path.join(dir, "m.csv"), "timestamp,mem\n0,0.5\n1,0.7\n2,0.9\n");
    writeFileSync(path.join(dir, "s.json"), JSON.stringify({ duration_s: 5, rate_rps: 5, read_share: 0.5, primary: { memory: { csv: "m.csv", column: "mem", seconds_per_row: 10 } } }));
    const c = loadScenario(path.join(dir, "s.json"));
    assert.ok(Math.abs(c.primary.trace("memory").at(15) - 0.8) < 1e-9, "rows are seconds_per_row apart, relative to the scenario file");
    writeFileSync(path.join(dir, "bad.json"), JSON.stringify({ duration_s: 5, rate_rps: 5, read_share: 0.5, primary: { memory: { csv: "m.csv", column: "memory", seconds_per_row: 10 } } }));
    assert.throws(() => loadScenario(path.join(dir, "bad.json")), (e: unknown) => e instanceof ScenarioError && /memory\.column: "memory" is not a column of .*m\.csv \(columns: timestamp, mem\)/.test((e as Error).message));
  } finally { rmSync(dir, { recursive: true, force: true }); }
  for (const f of readdirSync(path.join(root, "world", "scenarios")).filter((x) => x.endsWith(".json"))) {
    assert.ok(loadScenario(path.join(root, "world", "scenarios", f)).durationS > 0, `${f} loads`);
  }
  // The scenarios' old place (benchmarks/scenarios/, in published command lines) still loads, relative and absolute.
  const moved = loadScenario(path.join(root, "benchmarks", "scenarios", "memory-leak.json"));
  assert.is(moved.name, "memory-leak");
  const cwd = process.cwd();
  try { process.chdir(root); assert.is(loadScenario("benchmarks/scenarios/real/" + readdirSync(path.join(root, "world", "scenarios", "real")).find((f) => f.endsWith(".json"))!).primary.trace("cpu") !== undefined, true); } finally { process.chdir(cwd); }
  assert.throws(() => loadScenario(path.join(root, "benchmarks", "scenarios", "no-such.json")), (e: unknown) => e instanceof ScenarioError && /no-such\.json: cannot read/.test((e as Error).message));
});

test("npm start -- --duration S --scenario FILE prints the JSON summary", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-start-"));
  try {
    const file = path.join(dir, "quiet.json");
    writeFileSync(file, JSON.stringify({ name: "quiet", duration_s: 60, rate_rps: 40, read_share: 0.8, keys: 100 }));
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", path.join(root, "scripts", "start.ts"), "--duration", "6", "--scenario", file], { cwd: root, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }));
    });
    assert.is(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n");
    const summary = JSON.parse(lines.at(-1)!);
    for (const k of ["migrated", "migrated_at_s", "failed_at_s", "requests", "failed_requests"]) assert.ok(k in summary, `summary has ${k}`);
    assert.is(summary.scenario, "quiet");
    assert.is(summary.migrated, false);
    assert.is(summary.failed_at_s, null);
    assert.ok(summary.requests >= 200 && summary.requests <= 260, `about 40 rps for 6 s (${summary.requests})`);
    assert.is(summary.failed_requests, 0);
    assert.is(summary.lost_writes, 0);
    assert.match(out.stderr, /dashboard: http:\/\/127\.0\.0\.1:\d+\//);
    const bad = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", path.join(root, "scripts", "start.ts"), "--scenario", path.join(dir, "nope.json")], { cwd: root, timeout: 30_000 },
        (err, _o, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stderr }));
    });
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /nope\.json: cannot read/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test.run();
