// The risk does not restart from zero: an engine's state (smoothed risks, each signal's last N
// points) is written to stateDir/risk.jsonl and a fresh engine restored from it continues the risk and
// keeps the baseline. The file is bounded and loaded like input (FILE:LINE: field: reason).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ManualClock, wallMs } from "../../host/clock.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import type { ComponentSpec } from "../../controller/risk/spec.js";
import { RiskStateError, RiskStateFile } from "../../controller/risk/persist.js";
import { mulberry32, normal } from "../support/random.js";
import { parseConfig } from "../../controller/config.js";
import { startController } from "../../controller/main.js";
import { silentLogger } from "../../controller/log.js";
import { testControllerYaml } from "../support/controller-config.js";

const SPEC: ComponentSpec = { name: "orders-db", signals: [
  { name: "p99_ms", kind: "latency" },
  { name: "errors", kind: "error_rate" },
  { name: "cpu", kind: "cpu" },
] };
const KEEP = 512;

function feed(e: RiskEngine, clock: ManualClock, from: number, seconds: number, shape: (signal: string, s: number) => number) {
  for (let s = from; s < from + seconds; s++) {
    clock.advance(1000);
    const t = wallMs(clock);
    for (const sig of SPEC.signals) e.observe(SPEC.name, sig.name, t, shape(sig.name, s));
    e.tick();
  }
}
const rand = mulberry32(7);
const healthy = (sig: string): number => sig === "p99_ms" ? 20 + 2 * normal(rand) : sig === "errors" ? Math.max(0, 0.001 + 0.0005 * normal(rand)) : 40 + 3 * normal(rand);
// Errors and latency climb over a minute from s = 900.
const degrading = (sig: string, s: number): number => sig === "errors" ? 0.002 + 0.2 * Math.min(1, (s - 900) / 60) : sig === "p99_ms" ? 20 + 200 * Math.min(1, (s - 900) / 60) : healthy(sig);

function inDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-risk-"));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}
const engine = (clock: ManualClock) => { const e = new RiskEngine({ clock, keepPoints: KEEP }); e.setComponent(SPEC); return e; };

test("a restarted engine continues the risk and keeps the baseline instead of restarting at 0", () => inDir((dir) => {
  const clock = new ManualClock();
  const a = engine(clock);
  feed(a, clock, 0, 900, healthy);
  feed(a, clock, 900, 40, degrading);
  const before = a.get(SPEC.name)!;
  assert.ok(before.risk > 0.1, `the risk rose before the restart: ${before.risk}`);
  new RiskStateFile(dir).save(a.snapshot(), wallMs(clock), KEEP);

  // The controller restarts 5 s later: a new engine from the file, and one from nothing for comparison.
  clock.advance(5000);
  const snap = new RiskStateFile(dir).load()!;
  assert.ok(snap.components[0]!.signals.every((s) => s.points.length === KEEP), "bounded: the last KEEP points per signal");
  const b = engine(clock);
  assert.equal(b.restore(snap), []);
  const fresh = engine(clock);
  const afterRestore = b.get(SPEC.name)!;
  assert.is(afterRestore.risk, before.risk, "the smoothed risk is taken back as it was");
  const bp99 = afterRestore.contributions.find((c) => c.signal === "p99_ms")!;
  assert.ok(bp99.expected !== null && bp99.expected < 40, `the baseline kept (latency expected ${bp99.expected} ms, not the degraded value)`);
  b.tick();
  assert.ok(b.get(SPEC.name)!.risk > 0.1 && !b.get(SPEC.name)!.noData, "still fresh after 5 s: the risk does not drop to 0");

  // The same degradation continues into all three engines: the restored one tracks the one that never stopped.
  feed(a, clock, 945, 30, degrading);
  feed(b, clock, 945, 30, degrading);
  feed(fresh, clock, 945, 30, degrading);
  const ra = a.get(SPEC.name)!.risk, rb = b.get(SPEC.name)!.risk, rf = fresh.get(SPEC.name)!.risk;
  assert.ok(Math.abs(ra - rb) < 0.1, `restored ${rb} vs uninterrupted ${ra}`);
  assert.ok(rb > 0.3, `the risk kept rising after the restart: ${rb}`);
  assert.ok(rf < rb / 2, `an engine without the state restarts low: ${rf} (restored ${rb})`);
  const st = fresh.get(SPEC.name)!.contributions.find((c) => c.signal === "errors")!.state;
  assert.ok(st === "ok" || st === "warming");
}));

