// Risk against limits rather than against the past: a signal's service-level objective (error-budget
// burn rates over the SRE Workbook's multi-window, multi-burn-rate rules) and its capacity (how close
// the value is to exhaustion). Neither needs history: a hot plateau near its limit scores the same on
// its first point and its thousandth, and the same plateau far from the limit scores nothing.
//
// Burn rate (SRE Workbook, "Alerting on SLOs", table 5-8): with an objective of `target` good events
// over `period`, the error budget is 1 - target and the burn rate over a window is the bad fraction
// there divided by the budget (1: the budget lasts exactly the period). The rules, as fractions of a
// 30-day period so that a compressed clock scales them together:
//   page   burn >= 14.4 over 1 h and over 5 min    (2 % of the budget in an hour)
//   page   burn >= 6    over 6 h and over 30 min   (5 % in six hours)
//   ticket burn >= 3    over 1 d and over 2 h      (10 % in a day)
//   ticket burn >= 1    over 3 d and over 6 h      (10 % in three days)
// A rule's strength is min(long, short) / threshold (the short window says it is still burning);
// a page rule at strength 1 scores 0.9 (and more above it) and a ticket rule 0.6 (and never more),
// so paging burns count as strong evidence and ticket burns as a weak one. Each window is an exponentially weighted mean of the bad
// fraction with the window as its time constant, bias-corrected while the history is shorter than
// the window (then it is the mean of all there is), so memory is constant however long the window.
//
// What is "bad": for an error-rate signal, the value itself (the fraction of requests that failed);
// for anything else with a threshold (a latency SLO: p99 <= X ms), an interval whose value is over
// the threshold (the SLI is the share of good intervals).
//
// Saturation: utilisation u = value / capacity. The score is 0.5 at `warnAt` (default 0.8, the usual
// capacity-planning headroom) and rises as the remaining headroom shrinks: r = (1 - warnAt) / (1 - u),
// score = 1 - 2^(-r^2): 0.16 at u = 0.6, 0.5 at 0.8, 0.94 at 0.9, 1 at capacity. A queueing view:
// an M/M/1 server's waiting time grows as 1 / (1 - u), so the same step in utilisation costs more the
// nearer it is to 1.

export interface SloOptions {
  /** Share of good events the objective promises, e.g. 0.999. */
  target: number;
  /** Values above this are bad intervals (null: the value is itself the bad fraction, as an error rate). */
  threshold: number | null;
  /** The objective's period in seconds (default 30 days); the rules' windows are fractions of it. */
  periodS: number;
}

export const DEFAULT_SLO_PERIOD_S = 30 * 86_400;

/** [long window, short window, burn threshold, severity] with windows in fractions of a 30-day period. */
const DAY = 1 / 30;
export const BURN_RULES: readonly { name: string; longFrac: number; shortFrac: number; burn: number; page: boolean }[] = [
  { name: "page 1h/5m x14.4", longFrac: DAY / 24, shortFrac: DAY / 288, burn: 14.4, page: true },
  { name: "page 6h/30m x6", longFrac: DAY / 4, shortFrac: DAY / 48, burn: 6, page: true },
  { name: "ticket 1d/2h x3", longFrac: DAY, shortFrac: DAY / 12, burn: 3, page: false },
  { name: "ticket 3d/6h x1", longFrac: 3 * DAY, shortFrac: DAY / 4, burn: 1, page: false },
];

/** Strength (min burn / threshold) at which a rule scores 0.5: a page rule at strength 1 scores 0.9, a ticket rule 0.6. */
const HALF_PAGE = 1 / Math.sqrt(Math.log2(10));
const TICKET_MAX = 0.6;
const HALF_TICKET = 1 / Math.sqrt(Math.log2(1 / (1 - TICKET_MAX)));

/** The SLO's burn rates, one exponentially weighted window per distinct window length. */
export class BurnRateDetector {
  private readonly windowsS: number[];
  private readonly mean: Float64Array;
  private readonly weight: Float64Array;
  private readonly rules: { long: number; short: number; burn: number; half: number }[];
  private lastT = NaN;
  private lastDt = NaN;
  private readonly alpha: Float64Array;
  /** The last update's score, the rule behind it, and that rule's long and short burn rates. */
  score = 0;
  rule: string | null = null;
  burnLong = 0;
  burnShort = 0;

