// Leave-one-category-out NAB evaluation (issue 17): the detector's settings and the profile's
// threshold are settled on all categories but one, and that one is scored with them; repeated for
// every category. It owns the settings grid (NAB_LOCO_GRID), the per-setting scoring of a corpus
// (each file scored once per setting) and the fold procedure. Pure apart from the scoring itself;
// ties go to the earlier grid entry (the default is first) and to the higher threshold.
//
// A held-out category without windows (NAB's artificialNoAnomaly) has no NAB score: the
// normalisation's perfect and null scores are both 0. Such a fold reports its false positives and
// raw cost, and is left out of the mean (`score`); `pooled` counts it, normalising the sum of every
// fold's held-out raw score against all the corpus's windows.
//
// How a fold picks its setting: "argmax" takes the best pooled training score; "one-se" applies the
// one-standard-error rule (Hastie, Tibshirani and Friedman, ESL 7.10; Breiman et al., CART): among
// the settings whose training score is within one standard error of the best (the error of the
// best setting's mean over the training categories' own scores), the simplest, i.e. the fewest
// settings changed from the default (then the earlier grid entry, not the better-scoring one). With
// three categories to learn from, a setting must beat the default by more than the categories
// disagree to be taken. The error is that of the unweighted mean of the categories' own normalised
// scores, applied to the pooled (window-weighted) score: a stand-in, as the pooled score has no
// error of its own. `tied` counts the ties of the best training score in either case. The default
// of leaveOneCategoryOut is "argmax" (its callers' contrast); locoNab's, the bench's and the CLI's
// headline is "one-se".
import type { Series } from "./corpus.js";
import { scoreSeries, settingsName, type NabSettings } from "./detector.js";
import { PROFILES, normalise, scoreAtThreshold, scoreCorpus, type Profile, type ScoredFile } from "./scorer.js";

/** One point of the grid: a name and how it scores a series. */
export interface Candidate { name: string; settings?: NabSettings; score: (s: Series) => ArrayLike<number> }

/** The grid: baseline window x envelope view x alarm rest x level view x change-point view, 72
 *  settings. Each dimension lists the default first, so entry 0 is the default configuration. */
export const NAB_LOCO_DIMENSIONS = {
  window: [undefined, 256, 1024],
  envelope: [undefined, false],
  restPoints: [undefined, 100, 400],
  levelZ: [undefined, 32],
  changePoint: [undefined, true],
} as const;

/** A smaller grid with fewer degrees of freedom: only which views the detector runs (envelope,
 *  level, change point), none of their window, margin or rest lengths; 8 settings, the default first.
 *  Reported beside the full grid's score, which stays the headline. */
export const NAB_LOCO_VIEWS_DIMENSIONS = {
  envelope: [undefined, false],
  levelZ: [undefined, 32],
  changePoint: [undefined, true],
} as const;

function buildGrid(dimensions: Record<string, readonly (number | boolean | undefined)[]> = NAB_LOCO_DIMENSIONS): NabSettings[] {
  let out: NabSettings[] = [{}];
  for (const [k, values] of Object.entries(dimensions)) {
    const next: NabSettings[] = [];
    for (const s of out) for (const v of values) next.push(v === undefined ? s : { ...s, [k]: v });
    out = next;
  }
  return out;
}
export const NAB_LOCO_GRID: readonly NabSettings[] = buildGrid();
export const NAB_LOCO_VIEWS_GRID: readonly NabSettings[] = buildGrid(NAB_LOCO_VIEWS_DIMENSIONS);

/** The grid as candidates; `base` is applied under every setting (e.g. { calibrate: false } for the
 *  uncalibrated detector's contrast). */
export function nabCandidates(grid: readonly NabSettings[] = NAB_LOCO_GRID, base: NabSettings = {}): Candidate[] {
  return grid.map((g) => {
    const settings = { ...base, ...g };
    return { name: settingsName(settings), settings, score: (s: Series) => scoreSeries(s.timesMs, s.values, settings) };
  });
}

export function categoryOf(key: string): string {
  const slash = key.indexOf("/");
  if (slash <= 0) throw new Error(`${key}: expected a "category/file.csv" key`);
  return key.slice(0, slash);
}

