// The shadow is scored on its own signals: the proxies' answers from the shadow (live or mirrored)
// and a side: shadow scrape feed the shadow's scorer, while the pair's signal (replication lag) still
// feeds the component; a loaded shadow gets a risk of its own and an explanation; each scrape's
// round trip is a network-latency point for the side it reached.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock, wallMs } from "../../host/clock.js";
import { RiskEngine, shadowKey, shadowSignals } from "../../controller/risk/engine.js";
import type { SignalSpec } from "../../controller/risk/spec.js";
import { feedRisk } from "../../controller/telemetry/feed.js";
import type { BucketSummary } from "../../controller/telemetry/bucket.js";
import { PrometheusScraper } from "../../controller/metrics/prometheus.js";
import { silentLogger } from "../../controller/log.js";

const SIGNALS: SignalSpec[] = [
  { name: "request_latency_p99_ms", kind: "latency" },
  { name: "request_error_rate", kind: "error_rate" },
  { name: "replication_lag_s", kind: "replication_lag" },
  { name: "cpu", kind: "cpu", capacity: 1 },
];

function setup() {
  const clock = new ManualClock(1_700_000_000_000);
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "db", signals: SIGNALS });
  engine.setComponent({ name: shadowKey("db"), signals: shadowSignals(SIGNALS) });
  return { clock, engine };
}

test("the shadow's scorer has the component's signals minus the pair's", () => {
  assert.equal(shadowSignals(SIGNALS).map((s) => s.name), ["request_latency_p99_ms", "request_error_rate", "cpu"]);
  const { engine } = setup();
  assert.throws(() => engine.setComponent({ name: "a/b", signals: [] }), /must not contain "\/"/);
});

test("proxies' answers from the shadow feed the shadow's scorer; the primary's feed the component", () => {
  const { clock, engine } = setup();
  const bucket = (t: number): BucketSummary => ({
    component: "db", startMs: t - 1000, endMs: t, divergence: 0, mirrored: 0, shadowWeightBp: 0, robust: null, outliers: [],
    targets: { PRIMARY: { requests: 100, errorRate: 0.001, p50Ms: 2, p99Ms: 5 }, SHADOW_MIRROR: { requests: 20, errorRate: 0, p50Ms: 3, p99Ms: 9 } },
  });
  const t = wallMs(clock);
  assert.is(feedRisk(engine, bucket(t)), 4);
  engine.tick();
  const own = engine.get(shadowKey("db"))!.contributions.find((c) => c.signal === "request_latency_p99_ms")!;
  assert.is(own.value, 9);
  assert.is(engine.get("db")!.contributions.find((c) => c.signal === "request_latency_p99_ms")!.value, 5);
});

test("a side: shadow scrape feeds the shadow's CPU to the shadow and its lag to the component; a saturated shadow is at risk", async () => {
  const { clock, engine } = setup();
  const text = "# TYPE cpu gauge\ncpu 0.97\n# TYPE lag gauge\nlag 0.4\n";
  const fetchFn = async () => ({ ok: true, status: 200, text: async () => text }) as unknown as Response;
  const scraper = new PrometheusScraper([{ component: "db", url: "http://shadow/metrics", intervalS: 1, timeoutS: 1, side: "shadow", signals: [{ signal: "cpu", metric: "cpu" }, { signal: "replication_lag_s", metric: "lag" }] }], engine, clock, fetchFn, silentLogger());
  for (let i = 0; i < 30; i++) { assert.is(await scraper.scrape(0), 2); clock.advance(1000); engine.tick(); }
  const sh = engine.get(shadowKey("db"))!;
  const cpu = sh.contributions.find((c) => c.signal === "cpu")!;
  assert.is(cpu.value, 0.97);
  assert.is(cpu.view, "saturation");
  assert.ok(sh.probability > 0.01 && sh.risk > 0, `the shadow at 97 % CPU: probability ${sh.probability}, risk ${sh.risk}`);
  const db = engine.get("db")!;
  assert.is(db.contributions.find((c) => c.signal === "replication_lag_s")!.value, 0.4);
  assert.is(db.contributions.find((c) => c.signal === "cpu")!.state, "missing", "the primary's CPU is not the shadow's");
});

test("each scrape's round trip feeds probe_rtt_ms (network_latency) for the side it reached", async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const engine = new RiskEngine({ clock });
  const sig: SignalSpec[] = [{ name: "probe_rtt_ms", kind: "network_latency" }, { name: "cpu", kind: "cpu" }];
  engine.setComponent({ name: "db", signals: sig });
  engine.setComponent({ name: shadowKey("db"), signals: shadowSignals(sig) });
  const delays: Record<string, number> = { "http://primary/metrics": 2, "http://shadow/metrics": 30 };
  const fetchFn = async (url: string | URL | Request) => { clock.advance(delays[String(url)]!); return { ok: true, status: 200, text: async () => "# TYPE cpu gauge\ncpu 0.3\n" } as unknown as Response; };
  const scraper = new PrometheusScraper([
    { component: "db", url: "http://primary/metrics", intervalS: 1, timeoutS: 1, side: "primary", signals: [{ signal: "cpu", metric: "cpu" }] },
    { component: "db", url: "http://shadow/metrics", intervalS: 1, timeoutS: 1, side: "shadow", signals: [{ signal: "cpu", metric: "cpu" }] },
  ], engine, clock, fetchFn, silentLogger());
  await scraper.scrape(0); await scraper.scrape(1);
  engine.tick();
  const rtt = (c: string) => engine.get(c)!.contributions.find((x) => x.signal === "probe_rtt_ms")!.value;
  assert.is(rtt("db"), 2);
  assert.is(rtt(shadowKey("db")), 30);
});

test.run();
