// The dashboard's history (controller/dashboard/history.ts): the fine tier is bounded, the coarse tier
// holds the mean of each 15 s of fine points (nulls left out), the chart's series is the coarse tier
// then the fine one with gaps marked, a save then a load restores the same series (and the open coarse
// bucket), and a corrupt file loads as empty with a warning instead of failing the start.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DashboardHistory, FILE_NAME, SAVE_EVERY_MS, type HistoryPoint } from "../../controller/dashboard/history.js";

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 15_000);
const point = (t: number, risk: number | null, extra: Partial<HistoryPoint> = {}): HistoryPoint =>
  ({ t, risk, probability: risk === null ? null : risk / 2, shadowPercent: 20, lagS: 0.5, divergence: null, ...extra });

function recorder() {
  const warnings: string[] = [], infos: string[] = [];
  return { warnings, infos, log: { warn: (_o: object, m: string) => { warnings.push(m); }, info: (_o: object, m: string) => { infos.push(m); } } };
}

function tmpDir(): string { return mkdtempSync(path.join(os.tmpdir(), "dash-history-")); }

test("the fine tier keeps the last 900 points; the coarse tier is bounded too", () => {
  const h = new DashboardHistory();
  for (let i = 0; i < 2000; i++) h.sample("orders", point(T0 + i * 1000, (i % 100) / 100));
  const fine = h.tier("orders", "fine");
  assert.is(fine.t.length, 900);
  assert.is(fine.t[0], T0 + 1100 * 1000, "the oldest points went first");
  assert.is(fine.t[899], T0 + 1999 * 1000);
  for (const s of ["risk", "probability", "shadowPercent", "lagS", "divergence"] as const) assert.is(fine[s].length, 900, s);

  const small = new DashboardHistory({ fineCapacity: 10, coarseCapacity: 4 });
  for (let i = 0; i < 200; i++) small.sample("orders", point(T0 + i * 1000, 0.1));
  assert.is(small.tier("orders", "fine").t.length, 10);
  const coarse = small.tier("orders", "coarse");
  assert.is(coarse.t.length, 4, "4 coarse points kept");
  assert.equal(coarse.t, [9, 10, 11, 12].map((b) => T0 + b * 15_000), "the last four closed buckets");
});

test("a coarse point is the mean of its 15 s of fine points, nulls left out", () => {
  const h = new DashboardHistory();
  // Bucket 0: risk 0.00..0.14 (mean 0.07); bucket 1: risk 0.15..0.29 (mean 0.22) with a null lag in half of it.
  for (let i = 0; i < 30; i++) h.sample("orders", point(T0 + i * 1000, i / 100, { lagS: i >= 15 && i < 22 ? null : i, divergence: i < 15 ? null : 0.01 }));
  assert.is(h.tier("orders", "coarse").t.length, 1, "bucket 1 is still open");
  h.sample("orders", point(T0 + 30_000, 0.5));
  const c = h.tier("orders", "coarse");
  assert.equal(c.t, [T0, T0 + 15_000]);
  assert.equal(c.risk, [0.07, 0.22]);
  assert.equal(c.probability, [0.035, 0.11]);
  assert.equal(c.shadowPercent, [20, 20]);
  assert.equal(c.lagS, [7, (22 + 23 + 24 + 25 + 26 + 27 + 28 + 29) / 8], "the mean of the 8 lags present");
  assert.equal(c.divergence, [null, 0.01], "a bucket with no value at all stays null");
});

test("the chart's series: coarse points before the fine tier, then the fine tier; gaps marked", () => {
  const h = new DashboardHistory({ fineCapacity: 60 });
  for (let i = 0; i < 300; i++) h.sample("orders", point(T0 + i * 1000, 0.2));
  const s = h.get("orders");
  const fine = h.tier("orders", "fine");
  assert.is(s.t.length - s.fineFrom, 60, "the whole fine tier");
  assert.equal(s.t.slice(s.fineFrom), fine.t);
  assert.ok(s.fineFrom > 0, "some coarse points");
  assert.ok(s.t[s.fineFrom - 1]! + 15_000 <= fine.t[0]!, "the coarse points end where the fine tier starts");
  for (let i = 1; i < s.t.length; i++) assert.ok(s.t[i]! > s.t[i - 1]!, "ascending");
  assert.ok(s.risk.every((v) => v === 0.2));

  // Ten minutes without samples (a controller restart): a null point between the two runs.
  h.sample("orders", point(T0 + 900_000, 0.3));
  const g = h.get("orders");
  const at = g.t.indexOf(T0 + 900_000);
  assert.is(g.risk[at - 1], null, "a gap before the point after the pause");
  assert.is(g.risk[at], 0.3);
  assert.equal(h.get("unknown").t, []);
});

