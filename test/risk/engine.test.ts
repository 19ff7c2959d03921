// The risk engine: explanations name the signal that moved, a lone noisy metric does not raise the
// risk, smoothing rises and falls at its time constants (an exhaustion forecast two fits stand for rises at once), stale and missing data are explicit states.
// Deterministic: a manual clock and seeded noise.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock } from "../../host/clock.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { RiskInputError, type ComponentSpec } from "../../controller/risk/spec.js";
import { mulberry32, normal } from "../support/random.js";

const SPEC: ComponentSpec = { name: "orders-db", signals: [
  { name: "cpu", kind: "cpu" },
  { name: "memory", kind: "memory" },
  { name: "p99_ms", kind: "latency" },
  { name: "errors", kind: "error_rate" },
  { name: "disk_used", kind: "app", capacity: 100, side: "up" },
] };

/** Feeds `seconds` of 1 Hz points; `shape(name, s)` gives each signal's value (undefined: no point). */
function feed(e: RiskEngine, clock: ManualClock, from: number, seconds: number, shape: (signal: string, s: number) => number | undefined) {
  for (let s = from; s < from + seconds; s++) {
    clock.advance(1000);
    const t = Number(clock.realtimeNs() / 1_000_000n);
    for (const sig of SPEC.signals) {
      const v = shape(sig.name, s);
      if (v !== undefined) e.observe(SPEC.name, sig.name, t, v);
    }
    e.tick();
  }
}

const healthy = (rand: () => number) => (sig: string): number => {
  switch (sig) {
    case "cpu": return 40 + 3 * normal(rand);
    case "memory": return 60 + normal(rand);
    case "p99_ms": return 20 + 2 * normal(rand);
    case "errors": return Math.max(0, 0.001 + 0.0005 * normal(rand));
    default: return 50 + 0.2 * normal(rand);
  }
};

/** An engine with SPEC and `seconds` of healthy history (seeded), one tick a second. */
function healthyEngine(seed: number, seconds: number, opts: { riseTauS?: number; fallTauS?: number } = {}) {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock, ...opts });
  e.setComponent(SPEC);
  const h = healthy(mulberry32(seed));
  feed(e, clock, 0, seconds, h);
  return { clock, e, h };
}

test("healthy noise for an hour keeps the risk near the prior; an error and latency surge raises it and is explained", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock });
  e.setComponent(SPEC);
  const rand = mulberry32(21);
  const h = healthy(rand);
  let worst = 0;
  for (let block = 0; block < 60; block++) {
    feed(e, clock, block * 60, 60, h);
    if (block >= 5) worst = Math.max(worst, e.get(SPEC.name)!.risk);
  }
  assert.ok(worst < 0.05, `risk under healthy noise peaked at ${worst}`);
  // Errors climb to 30 % and latency to 300 ms over a minute.
  feed(e, clock, 3600, 60, (sig, s) => sig === "errors" ? 0.3 * (s - 3600) / 60 : sig === "p99_ms" ? 20 + 280 * (s - 3600) / 60 : h(sig));
  feed(e, clock, 3660, 30, (sig, s) => sig === "errors" ? 0.3 + 0.01 * (s - 3660) : sig === "p99_ms" ? 300 + 5 * (s - 3660) : h(sig));
  const r = e.get(SPEC.name)!;
  assert.ok(r.risk > 0.5, `risk ${r.risk}`);
  assert.ok(r.probability > 0.8, `probability ${r.probability}`);
  const top = r.contributions.slice(0, 2).map((c) => c.signal).sort();
  assert.equal(top, ["errors", "p99_ms"], "the two signals that moved lead the explanation");
  const errors = r.contributions.find((c) => c.signal === "errors")!;
  assert.ok(errors.value! > 0.5 && errors.expected! < 0.01, `errors ${errors.value} vs expected ${errors.expected}`);
  assert.ok(Math.abs(r.contributions.reduce((a, c) => a + c.share, 0) - 1) < 1e-9, "shares add up to 1");
  assert.ok(r.contributions.find((c) => c.signal === "cpu")!.share < 0.1);
});

test("one metric going wild alone (CPU pinned) does not carry the risk past 0.1", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock });
  e.setComponent(SPEC);
  const h = healthy(mulberry32(4));
  feed(e, clock, 0, 1200, h);
  feed(e, clock, 1200, 300, (sig) => (sig === "cpu" ? 100 : h(sig)));
  const r = e.get(SPEC.name)!;
  assert.ok(r.risk < 0.1, `risk ${r.risk}`);
  assert.is(r.contributions[0]!.signal, "cpu", "but it is named as the top contributor");
});

