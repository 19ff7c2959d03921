// The PostgreSQL lease agent on a real instance: no fence before the first grant; the instance refuses
// writes before the lease runs out; a renewal lifts the agent's own fence but not the controller's;
// a lower epoch is refused (409), a missing token too (401); a hung instance is killed when the lease
// runs out; POST /fence fences a live instance and stops a hung one at once, so that a restart brings
// it back read-only. Skips, saying so, without PostgreSQL 15.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { childrenOf } from "../../controller/drivers/proc.js";
import { PgLeaseAgent } from "../../world/sample/pg-lease-agent.js";
import { pgAvailable, startPair, type PgPair } from "../../world/demo/pg-pair.js";
import { whenAvailable } from "../support/real-servers.js";

const reason = pgAvailable();
const NAME = "pg lease agent: fences before the lease runs out, a renewal lifts only its own fence, epochs and tokens checked, a hung instance is killed";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOKEN = "lease-token-for-the-test";

whenAvailable("pg lease agent", reason, NAME, async () => {
  let pair: PgPair | undefined, agent: PgLeaseAgent | undefined;
  try {
    pair = await startPair({ name: "orders" });
    const p = pair.primary;
    const ro = async () => (await p.query("SHOW default_transaction_read_only")).rows[0].default_transaction_read_only as string;
    agent = new PgLeaseAgent({ url: p.conninfo(), token: TOKEN, guardMs: 300, checkMs: 50, dataDir: p.dataDir });
    await agent.start();
    const grant = (epoch: number, inMs: number, token = TOKEN) => fetch(`${agent!.url}/lease`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ epoch, expiresAtMs: Date.now() + inMs }) });
    await sleep(300);
    assert.is(await ro(), "off", "no lease granted yet: no fence");
    assert.is((await grant(1, 1000, "wrong-token")).status, 401);
    assert.is((await grant(1, 1000)).status, 200);
    await sleep(400);
    assert.is(await ro(), "off", "inside the lease");
    await sleep(800);
    assert.is(await ro(), "on", "fenced before the lease ran out");
    assert.ok(agent.selfFenced && agent.fencedAtMs !== null);
    assert.is((await grant(1, 5000)).status, 200);
    assert.is(await ro(), "off", "a renewal lifts the agent's own fence");
    assert.is((await grant(0, 5000)).status, 400, "epoch 0 is not an epoch");
    assert.is((await grant(2, 5000)).status, 200);
    assert.is((await grant(1, 5000)).status, 409, "a lower epoch is refused");
    // An HA controller's term: one below the highest seen is a deposed leader's, refused, nothing done.
    const termed = (term: unknown, epoch = 2) => fetch(`${agent!.url}/lease`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ epoch, expiresAtMs: Date.now() + 5000, term }) });
    assert.is((await termed(9)).status, 200);
    const stale = await termed(8);
    assert.is(stale.status, 409);
    assert.match(((await stale.json()) as { error: string }).error, /controller term 8 refused: this agent has seen term 9/);
    assert.is((await termed("9")).status, 400, "a term is an integer");
    assert.is(agent.controllerTerm, 9);
    // The controller's own fence is not the agent's to lift.
    await p.query("ALTER SYSTEM SET default_transaction_read_only = on"); await p.query("SELECT pg_reload_conf()");
    await sleep(800);
    assert.is(agent.selfFenced, false, "already fenced by someone else: the agent did nothing");
    assert.is((await grant(2, 5000)).status, 200);
    await sleep(100);
    assert.is(await ro(), "on", "the controller's fence stays");
    await p.query("ALTER SYSTEM RESET default_transaction_read_only"); await p.query("SELECT pg_reload_conf()");
    // A hung instance (postmaster and children stopped) is killed when the lease runs out.
    const pid = p.postmasterPid()!;
    const kids = childrenOf(pid);
    for (const x of [pid, ...kids]) { try { process.kill(x, "SIGSTOP"); } catch { /* a backend that just exited */ } }
    await sleep(5500);
    assert.ok(agent.killedAtMs !== null, "the hung instance was killed");
    let alive = true;
    try { alive = !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { alive = false; }
    assert.is(alive, false, "the postmaster is gone");
  } finally {
    await agent?.stop();
    await pair?.stop();
  }
});

const FENCE = "pg lease agent: POST /fence fences a live instance, stops a hung one for good (read-only after a restart), refuses without the token";

whenAvailable("pg lease agent", reason, FENCE, async () => {
  let pair: PgPair | undefined, agent: PgLeaseAgent | undefined;
  try {
    pair = await startPair({ name: "orders" });
    const p = pair.primary;
    const ro = async () => (await p.query("SHOW default_transaction_read_only")).rows[0].default_transaction_read_only as string;
    agent = new PgLeaseAgent({ url: p.conninfo(), token: TOKEN, checkMs: 50, dataDir: p.dataDir });
    await agent.start();
    const fence = async (token = TOKEN) => { const r = await fetch(`${agent!.url}/fence`, { method: "POST", headers: { authorization: `Bearer ${token}` } }); return { status: r.status, body: await r.json() as { how?: string; error?: string } }; };
    assert.is((await fence("wrong-token")).status, 401);
    assert.is(await ro(), "off");
    const live = await fence();
    assert.equal([live.status, live.body.how], [200, "fenced"], JSON.stringify(live.body));
    assert.is(await ro(), "on", "a live instance is fenced by SQL");
    await p.query("ALTER SYSTEM RESET default_transaction_read_only"); await p.query("SELECT pg_reload_conf()");
    // Hung: the postmaster and its children stopped. The answer comes at once, not at a lease's end.
    const pid = p.postmasterPid()!;
    for (const x of [pid, ...childrenOf(pid)]) { try { process.kill(x, "SIGSTOP"); } catch { /* a backend that just exited */ } }
    const t0 = Date.now();
    const hung = await fence();
    assert.equal([hung.status, hung.body.how], [200, "stopped"], JSON.stringify(hung.body));
    assert.ok(Date.now() - t0 < 3000, `answered in ${Date.now() - t0} ms`);
    let alive = true;
    try { alive = !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { alive = false; }
    assert.is(alive, false, "the postmaster is gone when the agent says stopped");
    assert.match(readFileSync(`${p.dataDir}/postgresql.auto.conf`, "utf8"), /default_transaction_read_only = 'on'/);
    // A restart (by hand, by systemd) brings it back fenced, not as a second writer. (The killed
    // postmaster is this process's child here: let it be reaped, or PostgreSQL sees its pid file's pid.)
    for (let i = 0; i < 40 && existsSync(`/proc/${pid}`); i++) await sleep(50);
    const started = await p.pgCtl(["start", "-w", "-l", p.logFile]);
    assert.is(started.code, 0, started.stderr + readFileSync(p.logFile, "utf8").slice(-800));
    assert.is(await ro(), "on", "restarted read-only");
    const again = await fence();
    assert.equal([again.status, again.body.how], [200, "fenced"], "already fenced: said so");
  } finally {
    await agent?.stop();
    await pair?.stop();
  }
});

test.run();
