// The PostgreSQL driver on a real primary and hot standby (world/demo/pg-pair.ts): health and
// real signals from both sides; under a steady stream of acknowledged orders, fence (proven by a
// refused probe write, an open write transaction ended), an exact drain, promote; every acknowledged
// order is in the promoted database; the old primary rejoins as a standby of the new one (pg_rewind)
// and a restore moves the writer back the same way; a primary with every connection slot taken is
// still fenced. A two-writer checker samples both sides every
// 100 ms throughout and must never see two writable sides. Skips (and says so) without PostgreSQL 15.
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { PostgresDriver } from "../../controller/drivers/postgres.js";
import type { Side } from "../../controller/xds/resources.js";
import { createOrdersSchema } from "../../world/sample/orders.js";
import { pgAvailable, startPair, type PgPair } from "../../world/demo/pg-pair.js";
import { TwoWriterChecker } from "../../world/demo/two-writer.js";
import { whenAvailable } from "../support/real-servers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const reason = pgAvailable();
const NAME = "postgres driver: fence, exact drain, promote, rejoin and restore on a real pair under writes, never two writers, no acknowledged order lost";

/** Writes orders through one connection to whichever side takes writes now; records the acknowledged ids. */
class Writer {
  readonly acked: number[] = [];
  refused = 0;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  constructor(private readonly urls: Record<Side, string>) {}
  start(): void {
    this.stopped = false;
    this.done = (async () => {
      const clients: Partial<Record<Side, pg.Client>> = {};
      const client = async (s: Side) => {
        if (!clients[s]) { const c = new pg.Client({ connectionString: this.urls[s], connectionTimeoutMillis: 1000 }); c.on("error", () => undefined); await c.connect(); clients[s] = c; }
        return clients[s]!;
      };
      let i = 0;
      while (!this.stopped) {
        let wrote = false;
        for (const s of ["primary", "shadow"] as const) {
          try {
            const r = await (await client(s)).query("INSERT INTO orders (customer, item, qty) VALUES ($1, 'book', 1) RETURNING id", [`c${i++ % 7}`]);
            this.acked.push(Number(r.rows[0].id));
            wrote = true;
            break;
          } catch (e) {
            if ((e as { code?: string }).code !== "25006") { await clients[s]?.end().catch(() => undefined); delete clients[s]; }
          }
        }
        if (!wrote) { this.refused++; await sleep(10); }
      }
      for (const c of Object.values(clients)) await c?.end().catch(() => undefined);
    })();
  }
  async stop(): Promise<void> { this.stopped = true; await this.done; }
}

async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => null);
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The write move as the migration engine drives it: fence the writer, wait for an exact drain, promote, rejoin the old writer. */
async function move(d: PostgresDriver, from: Side, to: Side): Promise<{ drainMs: number; lagBytesAtFence: number | null }> {
  await d.fence(from);
  const lagAtFence = (await d.lag())?.bytes ?? null;
  const t0 = Date.now();
  await until(`the ${to} to replay everything the fenced ${from} wrote`, async () => (await d.lag())?.drained);
  const drainMs = Date.now() - t0;
  const t1 = Date.now();
  await d.promote(to);
  const t2 = Date.now();
  await d.rejoin(from);
  if (process.env.PG_TEST_VERBOSE) console.log(`move ${from}->${to}: drain ${drainMs} ms, promote ${t2 - t1} ms, rejoin ${Date.now() - t2} ms`);
  return { drainMs, lagBytesAtFence: lagAtFence };
}

