// Scraping Prometheus text format over real HTTP: gauges, counters as rates, histogram quantiles over
// the interval, label matching; a missing metric or a failed scrape is recorded and the signal goes
// stale in the risk engine (never a zero).
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { ManualClock, wallMs } from "../../host/clock.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { PrometheusScraper, checkTargets, histogramQuantile } from "../../controller/metrics/prometheus.js";
import { silentLogger } from "../../controller/log.js";

function exporter(body: () => { status: number; text: string }) {
  const server = http.createServer((_req, res) => { const b = body(); res.writeHead(b.status, { "content-type": "text/plain; version=0.0.4" }); res.end(b.text); });
  return new Promise<{ url: string; close: () => void }>((res) => server.listen(0, "127.0.0.1", () => {
    res({ url: `http://127.0.0.1:${(server.address() as any).port}/metrics`, close: () => server.close() });
  }));
}

const page = (idle: number, user: number, lag: number, buckets: [string, number][]) => `# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} ${idle}
node_cpu_seconds_total{cpu="0",mode="user"} ${user}
node_cpu_seconds_total{cpu="1",mode="user"} ${user}
# TYPE pg_replication_lag_seconds gauge
pg_replication_lag_seconds{application_name="shadow"} ${lag}
# TYPE http_request_duration_seconds histogram
${buckets.map(([le, c]) => `http_request_duration_seconds_bucket{le="${le}"} ${c}`).join("\n")}
http_request_duration_seconds_count ${buckets.at(-1)![1]}
http_request_duration_seconds_sum 1
`;

test("gauges, counter rates and histogram quantiles reach the risk engine; a missing metric is recorded, not zero", async () => {
  let n = 0;
  const ex = await exporter(() => {
    n++;
    return { status: 200, text: page(100 * n, 10 * n, 2.5, [["0.01", 100 * n], ["0.1", 190 * n], ["1", 200 * n], ["+Inf", 200 * n]]) };
  });
  const clock = new ManualClock();
  const engine = new RiskEngine({ clock, staleAfterS: 30 });
  engine.setComponent({ name: "pg", signals: [
    { name: "cpu_user", kind: "cpu" }, { name: "lag_s", kind: "replication_lag" }, { name: "p90_ms", kind: "latency" }, { name: "queue", kind: "queue_depth" },
  ] });
  const targets = checkTargets([{ component: "pg", url: ex.url, intervalS: 10, signals: [
    { signal: "cpu_user", metric: "node_cpu_seconds_total", labels: { mode: "user" }, rate: true },
    { signal: "lag_s", metric: "pg_replication_lag_seconds", labels: { application_name: "shadow" } },
    { signal: "p90_ms", metric: "http_request_duration_seconds", quantile: 0.9, scale: 1000 },
    { signal: "queue", metric: "pg_queue_depth" },
  ] }]);
  const scraper = new PrometheusScraper(targets, engine, clock, fetch as any, silentLogger());
  assert.is(await scraper.scrape(0), 1, "first scrape: only the gauge (a rate and an interval quantile need two)");
  clock.advance(10_000);
  assert.is(await scraper.scrape(0), 3);
  engine.tick();
  const r = engine.get("pg")!;
  const v = (s: string) => r.contributions.find((c) => c.signal === s)!;
  assert.is(v("cpu_user").value, 2, "two CPUs x 10 s of user time per 10 s");
  assert.is(v("lag_s").value, 2.5);
  // 200 new observations: 100 under 10 ms, 90 in (10, 100] ms: the 90th percentile (180th) is at 10 + 90 * 80/90 ms.
  assert.ok(Math.abs(v("p90_ms").value! - 90) < 1e-9, `p90 ${v("p90_ms").value}`);
  assert.is(v("queue").state, "missing");
  assert.is(v("queue").value, null);
  assert.equal(scraper.status()[0]!.missing, { queue: "metric pg_queue_depth not in the response" });
  ex.close();
});

