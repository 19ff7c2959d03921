// The PromQL signal source against a real Prometheus (Debian's prometheus package, started here on a
// free port) scraping a real sample KV node's /metrics every second: the controller's configured
// queries feed the component's signals and follow the node (its CPU raised from 0.25 to 0.9 shows up);
// a query with two series is refused with "aggregate it", a bad expression with Prometheus's own
// error, an unknown signal or a bad URL in the configuration is named by file, line and field.
// A replication lag is stamped with the time Prometheus sampled it, not the query's (the drain after
// a fence must not take a reading from before it): a plain selector's through timestamp(), an
// aggregate's through its own timestamp query; a sample read again is not fed twice.
// Skips, saying so, without the prometheus binary.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfigError, parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { silentLogger } from "../../controller/log.js";
import { KvNode } from "../../world/sample/kv.js";
import { PromqlSignalSource, checkPromqlSources, isPlainSelector, type PromqlSource } from "../../controller/metrics/promql.js";
import { Writable } from "node:stream";
import pino from "pino";
import { RiskEngine } from "../../controller/risk/engine.js";
import { ManualClock } from "../../host/clock.js";
import { HEALTHY, type SignalName } from "../../world/sample/conditions.js";
import { testControllerYaml } from "../support/controller-config.js";
import { whenAvailable } from "../support/real-servers.js";

const binary = spawnSync("sh", ["-c", "command -v prometheus"], { encoding: "utf8" }).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SIGNALS = `    signals:
      - { name: cpu, kind: cpu, capacity: 1 }
      - { name: queue, kind: queue_depth }
      - { name: errors, kind: error_rate }
      - { name: lag, kind: replication_lag }`;
