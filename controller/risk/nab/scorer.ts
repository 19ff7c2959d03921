// NAB v1.1 scoring (Numenta Anomaly Benchmark), implemented from the rules in
// shared/data/nab/README.md: probationary period, scaled-sigmoid row weights, earliest detection
// per window, per-row false positives, one threshold per detector and profile chosen over the
// pooled corpus (ties keep the higher threshold), and normalisation against the null detector.
// Pure: input is per-file scores and windows; output is the normalised score per profile, at the
// best threshold (scoreCorpus) or at a given one chosen elsewhere (scoreAtThreshold, for loco.ts).

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

/** Every file's scorable rows pooled, with window ids unique across files. */
function poolFiles(files: ScoredFile[], profile: Profile): { all: Row[]; windowBase: number; counted: number } {
  const all: Row[] = [];
  let windowBase = 0, counted = 0;
  for (const f of files) {
    const p = prepareFile(f, profile, windowBase);
    windowBase += f.windows.length;
    counted += p.windows;
    for (const r of p.rows) all.push(r);
  }
  return { all, windowBase, counted };
}

/** NAB's normalisation: 100 is every window caught on its first row, 0 the null detector (all FN).
 *  A corpus without windows has perfect = null = 0: the score is then NaN (undefined), whatever raw is. */
export function normalise(raw: number, profile: Profile, nWindows: number): number {
  if (nWindows === 0) return NaN;
  const nul = -profile.fn * nWindows, perfect = profile.tp * nWindows;
  return (100 * (raw - nul)) / (perfect - nul);
}

/** The corpus score for one profile at a given threshold (rows scoring >= threshold are detections),
 *  e.g. a threshold chosen on other files. Same rules and normalisation as scoreCorpus. */
export function scoreAtThreshold(files: ScoredFile[], profile: Profile, threshold: number, totalWindows?: number): ProfileResult {
  const { all, windowBase, counted } = poolFiles(files, profile);
  const nWindows = totalWindows ?? files.reduce((s, f) => s + f.windows.length, 0);
  const best = new Float64Array(windowBase).fill(NaN);
  let raw = -profile.fn * counted, tp = 0, fp = 0;
  for (const r of all) {
    if (!(r.score >= threshold)) continue;
    if (r.window < 0) { raw += r.weight; fp++; continue; }
    const b = best[r.window]!;
    if (Number.isNaN(b)) { raw += profile.fn + r.weight; best[r.window] = r.weight; tp++; }
    else if (r.weight > b) { raw += r.weight - b; best[r.window] = r.weight; }
  }
  return { score: normalise(raw, profile, nWindows), threshold, raw, tp, fp, fn: counted - tp };
}

/** Rows by score, highest first, ties in their original order: the order a stable comparison sort
 *  gives, by a native numeric sort of the distinct scores and a counting sort on their ranks
 *  (several times faster than sorting the rows, which matters when loco.ts scores many settings). */
function byScoreDescending(rows: Row[]): Row[] {
  const n = rows.length;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) s[i] = rows[i]!.score;
  s.sort(); // ascending
  let d = 0; // distinct scores, descending, in s[0..d)
  for (let i = n - 1; i >= 0; i--) if (d === 0 || s[i] !== s[d - 1]) { const v = s[i]!; s[d++] = v; }
  const rank = new Uint32Array(n);
  const start = new Uint32Array(d + 1);
  for (let i = 0; i < n; i++) {
    const x = rows[i]!.score;
    let lo = 0, hi = d - 1; // the index k with s[k] === x (s descending)
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (s[mid]! > x) lo = mid + 1; else hi = mid; }
    rank[i] = lo;
    start[lo + 1]!++;
  }
  for (let k = 0; k < d; k++) start[k + 1]! += start[k]!;
  const out = new Array<Row>(n);
  for (let i = 0; i < n; i++) out[start[rank[i]!]!++] = rows[i]!;
  return out;
}

/** The corpus score for one profile, at the threshold that maximises it. */
export function scoreCorpus(files: ScoredFile[], profile: Profile, totalWindows?: number): ProfileResult {
  const { all, windowBase, counted } = poolFiles(files, profile);
  const nWindows = totalWindows ?? files.reduce((s, f) => s + f.windows.length, 0);
  const sorted = byScoreDescending(all);
  // Sweep the threshold down through every distinct score; start with nothing detected (1.1).
  const best = new Float64Array(windowBase).fill(NaN); // best (earliest) detected weight per window
  let raw = -profile.fn * counted;
  let tp = 0, fp = 0;
  let result: ProfileResult = { score: 0, threshold: 1.1, raw, tp: 0, fp: 0, fn: counted };
  for (let i = 0; i < sorted.length;) {
    const theta = sorted[i]!.score;
    for (; i < sorted.length && sorted[i]!.score === theta; i++) {
      const r = sorted[i]!;
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
