// The streaming detectors on synthetic series (seeded noise, so every run is the same): a step, a
// ramp towards capacity, a spike, a seasonal series with noise and one changed day, and a flat
// series with dropouts. Each checks both that the event is seen and that the quiet parts stay quiet.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SeriesDetector, seriesOptions } from "../../controller/risk/detectors/series.js";
import { TrendDetector, DEFAULT_TREND, studentTCdf } from "../../controller/risk/detectors/trend.js";
import { SortedWindow } from "../../controller/risk/detectors/sorted-window.js";
import { EnvelopeDetector, DEFAULT_ENVELOPE } from "../../controller/risk/detectors/envelope.js";
import { scoreSeries } from "../../controller/risk/nab/detector.js";
import { mulberry32, normal } from "../support/random.js";

const MIN = 60_000;
function run(values: number[], opts = seriesOptions({ restPoints: 0 }), stepMs = MIN) {
  const d = new SeriesDetector(opts);
  return { d, scores: values.map((v, i) => d.update(i * stepMs, v)), views: [] as string[] };
}
const maxOf = (a: number[], from: number, to: number) => Math.max(...a.slice(from, to));

test("SortedWindow keeps the last N values sorted through evictions", () => {
  const rand = mulberry32(1);
  const w = new SortedWindow(50);
  const all: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const v = Math.floor(rand() * 20); // many ties
    w.push(v); all.push(v);
    const want = all.slice(-50).sort((a, b) => a - b);
    assert.equal(Array.from({ length: w.size }, (_, k) => w.at(k)), want);
    assert.is(w.back(0), v);
  }
});

test("step: a shift of 3 noise sds reaches the range edge at once and a change-point alarm within 25 points; the noise before it never alarms", () => {
  const rand = mulberry32(7);
  const v = Array.from({ length: 1200 }, (_, i) => 100 + 2 * normal(rand) + (i >= 1000 ? 6 : 0));
  const { scores, d } = run(v);
  assert.ok(maxOf(scores, 1000, 1005) >= 0.5, "the first points after the step are at the edge of the range");
  const alarm = scores.findIndex((s, i) => i >= 1000 && s > 0.8);
  assert.ok(alarm >= 1000 && alarm < 1025, `change-point alarm at ${alarm}`);
  // Quiet part: records at the range edge (0.5) happen by chance, but rarely exceed it and never alarm.
  const quiet = scores.slice(300, 1000);
  assert.ok(quiet.filter((s) => s > 0.55).length <= 3, `${quiet.filter((s) => s > 0.55).length} quiet points above 0.55`);
  assert.ok(Math.max(...quiet) < 0.8, `quiet max ${Math.max(...quiet)}`);
  assert.ok(d.baseline.points === 1200);
});

test("ramp: the exhaustion forecast converges on the true time and a noisy flat series forecasts none", () => {
  const rand = mulberry32(3);
  const t = new TrendDetector({ ...DEFAULT_TREND, capacity: 100, horizonS: 3600 });
  // Disk filling at 1 unit per minute from 20, one point every 10 s, noise sd 0.5.
  let score = 0;
  for (let i = 0; i <= 360; i++) score = t.update(i * 10_000, 20 + i / 6 + 0.5 * normal(rand));
  const trueTte = (100 - (20 + 360 / 6)) * 60; // 1200 s
  assert.ok(Math.abs(t.timeToExhaustionS - trueTte) / trueTte < 0.15, `forecast ${t.timeToExhaustionS.toFixed(0)} s vs ${trueTte} s`);
  assert.ok(score > 0.85, `exhaustion 20 min away within a 60 min horizon scores ${score}`);
  const flat = new TrendDetector({ ...DEFAULT_TREND, capacity: 100, horizonS: 3600 });
  let worst = 0;
  for (let i = 0; i <= 2000; i++) worst = Math.max(worst, i > 100 ? flat.update(i * 10_000, 50 + 3 * normal(rand)) : (flat.update(i * 10_000, 50 + 3 * normal(rand)), 0));
  assert.ok(worst < 0.2, `a flat noisy series peaks at ${worst}`);
});

test("Student's t CDF: exact for 1-4 degrees of freedom, within 0.005 beyond (reference values from tables)", () => {
  const ref: [number, number, number][] = [[2, 1, 0.852416], [2, 2, 0.908248], [2, 3, 0.930337], [2, 4, 0.941942], [1, 4, 0.813050], [4, 2, 0.971405], [2, 5, 0.949030], [2, 10, 0.963306], [3, 6, 0.988000], [1, 30, 0.837361]];
  for (const [t, nu, want] of ref) {
    assert.ok(Math.abs(studentTCdf(t, nu) - want) < (nu <= 4 ? 1e-5 : 5e-3), `t=${t}, nu=${nu}: ${studentTCdf(t, nu)} against ${want}`);
    assert.ok(Math.abs(studentTCdf(-t, nu) - (1 - want)) < (nu <= 4 ? 1e-5 : 5e-3), `symmetric at t=${-t}, nu=${nu}`);
  }
});

