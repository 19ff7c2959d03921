// The driver seam with the sample KV's driver on two real nodes: health and the lag from /status,
// signals from /metrics, actions to the side's own node with the token and the epoch; the poller feeds
// them to the risk engine (the shadow's own CPU to the shadow's scorer) and counts a dead side's
// failures as its health check; the configuration's driver block and its errors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../controller/log.js";
import { KvNode } from "../../world/sample/kv.js";
import { KvDriver } from "../../controller/drivers/kv.js";
import { DriverActions } from "../../controller/drivers/driver.js";
import { DriverPoller, NOT_DRAINED_MIN_S } from "../../controller/drivers/poller.js";
import { RiskEngine, shadowKey, shadowSignals } from "../../controller/risk/engine.js";
import type { SignalSpec } from "../../controller/risk/spec.js";
import { ManualClock, wallMs } from "../../host/clock.js";
import { FakeDriver } from "../support/fake-driver.js";
import { parseConfig } from "../../controller/config.js";
import { ConfigError } from "../../controller/config.js";
import { testControllerYaml } from "../support/controller-config.js";
import { shadowCost } from "../../controller/drivers/cost.js";

const TOKEN = "admin-token-for-the-test";

async function pair(): Promise<[KvNode, KvNode]> {
  const a = new KvNode({ name: "a", side: "primary", zone: "za", role: "leader", adminToken: TOKEN, log: silentLogger(), condition: (s) => (s === "cpu" ? 0.4 : s === "latency_ms" ? 1 : 0) });
  const b = new KvNode({ name: "b", side: "shadow", zone: "zb", role: "follower", adminToken: TOKEN, log: silentLogger() });
  await a.start(0);
  await b.start(0);
  a.setPeer(b.url);
  b.setPeer(a.url);
  return [a, b];
}

test("kv driver: health, signals and lag from the nodes; fence and promote reach the side's own node", async () => {
  const [a, b] = await pair();
  const d = new KvDriver({ component: "orders", primary: a.url, shadow: b.url, adminToken: TOKEN });
  try {
    const hp = await d.health("primary"), hs = await d.health("shadow");
    assert.equal([hp.up, hp.writable, hs.up, hs.writable], [true, true, true, false]);
    const sig = await d.signals("primary");
    assert.ok(sig.some((s) => s.signal === "cpu"), JSON.stringify(sig));
    const lag = await d.lag();
    assert.ok(lag && lag.seconds !== null && lag.seconds >= 0, JSON.stringify(lag));
    const actions = new DriverActions(new Map([["orders", d]]));
    await actions.run("orders", "fence", "primary");
    assert.is(a.fenced, true);
    assert.is((await d.health("primary")).writable, false);
    await actions.run("orders", "promote", "shadow", { epoch: 2 });
    assert.is(b.role, "leader");
    try { await actions.run("other", "fence", "primary"); assert.unreachable("no driver"); }
    catch (e) { assert.match((e as Error).message, /component other has no actions configured/); }
  } finally { await d.close(); await a.stop(); await b.stop(); }
});

test("poller: feeds the shadow's own signals to its scorer and the lag to the component; a dead side counts failures", async () => {
  const [a, b] = await pair();
  const clock = new ManualClock(1_700_000_000_000);
  const engine = new RiskEngine({ clock });
  const signals: SignalSpec[] = [{ name: "cpu", kind: "cpu", capacity: 1 }, { name: "replication_lag_s", kind: "replication_lag" }];
  engine.setComponent({ name: "orders", signals });
  engine.setComponent({ name: shadowKey("orders"), signals: shadowSignals(signals) });
  const d = new KvDriver({ component: "orders", primary: a.url, shadow: b.url, adminToken: TOKEN });
  const poller = new DriverPoller([{ component: "orders", driver: d, intervalS: 1 }], engine, clock, silentLogger());
  try {
    assert.is(await poller.poll(0), 3, "cpu on each side and the lag");
    const st = poller.status()[0]!;
    assert.equal([st.health.primary?.up, st.health.shadow?.up, st.lastError], [true, true, null]);
    assert.is(poller.probeFailures("orders", "primary"), 0);
    await a.stop();
    clock.advance(1000);
    await poller.poll(0);
    clock.advance(1000);
    await poller.poll(0);
    assert.is(poller.probeFailures("orders", "primary"), 2);
    assert.match(poller.status()[0]!.lastError ?? "", /^primary: /);
    assert.is(poller.probeFailures("orders", "shadow"), 0);
  } finally { await d.close(); await a.stop().catch(() => undefined); await b.stop(); }
});

