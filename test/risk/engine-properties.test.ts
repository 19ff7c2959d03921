// Properties of the risk engine over generated specs and series (fast-check, fixed seed): whatever
// signals a component has (every kind; capacities from tiny to huge, either direction; SLOs; seasons;
// windows) and whatever the points do (flat, noise, ramps, steps, spikes, walks, exponential growth,
// magnitudes from 1e-9 to 1e12, negative values, repeated times, hour-long gaps), after warm starts,
// a re-spec mid-stream and a snapshot restored into a new engine: the risk and the probability stay in
// [0, 1], every contribution's score in [0, 1] and its logit term finite and non-negative, and every
// explanation says its numbers (no NaN, Infinity, null or undefined in the sentence). A spec the engine
// refuses is refused with RiskInputError, never another exception. Runs like these (other seeds, more
// runs) found two defects, fixed and pinned by the tests after the property: a capacity of 0 or less
// was accepted by the engine (every point of a rising signal then read as "exhausted now"; the
// configuration's schema already refused it), and a value 10^300 times a tiny capacity was
// explained as "Infinity %" (and a burnt budget as "-4900 % of the budget left").
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { ManualClock, wallMs } from "../../host/clock.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { SIGNAL_KINDS } from "../../controller/risk/predictor.js";
import { RiskInputError, type ComponentSpec, type SignalSpec } from "../../controller/risk/spec.js";

/** FC_RUNS raises the run count (FC_SEED another seed), as for the other property tests. */
const RUNS = Number(process.env.FC_RUNS ?? 300);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const signal = fc.record({
  kind: fc.constantFrom(...SIGNAL_KINDS),
  capacity: opt(fc.oneof({ arbitrary: fc.double({ min: 1e-6, max: 1e12, noNaN: true }), weight: 4 }, { arbitrary: fc.constantFrom(0, -1, 1, 100, 5e-309), weight: 1 })),
  exhaustion: opt(fc.constantFrom("up" as const, "down" as const)),
  seasonS: opt(fc.constantFrom(0, 1, 10, 60, 86_400)),
  window: opt(fc.constantFrom(1, 4, 16, 128, 1024)),
  slo: opt(fc.record({ target: fc.constantFrom(0.5, 0.99, 0.999999), threshold: opt(fc.constantFrom(0, 1, 100)), periodS: opt(fc.constantFrom(1, 60, 2_592_000)) })),
  side: opt(fc.constantFrom("up" as const, "down" as const, "both" as const)),
  warnAt: opt(fc.constantFrom(0.1, 0.8, 0.99)),
  horizonS: opt(fc.constantFrom(1, 120, 1e7)),
  staleAfterS: opt(fc.constantFrom(1, 60)),
});
const SHAPES = ["const", "noise", "ramp", "down", "step", "spikes", "walk", "zeros", "alt", "exp"] as const;
const run = fc.record({
  shape: fc.constantFrom(...SHAPES), scale: fc.constantFrom(1e-9, 1e-3, 1, 100, 1e6, 1e12, -5),
  n: fc.integer({ min: 1, max: 250 }), dtMs: fc.constantFrom(0, 1, 10, 500, 1000, 3_600_000), gapEvery: fc.integer({ min: 0, max: 50 }),
  seed: fc.integer(), respecAt: fc.integer({ min: -1, max: 250 }), snapshotAt: fc.integer({ min: -1, max: 250 }), history: fc.integer({ min: 0, max: 400 }),
});

/** Drops the optional fields the generator left undefined, as a spec read from YAML has them absent. */
const defined = (o: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v !== null && typeof v === "object" && !Array.isArray(v) ? defined(v as Record<string, unknown>) : v]));