test("the exhaustion score is the probability of exhaustion within the horizon: 0.5 at one horizon, sharper the better the slope is known", () => {
  // A ramp of 1 unit/s, 31 points a second apart, with capacity `ahead` seconds past the last point.
  const ramp = (noise: number, ahead: number, seed: number) => {
    const rand = mulberry32(seed);
    const t = new TrendDetector({ ...DEFAULT_TREND, capacity: 30 + ahead, horizonS: 100 });
    let score = 0;
    for (let i = 0; i <= 30; i++) score = t.update(i * 1000, i + noise * normal(rand));
    return score;
  };
  assert.ok(Math.abs(ramp(0, 100, 1) - 0.5) < 0.01, `noiseless, one horizon away: ${ramp(0, 100, 1)}`);
  assert.ok(ramp(0.05, 80, 1) > 0.99, `well measured, 0.8 horizon away: ${ramp(0.05, 80, 1)}`);
  assert.ok(ramp(0.05, 125, 1) < 0.01, `well measured, 1.25 horizons away: ${ramp(0.05, 125, 1)}`);
  // A probability: over many noisy ramps exactly one horizon away, it averages about one half.
  const mean = (noise: number, ahead: number) => { let s = 0; for (let k = 1; k <= 200; k++) s += ramp(noise, ahead, k); return s / 200; };
  const atH = mean(3, 100);
  assert.ok(atH > 0.35 && atH < 0.65, `mean score one horizon away, noisy: ${atH}`);
  // The noisier the slope, the less sure either way: 1.25 horizons away scores more, 0.8 away less.
  assert.ok(mean(3, 125) > mean(0.05, 125) + 0.05, `1.25 horizons: noisy ${mean(3, 125)} vs clean ${mean(0.05, 125)}`);
  assert.ok(mean(3, 80) < mean(0.05, 80) - 0.05, `0.8 horizon: noisy ${mean(3, 80)} vs clean ${mean(0.05, 80)}`);
});

test("an accelerating leak: the forecast tightens steadily, never swinging back out (the window's line under-forecasts a ramp that speeds up)", () => {
  const rand = mulberry32(17);
  const t = new TrendDetector({ ...DEFAULT_TREND, capacity: 1, horizonS: 120 });
  // Memory at 0.45 that starts leaking at 30 s, faster and faster (quadratic), full at ~90 s; noise sd 0.002.
  const at = (s: number) => 0.45 + (s > 30 ? 0.55 * ((s - 30) / 60) ** 2 : 0);
  const ttes: number[] = [], scores: number[] = [];
  for (let s = 0; s <= 80; s++) {
    const score = t.update(s * 1000, at(s) + 0.002 * normal(rand));
    if (s >= 50) { ttes.push(t.timeToExhaustionS); scores.push(score); }
  }
  for (let i = 1; i < ttes.length; i++) {
    assert.ok(ttes[i]! <= ttes[i - 1]! * 1.15 + 1, `second ${50 + i}: forecast ${ttes[i - 1]!.toFixed(0)} s -> ${ttes[i]!.toFixed(0)} s`);
    assert.ok(scores[i]! >= scores[i - 1]! - 0.15, `second ${50 + i}: score ${scores[i - 1]!.toFixed(2)} -> ${scores[i]!.toFixed(2)}`);
  }
  // At 70 s the leak is 20 s from full: the forecast says so within a few seconds, and scores high.
  assert.ok(ttes[20]! < 30, `forecast at 70 s: ${ttes[20]!.toFixed(0)} s (true 20 s)`);
  assert.ok(scores[20]! > 0.9, `score at 70 s: ${scores[20]}`);
});

