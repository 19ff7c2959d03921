// One scenario, one protection mode, on a virtual clock: the run. The component is the simulated pair
// (pair.ts) and the mode's system under test (system.ts) is deployed in front of it; this file sends
// the requests and counts what became of them, and result.ts turns the counts into the mode's result.
// Requests leave open-loop on the load generator's schedule; a request fails on a 5xx, a refused
// connection or no answer within 2 s, as in the demo. A scenario with history_s starts traffic at
// history_s (every time reported is scenario time). What is simulated is the component (pair.ts),
// the network (0.2 ms connect refusals, 5 ms xDS propagation) and time itself.
import { ManualClock, wallMs } from "../../host/clock.js";
import { mulberry32 } from "../../host/random.js";
import { HeaderMap } from "../../host/headers.js";
import type { HttpStream } from "../../host/stream.js";
import { RESPONSE_FLAGS } from "../../dataplane/http-proxy.js";
import { Upstreams } from "../../dataplane/upstreams.js";
import type { Scenario } from "../../world/demo/scenario.js";
import { SimulatedPair, type PairAnswer } from "./pair.js";
import { demoLease, deploySystem, sideOf, type Mode } from "./system.js";
import { modeResult, type ModeResult, type Tallies } from "./result.js";

const CLIENT_TIMEOUT_MS = 2_000;
/** The async work (ACK verification, actions, scrapes) settles between steps of this size. */
const STEP_MS = 5;

/**
 * When the scenario's trouble starts: its stated first_change_s, else the first moment after the
 * history (history_s, default 0) that any primary signal leaves its value there by more than 10 %.
 */
export function incidentStartS(s: Scenario): number | null {
  if (s.expect === "stay") return null;
  if (s.firstChangeS !== null) return s.firstChangeS;
  let start = s.primary.failAtS ?? s.durationS;
  for (const sig of ["latency_ms", "error_rate", "cpu", "memory", "disk_io", "queue_depth"] as const) {
    const tr = s.primary.trace(sig);
    const v0 = tr.at(s.historyS);
    for (let t = s.historyS; t < start; t += 0.5) if (Math.abs(tr.at(t) - v0) > Math.max(1e-9, Math.abs(v0) * 0.1)) { start = t; break; }
  }
  return start;
}

interface Request { atMs: number; read: boolean; key: string; user: string }

export interface RunOptions {
  seed?: number;
  /** Receives one line a second: shadowmesh's risk and its top contributions (the CLI's --trace). */
  trace?: (line: string) => void;
}

