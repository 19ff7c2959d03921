// The reactive baseline's database failover (world/demo/pg-reactive.ts, Patroni's lease rule) on a
// real primary and hot standby, with a lease agent beside each: while the primary answers its lease
// is renewed and nothing is promoted, even past several leases; once it stops answering (a crash) the
// standby is promoted, not before the lease plus the skew has run out, with the next epoch, and it
// takes writes. Skips, saying so, without PostgreSQL 15.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PgLeaseAgent } from "../../world/sample/pg-lease-agent.js";
import { pgAvailable, startPair, type PgPair } from "../../world/demo/pg-pair.js";
import { PatroniRule } from "../../world/demo/pg-reactive.js";
import { whenAvailable } from "../support/real-servers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOKEN = "lease-token-for-the-test";
const LEASE_MS = 2000, SKEW_MS = 300;

whenAvailable("pg reactive", pgAvailable(), "Patroni's rule on a real pair: renews a live writer's lease, promotes the standby only after a dead writer's lease ran out", async () => {
  let pair: PgPair | undefined, rule: PatroniRule | undefined;
  const agents: PgLeaseAgent[] = [];
  try {
    pair = await startPair({ name: "orders" });
    for (const n of [pair.primary, pair.standby]) { const a = new PgLeaseAgent({ url: n.conninfo(), token: TOKEN, guardMs: 500, checkMs: 50, dataDir: n.dataDir }); await a.start(); agents.push(a); }
    const decisions: { atMs: number; what: string }[] = [];
    rule = new PatroniRule({
      urls: { primary: pair.primary.conninfo(), shadow: pair.standby.conninfo() }, agents: { urls: { primary: agents[0]!.url, shadow: agents[1]!.url }, token: TOKEN },
      leaseMs: LEASE_MS, skewMs: SKEW_MS, loopMs: 100, decided: (atMs, what) => decisions.push({ atMs, what }),
    });
    await rule.start();
    await sleep(3 * LEASE_MS);
    assert.is(rule.writer, "primary", "a writer that answers keeps its lease");
    assert.is(agents[0]!.selfFenced, false, "and is never fenced by its agent");
    assert.ok(agents[0]!.leaseUntilMs > Date.now(), "its lease is current");
    await pair.primary.query("CREATE TABLE t (x int)");
    const crashedAt = Date.now();
    await pair.primary.pgCtl(["stop", "-m", "immediate", "-w", "-t", "30"]);
    const lastGrantEnd = agents[0]!.leaseUntilMs;
    for (let i = 0; i < 100 && rule.promotedAtMs === null; i++) await sleep(100);
    assert.ok(rule.promotedAtMs !== null, `promoted within 10 s of the crash (decisions: ${JSON.stringify(decisions)})`);
    assert.ok(rule.promotedAtMs! >= lastGrantEnd + SKEW_MS, `not before the lease (until ${lastGrantEnd - crashedAt} ms after the crash) and the skew ran out: promoted ${rule.promotedAtMs! - crashedAt} ms after it`);
    assert.is(rule.writer, "shadow");
    assert.is(rule.epoch, 2);
    assert.match(decisions.at(-1)!.what, /the primary's lease ran out; the shadow promoted \(epoch 2\)/);
    assert.is((await pair.standby.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, false, "the standby is a writer now");
    await pair.standby.query("INSERT INTO t VALUES (1)");
    assert.is(agents[1]!.epoch, 2, "the new writer holds the lease at the next epoch");
  } finally {
    await rule?.stop();
    for (const a of agents) await a.stop();
    await pair?.stop();
  }
});

test.run();
