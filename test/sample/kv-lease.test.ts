// The sample KV node's leader lease and epoch (world/sample/kv.ts), in process on 127.0.0.1: with
// requireLease a leader takes writes only inside the controller's lease (an absolute deadline, so a
// late renewal cannot revive it), and the epoch refuses stale actions and writes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../controller/log.js";
import { KvNode } from "../../world/sample/kv.js";
import { EPOCH_HEADER } from "../../world/sample/kv-http.js";

interface Pair { a: KvNode; b: KvNode; stop(): Promise<void> }

async function pair(requireLease = true): Promise<Pair> {
  const a = new KvNode({ name: "a", side: "primary", zone: "z1", role: "leader", requireLease, log: silentLogger() });
  const b = new KvNode({ name: "b", side: "shadow", zone: "z2", role: "follower", requireLease, pullIntervalMs: 20, log: silentLogger() });
  await a.start(0, "127.0.0.1");
  await b.start(0, "127.0.0.1");
  a.setPeer(b.url);
  b.setPeer(a.url);
  return { a, b, stop: async () => { await a.stop(); await b.stop(); } };
}

const put = async (n: KvNode, key: string, value: string, headers: Record<string, string> = {}) => {
  const r = await fetch(`${n.url}/kv/${key}`, { method: "PUT", body: value, headers, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: (await r.json()) as { error?: string; seq?: number; epoch?: number }, epoch: r.headers.get(EPOCH_HEADER) };
};
const action = async (n: KvNode, body: Record<string, unknown>) => {
  const r = await fetch(`${n.url}/admin/actions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ component: "orders", ...body }), signal: AbortSignal.timeout(20_000) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
const status = async (n: KvNode) => (await (await fetch(`${n.url}/status`)).json()) as Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("lease required: writes refused without a lease, accepted with one, refused after it expires", async () => {
  const p = await pair();
  try {
    let w = await put(p.a, "k1", "v1");
    assert.is(w.status, 503);
    assert.match(w.body.error!, /^leader lease expired on a \(epoch 1\): no lease granted at epoch 1 yet/);
    assert.is((await status(p.a)).writable, false);
    const g = await action(p.a, { action: "lease", side: "primary", epoch: 1, expiresAtMs: Date.now() + 400 });
    assert.is(g.status, 200);
    assert.is(g.body.leaseGranted, true);
    assert.is(g.body.leaseValid, true);
    assert.is(g.body.writable, true);
    w = await put(p.a, "k1", "v1");
    assert.is(w.status, 200, JSON.stringify(w.body));
    assert.is(w.epoch, "1", "answers carry the node's epoch");
    // A write sent to the follower is forwarded and needs the leader's lease too.
    assert.is((await put(p.b, "k2", "v2")).status, 200);
    await sleep(450);
    w = await put(p.a, "k3", "v3");
    assert.is(w.status, 503);
    assert.match(w.body.error!, /^leader lease expired on a \(epoch 1\): it ended at \d+, now \d+/);
    assert.is((await put(p.b, "k4", "v4")).status, 503, "forwarded writes are refused too");
    const s = await status(p.a);
    assert.is(s.leaseValid, false);
    assert.is(s.writable, false);
    assert.is(s.role, "leader");
    assert.ok(p.a.counters.refusedWrites >= 2);
    const m = await (await fetch(`${p.a.url}/metrics`)).text();
    assert.match(m, /\nkv_leader_epoch 1\n/);
    assert.match(m, /\nkv_leader_lease_valid 0\n/);
  } finally { await p.stop(); }
});

test("a renewal delivered late (its deadline already past) does not re-enable writes; a lease never shrinks", async () => {
  const p = await pair();
  try {
    assert.is((await action(p.a, { action: "lease", side: "primary", epoch: 1, expiresAtMs: Date.now() + 200 })).status, 200);
    await sleep(250);
    const late = await action(p.a, { action: "lease", side: "primary", epoch: 1, expiresAtMs: Date.now() - 50 });
    assert.is(late.status, 200, "accepted (same epoch) but ...");
    assert.is(late.body.leaseValid, false, "... it grants nothing: the deadline is absolute");
    assert.is((await put(p.a, "k", "v")).status, 503);
    const far = Date.now() + 5000;
    await action(p.a, { action: "lease", side: "primary", epoch: 1, expiresAtMs: far });
    await action(p.a, { action: "lease", side: "primary", epoch: 1, expiresAtMs: Date.now() + 10 });
    assert.is((await status(p.a)).leaseUntilMs, far, "max(current, T)");
    assert.is((await put(p.a, "k", "v")).status, 200);
    // Sent to the other node: forwarded to its peer (the side is what counts).
    assert.is((await action(p.b, { action: "lease", side: "primary", epoch: 1, expiresAtMs: far + 1 })).status, 200);
    assert.is(p.a.leaseUntilMs, far + 1);
    // Bad requests.
    assert.is((await action(p.a, { action: "lease", side: "primary", expiresAtMs: far })).status, 400, "epoch required");
    assert.is((await action(p.a, { action: "lease", side: "primary", epoch: 1 })).status, 400, "expiresAtMs required");
    assert.is((await action(p.a, { action: "lease", side: "primary", epoch: 0, expiresAtMs: far })).status, 400, "epoch positive");
    const f = await action(p.b, { action: "lease", side: "shadow", epoch: 1, expiresAtMs: far });
    assert.is(f.status, 409, "a follower takes no lease");
    assert.match(String(f.body.error), /not the leader/);
  } finally { await p.stop(); }
});

test("epoch: lower-epoch actions 409, promote adopts the epoch, stale client writes 409, newer ones supersede the old leader", async () => {
  const p = await pair();
  try {
    await action(p.a, { action: "lease", side: "primary", epoch: 1, expiresAtMs: Date.now() + 60_000 });
    assert.is((await put(p.a, "before", "1")).status, 200);
    const pr = await action(p.b, { action: "promote", side: "shadow", epoch: 5 });
    assert.is(pr.status, 200);
    assert.is(pr.body.epoch, 5);
    assert.is(pr.body.role, "leader");
    assert.is(pr.body.writable, false, "a new leader waits for its first lease");
    assert.is(p.b.get("before"), "1", "caught up before promotion");
    // The old leader was demoted with the new epoch.
    const sa = await status(p.a);
    assert.is(sa.role, "follower");
    assert.is(sa.epoch, 5);
    assert.is(sa.writable, false);
    assert.is((await put(p.b, "x", "1")).status, 503, "no lease yet");
    // Lower epoch actions are refused and change nothing.
    for (const a of ["fence", "unfence", "promote", "lease"]) {
      const r = await action(p.b, { action: a, side: "shadow", epoch: 4, expiresAtMs: Date.now() + 60_000 });
      assert.is(r.status, 409, a);
      assert.match(String(r.body.error), new RegExp(`^${a} at epoch 4 refused: b is at epoch 5`));
    }
    const d = await fetch(`${p.b.url}/admin/demote`, { method: "POST", body: JSON.stringify({ leader: p.a.url, epoch: 3 }) });
    assert.is(d.status, 409, "a demote from an older epoch");
    assert.is(p.b.role, "leader");
    assert.is(p.b.fenced, false);
    assert.is((await action(p.b, { action: "lease", side: "shadow", epoch: 5, expiresAtMs: Date.now() + 60_000 })).status, 200);
    assert.is((await put(p.b, "x", "1")).status, 200);
    assert.is((await put(p.a, "y", "1")).status, 200, "the demoted node forwards to the new leader");
    // Client writes with an epoch.
    let w = await put(p.b, "z", "1", { [EPOCH_HEADER]: "4" });
    assert.is(w.status, 409);
    assert.match(w.body.error!, /the write carries epoch 4, older than b's epoch 5/);
    assert.is((await put(p.b, "z", "1", { [EPOCH_HEADER]: "5" })).status, 200);
    assert.is((await put(p.b, "z", "1", { [EPOCH_HEADER]: "x" })).status, 400);
    // A lease at a newer epoch: adopted, but the lease is not extended (void until a renewal at 6).
    const l6 = await action(p.b, { action: "lease", side: "shadow", epoch: 6, expiresAtMs: Date.now() + 60_000 });
    assert.is(l6.status, 200);
    assert.is(l6.body.leaseGranted, false);
    assert.is(l6.body.epoch, 6);
    assert.is(l6.body.writable, false);
    assert.is((await action(p.b, { action: "lease", side: "shadow", epoch: 6, expiresAtMs: Date.now() + 60_000 })).body.writable, true);
    // A write carrying a newer epoch than the leader's: the leader steps down (superseded).
    await sleep(100); // the follower adopts 6 from its pulls
    assert.is(p.a.epoch, 6, "the follower adopted the leader's epoch from the log");
    w = await put(p.b, "w", "1", { [EPOCH_HEADER]: "7", "x-forwarded-write": "test" });
    assert.is(w.status, 503);
    assert.is(p.b.role, "follower");
    assert.is(p.b.epoch, 7);
    assert.is((await status(p.b)).writable, false);
  } finally { await p.stop(); }
});

test("replication: a follower of a newer epoch makes an old leader step down; entries from an older leader are not applied", async () => {
  const a = new KvNode({ name: "a", side: "primary", zone: "z1", role: "leader", log: silentLogger() });
  const b = new KvNode({ name: "b", side: "shadow", zone: "z2", role: "follower", pullIntervalMs: 20, log: silentLogger() });
  await a.start(0, "127.0.0.1");
  await b.start(0, "127.0.0.1");
  try {
    a.setPeer(b.url);
    assert.is((await put(a, "k", "v")).status, 200, "no lease required: unchanged behaviour");
    assert.is((await status(a)).writable, true);
    // b learns epoch 3 (a demote from a newer leader elsewhere) before it ever pulls from a.
    const d = await fetch(`${b.url}/admin/demote`, { method: "POST", body: JSON.stringify({ leader: a.url, epoch: 3 }) });
    assert.is(d.status, 200);
    b.setPeer(a.url);
    for (let i = 0; i < 50 && a.role === "leader"; i++) await sleep(20);
    assert.is(a.role, "follower", "a pull at epoch 3 superseded the epoch-1 leader");
    assert.is(a.epoch, 3);
    assert.is(b.get("k"), undefined, "nothing applied from the superseded leader");
  } finally { await a.stop(); await b.stop(); }
});

test.run();
