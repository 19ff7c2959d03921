// The PostgreSQL lease agent on a real instance: no fence before the first grant; the instance refuses
// writes before the lease runs out; a renewal lifts the agent's own fence but not the controller's;
// a lower epoch is refused (409), a missing token too (401); a hung instance is killed when the lease
// runs out. Skips, saying so, without PostgreSQL 15.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
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

test.run();
