// A primary that dies with no warning, on the real stack (controller over xDS, the embedded data plane
// running the filter on its workers, two KV nodes that require the controller's lease): the failover
// floor diverts reads within a few failures, the emergency path holds writes, cannot fence the dead
// primary, waits out its lease and promotes the shadow at the next epoch; writes flow again.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../controller/log.js";
import { startSystem } from "../../world/demo/run.js";
import { LoadGenerator } from "../../world/demo/load.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, cond: () => boolean, ms: number, why: () => string = () => "") => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}${why() ? `: ${why()}` : ""}`);
    await sleep(100);
  }
};

test("sudden death: reads diverted at once, writes held, the shadow promoted once the dead primary's lease ran out", async () => {
  const sys = await startSystem({ log: silentLogger() });
  const load = new LoadGenerator({ target: sys.listener, host: "orders.svc", rateRps: 100, readShare: 0.8, keys: 1000, seed: 17 });
  const m = sys.controller.manager;
  const st = () => m.get("orders").status;
  const last = () => m.events("orders", 8).map((e) => e.message).join(" | ");
  try {
    load.start();
    // The floor may use the shadow only once the controller found it fit (limits held 10 s).
    await until("the shadow to be fit", () => st().shadowFit === true, 30_000, last);
    await sleep(1000);
    const before = load.totals();
    sys.primary.fail();
    const diedAt = Date.now();
    await until("the failover", () => st().phase === "Failover" || st().phase === "Migrated", 10_000, last);
    const detectedS = (Date.now() - diedAt) / 1000;
    await until("Migrated", () => st().phase === "Migrated", 30_000, last);
    const migratedS = (Date.now() - diedAt) / 1000;
    await sleep(2000);
    const after = load.totals();
    const failedReads = after.failedReads - before.failedReads, failedWrites = after.failedWrites - before.failedWrites;
    const writes = after.writes - before.writes;

    const events = m.events("orders", 200).map((e) => e.message);
    const failover = events.find((e) => /-> Failover: the primary is down/.test(e));
    assert.ok(failover, `a failover event: ${last()}`);
    assert.ok(events.some((e) => /the primary cannot be fenced/.test(e)), "the dead primary could not be fenced");
    assert.ok(events.some((e) => /lease expired .* ago: it cannot take writes/.test(e)), "promoted only after its lease ran out");
    assert.ok(events.some((e) => /promote shadow \(epoch 2\)/.test(e)), "at the next epoch");
    assert.is(sys.shadow.role, "leader");
    assert.is(sys.shadow.epoch, 2);
    // The lease is 10 s (world/demo/policy.yaml) plus 0.5 s of skew, from a grant at most a third of it before the death.
    assert.ok(migratedS <= 10.5 + 3, `migrated ${migratedS.toFixed(1)} s after the death (detected after ${detectedS.toFixed(1)} s)`);
    // Reads: the floor diverts after 3 failures (counted across workers), the failover moves the rest.
    assert.ok(failedReads <= 20, `${failedReads} reads failed after the death`);
    // Writes: held (503 with the reason) until the promotion; flowing after it.
    assert.ok(failedWrites < writes, `${failedWrites} of ${writes} writes failed`);
    const applied = sys.shadow.appliedSeq;
    await sleep(1000);
    assert.ok(sys.shadow.appliedSeq > applied, "the promoted shadow takes writes");
    console.log(`  sudden death on the real stack: failover after ${detectedS.toFixed(1)} s, migrated after ${migratedS.toFixed(1)} s; ${failedReads} reads and ${failedWrites} of ${writes} writes failed`);
  } finally {
    await load.stop();
    await sys.stop();
  }
});

test.run();
