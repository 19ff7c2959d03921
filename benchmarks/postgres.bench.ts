// PostgreSQL benchmark (`npm run bench postgres`): each real fault (world/demo/postgres.ts) on a real
// primary and hot standby, with no protection (the load straight to the primary's API) and with
// shadowmesh, in the same run: failed requests, lost acknowledged writes (must be 0 on a planned
// move; a crash can lose what asynchronous replication had not shipped), seconds between the move and
// the failure, the replica's lag at the fence, the longest write gap after the fault starts, and the
// two-writer checker's overlaps. The reactive baseline (world/demo/pg-reactive.ts): Envoy's outlier
// detection with locality failover in the embedded data plane, and Patroni's lease rule promoting the
// standby, with the same lease as shadowmesh's. Needs root and PostgreSQL 15.
import { existsSync, readFileSync } from "node:fs";
import { silentLogger } from "../controller/log.js";
import { POSTGRES_FAULTS, runPostgresDemo, type PostgresDemoSummary, type Protection } from "../world/demo/postgres.js";
import { pgAvailable } from "../world/demo/pg-pair.js";
import { writeResult } from "./harness.js";

const why = pgAvailable() ?? (process.getuid?.() === 0 ? null : "needs root (the filling disk is a tmpfs)");
if (why) { console.error(`postgres benchmark: SKIPPED: ${why}`); process.exit(0); }