test("the risk, every score and every explanation stay meaningful whatever the spec and the points", () => {
  let ran = 0;
  const engine = (clock: ManualClock) => new RiskEngine({ clock, riseTauS: 4, fallTauS: 60, horizonS: 120, keepPoints: 64 });
  fc.assert(fc.property(fc.array(signal, { minLength: 1, maxLength: 4 }), run, (sigs, r) => {
    const clock = new ManualClock();
    let e = engine(clock);
    const spec: ComponentSpec = { name: "c", signals: sigs.map((g, i) => ({ name: `s${i}`, ...defined(g) }) as SignalSpec) };
    try { e.setComponent(spec); } catch (x) { if (x instanceof RiskInputError) return; throw x; }
    let state = r.seed >>> 0, walk = 0;
    const rnd = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 2 ** 32; };
    const value = (i: number, n: number) => r.scale * { const: 1, noise: 1 + rnd(), ramp: i / 10, down: 10 - i / 10, step: i > n / 2 ? 5 : 1, spikes: rnd() < 0.05 ? 50 : 1, walk: (walk += rnd() * 2), zeros: 0, alt: i % 2, exp: Math.exp(i / 20) }[r.shape];
    if (r.history > 0) {
      const t0 = wallMs(clock) - r.history * 1000;
      for (const s of spec.signals) e.warmStart("c", s.name, Array.from({ length: r.history }, (_, i) => [t0 + i * 1000, value(i - r.history, r.history)] as const));
    }
    for (let i = 0; i < r.n; i++) {
      clock.advance(r.dtMs + (r.gapEvery && i % r.gapEvery === 0 ? 600_000 : 0));
      const t = wallMs(clock);
      if (i === r.respecAt) {
        // An operator adds (or removes) the first signal's capacity while the engine runs.
        const s0 = spec.signals[0]!;
        const changed = { ...spec, signals: [defined({ ...s0, capacity: s0.capacity === undefined ? 2 * Math.abs(r.scale) + 1 : undefined }) as unknown as SignalSpec, ...spec.signals.slice(1)] };
        try { e.setComponent(changed); } catch (x) { if (!(x instanceof RiskInputError)) throw x; }
      }
      if (i === r.snapshotAt) {
        // A restart: the snapshot goes through JSON (as the state store keeps it) into a new engine.
        const snap = JSON.parse(JSON.stringify(e.snapshot()));
        e = engine(clock);
        e.setComponent(spec);
        e.restore(snap);
      }
      for (const s of spec.signals) {
        const v = value(i, r.n) * (s.kind === "error_rate" ? 1e-4 : 1);
        if (e.check("c", s.name, t, v) === null) e.observe("c", s.name, t, v);
      }
      e.tick();
      const risk = e.get("c")!;
      assert.ok(risk.risk >= 0 && risk.risk <= 1, `risk ${risk.risk} at point ${i}`);
      assert.ok(risk.probability >= 0 && risk.probability <= 1, `probability ${risk.probability} at point ${i}`);
      for (const c of risk.contributions) {
        assert.ok(c.score >= 0 && c.score <= 1, `${c.signal}: score ${c.score} at point ${i}`);
        assert.ok(c.contribution >= 0 && Number.isFinite(c.contribution), `${c.signal}: contribution ${c.contribution} at point ${i}`);
        assert.not.match(c.reason, /NaN|Infinity|undefined|null/, `${c.signal} at point ${i}: ${c.reason}`);
      }
    }
    ran++;
  }), { numRuns: RUNS, seed: Number(process.env.FC_SEED ?? 17) });
  assert.ok(ran > RUNS / 3, `only ${ran} of ${RUNS} generated specs were accepted: the generator tests the checks, not the engine`);
});

test("a capacity must be positive: zero or less is refused by name, as the configuration's schema refuses it", () => {
  const e = new RiskEngine({ clock: new ManualClock() });
  for (const capacity of [0, -1]) {
    assert.throws(() => e.setComponent({ name: "x", signals: [{ name: "q", kind: "queue_depth", capacity }] }),
      (x: Error) => x instanceof RiskInputError && x.message === `component x: signals[0].capacity: must be a positive finite number, got ${capacity}`);
  }
});

test("explanations: a value far beyond a tiny capacity is a multiple of it, an overspent budget is said so", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock, riseTauS: 4, fallTauS: 60, horizonS: 120 });
  e.setComponent({ name: "x", signals: [{ name: "q", kind: "queue_depth", capacity: 1e-300 }, { name: "err", kind: "error_rate", slo: { target: 0.99, periodS: 3600 } }] });
  const by = (n: string) => e.get("x")!.contributions.find((c) => c.signal === n)!;
  // While warming up only the limits count: the saturation view explains the queue.
  clock.advance(1000); e.observe("x", "q", wallMs(clock), 5); e.tick();
  assert.is(by("q").view, "saturation");
  assert.is(by("q").reason, "5 is 5.00e+300 times its capacity 1.00e-300 (the view scores 0.5 at 80 %)");
  // Half the requests failing against a 1 % budget: the longest window has spent it many times over.
  for (let i = 0; i < 40; i++) { clock.advance(1000); e.observe("x", "err", wallMs(clock), 0.5); e.tick(); }
  assert.is(by("err").view, "burn");
  assert.match(by("err").reason, /; the budget is overspent by \d+ %$/);
  // A capacity so small that the value overflows its multiple: still a number in the sentence.
  e.setComponent({ name: "y", signals: [{ name: "q", kind: "queue_depth", capacity: 5e-309 }] });
  clock.advance(1000); e.observe("y", "q", wallMs(clock), 1); e.tick();
  assert.is(e.get("y")!.contributions[0]!.reason, "1 is more than 1e308 times its capacity 5.00e-309 (the view scores 0.5 at 80 %)");
});

test.run();
