// Impact analysis end to end: a simulated mesh of a dozen services, each behind its own embedded
// sidecar (the real filter, configured over xDS by a real controller: one protected component, the
// others observed), calling their known dependencies. The controller's service graph has exactly
// the known edges with rates in the known proportions; the ranking puts the service everything
// depends on first and explains it; the plan keeps within its budget; API, dashboard JSON and the
// impact page answer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import path from "node:path";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../controller/log.js";
import { parseConfig } from "../../controller/config.js";
import { startController } from "../../controller/main.js";
import { authMetadata, controllerClient } from "../../controller/api/service.js";
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { until } from "../support/until.js";
import { loadGraph } from "../../controller/impact/graph.js";

const WASM = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "build", "shadowmesh.wasm");
const TOKEN = "impact-test-token-0123456789";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

// Who calls whom (each request to a service makes one call to each dependency, in order).
const DEPS: Record<string, string[]> = {
  web: ["auth", "catalog", "cart"],
  mobile: ["auth", "catalog", "orders"],
  checkout: ["auth", "orders", "payments", "pricing"],
  catalog: ["search", "inventory", "pricing"],
  cart: ["pricing", "inventory"],
  orders: ["inventory", "payments"],
  recommendations: ["catalog"],
  auth: [], search: [], inventory: [], pricing: [], payments: [],
};
const SERVICES = Object.keys(DEPS);
// The load: requests per round from the client to each entry service.
const ENTRY: Record<string, number> = { web: 3, mobile: 2, checkout: 1, recommendations: 1 };

interface Sidecar { dp: EmbeddedDataPlane; port: number }

function call(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/", method: "GET", headers: { host } }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode ?? 0)); });
    req.on("error", () => resolve(0));
    req.end();
  });
}

