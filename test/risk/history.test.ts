// The failure model's history store: the per-component bound holds in memory and on disk (compaction),
// samples and failures survive a restart, a bad line is an error naming FILE:LINE: field: reason, a torn
// last line is dropped with a warning, and sampling follows the injected clock.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ManualClock } from "../../host/clock.js";
import { HistoryError, HistoryStore } from "../../controller/risk/history.js";
import { SIGNAL_KINDS, emptyFeatures, kindIndex } from "../../controller/risk/predictor.js";

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(path.join(tmpdir(), "sm-history-")); dirs.push(d); return d; };
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const feats = (err: number) => { const f = emptyFeatures(); f[kindIndex("error_rate")] = err; f[kindIndex("latency")] = err / 2; return f; };

test("the bound holds per component, in memory and on disk, oldest dropped", () => {
  const dir = tmp();
  const clock = new ManualClock();
  const h = new HistoryStore({ dir, clock, maxSamplesPerComponent: 100 });
  h.load();
  for (let i = 0; i < 1000; i++) h.add([{ component: "a", tMs: i * 10_000, risk: 0.1, features: feats((i % 10) / 10) }, { component: "b", tMs: i * 10_000, risk: 0.2, features: feats(0) }]);
  assert.is(h.sampleCount("a"), 100);
  assert.is(h.sampleCount("b"), 100);
  const a = h.samples().filter((s) => s.component === "a");
  assert.is(a[0]!.tMs, 900 * 10_000, "the oldest were dropped");
  assert.is(a[99]!.tMs, 999 * 10_000);
  // How risky it has been (the impact ranking's hazard): the mean of the risks held, float32 as stored.
  assert.ok(Math.abs(h.meanRisk("a")! - 0.1) < 1e-6 && Math.abs(h.meanRisk("b")! - 0.2) < 1e-6, `${h.meanRisk("a")} ${h.meanRisk("b")}`);
  assert.is(h.meanRisk("unknown"), null);
  const lines = readFileSync(h.file!, "utf8").trim().split("\n").length;
  assert.ok(lines <= 1 + 200 * 1.25 + 2, `compaction keeps the file near the bound: ${lines} lines for 200 samples`);
  const bytes = statSync(h.file!).size;
  console.log(`  history: ${lines} lines, ${bytes} bytes for 200 samples held (${(bytes / lines).toFixed(0)} bytes a line)`);
  h.close();
});

test("samples and failures survive a restart (with the recovery)", () => {
  const dir = tmp();
  const clock = new ManualClock();
  const h = new HistoryStore({ dir, clock });
  h.load();
  h.add([{ component: "orders", tMs: 1000, risk: 0.25, features: feats(0.5) }, { component: "orders", tMs: 11_000, risk: 0.3, features: feats(0.75) }]);
  h.recordFailure({ component: "orders", atMs: 20_000, source: "controller", note: "primary down" });
  h.recordFailure({ component: "orders", atMs: 5_000, source: "operator", note: "disk full", by: "alice" });
  assert.ok(h.isDown("orders"));
  assert.ok(h.recordRecovery("orders", 60_000));
  h.close();

  const back = new HistoryStore({ dir, clock });
  back.load();
  assert.equal(back.warnings, []);
  const s = back.samples();
  assert.is(s.length, 2);
  assert.is(s[1]!.tMs, 11_000);
  assert.is(s[1]!.risk, Math.fround(0.3));
  assert.is(s[1]!.features[kindIndex("error_rate")], Math.fround(0.75));
  assert.is(s[1]!.features.length, SIGNAL_KINDS.length);
  assert.equal(back.failures().map((f) => ({ ...f })), [
    { component: "orders", atMs: 20_000, source: "controller", note: "primary down", recoveredMs: 60_000 },
    { component: "orders", atMs: 5_000, source: "operator", note: "disk full", by: "alice" },
  ]);
  assert.not.ok(back.isDown("orders"), "the controller failure was closed by its recovery (an operator's mark is a point)");
  back.close();
});

