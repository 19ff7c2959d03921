// Leave-one-category-out NAB evaluation (controller/risk/nab/loco.ts) on a tiny synthetic corpus
// written to temp files: settings are chosen on the training categories only, the held-out
// category is scored at the training threshold, a category without windows is reported and left
// out of the mean, and the detector's default is unchanged by the optional settings.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { listCorpus, readSeries, readWindows, type Series } from "../../controller/risk/nab/corpus.js";
import { categoryOf, leaveOneCategoryOut, locoNab, nabCandidates, scoreCandidates, NAB_LOCO_GRID, NAB_LOCO_VIEWS_GRID, type Candidate } from "../../controller/risk/nab/loco.js";
import { CalibratedDetector } from "../../controller/risk/nab/calibrate.js";
import { nabDetector, scoreSeries, settingsName } from "../../controller/risk/nab/detector.js";
import { PROFILES, scoreAtThreshold, scoreCorpus } from "../../controller/risk/nab/scorer.js";
import { SeriesDetector, seriesOptions } from "../../controller/risk/detectors/series.js";
import { mulberry32, normal } from "../support/random.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const N = 300, W0 = 150, W1 = 164; // every file with a window has it at rows 150..164
const stamp = (i: number) => new Date(Date.UTC(2024, 0, 1) + i * 300_000).toISOString().replace("T", " ").slice(0, 19);

/** DIR/data/CATEGORY/FILE.csv for each category (2 files each) and DIR/labels/combined_windows.json. */
function corpus(categories: { name: string; windows: boolean }[]): { dir: string; series: Series[]; windows: Record<string, [string, string][]> } {
  const dir = mkdtempSync(path.join(tmpdir(), "nab-loco-"));
  const windows: Record<string, [string, string][]> = {};
  let seed = 1;
  for (const c of categories) {
    mkdirSync(path.join(dir, "data", c.name), { recursive: true });
    for (const f of ["f1.csv", "f2.csv"]) {
      const rand = mulberry32(seed++);
      const rows = ["timestamp,value"];
      for (let i = 0; i < N; i++) rows.push(`${stamp(i)},${(50 + 5 * Math.sin(i / 20) + normal(rand) + (c.windows && i >= W0 + 5 && i <= W0 + 9 ? 40 : 0)).toFixed(3)}`);
      writeFileSync(path.join(dir, "data", c.name, f), rows.join("\n") + "\n");
      windows[`${c.name}/${f}`] = c.windows ? [[`${stamp(W0)}.000000`, `${stamp(W1)}.000000`]] : [];
    }
  }
  mkdirSync(path.join(dir, "labels"));
  writeFileSync(path.join(dir, "labels/combined_windows.json"), JSON.stringify(windows));
  const series = listCorpus(path.join(dir, "data")).map(({ key, file }) => readSeries(file, key));
  return { dir, series, windows: readWindows(path.join(dir, "labels/combined_windows.json")) };
}

/** A candidate that fires `at` (row -> score) per category, 0 elsewhere. */
const cand = (name: string, fire: (category: string) => [number, number][]): Candidate => ({
  name,
  score: (s) => { const out = new Float64Array(s.values.length); for (const [i, v] of fire(categoryOf(s.key))) out[i] = v; return out; },
});
// Catches every window late (row 160 of 150..164): decent everywhere.
const plain = cand("plain", () => [[160, 0.8]]);
// Perfect on catA (first window row), but on the others misses and raises false positives.
const cheatA = cand("cheatA", (c) => (c === "catA" ? [[W0, 1]] : [[60, 0.95], [80, 0.95], [100, 0.95], [200, 0.95]]));
// Perfect everywhere in shape, but catA's scores are on a lower scale.
const scaled = cand("scaled", (c) => (c === "catA" ? [[W0, 0.3]] : [[W0, 0.9], [80, 0.5]]));

test("a setting perfect on the held-out category but bad on the others is not chosen", () => {
  const { series, windows } = corpus([{ name: "catA", windows: true }, { name: "catB", windows: true }, { name: "catC", windows: true }]);
  const cands = [plain, cheatA];
  const scored = scoreCandidates(series, windows, cands);
  const heldA = scored[1]!.filter((f) => f.key.startsWith("catA/"));
  assert.is(scoreCorpus(heldA, PROFILES.standard).score, 100, "cheatA alone would score 100 on catA");
  const r = leaveOneCategoryOut(scored, cands);
  assert.equal(r.folds.map((f) => f.held_out), ["catA", "catB", "catC"]);
  for (const f of r.folds) assert.is(f.setting, "plain", `fold ${f.held_out} chose ${f.setting}`);
  const a = r.folds[0]!;
  assert.ok(a.held_out_score! < 100 && a.held_out_score! > 0, `catA held out: ${a.held_out_score}`);
  const train = scored[0]!.filter((f) => !f.key.startsWith("catA/"));
  assert.is(a.threshold, scoreCorpus(train, PROFILES.standard).threshold);
  assert.is(a.held_out_score, scoreAtThreshold(scored[0]!.filter((f) => f.key.startsWith("catA/")), PROFILES.standard, a.threshold).score);
  assert.is(r.score, r.folds.reduce((s, f) => s + f.held_out_score!, 0) / 3);
  assert.equal(r.excluded, []);
});