/** Every file scored once per candidate: result[c][f] is candidate c's scores of corpus[f]. */
export function scoreCandidates(corpus: readonly Series[], windows: Record<string, [string, string][]>, candidates: readonly Candidate[]): ScoredFile[][] {
  return candidates.map((c) => corpus.map((s) => ({ key: s.key, timestamps: s.timestamps, scores: c.score(s), windows: windows[s.key] ?? [] })));
}

export interface LocoFold {
  held_out: string;
  train_categories: string[];
  files: number;
  windows: number;
  /** The grid entry chosen on the training categories. */
  setting: string;
  setting_index: number;
  settings?: NabSettings;
  /** How many grid entries reached the same training raw score (the earliest is chosen). */
  tied: number;
  /** How the setting was picked, and with "one-se" the best training setting and the margin used. */
  selection: LocoSelection;
  best_setting: string;
  best_train_score: number;
  standard_error: number;
  /** The chosen setting's normalised score on the training categories, at its best threshold. */
  train_score: number;
  /** That threshold, applied unchanged to the held-out category. */
  threshold: number;
  /** Normalised on the held-out files alone; null when they have no windows. */
  held_out_score: number | null;
  held_out_raw: number;
  tp: number;
  fp: number;
  fn: number;
}

export interface InSample {
  /** The default setting on this category alone, at the threshold best for this category (in-sample). */
  score: number | null;
  threshold: number;
  tp: number;
  fp: number;
  fn: number;
  /** The default setting on this category at the whole corpus's best threshold. */
  at_corpus_threshold: number | null;
  corpus_threshold: number;
}

export interface LocoResult {
  profile: string;
  /** The mean of the held-out scores of the categories with windows. */
  score: number;
  mean_over: string[];
  excluded: { category: string; reason: string }[];
  /** 100 * (sum of held-out raw - null) / (perfect - null) over every category, windows or not. */
  pooled: number;
  grid: string[];
  folds: LocoFold[];
  in_sample_default: Record<string, InSample>;
}

const orNull = (x: number) => (Number.isFinite(x) ? x : null);

export type LocoSelection = "argmax" | "one-se";

/** How far a candidate is from the default: the number of settings it changes (0 without settings). */
const complexity = (c: Pick<Candidate, "settings">) => (c.settings ? Object.keys(c.settings).length : 0);

/**
 * scored[c][f]: candidate c's scores of file f (every candidate over the same files, same order).
 * Candidate `defaultIndex` is the default, for the in-sample contrast.
 */
export function leaveOneCategoryOut(scored: ScoredFile[][], candidates: readonly Pick<Candidate, "name" | "settings">[], opts: { profile?: Profile; profileName?: string; defaultIndex?: number; selection?: LocoSelection } = {}): LocoResult {
  const selection = opts.selection ?? "argmax";
  return leaveOneCategoryOutEach(scored, candidates, [selection], opts)[selection]!;
}

/**
 * The procedure for several selection rules at once: each fold's training scores (every candidate
 * on the other categories) are computed once and every rule chooses from them.
 */