test("a bad line is an error naming FILE:LINE: field: reason", () => {
  const dir = tmp();
  const h = new HistoryStore({ dir, clock: new ManualClock() });
  h.load();
  h.add([{ component: "a", tMs: 1, risk: 0, features: feats(0) }]);
  h.close();
  const file = path.join(dir, "history.jsonl");
  appendFileSync(file, JSON.stringify({ t: "sample", component: "a", tMs: 2, risk: 1.5, f: Array(SIGNAL_KINDS.length).fill(0) }) + "\n");
  appendFileSync(file, JSON.stringify({ t: "sample", component: "a", tMs: 3, risk: 0, f: [] }) + "\n");
  assert.throws(() => new HistoryStore({ dir, clock: new ManualClock() }).load(),
    (e: unknown) => e instanceof HistoryError && /history\.jsonl:3: risk: .*(1|less than or equal).*\(got 1\.5\)/.test((e as Error).message));
  const lines = readFileSync(file, "utf8").split("\n");
  lines[2] = JSON.stringify({ t: "failure", component: "a", atMs: 5, source: "pager" });
  writeFileSync(file, lines.join("\n"));
  assert.throws(() => new HistoryStore({ dir, clock: new ManualClock() }).load(), (e: unknown) => /history\.jsonl:3: source: /.test((e as Error).message));
  lines[2] = JSON.stringify({ t: "failure", component: "a", atMs: 5, source: "operator", when: 1 });
  writeFileSync(file, lines.join("\n"));
  assert.throws(() => new HistoryStore({ dir, clock: new ManualClock() }).load(), (e: unknown) => /history\.jsonl:3: when: unknown field/.test((e as Error).message));
  lines[2] = "{not json";
  writeFileSync(file, lines.join("\n"));
  assert.throws(() => new HistoryStore({ dir, clock: new ManualClock() }).load(), (e: unknown) => /history\.jsonl:3: not valid JSON/.test((e as Error).message));
  lines.splice(2, 1);
  writeFileSync(file, lines.join("\n"));
  assert.throws(() => new HistoryStore({ dir, clock: new ManualClock() }).load(), (e: unknown) => /history\.jsonl:3: f: 0 features, the header names 11 kinds/.test((e as Error).message));
});

test("a torn last line is dropped with a warning, and the file is mended", () => {
  const dir = tmp();
  const h = new HistoryStore({ dir, clock: new ManualClock() });
  h.load();
  h.add([{ component: "a", tMs: 1, risk: 0.5, features: feats(1) }]);
  h.recordFailure({ component: "a", atMs: 2, source: "operator" });
  h.close();
  const file = path.join(dir, "history.jsonl");
  appendFileSync(file, '{"t":"sample","component":"a","tMs":3,"ri');
  const back = new HistoryStore({ dir, clock: new ManualClock() });
  back.load();
  assert.is(back.warnings.length, 1);
  assert.match(back.warnings[0]!, /history\.jsonl:4: torn last record dropped/);
  assert.is(back.sampleCount("a"), 1);
  assert.is(back.failures().length, 1);
  assert.ok(readFileSync(file, "utf8").endsWith("\n"), "rewritten without the torn tail");
  back.add([{ component: "a", tMs: 4, risk: 0, features: feats(0) }]);
  back.close();
  const again = new HistoryStore({ dir, clock: new ManualClock() });
  again.load();
  assert.equal(again.warnings, []);
  assert.is(again.sampleCount("a"), 2);
});

test("sampling follows the injected clock: one sample per component every sampleEveryS, none without data", () => {
  const clock = new ManualClock(1_700_000_000_000);
  const h = new HistoryStore({ dir: null, clock, sampleEveryS: 10, components: ["a", "b"] });
  const src = {
    featuresOf: (c: string) => (c === "a" || c === "b" ? feats(0.2) : null),
    riskOf: (c: string) => (c === "a" ? { risk: 0.1, noData: false } : c === "b" ? { risk: 0, noData: true } : undefined),
  };
  let taken = 0;
  for (let i = 0; i < 100; i++) { taken += h.maybeSample(src, ["a", "b"]); clock.advance(1000); }
  assert.is(taken, 10, "100 s at one sample every 10 s");
  assert.is(h.sampleCount("a"), 10);
  assert.is(h.sampleCount("b"), 0, "no data: not sampled");
  assert.is(h.samples()[1]!.tMs - h.samples()[0]!.tMs, 10_000);
});

test.run();