test("one-standard-error selection: a setting better on the pooled training score, but only as far as the categories disagree, loses to the default", () => {
  const { series, windows } = corpus([{ name: "catA", windows: true }, { name: "catB", windows: true }, { name: "catC", windows: true }]);
  // Early on catB, late plus a false positive on catC: better pooled, uneven per category.
  const tweak: Candidate = { ...cand("window=256", (c) => (c === "catB" ? [[W0, 0.8]] : [[160, 0.8], [60, 0.8]])), settings: { window: 256 } };
  const cands = [plain, tweak];
  const scored = scoreCandidates(series, windows, cands);
  const argmax = leaveOneCategoryOut(scored, cands);
  const oneSe = leaveOneCategoryOut(scored, cands, { selection: "one-se" });
  const a0 = argmax.folds[0]!, a1 = oneSe.folds[0]!;
  assert.is(a0.held_out, "catA");
  assert.is(a0.setting, "window=256", "the best pooled training score");
  assert.ok(a0.train_score > scoreCorpus(scored[0]!.filter((f) => !f.key.startsWith("catA/")), PROFILES.standard).score, "better than the default on training");
  assert.ok(a1.standard_error > 0 && a1.best_train_score - a1.train_score <= a1.standard_error, `within one SE: ${a1.best_train_score} - ${a1.train_score} <= ${a1.standard_error}`);
  assert.equal([a1.setting, a1.best_setting, a1.selection], ["plain", "window=256", "one-se"], "the simpler setting within one standard error");
  assert.is(a1.held_out_score, scoreAtThreshold(scored[0]!.filter((f) => f.key.startsWith("catA/")), PROFILES.standard, a1.threshold).score, "scored with the chosen setting at its own training threshold");
});

test("the held-out category is scored at the training threshold, not its own", () => {
  const { series, windows } = corpus([{ name: "catA", windows: true }, { name: "catB", windows: true }, { name: "catC", windows: true }]);
  const cands = [plain, scaled];
  const scored = scoreCandidates(series, windows, cands);
  const r = leaveOneCategoryOut(scored, cands);
  const a = r.folds[0]!;
  assert.is(a.setting, "scaled");
  assert.is(a.threshold, 0.9, "the threshold settled on catB and catC");
  assert.is(a.train_score, 100);
  assert.is(a.tp, 0, "catA's detections (0.3) are under the training threshold");
  assert.is(a.held_out_score, 0, "so catA scores as the null detector");
  assert.is(r.in_sample_default.catA!.score, scoreCorpus(scored[0]!.filter((f) => f.key.startsWith("catA/")), PROFILES.standard).score, "in-sample uses the first candidate");
  assert.is(scoreCorpus(scored[1]!.filter((f) => f.key.startsWith("catA/")), PROFILES.standard).score, 100, "in-sample, scaled would have scored 100 on catA");
});

test("a category without windows is reported and left out of the mean; pooled counts it", () => {
  const { series, windows } = corpus([{ name: "catA", windows: true }, { name: "catB", windows: true }, { name: "none", windows: false }]);
  const cands = [plain, cheatA];
  const r = leaveOneCategoryOut(scoreCandidates(series, windows, cands), cands);
  const none = r.folds.find((f) => f.held_out === "none")!;
  assert.is(none.windows, 0);
  assert.is(none.held_out_score, null);
  assert.equal(r.mean_over, ["catA", "catB"]);
  assert.is(r.excluded.length, 1);
  assert.is(r.excluded[0]!.category, "none");
  assert.is(r.score, (r.folds[0]!.held_out_score! + r.folds[1]!.held_out_score!) / 2);
  // Trained on catA and catB, plain wins (cheatA's misses and false positives on catB outweigh its
  // catA gain); on "none" its one firing per file is a false positive, which only pooled counts.
  assert.is(none.setting, "plain");
  assert.is(none.fp, 2);
  assert.ok(none.held_out_raw < 0);
  assert.match(r.excluded[0]!.reason, /2 false positive/);
  const raw = r.folds.reduce((s, f) => s + f.held_out_raw, 0);
  assert.ok(Math.abs(r.pooled - (100 * (raw + 4)) / 8) < 1e-9, "4 windows: null -4, perfect 4");
  assert.ok(r.pooled < (100 * (raw - none.held_out_raw + 4)) / 8);
  assert.is(r.in_sample_default.none!.score, null);
});