test("a ramp of whole units (connections against max_connections): a repeated count is not a stop; the forecast holds", () => {
  // Connections out of 40, polled every 0.5 s: 4 then a runaway pool opening two sessions a second, a
  // poll now and then landing between two of them (the count repeats, then catches up). Seen on a real
  // PostgreSQL pair: a repeated count was "significantly slower" than a line the counts fit almost
  // exactly, and the forecast fell to 0 for that tick.
  const counts = [...Array(30).fill(4), 5, 5, 6, 7, 8, 10, 11, 12, 13, 13, 14, 15, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 27, 27, 28];
  const t = new TrendDetector({ ...DEFAULT_TREND, capacity: 1 });
  const late: number[] = [];
  counts.forEach((c, i) => { const s = t.update(i * 500, c / 40); if (i >= 36) late.push(s); });
  assert.ok(Math.min(...late) > 0.9, `from 3 s into the ramp every score is high: ${late.map((s) => s.toFixed(2)).join(" ")}`);
  // Seeded family: a ramp of whole sessions, two a second, opened and polled with jitter. From 4 s into
  // the ramp, the forecast stays at or above 0.5 (a repeated count stopped it on 158 of 7,624 ticks
  // before the resolution floor, 7 after).
  const rand = mulberry32(41);
  let low = 0, ticks = 0;
  for (let run = 0; run < 100; run++) {
    const d = new TrendDetector({ ...DEFAULT_TREND, capacity: 1 });
    const base = 4 + Math.floor(rand() * 6), start = 15 + rand() * 5;
    for (let i = 0; i < 100; i++) {
      const ts = i * 0.5 + (rand() - 0.5) * 0.2;
      const used = Math.min(40, base + Math.max(0, ts > start ? Math.floor((ts - start) * 2 + rand() * 0.5) : 0));
      const s = d.update(i * 500, used / 40);
      if (ts > start + 4 && used < 40) { ticks++; if (s < 0.5) low++; }
    }
  }
  assert.ok(low <= ticks * 0.005, `${low} of ${ticks} ticks under 0.5`);
});

test("spike: one point far outside the range scores near 1 by the value view; neighbours do not", () => {
  const rand = mulberry32(11);
  const v = Array.from({ length: 800 }, (_, i) => (i === 600 ? 160 : 100 + 3 * normal(rand)));
  const { scores } = run(v, seriesOptions({ restPoints: 0, changePoint: false }));
  assert.ok(scores[600]! > 0.85, `spike scores ${scores[600]}`);
  assert.ok(maxOf(scores, 590, 600) < 0.6 && maxOf(scores, 601, 606) < 0.7, "neighbours stay low");
});

test("seasonal with noise: days of normal shape stay quiet, a day with its peak missing is seen by the seasonal view", () => {
  const rand = mulberry32(5);
  const perDay = 288; // 5-minute points
  const v = Array.from({ length: perDay * 8 }, (_, i) => {
    const phase = (i % perDay) / perDay;
    const day = Math.floor(i / perDay);
    const peak = day === 6 && phase > 0.4 && phase < 0.6 ? 0 : 40 * Math.exp(-((phase - 0.5) ** 2) / 0.005);
    return 20 + peak + normal(rand);
  });
  const d = new SeriesDetector(seriesOptions({ restPoints: 0, changePoint: false }));
  const scores: number[] = [], views: string[] = [];
  v.forEach((x, i) => { scores.push(d.update(i * 5 * MIN, x)); views.push(d.view); });
  const from = Math.ceil(6.4 * perDay);
  const missing = scores.slice(from, from + 20);
  const hit = missing.findIndex((s) => s >= 0.5);
  assert.ok(hit >= 0 && hit < 5, `missing peak at the range edge after ${hit} points`);
  assert.is(views[from + hit], "seasonal", "the seasonal view sees it: every value is within the normal range");
  assert.ok(missing.filter((s) => s >= 0.5).length >= 10, "and keeps seeing it while the peak is missing");
  const normalDays = scores.slice(3 * perDay, 6 * perDay);
  assert.ok(normalDays.filter((s) => s > 0.6).length <= 2, `${normalDays.filter((s) => s > 0.6).length} normal-day points above 0.6`);
});

test("flat with dropouts: a constant series never scores, gaps in time change nothing, a real move does", () => {
  const d = new SeriesDetector(seriesOptions({ restPoints: 0 }));
  let t = 0, worst = 0;
  for (let i = 0; i < 2000; i++) {
    t += i % 300 === 299 ? 3600_000 : MIN; // an hour-long dropout every 300 points
    worst = Math.max(worst, d.update(t, 42));
  }
  assert.is(worst, 0);
  assert.ok(d.update(t + MIN, 43) > 0.9, "the first change after a long flat run is a strong signal");
});

test("scores are strictly streaming: a file cut short scores its rows identically", () => {
  const rand = mulberry32(9);
  const n = 3000;
  const times = Float64Array.from({ length: n }, (_, i) => 1_600_000_000_000 + i * 5 * MIN);
  const values = Float64Array.from({ length: n }, (_, i) => 50 + 10 * Math.sin(i / 40) + normal(rand) + (i > 2500 ? 30 : 0));
  const full = scoreSeries(times, values);
  for (const cut of [1, 17, 1234, 2600]) assert.equal(Array.from(scoreSeries(times.subarray(0, cut), values.subarray(0, cut))), Array.from(full.subarray(0, cut)));
  assert.ok(full.every((s) => s >= 0 && s <= 1));
});

