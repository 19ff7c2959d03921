// A reconstruction of NAB's "Windowed Gaussian" reference detector, used only to check the NAB
// scorer against a published figure from per-row scores we can compute. NAB's current source
// (window 1000, step 1, nupic normalProbability) does not reproduce its published results; the
// variant closest to them is window 6400, step 100, score 1 - Q(|z|) with Q read from nupic's
// table at round(10 |z|), mean and standard deviation with numpy's pairwise summation: it scores
// 36.94 / 18.62 / 45.17 against the published 37.09 / 18.84 / 45.39. The exact historical variant
// is unknown. Not a detector to use.

/** numpy's pairwise summation (float64, blocks of 8 up to 128 elements, then halves). */
export function pairwiseSum(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[start + i]!;
    return s;
  }
  if (n <= 128) {
    const r = [a[start]!, a[start + 1]!, a[start + 2]!, a[start + 3]!, a[start + 4]!, a[start + 5]!, a[start + 6]!, a[start + 7]!];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[start + i + j]!;
    let res = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** erfc to ~1e-15: power series below 2, Lentz continued fraction above. */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let term = x, sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  const tiny = 1e-300;
  let f = x, c = x, d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d; d = Math.abs(d) < tiny ? tiny : d; d = 1 / d;
    c = x + a / c; c = Math.abs(c) < tiny ? tiny : c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** Q(z) at z = 0.0, 0.1, ..., 7.0 (the standard normal tail), the table nupic's normalProbability reads. */
const Q_TABLE = [
  0.500000000, 0.460172163, 0.420740291, 0.382088578, 0.344578258, 0.308537539, 0.274253118, 0.241963652,
  0.211855399, 0.184060125, 0.158655254, 0.135666061, 0.115069670, 0.096800485, 0.080756659, 0.066807201,
  0.054799292, 0.044565463, 0.035930319, 0.028716560, 0.022750132, 0.017864421, 0.013903448, 0.010724110,
  0.008197536, 0.006209665, 0.004661188, 0.003466974, 0.002555130, 0.001865813, 0.001349898, 0.000967603,
  0.000687138, 0.000483424, 0.000336929, 0.000232629, 0.000159109, 0.000107800, 0.000072348, 0.000048096,
  0.000031671, 0.000021771135897, 0.000014034063752, 0.000008961673661, 0.000005668743475, 0.000003551942468,
  0.000002204533058, 0.000001355281953, 0.000000825270644, 0.000000497747091, 0.000000297343903,
  0.000000175930101, 0.000000103096834, 0.000000059836778, 0.000000034395590, 0.000000019581382,
  0.000000011040394, 0.000000006164833, 0.000000003409172, 0.000000001867079, 0.000000001012647,
  0.000000000543915, 0.000000000289320, 0.000000000152404, 0.000000000079502, 0.000000000041070,
  0.000000000021010, 0.000000000010644, 0.000000000005340, 0.000000000002653, 0.000000000001305,
];

/** Python 2's round(): half away from zero. */
const py2round = (x: number) => (x < 0 ? -Math.round(-x) : Math.floor(x + 0.5));

/** nupic's normalProbability as NAB used it: the table Q above the mean, 1 - Q (mirrored) below it. */
export function nupicNormalProbability(x: number, mean: number, std: number): number {
  if (x < mean) return 1 - nupicNormalProbability(2 * mean - x, mean, std);
  const xs = py2round((10 * (x - mean)) / std);
  return xs > 70 ? 0 : Q_TABLE[xs]!;
}

/** The exact Gaussian tail (Q function), for reference. */
export function normalTail(x: number, mean: number, std: number): number {
  if (x < mean) x = 2 * mean - x;
  return 0.5 * erfc((x - mean) / std / Math.SQRT2);
}

export function windowedGaussianScores(values: ArrayLike<number>, windowSize = 6400, stepSize = 100): Float64Array {
  const out = new Float64Array(values.length);
  let win: number[] = [];
  let step: number[] = [];
  let mean = 0, std = 1;
  const update = () => {
    const n = win.length;
    mean = pairwiseSum(win, 0, n) / n;
    std = Math.sqrt(pairwiseSum(win.map((v) => (v - mean) ** 2), 0, n) / n);
    if (std === 0) std = 0.000001;
  };
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    out[i] = win.length > 0 ? 1 - nupicNormalProbability(v >= mean ? v : 2 * mean - v, mean, std) : 0;
    if (win.length < windowSize) { win.push(v); update(); continue; }
    step.push(v);
    if (step.length === stepSize) { win = win.slice(stepSize).concat(step); step = []; update(); }
  }
  return out;
}
