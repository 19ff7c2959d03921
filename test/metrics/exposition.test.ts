// The controller's /metrics in Prometheus's conventions: `promtool check metrics` (Debian's prometheus
// package) finds nothing to say; counters are counters; process and Node.js metrics keep their
// default names; the shadow's weight is a 0-1 ratio; build_info carries package.json's version; what
// the proxies reported shows per side as request and error counters and latency quantiles in seconds;
// OpenMetrics only when asked for. Skips the promtool part, saying so, without promtool.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import YAML from "yaml";
import { parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { silentLogger } from "../../controller/log.js";
import { emptyFloor, emptyTarget, type ComponentTotals, type DecodedReport, type TargetName } from "../../controller/telemetry/report.js";
import { testControllerYaml } from "../support/controller-config.js";
import { whenAvailable } from "../support/real-servers.js";

let ctl: RunningController;
const promtool = spawnSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" }).stdout.trim();

/** One report from one proxy: per target [requests, errors, latency ms]. */
function report(seq: number, targets: Partial<Record<TargetName, [number, number, number]>>): DecodedReport {
  const c: ComponentTotals = { callers: new Map(), targets: new Map(), consistency: {}, reads: 0, writes: 0, shadowWeightBp: 0, floor: emptyFloor() };
  for (const [name, [n, e, ms]] of Object.entries(targets) as [TargetName, [number, number, number]][]) {
    const t = emptyTarget();
    t.requests = n; t.status = [0, n - e, 0, 0, e];
    for (let i = 0; i < n; i++) t.latency.add(ms * 1000);
    c.targets.set(name, t);
  }
  const end = BigInt(Date.now()) * 1_000_000n;
  return { nodeId: "proxy-1", workerId: 0n, sequence: seq, windowStartUnixNanos: end - 1_000_000_000n, windowEndUnixNanos: end, filterErrors: 0, configGeneration: 1, components: new Map([["orders", c]]) };
}

const scrape = async (accept?: string) => {
  const r = await fetch(`http://127.0.0.1:${ctl.ports.http}/metrics`, accept ? { headers: { accept } } : {});
  return { type: r.headers.get("content-type") ?? "", body: await r.text() };
};
const value = (body: string, series: string): number => {
  const line = body.split("\n").find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no series ${series}`);
  return Number(line!.slice(series.length + 1));
};

test.before(async () => {
  ctl = await startController(parseConfig(testControllerYaml({ token: "metrics-token-0123456789" }), "controller.yaml"), { log: silentLogger() });
  ctl.telemetry.ingest(report(1, { PRIMARY: [100, 3, 5], SHADOW_LIVE: [20, 0, 8] }));
  ctl.telemetry.ingest(report(2, { PRIMARY: [50, 1, 5], SHADOW_MIRROR: [10, 0, 6] }));
});
test.after(async () => { await ctl.stop(); });

test("counters are counters, names are the defaults, ratios and base units, per-side requests, errors and latency", async () => {
  const { type, body } = await scrape();
  assert.match(type, /^text\/plain; version=0\.0\.4/);
  for (const c of ["shadowmesh_xds_publishes_total", "shadowmesh_xds_nacks_total", "shadowmesh_webhook_deliveries_total", "shadowmesh_requests_total", "shadowmesh_request_errors_total", "shadowmesh_migration_events_total"]) {
    assert.match(body, new RegExp(`# TYPE ${c} counter`), `${c} is a counter`);
  }
  assert.match(body, /^process_cpu_seconds_total /m, "the default process metrics keep their names");
  assert.match(body, /^nodejs_heap_size_total_bytes /m);
  assert.not.match(body, /shadowmesh_controller_process/);
  assert.is(value(body, 'shadowmesh_shadow_weight_ratio{component="orders"}'), 0);
  assert.not.match(body, /weight_percent/);
  const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
  assert.match(body, new RegExp(`shadowmesh_build_info\\{version="${version.replace(/\./g, "\\.")}",revision="[^"]*",nodejs="v[\\d.]+"\\} 1`));
  assert.is(value(body, 'shadowmesh_requests_total{component="orders",side="primary",traffic="live"}'), 150);
  assert.is(value(body, 'shadowmesh_request_errors_total{component="orders",side="primary",traffic="live"}'), 4);
  assert.is(value(body, 'shadowmesh_requests_total{component="orders",side="shadow",traffic="live"}'), 20);
  assert.is(value(body, 'shadowmesh_requests_total{component="orders",side="shadow",traffic="mirror"}'), 10);
  const p99 = value(body, 'shadowmesh_request_duration_seconds{component="orders",side="primary",traffic="live",quantile="0.99"}');
  assert.ok(Math.abs(p99 - 0.005) / 0.005 < 0.03, `primary p99 ${p99} s, reported 5 ms`);
  const shadowP50 = value(body, 'shadowmesh_request_duration_seconds{component="orders",side="shadow",traffic="live",quantile="0.5"}');
  assert.ok(Math.abs(shadowP50 - 0.008) / 0.008 < 0.03, `shadow p50 ${shadowP50} s, reported 8 ms`);
  assert.match(body, /# TYPE shadowmesh_request_duration_seconds summary/);
  assert.is(value(body, 'shadowmesh_request_duration_seconds_count{component="orders",side="primary",traffic="live"}'), 150);
  assert.ok(Math.abs(value(body, 'shadowmesh_request_duration_seconds_sum{component="orders",side="primary",traffic="live"}') - 0.75) < 1e-9, "150 requests of 5 ms");
  assert.is(value(body, "shadowmesh_xds_connected_proxies"), 0);
  assert.ok(value(body, "shadowmesh_failure_probability_horizon_seconds") > 0);
});