/** A fault the primary survives long enough to be fenced: the move is planned, and must lose nothing (a crash, a partition or a hang can lose what asynchronous replication had not shipped). */
const PLANNED = (fault: string): boolean => !["crash", "partition", "hang"].includes(fault);
const DURATION_S = Number(process.env.PG_BENCH_DURATION_S ?? 70), FAULT_AT_S = 25;
// PG_BENCH_FAULTS=a,b runs only those and keeps the other faults' results from the last run.
// Set but empty (PG_BENCH_FAULTS=) runs every fault, as unset does, rather than none.
const listed = process.env.PG_BENCH_FAULTS?.split(",").filter(Boolean) ?? [];
const only = listed.length ? listed : null;
for (const f of only ?? []) if (!(POSTGRES_FAULTS as readonly string[]).includes(f)) { console.error(`PG_BENCH_FAULTS: ${f} is not a fault (${POSTGRES_FAULTS.join(", ")})`); process.exit(2); }
const resultsFile = new URL("./results/postgres.json", import.meta.url);
const kept: Record<string, Record<string, unknown>> = only && existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, "utf8")).per_fault ?? {}) : {};
const t0 = Date.now();
const perFault: Record<string, Record<string, unknown>> = {};
for (const fault of POSTGRES_FAULTS) {
  if (only && !only.includes(fault)) { if (kept[fault]) perFault[fault] = kept[fault]!; continue; }
  const run = async (protection: Protection): Promise<PostgresDemoSummary> => {
    const s = await runPostgresDemo({ log: silentLogger(), fault, protection, durationS: DURATION_S, fillStartS: FAULT_AT_S, fillMbPerS: 1.5 });
    console.error(`${fault} ${protection}: failed ${s.failed_requests}/${s.requests}, lost ${s.lost_writes}/${s.acknowledged_writes}${s.writer_unreadable ? " (the writer could not be read at the end)" : ""}, migrated ${s.migrated_at_s ?? "-"} s, failed at ${s.failed_at_s ?? "-"} s, write gap ${s.write_gap_max_ms} ms, overlaps ${s.two_writer_overlaps}`);
    return s;
  };
  const none = await run("none");
  const reactive = await run("reactive");
  const sm = await run("shadowmesh");
  const fail = sm.failed_at_s ?? none.failed_at_s;
  perFault[fault] = {
    failed_none: none.failed_requests, failed_reactive: reactive.failed_requests, failed_shadowmesh: sm.failed_requests, requests: sm.requests,
    not_worse_than_reactive: sm.failed_requests <= reactive.failed_requests,
    // lost_writes_* counts every acknowledged order as lost when the side taking writes at the end cannot be read (its *_unreadable_at_end says so).
    lost_writes_reactive: reactive.lost_writes, reactive_writer_unreadable_at_end: reactive.writer_unreadable, reactive_failed_over_at_s: reactive.migrated_at_s, write_gap_max_ms_reactive: reactive.write_gap_max_ms,
    lost_writes_none: none.lost_writes, none_primary_unreadable_at_end: none.writer_unreadable, lost_writes_shadowmesh: sm.lost_writes, shadowmesh_writer_unreadable_at_end: sm.writer_unreadable, acknowledged_writes_shadowmesh: sm.acknowledged_writes,
    primary_failed_at_s_none: none.failed_at_s, migrated_at_s: sm.migrated_at_s,
    move_before_failure_s: sm.migrated_at_s !== null && fail !== null ? Math.round((fail - sm.migrated_at_s) * 10) / 10 : null,
    lag_bytes_at_fence: sm.lag_bytes_at_fence, lag_s_at_fence: sm.lag_s_at_fence,
    write_gap_max_ms_none: none.write_gap_max_ms, write_gap_max_ms_shadowmesh: sm.write_gap_max_ms,
    two_writer_samples: sm.two_writer_samples, two_writer_overlaps: sm.two_writer_overlaps + none.two_writer_overlaps + reactive.two_writer_overlaps,
    planned_move: PLANNED(fault),
    decided: sm.events.filter((e) => e.kind === "phase").map((e) => `${e.t}s ${e.message}`),
  };
}
// Totals over every fault in the file (this run's and the kept ones).
const rows = Object.values(perFault) as Record<string, number | boolean | null>[];
const sum = (k: string) => rows.reduce((a, r) => a + Number(r[k] ?? 0), 0);
const failedNone = sum("failed_none"), failedSm = sum("failed_shadowmesh"), overlaps = sum("two_writer_overlaps");
// Faults kept from a run before the reactive column existed have no failed_reactive: totals over the faults that have it.
const withReactive = rows.filter((r) => typeof r.failed_reactive === "number");
const failedReactive = withReactive.reduce((a, r) => a + Number(r.failed_reactive), 0), failedSmVsReactive = withReactive.reduce((a, r) => a + Number(r.failed_shadowmesh), 0);
const lostPlanned = Object.entries(perFault).filter(([f]) => PLANNED(f)).reduce((a, [, r]) => a + Number(r.lost_writes_shadowmesh ?? 0), 0);
const gaps = rows.map((r) => r.write_gap_max_ms_shadowmesh).filter((g): g is number => typeof g === "number").sort((a, b) => a - b);
writeResult("postgres", {
  failed_none_total: failedNone, failed_shadowmesh_total: failedSm,
  reduction_vs_none: failedNone ? 1 - failedSm / failedNone : 0,
  failed_reactive_total: failedReactive, reduction_vs_reactive: failedReactive ? 1 - failedSmVsReactive / failedReactive : 0,
  faults_worse_than_reactive: withReactive.filter((r) => r.not_worse_than_reactive === false).length, faults_with_reactive: withReactive.length,
  lost_writes_planned_moves: lostPlanned, two_writer_overlaps: overlaps,
  write_unavailability_p50_ms: gaps[Math.floor((gaps.length - 1) / 2)] ?? 0, write_unavailability_max_ms: gaps.at(-1) ?? 0,
  faults: rows.length, wall_s: (Date.now() - t0) / 1000,
}, {
  method: `real PostgreSQL 15 primary and hot standby on loopback (world/demo/pg-pair.ts), the orders API in front of each, 100 rps (80 % reads) for ${DURATION_S} s; the fault starts at ${FAULT_AT_S} s; none: the load goes straight to the primary's API; reactive: the embedded data plane with envoy/reactive-baseline.yaml's cluster (outlier detection at Envoy's defaults, the standby's zone at priority 1) and Patroni's lease rule (10 s lease renewed every third while the writer answers, the standby promoted 0.5 s after it ran out, a lease agent beside each instance); shadowmesh: controller + embedded data plane with the PostgreSQL driver. Write unavailability: the longest gap between acknowledged writes from the fault's start to the end of the run (p50 and max over the faults).`,
  targets: { lost_writes_planned_moves: "= 0", two_writer_overlaps: "= 0", faults_worse_than_reactive: "= 0" },
  per_fault: perFault,
});
process.exit(0);
