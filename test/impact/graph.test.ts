// The impact analysis's service graph (controller/impact/graph.ts): decayed rates over irregular
// windows, a dozen-service mesh rebuilt exactly from its windows, error propagation measured where it
// exists (and not where it does not), the callers bound (a property: counts conserved in "other"), the
// nodes bound and expiry, and persistence (round trip, a corrupted file refused naming the field).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceGraph, loadGraph, saveGraph, type EdgeDelta } from "../../controller/impact/graph.js";
import { mulberry32 } from "../support/random.js";

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
const d = (caller: string, callee: string, requests: number, errors = 0, latencyMsSum = 0): EdgeDelta => ({ caller, callee, requests, errors, latencyMsSum });
const edgeOf = (g: ServiceGraph, caller: string, callee: string) => g.snapshot().edges.find((e) => e.caller === caller && e.callee === callee);

test("rates are decayed by the elapsed time, windows weighted by their length", () => {
  const g = new ServiceGraph({ halfLifeMs: 60_000 });
  g.observe(10_000, 10_000, [d("a", "b", 100, 10, 500)]);
  let e = edgeOf(g, "a", "b")!;
  assert.ok(close(e.rps, 10)); assert.ok(close(e.errorRatio, 0.1)); assert.ok(close(e.meanLatencyMs!, 5));
  // One half-life later a 60 s window: seconds 10·½ + 60 = 65, requests 100·½ + 120 = 170.
  g.observe(70_000, 60_000, [d("a", "b", 120, 0, 1200)]);
  e = edgeOf(g, "a", "b")!;
  assert.ok(close(e.rps, 170 / 65), String(e.rps));
  assert.ok(close(e.errorRatio, 5 / 170));
  assert.ok(close(e.meanLatencyMs!, (250 + 1200) / 170));
  // A window without traffic: seconds 32.5 + 60, requests 85.
  g.observe(130_000, 60_000, []);
  e = edgeOf(g, "a", "b")!;
  assert.ok(close(e.rps, 85 / 92.5), String(e.rps));
  assert.is(e.lastSeenMs, 70_000);
  const b = g.snapshot().nodes.find((n) => n.name === "b")!;
  assert.ok(close(b.inboundRps, 85 / 92.5));
  assert.equal([b.isCallee, b.isCaller, b.callers], [true, false, 1]);
});

test("a constant rate stays exact through irregular windows and gaps", () => {
  const g = new ServiceGraph({ halfLifeMs: 30_000 });
  let t = 0;
  for (const [len, gap] of [[1_000, 0], [7_000, 0], [30_000, 45_000], [2_000, 0], [90_000, 600_000], [3_000, 0]] as const) {
    t += len + gap;
    g.observe(t, len, [d("x", "y", (4 * len) / 1000)]);
    assert.ok(close(edgeOf(g, "x", "y")!.rps, 4), `after a ${len} ms window`);
  }
});

// The mesh: three entry callers (web, mobile, cron) and nine services; rates per second.
const MESH: [string, string, number][] = [
  ["web", "gateway", 200], ["mobile", "gateway", 100],
  ["gateway", "catalog", 300], ["gateway", "cart", 150], ["gateway", "checkout", 30], ["gateway", "recommendations", 300],
  ["checkout", "payments", 30], ["checkout", "orders", 30], ["checkout", "inventory", 30], ["cart", "inventory", 150],
  ["orders", "db", 62], ["cron", "orders", 1],
];
/** One 10 s window of the mesh: payments' errors make checkout fail; gateway falls back on recommendations' errors. */
function meshWindow(rand: () => number): EdgeDelta[] {
  const payErr = rand() * 0.3, recErr = rand() * 0.3, gwErr = rand() * 0.05;
  return MESH.map(([caller, callee, rps]) => {
    const n = rps * 10;
    const ratio = callee === "payments" ? payErr : callee === "recommendations" ? recErr : callee === "gateway" ? gwErr : callee === "checkout" ? payErr : 0;
    return d(caller, callee, n, Math.round(n * ratio), n * 3);
  });
}

