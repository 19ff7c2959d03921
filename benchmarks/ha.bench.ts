// HA fleet: controller replicas on a real 3-member etcd cluster (Debian etcd 3.4, loopback), each
// replica a process (ha-replica.ts) serving its own share of raw ADS streams (xds-clients.ts, a
// process per replica). One weight change: the leader stores the status in etcd and publishes; the
// followers apply it from their etcd watch; timed from the leader's save to each stream's ACK at its
// replica (one wall clock, one machine). Then the leader is SIGKILLed: failover_s is the time until
// another replica leads (lease TTL + campaign). Server memory per stream per replica. Fleets of
// 10,000 and then larger (20,000, 30,000, 50,000) until one does not ACK within 30 s. Telemetry: at
// 10,000 proxies, each follower's proxies (5,000 each, one report a second each, real filter reports
// re-stamped) report to their replica for 5 s; reports_per_s is what the leader merged per second
// (all of it forwarded by the followers), against the 10,000 a second sent.
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

interface Child { p: ChildProcess; clientsPid: number; rssPerStream: number; elected: boolean; electedAtMs: number }

const ask = <T>(k: Child, msg: object, key: string): Promise<T> => new Promise((resolve) => {
  const on = (m: Record<string, unknown>) => { if (key in m) { k.p.off("message", on); resolve(m as T); } };
  k.p.on("message", on);
  k.p.send(msg);
});

async function fleet(endpoints: string[], total: number, template: string | null): Promise<{ p50: number; p99: number; max: number; acked: number; rssPerStream: number; failoverS: number; reportsPerS: number; reportsSent: number }> {
  const prefix = `/bench-${randomBytes(3).toString("hex")}/`;
  const kids: Child[] = [];
  const per = Math.ceil(total / REPLICAS);
  try {
    for (let i = 0; i < REPLICAS; i++) {
      const p = fork(new URL("./ha-replica.ts", import.meta.url), [endpoints.join(","), `r${i}`, prefix, String(per), String(TTL_S)], { execArgv: ["--expose-gc", "--import", "tsx"] });
      p.on("error", () => undefined); // a send after it exited: it is being stopped anyway
      const k: Child = { p, clientsPid: 0, rssPerStream: 0, elected: false, electedAtMs: 0 };
      p.on("message", (m: { elected?: boolean; atMs?: number }) => { if (m.elected) { k.elected = true; k.electedAtMs = m.atMs!; } });
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
    // Telemetry: the followers' proxies report for 5 s; the leader merges what they forward.
    let reportsPerS = NaN, reportsSent = 0;
    if (template) {
      const followers = kids.filter((k) => k !== leader);
      const SECONDS = 5, PER_S = Math.round(total / followers.length);
      const c0 = (await ask<{ reports: number }>(leader, { count: true }, "reports")).reports;
      const t = wall();
      const sent = await Promise.all(followers.map((k) => ask<{ blasted: number }>(k, { blast: { perS: PER_S, seconds: SECONDS, template } }, "blasted")));
      await new Promise((r) => setTimeout(r, 1000)); // the last forwards land
      const c1 = (await ask<{ reports: number }>(leader, { count: true }, "reports")).reports;
      reportsSent = sent.reduce((a, x) => a + x.blasted, 0);
      reportsPerS = (c1 - c0) / ((wall() - t) / 1000);
      console.error(`telemetry: ${reportsSent} reports sent to the followers over ${SECONDS} s, ${c1 - c0} merged at the leader: ${reportsPerS.toFixed(0)}/s`);
    }
    // Failover: the leader killed (with its clients); the first follower to lead.
    const killedAt = wall();
    leader.p.kill("SIGKILL");
    try { process.kill(leader.clientsPid, "SIGKILL"); } catch { /* gone */ }
    const others = kids.filter((k) => k !== leader);
    const deadline = Date.now() + (TTL_S + 10) * 1000;
    while (!others.some((k) => k.elected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const next = others.find((k) => k.elected);
    return { p50: q(0.5), p99: q(0.99), max: lat.at(-1) ?? NaN, acked: lat.length, rssPerStream: Math.max(...kids.map((k) => k.rssPerStream)), failoverS: next ? (next.electedAtMs - killedAt) / 1000 : NaN, reportsPerS, reportsSent };
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
    reports_per_s: r10k.reportsPerS,
    reports_sent_10000: r10k.reportsSent,
    lease_ttl_s: TTL_S,
    rss_bytes_per_proxy: r10k.rssPerStream,
    max_fleet_proxies: max.n,
    ack_p99_ms_max_fleet: max.r.p99,
    rss_bytes_per_proxy_max_fleet: max.r.rssPerStream,
  }, {
    targets: { ack_p99_ms_10000: "<= 2000", reports_per_s: ">= 10000", failover_s: `<= lease TTL + 2 (${TTL_S + 2})`, max_fleet_proxies: "50,000 is the goal" },
    method: `${REPLICAS} controller replicas (processes) on a real 3-member etcd 3.4 cluster on loopback; the proxies are raw SotW ADS streams subscribed to one RDS route, 100 per TCP connection, in one client process per replica, spread evenly; the leader saves the status (guarded etcd transaction) and publishes, followers apply it from their etcd watch; latency from the leader's save to each ACK at its replica (wall clock, one machine). failover_s: leader SIGKILLed, until a follower is elected (lease TTL ${TTL_S} s). rss_bytes_per_proxy: a replica's RSS growth with its streams open, after GC, the largest replica. reports_per_s: at 10,000 proxies, the two followers' proxies send one real filter report each per second (re-stamped: node id, sequence, window) to their replica for 5 s; what the leader merged per second, all of it forwarded by the followers one report per call. All of it on the same 2 cores: replicas, client processes and etcd members share them. Peers: Istio announced endpoint pushes to 500 sidecars in under a second; one process here (xds.json) is the single-replica baseline.`,
  });
} finally {
  await cluster.close();
}
process.exit(0);
