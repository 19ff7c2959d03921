// The dashboard in Debian's headless chromium (driven by playwright-core): what a person sees while
// the whole system runs under load: the component, its phase, the risk explanation naming the
// signals, the weights, and the migration timeline updating live when an operator pauses a
// migration. A screenshot of the card is decoded and checked for drawn content (not a blank page).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { PNG } from "pngjs";
import { silentLogger } from "../../controller/log.js";
import { startSystem } from "../../world/demo/run.js";
import { LoadGenerator } from "../../world/demo/load.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

test("the dashboard shows risk, explanation, weights and a live timeline", async () => {
  assert.ok(existsSync(CHROMIUM), `Debian chromium is required at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
  const sys = await startSystem({ log: silentLogger() });
  const load = new LoadGenerator({ target: sys.listener, host: "orders.svc", rateRps: 150, readShare: 0.7, keys: 1000, seed: 3 });
  let browser: Browser | undefined;
  try {
    load.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`http://127.0.0.1:${sys.controller.ports.http}/`);
    const card = page.locator('[data-component="orders"]');
    await card.waitFor({ timeout: 10_000 });
    await page.locator("#conn.live").waitFor({ timeout: 5000 });
    assert.is(await card.locator(".name").textContent(), "orders");
    assert.is(await card.locator(".phase").textContent(), "Healthy");
    // The explanation lists the component's signals once data flows (telemetry and scrapes).
    await card.locator('tr[data-signal="request_latency_p99_ms"]').waitFor({ timeout: 10_000 });
    await card.locator('tr[data-signal="replication_lag_s"]').waitFor({ timeout: 10_000 });
    assert.match(await card.locator('[data-stat="writes"] b').textContent() ?? "", /^primary/);
    assert.match(await card.locator(".weights .p").textContent() ?? "", /primary 100%/);

    // An operator starts a migration and pauses it: the page follows without a reload.
    const m = sys.controller.manager;
    assert.ok(m.command("orders", { kind: "promote", by: "dashboard-test" }).accepted);
    await page.waitForFunction(() => /Preflight|Shifting/.test(document.querySelector('[data-component="orders"] .phase')?.textContent ?? ""), null, { timeout: 10_000 });
    await page.waitForFunction(() => /Shifting/.test(document.querySelector('[data-component="orders"] .phase')?.textContent ?? ""), null, { timeout: 20_000 });
    await page.waitForFunction(() => /shadow \d+%/.test(document.querySelector('[data-component="orders"] .weights .s')?.textContent ?? ""), null, { timeout: 10_000 });
    assert.ok(m.command("orders", { kind: "pause", by: "dashboard-test", reason: "looking closer" }).accepted);
    await page.waitForFunction(() => document.querySelector('[data-component="orders"] .phase')?.textContent === "Paused", null, { timeout: 5000 });
    const timeline = await card.locator("ol.timeline li").allTextContents();
    assert.ok(timeline.some((t) => /manual promote by dashboard-test/.test(t)), `the timeline names the operator: ${timeline.slice(0, 4).join(" | ")}`);
    assert.ok(timeline.some((t) => /paused by dashboard-test: looking closer/.test(t)), "and the pause with its reason");
    assert.ok(timeline.some((t) => /step 1\/3: shadow gets 20% of reads/.test(t)), "and the first step");

    // The chart has drawn the history; the screenshot is not blank.
    const png = PNG.sync.read(await card.screenshot());
    const colours = new Set<number>();
    let ink = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
      colours.add((r << 16) | (g << 8) | b);
      if (r + g + b < 600) ink++;
    }
    assert.ok(colours.size > 50, `the card is drawn in many colours (${colours.size})`);
    assert.ok(ink / (png.width * png.height) > 0.02, `text, bars and lines cover part of the card (${(100 * ink / (png.width * png.height)).toFixed(1)}%)`);
    const chart = PNG.sync.read(await card.locator(".chart canvas").first().screenshot());
    let riskLine = 0, weightLine = 0;
    for (let i = 0; i < chart.data.length; i += 4) {
      const [r, g, b] = [chart.data[i]!, chart.data[i + 1]!, chart.data[i + 2]!];
      if (r > 200 && g < 110 && b > 60 && b < 130) riskLine++; // #eb3b5a
      if (r > 110 && r < 160 && g < 110 && b > 180) weightLine++; // #8854d0
    }
    assert.ok(riskLine > 20, `the risk line is drawn (${riskLine} pixels)`);
    assert.ok(weightLine > 20, `the shadow weight line is drawn (${weightLine} pixels)`);
  } finally {
    await browser?.close();
    await load.stop();
    await sys.stop();
  }
});

test.run();