test("a dozen-service mesh: the edges match the dependencies exactly", () => {
  const g = new ServiceGraph();
  const rand = mulberry32(7);
  for (let w = 1; w <= 40; w++) g.observe(w * 10_000, 10_000, meshWindow(rand));
  const s = g.snapshot();
  assert.equal(s.edges.map((e) => `${e.caller}->${e.callee}`).sort(), MESH.map(([a, b]) => `${a}->${b}`).sort());
  for (const [a, b, rps] of MESH) assert.ok(close(edgeOf(g, a, b)!.rps, rps), `${a}->${b}`);
  assert.is(s.nodes.length, 12);
  const node = (n: string) => s.nodes.find((x) => x.name === n)!;
  assert.equal([node("web").isCaller, node("web").isCallee], [true, false]);
  assert.equal([node("checkout").isCaller, node("checkout").isCallee], [true, true]);
  assert.ok(close(node("inventory").inboundRps, 180));
  assert.ok(close(node("orders").inboundRps, 31));
});

test("error propagation: ~1 where the callee's errors fail the caller, ~0 where they never do, null before enough windows", () => {
  const g = new ServiceGraph(); // minWindows 30
  const rand = mulberry32(11);
  for (let w = 1; w <= 20; w++) g.observe(w * 10_000, 10_000, meshWindow(rand));
  assert.is(edgeOf(g, "checkout", "payments")!.propagation, null);
  assert.ok(edgeOf(g, "checkout", "payments")!.samples > 19);
  for (let w = 21; w <= 80; w++) g.observe(w * 10_000, 10_000, meshWindow(rand));
  const pay = edgeOf(g, "checkout", "payments")!, rec = edgeOf(g, "gateway", "recommendations")!;
  assert.ok(pay.propagation !== null && pay.propagation > 0.95, `checkout->payments ${pay.propagation}`);
  assert.ok(rec.propagation !== null && rec.propagation < 0.1, `gateway->recommendations ${rec.propagation}`);
  assert.ok(pay.samples > 78 && pay.samples < 80, String(pay.samples)); // 80 windows, the oldest decayed by up to 13 min of a 6 h half-life
  // orders never errs (var(x) = 0): no estimate; entry callers are not callees: no estimate.
  assert.is(edgeOf(g, "checkout", "orders")!.propagation, null);
  assert.is(edgeOf(g, "web", "gateway")!.propagation, null);
  assert.is(edgeOf(g, "web", "gateway")!.samples, 0);
});

test("bounded callers: at most maxCallersPerNode per callee, the folded requests kept in \"other\" (property)", () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 12 }),
    fc.array(fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 60 }), { minLength: 1, maxLength: 6 }),
    fc.array(fc.integer({ min: 1_000, max: 120_000 }), { minLength: 6, maxLength: 6 }),
    (max, windows, gaps) => {
      const hl = 60_000;
      const g = new ServiceGraph({ maxCallersPerNode: max, halfLifeMs: hl });
      let t = 0, req = 0, secs = 0;
      windows.forEach((w, i) => {
        const dt = gaps[i]!;
        t += dt;
        const f = i === 0 ? 1 : Math.pow(2, -dt / hl);
        req *= f; secs = secs * f + 10;
        const deltas = w.map(([c, n]) => d(`c${c}`, "svc", n, 0, 0));
        for (const x of deltas) req += x.requests;
        g.observe(t, 10_000, deltas);
      });
      const s = g.snapshot();
      const inbound = s.edges.filter((e) => e.callee === "svc");
      if (inbound.length > max) return false;
      const rps = inbound.reduce((a, e) => a + e.rps, 0);
      return close(rps, req / secs, 1e-9) && s.nodes.every((n) => n.name !== "other");
    },
  ), { numRuns: 200, seed: 42 });
});

test("bounded nodes: caller-only nodes fold into \"other\" first; stale edges expire", () => {
  const g = new ServiceGraph({ maxNodes: 5, expireAfterMs: 60_000 });
  g.observe(1_000, 1_000, [d("a", "b", 10), d("b", "c", 10), d("x1", "c", 1), d("x2", "c", 2), d("x3", "c", 30)]);
  let s = g.snapshot();
  assert.is(s.nodes.length, 5);
  assert.equal(s.nodes.map((n) => n.name), ["a", "b", "c", "x2", "x3"]);
  assert.ok(close(edgeOf(g, "other", "c")!.rps, 1));
  assert.is(g.counters.foldedEdges, 1);
  g.observe(30_000, 1_000, [d("a", "b", 10)]);
  g.observe(70_000, 1_000, [d("a", "b", 10)]);
  s = g.snapshot();
  assert.equal(s.edges.map((e) => `${e.caller}->${e.callee}`), ["a->b"]);
  assert.equal(s.nodes.map((n) => n.name), ["a", "b"]);
  assert.is(g.counters.expiredEdges, 4);
  // Only callees left past the bound: the lowest-inbound one is dropped, its calls folded into "other".
  const h = new ServiceGraph({ maxNodes: 2 });
  h.observe(1_000, 1_000, [d("a", "b", 50), d("b", "c", 5), d("c", "d", 20)]);
  const t = h.snapshot();
  assert.equal(t.nodes.map((n) => n.name), ["b", "d"]);
  assert.equal(t.edges.map((e) => `${e.caller}->${e.callee}:${e.rps}`), ["other->b:50", "other->d:20"]);
  assert.is(h.counters.droppedNodes, 1);
});