test("alarm suppression: a sustained anomaly reports one full-strength alarm, not a burst", () => {
  const rand = mulberry32(13);
  const v = Array.from({ length: 1000 }, (_, i) => 10 + normal(rand) + (i >= 800 ? 3 : 0));
  const loud = run(v, seriesOptions({ restPoints: 0 })).scores.slice(800).filter((s) => s > 0.55).length;
  const quiet = run(v, seriesOptions({ restPoints: 200 })).scores.slice(800).filter((s) => s > 0.55).length;
  assert.ok(loud > 5, `${loud} alarms without suppression`);
  assert.ok(quiet <= 2, `${quiet} with suppression`);
});


test("envelope: a spike past every earlier extreme and a sustained move past the short mean's range both score above 0.9; noise inside the range never does", () => {
  const rand = mulberry32(11);
  // The memory outlasts the series, so the early excursions (15 sds up at 100, down at 150) keep
  // setting the range: without them a 1,300-point stretch of noise sets records by chance.
  const env = () => new EnvelopeDetector({ ...DEFAULT_ENVELOPE, memory: 4000 }, "both");
  const v = Array.from({ length: 2000 }, (_, i) => 50 + 2 * normal(rand) + (i === 100 ? 30 : 0) + (i === 150 ? -30 : 0) + (i === 1500 ? 40 : 0));
  const a = env();
  const scales: (string | null)[] = [];
  const s = v.map((x) => { const r = a.update(x); scales.push(a.scale); return r; });
  assert.ok(s[1500]! > 0.9 && scales[1500] === "value", `the spike scores ${s[1500]} (${scales[1500]})`);
  assert.ok(Math.max(...s.slice(200, 1500)) === 0, "noise inside the remembered range scores 0");
  // A sustained shift of 4 sds: no single point leaves the value range (the spike at 100 still holds
  // it), but the 16-point mean leaves its own range.
  const b = env();
  const w = Array.from({ length: 1300 }, (_, i) => 50 + 2 * normal(rand) + (i === 100 ? 30 : 0) + (i === 150 ? -30 : 0) + (i >= 1200 ? 8 : 0));
  const wScales: (string | null)[] = [];
  const sw = w.map((x) => { const r = b.update(x); wScales.push(b.scale); return r; });
  const first = sw.findIndex((x, i) => i >= 1200 && x > 0.9);
  assert.ok(first >= 1200 && first < 1216 && wScales[first] === "mean", `the shifted mean leaves its range at ${first} (${wScales[first]})`);
  assert.ok(Math.max(...w.slice(1200)) < 80 + 0.05 * 30, "no single shifted point is past the value range");
  assert.ok(Math.max(...sw.slice(200, 1200)) === 0);
  // The memory is bounded: once the excursion at 100 is forgotten, the range is the noise's own.
  const c = new EnvelopeDetector({ ...DEFAULT_ENVELOPE, memory: 200 }, "both");
  const u = Array.from({ length: 600 }, (_, i) => 50 + 2 * normal(rand) + (i === 100 ? 30 : 0) + (i === 500 ? 20 : 0));
  const su = u.map((x) => c.update(x));
  assert.ok(su[500]! > 0.9, `20 above the mean scores ${su[500]} once the 30 at row 100 has left the memory`);
  // One-sided: an "up" envelope ignores a drop.
  // (Excursions at 20 and 30 set a range that noise cannot leave; the drop at 250 leaves it downwards.)
  const dv = Array.from({ length: 300 }, (_, i) => 50 + 2 * normal(rand) + (i === 20 ? 30 : 0) - (i === 30 ? 30 : 0) - (i === 250 ? 60 : 0));
  const up = new EnvelopeDetector(DEFAULT_ENVELOPE, "up"), both = new EnvelopeDetector(DEFAULT_ENVELOPE, "both");
  const su2 = dv.map((x) => up.update(x)), sb = dv.map((x) => both.update(x));
  assert.ok(sb[250]! > 0.9, `both sides: the drop scores ${sb[250]}`);
  assert.is(Math.max(...su2.slice(40)), 0, "the up side ignores the drop (the excursion at 20 itself is a breach)");
});

test("envelope: options are checked", () => {
  assert.throws(() => new EnvelopeDetector({ ...DEFAULT_ENVELOPE, memory: 0 }), (e: Error) => /memory must be a positive integer, got 0/.test(e.message));
  assert.throws(() => new EnvelopeDetector({ ...DEFAULT_ENVELOPE, tolerance: -1 }), (e: Error) => /tolerance must be >= 0/.test(e.message));
});

test.run();