const sources = (url: string) => `promql:
  - component: orders
    url: ${url}
    intervalS: 1
    signals:
      - { signal: cpu, query: 'max(sample_cpu_utilization{job="sample"})' }
      - { signal: queue, query: 'sample_requests_total{job="sample"}' }
      - { signal: errors, query: 'rate(sample_requests_total[' }
      - { signal: lag, query: 'sample_replication_lag_seconds{job="sample"}' }
`;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function until<T>(what: string, f: () => T | null | Promise<T | null>, ms: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

test("configuration: an unknown signal, a bad URL and a query-string URL are named by field", () => {
  const yaml = (src: string) => testControllerYaml({ token: "promql-token-0123456789", component: SIGNALS, extra: src });
  const bad = (src: string, re: RegExp) => assert.throws(() => parseConfig(yaml(src), "c.yaml"), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), src);
  bad("promql:\n  - { component: orders, url: http://p:9090, signals: [{ signal: nope, query: up }] }\n", /c\.yaml:\d+:\d+: promql\[0\]\.signals\[0\]\.signal: nope is not a signal of orders \(its signals: cpu, queue, errors, lag\)/);
  bad("promql:\n  - { component: orders, url: 'not a url', signals: [{ signal: cpu, query: up }] }\n", /promql\[0\]\.url: "not a url" is not a URL/);
  bad("promql:\n  - { component: orders, url: 'http://p:9090/api/v1/query?query=up', signals: [{ signal: cpu, query: up }] }\n", /promql\[0\]\.url: the server's base URL/);
  bad("promql:\n  - { component: billing, url: http://p:9090, signals: [{ signal: cpu, query: up }] }\n", /promql\[0\]\.component: unknown component billing/);
  bad("promql:\n  - { component: orders, url: http://p:9090, signals: [{ signal: cpu, query: up, step: 5 }] }\n", /promql\[0\]\.signals\[0\]\.step: unknown field \(allowed: signal, query, timestamp\)/);
  bad("promql:\n  - { component: orders, url: http://p:9090, signals: [{ signal: cpu, query: up, timestamp: '' }] }\n", /promql\[0\]\.signals\[0\]\.timestamp: must be a PromQL expression giving when the value was sampled/);
  const ok = parseConfig(yaml(sources("http://127.0.0.1:9090")), "c.yaml");
  assert.is(ok.promql?.[0]?.signals.length, 4);
});

test("a source with bearerTokenEnv sends the token to the query API; an unset variable is named", async () => {
  const yaml = (env: string) => testControllerYaml({ token: "promql-token-0123456789", component: SIGNALS, extra: `promql:\n  - { component: orders, url: "http://prom:9090", intervalS: 1, bearerTokenEnv: ${env}, signals: [{ signal: cpu, query: "max(x)" }] }\n` });
  assert.throws(() => parseConfig(yaml("NO_SUCH_PROM_TOKEN"), "c.yaml", {}), (e: unknown) => /promql\[0\]\.bearerTokenEnv: environment variable NO_SUCH_PROM_TOKEN is not set/.test((e as Error).message));
  const cfg = parseConfig(yaml("PROM_TOKEN"), "c.yaml", { PROM_TOKEN: "prom-secret" });
  const engine = new RiskEngine({ clock: new ManualClock() });
  engine.setComponent({ name: "orders", signals: [{ name: "cpu", kind: "cpu", capacity: 1 }] });
  const seen: { url: string; auth?: string }[] = [];
  const fetchFn = async (url: string, init: { headers: Record<string, string> }) => {
    seen.push({ url, ...(init.headers.authorization ? { auth: init.headers.authorization } : {}) });
    return { ok: true, status: 200, text: async () => JSON.stringify({ status: "success", data: { resultType: "vector", result: [{ metric: {}, value: [0, "0.42"] }] } }) };
  };
  const src = new PromqlSignalSource(cfg.promql!, engine, new ManualClock(), fetchFn, silentLogger());
  assert.is(await src.poll(0), 1);
  assert.is(seen[0]!.auth, "Bearer prom-secret");
  assert.match(seen[0]!.url, /^http:\/\/prom:9090\/api\/v1\/query\?query=max\(x\)&time=/);
  assert.equal(src.status()[0]!.signals.cpu, { value: 0.42, error: null });
});

/** A query API answering each expression from `answers` (a number, or a PromQL error); the URLs asked are in `asked`. */
function fakeProm(answers: Record<string, () => number | string>) {
  const asked: string[] = [];
  const fetchFn = async (url: string) => {
    const q = new URL(url).searchParams.get("query")!;
    asked.push(q);
    const a = answers[q];
    const body = a === undefined ? { status: "error", errorType: "bad_data", error: `no answer for ${q}` }
      : typeof a() === "string" ? { status: "error", errorType: "execution", error: a() }
      : { status: "success", data: { resultType: "vector", result: [{ metric: {}, value: [0, String(a())] }] } };
    return { ok: true, status: 200, text: async () => JSON.stringify(body) };
  };
  return { asked, fetchFn };
}

function lagRig(signals: PromqlSource["signals"], answers: Record<string, () => number | string>) {
  const clock = new ManualClock();
  clock.advance(1_800_000_000_000 - Number(clock.realtimeNs() / 1_000_000n));
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [{ name: "lag", kind: "replication_lag" }, { name: "cpu", kind: "cpu", capacity: 1 }] });
  const lines: string[] = [];
  const log = pino({ level: "warn" }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  const prom = fakeProm(answers);
  const [src] = checkPromqlSources([{ component: "orders", url: "http://prom:9090", intervalS: 15, signals }]);
  const source = new PromqlSignalSource([src!], engine, clock, prom.fetchFn, log);
  const now = () => Number(clock.realtimeNs() / 1_000_000n);
  return { clock, engine, source, asked: prom.asked, lines, now };
}

test("isPlainSelector: a metric name with or without matchers; functions, operators and aggregates are not", () => {
  for (const q of ["pg_lag", ' pg_lag{job="pg", role=~"standby.*"} ', '{__name__="pg_lag"}', "ns:pg_lag:max"]) assert.ok(isPlainSelector(q), q);
  for (const q of ["max(pg_lag)", "pg_lag * 1", "rate(pg_lag[1m])", "pg_lag offset 1m", "pg_lag[5m]", "time()"]) assert.not.ok(isPlainSelector(q), q);
});