test("measureLag reads only the lag gauge, stamped when it began, and leaves the rates, quantiles and status to the schedule", async () => {
  let n = 0, lag = 2.5, status = 200;
  const ex = await exporter(() => { n++; return { status, text: page(100 * n, 10 * n, lag, [["0.01", 100 * n], ["+Inf", 200 * n]]) }; });
  const clock = new ManualClock();
  const engine = new RiskEngine({ clock, staleAfterS: 30 });
  engine.setComponent({ name: "pg", signals: [{ name: "cpu_user", kind: "cpu" }, { name: "lag_s", kind: "replication_lag" }, { name: "p90_ms", kind: "latency" }] });
  engine.setComponent({ name: "other", signals: [{ name: "lag_s", kind: "replication_lag" }] });
  const targets = checkTargets([
    { component: "pg", url: ex.url, intervalS: 10, signals: [
      { signal: "cpu_user", metric: "node_cpu_seconds_total", labels: { mode: "user" }, rate: true },
      { signal: "lag_s", metric: "pg_replication_lag_seconds" },
      { signal: "p90_ms", metric: "http_request_duration_seconds", quantile: 0.9, scale: 1000 },
    ] },
    { component: "other", url: ex.url, intervalS: 10, signals: [{ signal: "lag_s", metric: "pg_replication_lag_seconds" }] },
  ]);
  const scraper = new PrometheusScraper(targets, engine, clock, fetch as any, silentLogger());
  await scraper.scrape(0);
  const before = scraper.status()[0]!;
  clock.advance(400);
  lag = 0;
  const at = wallMs(clock);
  assert.is(await scraper.measureLag("pg"), 1, "the one lag signal of pg's one target");
  assert.is(n, 2, "one fetch: the other component's target is not read");
  assert.equal(engine.freshPoint("pg", "replication_lag"), { value: 0, tMs: at });
  assert.equal(scraper.status()[0], before, "the target's status is the scheduled scrape's");
  // The rate and the quantile still span the schedule's interval: the next scrape is their second.
  clock.advance(9_600);
  assert.is(await scraper.scrape(0), 3);
  engine.tick();
  assert.is(engine.get("pg")!.contributions.find((c) => c.signal === "cpu_user")!.value, 4, "two CPUs' user seconds (the counter read at the 1st and 3rd fetch) over the 10 s between the scheduled scrapes");
  // A failed read feeds nothing, and is not a failed health check.
  status = 503;
  assert.is(await scraper.measureLag("pg"), 0);
  assert.is(scraper.status()[0]!.consecutiveFailures, 0);
  ex.close();
});

test("a scheduled scrape overtaken by an on-demand lag read feeds the rest and skips its older lag point without an error", async () => {
  let lag = 3;
  const ex = await exporter(() => ({ status: 200, text: page(100, 10, lag, [["+Inf", 1]]) }));
  const clock = new ManualClock();
  const engine = new RiskEngine({ clock, staleAfterS: 30 });
  engine.setComponent({ name: "pg", signals: [{ name: "cpu_user", kind: "cpu" }, { name: "lag_s", kind: "replication_lag" }] });
  const targets = checkTargets([{ component: "pg", url: ex.url, intervalS: 10, signals: [
    { signal: "cpu_user", metric: "node_cpu_seconds_total", labels: { mode: "user" } },
    { signal: "lag_s", metric: "pg_replication_lag_seconds" },
  ] }]);
  // The scheduled scrape's answer is held until the on-demand read has been fed.
  let release: () => void = () => {}, holdNext = true;
  const slowFetch = async (url: string, init: RequestInit) => {
    if (holdNext) { holdNext = false; await new Promise<void>((r) => { release = r; }); }
    return fetch(url, init);
  };
  const scraper = new PrometheusScraper(targets, engine, clock, slowFetch as any, silentLogger());
  try {
    const scheduled = scraper.scrape(0); // stamped now
    clock.advance(400);
    lag = 0;
    const at = wallMs(clock);
    assert.is(await scraper.measureLag("pg"), 1);
    release();
    assert.is(await scheduled, 1, "the CPU gauge is fed; its lag point, older than the one read on demand, is not");
    assert.equal(scraper.status()[0]!.missing, {}, "and is no error");
    assert.equal(engine.freshPoint("pg", "replication_lag"), { value: 0, tMs: at });
    // The next scheduled scrape, begun after the read, feeds the lag again.
    clock.advance(9_600);
    assert.is(await scraper.scrape(0), 2);
  } finally { ex.close(); }
});

test("a gauge whose series carry a timestamp (federation, the CloudWatch exporter) is stamped with the oldest, never after the scrape, and not fed twice", async () => {
  const clock = new ManualClock();
  let text = "";
  const ex = await exporter(() => ({ status: 200, text }));
  const engine = new RiskEngine({ clock, staleAfterS: 600 });
  engine.setComponent({ name: "pg", signals: [{ name: "lag_s", kind: "replication_lag" }, { name: "conns", kind: "queue_depth" }] });
  const targets = checkTargets([{ component: "pg", url: ex.url, intervalS: 10, signals: [
    { signal: "lag_s", metric: "aws_rds_replica_lag_maximum", aggregate: "max" },
    { signal: "conns", metric: "pg_connections" },
  ] }]);
  const scraper = new PrometheusScraper(targets, engine, clock, fetch as any, silentLogger());
  const page = (lagA: number, tA: number, tB: number) => `# TYPE aws_rds_replica_lag_maximum gauge
aws_rds_replica_lag_maximum{db="a"} ${lagA} ${tA}
aws_rds_replica_lag_maximum{db="b"} 0 ${tB}
# TYPE pg_connections gauge
pg_connections 12
`;
  try {
    const t0 = wallMs(clock);
    text = page(0, t0 - 120_000, t0 - 60_000); // CloudWatch's minute-old datapoints
    assert.is(await scraper.scrape(0), 2);
    assert.equal(engine.freshPoint("pg", "replication_lag"), { value: 0, tMs: t0 - 120_000 }, "the oldest series' time, not the scrape's");
    assert.is(engine.freshPoint("pg", "queue_depth")!.tMs, t0, "a series without a timestamp: the scrape's");
    clock.advance(10_000);
    assert.is(await scraper.scrape(0), 1, "the same lag samples again: only the connections are new");
    assert.equal(scraper.status()[0]!.missing, {}, "and that is no error");
    clock.advance(10_000);
    text = page(0.5, t0 - 10_000, t0 + 3_600_000); // a series stamped in the future counts as the scrape's time at most
    const t2 = wallMs(clock);
    assert.is(await scraper.scrape(0), 2);
    assert.equal(engine.freshPoint("pg", "replication_lag"), { value: 0.5, tMs: t0 - 10_000 });
    text = page(0, t2 + 60_000, t2 + 60_000);
    clock.advance(1000);
    assert.is(await scraper.measureLag("pg"), 1);
    assert.equal(engine.freshPoint("pg", "replication_lag"), { value: 0, tMs: t2 + 1000 }, "clamped to when the read began");
    assert.is(await scraper.measureLag("pg"), 0, "read again on demand: nothing new");
  } finally { ex.close(); }
});