test("a disk filling towards capacity is forecast, explained as exhaustion, and raises the risk on its own", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock });
  e.setComponent(SPEC);
  const h = healthy(mulberry32(8));
  feed(e, clock, 0, 1200, h);
  // 60 -> 90 % over 30 minutes: 10 minutes from full at the end.
  feed(e, clock, 1200, 1800, (sig, s) => (sig === "disk_used" ? 60 + (30 * (s - 1200)) / 1800 + 0.1 * normal(mulberry32(s)) : h(sig)));
  const r = e.get(SPEC.name)!;
  const disk = r.contributions[0]!;
  assert.is(disk.signal, "disk_used");
  assert.is(disk.view, "trend");
  assert.ok(disk.exhaustionS! > 400 && disk.exhaustionS! < 900, `exhaustion in ${disk.exhaustionS} s`);
  assert.ok(r.risk > 0.5, `risk ${r.risk}`);
});

/**
 * A disk filling 1 % a second after 1,200 s of healthy history, scraped every `every` seconds (the
 * other signals every second, one tick a second, a 60 s rise time): per tick, the disk's forecast
 * score (0 unless its view is the trend), the risk, the probability and whether the disk had a point.
 */
function fillingDisk(seed: number, every: number, from: number, seconds: number) {
  const { clock, e, h } = healthyEngine(seed, 1200, { riseTauS: 60, fallTauS: 600 });
  const seen: { forecast: number; risk: number; p: number; fresh: boolean }[] = [];
  for (let s = 1200; s < 1200 + seconds; s++) {
    const fresh = s % every === 0;
    feed(e, clock, s, 1, (sig) => (sig === "disk_used" ? (fresh ? from + (s - 1200) + 0.1 * normal(mulberry32(s)) : undefined) : h(sig)));
    const r = e.get(SPEC.name)!;
    const disk = r.contributions.find((c) => c.signal === "disk_used")!;
    seen.push({ forecast: disk.view === "trend" ? disk.score : 0, risk: r.risk, p: r.probability, fresh });
  }
  return seen;
}

test("an exhaustion forecast two fits in a row stand for raises the risk at once; one fit does not (other evidence waits out the rise time: the next tests)", () => {
  const seen = fillingDisk(12, 1, 60, 40); // full in about a minute
  const k = seen.findIndex((x) => x.forecast > 0.95);
  assert.ok(k > 0, `the fill is forecast (${JSON.stringify(seen.slice(0, 12))})`);
  assert.ok(seen[k]!.risk < 0.2, `one fit does not raise it: ${seen[k]!.risk} at the first forecast`);
  assert.ok(seen[k + 1]!.forecast > 0.95 && seen[k + 1]!.risk > 0.6, `two fits do: ${JSON.stringify(seen[k + 1])}`);
  assert.ok(seen[k + 1]!.risk <= seen[k + 1]!.p, "never above this tick's probability");
});

test("the forecast hold counts fits, not ticks: 1 s ticks over 5 s scrapes raise the risk at the second fit", () => {
  const seen = fillingDisk(13, 5, 40, 200);
  const k = seen.findIndex((x) => x.forecast > 0.95);
  assert.ok(k > 0 && seen[k]!.fresh, `the fill is forecast at a scrape (${k})`);
  for (let j = k; j < k + 5; j++) assert.ok(seen[j]!.risk < 0.2, `one fit, seen on ${j - k + 1} ticks, does not raise it: ${seen[j]!.risk}`);
  assert.ok(seen[k + 5]!.fresh && seen[k + 5]!.forecast > 0.95 && seen[k + 5]!.risk > 0.6, `the second fit does: ${JSON.stringify(seen[k + 5])}`);
});

test("a changed spec keeps each unchanged signal's scores, freshness and fits, wherever the signal now sits", () => {
  const { clock, e, h } = healthyEngine(12, 1200, { riseTauS: 60, fallTauS: 600 });
  const fill = (sig: string, s: number) => (sig === "disk_used" ? 60 + (s - 1200) + 0.1 * normal(mulberry32(s)) : h(sig));
  const disk = () => e.get(SPEC.name)!.contributions.find((c) => c.signal === "disk_used")!;
  let s = 1200;
  for (; s < 1240 && !(disk().view === "trend" && disk().score > 0.95); s++) feed(e, clock, s, 1, fill);
  assert.ok(s < 1240, "the fill is forecast");
  assert.ok(e.get(SPEC.name)!.risk < 0.2, "one fit: not yet");
  // The disk moves from the last row to the first, a new signal joins second; nothing else changes.
  e.setComponent({ name: SPEC.name, signals: [SPEC.signals[4]!, { name: "conns", kind: "app" }, ...SPEC.signals.slice(0, 4)] });
  const states = Object.fromEntries(e.get(SPEC.name)!.contributions.map((c) => [c.signal, c.state]));
  assert.equal(states, { disk_used: "ok", conns: "missing", cpu: "ok", memory: "ok", p99_ms: "ok", errors: "ok" });
  feed(e, clock, s, 1, fill);
  const r = e.get(SPEC.name)!;
  assert.ok(r.risk > 0.6, `the fit before the change counts as the first of two: risk ${r.risk}`);
  assert.is(r.contributions[0]!.signal, "disk_used");
});

