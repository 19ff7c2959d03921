// The leader's term on its actions (controller/ha/actions.ts): sent with every action while it leads,
// refused locally once it does not, and refused by a target (the sample KV node) that saw a higher
// term: a deposed leader that wakes up late cannot fence or promote.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import { TermActions, NotLeaderAction } from "../../controller/ha/actions.js";
import type { LeaderToken } from "../../controller/ha/leader.js";
import type { LeaseDetail } from "../../controller/migration/manager.js";
import { silentLogger } from "../../controller/log.js";
import { KvNode } from "../../world/sample/kv.js";

test("the leader's actions carry its term; without the term they are refused before they leave", async () => {
  const sent: (LeaseDetail | undefined)[] = [];
  let token: LeaderToken | null = { replica: "r0", leaseId: "1", revision: 42 };
  const a = new TermActions({ run: async (_c, _k, _s, d) => { sent.push(d); } }, () => token);
  await a.run("orders", "fence", "primary");
  await a.run("orders", "lease", "primary", { epoch: 3, expiresAtMs: 1000 });
  assert.equal(sent, [{ term: 42 }, { epoch: 3, expiresAtMs: 1000, term: 42 }]);
  token = null;
  try { await a.run("orders", "promote", "shadow", { epoch: 4 }); assert.unreachable("ran without the term"); }
  catch (e) { assert.instance(e, NotLeaderAction); assert.match((e as Error).message, /no longer leads/); }
  assert.is(sent.length, 2);
});

test("a KV node refuses an action from a lower controller term (409) and changes nothing", async () => {
  const adminToken = randomBytes(8).toString("hex");
  const n = new KvNode({ name: "kv-a", side: "primary", zone: "a", role: "leader", adminToken, seed: 1, log: silentLogger() });
  await n.start();
  try {
    const post = (body: object) => fetch(`${n.url}/admin/actions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` }, body: JSON.stringify({ component: "orders", side: "primary", ...body }) });
    assert.is((await post({ action: "unfence", term: 7 })).status, 200);
    const r = await post({ action: "fence", term: 5 });
    assert.is(r.status, 409);
    assert.match(((await r.json()) as { error: string }).error, /controller term 5 refused: kv-a has seen term 7/);
    assert.is(n.status().fenced, false, "the stale fence changed something");
    assert.is((await post({ action: "fence", term: 7 })).status, 200);
    assert.is(n.status().fenced, true);
    assert.is((await post({ action: "fence", term: "x" })).status, 400);
  } finally { await n.stop(); }
});

test.run();
