// npm run -s nab -- DATA_DIR OUT_DIR [--score LABELS.json [--loco]]
// Scores every DATA_DIR/CATEGORY/FILE.csv row by row with the controller's detector code and writes
// OUT_DIR/CATEGORY/FILE.csv ("timestamp,value,anomaly_score"). With --score, also prints NAB's three
// profile scores against a combined_windows.json. With --loco as well, the same JSON line also
// carries the leave-one-category-out standard score (controller/risk/nab/loco.ts: each fold's setting
// by the one-standard-error rule) and its folds, and nab_standard_loco_argmax (the best training score).
import { mkdirSync, writeFileSync, existsSync, statSync } from "node:fs";
import path from "node:path";
import { listCorpus, readSeries, readWindows } from "../controller/risk/nab/corpus.js";
import { scoreSeries } from "../controller/risk/nab/detector.js";
import { scoreAllProfiles, type ScoredFile } from "../controller/risk/nab/scorer.js";
import { leaveOneCategoryOutEach, nabCandidates, scoreCandidates } from "../controller/risk/nab/loco.js";
import type { Series } from "../controller/risk/nab/corpus.js";

function usage(msg: string): never {
  process.stderr.write(`nab: ${msg}\nusage: npm run -s nab -- DATA_DIR OUT_DIR [--score combined_windows.json [--loco]]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let labels: string | undefined;
let loco = false;
const pos: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--score") { labels = args[++i]; if (!labels) usage("--score needs a path to combined_windows.json"); }
  else if (args[i] === "--loco") loco = true;
  else if (args[i]!.startsWith("-")) usage(`unknown option ${args[i]}`);
  else pos.push(args[i]!);
}
if (loco && !labels) usage("--loco needs --score combined_windows.json");
if (pos.length !== 2) usage(`expected DATA_DIR and OUT_DIR, got ${pos.length} argument(s)`);
const [dataDir, outDir] = pos as [string, string];
if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) usage(`DATA_DIR ${dataDir} is not a directory`);

const files = listCorpus(dataDir);
if (files.length === 0) usage(`no CATEGORY/FILE.csv under ${dataDir}`);
let windows: Record<string, [string, string][]> = {};
if (labels) { try { windows = readWindows(labels); } catch (e) { process.stderr.write(`nab: --score: ${(e as Error).message}\n`); process.exit(1); } }
const scored: ScoredFile[] = [];
const series: Series[] = [];
let rows = 0;
const t0 = performance.now();
for (const { key, file } of files) {
  let s;
  try { s = readSeries(file, key); } catch (e) { process.stderr.write(`nab: ${(e as Error).message}\n`); process.exit(1); }
  const scores = scoreSeries(s.timesMs, s.values);
  rows += scores.length;
  const lines = ["timestamp,value,anomaly_score"];
  for (let i = 0; i < scores.length; i++) lines.push(`${s.timestamps[i]},${s.values[i]},${scores[i]}`);
  const out = path.join(outDir, key);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, lines.join("\n") + "\n");
  if (labels) scored.push({ key, timestamps: s.timestamps, scores, windows: windows[key] ?? [] });
  if (loco) series.push(s);
}
const ms = performance.now() - t0;
process.stderr.write(`nab: ${files.length} files, ${rows} rows in ${ms.toFixed(0)} ms -> ${outDir}\n`);
if (labels) {
  let r;
  // A window whose bounds are not rows of its file is named (file, window, bounds).
  try { r = scoreAllProfiles(scored); } catch (e) { process.stderr.write(`nab: --score: ${(e as Error).message}\n`); process.exit(1); }
  const out: Record<string, unknown> = { standard: +r.standard.score.toFixed(2), reward_low_FP_rate: +r.reward_low_FP_rate.score.toFixed(2), reward_low_FN_rate: +r.reward_low_FN_rate.score.toFixed(2) };
  if (loco) {
    let l, argmax;
    try {
      const candidates = nabCandidates();
      const scoredGrid = scoreCandidates(series, windows, candidates);
      const each = leaveOneCategoryOutEach(scoredGrid, candidates, ["one-se", "argmax"]);
      l = each["one-se"]!;
      argmax = each.argmax!;
    } catch (e) { process.stderr.write(`nab: --loco: ${(e as Error).message}\n`); process.exit(1); }
    const r2 = (x: number | null) => (x === null || !Number.isFinite(x) ? null : +x.toFixed(2));
    out.nab_standard_loco = r2(l.score);
    out.nab_standard_loco_pooled = r2(l.pooled);
    out.nab_standard_loco_argmax = r2(argmax.score);
    out.loco = {
      mean_over: l.mean_over,
      excluded: l.excluded,
      grid: l.grid.length,
      selection: "one-se",
      folds: l.folds.map((f) => ({ held_out: f.held_out, setting: f.setting, best_setting: f.best_setting, threshold: +f.threshold.toFixed(4), train_score: r2(f.train_score), held_out_score: r2(f.held_out_score), tp: f.tp, fp: f.fp, fn: f.fn })),
    };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
