// The NAB scorer: the rules on hand-made files, and a comparison with published figures through a
// detector we can recompute (a reconstruction of NAB's Windowed Gaussian; see its file for why it
// is a reconstruction and how close it comes).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { existsSync } from "node:fs";
import { listCorpus, readSeries, readWindows } from "../../controller/risk/nab/corpus.js";
import { PROFILES, scoreAllProfiles, scoreCorpus, scaledSigmoid, type ScoredFile } from "../../controller/risk/nab/scorer.js";
import { windowedGaussianScores, erfc } from "../../controller/risk/detectors/windowed-gaussian.js";

const NAB = path.resolve(fileURLToPath(new URL("../../../shared/data/nab", import.meta.url)));

test("erfc matches known values", () => {
  for (const [x, v] of [[0, 1], [0.5, 0.4795001221869535], [1, 0.15729920705028513], [2, 0.004677734981047266], [3, 2.209049699858544e-5], [5, 1.5374597944280349e-12]] as const) {
    assert.ok(Math.abs(erfc(x) - v) <= 1e-14 * Math.max(v, 1e-300) + 1e-16, `erfc(${x}) = ${erfc(x)}, expected ${v}`);
  }
});

test("scoring rules on a hand-made file: earliest detection, FP decay, probation", () => {
  const ts = Array.from({ length: 100 }, (_, i) => `t${i}`);
  const file = (scores: number[]): ScoredFile => ({ key: "x/y.csv", timestamps: ts, scores, windows: [["t40", "t49"]] });
  const zeros = () => new Array(100).fill(0);
  const perfect = zeros(); perfect[40] = 1;
  assert.is(scoreCorpus([file(perfect)], PROFILES.standard).score, 100, "a detection on the window's first row scores 100");
  assert.is(scoreCorpus([file(zeros())], PROFILES.standard).score, 0, "never firing is the null score");
  const late = zeros(); late[49] = 1; late[45] = 0.9;
  const r = scoreCorpus([file(late)], PROFILES.standard);
  assert.is(r.threshold, 0.9, "the threshold that catches the earlier detection wins");
  assert.ok(Math.abs(r.raw - scaledSigmoid(-(49 - 45 + 1) / 10) / scaledSigmoid(-1)) < 1e-12);
  const probation = zeros(); probation[5] = 1; // row 5 < P = 15: not scorable, so not an FP
  assert.is(scoreCorpus([file(probation)], PROFILES.standard).fp, 0);
  assert.throws(() => scoreCorpus([{ ...file(zeros()), windows: [["t40", "nope"]] }], PROFILES.standard), /window 0 \(t40 \.\. nope\) does not match a row/);
});

test("the reconstructed Windowed Gaussian scores within 0.25 of NAB's published 37.09 / 18.84 / 45.39 on this subset", () => {
  if (!existsSync(NAB)) throw new Error(`NAB subset not found at ${NAB}`);
  const windows = readWindows(path.join(NAB, "labels/combined_windows.json"));
  const files: ScoredFile[] = listCorpus(path.join(NAB, "data")).map(({ key, file }) => {
    const s = readSeries(file, key);
    return { key, timestamps: s.timestamps, scores: windowedGaussianScores(s.values), windows: windows[key] ?? [] };
  });
  assert.is(files.length, 35);
  const r = scoreAllProfiles(files);
  // Not exact: the historical detector variant NAB ran is unknown (the scorer's exhaustive sweep can
  // only do better than NAB's own threshold search, and it comes out lower, so the gap is the detector's).
  const got = [r.standard.score, r.reward_low_FP_rate.score, r.reward_low_FN_rate.score];
  const published = [37.09, 18.84, 45.39];
  got.forEach((g, i) => assert.ok(Math.abs(g - published[i]!) < 0.25, `profile ${i}: ${g.toFixed(2)} vs published ${published[i]}`));
});

test.run();
