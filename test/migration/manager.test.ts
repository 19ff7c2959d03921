// The migration shell over fakes for every seam (router, metric source, actions, clock) and the real
// file store: state is on disk before the routes change, a restart mid-shift resumes at the same step
// with the same weights (re-published, not advanced), a torn journal tail is survived, and a NACK
// reported by the router pauses the migration with the proxy's error.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, appendFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ManualClock, wallMs } from "../../host/clock.js";
import { silentLogger } from "../../controller/log.js";
import { FakeTrafficRouter } from "../support/fake-router.js";
import { DEFAULT_POLICY, type Policy } from "../../controller/migration/policy.js";
import { MigrationManager } from "../../controller/migration/manager.js";
import { FakeActions } from "../support/fake-actions.js";
import { FileStateStore, StateStoreError, type StateStore } from "../../controller/migration/store.js";
import { initialStatus, type MigrationStatus } from "../../controller/migration/reconcile.js";
import { FakeInputSource } from "../support/migration-world.js";

function policy(): Policy {
  const p = structuredClone(DEFAULT_POLICY);
  p.steps = p.steps.map((s) => ({ ...s, bakeMs: 10_000 }));
  p.risk.enterForMs = 5_000;
  return p;
}

/** Runs `fn` with a fresh state directory, removed afterwards. */
async function inStateDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-state-"));
  try { await fn(dir); } finally { rmSync(dir, { recursive: true }); }
}

function rig(dir: string, clock = new ManualClock()) {
  const router = new FakeTrafficRouter();
  const inputs = new FakeInputSource();
  const actions = new FakeActions();
  const store = new FileStateStore(dir);
  const m = new MigrationManager({ clock, router, store, inputs, actions, policies: new Map([["orders", policy()]]), log: silentLogger() });
  return { m, router, inputs, actions, store, clock };
}

/** One second of controller time: the tick, then the promise callbacks (ACKs, action results). */
async function second(r: ReturnType<typeof rig>, n = 1) {
  for (let i = 0; i < n; i++) {
    r.clock.advance(1000);
    r.m.tick();
    await new Promise((res) => setImmediate(res));
  }
}

