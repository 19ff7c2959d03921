// Two zones for real (network namespaces on a bridge, world/demo/pg-pair.ts) with a lease agent beside each
// instance (world/sample/pg-lease-agent.ts): the primary's zone is cut off (its link set down) with no
// warning. The failover floor and the emergency path move reads at once, the fence cannot reach the
// primary, so the standby is promoted only after the primary's lease has run out, by which time the
// agent inside the cut-off zone has made the primary refuse writes. When the link comes back the old
// primary is not a second writer; it rejoins as a replica. The two-writer checker samples every
// 100 ms throughout. Skips, saying so, without PostgreSQL 15 or root.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../controller/log.js";
import { runPostgresDemo } from "../../world/demo/postgres.js";
import { pgAvailable } from "../../world/demo/pg-pair.js";
import { whenAvailable } from "../support/real-servers.js";

const root = typeof process.getuid === "function" && process.getuid() === 0;
const reason = pgAvailable() ?? (root ? null : "network namespaces need root");
const NAME = "postgres zones: the primary's zone is partitioned; failover after its lease, never two writers, the old primary rejoins after the partition heals";

whenAvailable("postgres partition", reason, NAME, async () => {
  const s = await runPostgresDemo({ log: silentLogger(), fault: "partition", durationS: 43, fillStartS: 10, healAfterS: 15 });
  const story = s.events.filter((e) => e.kind !== "rollout" && e.kind !== "blocked").map((e) => `${e.t}s ${e.message}`).join("\n");
  assert.ok(s.migrated, `not migrated:\n${story}`);
  assert.ok(s.events.some((e) => /Failover -> Migrated/.test(e.message)), `no failover:\n${story}`);
  assert.is(s.two_writer_overlaps, 0, `two writable sides:\n${story}`);
  assert.ok(s.two_writer_samples > 200, `two-writer samples ${s.two_writer_samples}`);
  assert.ok(s.events.some((e) => /rejoin primary: done/.test(e.message)), `the old primary did not rejoin after the partition healed:\n${story}`);
  assert.ok(s.agent_fenced_at_s !== null && s.migrated_at_s !== null && s.agent_fenced_at_s < s.migrated_at_s, `the lease agent fenced the cut-off primary at ${s.agent_fenced_at_s} s, the standby was promoted at ${s.migrated_at_s} s`);
  assert.ok(s.lost_writes <= 2, `${s.lost_writes} acknowledged orders lost (asynchronous replication can lose what it had not shipped when the link went down)`);
  console.log(`postgres partition: cut at 10 s, the agent fenced the primary at ${s.agent_fenced_at_s} s, moved at ${s.migrated_at_s} s, ${s.failed_requests}/${s.requests} failed, longest write gap ${s.write_gap_max_ms} ms, ${s.lost_writes} of ${s.acknowledged_writes} acknowledged orders lost, ${s.two_writer_samples} two-writer samples, 0 overlaps`);
});

test.run();
