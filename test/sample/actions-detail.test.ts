// ConfiguredActions carries a promote's epoch and a lease's absolute deadline: in the webhook's JSON
// body (epoch, expiresAtMs) and in a command's environment (SHADOWMESH_EPOCH,
// SHADOWMESH_LEASE_EXPIRES_AT_MS); without a detail, body and environment are as before.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfiguredActions } from "../../controller/migration/actions.js";
import { FakeActions } from "../support/fake-actions.js";

test("webhook: detail merged into the body; absent detail leaves the body unchanged", async () => {
  const bodies: unknown[] = [];
  const fetchFn = (async (_url: string, init: RequestInit) => { bodies.push(JSON.parse(String(init.body))); return new Response("{}", { status: 200 }); }) as unknown as typeof fetch;
  const a = new ConfiguredActions(new Map([["orders", { webhook: "http://127.0.0.1:1/admin/actions" }]]), 1000, fetchFn);
  await a.run("orders", "fence", "primary");
  await a.run("orders", "promote", "shadow", { epoch: 2 });
  await a.run("orders", "lease", "shadow", { epoch: 2, expiresAtMs: 1_700_000_001_500 });
  assert.equal(bodies, [
    { component: "orders", action: "fence", side: "primary" },
    { component: "orders", action: "promote", side: "shadow", epoch: 2 },
    { component: "orders", action: "lease", side: "shadow", epoch: 2, expiresAtMs: 1_700_000_001_500 },
  ]);
  const bad = new ConfiguredActions(new Map([["orders", { webhook: "http://x/" }]]), 1000, (async () => new Response('{"error":"lease at epoch 1 refused"}', { status: 409 })) as unknown as typeof fetch);
  try { await bad.run("orders", "lease", "primary", { epoch: 1, expiresAtMs: 5 }); assert.unreachable("a 409 is a failure"); }
  catch (e) { assert.match((e as Error).message, /^lease primary: webhook http:\/\/x\/ answered 409 .*refused/); }
});

test("command: SHADOWMESH_EPOCH and SHADOWMESH_LEASE_EXPIRES_AT_MS only when given", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-act-"));
  try {
    const out = path.join(dir, "env.json");
    const script = `require("fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify({a: process.env.SHADOWMESH_ACTION, s: process.env.SHADOWMESH_SIDE, e: process.env.SHADOWMESH_EPOCH ?? null, t: process.env.SHADOWMESH_LEASE_EXPIRES_AT_MS ?? null}))`;
    const a = new ConfiguredActions(new Map([["orders", { command: [process.execPath, "-e", script] }]]), 10_000);
    await a.run("orders", "lease", "primary", { epoch: 3, expiresAtMs: 1234 });
    assert.equal(JSON.parse(readFileSync(out, "utf8")), { a: "lease", s: "primary", e: "3", t: "1234" });
    const saved = { e: process.env.SHADOWMESH_EPOCH, t: process.env.SHADOWMESH_LEASE_EXPIRES_AT_MS };
    delete process.env.SHADOWMESH_EPOCH; delete process.env.SHADOWMESH_LEASE_EXPIRES_AT_MS;
    try {
      await a.run("orders", "unfence", "shadow");
      assert.equal(JSON.parse(readFileSync(out, "utf8")), { a: "unfence", s: "shadow", e: null, t: null });
    } finally {
      if (saved.e !== undefined) process.env.SHADOWMESH_EPOCH = saved.e;
      if (saved.t !== undefined) process.env.SHADOWMESH_LEASE_EXPIRES_AT_MS = saved.t;
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("FakeActions records the detail", async () => {
  const f = new FakeActions();
  await f.run("orders", "fence", "primary");
  await f.run("orders", "lease", "primary", { epoch: 1, expiresAtMs: 9 });
  assert.equal(f.calls, [{ component: "orders", kind: "fence", side: "primary" }, { component: "orders", kind: "lease", side: "primary", detail: { epoch: 1, expiresAtMs: 9 } }]);
});

test.run();