test("a replication lag read through a plain selector is stamped when Prometheus sampled it, and a sample read again is not fed twice", async () => {
  let sampledS = 0, lag = 0.25;
  const r = lagRig([{ signal: "lag", query: 'pg_lag{job="pg"}' }, { signal: "cpu", query: "max(cpu)" }],
    { 'pg_lag{job="pg"}': () => lag, 'timestamp(pg_lag{job="pg"})': () => sampledS, "max(cpu)": () => 0.3 });
  sampledS = r.now() / 1000 - 7.5; // scraped 7.5 s before the query
  assert.is(await r.source.poll(0), 2);
  assert.equal(r.engine.freshPoint("orders", "replication_lag"), { value: 0.25, tMs: r.now() - 7500 }, "the lag carries its sample's time");
  assert.equal(r.source.status()[0]!.signals.lag, { value: 0.25, error: null, sampledAtMs: r.now() - 7500 });
  assert.not.ok(r.asked.includes("timestamp(max(cpu))"), "only the lag asks for its sample time");
  r.clock.advance(5000);
  assert.is(await r.source.poll(0), 1, "the same lag sample again is not fed; the cpu (stamped when queried) is");
  lag = 0;
  sampledS = r.now() / 1000 - 1; // a new sample
  r.clock.advance(5000);
  assert.is(await r.source.poll(0), 2);
  assert.equal(r.engine.freshPoint("orders", "replication_lag"), { value: 0, tMs: r.now() - 6000 });
  // A Prometheus clock ahead of ours: never stamped after the query.
  sampledS = r.now() / 1000 + 30;
  lag = 0.5;
  r.clock.advance(1000);
  await r.source.poll(0);
  assert.is(r.engine.freshPoint("orders", "replication_lag")!.tMs, r.now());
});

