// The pure reconciler driven by generated histories (fast-check, fixed seeds) on the simulated pair of
// test/support/migration-world.ts: risk, lag, error rates and latencies that wander; publishes ACKed,
// left pending or NACKed; fences and promotions that succeed, fail or hang; a primary that dies,
// comes back, or is cut off (its fence unanswered, with or without STONITH); leases enforced or not;
// operator commands at any time; and restarts, where the status goes through JSON and the store's
// own validation before the next pass. Whatever happens: never two sides accept writes (the world's
// model of fences, promotions and leases), every status the reconciler returns is one the state
// store accepts back, weights and the mirror stay in range, the epoch never goes back, and Paused
// and its reason come together. Scenario tests (reconcile, emergency) pin the behaviour; this one
// looks for histories nobody wrote down; it found a stale pause (Pass.enter now clears it), pinned in
// reconcile.test.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { MigrationWorld, PRIMARY_DEAD, PRIMARY_OK, testPolicy } from "../support/migration-world.js";
import { checkRecord } from "../../controller/migration/store.js";
import { TOTAL_WEIGHT } from "../../controller/xds/resources.js";
import type { Command, CommandKind, MigrationStatus } from "../../controller/migration/reconcile.js";

/** FC_RUNS raises the run count (FC_SEED another seed), as for the other property tests. */
const RUNS = Number(process.env.FC_RUNS ?? 150);
const COMMANDS: readonly CommandKind[] = ["pause", "resume", "approve", "promote", "rollback"];
/** One stretch of a history: what changes, then how many seconds pass. */
const stretch = fc.record({
  risk: fc.option(fc.constantFrom(0, 0.1, 0.45, 0.55, 0.8, 1), { nil: undefined }),
  shadowRisk: fc.option(fc.constantFrom(null, 0, 0.3, 0.9), { nil: undefined }),
  lagS: fc.option(fc.constantFrom(null, 0, 0.2, 3, 60), { nil: undefined }),
  shadowErrorRate: fc.option(fc.constantFrom(0, 0.001, 0.05, 0.5), { nil: undefined }),
  primaryErrorRate: fc.option(fc.constantFrom(0, 0.001, 0.05, 0.5), { nil: undefined }),
  shadowLatencyMs: fc.option(fc.constantFrom(5, 10, 80), { nil: undefined }),
  ack: fc.option(fc.constantFrom("acked" as const, "acked" as const, "pending" as const, "nacked" as const), { nil: undefined }),
  actionResult: fc.option(fc.constantFrom("ok" as const, "ok" as const, "failed" as const, "pending" as const), { nil: undefined }),
  primary: fc.option(fc.constantFrom("ok", "dead", "cut-off", "unknown"), { nil: undefined }),
  stonith: fc.option(fc.boolean(), { nil: undefined }),
  drainsWhenFenced: fc.option(fc.boolean(), { nil: undefined }),
  command: fc.option(fc.record({ kind: fc.constantFrom(...COMMANDS), nextStep: fc.boolean() }), { nil: undefined, freq: 6 }),
  restart: fc.boolean(),
  seconds: fc.integer({ min: 1, max: 20 }),
});
const history = fc.record({ leaseEnforced: fc.boolean(), leaseMs: fc.constantFrom(0, 10_000), manualGates: fc.boolean(), stretches: fc.array(stretch, { minLength: 1, maxLength: 40 }) });

/** The status as the store keeps it: through JSON, then its validation (which throws naming the field). */
function stored(s: MigrationStatus, where: string): MigrationStatus {
  const rec = checkRecord({ t: "status", status: JSON.parse(JSON.stringify(s)) }, where);
  if (rec.t !== "status") throw new Error(`${where}: not a status`);
  return rec.status;
}

