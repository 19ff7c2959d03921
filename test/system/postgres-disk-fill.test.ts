// The whole system on real PostgreSQL (world/demo/postgres.ts, what `npm start -- --component postgres`
// runs, shortened): the primary's disk fills for real; the controller sees it through the PostgreSQL
// driver's signals and moves reads, then writes (fence, exact drain, promote) to the standby before
// the disk is full; the old primary rejoins as a replica; then an operator's rollback restores the
// writes to it (reads back step by step, fence the standby, exact drain, promote the primary). Every
// acknowledged order is in the database that takes the writes at the end; the two-writer checker
// (100 ms) never sees two writable sides. Skips, saying so, without PostgreSQL 15 or root (the tmpfs
// disk needs mount).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../controller/log.js";
import { runPostgresDemo } from "../../world/demo/postgres.js";
import { pgAvailable } from "../../world/demo/pg-pair.js";
import { whenAvailable } from "../support/real-servers.js";

const root = typeof process.getuid === "function" && process.getuid() === 0;
const reason = pgAvailable() ?? (root ? null : "mounting the primary's tmpfs disk needs root");
const NAME = "postgres: a filling disk is moved off before it is full; the old primary rejoins; a restore moves back; 0 acknowledged orders lost; never two writers";

whenAvailable("postgres disk fill", reason, NAME, async () => {
  const s = await runPostgresDemo({ log: silentLogger(), durationS: 75, fillStartS: 10, fillMbPerS: 1, restoreAtS: 45 });
  const story = s.events.filter((e) => e.kind !== "rollout" && e.kind !== "blocked").map((e) => `${e.t}s ${e.message}`).join("\n");
  assert.ok(s.migrated_at_s !== null, `not migrated:\n${story}`);
  assert.ok(s.disk_full_at_s === null || (s.migrated_at_s !== null && s.migrated_at_s < s.disk_full_at_s), `migrated at ${s.migrated_at_s}, disk full at ${s.disk_full_at_s}`);
  assert.ok(s.fenced_at_s !== null && s.fenced_at_s >= 10, `the archive job was refused by the fence at ${s.fenced_at_s}`);
  assert.is(s.lost_writes, 0, `${s.lost_writes} of ${s.acknowledged_writes} acknowledged orders lost`);
  assert.ok(s.acknowledged_writes > 500, `acknowledged ${s.acknowledged_writes}`);
  assert.ok(s.two_writer_samples > 200, `two-writer samples ${s.two_writer_samples}`);
  assert.is(s.two_writer_overlaps, 0, "two writable sides");
  assert.ok(s.failed_ratio < 0.01, `failed ${s.failed_requests}/${s.requests}:\n${story}`);
  assert.ok(s.events.some((e) => /rejoin primary: done/.test(e.message)), `no rejoin:\n${story}`);
  assert.ok(s.restored_at_s !== null && s.write_target === "primary", `not restored (writes on the ${s.write_target}):\n${story}`);
  console.log(`postgres disk fill: moved at ${s.migrated_at_s} s (filling from 10 s, disk ${s.disk_used_at_move} used), restored at ${s.restored_at_s} s, ${s.failed_requests}/${s.requests} failed, ${s.acknowledged_writes} orders acknowledged, 0 lost, ${s.two_writer_samples} two-writer samples, 0 overlaps`);
});

test.run();
