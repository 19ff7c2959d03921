// The PromQL signal source against a real Prometheus (Debian's prometheus package, started here on a
// free port) scraping a real sample KV node's /metrics every second: the controller's configured
// queries feed the component's signals and follow the node (its CPU raised from 0.25 to 0.9 shows up);
// a query with two series is refused with "aggregate it", a bad expression with Prometheus's own
// error, an unknown signal or a bad URL in the configuration is named by file, line and field.
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
import { PromqlSignalSource } from "../../controller/metrics/promql.js";
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
      - { name: errors, kind: error_rate }`;
const sources = (url: string) => `promql:
  - component: orders
    url: ${url}
    intervalS: 1
    signals:
      - { signal: cpu, query: 'max(sample_cpu_utilization{job="sample"})' }
      - { signal: queue, query: 'sample_requests_total{job="sample"}' }
      - { signal: errors, query: 'rate(sample_requests_total[' }
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
  bad("promql:\n  - { component: orders, url: http://p:9090, signals: [{ signal: nope, query: up }] }\n", /c\.yaml:\d+:\d+: promql\[0\]\.signals\[0\]\.signal: nope is not a signal of orders \(its signals: cpu, queue, errors\)/);
  bad("promql:\n  - { component: orders, url: 'not a url', signals: [{ signal: cpu, query: up }] }\n", /promql\[0\]\.url: "not a url" is not a URL/);
  bad("promql:\n  - { component: orders, url: 'http://p:9090/api/v1/query?query=up', signals: [{ signal: cpu, query: up }] }\n", /promql\[0\]\.url: the server's base URL/);
  bad("promql:\n  - { component: billing, url: http://p:9090, signals: [{ signal: cpu, query: up }] }\n", /promql\[0\]\.component: unknown component billing/);
  bad("promql:\n  - { component: orders, url: http://p:9090, signals: [{ signal: cpu, query: up, step: 5 }] }\n", /promql\[0\]\.signals\[0\]\.step: unknown field/);
  const ok = parseConfig(yaml(sources("http://127.0.0.1:9090")), "c.yaml");
  assert.is(ok.promql?.[0]?.signals.length, 3);
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
  } finally {
    await ctl?.stop();
    prom?.kill("SIGTERM");
    await node.stop();
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