whenAvailable("postgres driver", reason, NAME, async () => {
  let pair: PgPair | undefined;
  let d: PostgresDriver | undefined;
  let checker: TwoWriterChecker | undefined;
  let w: Writer | undefined;
  try {
    pair = await startPair({ name: "orders" });
    const { primary, standby } = pair;
    await createOrdersSchema(primary.conninfo());
    d = new PostgresDriver({
      primary: { url: primary.conninfo(), dataDir: primary.dataDir },
      shadow: { url: standby.conninfo(), dataDir: standby.dataDir },
      nowMs: () => Date.now(),
    });
    assert.equal(await d.health("primary"), { up: true, writable: true, replica: false, detail: "writable" });
    assert.equal(await d.health("shadow"), { up: true, writable: false, replica: true, detail: "in recovery (a replica)" });

    // Real signals: the first poll has the levels, the second the rates and the postmaster tree from /proc.
    await d.signals("primary");
    await primary.query("SELECT count(*) FROM generate_series(1, 200000)");
    await sleep(300);
    const sig = new Map((await d.signals("primary")).map((s) => [s.signal, s.value]));
    for (const k of ["pg_connections_ratio", "pg_active_backends", "pg_lock_waits", "pg_database_bytes", "pg_commits_per_s", "pg_rollbacks_per_s", "pg_deadlocks_per_s", "pg_temp_bytes_per_s", "pg_wal_bytes_per_s", "pg_disk_used_ratio", "process_cpu_ratio", "process_rss_bytes", "process_read_bytes_per_s", "process_write_bytes_per_s"]) {
      assert.ok(sig.has(k) && Number.isFinite(sig.get(k)!), `signal ${k}: ${sig.get(k)}`);
    }
    assert.ok(sig.get("pg_connections_ratio")! > 0 && sig.get("pg_connections_ratio")! < 1);
    assert.ok(sig.get("process_rss_bytes")! > 1_000_000, `rss ${sig.get("process_rss_bytes")}`);
    assert.ok(sig.get("pg_commits_per_s")! > 0);
    const shadowSig = new Map((await d.signals("shadow")).map((s) => [s.signal, s.value]));
    assert.ok(shadowSig.has("pg_connections_ratio"), "the standby is measured too");
    assert.equal(await d.lag(), { seconds: 0, bytes: 0, drained: true }, "idle: drained");

    checker = new TwoWriterChecker([primary, standby], { intervalMs: 100 });
    checker.start();
    w = new Writer({ primary: primary.conninfo(), shadow: standby.conninfo() });
    w.start();
    await until("100 acknowledged orders", async () => w!.acked.length >= 100);

    // An open write transaction on the primary must be ended by the fence (it began read-write).
    const open = new pg.Client({ connectionString: primary.conninfo() });
    open.on("error", () => undefined);
    await open.connect();
    await open.query("BEGIN");
    await open.query("INSERT INTO orders (customer, item, qty) VALUES ('open', 'pen', 1)");

    const forward = await move(d, "primary", "shadow");
    let openEnded = false;
    try { await open.query("COMMIT"); } catch { openEnded = true; }
    assert.ok(openEnded, "the fence ended the open write transaction");
    await open.end().catch(() => undefined);
    assert.equal((await d.health("shadow")).writable, true);
    assert.equal((await d.health("primary")).detail, "in recovery (a replica)", "the old primary rejoined as a standby");
    const before = w.acked.length;
    await until("orders acknowledged by the promoted shadow", async () => w!.acked.length >= before + 100);
    // The rejoined primary streams from the new writer: it has the newest acknowledged order.
    const newest = w.acked.at(-1)!;
    await until("the rejoined primary to replay the newest order", async () => (await primary.query("SELECT 1 FROM orders WHERE id = $1", [newest])).rowCount === 1);

    // Restore: the same move back.
    const back = await move(d, "shadow", "primary");
    assert.equal((await d.health("primary")).writable, true);
    assert.equal((await d.health("shadow")).detail, "in recovery (a replica)");
    const mid = w.acked.length;
    await until("orders acknowledged by the restored primary", async () => w!.acked.length >= mid + 50);
    await w.stop();

    const r = await checker.stop();
    checker = undefined;
    assert.ok(r.samples > 20, `checker samples ${r.samples}`);
    assert.equal(r.overlaps, [], "never two writable sides");

    const ids = new Set((await primary.query("SELECT id FROM orders")).rows.map((x) => Number(x.id)));
    const lost = w.acked.filter((id) => !ids.has(id));
    assert.equal(lost, [], `${w.acked.length} acknowledged orders, lost: ${lost.length}`);
    assert.ok(!(await primary.query("SELECT 1 FROM orders WHERE customer = 'open'")).rowCount, "the ended transaction's order was never acknowledged and is not there");
    // A primary whose connection slots are all taken (a runaway pool, the connections fault) refuses
    // new sessions; the fence still lands, on the driver's own session, kept open for this.
    await d.health("primary");
    const hogs: pg.Client[] = [];
    let refusedWith = "";
    while (hogs.length < 200) {
      const c = new pg.Client({ connectionString: primary.conninfo() });
      c.on("error", () => undefined);
      try { await c.connect(); hogs.push(c); } catch (e) { refusedWith = (e as Error).message; break; }
    }
    try {
      assert.match(refusedWith, /too many clients/, `the primary's slots are full after ${hogs.length} sessions`);
      await d.fence("primary");
      assert.equal((await d.health("primary")).detail, "read-only (fenced)", "fenced with every slot taken");
    } finally { await Promise.all(hogs.map((c) => c.end().catch(() => undefined))); }
    await d.unfence("primary");
    await until("the primary writable again after unfence (each session takes the reload when idle)", async () => (await d!.health("primary")).writable);
    console.log(`postgres driver: ${w.acked.length} orders acknowledged, 0 lost; writes refused while moving: ${w.refused}; drain ${forward.drainMs} ms / ${back.drainMs} ms (lag at the fence ${forward.lagBytesAtFence} / ${back.lagBytesAtFence} bytes); checker ${r.samples} samples, 0 overlaps`);
  } finally {
    await w?.stop();
    await checker?.stop().catch(() => undefined);
    await d?.close();
    await pair?.stop();
  }
});

test.run();
