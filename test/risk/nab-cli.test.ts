// The nab CLI (`npm run -s nab -- DATA_DIR OUT_DIR`): one output row per input row with the header
// NAB expects, scores in [0, 1], strictly streaming (a truncated file scores its rows identically),
// and bad input refused with the file and line.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { mulberry32, normal } from "../support/random.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const nab = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/nab.ts"), ...args], { encoding: "utf8", cwd: ROOT });

function csv(n: number, seed: number): string {
  const rand = mulberry32(seed);
  const rows = ["timestamp,value"];
  for (let i = 0; i < n; i++) {
    const t = new Date(Date.UTC(2024, 0, 1) + i * 300_000).toISOString().replace("T", " ").slice(0, 19);
    rows.push(`${t},${(50 + 10 * Math.sin(i / 30) + normal(rand) + (i > 1500 ? 25 : 0)).toFixed(3)}`);
  }
  return rows.join("\n") + "\n";
}

test("writes OUT_DIR/CATEGORY/FILE.csv row for row, and a file cut short scores identically", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nab-"));
  const full = csv(2000, 1);
  const cut = full.split("\n").slice(0, 1201).join("\n") + "\n";
  mkdirSync(path.join(dir, "data/catA"), { recursive: true });
  mkdirSync(path.join(dir, "data/catB"), { recursive: true });
  writeFileSync(path.join(dir, "data/catA/full.csv"), full);
  writeFileSync(path.join(dir, "data/catB/cut.csv"), cut);
  const r = nab(path.join(dir, "data"), path.join(dir, "out"));
  assert.is(r.status, 0, r.stderr);
  const a = readFileSync(path.join(dir, "out/catA/full.csv"), "utf8").trim().split("\n");
  const b = readFileSync(path.join(dir, "out/catB/cut.csv"), "utf8").trim().split("\n");
  assert.is(a[0], "timestamp,value,anomaly_score");
  assert.is(a.length, 2001);
  assert.is(b.length, 1201);
  assert.equal(b, a.slice(0, 1201), "the shared rows are identical");
  const scores = a.slice(1).map((l) => Number(l.split(",")[2]));
  assert.ok(scores.every((s) => s >= 0 && s <= 1));
  assert.ok(Math.max(...scores.slice(1501, 1510)) > 0.5, "the level shift at row 1501 goes past the edge of the normal range");
  assert.ok(scores.slice(300, 1500).filter((s) => s > 0.5).length < 15, "the sine before it rarely does");
  const [t0, v0] = full.split("\n")[1]!.split(",");
  assert.is(a[1]!.split(",")[0], t0);
  assert.is(Number(a[1]!.split(",")[1]), Number(v0));
});

test("bad input: a missing directory, a bad header and a bad value are refused with the location", () => {
  assert.match(nab("/nonexistent", "/tmp/x").stderr, /DATA_DIR \/nonexistent is not a directory/);
  assert.match(nab("only-one").stderr, /expected DATA_DIR and OUT_DIR, got 1 argument/);
  const dir = mkdtempSync(path.join(tmpdir(), "nab-"));
  mkdirSync(path.join(dir, "c"));
  writeFileSync(path.join(dir, "c/f.csv"), "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n");
  const r = nab(dir, path.join(dir, "out"));
  assert.is(r.status, 1);
  assert.match(r.stderr, /f\.csv:3: value "abc" is not a number/);
  writeFileSync(path.join(dir, "c/f.csv"), "time,v\n");
  assert.match(nab(dir, path.join(dir, "out")).stderr, /f\.csv:1: expected the header "timestamp,value"/);
  // An empty value is missing data, not a 0.
  writeFileSync(path.join(dir, "c/f.csv"), "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,\n");
  const blank = nab(dir, path.join(dir, "out"));
  assert.is(blank.status, 1);
  assert.match(blank.stderr, /^nab: \S*f\.csv:3: value "" is not a number\n$/);
});

test("bad windows for --score: unreadable, not JSON, another shape, or bounds that are not rows: one line naming what is wrong", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nab-"));
  mkdirSync(path.join(dir, "c"));
  writeFileSync(path.join(dir, "c/f.csv"), "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,2\n");
  const score = (json: string | null) => {
    const w = path.join(dir, "w.json");
    if (json !== null) writeFileSync(w, json);
    return nab(dir, path.join(dir, "out"), "--score", json === null ? path.join(dir, "none.json") : w);
  };
  const cases: [string | null, RegExp][] = [
    [null, /^nab: --score: \S*none\.json: cannot read the windows: ENOENT\n$/],
    ["{bad", /^nab: --score: \S*w\.json: not JSON: /],
    ["[]", /^nab: --score: \S*w\.json: expected an object of "CATEGORY\/FILE\.csv": \[\[start, end\], \.\.\.\], got an array\n$/],
    ['{"c/f.csv": [["2024-01-01 00:00:00"]]}', /^nab: --score: \S*w\.json: c\/f\.csv\[0\]: expected \[start, end\] as two timestamps, got \["2024-01-01 00:00:00"\]\n$/],
    ['{"c/f.csv": [["2024-01-01 00:00:00", "2024-01-01 00:07:00"]]}', /nab: --score: c\/f\.csv: window 0 \(2024-01-01 00:00:00 \.\. 2024-01-01 00:07:00\) does not match a row/],
  ];
  for (const [json, want] of cases) {
    const r = score(json);
    assert.is(r.status, 1, `${json}: exit ${r.status}`);
    assert.match(r.stderr.replace(/^nab: \d+ files.*\n/m, ""), want);
    assert.not.match(r.stderr, /\n\s+at /, `${json}: a stack trace`);
  }
  assert.is(score('{"c/f.csv": [["2024-01-01 00:00:00", "2024-01-01 00:05:00"]]}').status, 0, "good windows still score");
});

test.run();