function onDisk(dir: string): MigrationStatus {
  const lines = readFileSync(path.join(dir, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  return lines.filter((l) => l.t === "status").at(-1).status;
}

test("the status is on disk before the routes change", async () => {
  await inStateDir(async (dir) => {
    const r = rig(dir);
    r.m.start();
    const seen: number[] = [];
    const setRoutes = r.router.setRoutes.bind(r.router);
    r.router.setRoutes = (c, routes) => { seen.push(onDisk(dir).shadowWeightBp - routes.weights.shadow); return setRoutes(c, routes); };
    await second(r, 10);
    r.inputs.knobs.risk = 0.9;
    await second(r, 120);
    assert.ok(seen.length >= 4, `routes were published (${seen.length})`);
    assert.ok(seen.every((d) => d === 0), "each publish found its own weight already stored");
  });
});

test("a restart mid-shift resumes at the same step with the same weights, without advancing", async () => {
  await inStateDir(async (dir) => {
    const a = rig(dir);
    a.m.start();
    await second(a, 10);
    a.inputs.knobs.risk = 0.9;
    for (let i = 0; i < 300 && !(a.m.get("orders").status.stepIndex === 2 && a.m.get("orders").status.stepSinceMs !== null); i++) await second(a);
    await second(a, 3); // into the bake of step 3
    const before = a.m.get("orders").status;
    assert.is(before.phase, "Shifting");
    assert.is(before.shadowWeightBp, 2500);
    a.store.close(); // the process dies here

    const b = rig(dir, a.clock);
    b.inputs.knobs.risk = 0.9;
    b.m.start();
    const first = b.router.calls[0]!;
    assert.equal(first.value, { weights: { primary: 7500, shadow: 2500 }, mirrorFraction: before.mirrorFraction, writeTarget: "primary", shadowFit: before.shadowFit, holdWrites: null, pauseWritesMs: 0 }, "re-published what it had");
    const after = b.m.get("orders").status;
    assert.is(after.stepIndex, 2);
    assert.is(after.stepSinceMs, before.stepSinceMs, "the bake continues from where it was");
    assert.ok(b.m.events("orders").some((e) => /controller restarted: resuming Shifting at step 3/.test(e.message)));
    await second(b, 2);
    assert.is(b.router.calls.length, 1, "nothing moved before the bake was over");
    await second(b, 10);
    assert.is(b.router.calls.at(-1)!.value && (b.router.calls.at(-1)!.value as { weights: { shadow: number } }).weights.shadow, 5000, "then it carries on to step 4");
  });
});

test("after a restart nothing advances until a proxy confirmed the stored routes, and a re-run action is timed from the restart", async () => {
  await inStateDir(async (dir) => {
    const a = rig(dir);
    a.m.start();
    await second(a, 10);
    a.inputs.knobs.risk = 0.9;
    for (let i = 0; i < 300 && !(a.m.get("orders").status.stepIndex === 1 && a.m.get("orders").status.stepSinceMs !== null); i++) await second(a);
    a.store.close();

    const b = rig(dir, a.clock);
    b.inputs.knobs.risk = 0.9;
    // No proxy has reconnected: verify answers "every proxy ACKed" of none.
    b.router.nextVerify = (version) => ({ version, ok: true, acked: [], nacked: [], pending: [], superseded: false });
    b.m.start();
    await second(b, 60);
    assert.is(b.router.calls.length, 1, "only the re-published stored routes: no step while no proxy is back");
    assert.match(b.m.get("orders").status.blockedReason ?? "", /waiting for every proxy to ACK: re-publish the stored routes after a restart/);
    b.router.nextVerify = (version) => ({ version, ok: true, acked: ["back"], nacked: [], pending: [], superseded: false });
    await second(b, 30);
    assert.ok(b.router.calls.length > 1, "a proxy confirmed: the migration goes on");
  });
  // The promote was in flight when the controller died; the restart takes longer than the action timeout.
  await inStateDir(async (dir) => {
    const a = rig(dir);
    const st = { ...initialStatus("orders", 0), phase: "Shifting" as const, stepIndex: 4, shadowWeightBp: 10_000, fenced: "primary" as const, promotion: { stage: "promote" as const, sinceMs: 0 }, pendingAction: { id: "orders/9/promote/0", kind: "promote" as const, side: "shadow" as const, sinceMs: 0 } };
    a.store.save(st, []);
    a.store.close();
    const b = rig(dir, a.clock);
    a.clock.advance(60_000); // far past actionTimeout (30 s) since the action started
    let answer: () => void = () => {};
    b.actions.run = (component, kind, side) => { b.actions.calls.push({ component, kind, side }); return kind === "promote" ? new Promise<void>((res) => { answer = res; }) : Promise.resolve(); };
    b.m.start();
    await second(b, 2);
    assert.is(b.m.get("orders").status.pendingAction?.kind, "promote", "still waiting for the re-run promote, not timed out");
    answer();
    await second(b, 3);
    assert.not.match(b.m.events("orders").map((e) => e.message).join(" | "), /timed out/);
    assert.ok(b.m.events("orders").some((e) => /promote shadow: done/.test(e.message)));
  });
});

test("a torn last journal line is dropped with a warning; a corrupt line in the middle is an error naming it", async () => {
  await inStateDir(async (dir) => {
    const s1 = new FileStateStore(dir);
    s1.load();
    const st: MigrationStatus = { ...initialStatus("orders", 0), phase: "AtRisk" }; // a whole status: records are validated on load
    s1.save(st, []);
    s1.close();
    appendFileSync(path.join(dir, "journal.jsonl"), '{"t":"status","status":{"compo');
    const s2 = new FileStateStore(dir);
    assert.is(s2.load().statuses.get("orders")!.phase, "AtRisk");
    assert.match(s2.warnings[0]!, /journal.jsonl:2: torn last record dropped/);
    s2.close();
    appendFileSync(path.join(dir, "journal.jsonl"), 'garbage\n{"t":"status","status":{"component":"x"}}\n');
    const s3: StateStore = new FileStateStore(dir);
    assert.throws(() => s3.load(), (e: unknown) => e instanceof StateStoreError && /journal.jsonl:1: not valid JSON/.test((e as Error).message));
  });
});

test("a NACK from the proxies pauses with their error; resume publishes again", async () => {
  await inStateDir(async (dir) => {
    const r = rig(dir);
    r.m.start();
    await second(r, 10);
    r.inputs.knobs.risk = 0.9;
    for (let i = 0; i < 300 && r.m.get("orders").status.stepIndex < 1; i++) await second(r);
    r.router.nextVerify = (version) => ({ version, ok: false, acked: ["a"], nacked: [{ node: "b", type: "RouteConfiguration", error: "weights must add up" }], pending: [], superseded: false });
    for (let i = 0; i < 60 && r.m.get("orders").status.phase !== "Paused"; i++) await second(r);
    const st = r.m.get("orders").status;
    assert.is(st.phase, "Paused");
    assert.match(st.paused!.reason, /NACK.*b \(RouteConfiguration\): weights must add up/);
    assert.ok(r.m.counters.nacks >= 1);
    const published = r.router.calls.length;
    r.router.nextVerify = (version) => ({ version, ok: true, acked: ["a", "b"], nacked: [], pending: [], superseded: false });
    const res = r.m.command("orders", { kind: "resume", by: "ops" });
    assert.ok(res.accepted);
    assert.is(r.router.calls.length, published + 1);
  });
});

test("the drain after a fence reads the lag at once and promotes on it; without a probe it waits for the next reading", async () => {
  for (const withProbe of [true, false]) await inStateDir(async (dir) => {
    const clock = new ManualClock();
    // The write move's fence is in flight (re-run at the start): the drain begins once it is done.
    const st = { ...initialStatus("orders", 0), phase: "Shifting" as const, stepIndex: 4, shadowWeightBp: 10_000, promotion: { stage: "fence" as const, sinceMs: 0 }, pendingAction: { id: "orders/9/fence/0", kind: "fence" as const, side: "primary" as const, sinceMs: 0 } };
    const seed = new FileStateStore(dir);
    seed.save(st, []);
    seed.close();
    const inputs = new FakeInputSource();
    inputs.knobs.risk = 0.9;
    inputs.knobs.lagS = 0;
    let measuredAt = wallMs(clock) - 500; // the last scheduled reading: 0, but from before the fence
    inputs.knobs.lagMeasuredAt = () => measuredAt;
    const probed: number[] = [];
    const lag = { measureLag: async (component: string) => { assert.is(component, "orders"); probed.push(wallMs(clock)); measuredAt = wallMs(clock); return 1; } };
    const actions = new FakeActions();
    const m = new MigrationManager({ clock, router: new FakeTrafficRouter(), store: new FileStateStore(dir), inputs, actions, policies: new Map([["orders", policy()]]), log: silentLogger(), ...(withProbe ? { lag } : {}) });
    m.start();
    await new Promise((res) => setImmediate(res)); // the re-run fence is answered
    clock.advance(1000);
    const drainAt = wallMs(clock);
    m.tick(); // the fence is done: the drain begins
    await new Promise((res) => setImmediate(res));
    const promoted = actions.calls.some((c) => c.kind === "promote");
    if (withProbe) {
      assert.equal(probed, [drainAt], "one read, as the drain began");
      assert.ok(promoted, "promoted on that reading, without waiting for a tick");
      assert.is(m.get("orders").status.promotion?.stage, "promote");
    } else {
      assert.not.ok(promoted, "no promote on the reading from before the fence");
      assert.match(m.get("orders").status.blockedReason ?? "", /waiting for a replication lag reading measured after the fence/);
    }
  });
});

test.run();
