// The sample KV node's admin endpoints: a bearer token required (401 without it or with a wrong one),
// forwarded actions and demotions carry it to the peer, a stale epoch is refused; the process binds
// 127.0.0.1 by default and will not start without its token.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../controller/log.js";
import { KvNode } from "../../world/sample/kv.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOKEN = "admin-token-for-the-test";

async function pair(): Promise<[KvNode, KvNode]> {
  const a = new KvNode({ name: "a", side: "primary", zone: "za", role: "leader", adminToken: TOKEN, requireLease: true, log: silentLogger() });
  const b = new KvNode({ name: "b", side: "shadow", zone: "zb", role: "follower", adminToken: TOKEN, requireLease: true, log: silentLogger() });
  await a.start(0);
  await b.start(0);
  a.setPeer(b.url);
  b.setPeer(a.url);
  return [a, b];
}

const post = (url: string, body: unknown, token?: string) => fetch(url, {
  method: "POST", headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body),
});

test("admin endpoints refuse callers without the token (401, naming what is required); the right token works", async () => {
  const [a, b] = await pair();
  try {
    const lease = { component: "orders", action: "lease", side: "primary", epoch: 1, expiresAtMs: Date.now() + 10_000 };
    for (const [path, body] of [["/admin/actions", lease], ["/admin/demote", { leader: b.url, epoch: 2 }]] as const) {
      for (const token of [undefined, "wrong-token-of-any-length", ""]) {
        const r = await post(`${a.url}${path}`, body, token);
        assert.is(r.status, 401, `${path} with ${JSON.stringify(token)}`);
        assert.match(((await r.json()) as { error: string }).error, /requires "authorization: Bearer/);
      }
    }
    assert.is(a.role, "leader", "nothing changed");
    assert.is(a.epoch, 1);
    assert.is((await post(`${a.url}/admin/actions`, lease, TOKEN)).status, 200);
    assert.ok(a.leaseValid());
    // Sent to the other node, the action is forwarded with the token.
    const fenced = await post(`${b.url}/admin/actions`, { component: "orders", action: "fence", side: "primary" }, TOKEN);
    assert.is(fenced.status, 200);
    assert.is(a.fenced, true);
    const promoted = await post(`${b.url}/admin/actions`, { component: "orders", action: "promote", side: "shadow", epoch: 2, expiresAtMs: Date.now() + 10_000 }, TOKEN);
    assert.is(promoted.status, 200);
    assert.is(b.role, "leader");
    // The new leader demoted the old one with the token: it follows at epoch 2.
    for (let i = 0; i < 50 && a.role !== "follower"; i++) await new Promise((r) => setTimeout(r, 20));
    assert.is(a.role, "follower");
    assert.is(a.epoch, 2);
    // A stale epoch is refused (409) even with the token.
    const old = await post(`${b.url}/admin/actions`, { component: "orders", action: "lease", side: "shadow", epoch: 1, expiresAtMs: Date.now() + 10_000 }, TOKEN);
    assert.is(old.status, 409, "a lease at the old epoch is refused");
    const oldDemote = await post(`${b.url}/admin/demote`, { leader: a.url, epoch: 1 }, TOKEN);
    assert.is(oldDemote.status, 409, "a demotion at the old epoch is refused");
    assert.is(b.role, "leader");
  } finally { await a.stop(); await b.stop(); }
});

test("the process will not start without its admin token, and binds 127.0.0.1 by default", async () => {
  const run = (env: NodeJS.ProcessEnv) => new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "world/sample/main.ts", "--name", "x", "--side", "primary", "--role", "leader", "--port", "0"], { cwd: root, env, timeout: 20_000 },
      (err, _o, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stderr }));
  });
  const { SAMPLE_KV_ADMIN_TOKEN: _drop, ...env } = process.env;
  const none = await run(env);
  assert.is(none.code, 2);
  assert.match(none.stderr, /--admin-token-env: the environment variable SAMPLE_KV_ADMIN_TOKEN must hold the admin token \(at least 16 characters\): it is not set/);
  const short = await run({ ...env, SAMPLE_KV_ADMIN_TOKEN: "short" });
  assert.is(short.code, 2);
  assert.match(short.stderr, /got 5/);
  // With its token it starts, on loopback unless --host says otherwise.
  const child = spawn(process.execPath, ["--import", "tsx", "world/sample/main.ts", "--name", "x", "--side", "primary", "--role", "leader", "--port", "0"], { cwd: root, env: { ...env, SAMPLE_KV_ADMIN_TOKEN: TOKEN }, stdio: ["ignore", "ignore", "pipe"] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no listening line in 20 s")), 20_000);
      let buf = "";
      child.stderr!.on("data", (d: Buffer) => { buf += d.toString(); if (/listening on/.test(buf)) { clearTimeout(t); resolve(buf); } });
    });
    assert.match(line, /x \(leader\) listening on 127\.0\.0\.1:0/);
  } finally { child.kill("SIGKILL"); }
});

test.run();
