// HA fleet: controller replicas on a real 3-member etcd cluster (Debian etcd 3.4, loopback), each
// replica a process (ha-replica.ts) serving its own share of raw ADS streams (xds-clients.ts, a
// process per replica). One weight change: the leader stores the status in etcd and publishes; the
// followers apply it from their etcd watch; timed from the leader's save to each stream's ACK at its
// replica (one wall clock, one machine). Then the leader is SIGKILLed: failover_s is the time until
// another replica leads (lease TTL + campaign). Server memory per stream per replica. Fleets of
// 10,000 and then larger (20,000, 30,000, 50,000) until one does not ACK within 30 s. Telemetry: at
// 10,000 proxies, every proxy (3,334 per replica) reports once a second for 5 s, from its replica's
// report-clients.ts process; reports_per_s is what the leader merged (its own proxies' and what the
// followers forwarded) per second of the time it took, against the 10,000 a second sent.
import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { etcdAvailable, startEtcdCluster } from "../test/support/etcd-cluster.js";
import { writeResult } from "./harness.js";
import { rig, config, component, get, roundTrip } from "../test/support/filter.js";

/** One real filter report (the optimized filter after 20 reads), base64: the template the replicas re-stamp. */
async function reportTemplate(): Promise<string> {
  const r = await rig(config([component()], { telemetry: { cluster: "controller", interval_ms: 1000 } }));
  for (let i = 0; i < 20; i++) roundTrip(r, get(`/item/${i}`), { status: 200, latencyMs: 5 });
  r.clock.advance(1000);
  const call = r.callouts.takeGrpc().find((c) => c.req.method === "Report");
  if (!call) throw new Error("the filter sent no report");
  return Buffer.from(call.req.message!).toString("base64");
}

const REPLICAS = 3, TTL_S = 3;
const wall = () => performance.timeOrigin + performance.now();

interface Child { p: ChildProcess; clientsPid: number; rssPerStream: number; elected: boolean; electedAtMs: number; elections: number }

const ask = <T>(k: Child, msg: object, key: string): Promise<T> => new Promise((resolve) => {
  const on = (m: Record<string, unknown>) => { if (key in m) { k.p.off("message", on); resolve(m as T); } };
  k.p.on("message", on);
  k.p.send(msg);
});

