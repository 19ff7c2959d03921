// A fixed workload for the simulated pair (benchmarks/incident/pair.ts): reads and writes to both
// sides, a fence, a promotion, an unfence, metrics scrapes and the primary's death, on a ManualClock.
// Its transcript's digest was recorded with the pair as it was before leases and pauses existed, so
// the test can tell that the model without the new options answers exactly as it did.
import { createHash } from "node:crypto";
import { ManualClock } from "../../host/clock.js";
import { mulberry32 } from "../../host/random.js";
import { parseScenario } from "../../world/demo/scenario.js";

import type { Side } from "../../controller/xds/resources.js";
type Answer = { status: number; body: string } | { refused: true };
/** The part of SimulatedPair the workload uses (the old and the new class both have it). */
export interface PairLike {
  leader: Side;
  request(side: Side, op: { write: boolean; key: string }, answer: (a: Answer) => void): void;
  act(kind: "fence" | "unfence" | "promote", side: Side): void;
  replicationLagS(): number;
  metricsText(side: Side): string;
  readonly counters: { reads: number; writes: number; forwarded: number; held: number; refused: number; injected: number };
}
export type PairFactory = (scenario: ReturnType<typeof parseScenario>, clock: ManualClock, startMs: number, rand: () => number) => PairLike;

export const WORKLOAD_SCENARIO = JSON.stringify({
  duration_s: 30, rate_rps: 50, read_share: 0.5,
  primary: { latency_ms: [[0, 3], [10, 40]], error_rate: [[0, 0], [12, 0.2]], fail_at_s: 20 },
  shadow: { replication_lag_s: [[0, 0.5], [8, 2]] },
});

/** Runs the workload and returns the sha256 of its transcript (every answer, lag and metrics page). */
export function workloadDigest(make: PairFactory): { digest: string; lines: number } {
  const clock = new ManualClock(1_800_000_000_000);
  const startMs = clock.monotonicNs() / 1e6;
  const pair = make(parseScenario(WORKLOAD_SCENARIO, null), clock, startMs, mulberry32(11));
  const out: string[] = [];
  const rand = mulberry32(3);
  const t = () => Math.round(clock.monotonicNs() / 1e3 - startMs * 1e3);
  let n = 0;
  const send = () => {
    const side: Side = rand() < 0.5 ? "primary" : "shadow";
    const write = rand() < 0.5;
    const key = write ? `k${n++}` : `k${Math.floor(rand() * Math.max(1, n))}`;
    const sentAt = t();
    pair.request(side, { write, key }, (a) => out.push(`${sentAt} ${t()} ${side} ${write ? "W" : "R"} ${key} ${"refused" in a ? "refused" : `${a.status} ${a.body}`}`));
    clock.setTimer(7 + Math.floor(rand() * 10), send);
  };
  clock.setTimer(1, send);
  const every = (ms: number, fn: () => void) => { const f = () => { fn(); clock.setTimer(ms, f); }; clock.setTimer(ms, f); };
  every(250, () => out.push(`lag ${t()} ${pair.replicationLagS().toFixed(6)} leader=${pair.leader}`));
  every(1000, () => { for (const s of ["primary", "shadow"] as const) out.push(`metrics ${s} ${pair.metricsText(s)}`); });
  const at = (s: number, fn: () => void) => clock.setTimer(s * 1000, () => { try { fn(); out.push(`act ${t()} ok`); } catch (e) { out.push(`act ${t()} ${(e as Error).message}`); } });
  at(4, () => pair.act("fence", "primary"));
  at(6, () => pair.act("unfence", "primary"));
  at(9, () => pair.act("fence", "primary"));
  at(9.5, () => pair.act("fence", "shadow"));
  at(11, () => pair.act("promote", "shadow"));
  at(12, () => pair.act("promote", "shadow"));
  at(13, () => pair.act("fence", "shadow"));
  at(14.5, () => pair.act("promote", "primary"));
  at(21, () => pair.act("promote", "shadow"));
  at(22, () => pair.act("promote", "primary"));
  clock.advance(26_000);
  const c = pair.counters;
  out.push(`counters ${JSON.stringify([c.reads, c.writes, c.forwarded, c.held, c.refused, c.injected])}`);
  return { digest: createHash("sha256").update(out.join("\n")).digest("hex"), lines: out.length };
}
