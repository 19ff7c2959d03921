// NAB v1.1 scoring (Numenta Anomaly Benchmark), implemented from the rules in
// shared/data/nab/README.md: probationary period, scaled-sigmoid row weights, earliest detection
// per window, per-row false positives, one threshold per detector and profile chosen over the
// pooled corpus (ties keep the higher threshold), and normalisation against the null detector.
// Pure: input is per-file scores and windows; output is the normalised score per profile.

export interface Profile { tp: number; fp: number; fn: number }

export const PROFILES: Record<"standard" | "reward_low_FP_rate" | "reward_low_FN_rate", Profile> = {
  standard: { tp: 1.0, fp: 0.11, fn: 1.0 },
  reward_low_FP_rate: { tp: 1.0, fp: 0.22, fn: 1.0 },
  reward_low_FN_rate: { tp: 1.0, fp: 0.11, fn: 2.0 },
};
export type ProfileName = keyof typeof PROFILES;

export interface ScoredFile {
  /** "category/file.csv" */
  key: string;
  timestamps: string[];
  scores: ArrayLike<number>;
  /** Inclusive [start, end] timestamps, as in combined_windows.json (".000000" is ignored). */
  windows: [string, string][];
}

export interface ProfileResult {
  score: number;
  threshold: number;
  raw: number;
  tp: number;
  fp: number;
  fn: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** NAB's scaled sigmoid. */
export function scaledSigmoid(y: number): number { return y > 3 ? -1 : 2 * sigmoid(-5 * y) - 1; }
const S_MINUS_1 = scaledSigmoid(-1);

export function probationaryPeriod(n: number): number { return Math.min(Math.floor(0.15 * n), 750); }

const stripFraction = (t: string) => t.replace(/\.0+$/, "");

interface Row { score: number; weight: number; window: number }

/** Scorable rows of one file with their weights, and the file's windows as index ranges. */
export function prepareFile(f: ScoredFile, profile: Profile, windowBase: number): { rows: Row[]; windows: number } {
  const n = f.timestamps.length;
  if (f.scores.length !== n) throw new Error(`${f.key}: ${f.scores.length} scores for ${n} rows`);
  const index = new Map<string, number>();
  f.timestamps.forEach((t, i) => index.set(stripFraction(t), i));
  const wins = f.windows.map(([a, b], k) => {
    const L = index.get(stripFraction(a)), R = index.get(stripFraction(b));
    if (L === undefined || R === undefined) throw new Error(`${f.key}: window ${k} (${a} .. ${b}) does not match a row`);
    if (R < L) throw new Error(`${f.key}: window ${k} ends before it starts`);
    return [L, R] as const;
  });
  const P = probationaryPeriod(n);
  // Windows with no scorable row do not count at all.
  const counted = wins.map(([, R]) => R >= P);
  const rows: Row[] = [];
  let k = 0; // next window at or after i
  for (let i = P; i < n; i++) {
    while (k < wins.length && wins[k]![1] < i) k++;
    let weight: number, window = -1;
    const w = wins[k];
    if (w && i >= w[0] && i <= w[1]) {
      const width = w[1] - w[0] + 1;
      weight = (profile.tp * scaledSigmoid(-(w[1] - i + 1) / width)) / S_MINUS_1;
      window = windowBase + k;
    } else if (k > 0) {
      const prev = wins[k - 1]!;
      weight = profile.fp * scaledSigmoid((i - prev[1]) / (prev[1] - prev[0] + 1 - 1));
    } else {
      weight = -profile.fp;
    }
    const s = Number(f.scores[i]);
    if (!(s >= 0 && s <= 1)) throw new Error(`${f.key}: row ${i} has anomaly_score ${f.scores[i]}, outside [0, 1]`);
    rows.push({ score: s, weight, window });
  }
  return { rows, windows: counted.filter(Boolean).length };
}

/** The corpus score for one profile, at the threshold that maximises it. */
export function scoreCorpus(files: ScoredFile[], profile: Profile, totalWindows?: number): ProfileResult {
  const all: Row[] = [];
  let windowBase = 0, counted = 0;
  for (const f of files) {
    const p = prepareFile(f, profile, windowBase);
    windowBase += f.windows.length;
    counted += p.windows;
    for (const r of p.rows) all.push(r);
  }
  const nWindows = totalWindows ?? files.reduce((s, f) => s + f.windows.length, 0);
  all.sort((a, b) => b.score - a.score);
  // Sweep the threshold down through every distinct score; start with nothing detected (1.1).
  const best = new Float64Array(windowBase).fill(NaN); // best (earliest) detected weight per window
  let raw = -profile.fn * counted;
  let tp = 0, fp = 0;
  let result: ProfileResult = { score: 0, threshold: 1.1, raw, tp: 0, fp: 0, fn: counted };
  for (let i = 0; i < all.length;) {
    const theta = all[i]!.score;
    for (; i < all.length && all[i]!.score === theta; i++) {
      const r = all[i]!;
      if (r.window < 0) { raw += r.weight; fp++; continue; }
      const b = best[r.window]!;
      if (Number.isNaN(b)) { raw += profile.fn + r.weight; best[r.window] = r.weight; tp++; }
      else if (r.weight > b) { raw += r.weight - b; best[r.window] = r.weight; }
    }
    if (raw > result.raw) result = { score: 0, threshold: theta, raw, tp, fp, fn: counted - tp };
  }
  const nul = -profile.fn * nWindows, perfect = profile.tp * nWindows;
  result.score = (100 * (result.raw - nul)) / (perfect - nul);
  return result;
}

export function scoreAllProfiles(files: ScoredFile[], totalWindows?: number): Record<ProfileName, ProfileResult> {
  return {
    standard: scoreCorpus(files, PROFILES.standard, totalWindows),
    reward_low_FP_rate: scoreCorpus(files, PROFILES.reward_low_FP_rate, totalWindows),
    reward_low_FN_rate: scoreCorpus(files, PROFILES.reward_low_FN_rate, totalWindows),
  };
}
