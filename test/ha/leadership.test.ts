// Controller replicas on a real 3-member etcd cluster (Debian's etcd 3.4, on loopback): one leader;
// its guarded saves land and a follower's are refused; kill -9 of the leader's process: a follower
// takes over within the lease TTL + 2 s and resumes the migration at the step the leader saved, with
// the same routes; SIGSTOP of the leader past its lease, then SIGCONT: etcd refuses its write with
// the old token and it steps down; one etcd member lost: no effect; quorum lost: the save fails, the
// manager stops deciding and says why. Skips, saying so, without etcd.
import { spawn, type ChildProcess } from "node:child_process";
import readline from "node:readline";
import { randomBytes } from "node:crypto";
import * as assert from "uvu/assert";
import { test } from "uvu";
import { silentLogger } from "../../controller/log.js";
import { etcdClient } from "../../controller/ha/client.js";
import { Leadership } from "../../controller/ha/leader.js";
import { EtcdStateStore, NotLeaderError } from "../../controller/ha/etcd-store.js";
import { TermActions, NotLeaderAction } from "../../controller/ha/actions.js";
import { MigrationManager } from "../../controller/migration/manager.js";
import { parsePolicy } from "../../controller/migration/policy.js";
import { initialStatus } from "../../controller/migration/reconcile.js";
import { ManualClock } from "../../host/clock.js";
import { FakeTrafficRouter } from "../support/fake-router.js";
import { etcdAvailable, startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { whenAvailable } from "../support/real-servers.js";

const TTL_S = 2;
const reason = etcdAvailable();
let cluster: EtcdCluster;
const closers: (() => Promise<void> | void)[] = [];

test.before(async () => { if (!reason) cluster = await startEtcdCluster(); });
test.after(async () => { for (const c of closers.reverse()) await c(); if (cluster) await cluster.close(); });

const prefix = () => `/sm-${randomBytes(3).toString("hex")}/`;
const waitFor = async <T>(what: string, f: () => T | null | undefined | false, ms: number): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** A replica in this process. */
async function replica(name: string, pfx: string) {
  const client = etcdClient({ endpoints: cluster.endpoints, callTimeoutMs: 2000 });
  const l = new Leadership({ client, replica: name, ttlS: TTL_S, log: silentLogger(), nowMs: () => Date.now(), prefix: pfx });
  await l.start();
  const store = new EtcdStateStore(l.ns, () => l.token);
  closers.push(async () => { await l.close(); client.close(); });
  return { l, store, client };
}

/** A replica in a child process (test/support/ha-replica-child.ts), to SIGKILL or SIGSTOP. */
function child(name: string, pfx: string) {
  const p: ChildProcess = spawn(process.execPath, ["--import", "tsx", "test/support/ha-replica-child.ts", cluster.endpoints.join(","), name, String(TTL_S), pfx], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: Record<string, unknown>[] = [];
  readline.createInterface({ input: p.stdout! }).on("line", (l) => { try { lines.push(JSON.parse(l)); } catch { /* not ours */ } });
  closers.push(() => { p.kill("SIGKILL"); });
  const send = (cmd: string) => p.stdin!.write(`${cmd}\n`);
  const next = (key: string, from: number, ms = 8000) => waitFor(`${name}: ${key}`, () => lines.slice(from).find((x) => key in x), ms);
  return { p, lines, send, next };
}

const statusAt = (step: number) => ({ ...initialStatus("orders", Date.now()), phase: "Shifting" as const, stepIndex: step, shadowWeightBp: 2000 * (step + 1), revision: step + 1 });

whenAvailable("ha leadership", reason, "one leader; its saves land, a follower's are refused by etcd", async () => {
  const pfx = prefix();
  const a = await replica("a", pfx), b = await replica("b", pfx);
  const leader = await waitFor("a leader", () => (a.l.token ? a : b.l.token ? b : null), 5000);
  const follower = leader === a ? b : a;
  assert.ok(!(a.l.token && b.l.token), "two leaders");
  await leader.store.open(); await follower.store.open();
  await leader.store.save(statusAt(0), []);
  try { await follower.store.save(statusAt(5), []); assert.unreachable("the follower's save landed"); }
  catch (e) { assert.instance(e, NotLeaderError); }
  const check = new EtcdStateStore(leader.l.ns, () => null);
  await check.open();
  assert.is(check.load().statuses.get("orders")?.stepIndex, 0);
  assert.is(follower.l.leader, leader.l.token!.replica, "the follower sees who leads");
});

whenAvailable("ha leadership", reason, "an action on a term etcd no longer holds is refused before it leaves, even while the late leader still thinks it leads", async () => {
  const pfx = prefix();
  const a = await replica("a", pfx), b = await replica("b", pfx);
  const first = await waitFor("a leader", () => (a.l.token ? a : b.l.token ? b : null), 5000);
  const second = first === a ? b : a;
  // The late leader's view: its token, held as a SIGSTOPped process would still hold it.
  const stale = first.l.token!;
  const ran: string[] = [];
  const inner = { run: async (c: string, k: string) => { ran.push(`${c} ${k}`); } };
  const late = new TermActions(inner, () => stale, () => new EtcdStateStore(first.l.ns, () => stale).confirmTerm());
  await late.run("orders", "fence", "primary");
  assert.equal(ran, ["orders fence"], "while the term is current, the action goes out");
  await first.l.close(); // the term ends in etcd (as a lease that ran out); this one stays out of the next campaign
  const now = await waitFor("the other replica to lead", () => second.l.token, 8000);
  try { await late.run("orders", "promote", "shadow"); assert.unreachable("the late leader promoted"); }
  catch (e) { assert.instance(e, NotLeaderAction); assert.match((e as Error).message, new RegExp(`etcd did not confirm term ${stale.revision}`)); }
  assert.equal(ran, ["orders fence"], "nothing else ran");
  const current = new TermActions(inner, () => second.l.token, () => second.store.confirmTerm());
  await current.run("orders", "promote", "shadow");
  assert.equal(ran, ["orders fence", "orders promote"], `the new leader (term ${now.revision}) acts`);
});

whenAvailable("ha leadership", reason, "kill -9 of the leader mid-shift: a follower leads within TTL + 2 s and resumes at the same step with the same routes", async () => {
  const pfx = prefix();
  const c = child("old", pfx);
  await c.next("elected", 0);
  c.send("save 1");
  await c.next("saved", 0);
  const b = await replica("b", pfx);
  assert.is(b.l.token, null, "b leads while the old leader lives");
  const killedAt = Date.now();
  c.p.kill("SIGKILL");
  await waitFor("b elected", () => b.l.token, (TTL_S + 2) * 1000);
  const tookS = (Date.now() - killedAt) / 1000;
  await b.store.open();
  const router = new FakeTrafficRouter();
  const clock = new ManualClock(Date.now());
  const policy = parsePolicy("components: { orders: {} }\n", "test").components.get("orders")!;
  const m = new MigrationManager({ clock, router, store: b.store, inputs: { gather: () => { throw new Error("no tick in this test"); } }, actions: { run: async () => {} }, policies: new Map([["orders", policy]]), log: silentLogger() });
  const events: string[] = [];
  m.on("event", (e: { message: string }) => events.push(e.message));
  m.start();
  const routes = () => router.calls.filter((x) => x.op === "routes");
  await waitFor("the resync published", () => routes().length > 0, 3000);
  assert.is(m.get("orders").status.stepIndex, 1, "resumed at another step");
  assert.equal((routes().at(-1)!.value as { weights: unknown }).weights, { primary: 6000, shadow: 4000 }, "the routes changed in the takeover");
  assert.ok(events.some((e) => /resuming Shifting at step 2/.test(e)), events.join("\n"));
  assert.ok(tookS <= TTL_S + 2, `took ${tookS} s`);
  console.log(`ha: leader killed, follower elected after ${tookS.toFixed(2)} s (TTL ${TTL_S} s), resumed at step 2 with 40 % on the shadow`);
});

whenAvailable("ha leadership", reason, "SIGSTOP of the leader past its lease, then SIGCONT: etcd refuses its old token and it steps down", async () => {
  const pfx = prefix();
  const c = child("paused", pfx);
  await c.next("elected", 0);
  const b = await replica("b", pfx);
  c.p.kill("SIGSTOP");
  await waitFor("b elected", () => b.l.token, (TTL_S + 3) * 1000);
  await b.store.open();
  await b.store.save(statusAt(2), []);
  const from = c.lines.length;
  c.p.kill("SIGCONT");
  c.send("save-stale 0");
  const r = await c.next("refused", from) as { refused: { name: string; message: string } };
  assert.is(r.refused.name, "NotLeaderError", r.refused.message);
  assert.match(r.refused.message, /etcd refused the write/);
  await c.next("deposed", from, (TTL_S + 3) * 1000);
  c.send("save 0");
  const r2 = await c.next("refused", c.lines.findIndex((x, i) => i >= from && "refused" in x) + 1) as { refused: { name: string } };
  assert.is(r2.refused.name, "NotLeaderError");
  const check = new EtcdStateStore(b.l.ns, () => null);
  await check.open();
  assert.is(check.load().statuses.get("orders")?.stepIndex, 2, "the deposed leader's write landed");
});

whenAvailable("ha leadership", reason, "one etcd member lost: saves go on; quorum lost: the save fails and the manager stops deciding, saying why", async () => {
  const pfx = prefix();
  const a = await replica("a", pfx);
  await waitFor("a elected", () => a.l.token, 5000);
  await a.store.open();
  const victim = (await cluster.leader()) ?? 0;
  await cluster.kill(victim);
  await a.store.save(statusAt(0), []);
  const other = [0, 1, 2].find((i) => i !== victim)!;
  await cluster.kill(other);
  const router = new FakeTrafficRouter();
  const clock = new ManualClock(Date.now());
  const policy = parsePolicy("components: { orders: {} }\n", "test").components.get("orders")!;
  const m = new MigrationManager({ clock, router, store: a.store, inputs: { gather: () => { throw new Error("no tick"); } }, actions: { run: async () => {} }, policies: new Map([["orders", policy]]), log: silentLogger() });
  const stopped = new Promise<string>((r) => m.once("stopped", r));
  m.start(); // the resync's save cannot reach a quorum
  const why = await stopped;
  assert.match(why, /a save was refused/);
  assert.is(router.calls.length, 0, "routes published without a durable status");
  assert.is(m.command("orders", { kind: "pause", by: "test" }).accepted, false);
  await cluster.restart(victim); await cluster.restart(other);
  await cluster.waitHealthy(victim, 15_000); await cluster.waitHealthy(other, 15_000);
});

test.run();