test("bad windows are refused naming the field", () => {
  const g = new ServiceGraph();
  g.observe(10_000, 10_000, []);
  assert.throws(() => g.observe(5_000, 1_000, []), /^atMs: goes back/);
  assert.throws(() => g.observe(20_000, 0, []), /^windowMs: must be a finite number > 0 \(got 0\)/);
  assert.throws(() => g.observe(20_000, 1_000, [d("a", "b", 1), d("a", "b", 1, 2)]), /^edges\[1\]\.errors: more than requests/);
  assert.throws(() => g.observe(20_000, 1_000, [d("a", "other", 1)]), /^edges\[0\]\.callee: "other"/);
  assert.throws(() => g.observe(20_000, 1_000, [d("a", "b", NaN)]), /^edges\[0\]\.requests: .*got NaN/);
  assert.throws(() => new ServiceGraph({ maxCallersPerNode: 0 }), /options\.maxCallersPerNode/);
  assert.is(g.snapshot().edges.length, 0); // nothing half-applied
});

test("persistence: a round trip keeps the snapshot; a corrupted file is refused naming the field", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "impact-graph-"));
  try {
    const g = new ServiceGraph({ maxCallersPerNode: 8 });
    const rand = mulberry32(3);
    for (let w = 1; w <= 50; w++) g.observe(w * 10_000, 10_000, meshWindow(rand));
    const file = path.join(dir, "impact-graph.json");
    assert.is(loadGraph(file), null);
    saveGraph(file, g);
    const back = loadGraph(file)!;
    const a = g.snapshot(), b = back.snapshot();
    assert.is(b.atMs, a.atMs);
    assert.is(b.edges.length, a.edges.length);
    a.edges.forEach((e, i) => {
      const f = b.edges[i]!;
      assert.equal([f.caller, f.callee, f.lastSeenMs], [e.caller, e.callee, e.lastSeenMs]);
      assert.ok(close(f.rps, e.rps) && close(f.errorRatio, e.errorRatio) && close(f.samples, e.samples));
      assert.ok(f.propagation === e.propagation || close(f.propagation!, e.propagation!, 1e-6), `${e.caller}->${e.callee}`);
    });
    assert.is(back.options.maxCallersPerNode, 8);
    // It goes on from where it was: the same next window gives the same rates.
    const next = meshWindow(mulberry32(9));
    g.observe(510_000, 10_000, next); back.observe(510_000, 10_000, next);
    assert.ok(close(edgeOf(back, "gateway", "cart")!.rps, edgeOf(g, "gateway", "cart")!.rps));

    const raw = JSON.parse(readFileSync(file, "utf8"));
    raw.edges[1].requests = "many";
    writeFileSync(file, JSON.stringify(raw));
    assert.throws(() => loadGraph(file), (e: Error) => e.message.startsWith(`${file}: edges[1].requests: `) && /got "many"/.test(e.message));
    raw.edges[1].requests = 5; raw.edges[0].bogus = 1;
    writeFileSync(file, JSON.stringify(raw));
    assert.throws(() => loadGraph(file), (e: Error) => e.message === `${file}: edges[0].bogus: unknown field`);
    delete raw.edges[0].bogus; raw.edges[2] = { ...raw.edges[3] };
    writeFileSync(file, JSON.stringify(raw));
    assert.throws(() => loadGraph(file), /edges\[3\]: duplicate edge/);
    writeFileSync(file, "{\"version\":1,");
    assert.throws(() => loadGraph(file), /not valid JSON/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test.run();
