// The PostgreSQL driver's promote waits for a standby slow to finish recovery (pg_promote waits up
// to 60 s), instead of being cancelled by the session's own statement_timeout (the driver's per-query
// timeout, 2 s by default): a real pair whose standby's startup process is stopped for 3.5 s while
// it is promoted. Seen under load in the hang fault: "promote shadow failed: canceling statement due
// to statement timeout", then the failover waited out the lease.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PostgresDriver } from "../../controller/drivers/postgres.js";
import { pgAvailable, startPair, type PgPair } from "../../world/demo/pg-pair.js";
import { whenAvailable } from "../support/real-servers.js";

const reason = pgAvailable();
const NAME = "postgres driver: promote outlasts the per-query timeout while the standby is slow to leave recovery";

whenAvailable("postgres promote", reason, NAME, async () => {
  let pair: PgPair | undefined;
  let d: PostgresDriver | undefined;
  let startup = 0;
  try {
    pair = await startPair({ name: "promote" });
    const { primary, standby } = pair;
    d = new PostgresDriver({ primary: { url: primary.conninfo() }, shadow: { url: standby.conninfo() }, nowMs: () => Date.now() });
    const r = await standby.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'");
    startup = Number(r.rows[0]?.pid);
    assert.ok(startup > 0, "the standby's startup process");
    process.kill(startup, "SIGSTOP");
    const resume = setTimeout(() => { process.kill(startup, "SIGCONT"); startup = 0; }, 3500);
    const t0 = Date.now();
    try { await d.promote("shadow"); } finally { clearTimeout(resume); if (startup) { process.kill(startup, "SIGCONT"); startup = 0; } }
    const tookMs = Date.now() - t0;
    assert.ok(tookMs >= 3000, `promote returned after ${tookMs} ms, before the standby could leave recovery`);
    assert.equal(await d.health("shadow"), { up: true, writable: true, replica: false, detail: "writable" });
  } finally {
    if (startup) process.kill(startup, "SIGCONT");
    await d?.close();
    await pair?.stop();
  }
});

test.run();