function check(w: MigrationWorld, where: string, epoch: number): number {
  const s = w.status;
  assert.ok(w.maxWriters <= 1, `${where}: two sides accepted writes (phase ${s.phase}, ${s.message})`);
  stored(s, where);
  for (const e of w.events.slice(-50)) checkRecord({ t: "event", event: JSON.parse(JSON.stringify(e)) }, `${where}: event`);
  assert.ok(s.shadowWeightBp >= 0 && s.shadowWeightBp <= TOTAL_WEIGHT, `${where}: shadow weight ${s.shadowWeightBp}`);
  assert.ok(s.mirrorFraction >= 0 && s.mirrorFraction <= 1, `${where}: mirror ${s.mirrorFraction}`);
  assert.ok((s.epoch ?? 1) >= epoch, `${where}: epoch ${s.epoch} after ${epoch}`);
  assert.is(s.phase === "Paused", s.paused !== null, `${where}: phase ${s.phase} with paused ${JSON.stringify(s.paused)}`);
  for (const a of w.actions.slice(-20)) if (a.kind === "publish") assert.ok(a.shadowWeightBp >= 0 && a.shadowWeightBp <= TOTAL_WEIGHT && a.mirrorFraction >= 0 && a.mirrorFraction <= 1, `${where}: publish ${JSON.stringify(a)}`);
  return s.epoch ?? 1;
}

type History = typeof history extends fc.Arbitrary<infer T> ? T : never;

function replay(h: History): MigrationWorld {
  const p = testPolicy((q) => {
    q.promotion.leaseMs = h.leaseMs;
    if (h.manualGates) q.gates = { approveFirstStep: true, approveFull: true };
  });
  const w = new MigrationWorld(p);
  w.leaseMs = h.leaseMs;
  w.leaseEnforced = h.leaseEnforced;
  w.knobs.health = PRIMARY_OK;
  let epoch = 1;
  h.stretches.forEach((st, i) => {
    const k = w.knobs;
    if (st.risk !== undefined) { k.risk = st.risk; k.primaryRisk = st.risk; }
    if (st.shadowRisk !== undefined) k.shadowRisk = st.shadowRisk;
    if (st.lagS !== undefined) k.lagS = st.lagS;
    if (st.shadowErrorRate !== undefined) k.shadowErrorRate = st.shadowErrorRate;
    if (st.primaryErrorRate !== undefined) k.primaryErrorRate = st.primaryErrorRate;
    if (st.shadowLatencyMs !== undefined) k.shadowLatencyMs = st.shadowLatencyMs;
    if (st.ack !== undefined) { k.ack = st.ack; k.nackError = "rejected by the test"; w.reanswer(); }
    if (st.actionResult !== undefined) k.actionResult = st.actionResult;
    if (st.stonith !== undefined) k.stonith = st.stonith;
    if (st.drainsWhenFenced !== undefined) k.drainsWhenFenced = st.drainsWhenFenced;
    if (st.primary === "ok") { k.health = PRIMARY_OK; k.primaryReachable = true; }
    if (st.primary === "dead") { k.health = PRIMARY_DEAD; k.primaryReachable = false; }
    if (st.primary === "cut-off") { k.health = { ...PRIMARY_OK, requests: 0 }; k.primaryReachable = false; }
    if (st.primary === "unknown") k.health = null;
    if (st.restart) w.status = stored(w.status, `stretch ${i}: restart`);
    const commands: Command[] = st.command ? [{ kind: st.command.kind, by: "model-test", ...(st.command.kind === "promote" ? { nextStep: st.command.nextStep } : {}) }] : [];
    w.tick(commands);
    epoch = check(w, `stretch ${i} (${JSON.stringify(st)})`, epoch);
    for (let s = 1; s < st.seconds; s++) { w.tick(); epoch = check(w, `stretch ${i}, second ${s}`, epoch); }
  });
  return w;
}

test("generated histories: never two writers, every status storable, weights in range, the epoch never goes back", () => {
  let promoted = 0, failovers = 0, paused = 0;
  fc.assert(fc.property(history, (h) => {
    const w = replay(h);
    if (w.actions.some((a) => a.kind === "promote")) promoted++;
    if (w.phases.includes("Failover")) failovers++;
    if (w.phases.includes("Paused")) paused++;
  }), { numRuns: RUNS, seed: Number(process.env.FC_SEED ?? 23) });
  // The histories reach the paths that matter, or the property says little (at the default 150 runs:
  // 14 promoted, and more failed over and paused; 600 runs at seeds 1-5 promoted 64-100).
  assert.ok(promoted >= RUNS / 15, `only ${promoted} of ${RUNS} histories promoted the shadow`);
  assert.ok(failovers >= RUNS / 15, `only ${failovers} of ${RUNS} histories failed over`);
  assert.ok(paused >= RUNS / 15, `only ${paused} of ${RUNS} histories paused`);
});

test.run();