test("poller: the lag is stamped when its measurement began, so a drain after a fence never counts a reading begun before it", async () => {
  const clock = new ManualClock();
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [{ name: "replication_lag_s", kind: "replication_lag" } as SignalSpec] });
  const d = new FakeDriver(clock, 700);
  const poller = new DriverPoller([{ component: "orders", driver: d, intervalS: 1 }], engine, clock, silentLogger());
  const before = wallMs(clock);
  assert.is(await poller.poll(0), 1);
  assert.is(wallMs(clock), before + 700, "the measurement took 700 ms");
  assert.equal(engine.freshPoint("orders", "replication_lag"), { value: 0, tMs: before }, "stamped at its start, not its end");
  // On demand (the drain after a fence): the lag alone, stamped the same way; a failing driver feeds nothing.
  d.lag_ = { seconds: 0.3, bytes: 4096, drained: false };
  const asked = wallMs(clock);
  assert.is(await poller.measureLag("orders"), 1);
  assert.equal(engine.freshPoint("orders", "replication_lag"), { value: 0.3, tMs: asked });
  assert.is(await poller.measureLag("elsewhere"), 0, "no target of that component");
  // A reading in bytes is the writer's own WAL position: proof it answered, by when the read began.
  assert.is(poller.writerAnsweredAtMs("orders"), asked);
  assert.is(poller.writerAnsweredAtMs("elsewhere"), null);
  // Not drained but a time estimate of 0 (replay_lag as last reported): fed above 0, so no drain passes on it.
  d.lag_ = { seconds: 0, bytes: 8192, drained: false };
  const again = wallMs(clock);
  assert.is(await poller.measureLag("orders"), 1);
  assert.is(engine.freshPoint("orders", "replication_lag")!.value, NOT_DRAINED_MIN_S);
  assert.is(poller.writerAnsweredAtMs("orders"), again);
  d.lag_ = { seconds: 0.3, bytes: null, drained: false }; // read from the replica alone: no proof
  await poller.measureLag("orders");
  assert.is(poller.writerAnsweredAtMs("orders"), again, "unchanged");
  d.lag = () => Promise.reject(new Error("connection refused"));
  assert.is(await poller.measureLag("orders"), 0);
  assert.is(poller.writerAnsweredAtMs("orders"), again, "unchanged");
});

test("config: a driver block is parsed; a password in the URL, two drivers, a driver with actions, an unset variable are refused by name", () => {
  const yaml = (component: string) => testControllerYaml({ token: "a-token-of-sixteen-chars", component });
  const ok = parseConfig(yaml(`    driver: { postgres: { primary: { url: "postgresql://postgres@127.0.0.1:5432/orders", dataDir: pg/a }, shadow: { url: "postgresql://postgres@127.0.0.1:5433/orders", passwordEnv: PGPW }, intervalS: 0.5 } }`), "/etc/sm/c.yaml", { PGPW: "secret" });
  const d = ok.components[0]!.driver!;
  assert.is(d.kind, "postgres");
  assert.equal(d.kind === "postgres" ? [d.primary.dataDir, d.shadow.password, d.intervalS] : null, ["/etc/sm/pg/a", "secret", 0.5]);
  const bad: [string, RegExp, Record<string, string>?][] = [
    [`    driver: { postgres: { primary: { url: "postgresql://postgres:hunter2@h:5432/orders" }, shadow: { url: "postgresql://postgres@h:5433/orders" } } }`, /components\[0\]\.driver\.postgres\.primary\.url: must not hold a password/],
    [`    driver: { kv: { primary: "http://a", shadow: "http://b" }, postgres: { primary: { url: "postgresql://p@h:1/d" }, shadow: { url: "postgresql://p@h:2/d" } } }`, /components\[0\]\.driver: name exactly one driver/],
    [`    driver: { kv: { primary: "http://a", shadow: "http://b" } }\n    actions: { webhook: "http://c/" }`, /components\[0\]\.driver: a component has either a driver or actions/],
    [`    driver: { kv: { primary: "http://a", shadow: "http://b", tokenEnv: NOPE } }`, /components\[0\]\.driver\.kv\.tokenEnv: environment variable NOPE is not set/],
    [`    driver: { postgres: { primary: { url: "mysql://h/d" }, shadow: { url: "postgresql://p@h:2/d" } } }`, /primary\.url: a postgresql:\/\/USER@HOST:PORT\/DATABASE URL/],
  ];
  for (const [c, re, env] of bad) {
    try { parseConfig(yaml(c), "c.yaml", env ?? {}); assert.unreachable(c); }
    catch (e) { assert.instance(e, ConfigError); assert.match((e as Error).message, re); }
  }
});

test("the shadow's cost: the mirror's bytes, the writer's WAL a second, each side's CPU and memory; null where nothing measured", () => {
  const st = { component: "orders", driver: "postgres", health: { primary: null, shadow: null }, lag: null, lastError: null, lastPollMs: 0,
    signals: { primary: { pg_wal_bytes_per_s: 9000, process_cpu_ratio: 0.3, process_rss_bytes: 2e8 }, shadow: { pg_wal_bytes_per_s: 0, process_cpu_ratio: 0.05 } } };
  assert.equal(shadowCost({ bytesPerS: 1200, mirroredPerS: 4, readsPerS: 80 }, st, "primary"),
    { mirrorBytesPerS: 1200, replicationBytesPerS: 9000, primaryCpu: 0.3, shadowCpu: 0.05, primaryRssBytes: 2e8, shadowRssBytes: null });
  assert.is(shadowCost(null, st, "shadow").replicationBytesPerS, 0, "the writer's WAL: the shadow's once it is the writer");
  assert.equal(shadowCost(null, undefined, "primary"), { mirrorBytesPerS: null, replicationBytesPerS: null, primaryCpu: null, shadowCpu: null, primaryRssBytes: null, shadowRssBytes: null });
});

test.run();