  constructor(readonly opts: SloOptions) {
    if (!(opts.target > 0 && opts.target < 1)) throw new RangeError(`slo.target must be between 0 and 1 (exclusive), got ${opts.target}`);
    if (!(opts.periodS > 0)) throw new RangeError(`slo.period must be positive, got ${opts.periodS}`);
    const ws = new Map<number, number>();
    const idx = (s: number) => { if (!ws.has(s)) ws.set(s, ws.size); return ws.get(s)!; };
    this.rules = BURN_RULES.map((r) => ({ long: idx(r.longFrac * opts.periodS), short: idx(r.shortFrac * opts.periodS), burn: r.burn, half: r.page ? HALF_PAGE : HALF_TICKET }));
    this.windowsS = [...ws.keys()];
    this.mean = new Float64Array(this.windowsS.length);
    this.weight = new Float64Array(this.windowsS.length);
    this.alpha = new Float64Array(this.windowsS.length);
  }

  update(tMs: number, x: number): number {
    const o = this.opts;
    const bad = o.threshold === null ? Math.min(1, Math.max(0, x)) : x > o.threshold ? 1 : 0;
    // The first point weighs as one second of history; later points as the time since the previous.
    const dt = Number.isNaN(this.lastT) ? 1 : Math.max(0, (tMs - this.lastT) / 1000);
    this.lastT = tMs;
    // Points come at a steady scrape interval: the decay factors are computed once per interval length.
    if (dt !== this.lastDt) { for (let i = 0; i < this.windowsS.length; i++) this.alpha[i] = 1 - Math.exp(-dt / this.windowsS[i]!); this.lastDt = dt; }
    for (let i = 0; i < this.windowsS.length; i++) {
      const a = this.alpha[i]!;
      // Bias-corrected EWMA: weight accumulates towards 1, so a young history is averaged as a whole.
      this.weight[i] = this.weight[i]! + a * (1 - this.weight[i]!);
      this.mean[i] = this.mean[i]! + (a / Math.max(this.weight[i]!, 1e-12)) * (bad - this.mean[i]!);
    }
    const budget = 1 - o.target;
    let best = 0, which = -1;
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i]!;
      const strength = Math.min(this.mean[r.long]!, this.mean[r.short]!) / budget / r.burn;
      const x2 = (strength / r.half) ** 2;
      // A ticket is never a page: its score stops at what it gives at its own threshold.
      const s = r.half === HALF_PAGE ? 1 - Math.pow(2, -x2) : Math.min(TICKET_MAX, 1 - Math.pow(2, -x2));
      if (s > best) { best = s; which = i; }
    }
    this.score = best;
    if (which >= 0 && best > 0) {
      const r = this.rules[which]!;
      this.rule = BURN_RULES[which]!.name;
      this.burnLong = this.mean[r.long]! / budget;
      this.burnShort = this.mean[r.short]! / budget;
    } else { this.rule = null; this.burnLong = this.burnShort = 0; }
    return best;
  }

  /** Remaining error budget over the longest window (1: untouched, below 0: overspent). */
  budgetLeft(): number {
    let longest = 0;
    for (let i = 1; i < this.windowsS.length; i++) if (this.windowsS[i]! > this.windowsS[longest]!) longest = i;
    return 1 - this.mean[longest]! / (1 - this.opts.target);
  }
}

export interface SaturationOptions {
  capacity: number;
  /** Utilisation at which the score is 0.5 (default 0.8). */
  warnAt: number;
  /** "up": exhausted when the value reaches capacity; "down": when it falls to it (free space). */
  direction: "up" | "down";
}

export const DEFAULT_WARN_AT = 0.8;

/** Utilisation of a resource: 0 idle, 1 exhausted. For "down" resources (free space) the capacity is the floor. */
export function utilisation(x: number, o: SaturationOptions): number {
  if (o.direction === "up") return o.capacity > 0 ? x / o.capacity : 0;
  // Free space falling towards a floor: no natural full scale, so utilisation is floor / value.
  return x > 0 ? o.capacity / x : 1;
}

/** The saturation score of a utilisation (see the file comment). */
export function saturationScore(u: number, warnAt: number): number {
  if (!(u > 0)) return 0;
  if (u >= 1) return 1;
  const r = (1 - warnAt) / (1 - u);
  return 1 - Math.pow(2, -r * r);
}