test("scoreAtThreshold at scoreCorpus's threshold reproduces scoreCorpus", () => {
  const { series, windows } = corpus([{ name: "catA", windows: true }, { name: "catB", windows: true }, { name: "none", windows: false }]);
  const files = series.map((s) => ({ key: s.key, timestamps: s.timestamps, scores: scoreSeries(s.timesMs, s.values), windows: windows[s.key] ?? [] }));
  for (const p of Object.values(PROFILES)) {
    const a = scoreCorpus(files, p), b = scoreAtThreshold(files, p, a.threshold);
    assert.ok(Math.abs(a.raw - b.raw) < 1e-9 && Math.abs(a.score - b.score) < 1e-9, `${a.score} vs ${b.score}`);
    assert.equal([a.tp, a.fp, a.fn], [b.tp, b.fp, b.fn]);
  }
  assert.ok(Number.isNaN(scoreAtThreshold(files.filter((f) => f.key.startsWith("none/")), PROFILES.standard, 0.5).score), "no windows: no NAB score");
});

test("leaveOneCategoryOut refuses a single category and mismatched inputs", () => {
  const { series, windows } = corpus([{ name: "catA", windows: true }]);
  assert.throws(() => leaveOneCategoryOut(scoreCandidates(series, windows, [plain]), [plain]), /at least 2 categories/);
  assert.throws(() => leaveOneCategoryOut(scoreCandidates(series, windows, [plain]), [plain, cheatA]), /1 scored sets for 2 candidates/);
});

test("the NAB grid: 72 distinct settings, the default first; settings leave the default detector unchanged", () => {
  assert.is(NAB_LOCO_GRID.length, 72);
  assert.equal(NAB_LOCO_GRID[0], {});
  assert.is(settingsName(NAB_LOCO_GRID[0]!), "default");
  assert.is(new Set(NAB_LOCO_GRID.map(settingsName)).size, 72);
  const { series } = corpus([{ name: "catA", windows: true }]);
  const s = series[0]!;
  // The default is the SeriesDetector below, calibrated against the series' record (calibrate.ts).
  const ref = new CalibratedDetector(new SeriesDetector(seriesOptions({ side: "both", changePoint: false, envelope: true })));
  const expected = Array.from(s.values, (v, i) => ref.update(s.timesMs[i]!, v));
  assert.equal(Array.from(scoreSeries(s.timesMs, s.values)), expected);
  assert.equal(Array.from(scoreSeries(s.timesMs, s.values, {})), expected);
  assert.equal(nabDetector({ envelope: false }).envelope, null);
  assert.is(nabDetector({ window: 256 }).opts.baseline.window, 256);
  assert.is(nabDetector({ envelopeTolerance: 0.1 }).opts.envelope!.tolerance, 0.1);
  const uncal = new SeriesDetector(seriesOptions({ side: "both", changePoint: false, envelope: true }));
  assert.equal(Array.from(scoreSeries(s.timesMs, s.values, { calibrate: false })), Array.from(s.values, (v, i) => uncal.update(s.timesMs[i]!, v)));
});

test("the views-only grid: 8 settings, the default first, each also in the full grid; a base setting applies under every candidate", () => {
  assert.is(NAB_LOCO_VIEWS_GRID.length, 8);
  assert.equal(NAB_LOCO_VIEWS_GRID[0], {});
  const full = new Set(NAB_LOCO_GRID.map(settingsName));
  for (const g of NAB_LOCO_VIEWS_GRID) assert.ok(full.has(settingsName(g)), settingsName(g));
  const c = nabCandidates(NAB_LOCO_VIEWS_GRID.slice(0, 2), { calibrate: false });
  assert.equal(c.map((x) => x.name), ["calibrate=off", "changePoint=on,calibrate=off"]);
  assert.equal(c[1]!.settings, { calibrate: false, changePoint: true });
});

test("locoNab runs the real detector grid on a small corpus; the nab CLI's --loco adds fields and keeps the old ones", () => {
  const { dir, series, windows } = corpus([{ name: "catA", windows: true }, { name: "catB", windows: true }]);
  const r = locoNab(series, windows, nabCandidates(NAB_LOCO_GRID.slice(0, 4)));
  assert.is(r.folds.length, 2);
  for (const f of r.folds) assert.ok(f.setting_index >= 0 && f.setting_index < 4 && f.held_out_score !== null);
  const run = (...extra: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/nab.ts"), path.join(dir, "data"), path.join(dir, "out"), ...extra], { encoding: "utf8", cwd: ROOT });
  const plainRun = run("--score", path.join(dir, "labels/combined_windows.json"));
  assert.is(plainRun.status, 0, plainRun.stderr);
  const before = JSON.parse(plainRun.stdout);
  assert.equal(Object.keys(before), ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]);
  const locoRun = run("--score", path.join(dir, "labels/combined_windows.json"), "--loco");
  assert.is(locoRun.status, 0, locoRun.stderr);
  const after = JSON.parse(locoRun.stdout);
  for (const k of Object.keys(before)) assert.is(after[k], before[k]);
  assert.type(after.nab_standard_loco, "number");
  assert.type(after.nab_standard_loco_argmax, "number");
  assert.is(after.loco.selection, "one-se");
  assert.ok(after.loco.folds.every((f: { setting: string; best_setting: string }) => typeof f.best_setting === "string"), "each fold names the best training setting beside the chosen one");
  assert.is(after.loco.folds.length, 2);
  assert.is(after.loco.grid, 72);
  const bad = run("--loco");
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--loco needs --score/);
});

test.run();
