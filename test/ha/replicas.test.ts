// Three controller replicas (`shadowmesh controller --config FILE` processes with `ha:`) on a real
// 3-member etcd cluster, each serving its own embedded data plane (the real filter), the sample KV
// pair (requiring the lease) behind them, writes flowing. A migration is started on the leader and the
// leader is SIGKILLed as the proxies receive step 2's weight. Checked:
//   - a follower leads within the lease TTL + 2 s and resumes at the same step (the resume is an event);
//   - every plugin configuration each surviving replica's proxy accepted carries a shadow weight that
//     never goes back and never skips a step (0, 20, 50, 100 %): no weight change in the takeover;
//   - the migration completes (Migrated: writes on the promoted shadow), never two writable nodes;
//   - a command sent to a follower is passed on to the leader (the caller's own credentials);
//   - quorum lost (2 of 3 etcd members killed): every replica says so (/readyz, /metrics, the
//     dashboard's state), decides
//     nothing, and its proxy keeps the routes it had.
// Skips, saying so, without etcd.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { silentLogger } from "../../controller/log.js";
import { controllerClient, authMetadata, type ControllerClient } from "../../controller/api/service.js";
import { TYPE } from "../../protocol/protos.js";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { parseExtensionConfig } from "../../dataplane/resources.js";
import type { AnyResource } from "../../dataplane/xds-client.js";
import { KvNode } from "../../world/sample/kv.js";
import { LoadGenerator } from "../../world/demo/load.js";
import { etcdAvailable, startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { whenAvailable } from "../support/real-servers.js";
import { kvPairYaml } from "../support/controller-config.js";
import { freePorts, until } from "../support/until.js";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The leader lease: 3 s (2 s let a leader on these loaded 2 cores miss its keep-alives and step down, seen once). */
const TTL_S = 3;

interface Replica { name: string; ports: { xds: number; telemetry: number; api: number; http: number; listener: number }; child: ChildProcess | null; err: string; api: ControllerClient | null; dp: EmbeddedDataPlane | null; weights: number[] }
interface Ready { ha?: { role: string; leader: string | null; quorum: boolean; term: number | null } }

whenAvailable("ha replicas", etcdAvailable(), "3 replicas on etcd: the leader SIGKILLed mid-shift, a follower resumes at the same step, no proxy sees a weight go back, never two writers; quorum lost: no decisions, said so", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-ha-"));
  const log = silentLogger();
  const adminToken = randomBytes(16).toString("hex"), token = randomBytes(16).toString("hex");
  const primary = new KvNode({ name: "orders-zone-a", side: "primary", zone: "zone-a", role: "leader", requireLease: true, adminToken, seed: 3, log });
  const shadow = new KvNode({ name: "orders-zone-b", side: "shadow", zone: "zone-b", role: "follower", requireLease: true, adminToken, seed: 5, log });
  let cluster: EtcdCluster | null = null;
  const replicas: Replica[] = [];
  let loads: LoadGenerator[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let bothWritable = 0, samples = 0;
  const prefix = `/sm-${randomBytes(3).toString("hex")}/`;
  const readyz = async (r: Replica): Promise<Ready | null> => fetch(`http://127.0.0.1:${r.ports.http}/readyz`, { signal: AbortSignal.timeout(1000) }).then((x) => x.json() as Promise<Ready>, () => null);
  const alive = (r: Replica) => r.child !== null && r.child.exitCode === null && r.child.signalCode === null;
  const call = <T>(r: Replica, method: string, req: object): Promise<T> => new Promise((resolve, reject) => {
    r.api![method]!(req, authMetadata(r.api!), { deadline: Date.now() + 3000 }, (e: grpc.ServiceError | null, x: T) => (e ? reject(e) : resolve(x)));
  });
  interface Described { phase: string; stepIndex: number; shadowWeightPercent: number; writeTarget: string; lastDecisions: { message: string }[]; message: string; lastVerdict: string }
  const leaderNow = async (): Promise<Replica | null> => {
    for (const r of replicas) if (alive(r) && (await readyz(r))?.ha?.role === "leader") return r;
    return null;
  };
  let killAt: number | null = null, killedAtMs = 0;
  let killed: Replica | null = null;

  try {
    cluster = await startEtcdCluster();
    await primary.start(); await shadow.start();
    primary.setPeer(shadow.url); shadow.setPeer(primary.url);
    // The demo's policy, but latency verified against 10x the baseline p90 instead of 3x: this test is
    // about the takeover, and its proxies share a host that the other test lane loads (CI once ran the
    // shift past the 40 s allowed). Errors and consistency are verified as in the demo.
    const policyFile = path.join(dir, "policy.yaml");
    writeFileSync(policyFile, `${readFileSync(path.join(root, "world", "demo", "policy.yaml"), "utf8")}components:\n  orders:\n    verification: { latencyRatio: 10 }\n`);
    sampler = setInterval(() => { samples++; if (primary.writable && shadow.writable) bothWritable++; }, 100);
    for (let i = 0; i < 3; i++) {
      const [xds, telemetry, api, http, listener] = await freePorts(5);
      const r: Replica = { name: `r${i}`, ports: { xds: xds!, telemetry: telemetry!, api: api!, http: http!, listener: listener! }, child: null, err: "", api: null, dp: null, weights: [] };
      const file = path.join(dir, `r${i}.yaml`);
      writeFileSync(file, `
listen: { xds: "127.0.0.1:${xds}", telemetry: "127.0.0.1:${telemetry}", api: "127.0.0.1:${api}", http: "127.0.0.1:${http}" }
api: { tokens: ["${token}"] }
policy: ${policyFile}
tickMs: 100
ha: { etcd: { endpoints: ${JSON.stringify(cluster.endpoints)}, prefix: "${prefix}", callTimeoutMs: 1500 }, replica: r${i}, leaseTtlS: ${TTL_S} }
dataplane: { listener: "127.0.0.1:${listener}", wasm: ${path.join(root, "build", "shadowmesh.wasm")}, telemetryIntervalMs: 500 }
${kvPairYaml({ primaryPort: primary.port, shadowPort: shadow.port, shadowUrl: shadow.url, actionsUrl: shadow.url, adminToken })}`);
      const c = spawn(process.execPath, [path.join(root, "bin", "shadowmesh.mjs"), "controller", "--config", file], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SHADOWMESH_LOG_LEVEL: "warn" } });
      r.child = c;
      c.stderr!.on("data", (d) => { r.err = (r.err + d).slice(-4000); });
      let out = "";
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`replica r${i} not ready within 30 s: ${r.err}`)), 30_000);
        c.stdout!.on("data", (d) => { out += d; if (/ready/.test(out)) { clearTimeout(t); resolve(); } });
        c.once("exit", (code, sig) => { clearTimeout(t); reject(new Error(`replica r${i} exited (${code ?? sig}) before ready: ${r.err}`)); });
      });
      r.api = controllerClient(`127.0.0.1:${api}`, token);
      const dp = new EmbeddedDataPlane({ xds: `127.0.0.1:${xds}`, node: { id: `sidecar-${i}`, cluster: "ha", zone: "zone-a" }, log });
      const hooked = dp as unknown as { apply: (t: string, rs: AnyResource[]) => Promise<string | null> };
      const apply = hooked.apply.bind(dp);
      hooked.apply = async (t, rs) => {
        const e = await apply(t, rs);
        if (e === null && t === TYPE.extension) for (const x of rs) {
          const cfg = JSON.parse(parseExtensionConfig(x).configuration) as { components: { name: string; shadow_weight_bp: number }[] };
          const bp = cfg.components.find((k) => k.name === "orders")?.shadow_weight_bp;
          if (bp === undefined) continue;
          r.weights.push(bp);
          if (killAt !== null && bp === killAt) { killAt = null; void leaderNow().then((l) => { if (l && alive(l)) { killed = l; killedAtMs = Date.now(); l.child!.kill("SIGKILL"); } }); }
        }
        return e;
      };
      dp.start();
      r.dp = dp;
      replicas.push(r);
    }
    for (const r of replicas) assert.is(await r.dp!.listenerPort("shadowmesh-ingress", 15_000), r.ports.listener);
    await until("a leader", async () => (await leaderNow()) !== null, 10_000);
    const leader = (await leaderNow())!;
    const follower = replicas.find((r) => r !== leader)!;

    // The load through every replica's proxy (a replica lost takes its proxies' telemetry with it until they reconnect elsewhere).
    loads = replicas.map((r, i) => new LoadGenerator({ target: `127.0.0.1:${r.ports.listener}`, host: "orders.svc", rateRps: 40, readShare: 0.8, keys: 500, seed: 23 + i }));
    for (const l of loads) l.start();
    await sleep(1500);
    killAt = 5000;
    // Sent to a follower (as a Service in front of the replicas would): passed on to the leader, which starts it.
    const p = await call<{ message: string; phase: string }>(follower, "promote", { component: "orders", reason: "ha test" });
    assert.is(p.phase, "Preflight", p.message);
    assert.is((await call<Described>(leader, "getComponent", { name: "orders" })).phase, "Preflight", "the leader took the command");
    let lastSeen = "";
    await until("the leader killed at step 2", async () => {
      if (killed !== null) return true;
      const d = await call<Described>(leader, "getComponent", { name: "orders" }).catch(() => null);
      if (d) lastSeen = `${d.phase} step ${d.stepIndex}: ${d.message}; last verdict: ${d.lastVerdict}; ${d.lastDecisions.slice(-6).map((x) => x.message).join(" | ")}`;
      return false;
    }, 30_000, () => `${replicas.map((r) => `${r.name}: ${r.weights.join(",")}`).join("; ")}; leader ${leader.name}: ${lastSeen}; ${leader.err.slice(-1500)}`);
    const killedName = (killed as Replica | null)?.name ?? "?";
    await until("a new leader", async () => (await leaderNow()) !== null, (TTL_S + 2) * 1000, () => replicas.map((r) => `${r.name} ${r.err.slice(-300)}`).join(" | "));
    const tookS = (Date.now() - killedAtMs) / 1000;
    const next = (await leaderNow())!;
    const d = await call<Described>(next, "getComponent", { name: "orders" });
    assert.ok(d.lastDecisions.some((x) => /resuming Shifting at step 2/.test(x.message)) || d.stepIndex >= 1, `${d.phase} ${d.stepIndex}: ${d.lastDecisions.map((x) => x.message).join(" | ")}`);
    let last: Described | null = null;
    const said = (x: Described | null) => `${x?.phase} ${x?.message}; last verdict: ${x?.lastVerdict}; decisions: ${x?.lastDecisions.slice(-8).map((e) => e.message).join(" | ")}`;
    await until("Migrated", async () => {
      last = await call<Described>(next, "getComponent", { name: "orders" });
      if (last.phase === "Paused" || last.phase === "RollingBack") throw new Error(`the new leader ${next.name} stopped the migration: ${said(last)}`);
      return last.phase === "Migrated";
    }, 40_000, () => said(last));
    assert.is(shadow.role, "leader", "the shadow was promoted");
    // The actions carried the deciding leader's term: the promote came from the new leader's term.
    const term = (await readyz(next))?.ha?.term;
    assert.ok(term && shadow.controllerTerm === term, `the shadow saw term ${shadow.controllerTerm}, the leader's is ${term}`);
    for (const r of replicas.filter((x) => x !== killed)) {
      await until(`${r.name}'s proxy at 100 %`, () => r.weights.at(-1) === 10000, 10_000, () => r.weights.join(","));
      for (let i = 1; i < r.weights.length; i++) assert.ok(r.weights[i]! >= r.weights[i - 1]!, `${r.name}: a weight went back: ${r.weights.join(",")}`);
      assert.equal([...new Set(r.weights)], [0, 2000, 5000, 10000], `${r.name}: every step, in order: ${r.weights.join(",")}`);
    }
    assert.is(bothWritable, 0, "two writable nodes");
    // The impact analysis is the leader's (it merges every replica's proxies): asked of a follower, the
    // graph names the leader's own proxy as a caller, which the follower's own reports never carry.
    const other = replicas.find((r) => r !== next && r !== killed)!;
    let callers: string[] = [];
    await until("the leader's graph through a follower", async () => {
      const im = await call<{ edges: { caller: string; callee: string }[] }>(other, "getImpact", {}).catch(() => ({ edges: [] }));
      callers = im.edges.filter((e) => e.callee === "orders").map((e) => e.caller).sort();
      return callers.includes(`sidecar-${replicas.indexOf(next)}`) && callers.includes(`sidecar-${replicas.indexOf(other)}`);
    }, 15_000, () => `callers of orders via ${other.name}: ${callers.join(", ")}; leader ${next.name}`);
    const ts = loads.map((l) => l.totals());
    const t = { failedReads: ts.reduce((a, x) => a + x.failedReads, 0), reads: ts.reduce((a, x) => a + x.reads, 0), failedWrites: ts.reduce((a, x) => a + x.failedWrites, 0), writes: ts.reduce((a, x) => a + x.writes, 0) };

    // Quorum lost: the live replicas say so and decide nothing; their proxies keep the routes.
    const etcdLeader = (await cluster.leader()) ?? 0;
    await cluster.kill(etcdLeader);
    await cluster.kill([0, 1, 2].find((i) => i !== etcdLeader)!);
    const live = replicas.filter(alive);
    let seen: (Ready | null)[] = [];
    await until("every live replica to report no quorum", async () => (seen = await Promise.all(live.map(readyz))).every((x) => x?.ha?.quorum === false && x.ha.role !== "leader"), (TTL_S + 6) * 1000,
      () => `${JSON.stringify(seen.map((x) => x?.ha))}; ${live.map((r) => `${r.name} ${alive(r) ? "alive" : `exited ${r.child?.exitCode ?? r.child?.signalCode}`}: ${alive(r) ? r.err.slice(-300) : r.err}`).join(" | ")}`);
    for (const r of live) {
      // The dashboard's state says it too (its header shows it).
      const st = await (await fetch(`http://127.0.0.1:${r.ports.http}/api/state`)).json() as { ha: { replica: string; quorum: boolean } | null };
      assert.equal([st.ha?.replica, st.ha?.quorum], [r.name, false]);
      const m = await (await fetch(`http://127.0.0.1:${r.ports.http}/metrics`)).text();
      assert.match(m, /\nshadowmesh_ha_quorum 0\n/);
      assert.match(m, new RegExp(`\\nshadowmesh_ha_leader\\{replica="${r.name}"\\} 0\\n`));
      assert.is(r.weights.at(-1), 10000, "the proxy kept its routes");
    }
    const noDecision = await call<{ message: string }>(live[0]!, "pause", { component: "orders", reason: "ha test" }).then((x) => x.message, (e: Error) => e.message);
    assert.match(noDecision, /follower replica|no longer decides/);
    console.log(`  ha: leader ${killedName} killed at step 2, ${next.name} led after ${tookS.toFixed(1)} s (TTL ${TTL_S} s) and finished the migration; weights ${replicas.filter((r) => r !== killed).map((r) => `${r.name} ${[...new Set(r.weights)].map((b) => b / 100).join("->")}`).join(", ")} %; ${t.failedReads}/${t.reads} reads and ${t.failedWrites}/${t.writes} writes failed; ${samples} writability samples, 0 with two writers; no quorum reported by ${live.length} replicas`);
  } finally {
    clearInterval(sampler);
    for (const l of loads) await l.stop();
    for (const r of replicas) {
      if (alive(r)) { r.child!.kill("SIGKILL"); await new Promise((res) => r.child!.once("exit", res)); }
      await r.dp?.close();
      r.api?.close();
    }
    await primary.stop(); await shadow.stop();
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
