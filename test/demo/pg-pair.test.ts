// The real-PostgreSQL harness (world/demo/pg-pair.ts) checked against itself: a pair streams a
// row to its standby, the standby refuses writes, TwoWriterChecker sees one writer, and after the
// standby is promoted (the old primary still writable) the checker reports the two writers. Without
// PostgreSQL 15 (or a way to run it as the postgres user) the test says plainly that it skipped.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { pgAvailable, startPair, type PgPair } from "../../world/demo/pg-pair.js";
import { TwoWriterChecker } from "../../world/demo/two-writer.js";
import { whenAvailable } from "../support/real-servers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const reason = pgAvailable();

whenAvailable("pg cluster", reason, "pg cluster: a real primary and streaming standby; the two-writer checker sees a promotion", async () => {
  let pair: PgPair | undefined;
  try {
    pair = await startPair({ name: "orders" });
    const { primary, standby } = pair;
    assert.ok(primary.port !== standby.port);
    assert.ok(primary.postmasterPid() !== null && standby.postmasterPid() !== null);
    assert.is(primary.conninfo(), `postgresql://postgres@127.0.0.1:${primary.port}/orders`);

    await primary.query("CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)");
    await primary.query("INSERT INTO items VALUES ($1, $2)", [1, "written on the primary"]);
    const deadline = Date.now() + 10_000;
    let seen: string | undefined;
    while (Date.now() < deadline) {
      const r = await standby.query("SELECT v FROM items WHERE id = 1").catch(() => null);
      seen = r?.rows[0]?.v;
      if (seen) break;
      await sleep(50);
    }
    assert.is(seen, "written on the primary", "the standby has the primary's row within 10 s");

    assert.is((await standby.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, true);
    assert.is((await primary.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, false);
    let code: string | undefined;
    try { await standby.query("INSERT INTO items VALUES (2, 'on the standby')"); } catch (e) { code = (e as { code?: string }).code; }
    assert.is(code, "25006", "the standby refuses an INSERT (read_only_sql_transaction)");

    const checker = new TwoWriterChecker([primary, standby], { intervalMs: 100 });
    checker.start();
    await sleep(1000);
    const one = await checker.stop();
    assert.ok(one.samples >= 5, `samples ${one.samples}`);
    assert.equal(one.overlaps, []);
    assert.equal(one.unreachable, { primary: 0, standby: 0 });
    assert.ok(one.writable.primary === one.samples && one.writable.standby === 0);

    assert.is((await standby.query("SELECT pg_promote(true, 30) AS ok")).rows[0].ok, true);
    assert.is((await standby.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, false);
    checker.start();
    await sleep(600);
    const two = await checker.stop();
    assert.ok(two.samples >= 3, `samples ${two.samples}`);
    assert.ok(two.overlaps.length > 0, "two writers after promoting the standby: the checker can fail");
    assert.match(two.overlaps[0]!.detail, /both writable/);

    const dir = pair.dir;
    await pair.stop();
    await pair.stop(); // idempotent
    assert.not.ok(existsSync(dir), "stop() removes the temp folder");
  } finally {
    await pair?.stop();
  }
});

test.run();
