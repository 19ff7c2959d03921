// A real 3-member etcd cluster (test/support/etcd-cluster.ts) through the etcd3 client: a put is read
// back; with the leader killed (-9) puts commit again once the two others elect a new one (quorum 2
// of 3); with a second member killed a put fails with a deadline error within ~3 s and no member
// leads (no quorum); once both are restarted the same client writes and reads again. Skips, saying
// so, without the etcd binary.
import * as assert from "uvu/assert";
import { test } from "uvu";
import { Etcd3, GRPCDeadlineExceededError } from "etcd3";
import { etcdAvailable, startEtcdCluster } from "../support/etcd-cluster.js";
import { whenAvailable } from "../support/real-servers.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects with `what: no answer` after ms: a backstop so no call can hang the test. */
function bounded<T>(p: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(p), timeout]).finally(() => clearTimeout(timer));
}

whenAvailable("etcd cluster", etcdAvailable(), "etcd cluster: puts survive a dead leader, fail without quorum, work again after restart", async () => {
  const t0 = Date.now();
  const cluster = await startEtcdCluster();
  const started = Date.now() - t0;
  const client = new Etcd3({ hosts: cluster.endpoints });
  // Every call carries its own deadline (the client's dialTimeout option is not used by etcd3 1.1.2).
  const put = (key: string, value: string, ms: number) =>
    bounded(client.put(key).value(value).options({ deadline: Date.now() + ms }), ms + 2000, `put ${key}`);
  const get = (key: string, ms = 3000) =>
    bounded(client.get(key).options({ deadline: Date.now() + ms }).string(), ms + 2000, `get ${key}`);
  /** Puts with 1 s attempts until one commits (the value is the same each time); the ms it took. */
  const putRetrying = async (key: string, value: string, budgetMs: number): Promise<number> => {
    const start = Date.now();
    for (;;) {
      try {
        await put(key, value, 1000);
        return Date.now() - start;
      } catch (e) {
        if (Date.now() - start > budgetMs) throw e;
        await sleep(100);
      }
    }
  };
  try {
    assert.equal(cluster.members.map((m) => m.name), ["m0", "m1", "m2"]);
    assert.is(new Set(cluster.endpoints).size, 3);
    await put("shadowmesh/a", "1", 3000);
    assert.is(await get("shadowmesh/a"), "1");

    // The leader gone: a write sent to a follower before it notices is lost (etcd does not re-send
    // it to the next leader) and ends with the deadline; the retry commits once the two others
    // (a quorum) have elected a new leader.
    const first = await cluster.leader();
    assert.ok(first !== null, "a fresh cluster has a leader");
    const firstPid = cluster.members[first]!.pid;
    await cluster.kill(first);
    const failover = await putRetrying("shadowmesh/b", "2", 8000);
    assert.is(await get("shadowmesh/b"), "2");
    const second = await cluster.leader();
    assert.ok(second !== null && second !== first, `a new leader among the two others (got ${second})`);

    // A second member gone: the one left cannot commit; the call ends with the client's deadline,
    // and by then the survivor no longer claims to lead (check-quorum).
    const [other, survivor] = [0, 1, 2].filter((i) => i !== first) as [number, number];
    await cluster.kill(other);
    const t1 = Date.now();
    const err = await put("shadowmesh/c", "3", 3000).then(() => null, (e: unknown) => e);
    const failedAfter = Date.now() - t1;
    assert.ok(err instanceof GRPCDeadlineExceededError, `no quorum: expected a deadline error, got ${String(err)}`);
    assert.ok(failedAfter >= 2900 && failedAfter < 4500, `no quorum: the put failed after ${failedAfter} ms`);
    assert.is(await cluster.leader(), null, `m${survivor} alone does not lead`);

    // Both back on their data dirs: the cluster is healthy and the same client writes again (its
    // per-host circuit breakers may still be open for a few seconds, hence the retries).
    await cluster.restart(first);
    await cluster.restart(other);
    assert.is.not(cluster.members[first]!.pid, firstPid);
    await Promise.all([0, 1, 2].map((i) => cluster.waitHealthy(i, 10_000)));
    const recovered = await putRetrying("shadowmesh/d", "4", 8000);
    assert.is(await get("shadowmesh/d"), "4");
    assert.is(await get("shadowmesh/a"), "1", "what was committed before the kills is still there");
    assert.is(await get("shadowmesh/b"), "2");
    // Not asserted: shadowmesh/c. A timed-out put is not a failed put: if the survivor led when it
    // was sent, the entry sits in its log and may commit once a quorum is back.
    console.log(`etcd cluster: started in ${started} ms, write after killing the leader in ${failover} ms, no-quorum put failed after ${failedAfter} ms, write after restart in ${recovered} ms, total ${Date.now() - t0} ms`);
  } catch (e) {
    console.error(cluster.members.map((m, i) => `--- ${m.name} ---\n${cluster.logTail(i)}`).join("\n"));
    throw e;
  } finally {
    client.close();
    await cluster.close();
  }
});

test.run();