export async function runIncident(scenario: Scenario, mode: Mode, o: RunOptions = {}): Promise<ModeResult> {
  const seed = o.seed ?? 1;
  const clock = new ManualClock(1_800_000_000_000);
  /** Traffic starts now; the scenario's second 0 lies history_s before (times in results are scenario time). */
  const runStartMs = clock.monotonicNs() / 1e6;
  const startMs = runStartMs - scenario.historyS * 1000;
  const nowMs = () => clock.monotonicNs() / 1e6;
  const tS = () => Math.round((nowMs() - startMs) / 100) / 10;
  const { leaseMs, skewMs: LEASE_SKEW_MS } = demoLease();
  // The modes whose writer holds a lease: reactive (Patroni's rule) and shadowmesh (its controller).
  const leased = mode === "reactive" || mode === "shadowmesh";
  const pair = new SimulatedPair(scenario, clock, startMs, mulberry32(seed * 3), { leaseRequired: leased, commonRandom: true });
  // The writer's lease from before the run (a deployment grants it before traffic).
  if (leased) pair.act("lease", "primary", { epoch: 1, expiresAtMs: wallMs(clock) + leaseMs });
  const wallStartMs = wallMs(clock) - scenario.historyS * 1000;
  const decisions: ModeResult["decisions"] = [];
  const upstreams = new Upstreams({ nowMs: () => wallMs(clock), random: mulberry32(seed * 7) });

  const deployment = deploySystem(mode, {
    scenario, seed, clock, pair, upstreams, startMs, wallStartMs, nowMs, tS,
    lease: { leaseMs, skewMs: LEASE_SKEW_MS }, decisions, ...(o.trace ? { trace: o.trace } : {}),
  });
  // Awaited here, not in deploySystem: the controller starts and traffic follows in the same turn.
  if (deployment.ready) await deployment.ready;
  const sut = deployment.start();

  // ---------------------------------------------------------------- traffic
  const rand = mulberry32(seed);
  const acked: string[] = [];
  let writeSeq = 0;
  const incidentS = incidentStartS(scenario);
  const totals = { requests: 0, failed: 0, failedReads: 0, failedWrites: 0 };
  const deathMs = scenario.primary.failAtS === null ? null : startMs + scenario.primary.failAtS * 1000;
  /** Per worker (reactive: one proxy), the first read sent to the shadow after the death. */
  const divertedAt = new Map<number, number>();
  let writeAcceptedAt: number | null = null;
  let twoWriters = 0;
  const checkWriters = () => { if (pair.writable("primary") && pair.writable("shadow")) twoWriters++; clock.setTimer(100, checkWriters); };
  clock.setTimer(100, checkWriters);
  const incidentLatencies: number[] = [];
  const sidesSeen: Tallies["sidesSeen"] = [];
  const perSecond = (t: number) => { const s = Math.floor(t); sidesSeen[s] ??= { t: s, toShadow: 0, total: 0 }; return sidesSeen[s]!; };

  const send = (r: Request) => {
    totals.requests++;
    const t0 = nowMs(), tAt = (t0 - startMs) / 1000;
    let settled = false;
    const settle = (failed: boolean) => {
      if (settled) return;
      settled = true;
      if (failed) { totals.failed++; if (r.read) totals.failedReads++; else totals.failedWrites++; }
      else if (!r.read && deathMs !== null && t0 >= deathMs) writeAcceptedAt ??= nowMs();
      if (incidentS !== null && tAt >= incidentS) incidentLatencies.push(Math.min(nowMs() - t0, CLIENT_TIMEOUT_MS));
    };
    let stream: HttpStream | undefined;
    clock.setTimer(CLIENT_TIMEOUT_MS, () => {
      // The client gives up; a request the filter still holds ends with it (Envoy: a downstream reset), never forwarded.
      if (!settled && stream?.requestPaused) { stream.onResume = undefined; stream.onLocalResponse = undefined; stream.complete(); }
      settle(true);
    });
    const headers = new HeaderMap([[":authority", "orders.svc"], [":path", `/kv/${r.key}`], [":method", r.read ? "GET" : "PUT"], [":scheme", "http"], ["x-user", r.user], ["x-request-id", `req-${totals.requests}`]]);
    if (!r.read) { headers.set("content-type", "text/plain"); headers.set("content-length", "24"); }
    // The proxy worker the request runs on (without the filter, the one Envoy: 0).
    const worker = totals.requests % sut.workers;
    const plugin = sut.plugin;
    if (plugin) {
      stream = plugin.newHttpStream({ worker });
      stream.sendRequestHeaders(headers, r.read);
      const local = stream.localResponse;
      if (local) {
        // The filter answered itself (writes held during a failover): nothing reaches an upstream.
        stream.complete();
        settle(local.status >= 500);
        return;
      }
      if (!r.read) stream.sendRequestBody(`value-${writeSeq}`.padEnd(24, "."), true);
    }
    const finish = (status: number, body: string, flags: number) => {
      if (stream) {
        if (flags) stream.setProperty("response.flags", BigInt(flags));
        stream.sendResponseHeaders(new HeaderMap([[":status", String(status)], ["content-type", "application/json"]]), false);
        stream.sendResponseBody(body, true);
        stream.complete();
      }
      settle(status >= 500);
      if (status === 200 && !r.read) acked.push(r.key);
    };
    const answerLocally = (s: HttpStream) => { const local = s.localResponse!; s.complete(); settle(local.status >= 500); };
    // A write the filter holds (a switch of the writer) goes on when the filter continues it, with the
    // routing header it set then, or is answered by it later, as Envoy does (decodeHeaders StopIteration).
    if (stream?.requestPaused) {
      const held = stream;
      const settleHeld = (then: () => void) => {
        held.onResume = undefined; held.onLocalResponse = undefined;
        queueMicrotask(() => { if (!settled) then(); });
      };
      held.onResume = () => settleHeld(() => forward());
      held.onLocalResponse = () => settleHeld(() => answerLocally(held));
      return;
    }
    forward();
    function forward(): void {
      const cluster = sut.routeOf(headers);
      const ep = cluster ? upstreams.pick(cluster) : undefined;
      if (!cluster || !ep) { finish(503, "no healthy upstream", RESPONSE_FLAGS.NoHealthyUpstream); return; }
      const side = sideOf(ep);
      if (r.read && side === "shadow" && deathMs !== null && t0 >= deathMs) {
        if (!divertedAt.has(worker)) divertedAt.set(worker, t0);
      }
      const sec = perSecond(tAt);
      sec.total++;
      if (side === "shadow") sec.toShadow++;
      stream?.setProperty("xds.cluster_name", cluster);
      pair.request(side, { write: !r.read, key: r.key }, (a: PairAnswer) => {
        if ("refused" in a) {
          upstreams.report(cluster, ep, "local_origin_error");
          finish(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure", RESPONSE_FLAGS.UpstreamConnectionFailure);
        } else {
          upstreams.report(cluster, ep, a.status);
          finish(a.status, a.body, 0);
        }
        sut.answered();
      });
    }
  };

  const interval = 1000 / scenario.rateRps;
  let issued = 0;
  const endMs = startMs + scenario.durationS * 1000;
  const pump = () => {
    const due = Math.floor(((nowMs() - runStartMs) / 1000) * scenario.rateRps);
    while (issued < due) {
      issued++;
      const user = `user-${Math.floor(rand() * scenario.keys)}`;
      const read = rand() < scenario.readShare && acked.length > 0;
      const key = read ? acked[Math.floor(rand() * acked.length)]! : `w${++writeSeq}`;
      send({ atMs: nowMs(), read, key, user });
    }
  };
  while (nowMs() < endMs) {
    clock.advance(Math.min(STEP_MS, interval));
    pump();
    await new Promise((r) => setImmediate(r));
  }
  // Let requests in flight finish (or time out).
  for (let i = 0; i < CLIENT_TIMEOUT_MS / STEP_MS; i++) { clock.advance(STEP_MS); await new Promise((r) => setImmediate(r)); }
  sut.stop();

  return modeResult(scenario, { totals, sidesSeen, incidentLatencies, deathMs, divertedAt, writeAcceptedAt, twoWriters }, decisions, sut.workers, sut.extra());
}
