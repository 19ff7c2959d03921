// The risk engine's costs: detector throughput (points per second on one core, the controller's
// SeriesDetector configuration: the surprise views alone, as measured before the limits existed, and
// with every view the engine turns on for a signal with an SLO, a capacity and a season: burn rates,
// saturation, volatility, the learnt profile), one tick over 10,000 components x 16 signals (a third
// of them with an SLO or a capacity), and memory per signal.
import { ManualClock } from "../host/clock.js";
import { RiskEngine } from "../controller/risk/engine.js";
import type { ComponentSpec } from "../controller/risk/spec.js";
import { SeriesDetector, seriesOptions } from "../controller/risk/detectors/series.js";
import { SIGNAL_KINDS } from "../controller/risk/predictor.js";
import { mulberry32, normal } from "../host/random.js";
import { writeResult, medianNs } from "./harness.js";

const rand = mulberry32(1);
// Detector throughput: 1,000 series x 1,000 points of noisy seasonal data, engine configuration.
const SERIES = 1000, POINTS = 1000;
const data = Float64Array.from({ length: SERIES * POINTS }, (_, i) => 50 + 10 * Math.sin(i / 97) + 3 * normal(rand));
const throughput = () => {
  const ds = Array.from({ length: SERIES }, () => new SeriesDetector(seriesOptions({ side: "up", window: 128, seasonMs: 0, levelZ: 6, restPoints: 0 })));
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < POINTS; p++) for (let s = 0; s < SERIES; s++) ds[s]!.update(p * 1000, data[s * POINTS + p]!);
  return Number(process.hrtime.bigint() - t0);
};
throughput();
const pointsPerS = (SERIES * POINTS) / (medianNs(5, throughput) / 1e9);
const throughputAll = () => {
  const ds = Array.from({ length: SERIES }, () => new SeriesDetector(seriesOptions({
    side: "up", window: 128, seasonMs: 3_600_000, levelZ: 6, restPoints: 0, capacity: 100, saturation: true, loadWeighted: true,
    slo: { target: 0.999, threshold: 70, periodS: 86_400 }, profile: true, volatility: true,
  })));
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < POINTS; p++) for (let s = 0; s < SERIES; s++) ds[s]!.update(p * 1000, data[s * POINTS + p]!);
  return Number(process.hrtime.bigint() - t0);
};
throughputAll();
const pointsPerSAll = (SERIES * POINTS) / (medianNs(5, throughputAll) / 1e9);

// One tick over 10,000 components x 16 signals, every signal warmed up (the tick's worst case).
global.gc?.();
const rss0 = process.memoryUsage().rss;
const clock = new ManualClock();
const engine = new RiskEngine({ clock });
const kinds = SIGNAL_KINDS.filter((k) => k !== "exhaustion");
const names = Array.from({ length: 16 }, (_, i) => `s${i}`);
for (let c = 0; c < 10_000; c++) {
  const spec: ComponentSpec = { name: `c${c}`, signals: names.map((n, i) => ({
    name: n, kind: kinds[i % kinds.length]!,
    ...(i % 3 === 0 ? { capacity: 100 } : {}),
    ...(kinds[i % kinds.length] === "error_rate" ? { slo: { target: 0.999 } } : kinds[i % kinds.length] === "latency" ? { slo: { target: 0.99, threshold: 80 } } : {}),
  })) };
  engine.setComponent(spec);
}
// The engine's per-point path (validate, the detectors, the tick's row), timed over the last 10 rounds.
let observeNs = 0;
for (let p = 0; p < 20; p++) {
  clock.advance(1000);
  const t = Number(clock.realtimeNs() / 1_000_000n);
  const t0 = process.hrtime.bigint();
  for (let c = 0; c < 10_000; c++) for (const n of names) engine.observe(`c${c}`, n, t, 50 + 5 * rand());
  if (p >= 10) observeNs += Number(process.hrtime.bigint() - t0);
}
const observePerS = (10 * 160_000) / (observeNs / 1e9);
global.gc?.();
const bytesPerSignal = (process.memoryUsage().rss - rss0) / 160_000;
engine.tick();
const tickMs = medianNs(11, () => { clock.advance(1000); const t0 = process.hrtime.bigint(); engine.tick(); return Number(process.hrtime.bigint() - t0); }) / 1e6;
const explainUs = medianNs(11, () => { const t0 = process.hrtime.bigint(); for (let c = 0; c < 1000; c++) engine.get(`c${c}`); return Number(process.hrtime.bigint() - t0); }) / 1000 / 1000;

writeResult("risk", { points_per_s: pointsPerS, points_per_s_all_views: pointsPerSAll, all_views_cost_ratio: pointsPerS / pointsPerSAll, tick_ms_10k: tickMs, observe_points_per_s: observePerS, explain_us_per_component: explainUs, bytes_per_signal: bytesPerSignal }, {
  target: { points_per_s: ">= 200000", tick_ms_10k: "< 50 (issue 17)" },
  setup: "points_per_s: 1,000 series x 1,000 points, baseline (window 128, level view) + change point; points_per_s_all_views: the same plus burn rates (SLO), saturation with load weighting, volatility and a learnt hourly profile (96 slots); tick: 10,000 components x 16 signals after 20 points each, every third signal with a capacity, error and latency signals with an SLO; observe_points_per_s: engine.observe() over 10 rounds of the same 160,000 signals (the component and signal looked up by name, every view of the signal, and the copy of its scores into the tick's row; the rand() for the value included); bytes_per_signal: RSS growth / 160,000 signals (a seasonal signal's profile adds 96 slots x 5 doubles = 3.8 KiB)",
});