async function fleet(endpoints: string[], total: number, template: string | null): Promise<{ p50: number; p99: number; max: number; acked: number; rssPerStream: number; failoverS: number; telemetry: Record<"stream" | "unary", { perS: number; sent: number; merged: number; failed: number; elections: number; lastMergeS: number }> }> {
  const prefix = `/bench-${randomBytes(3).toString("hex")}/`;
  const kids: Child[] = [];
  const per = Math.ceil(total / REPLICAS);
  try {
    for (let i = 0; i < REPLICAS; i++) {
      const p = fork(new URL("./ha-replica.ts", import.meta.url), [endpoints.join(","), `r${i}`, prefix, String(per), String(TTL_S)], { execArgv: ["--expose-gc", "--import", "tsx", ...(process.env.HA_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.HA_PROF}`] : [])] });
      p.on("error", () => undefined); // a send after it exited: it is being stopped anyway
      const k: Child = { p, clientsPid: 0, rssPerStream: 0, elected: false, electedAtMs: 0, elections: 0 };
      p.on("message", (m: { elected?: boolean; atMs?: number }) => { if (m.elected) { k.elected = true; k.electedAtMs = m.atMs!; k.elections++; } });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`replica r${i}: ${per} streams not ready within 180 s`)), 180_000);
        p.on("message", (m: { ready?: boolean; rssPerStream?: number; clientsPid?: number }) => { if (m.ready) { clearTimeout(t); k.rssPerStream = m.rssPerStream!; k.clientsPid = m.clientsPid!; resolve(); } });
        p.on("exit", (c) => { clearTimeout(t); reject(new Error(`replica r${i} exited ${c}`)); });
      });
      kids.push(k);
    }
    const leader = kids.find((k) => k.elected);
    if (!leader) throw new Error("no replica leads");
    const t0 = wall();
    const got = kids.map((k) => new Promise<number[]>((resolve) => k.p.once("message", (m: { acks?: number[] }) => resolve(m.acks ?? []))));
    for (const k of kids) k.p.send({ change: 1000, t0 });
    const lat = (await Promise.all(got)).flat().sort((a, b) => a - b);
    const q = (x: number) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))] ?? NaN;
    // Telemetry: every replica's proxies report once a second for SECONDS; the leader merges its own
    // and what the followers forward. The rate is what the leader merged over the time it took: the
    // sending window when it keeps up, longer when it falls behind. First on streams (as the
    // controller configures the filter), then, as the peer in the same run, one unary call per report.
    const blank = () => ({ perS: NaN, sent: 0, merged: 0, failed: 0, elections: 0, lastMergeS: NaN });
    const telemetry: Record<"stream" | "unary", ReturnType<typeof blank>> = { stream: blank(), unary: blank() };
    const elections = () => kids.reduce((a, k) => a + k.elections, 0);
    if (template) {
      const SECONDS = 5;
      const start = BigInt(Math.round(wall())) * 1_000_000n;
      for (const [i, mode] of (["stream", "unary"] as const).entries()) {
        const endNs0 = String(start + BigInt(i * SECONDS) * 1_000_000_000n);
        await Promise.all(kids.map((k) => ask(k, { prepare: { proxies: per, seconds: SECONDS, template, endNs0, firstSequence: 1 + i * SECONDS, unary: mode === "unary" } }, "prepared")));
        const c0 = (await ask<{ reports: number }>(leader, { count: true }, "reports")).reports;
        const e0 = elections();
        const t = wall();
        const sent = await Promise.all(kids.map((k) => ask<{ blasted: number; failed: number }>(k, { go: true }, "blasted")));
        await new Promise((r) => setTimeout(r, 1500)); // the last forwards land
        const c1 = await ask<{ reports: number; lastMergeAtMs: number }>(leader, { count: true }, "reports");
        const m = telemetry[mode];
        m.sent = sent.reduce((a, x) => a + x.blasted, 0);
        m.failed = sent.reduce((a, x) => a + x.failed, 0);
        m.merged = c1.reports - c0;
        m.lastMergeS = (c1.lastMergeAtMs - t) / 1000;
        m.perS = m.merged / Math.max(SECONDS, m.lastMergeS);
        m.elections = elections() - e0; // a new leader elected meanwhile: the leader lost its lease under the load
        console.error(`telemetry (${mode}): ${m.sent} reports sent over ${SECONDS} s (${m.failed} not answered), ${m.merged} merged at the leader, the last ${m.lastMergeS.toFixed(2)} s after the first was sent: ${m.perS.toFixed(0)}/s${m.elections ? `; the leader lost its lease (${m.elections} election(s) during the run)` : ""}`);
      }
    }
    // Failover: the leader of the moment (the load above may have moved it) killed with its clients;
    // the first other replica elected after that.
    let current: Child | undefined;
    for (const until = Date.now() + (TTL_S + 10) * 1000; !current && Date.now() < until;) {
      const roles = await Promise.all(kids.map((k) => ask<{ role: string }>(k, { count: true }, "reports")));
      current = kids[roles.findIndex((r) => r.role === "leader")];
      if (!current) await new Promise((r) => setTimeout(r, 200));
    }
    if (!current) throw new Error("no replica leads before the failover");
    const killedAt = wall();
    current.p.kill("SIGKILL");
    try { process.kill(current.clientsPid, "SIGKILL"); } catch { /* gone */ }
    const others = kids.filter((k) => k !== current);
    const electedAfter = () => others.find((k) => k.electedAtMs > killedAt);
    const deadline = Date.now() + (TTL_S + 10) * 1000;
    while (!electedAfter() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const next = electedAfter();
    return { p50: q(0.5), p99: q(0.99), max: lat.at(-1) ?? NaN, acked: lat.length, rssPerStream: Math.max(...kids.map((k) => k.rssPerStream)), failoverS: next ? (next.electedAtMs - killedAt) / 1000 : NaN, telemetry };
  } finally {
    for (const k of kids) { try { k.p.send({ exit: true }); } catch { /* gone */ } setTimeout(() => { k.p.kill("SIGKILL"); try { process.kill(k.clientsPid, "SIGKILL"); } catch { /* gone */ } }, 1000).unref(); }
    await new Promise((r) => setTimeout(r, 1500));
  }
}

const why = etcdAvailable();
if (why) { console.error(`ha benchmark: ${why}`); process.exit(1); }
const cluster = await startEtcdCluster();
try {
  const r10k = await fleet(cluster.endpoints, Number(process.env.HA_BENCH_PROXIES ?? 10_000), await reportTemplate());
  console.error(`${r10k.acked} proxies over ${REPLICAS} replicas: ${r10k.acked} ACKs, p50 ${r10k.p50.toFixed(0)} ms, p99 ${r10k.p99.toFixed(0)} ms; failover ${r10k.failoverS.toFixed(2)} s`);
  let max = { n: 10_000, r: r10k };
  for (const n of [20_000, 30_000, 50_000].filter((x) => x <= Number(process.env.HA_BENCH_MAX ?? 50_000))) {
    try {
      const r = await fleet(cluster.endpoints, n, null);
      console.error(`${n} proxies: ${r.acked} ACKs, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms`);
      if (r.acked < n) { console.error(`${n}: only ${r.acked} ACKs within 30 s: stop`); break; }
      max = { n, r };
    } catch (e) { console.error(`${n} proxies: stopped: ${(e as Error).message}`); break; }
  }
  writeResult("ha", {
    replicas: REPLICAS,
    ack_p50_ms_10000: r10k.p50,
    ack_p99_ms_10000: r10k.p99,
    ack_max_ms_10000: r10k.max,
    acked_10000: r10k.acked,
    failover_s: r10k.failoverS,
    reports_per_s: r10k.telemetry.stream.perS,
    reports_sent_10000: r10k.telemetry.stream.sent,
    reports_merged_10000: r10k.telemetry.stream.merged,
    reports_unanswered_10000: r10k.telemetry.stream.failed,
    reports_last_merged_after_s: r10k.telemetry.stream.lastMergeS,
    reports_per_s_unary: r10k.telemetry.unary.perS,
    reports_merged_10000_unary: r10k.telemetry.unary.merged,
    reports_stream_vs_unary: r10k.telemetry.stream.perS / r10k.telemetry.unary.perS,
    leader_elections_during_reports: r10k.telemetry.stream.elections,
    leader_elections_during_reports_unary: r10k.telemetry.unary.elections,
    lease_ttl_s: TTL_S,
    rss_bytes_per_proxy: r10k.rssPerStream,
    max_fleet_proxies: max.n,
    ack_p99_ms_max_fleet: max.r.p99,
    rss_bytes_per_proxy_max_fleet: max.r.rssPerStream,
  }, {
    targets: { ack_p99_ms_10000: "<= 2000", reports_per_s: ">= 10000", failover_s: `<= lease TTL + 2 (${TTL_S + 2})`, max_fleet_proxies: "50,000 is the goal" },
    method: `${REPLICAS} controller replicas (processes) on a real 3-member etcd 3.4 cluster on loopback; the proxies are raw SotW ADS streams subscribed to one RDS route, 100 per TCP connection, in one client process per replica, spread evenly; the leader saves the status (guarded etcd transaction) and publishes, followers apply it from their etcd watch; latency from the leader's save to each ACK at its replica (wall clock, one machine). failover_s: leader SIGKILLed, until a follower is elected (lease TTL ${TTL_S} s). rss_bytes_per_proxy: a replica's RSS growth with its streams open, after GC, the largest replica. reports_per_s: at 10,000 proxies, every proxy sends one real filter report a second (re-stamped: node id, sequence, window; encoded beforehand, as the filter does it) to its replica for 5 s on its own StreamReports stream (as the controller configures the filter: telemetry.stream), bare HTTP/2 frames from a process per replica (h2-wire.ts: node:http2's own per-stream writes took ~1 of the 2 cores), 100 proxies per connection, the streams opened before the clock starts; reports_per_s_unary is the same with one unary Report call per report (the peer, same run, 5 s later); the followers forward what they merged to the leader in batches, and every 5 s their subscriber list (as controller/main.ts wires it; the RDS subscribers stand in for ECDS); reports_per_s is what the leader merged divided by the time it took (5 s when it keeps up, longer when it falls behind; reports_last_merged_after_s: when the last was merged, the last round being sent at 4 s). The unary run's count stops at the leader it started with when that leader loses its lease (leader_elections_during_reports_unary). Before 2026-12-01 only the followers' proxies reported (5,000 a second each), from inside the replica's own process with grpc-js and protobufjs encoding per call, and the rate was divided by the 5 s plus a 1 s drain wait. All of it on the same 2 cores: replicas, client processes and etcd members share them. Peers: Istio announced endpoint pushes to 500 sidecars in under a second; one process here (xds.json) is the single-replica baseline.`,
  });
} finally {
  await cluster.close();
}
process.exit(0);
