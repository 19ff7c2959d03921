// The rejoin watcher, on fakes: a writable old writer is fenced at once; a fenced one is rejoined once
// the phase has settled, never during a move; a failed rejoin backs off, doubling.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock, wallMs } from "../../host/clock.js";
import { silentLogger } from "../../controller/log.js";
import { RejoinWatcher } from "../../controller/drivers/rejoin.js";
import type { ComponentDriver, SideHealth } from "../../controller/drivers/driver.js";
import type { DriverStatus } from "../../controller/drivers/poller.js";
import { initialStatus, type MigrationStatus } from "../../controller/migration/status.js";

function world() {
  const clock = new ManualClock(1_700_000_000_000);
  const calls: string[] = [];
  let fail: string | null = null;
  const driver = {
    kind: "fake", measures: true, rejoins: true,
    fence: async (s: string) => { calls.push(`fence ${s}`); },
    rejoin: async (s: string) => { calls.push(`rejoin ${s}`); if (fail) throw new Error(fail); },
  } as unknown as ComponentDriver;
  const status: MigrationStatus = { ...initialStatus("orders", wallMs(clock)), phase: "Migrated", writeTarget: "shadow", shadowWeightBp: 10_000 };
  const health: Record<"primary" | "shadow", SideHealth & { consecutiveFailures: number }> = {
    primary: { up: true, writable: false, replica: false, detail: "read-only (fenced)", consecutiveFailures: 0 },
    shadow: { up: true, writable: true, replica: false, detail: "writable", consecutiveFailures: 0 },
  };
  const notes: string[] = [];
  const poller = { status: (): DriverStatus[] => [{ component: "orders", driver: "fake", health, lag: null, signals: { primary: {}, shadow: {} }, lastError: null, lastPollMs: 0 }] };
  const manager = { get: () => ({ status, policy: null as never, observed: null }), note: (_c: string, _k: string, m: string) => { notes.push(m); } };
  const w = new RejoinWatcher(new Map([["orders", driver]]), poller, manager, clock, silentLogger(), { settleMs: 10_000, firstBackoffMs: 15_000 });
  const flush = () => new Promise((r) => setTimeout(r, 0));
  return { clock, calls, status, health, notes, w, flush, setFail: (f: string | null) => { fail = f; } };
}

test("a writable old writer is fenced at once; a fenced one is rejoined after the phase settled", async () => {
  const x = world();
  x.health.primary.writable = true;
  x.w.tick(); await x.flush();
  assert.equal(x.calls, ["fence primary"], "fenced before the settle time");
  x.health.primary.writable = false;
  x.w.tick(); await x.flush();
  assert.equal(x.calls, ["fence primary"], "not rejoined before the phase settled");
  x.clock.advance(10_000);
  x.w.tick();
  assert.ok(x.w.rejoining("orders", "primary"), "while it is rejoined it serves nothing (its health check fails)");
  assert.not.ok(x.w.rejoining("orders", "shadow"));
  await x.flush();
  assert.not.ok(x.w.rejoining("orders", "primary"));
  assert.equal(x.calls, ["fence primary", "rejoin primary"]);
  assert.match(x.notes.at(-1)!, /rejoin primary: done/);
  x.health.primary.replica = true;
  x.w.tick(); await x.flush();
  assert.is(x.calls.length, 2, "a replica is left alone");
});

test("never during a move, nor with the writer down; a failed rejoin backs off, doubling", async () => {
  const x = world();
  x.clock.advance(20_000);
  x.status.phase = "Shifting";
  x.w.tick(); await x.flush();
  x.status.phase = "Migrated";
  x.health.shadow.up = false;
  x.w.tick(); await x.flush();
  assert.equal(x.calls, []);
  x.health.shadow.up = true;
  x.setFail("pg_rewind exited 1");
  x.w.tick(); await x.flush();
  assert.equal(x.calls, ["rejoin primary"]);
  assert.match(x.notes.at(-1)!, /rejoin primary failed \(pg_rewind exited 1\); retrying in 15s/);
  x.clock.advance(14_000); x.w.tick(); await x.flush();
  assert.is(x.calls.length, 1, "waits out the backoff");
  x.clock.advance(1_000); x.w.tick(); await x.flush();
  assert.is(x.calls.length, 2);
  assert.match(x.notes.at(-1)!, /retrying in 30s/);
});

test.run();