test("save then load restores the same series, and the open bucket continues", () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, FILE_NAME);
    const a = new DashboardHistory({ file });
    const b = new DashboardHistory(); // never saved: what a run without a restart has
    const sampleBoth = (p: HistoryPoint) => { a.sample("orders", p); b.sample("orders", p); };
    for (let i = 0; i < 1207; i++) sampleBoth(point(T0 + i * 1000, Math.round(Math.sin(i / 50) * 5000 + 5000) / 10_000, { divergence: i % 7 ? 0 : 0.0123, lagS: i % 3 ? 1.234 : null }));
    a.sample("payments", point(T0, 0.9));
    assert.ok(a.save());
    const saved = JSON.parse(readFileSync(file, "utf8"));
    assert.is(saved.version, 1);
    assert.equal(Object.keys(saved.components).sort(), ["orders", "payments"]);

    const { log, warnings } = recorder();
    const c = DashboardHistory.open({ stateDir: dir, log, components: ["orders"] });
    assert.equal(warnings, []);
    assert.equal(c.components(), ["orders"], "a component no longer configured is dropped");
    assert.equal(c.get("orders"), a.get("orders"));
    assert.equal(c.tier("orders", "fine"), a.tier("orders", "fine"));
    assert.equal(c.tier("orders", "coarse"), a.tier("orders", "coarse"));
    // The bucket open at the save is rebuilt from the fine points: it closes with the same mean.
    for (let i = 1207; i < 1240; i++) { c.sample("orders", point(T0 + i * 1000, 0.4)); b.sample("orders", point(T0 + i * 1000, 0.4)); }
    assert.equal(c.tier("orders", "coarse"), b.tier("orders", "coarse"));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("a corrupt or missing file loads as empty with a warning; never throws", () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, FILE_NAME);
    const missing = recorder();
    const m = DashboardHistory.open({ stateDir: dir, log: missing.log });
    assert.equal(m.components(), []);
    assert.equal(missing.warnings, [], "a first start has no file: no warning");
    assert.is(missing.infos.length, 1);

    for (const [body, why] of [
      ["{\"version\":1,\"coarseStepMs\":15000,\"components\":{\"orders\":{\"fine\":{\"t\":[1,2]", /not JSON/],
      [JSON.stringify({ version: 1, coarseStepMs: 15_000, components: { orders: { fine: { t: [1, 2], risk: [0.1], probability: [0, 0], shadowPercent: [0, 0], lagS: [0, 0], divergence: [0, 0] }, coarse: { t: [], risk: [], probability: [], shadowPercent: [], lagS: [], divergence: [] } } } }), /components\.orders\.fine\.risk/],
      [JSON.stringify({ version: 1, coarseStepMs: 15_000, components: { orders: { fine: { t: [2, 1] } } } }), /not ascending/],
      [JSON.stringify({ version: 7, components: {} }), /version/],
      ["[]", /not a JSON object/],
    ] as const) {
      writeFileSync(file, body);
      const r = recorder();
      const h = DashboardHistory.open({ stateDir: dir, log: r.log });
      assert.equal(h.components(), [], "empty");
      assert.is(r.warnings.length, 1, "one warning");
      assert.match(r.warnings[0]!, why);
      assert.match(r.warnings[0]!, /starts empty/);
      h.sample("orders", point(T0, 0.1));
      assert.is(h.get("orders").t.length, 1, "and it works from there");
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("saves at most every 60 s; without a stateDir nothing is written", () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, FILE_NAME);
    const h = DashboardHistory.open({ stateDir: dir, log: recorder().log });
    h.sample("orders", point(T0, 0.1));
    h.saveIfDue(T0);
    assert.not.ok(exists(file), "the first call starts the period");
    h.saveIfDue(T0 + SAVE_EVERY_MS - 1);
    assert.not.ok(exists(file));
    h.saveIfDue(T0 + SAVE_EVERY_MS);
    assert.ok(exists(file), "saved once the period passed");
    assert.not.ok(exists(`${file}.tmp`), "through a temporary file, renamed");

    const none = DashboardHistory.open({ stateDir: null, log: recorder().log });
    none.sample("orders", point(T0, 0.1));
    assert.is(none.save(), false);
    none.saveIfDue(T0 + 10 * SAVE_EVERY_MS);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("a clock that goes back drops the newer points instead of drawing backwards", () => {
  const h = new DashboardHistory();
  for (let i = 0; i < 40; i++) h.sample("orders", point(T0 + i * 1000, 0.1));
  h.sample("orders", point(T0 + 20_500, 0.2));
  const fine = h.tier("orders", "fine");
  assert.is(fine.t[fine.t.length - 1], T0 + 20_500);
  assert.is(fine.t.length, 22);
  const s = h.get("orders");
  for (let i = 1; i < s.t.length; i++) assert.ok(s.t[i]! > s.t[i - 1]!);
  // Bucket 1 (15-30 s) now holds 15..20 at 0.1 and 20.5 at 0.2; it closes with their mean.
  h.sample("orders", point(T0 + 31_000, 0.1));
  const c = h.tier("orders", "coarse");
  assert.equal(c.t, [T0, T0 + 15_000]);
  assert.equal(c.risk, [0.1, Math.round(((0.1 * 6 + 0.2) / 7) * 1e4) / 1e4]);
});

function exists(f: string): boolean { try { statSync(f); return true; } catch { return false; } }

test.run();