test("smoothing: the risk rises with riseTauS and falls with the slower fallTauS", () => {
  const { clock, e, h } = healthyEngine(9, 600, { riseTauS: 10, fallTauS: 100 });
  feed(e, clock, 600, 10, (sig) => (sig === "errors" ? 0.5 : sig === "p99_ms" ? 500 : h(sig)));
  const peak = e.get(SPEC.name)!;
  assert.ok(peak.probability > 0.9, `probability ${peak.probability}`);
  assert.ok(peak.risk > 0.2 && peak.risk < 0.7 * peak.probability, `after one rise time constant the risk lags: ${peak.risk}`);
  feed(e, clock, 610, 30, h);
  const later = e.get(SPEC.name)!;
  assert.ok(later.probability < 0.1, `the evidence is gone: ${later.probability}`);
  assert.ok(later.risk > 0.5 * peak.risk, `but the risk falls slowly: ${later.risk}`);
});

test("stale and missing data are explicit; with no fresh signal the component reports noData", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock, staleAfterS: 30 });
  e.setComponent(SPEC);
  const h = healthy(mulberry32(10));
  feed(e, clock, 0, 100, (sig) => (sig === "memory" ? undefined : h(sig)));
  let r = e.get(SPEC.name)!;
  assert.is(r.contributions.find((c) => c.signal === "memory")!.state, "missing");
  assert.is(r.contributions.find((c) => c.signal === "memory")!.value, null);
  assert.is(r.contributions.find((c) => c.signal === "cpu")!.state, "ok");
  assert.is(r.noData, false);
  feed(e, clock, 100, 40, (sig) => (sig === "cpu" ? h(sig) : undefined));
  r = e.get(SPEC.name)!;
  assert.is(r.contributions.find((c) => c.signal === "errors")!.state, "stale");
  assert.is(r.contributions.find((c) => c.signal === "errors")!.contribution, 0);
  clock.advance(60_000);
  e.tick();
  r = e.get(SPEC.name)!;
  assert.is(r.noData, true);
  assert.ok(r.contributions.every((c) => c.state === "stale" || c.state === "missing"));
});

test("bad input is refused with the component, signal and reason; warm start replays history", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock });
  e.setComponent(SPEC);
  assert.throws(() => e.observe("nope", "cpu", 1, 1), (x: unknown) => x instanceof RiskInputError && /unknown component "nope"/.test((x as Error).message));
  assert.throws(() => e.observe(SPEC.name, "gpu", 1, 1), /unknown signal "gpu" \(configured: cpu, memory, p99_ms, errors, disk_used\)/);
  assert.throws(() => e.observe(SPEC.name, "cpu", 1, Infinity), /orders-db\/cpu: value Infinity is not a finite number/);
  e.observe(SPEC.name, "cpu", 1000, 1);
  assert.throws(() => e.observe(SPEC.name, "cpu", 999, 1), /timestamp 999 is before the previous point \(1000\)/);
  assert.throws(() => e.setComponent({ name: "x", signals: [{ name: "a", kind: "gpu" as any }] }), /signals\[0\]\.kind: gpu is not one of/);
  assert.throws(() => e.setComponent({ name: "x", signals: [{ name: "a", kind: "cpu" }, { name: "a", kind: "cpu" }] }), /signals\[1\]\.name: a is listed twice/);
  assert.throws(() => e.setComponent({ name: "x", signals: [{ name: "a", kind: "memory", capacity: 1, horizonS: 0 }] }), /component x: signals\[0\]\.horizonS: must be a positive number of seconds, got 0/);
  const replayed = e.warmStart(SPEC.name, "memory", Array.from({ length: 500 }, (_, i) => [i * 1000, 60 + (i % 7)] as const));
  assert.is(replayed, 500);
  clock.advance(1000);
  e.observe(SPEC.name, "memory", 600_000, 61);
  e.tick();
  assert.is(e.get(SPEC.name)!.contributions.find((c) => c.signal === "memory")!.state, "ok", "warm-started: no warm-up period");
});

test.run();