export function leaveOneCategoryOutEach(scored: ScoredFile[][], candidates: readonly Pick<Candidate, "name" | "settings">[], selections: readonly LocoSelection[], opts: { profile?: Profile; profileName?: string; defaultIndex?: number } = {}): Partial<Record<LocoSelection, LocoResult>> {
  const profile = opts.profile ?? PROFILES.standard;
  const def = opts.defaultIndex ?? 0;
  if (scored.length === 0 || scored.length !== candidates.length) throw new Error(`loco: ${scored.length} scored sets for ${candidates.length} candidates`);
  const files = scored[0]!;
  for (const s of scored) if (s.length !== files.length || s.some((f, i) => f.key !== files[i]!.key)) throw new Error("loco: every candidate must score the same files in the same order");
  const cat = files.map((f) => categoryOf(f.key));
  const categories = [...new Set(cat)].sort();
  if (categories.length < 2) throw new Error(`loco: needs at least 2 categories, got ${categories.length}`);
  const pick = <T>(xs: T[], inCat: (c: string) => boolean) => xs.filter((_, i) => inCat(cat[i]!));
  const nWin = (fs: ScoredFile[]) => fs.reduce((a, f) => a + f.windows.length, 0);

  const folds = new Map<LocoSelection, LocoFold[]>(selections.map((x) => [x, []]));
  for (const held of categories) {
    const train = (x: string) => x !== held;
    const results = scored.map((sc) => scoreCorpus(pick(sc, train), profile));
    let bestI = 0, tied = 0;
    for (let c = 0; c < results.length; c++) {
      if (results[c]!.raw > results[bestI]!.raw) { bestI = c; tied = 1; }
      else if (results[c]!.raw === results[bestI]!.raw) tied++;
    }
    const best = results[bestI]!;
    // The best setting's own scores per training category (those with windows), at its threshold.
    const perCategory = categories.filter((x) => train(x)).map((x) => pick(scored[bestI]!, (y) => y === x)).filter((fs) => nWin(fs) > 0)
      .map((fs) => scoreAtThreshold(fs, profile, best.threshold).score);
    const k = perCategory.length;
    const mean = perCategory.reduce((a, x) => a + x, 0) / Math.max(1, k);
    const se = k >= 2 ? Math.sqrt(perCategory.reduce((a, x) => a + (x - mean) ** 2, 0) / (k - 1) / k) : 0;
    for (const selection of selections) {
      let chosen = bestI;
      if (selection === "one-se") {
        for (let c = 0; c < results.length; c++) {
          if (!(results[c]!.score >= best.score - se)) continue;
          if (complexity(candidates[c]!) < complexity(candidates[chosen]!) || (complexity(candidates[c]!) === complexity(candidates[chosen]!) && c < chosen)) chosen = c;
        }
      }
      const r = results[chosen]!;
      const test = pick(scored[chosen]!, (x) => x === held);
      const h = scoreAtThreshold(test, profile, r.threshold);
      folds.get(selection)!.push({
        held_out: held, train_categories: categories.filter((x) => x !== held), files: test.length, windows: nWin(test),
        setting: candidates[chosen]!.name, setting_index: chosen, ...(candidates[chosen]!.settings ? { settings: candidates[chosen]!.settings } : {}),
        tied, selection, best_setting: candidates[bestI]!.name, best_train_score: best.score, standard_error: se,
        train_score: r.score, threshold: r.threshold,
        held_out_score: orNull(h.score), held_out_raw: h.raw, tp: h.tp, fp: h.fp, fn: h.fn,
      });
    }
  }
  const totalWindows = nWin(files);
  const corpusDefault = scoreCorpus(scored[def]!, profile);
  const in_sample_default: Record<string, InSample> = {};
  for (const c of categories) {
    const fs = pick(scored[def]!, (x) => x === c);
    const r = scoreCorpus(fs, profile);
    const atCorpus = scoreAtThreshold(fs, profile, corpusDefault.threshold);
    in_sample_default[c] = { score: nWin(fs) ? orNull(r.score) : null, threshold: r.threshold, tp: r.tp, fp: r.fp, fn: r.fn, at_corpus_threshold: orNull(atCorpus.score), corpus_threshold: corpusDefault.threshold };
  }
  const out: Partial<Record<LocoSelection, LocoResult>> = {};
  for (const [selection, fs] of folds) {
    const counted = fs.filter((f) => f.held_out_score !== null);
    out[selection] = {
      profile: opts.profileName ?? "standard",
      score: counted.length ? counted.reduce((a, f) => a + f.held_out_score!, 0) / counted.length : NaN,
      mean_over: counted.map((f) => f.held_out),
      excluded: fs.filter((f) => f.held_out_score === null).map((f) => ({
        category: f.held_out,
        reason: `no windows: NAB's normalisation is undefined (perfect = null = 0); ${f.fp} false positive(s), raw ${f.held_out_raw.toFixed(3)} at the training threshold; counted in pooled only`,
      })),
      pooled: normalise(fs.reduce((a, f) => a + f.held_out_raw, 0), profile, totalWindows),
      grid: candidates.map((c) => c.name),
      folds: fs,
      in_sample_default,
    };
  }
  return out;
}

/** The whole procedure on a corpus with the NAB grid (or another list of candidates); folds choose by the one-standard-error rule. */
export function locoNab(corpus: readonly Series[], windows: Record<string, [string, string][]>, candidates: readonly Candidate[] = nabCandidates()): LocoResult {
  return leaveOneCategoryOut(scoreCandidates(corpus, windows, candidates), candidates, { selection: "one-se" });
}