test("a failing endpoint is an error in status() and its signals go stale", async () => {
  let status = 200;
  const ex = await exporter(() => ({ status, text: page(1, 1, 0.5, [["+Inf", 1]]) }));
  const clock = new ManualClock();
  const engine = new RiskEngine({ clock, staleAfterS: 30 });
  engine.setComponent({ name: "pg", signals: [{ name: "lag_s", kind: "replication_lag" }] });
  const scraper = new PrometheusScraper(checkTargets([{ component: "pg", url: ex.url, intervalS: 10, signals: [{ signal: "lag_s", metric: "pg_replication_lag_seconds" }] }]), engine, clock, fetch as any, silentLogger());
  await scraper.scrape(0);
  status = 503;
  for (let i = 0; i < 4; i++) { clock.advance(10_000); assert.is(await scraper.scrape(0), 0); }
  engine.tick();
  assert.is(scraper.status()[0]!.lastError, "HTTP 503");
  assert.is(engine.get("pg")!.contributions[0]!.state, "stale");
  assert.is(scraper.probeFailures("pg", "primary"), null, "a target without a side is no health check");
  ex.close();
});

test("a target with a side is that side's active health check: failed scrapes in a row, reset by an answer", async () => {
  let status = 200;
  const ex = await exporter(() => ({ status, text: page(1, 1, 0.5, [["+Inf", 1]]) }));
  const clock = new ManualClock();
  const engine = new RiskEngine({ clock, staleAfterS: 30 });
  engine.setComponent({ name: "pg", signals: [{ name: "lag_s", kind: "replication_lag" }] });
  const targets = checkTargets([{ component: "pg", url: ex.url, side: "primary", intervalS: 1, signals: [{ signal: "lag_s", metric: "pg_replication_lag_seconds" }] }]);
  assert.is(targets[0]!.side, "primary");
  const scraper = new PrometheusScraper(targets, engine, clock, fetch as any, silentLogger());
  await scraper.scrape(0);
  assert.is(scraper.probeFailures("pg", "primary"), 0);
  assert.is(scraper.probeFailures("pg", "shadow"), null);
  status = 503;
  for (let i = 0; i < 3; i++) { clock.advance(1000); await scraper.scrape(0); }
  assert.is(scraper.probeFailures("pg", "primary"), 3);
  status = 200;
  await scraper.scrape(0);
  assert.is(scraper.probeFailures("pg", "primary"), 0);
  ex.close();
});

test("target configuration errors name the field", () => {
  const bad: [unknown, RegExp][] = [
    [{ component: "", url: "http://x", signals: [] }, /scrape\[0\]\.component: must be a non-empty string/],
    [{ component: "a", url: "nope", signals: [{}] }, /scrape\[0\]\.url: "nope" is not a URL/],
    [{ component: "a", url: "ftp://x/", signals: [{}] }, /scheme ftp: is not http or https/],
    [{ component: "a", url: "http://x/", signals: [{ signal: "s", metric: "9bad" }] }, /signals\[0\]\.metric: "9bad" is not a Prometheus metric name/],
    [{ component: "a", url: "http://x/", intervalS: 5, timeoutS: 10, signals: [{ signal: "s", metric: "m" }] }, /timeoutS: must be positive and at most intervalS \(5\)/],
    [{ component: "a", url: "http://x/", signals: [{ signal: "s", metric: "m", rate: true, quantile: 0.5 }] }, /rate and quantile cannot be combined/],
    [{ component: "a", url: "http://x/", side: "replica", signals: [{ signal: "s", metric: "m" }] }, /scrape\[0\]\.side: must be primary or shadow, got "replica"/],
  ];
  for (const [t, re] of bad) assert.throws(() => checkTargets([t]), re);
  assert.ok(Number.isNaN(histogramQuantile(0.5, [[1, 0], [Infinity, 0]])), "an empty histogram has no quantile");
});

test.run();
