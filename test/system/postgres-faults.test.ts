// The real faults that are not already a system test of their own (disk-fill and partition are),
// each on a fresh real pair in a short run, the two without warning: a crash (pg_ctl stop -m
// immediate) and a hang (SIGSTOP of the postmaster and its children, in zones with lease agents),
// played 8 s after the start (before the policy's 10 s fitFor: a shadow never outside its limits is
// fit at once). Each is detected or floored: the controller leaves Healthy for AtRisk or Failover, the
// writes end up on the promoted standby, never two writable sides, and at most what asynchronous
// replication had not shipped is lost. The hung primary does not cost its lease: its lease agent stops
// it on the controller's fence (STONITH), and the standby is promoted at once. connections, locks,
// cpu and io: postgres-starvation.test.ts; `npm run bench postgres` plays every fault three ways
// (none, reactive, shadowmesh).
// Skips, saying so, without PostgreSQL 15 or root.
import * as assert from "uvu/assert";
import { test } from "uvu";
import { silentLogger } from "../../controller/log.js";
import { runPostgresDemo, type PostgresDemoSummary, type PostgresFaultName } from "../../world/demo/postgres.js";
import { pgAvailable } from "../../world/demo/pg-pair.js";
import { whenAvailable } from "../support/real-servers.js";

const root = typeof process.getuid === "function" && process.getuid() === 0;
const reason = pgAvailable() ?? (root ? null : "the faults need root (tmpfs, network namespaces)");

/** The hang: promoted well inside the 10 s lease, because the agent stopped the hung primary on the fence. */
const notWaitingTheLease = (s: PostgresDemoSummary): string | null => {
  const done = s.events.map((e) => /failover done in ([\d.]+)s/.exec(e.message)).find((m) => m !== null);
  if (s.agent_killed_at_s === null) return "the lease agent never stopped the hung primary";
  if (!done || Number(done[1]) >= 10) return `the failover took ${done?.[1] ?? "forever"} s: it waited out the lease`;
  return null;
};

const CASES: { fault: PostgresFaultName; planned: boolean; how: RegExp; also?: (s: PostgresDemoSummary) => string | null }[] = [
  { fault: "crash", planned: false, how: /Healthy -> (AtRisk|Failover)/ },
  { fault: "hang", planned: false, how: /Healthy -> (AtRisk|Failover)/, also: notWaitingTheLease },
];

for (const c of CASES) {
  whenAvailable(`postgres ${c.fault}`, reason, `postgres ${c.fault}: detected or floored, the standby promoted, never two writers`, async () => {
    const s = await runPostgresDemo({ log: silentLogger(), fault: c.fault, durationS: 28, fillStartS: 8, healAfterS: 14 });
    const story = s.events.filter((e) => e.kind !== "rollout" && e.kind !== "blocked").map((e) => `${e.t}s ${e.message}`).join("\n");
    assert.ok(s.failed_at_s !== null, `the fault never made the primary fail:\n${story}`);
    assert.ok(s.events.some((e) => c.how.test(e.message)), `the controller did not act (${c.how}):\n${story}`);
    const wrong = c.also?.(s) ?? null;
    assert.is(wrong, null, `${wrong}:\n${story}`);
    assert.ok(s.migrated, `the writes are not on the promoted standby at the end:\n${story}`);
    assert.is(s.two_writer_overlaps, 0, `two writable sides:\n${story}`);
    assert.ok(s.two_writer_samples > 100, `two-writer samples ${s.two_writer_samples}`);
    if (c.planned) assert.is(s.lost_writes, 0, `${s.lost_writes} acknowledged orders lost on a planned move:\n${story}`);
    else assert.ok(s.lost_writes <= 2, `${s.lost_writes} acknowledged orders lost (at most what replication had not shipped)`);
    console.log(`postgres ${c.fault}: failed at ${s.failed_at_s} s, moved at ${s.migrated_at_s} s, ${s.failed_requests}/${s.requests} failed, ${s.lost_writes} of ${s.acknowledged_writes} orders lost, 0 overlaps`);
  });
}

test.run();
