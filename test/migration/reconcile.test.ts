// The pure migration reconciler against a simulated component: the full walk there and back,
// rollback on a failed step, no oscillation on a flapping risk, preflight blocked by lag, NACK and
// inconclusive pauses, gates, and the promotion's ordering (never two writers). Manual time only.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_POLICY, type Policy } from "../../controller/migration/policy.js";
import { MigrationWorld, testPolicy } from "../support/migration-world.js";

/** The test policy, restoring after a 60 s cool-down. */
const policy = (over: (p: Policy) => void = () => {}): Policy => testPolicy((p) => { p.recovery = { mode: "restore", coolDownMs: 60_000, maxReplicationLagS: 2 }; over(p); });

const by = "test";

/** Ten healthy seconds (so a baseline is captured), then the primary's risk goes high. */
function atRisk(w: MigrationWorld): MigrationWorld { w.run(10); w.knobs.risk = 0.9; return w; }

test("full walk: Healthy -> AtRisk -> Preflight -> Shifting x5 -> Migrated -> Restoring x5 -> Healthy", () => {
  const w = new MigrationWorld(policy());
  w.run(30);
  assert.is(w.status.phase, "Healthy");
  w.knobs.risk = 0.9;
  assert.ok(w.run(600, (x) => x.status.phase === "Migrated"), `stuck in ${w.status.phase}: ${w.status.message}`);
  assert.equal(w.phases, ["Healthy", "AtRisk", "Preflight", "Shifting", "Migrated"]);
  // Mirror on (weight 0), the five steps, then at 100% the proxies hold writes, and the write-target switch ends that.
  assert.equal(w.publishedWeights(), [0, 100, 500, 2500, 5000, 10000, 10000, 10000]);
  const order = w.actions.filter((a) => a.kind !== "publish" || a.pauseWritesMs > 0 || a.writeTarget === "shadow" && w.actions.indexOf(a) === w.actions.findIndex((b) => b.kind === "publish" && b.writeTarget === "shadow"))
    .map((a) => `${a.kind}:${a.kind === "publish" ? `${a.writeTarget}${a.pauseWritesMs ? ` paused ${a.pauseWritesMs}` : ""}` : a.side}`);
  assert.equal(order, ["publish:primary paused 5000", "fence:primary", "promote:shadow", "publish:shadow"], "writes held before the fence; the switch ends the pause");
  assert.is(w.writesTo, "shadow");
  assert.is(w.status.fenced, "primary");
  assert.is(w.maxWriters, 1, "never two writers");

  // The primary recovers; after the cool-down the reads come back step by step, then the writes.
  w.knobs.primaryRisk = 0.1;
  assert.ok(w.run(900, (x) => x.status.phase === "Healthy"), `stuck in ${w.status.phase}: ${w.status.message}`);
  assert.equal(w.phases, ["Healthy", "AtRisk", "Preflight", "Shifting", "Migrated", "Restoring", "Healthy"]);
  assert.equal(w.publishedWeights().slice(8), [9900, 9500, 7500, 5000, 0, 0, 0]);
  assert.equal(w.actions.filter((a) => a.kind === "publish" && a.pauseWritesMs > 0).map((a) => a.kind === "publish" && a.writeTarget), ["primary", "shadow"], "one pause each way, each while the old writer still had the writes");
  assert.is(w.status.pauseWritesMs, 0, "no pause left behind");
  assert.is(w.writesTo, "primary");
  assert.is(w.status.fenced, "shadow");
  assert.is(w.maxWriters, 1, "never two writers on the way back either");
  assert.ok(w.events.some((e) => e.kind === "verification" && /passed/.test(e.message)));
});