test("a dozen services behind their own sidecars: the graph has the known edges and rates, the ranking and the plan follow", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "impact-mesh-"));
  const servers: http.Server[] = [];
  const sidecars = new Map<string, Sidecar>();
  const ports = new Map<string, number>();
  // Each service answers after calling its dependencies through its own sidecar; a dependency's 5xx fails it.
  for (const name of SERVICES) {
    const server = http.createServer(async (req, res) => {
      req.resume();
      let ok = true;
      for (const d of DEPS[name]!) if ((await call(sidecars.get(name)!.port, `${d}.svc`)) >= 500) ok = false;
      res.writeHead(ok ? 200 : 503); res.end(name);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    servers.push(server);
    ports.set(name, (server.address() as { port: number }).port);
  }
  const yaml = `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["${TOKEN}"] }
stateDir: ${dir}
tickMs: 100
dataplane: { listener: "127.0.0.1:0", wasm: ${WASM}, telemetryIntervalMs: 250 }
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:${ports.get("orders")}"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:${ports.get("orders")}"] }
observe:
${SERVICES.filter((s) => s !== "orders").map((s) => `  - { name: ${s}, hostnames: [${s}.svc], cluster: { name: ${s}, endpoints: ["127.0.0.1:${ports.get(s)}"] } }`).join("\n")}
impact:
  tiers: { client: 5 }
  resources: { auth: { cpuCores: 4, memoryGiB: 8 }, inventory: { cpuCores: 2, memoryGiB: 4 }, pricing: { cpuCores: 2, memoryGiB: 4 } }
`;
  const file = path.join(dir, "controller.yaml");
  writeFileSync(file, yaml);
  const ctl = await startController(parseConfig(yaml, file), { log: silentLogger() });
  let edgeCount = -1;
  const api = controllerClient(`127.0.0.1:${ctl.ports.api}`, TOKEN);
  try {
    // One sidecar per service, and one for the client that sends the entry traffic; each knows its workload.
    for (const name of [...SERVICES, "client"]) {
      const dp = new EmbeddedDataPlane({ xds: `127.0.0.1:${ctl.ports.xds}`, node: { id: `${name}-sidecar`, cluster: "mesh", metadata: { WORKLOAD_NAME: name } }, workers: 1, log: silentLogger() });
      dp.start();
      sidecars.set(name, { dp, port: await dp.listenerPort("shadowmesh-ingress") });
    }
    const client = sidecars.get("client")!.port;
    const rounds = 40;
    for (let i = 0; i < rounds; i++) {
      const sends: Promise<number>[] = [];
      for (const [svc, n] of Object.entries(ENTRY)) for (let k = 0; k < n; k++) sends.push(call(client, `${svc}.svc`));
      for (const code of await Promise.all(sends)) assert.is(code, 200);
      await new Promise((r) => setTimeout(r, 25));
    }
    // Every request a service got, it passed on to each dependency once: the expected count per edge.
    const expected = new Map<string, number>();
    const visit = (svc: string, caller: string, n: number) => {
      expected.set(`${caller}>${svc}`, (expected.get(`${caller}>${svc}`) ?? 0) + n);
      for (const d of DEPS[svc]!) visit(d, svc, n);
    };
    for (const [svc, n] of Object.entries(ENTRY)) visit(svc, "client", n * rounds);
    const sum = [...expected.values()].reduce((a, b) => a + b, 0);
    // The graph, once the last windows sealed: exactly the known edges, each with its share of the requests.
    let impact: any;
    // Settled: every edge there and no window added for 1.5 s (the traffic has stopped; the last buckets sealed).
    let lastAt: unknown = null, sameSince = Date.now();
    await until("the graph to have every edge and settle", async () => {
      impact = await new Promise((resolve, reject) => api.getImpact({}, authMetadata(api), (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
      if (String(impact.atUnixMs) !== String(lastAt)) { lastAt = impact.atUnixMs; sameSince = Date.now(); }
      return impact.edges.length === expected.size && Date.now() - sameSince > 1500;
    }, 20_000, () => `${impact?.edges.length} of ${expected.size} edges`);
    edgeCount = expected.size;
    // The sidecars' reports came on one StreamReports stream each (the controller's filter config asks
    // for it; each sidecar has one worker), not a unary call per report: the exact edge counts above
    // prove nothing was lost on the streams.
    const reports = ctl.telemetry.stats.reports;
    assert.ok(reports >= 3 * sidecars.size, `${reports} reports merged`);
    for (const [name, s] of sidecars) assert.is(s.dp.upstreams.calls.grpc, 1, `${name}: one stream, no unary calls (${s.dp.upstreams.calls.grpc} gRPC calls and streams for ${reports} reports in all)`);
    const edges = new Map((impact.edges as any[]).map((e) => [`${e.caller}>${e.callee}`, e]));
    assert.equal([...edges.keys()].sort(), [...expected.keys()].sort(), "the known edges, no other");
    const totalRps = [...edges.values()].reduce((a, e) => a + e.rps, 0);
    for (const [k, n] of expected) {
      const share = edges.get(k).rps / totalRps, want = n / sum;
      assert.ok(Math.abs(share - want) < 0.02 * want + 1e-3, `${k}: ${(100 * share).toFixed(2)}% of the requests, expected ${(100 * want).toFixed(2)}%`);
      assert.is(edges.get(k).errorRatio, 0);
    }
    // Ranking, by hand: every request calls each dependency once, so (structurally) a failed dependency
    // fails every request of everything above it. A component's weighted failed req/s is then 5 (the
    // client's tier) x the client's requests to the entry services that reach it: per round of 7,
    // inventory and pricing 7 (every entry), auth, catalog and search 6, web, cart, orders, payments 3,
    // mobile 2, checkout and recommendations 1.
    const ranking = impact.ranking as any[];
    assert.is(ranking.length, SERVICES.length, "every component that is called is ranked");
    const share: Record<string, number> = { inventory: 7, pricing: 7, auth: 6, catalog: 6, search: 6, web: 3, cart: 3, orders: 3, payments: 3, mobile: 2, checkout: 1, recommendations: 1 };
    const clientRps = [...edges.values()].filter((e) => e.caller === "client").reduce((a, e) => a + e.rps, 0);
    for (const r of ranking) {
      const want = (5 * clientRps * share[r.component]!) / 7;
      assert.ok(Math.abs(r.weightedFailedRps - want) < 0.03 * want, `${r.component}: ${r.weightedFailedRps.toFixed(1)} weighted failed req/s if down, expected ${want.toFixed(1)}`);
    }
    const order = ranking.map((r) => r.component);
    assert.equal(order.slice(0, 2).sort(), ["inventory", "pricing"], `under every entry point, first: ${order.join(", ")}`);
    const auth = ranking.find((r) => r.component === "auth");
    assert.match(auth.explanation, /^auth: /);
    assert.ok(auth.contributors.some((c: any) => c.caller === "web" || c.caller === "client"), `auth's explanation names a caller: ${auth.explanation}`);
    assert.ok((impact.nodes as any[]).find((n) => n.name === "orders").protected, "orders has a shadow");

    // The plan: within the budget; orders (protected) is not a candidate; services without resources need sizing.
    const plan: any = await new Promise((resolve, reject) => api.planShadows({ budget: 150 }, authMetadata(api), (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
    assert.ok(plan.totalCost <= 150, `cost ${plan.totalCost} within 150`);
    assert.ok(!plan.candidates.some((c: any) => c.component === "orders"));
    assert.equal(plan.protected, ["orders"]);
    assert.is(plan.candidates.find((c: any) => c.component === "search").verdict, "needs sizing");
    assert.ok(plan.candidates.some((c: any) => c.verdict === "chosen"), plan.summary);
    const bad = await new Promise<any>((resolve) => api.planShadows({ budget: -1 }, authMetadata(api), (e: any) => resolve(e)));
    assert.match(bad?.details ?? "", /budget: must be a number of currency units a month, 0 or more, got -1/);

    // The dashboard's impact page in Debian's chromium: a box per service, a line per edge, the ranking
    // and the plan for the budget typed in; and its JSON.
    const base = `http://127.0.0.1:${ctl.ports.http}`;
    const view = await (await fetch(`${base}/api/impact`)).json() as any;
    assert.is(view.graph.edges.length, expected.size);
    assert.is((await fetch(`${base}/api/plan?budget=abc`)).status, 400);
    assert.ok(existsSync(CHROMIUM), `Debian chromium is required at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      await page.goto(`${base}/impact`);
      await page.waitForFunction(() => document.querySelectorAll("#g .node").length > 0, null, { timeout: 10_000 });
      assert.is(await page.locator("#g .node").count(), SERVICES.length + 1, "a box per service and the client");
      assert.is(await page.locator("#g path.edge").count(), expected.size, "a line per edge");
      assert.is(await page.locator("#g .node.protected").count(), 1, "orders drawn as protected");
      assert.is(await page.locator("#ranking tbody tr").count(), SERVICES.length);
      await page.fill("#b", "150");
      await page.click("#budget button");
      await page.waitForFunction(() => / of 150\.00 /.test(document.querySelector("#summary")?.textContent ?? ""), null, { timeout: 5000 });
      if (process.env.IMPACT_SCREENSHOT) await page.screenshot({ path: process.env.IMPACT_SCREENSHOT, fullPage: true });
      assert.is(await page.locator('#plan tbody tr[data-row="search"] .verdict').textContent(), "needs sizing");
      assert.match(await page.locator("#summary").textContent() ?? "", /Already shadowed: orders/);
    } finally { await browser.close(); }
  } finally {
    api.close();
    for (const s of sidecars.values()) await s.dp.close();
    await ctl.stop();
    for (const s of servers) { s.closeAllConnections(); s.close(); }
  }
  // The graph was saved with the state at stop and loads back with every edge.
  const g = loadGraph(path.join(dir, "graph.json"));
  assert.ok(g, "graph.json was saved");
  assert.is(g!.snapshot().edges.length, edgeCount);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