test("OpenMetrics when the scraper asks for it", async () => {
  const om = await scrape("application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5");
  assert.match(om.type, /^application\/openmetrics-text/);
  assert.match(om.body, /# EOF\n$/);
  assert.match(om.body, /^# TYPE shadowmesh_xds_publishes counter$/m, "a counter family is named without _total");
  assert.match(om.body, /^shadowmesh_xds_publishes_total 0$/m, "its samples keep it");
  assert.not.match(om.body, /\n\n/, "no blank lines");
  const text = await scrape();
  assert.match(text.type, /^text\/plain/, "and text again for the next scraper that does not");
  assert.match(text.body, /^# TYPE shadowmesh_xds_publishes_total counter$/m, "with the counters' names intact");
});

whenAvailable("promtool check metrics", promtool ? null : "promtool is not installed (Debian: apt-get install prometheus)", "promtool check metrics: clean", async () => {
  const { body } = await scrape();
  const r = spawnSync(promtool, ["check", "metrics"], { input: body, encoding: "utf8" });
  assert.is(`${r.stdout}${r.stderr}`.trim(), "", "promtool has nothing to say");
  assert.is(r.status, 0);
});

test("the Grafana dashboard (deploy/grafana/shadowmesh.json) queries only metrics the controller serves", async () => {
  const dash = JSON.parse(readFileSync("deploy/grafana/shadowmesh.json", "utf8")) as { panels: { id: number; title: string; targets: { expr: string }[] }[]; templating: { list: { name: string }[] } };
  assert.ok(dash.panels.length >= 10);
  assert.is(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, "panel ids are unique");
  assert.ok(dash.templating.list.some((v) => v.name === "component"));
  const { body } = await scrape();
  const families = new Set([...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, `${p.title}: has a query`);
    for (const t of p.targets) for (const m of t.expr.matchAll(/\b((?:shadowmesh|process|nodejs)_[a-z_]+)/g)) {
      const name = m[1]!.replace(/_(sum|count|bucket)$/, "");
      assert.ok(families.has(name) || families.has(m[1]!), `${p.title}: ${m[1]} is not served by /metrics`);
    }
  }
});

whenAvailable("promtool check rules", promtool ? null : "promtool is not installed (Debian: apt-get install prometheus)", "promtool parses every query of the Grafana dashboard", async () => {
  const dash = JSON.parse(readFileSync("deploy/grafana/shadowmesh.json", "utf8")) as { panels: { targets: { expr: string }[] }[] };
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr.replaceAll("$component", ".*")));
  const rules = { groups: [{ name: "dashboard", rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] };
  const file = path.join(mkdtempSync(path.join(tmpdir(), "sm-rules-")), "rules.yaml");
  writeFileSync(file, YAML.stringify(rules));
  const r = spawnSync(promtool, ["check", "rules", file], { encoding: "utf8" });
  assert.is(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
});

test.run();