test("the drain after the fence trusts only a lag reading measured after it: one from before misses the writes acknowledged in between", () => {
  // Readings 1.5 s old: the promote waits until one was measured after the fence was done.
  const w = atRisk(new MigrationWorld(policy()));
  w.knobs.lagMeasuredAt = (now) => now - 1500;
  assert.ok(w.run(600, (x) => x.status.phase === "Migrated"), `stuck in ${w.status.phase}: ${w.status.message}`);
  const fencedAt = w.events.find((e) => /^fence primary: done/.test(e.message))!.atMs;
  const promotedAt = w.events.find((e) => /^promote shadow/.test(e.message))!.atMs;
  assert.ok(promotedAt - fencedAt >= 1500, `promoted ${promotedAt - fencedAt} ms after the fence, on a reading from before it`);
  assert.ok(w.events.some((e) => /waiting for a replication lag reading measured after the fence/.test(e.message)), "the wait is named");
  assert.is(w.maxWriters, 1);
  // A reading that never gets past the fence (the lag source stopped): never promoted on it; the drain times out.
  const stuck = atRisk(new MigrationWorld(policy((p) => { p.promotion.drainTimeoutMs = 10_000; })));
  let frozen = Infinity;
  stuck.knobs.lagMeasuredAt = (now) => (["fence", "drain"].includes(stuck.status.promotion?.stage ?? "") ? (frozen = Math.min(frozen, now - 1)) : now);
  assert.ok(stuck.run(600, (x) => x.events.some((e) => /no replication lag reading measured after the fence in 10s \(the last, 0, was measured 0\.\d+s before it\)/.test(e.message))), `${stuck.status.phase}: ${stuck.status.message}`);
  assert.not.ok(stuck.actions.some((a) => a.kind === "promote"), "no promotion on a reading from before the fence");
  assert.is(stuck.writesTo, "primary");
});

test("a planned switch without the pause while a proxy would refuse pause_writes_ms (an older filter): fence at once, and say why", () => {
  const w = atRisk(new MigrationWorld(policy((p) => { p.promotion.pauseWritesMs = 5_000; })));
  w.knobs.pauseBlockedBy = { lacking: ["a", "b", "c", "d", "e", "f"], more: 2 };
  assert.ok(w.run(600, (x) => x.status.phase === "Migrated"), `stuck in ${w.status.phase}: ${w.status.message}`);
  assert.ok(w.actions.every((a) => a.kind !== "publish" || a.pauseWritesMs === 0), "no publish pauses writes");
  assert.ok(w.events.some((e) => e.severity === "warning" && /writes are not paused through the switch: 8 proxies \(a, b, c, d, e, and 3 more\) run a filter/.test(e.message)), "named, with the count");
  assert.equal(w.actions.filter((a) => a.kind !== "publish").map((a) => `${a.kind}:${a.side}`), ["fence:primary", "promote:shadow"]);
  assert.is(w.maxWriters, 1);
  // Once every proxy knows it (reported), the way back pauses again.
  w.knobs.pauseBlockedBy = { lacking: [], more: 0 };
  w.knobs.primaryRisk = 0.1;
  assert.ok(w.run(900, (x) => x.status.phase === "Healthy"), `stuck in ${w.status.phase}: ${w.status.message}`);
  assert.ok(w.actions.some((a) => a.kind === "publish" && a.pauseWritesMs === 5_000 && a.writeTarget === "shadow"), "the pause on the way back");
  assert.is(w.maxWriters, 1);
});

test("the mirror's byte budget cuts the mirrored share to fit, and follows the traffic", () => {
  // 2000 reads/s at 500 bytes a mirrored read: 0.05 of reads would cost 50 kB/s; the budget is 20 kB/s.
  const w = atRisk(new MigrationWorld(policy((p) => { p.preflight.mirrorMaxBytesPerS = 20_000; p.preflight.minCompared = 50; })));
  w.knobs.mirrorBytes = 500;
  assert.ok(w.run(5, (x) => x.status.mirrorFraction > 0 && x.status.mirrorFraction < 0.05), `mirror ${w.status.mirrorFraction}`);
  assert.is(w.status.mirrorFraction, 0.02);
  assert.ok(w.actions.some((a) => a.kind === "publish" && a.mirrorFraction === 0.02), "the cut share was published to the proxies");
  w.knobs.rps = 4000;
  w.run(2);
  assert.is(w.status.mirrorFraction, 0.01, "twice the reads: half the share");
  assert.ok(w.run(400, (x) => x.status.phase === "Migrated"), `stuck in ${w.status.phase}: ${w.status.message}`);
  // Without a budget the policy's share stands.
  const free = atRisk(new MigrationWorld(policy()));
  free.knobs.mirrorBytes = 500;
  free.run(10);
  assert.is(free.status.mirrorFraction, 0.05);
});

