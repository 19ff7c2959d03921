// NAB on the shared subset: our detector's three profile scores and its throughput, with the
// reconstructed Windowed Gaussian scored in the same run, and the published figures of NAB's
// detectors on exactly this subset (from shared/data/nab/README.md) for the ratios.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { listCorpus, readSeries, readWindows } from "../controller/risk/nab/corpus.js";
import { scoreSeries } from "../controller/risk/nab/detector.js";
import { scoreAllProfiles, type ScoredFile } from "../controller/risk/nab/scorer.js";
import { windowedGaussianScores } from "../controller/risk/detectors/windowed-gaussian.js";
import { writeResult } from "./harness.js";

const NAB = path.resolve(fileURLToPath(new URL("../../shared/data/nab", import.meta.url)));
const windows = readWindows(path.join(NAB, "labels/combined_windows.json"));
const corpus = listCorpus(path.join(NAB, "data")).map(({ key, file }) => readSeries(file, key));
const rows = corpus.reduce((a, s) => a + s.values.length, 0);

function run(score: (s: (typeof corpus)[number]) => ArrayLike<number>) {
  const t0 = process.hrtime.bigint();
  const files: ScoredFile[] = corpus.map((s) => ({ key: s.key, timestamps: s.timestamps, scores: score(s), windows: windows[s.key] ?? [] }));
  const ns = Number(process.hrtime.bigint() - t0);
  return { r: scoreAllProfiles(files), pointsPerS: rows / (ns / 1e9) };
}

run((s) => scoreSeries(s.timesMs, s.values)); // warm-up
const times: number[] = [];
let ours!: ReturnType<typeof run>;
for (let i = 0; i < 5; i++) { ours = run((s) => scoreSeries(s.timesMs, s.values)); times.push(ours.pointsPerS); }
times.sort((a, b) => a - b);
const wg = run((s) => windowedGaussianScores(s.values));
const PUBLISHED = { cad_ose: [76.98, 72.96, 80.65], numenta_htm: [75.36, 70.43, 78.91], artime: [74.8, 66.23, 79.87], random_cut_forest: [57.43, 47.59, 64.29], windowed_gaussian: [37.09, 18.84, 45.39] };
const std = ours.r.standard.score;
writeResult("nab", {
  nab_standard: std,
  nab_low_fp: ours.r.reward_low_FP_rate.score,
  nab_low_fn: ours.r.reward_low_FN_rate.score,
  points_per_s: times[2]!,
  threshold_standard: ours.r.standard.threshold,
  tp: ours.r.standard.tp, fp: ours.r.standard.fp, fn: ours.r.standard.fn,
  windowed_gaussian_standard_same_run: wg.r.standard.score,
  points_per_s_windowed_gaussian: wg.pointsPerS,
  ratio_vs_cad_ose_standard: std / PUBLISHED.cad_ose[0]!,
  ratio_vs_windowed_gaussian_same_run: std / wg.r.standard.score,
}, { target: { nab_standard: ">= 70" }, corpus: { files: corpus.length, rows, windows: 50 }, published_on_this_subset: PUBLISHED });