test("a long gap: the restored signals are stale, the risk is held (noData) rather than reset", () => inDir((dir) => {
  const clock = new ManualClock();
  const a = engine(clock);
  feed(a, clock, 0, 900, healthy);
  feed(a, clock, 900, 40, degrading);
  const r0 = a.get(SPEC.name)!.risk;
  new RiskStateFile(dir).save(a.snapshot(), wallMs(clock), KEEP);
  clock.advance(10 * 60_000);
  const b = engine(clock);
  b.restore(new RiskStateFile(dir).load()!);
  b.tick();
  const r = b.get(SPEC.name)!;
  assert.ok(r.noData, "no fresh signal after 10 minutes");
  assert.is(r.risk, r0);
  assert.ok(r.contributions.every((c) => c.state === "stale"));
}));

test("the file is checked on load: FILE:LINE: field: reason; unconfigured signals are skipped with a warning", () => inDir((dir) => {
  const clock = new ManualClock();
  const a = engine(clock);
  feed(a, clock, 0, 50, healthy);
  const f = new RiskStateFile(dir);
  f.save(a.snapshot(), wallMs(clock), KEEP);
  const text = readFileSync(f.file, "utf8");
  const lines = text.split("\n");
  assert.match(lines[0]!, /"t":"risk","version":1/);
  const bad = (i: number, edit: (l: string) => string): string => {
    const ls = [...lines]; ls[i] = edit(ls[i]!); writeFileSync(f.file, ls.join("\n"));
    try { f.load(); } catch (e) { assert.ok(e instanceof RiskStateError); return (e as Error).message; }
    throw new Error("expected a RiskStateError");
  };
  assert.match(bad(1, (l) => l.replace(/"risk":[^,]+/, '"risk":7')), `${f.file}:2: risk: `);
  assert.match(bad(2, (l) => l.replace(/"points":\[\[[^,]+/, '"points":[["x"')), `${f.file}:3: points[0][0]: `);
  assert.match(bad(3, (l) => l.replace(/\[(\d+),/, "[99999999999999,")), `${f.file}:4: points: timestamps must not go back`);
  assert.match(bad(2, (l) => l.slice(0, 30)), `${f.file}:3: not valid JSON`);
  assert.match(bad(0, () => '{"t":"risk","version":2,"savedAtMs":0,"keepPoints":5}'), `${f.file}:1: version: `);
  assert.match(bad(1, (l) => l.replace('"noData"', '"nodata"')), `${f.file}:2: nodata: unknown field`);
  writeFileSync(f.file, text);
  const b = new RiskEngine({ clock, keepPoints: KEEP });
  b.setComponent({ name: SPEC.name, signals: [{ name: "p99_ms", kind: "latency" }] });
  const warnings = b.restore(f.load()!);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /signal "errors" is not configured: its 50 points are dropped/);
}));

test("without keepPoints nothing is kept (the incident benchmark's engines pay nothing)", () => {
  const clock = new ManualClock();
  const e = new RiskEngine({ clock });
  e.setComponent(SPEC);
  feed(e, clock, 0, 20, healthy);
  assert.ok(e.snapshot().components[0]!.signals.every((s) => s.points.length === 0));
});

test("the controller restores stateDir/risk.jsonl at start, saves it at stop, and refuses a bad one", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-risk-ctl-"));
  try {
    const stateDir = path.join(dir, "state");
    const text = testControllerYaml({ token: "risk-test-token-0123", stateDir, component: "    signals: [{ name: cpu, kind: cpu }]" });
    const cfg = parseConfig(text, path.join(dir, "controller.yaml"));
    const f = new RiskStateFile(stateDir);
    const now = Date.now();
    const points = Array.from({ length: 40 }, (_, i) => [now - 40_000 + i * 1000, 40 + (i % 3)] as [number, number]);
    f.save({ components: [{ name: "orders", risk: 0.42, probability: 0.5, noData: false, updatedMs: now - 1000, signals: [{ name: "cpu", lastSeenMs: now - 1000, points }] }] }, now, 1024);
    const ctl = await startController(cfg, { log: silentLogger() });
    let saved: string;
    try {
      const r = ctl.engine.get("orders")!;
      assert.ok(r.risk > 0.3, `restored risk ${r.risk}`);
      assert.is(r.contributions[0]!.value, points.at(-1)![1], "the cpu signal's points were replayed");
    } finally { await ctl.stop(); saved = readFileSync(f.file, "utf8"); }
    assert.match(saved.split("\n")[2]!, /"t":"signal","component":"orders","name":"cpu"/, "saved at stop");
    assert.is(f.load()!.components[0]!.signals[0]!.points.length, 40);
    writeFileSync(f.file, saved.replace(/"probability":[^,]+/, '"probability":-1'));
    let err = "";
    try { const c = await startController(cfg, { log: silentLogger() }); await c.stop(); } catch (e) { err = (e as Error).message; }
    assert.match(err, `${f.file}:2: probability: `);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test.run();