test("preflight will not move reads to a shadow that is itself at risk, and goes on once its risk falls", () => {
  const w = atRisk(new MigrationWorld(policy()));
  w.knobs.shadowRisk = 0.7;
  assert.ok(w.run(60, (x) => x.status.phase === "Preflight"));
  w.run(10);
  assert.is(w.status.phase, "Preflight");
  assert.is(w.status.shadowWeightBp, 0);
  assert.match(w.status.blockedReason ?? "", /the shadow is itself at risk \(0\.70/);
  w.knobs.shadowRisk = 0.1;
  assert.ok(w.run(60, (x) => x.status.phase === "Shifting"), w.status.message);
});

test("migrated, a shadow at risk is reported (blocked reason and one event), not acted on by itself", () => {
  const w = atRisk(new MigrationWorld(policy((p) => { p.recovery = { mode: "stay", coolDownMs: 60_000, maxReplicationLagS: 2 }; })));
  assert.ok(w.run(400, (x) => x.status.phase === "Migrated"), w.status.message);
  w.knobs.shadowRisk = 0.8;
  w.run(5);
  assert.is(w.status.phase, "Migrated");
  assert.match(w.status.blockedReason ?? "", /the shadow, serving everything, is itself at risk \(0\.80\)/);
  assert.is(w.events.filter((e) => /serving everything/.test(e.message)).length, 1);
  w.knobs.shadowRisk = 0.1;
  w.run(2);
  assert.is(w.status.blockedReason, null);
});

test("a failed verification at a step rolls back to the primary and pauses", () => {
  const w = atRisk(new MigrationWorld(policy()));
  assert.ok(w.run(300, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 2));
  w.knobs.shadowErrorRate = 0.2;
  assert.ok(w.run(120, (x) => x.status.phase === "Paused"), w.status.message);
  assert.equal(w.phases.slice(-2), ["RollingBack", "Paused"]);
  assert.is(w.status.shadowWeightBp, 0);
  assert.is(w.status.mirrorFraction, 0);
  assert.is(w.writesTo, "primary");
  const fail = w.events.find((e) => e.kind === "verification" && e.severity === "error");
  assert.ok(fail && /step 3 failed verification: fail: error_rate/.test(fail.message), fail?.message);
  // It stays there until an operator acts: no automatic retry.
  w.run(300);
  assert.is(w.status.phase, "Paused");
  w.knobs.risk = 0.2;
  w.tick([{ kind: "resume", by }]);
  assert.is(w.status.phase, "Healthy");
});

test("a slowdown both sides show in the same window holds the step instead of rolling back; the shadow's own slowdown still rolls back", () => {
  const w = atRisk(new MigrationWorld(policy()));
  assert.ok(w.run(300, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 2));
  // The host stalls: both sides 20x their healthy latency.
  w.knobs.shadowLatencyMs = 200; w.knobs.primaryLatencyMs = 200;
  assert.ok(w.run(60, (x) => /^inconclusive/.test(x.status.lastVerdict?.summary ?? "")), `${w.status.phase}: ${w.status.message}`);
  w.run(5);
  assert.is(w.status.phase, "Shifting", w.status.message);
  assert.is(w.status.stepIndex, 2);
  assert.match(w.status.lastVerdict?.summary ?? "", /inconclusive: .*latency .*but the source has as many in the same window/);
  // It passes: the migration goes on to the end, never through RollingBack.
  w.knobs.shadowLatencyMs = 10; w.knobs.primaryLatencyMs = 10;
  assert.ok(w.run(300, (x) => x.status.phase === "Migrated"), `stuck in ${w.status.phase}: ${w.status.message}`);
  assert.is(w.phases.includes("RollingBack"), false);
  // The same slowdown on the shadow alone is its own: rolled back.
  const v = atRisk(new MigrationWorld(policy()));
  assert.ok(v.run(300, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 2));
  v.knobs.shadowLatencyMs = 200;
  assert.ok(v.run(60, (x) => x.status.phase === "Paused"), v.status.message);
  assert.equal(v.phases.slice(-2), ["RollingBack", "Paused"]);
  assert.ok(v.events.some((e) => /step 3 failed verification: fail: latency .*the source, in the same window/.test(e.message)), v.events.map((e) => e.message).join(" | "));
});

test("a risk that flaps around the threshold enters AtRisk once and never oscillates", () => {
  const w = new MigrationWorld(policy((p) => { p.risk.enterForMs = 30_000; }));
  let i = 0;
  for (let s = 0; s < 1200; s++) { w.knobs.risk = (i++ % 20) < 10 ? 0.71 : 0.69; w.tick(); }
  assert.equal(w.phases, ["Healthy", "AtRisk"]);
  assert.is(w.events.filter((e) => e.kind === "phase").length, 1);
  // Entering AtRisk turns on the read mirror (once); no live read is moved.
  assert.is(w.actions.filter((a) => a.kind !== "publish").length, 0, "no action");
  assert.is(w.routePublishes().length, 1, "one publish that moves traffic: the mirror (the others tell the floor the shadow is fit)");
  assert.equal(w.routePublishes().map((a) => [a.shadowWeightBp, a.mirrorFraction]), [[0, w.policy.preflight.mirrorFraction]]);
});

test("AtRisk mirrors reads while the risk confirms; the sample carries into preflight, and the mirror goes off if the risk goes away", () => {
  const w = new MigrationWorld(policy((p) => { p.risk.enterForMs = 10_000; }));
  w.knobs.risk = 0.8;
  w.tick();
  assert.is(w.status.phase, "AtRisk");
  assert.is(w.status.mirrorFraction, w.policy.preflight.mirrorFraction);
  const since = w.status.stepSinceMs;
  assert.ok(since !== null);
  for (let i = 0; i < 30 && w.status.phase === "AtRisk"; i++) w.tick();
  assert.is(w.status.phase, "Preflight");
  assert.is(w.status.stepSinceMs, since, "preflight judges the mirrored reads since AtRisk began");
  assert.is(w.routePublishes().length, 1, "preflight did not publish the mirror again");
  // A second world: the risk falls back before confirming.
  const v = new MigrationWorld(policy((p) => { p.risk.enterForMs = 60_000; p.risk.leaveForMs = 5_000; }));
  v.knobs.risk = 0.8;
  v.tick();
  v.knobs.risk = 0.1;
  v.run(10);
  assert.is(v.status.phase, "Healthy");
  assert.is(v.status.mirrorFraction, 0, "mirror off again");
  assert.is(v.status.stepSinceMs, null);
});

test("replication lag over the limit blocks preflight; it proceeds once the lag is back", () => {
  const w = atRisk(new MigrationWorld(policy()));
  w.knobs.lagS = 12;
  w.run(120);
  assert.is(w.status.phase, "Preflight");
  assert.is(w.status.shadowWeightBp, 0, "no live read reached the shadow");
  assert.match(w.status.blockedReason ?? "", /replication lag 12.0s is over the limit 5s/);
  const lagEvents = w.events.filter((e) => e.kind === "blocked" && /replication lag/.test(e.message)).length;
  assert.ok(lagEvents >= 1 && lagEvents <= 2, `an event when the reason changes, not one per tick (${lagEvents})`);
  w.knobs.lagS = 1;
  assert.ok(w.run(30, (x) => x.status.phase === "Shifting"));
});

test("preflight that never passes pauses at its timeout, naming what failed", () => {
  const w = atRisk(new MigrationWorld(policy((p) => { p.preflight.timeoutMs = 60_000; })));
  w.knobs.divergence = 0.05;
  assert.ok(w.run(200, (x) => x.status.phase === "Paused"));
  assert.match(w.status.paused!.reason, /preflight did not pass in 60s: mirrored reads diverge 5.00%/);
  assert.is(w.status.shadowWeightBp, 0);
});

test("a NACK pauses with the proxy's error; no weight advances until every proxy ACKs", () => {
  const w = atRisk(new MigrationWorld(policy()));
  assert.ok(w.run(300, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 1 && x.status.rollout === null));
  w.knobs.ack = "pending";
  const published = w.publishedWeights().length;
  assert.ok(w.run(60, (x) => x.status.stepIndex === 2));
  w.run(300);
  assert.is(w.status.stepIndex, 2, "stuck at the step whose ACK is pending");
  assert.is(w.publishedWeights().length, published + 1, "nothing else was published while waiting");
  assert.match(w.status.blockedReason ?? "", /waiting for every proxy to ACK: step 3/);
  w.knobs.ack = "nacked";
  w.knobs.nackError = "envoy.config: route weights invalid";
  w.reanswer();
  w.tick();
  assert.is(w.status.phase, "Paused");
  assert.match(w.status.paused!.reason, /NACK.*route weights invalid/);
  w.knobs.ack = "acked";
  w.tick([{ kind: "resume", by }]);
  assert.is(w.status.phase, "Shifting");
  assert.ok(w.run(600, (x) => x.status.phase === "Migrated"), w.status.message);
});

test("an inconclusive verification pauses instead of rolling back", () => {
  const w = atRisk(new MigrationWorld(policy()));
  w.knobs.rps = 1; // 1% of one request per second: never enough data
  w.knobs.divergence = 0;
  w.policy.preflight.minCompared = 0;
  assert.ok(w.run(300, (x) => x.status.phase === "Paused"), w.status.message);
  assert.is(w.phases.includes("RollingBack"), false);
  assert.match(w.status.paused!.reason, /verification inconclusive at step 1: inconclusive: .*only \d+ requests/);
  assert.is(w.status.shadowWeightBp, 100, "the step's weight stays as it was");
});

test("manual gates: approval before the first step and before 100%", () => {
  const w = atRisk(new MigrationWorld(policy((p) => { p.gates = { approveFirstStep: true, approveFull: true }; })));
  w.run(120);
  assert.is(w.status.phase, "Preflight");
  assert.match(w.status.blockedReason ?? "", /waiting for approval of the first step/);
  w.tick([{ kind: "approve", by }]);
  assert.ok(w.run(300, (x) => /approval before 100%/.test(x.status.blockedReason ?? "")));
  assert.is(w.status.stepIndex, 3);
  w.run(60);
  assert.is(w.status.stepIndex, 3);
  const r = w.tick([{ kind: "approve", by }]);
  assert.ok(r.commandResults[0]!.accepted);
  assert.ok(w.run(300, (x) => x.status.phase === "Migrated"));
});

test("promotion stops safely when the lag does not drain: the fence is lifted, writes stay on the primary", () => {
  const w = atRisk(new MigrationWorld(policy((p) => { p.promotion.drainTimeoutMs = 20_000; p.preflight.maxReplicationLagS = 5; })));
  w.knobs.drainsWhenFenced = false;
  assert.ok(w.run(300, (x) => x.status.promotion?.stage === "drain"), w.status.message);
  assert.is(w.writable.primary, false);
  w.knobs.lagS = 3;
  w.knobs.drainsWhenFenced = false;
  assert.ok(w.run(60, (x) => x.status.phase === "Paused"));
  assert.match(w.status.paused!.reason, /promotion stopped, writes stay on primary: replication lag did not reach zero in 20s/);
  w.tick();
  assert.is(w.writable.primary, true, "unfenced");
  assert.is(w.writable.shadow, false);
  assert.is(w.writesTo, "primary");
});

test("writes held through the switch: the pause is ACKed before the fence and ends with the switch, or when the promotion stops", () => {
  const w = atRisk(new MigrationWorld(policy((p) => { p.promotion.drainTimeoutMs = 20_000; p.promotion.pauseWritesMs = 3_000; })));
  assert.ok(w.run(400, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 4 && x.status.rollout === null), w.status.message);
  w.knobs.ack = "pending";
  assert.ok(w.run(400, (x) => x.status.promotion?.stage === "pause"), w.status.message);
  assert.is(w.status.pauseWritesMs, 3_000);
  w.run(3);
  assert.is(w.status.promotion?.stage, "pause", "waits for every proxy");
  assert.is(w.writable.primary, true, "not fenced before every proxy holds writes");
  w.knobs.ack = "acked";
  w.reanswer();
  w.knobs.drainsWhenFenced = false;
  w.knobs.lagS = 3;
  assert.ok(w.run(5, (x) => x.status.promotion?.stage === "drain"), w.status.message);
  assert.is(w.writable.primary, false, "fenced once the pause was ACKed");
  // The lag does not drain: the promotion stops, the fence is lifted and so is the pause.
  assert.ok(w.run(60, (x) => x.status.phase === "Paused"));
  const last = w.actions.filter((a) => a.kind === "publish").at(-1)!;
  assert.is(last.kind === "publish" && last.pauseWritesMs, 0, "writes flow again");
  assert.is(last.kind === "publish" && last.writeTarget, "primary");
  assert.is(w.status.pauseWritesMs, 0);
  w.tick();
  assert.is(w.writable.primary, true);

  // An operator's pause while the proxies are told to hold writes: nothing is fenced yet, so the
  // promotion is dropped and the writes flow again; resumed, it starts over.
  const op = atRisk(new MigrationWorld(policy((p) => { p.promotion.pauseWritesMs = 3_000; })));
  assert.ok(op.run(400, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 4 && x.status.rollout === null), op.status.message);
  op.knobs.ack = "pending";
  assert.ok(op.run(400, (x) => x.status.promotion?.stage === "pause"), op.status.message);
  op.knobs.ack = "acked";
  op.tick([{ kind: "pause", by }]);
  assert.is(op.status.phase, "Paused");
  assert.is(op.status.promotion, null);
  assert.is(op.status.pauseWritesMs, 0, "the proxies stop holding writes");
  assert.is(op.writable.primary, true);
  op.tick([{ kind: "resume", by }]);
  assert.ok(op.run(300, (x) => x.status.phase === "Migrated"), op.status.message);
  assert.is(op.maxWriters, 1);

  // Without a pause (0) the promotion fences at once, as before.
  const off = atRisk(new MigrationWorld(policy((p) => { p.promotion.pauseWritesMs = 0; })));
  assert.ok(off.run(300, (x) => x.status.phase === "Migrated"), off.status.message);
  assert.not.ok(off.actions.some((a) => a.kind === "publish" && a.pauseWritesMs > 0));
  assert.not.ok(off.events.some((e) => /hold writes/.test(e.message)));
});

test("commands: bad ones are refused with a reason; pause is refused once the writer is fenced", () => {
  const w = new MigrationWorld(policy());
  let r = w.tick([{ kind: "resume", by }]);
  assert.equal(r.commandResults[0], { command: { kind: "resume", by }, accepted: false, reason: "not paused (phase Healthy)" });
  r = w.tick([{ kind: "pause", by }]);
  assert.is(r.commandResults[0]!.reason, "nothing is in progress");
  w.knobs.risk = 0.9;
  w.knobs.drainsWhenFenced = false;
  assert.ok(w.run(300, (x) => x.status.promotion?.stage === "drain"));
  r = w.tick([{ kind: "pause", by }]);
  assert.is(r.commandResults[0]!.accepted, false);
  assert.match(r.commandResults[0]!.reason, /cannot pause during the promotion/);
});

test("a rollback from a pause leaves no stale pause behind: RollingBack carries no paused, the pause it ends in says rolled back", () => {
  // Found by the generated histories (reconcile-model.test.ts): paused kept {from: Preflight} through
  // RollingBack, so a status read then said where a resume would go while nothing was paused.
  const w = new MigrationWorld(policy());
  w.tick([{ kind: "promote", by }]);
  assert.is(w.status.phase, "Preflight");
  w.tick([{ kind: "pause", by }]);
  assert.equal(w.status.paused, { from: "Preflight", reason: "paused by test" });
  w.knobs.ack = "pending";
  w.tick([{ kind: "rollback", by }]);
  assert.is(w.status.phase, "RollingBack");
  assert.is(w.status.paused, null);
  w.knobs.ack = "acked";
  w.reanswer();
  w.tick();
  assert.equal([w.status.phase, w.status.paused], ["Paused", { from: "Healthy", reason: "rolled back" }]);
});

test("manual promote starts a migration from Healthy; rollback in Migrated restores to the primary, once it can take the reads back", () => {
  const w = new MigrationWorld(policy((p) => { p.recovery.mode = "stay"; }));
  w.run(5);
  const r = w.tick([{ kind: "promote", by, reason: "planned maintenance" }]);
  assert.ok(r.commandResults[0]!.accepted);
  assert.is(w.status.phase, "Preflight");
  assert.ok(w.run(600, (x) => x.status.phase === "Migrated"));
  w.run(300);
  assert.is(w.status.phase, "Migrated", "mode stay: no restore by itself");
  // Not while the primary cannot take the reads back: its lag unknown, or its health check failing.
  w.knobs.lagS = null as unknown as number;
  const unknownLag = w.tick([{ kind: "rollback", by }]).commandResults[0]!;
  assert.is(unknownLag.accepted, false);
  assert.match(unknownLag.reason, /replication lag is unknown .*caught-up replica/);
  w.knobs.lagS = 0.2;
  w.knobs.health = { requests: 0, failures: 0, reporting: 1, ejecting: 0, probeFailures: 2 };
  const down = w.tick([{ kind: "rollback", by }]).commandResults[0]!;
  assert.is(down.accepted, false);
  assert.match(down.reason, /fails its health check \(2 in a row\)/);
  w.knobs.health = null;
  assert.is(w.status.phase, "Migrated");
  w.tick([{ kind: "rollback", by }]);
  assert.is(w.status.phase, "Restoring");
  assert.ok(w.run(600, (x) => x.status.phase === "Healthy"));
  assert.is(w.writesTo, "primary");
  assert.is(w.maxWriters, 1);
});

test("paused after 100% (e.g. the promoted shadow failed its verification), rollback is the restore, with the same checks", () => {
  const w = new MigrationWorld(policy((p) => { p.recovery.mode = "stay"; }));
  w.run(5);
  w.tick([{ kind: "promote", by }]);
  assert.ok(w.run(600, (x) => x.status.phase === "Migrated"));
  assert.ok(w.tick([{ kind: "pause", by, reason: "shadow slow" }]).commandResults[0]!.accepted);
  assert.equal([w.status.phase, w.status.paused!.from], ["Paused", "Migrated"]);
  w.knobs.lagS = 5;
  const lagging = w.tick([{ kind: "rollback", by }]).commandResults[0]!;
  assert.is(lagging.accepted, false);
  assert.match(lagging.reason, /replication lag is 5.0s \(limit 2s\)/);
  assert.is(w.status.phase, "Paused");
  w.knobs.lagS = 0.2;
  assert.ok(w.tick([{ kind: "rollback", by }]).commandResults[0]!.accepted);
  assert.is(w.status.phase, "Restoring");
  assert.is(w.status.paused, null);
  assert.ok(w.run(600, (x) => x.status.phase === "Healthy"), w.status.message);
  assert.is(w.writesTo, "primary");
  assert.is(w.maxWriters, 1);
});

test("promote with nextStep advances one step, as Argo Rollouts' promote does; on the final step it approves the promotion; without it, skips to the end", () => {
  const w = new MigrationWorld(policy((p) => { p.steps = p.steps.map((st) => ({ ...st, bakeMs: 600_000 })); p.gates.approveFull = true; }));
  w.run(5);
  w.tick([{ kind: "promote", by, nextStep: true }]);
  assert.is(w.status.phase, "Preflight");
  assert.ok(w.run(300, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 0 && x.status.rollout === null), w.status.message);
  const weights = () => w.publishedWeights();
  const before = weights().length;
  const r1 = w.tick([{ kind: "promote", by, nextStep: true }]).commandResults[0]!;
  assert.ok(r1.accepted, r1.reason);
  assert.match(r1.reason, /skipped to step 2\//);
  assert.is(w.status.stepIndex, 1, "one step, not to the end");
  assert.is(weights().length, before + 1);
  assert.is(weights().at(-1), w.policy.steps[1]!.weightBp);
  while (w.status.stepIndex < w.policy.steps.length - 1) w.tick([{ kind: "promote", by, nextStep: true }]);
  assert.is(w.status.approvals.full, false, "reaching the final step approves nothing yet");
  const last = w.tick([{ kind: "promote", by, nextStep: true }]).commandResults[0]!;
  assert.match(last.reason, /on the final step: its promotion approved/);
  assert.is(w.status.approvals.full, true);
  // Without nextStep (the API's Promote as before; the CLI's promote --full): straight to the final step.
  const v = new MigrationWorld(policy((p) => { p.steps = p.steps.map((st) => ({ ...st, bakeMs: 600_000 })); }));
  v.run(5);
  v.tick([{ kind: "promote", by }]);
  assert.ok(v.run(300, (x) => x.status.phase === "Shifting" && x.status.stepIndex === 0 && x.status.rollout === null));
  v.tick([{ kind: "promote", by }]);
  assert.is(v.status.stepIndex, v.policy.steps.length - 1);
});

test.run();