test("an aggregated lag uses its timestamp query; one that aggregates before timestamp() is refused by name; without one it is stamped when queried and start() warns", async () => {
  let sampledS = 0;
  const answers = { "max(pg_lag)": () => 0, "min(timestamp(pg_lag))": () => sampledS, "timestamp(max(pg_lag))": () => Number.NaN };
  const good = lagRig([{ signal: "lag", query: "max(pg_lag)", timestamp: "min(timestamp(pg_lag))" }], answers);
  sampledS = good.now() / 1000 - 3;
  assert.is(await good.source.poll(0), 1);
  assert.is(good.engine.freshPoint("orders", "replication_lag")!.tMs, good.now() - 3000);
  good.source.start(); good.source.stop();
  assert.equal(good.lines, [], "no warning with a timestamp query");
  // timestamp(max(x)) is the evaluation time: the point would look fresh whatever its age.
  const evalTime = lagRig([{ signal: "lag", query: "max(pg_lag)", timestamp: "timestamp(max(pg_lag))" }], { ...answers, "timestamp(max(pg_lag))": () => evalTime.now() / 1000 });
  assert.is(await evalTime.source.poll(0), 0);
  assert.match(evalTime.source.status()[0]!.signals.lag!.error ?? "", /timestamp query "timestamp\(max\(pg_lag\)\)" gives the evaluation time, not a sample's: take timestamp\(\) of the selector, then aggregate/);
  assert.is(evalTime.engine.freshPoint("orders", "replication_lag"), null);
  const failing = lagRig([{ signal: "lag", query: "max(pg_lag)", timestamp: "min(timestamp(pg_lag))" }], { "max(pg_lag)": () => 0, "min(timestamp(pg_lag))": () => "query timed out" });
  assert.is(await failing.source.poll(0), 0);
  assert.match(failing.source.status()[0]!.signals.lag!.error ?? "", /^timestamp query "min\(timestamp\(pg_lag\)\)": query failed: execution: query timed out/);
  const bare = lagRig([{ signal: "lag", query: "max(pg_lag)" }], answers);
  assert.is(await bare.source.poll(0), 1);
  assert.is(bare.engine.freshPoint("orders", "replication_lag")!.tMs, bare.now(), "no sample time: the query's");
  assert.equal(bare.asked, ["max(pg_lag)"]);
  bare.source.start(); bare.source.stop();
  assert.is(bare.lines.length, 1);
  assert.match(bare.lines[0]!, /promql\[0\]\.signals\[0\]: a replication lag read through an aggregate has no sample time/);
});

test("measureLag reads only the component's lag signals, at once, and an older sample it overtook is skipped without an error", async () => {
  let sampledS = 0;
  const r = lagRig([{ signal: "lag", query: "pg_lag" }, { signal: "cpu", query: "max(cpu)" }], { pg_lag: () => 0, "timestamp(pg_lag)": () => sampledS, "max(cpu)": () => 0.3 });
  sampledS = r.now() / 1000 - 2;
  assert.is(await r.source.measureLag("orders"), 1);
  assert.equal([...r.asked].sort(), ["pg_lag", "timestamp(pg_lag)"]);
  assert.is(await r.source.measureLag("billing"), 0);
  sampledS -= 5; // a scheduled poll answering with an older sample than the one already fed
  r.clock.advance(1000);
  assert.is(await r.source.poll(0), 1, "the cpu only");
  assert.equal(r.source.status()[0]!.signals.lag!.error, null);
  assert.is(r.engine.freshPoint("orders", "replication_lag")!.tMs, r.now() - 1000 - 2000);
});

whenAvailable("promql", binary ? null : "the prometheus binary is not installed (Debian: apt-get install prometheus)", "PromQL signals from a real Prometheus scraping the sample follow the node; bad queries say why", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-promql-"));
  let prom: ChildProcess | undefined, ctl: RunningController | undefined;
  let cpu = 0.25;
  const node = new KvNode({ name: "a", side: "primary", zone: "z1", role: "leader", log: silentLogger(), condition: (s: SignalName) => (s === "cpu" ? cpu : HEALTHY[s]) });
  try {
    const kvPort = await node.start();
    const port = await freePort();
    writeFileSync(path.join(dir, "prometheus.yml"), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: sample\n    static_configs: [{ targets: ["127.0.0.1:${kvPort}"] }]\n`);
    let log = "";
    prom = spawn(binary, [`--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "pipe"] });
    prom.stderr!.on("data", (d) => { log = (log + d.toString()).slice(-4000); });
    const url = `http://127.0.0.1:${port}`;
    await until(`Prometheus to scrape the sample (log: ${log.slice(-300)})`, async () => {
      try {
        const r = await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent('sample_cpu_utilization{job="sample"}')}`)).json() as { data?: { result?: unknown[] } };
        return (r.data?.result?.length ?? 0) > 0 ? true : null;
      } catch { return null; }
    }, 20_000);
    ctl = await startController(parseConfig(testControllerYaml({ token: "promql-token-0123456789", component: SIGNALS, extra: sources(url) }), "c.yaml"), { log: silentLogger() });
    const sig = (name: string) => ctl!.promql.status()[0]!.signals[name];
    const first = await until("the cpu signal", () => { const s = sig("cpu"); return s && s.value !== null ? s.value : null; }, 10_000);
    assert.ok(Math.abs(first - 0.25) < 0.05, `cpu ${first}, the node shows 0.25 (3 % jitter)`);
    assert.match(sig("queue")!.error ?? "", /the query returned 2 series .*aggregate it to one \(sum, max, avg\)/);
    assert.match(sig("errors")!.error ?? "", /query failed: bad_data: /);
    cpu = 0.9;
    const raised = await until("the raised cpu", () => { const s = sig("cpu"); return s && s.value !== null && s.value > 0.8 ? s.value : null; }, 10_000);
    assert.ok(Math.abs(raised - 0.9) < 0.1, `cpu ${raised} after the node went to 0.9`);
    const engineCpu = ctl.engine.freshValue("orders", "cpu");
    assert.ok(engineCpu !== null && engineCpu > 0.8, `the risk engine has the raised cpu: ${engineCpu}`);
    // The lag (a plain selector) carries the time Prometheus scraped it, before the query's.
    const lag = await until("the lag with its sample time", () => { const s = sig("lag"); return s && s.sampledAtMs !== undefined ? s : null; }, 10_000);
    const asked = ctl.promql.status()[0]!.lastAttemptMs!, point = ctl.engine.freshPoint("orders", "replication_lag");
    assert.ok(lag.value !== null && lag.value >= 0, `lag ${lag.value}`);
    assert.ok(lag.sampledAtMs! <= asked && asked - lag.sampledAtMs! < 5000, `sampled at ${lag.sampledAtMs}, queried at ${asked} (1 s scrapes)`);
    assert.is(point?.tMs, ctl.promql.status()[0]!.signals.lag!.sampledAtMs, "the risk engine's lag point is stamped with the sample's time");
  } finally {
    await ctl?.stop();
    prom?.kill("SIGTERM");
    await node.stop();
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
