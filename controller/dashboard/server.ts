// The dashboard's HTTP side: serves the page, its scripts (uPlot from node_modules, page.js and
// views.js), a JSON snapshot (/api/state) and a Server-Sent Events stream (/api/stream) that pushes
// the snapshot (snapshot.ts) once a second: one snapshot a second however many pages are open. The
// history it draws is history.ts. /impact is the impact page (impact.html, impact.js) with /api/impact
// and /api/plan?budget=N (impact/service.ts). Read-only: it changes nothing, so it has no credentials; bind the
// controller's http address to loopback or put it behind a proxy.
import type http from "node:http";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { snapshot, type DashboardDeps } from "./snapshot.js";

export { DashboardHistory } from "./history.js";
export { sampleHistory } from "./snapshot.js";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

let page: string | undefined;
let impactPage: string | undefined;
const ASSETS: Record<string, { file: () => string; type: string }> = {
  "/assets/uplot.js": { file: () => require.resolve("uplot/dist/uPlot.iife.min.js"), type: "text/javascript" },
  "/assets/uplot.css": { file: () => require.resolve("uplot/dist/uPlot.min.css"), type: "text/css" },
  "/assets/dashboard.js": { file: () => path.join(here, "page.js"), type: "text/javascript" },
  "/assets/views.js": { file: () => path.join(here, "views.js"), type: "text/javascript" },
  "/assets/impact.js": { file: () => path.join(here, "impact.js"), type: "text/javascript" },
};

/** The open streams of one controller and the timer that feeds them (running only while one is open). */
interface Broadcast { clients: Set<http.ServerResponse>; timer: NodeJS.Timeout | null }
const MAX_BUFFERED = 8 << 20;
const broadcasts = new WeakMap<DashboardDeps, Broadcast>();

function subscribe(d: DashboardDeps, res: http.ServerResponse): () => void {
  let b = broadcasts.get(d);
  if (!b) { b = { clients: new Set(), timer: null }; broadcasts.set(d, b); }
  const bc = b;
  res.write(`data: ${JSON.stringify(snapshot(d))}\n\n`);
  bc.clients.add(res);
  bc.timer ??= setInterval(() => {
    const msg = `data: ${JSON.stringify(snapshot(d))}\n\n`;
    // A page that stops reading is cut off (it reconnects by itself) rather than buffered without bound.
    for (const c of bc.clients) { if (c.writableLength > MAX_BUFFERED) c.destroy(); else c.write(msg); }
  }, 1000);
  return () => {
    bc.clients.delete(res);
    if (!bc.clients.size && bc.timer) { clearInterval(bc.timer); bc.timer = null; }
  };
}

/** Handles the dashboard's routes; returns false for any other URL. */
export function handleDashboard(d: DashboardDeps, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = (req.url ?? "/").split("?")[0]!;
  if (url === "/" || url === "/dashboard") {
    page ??= readFileSync(path.join(here, "index.html"), "utf8");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(page);
    return true;
  }
  const asset = ASSETS[url];
  if (asset) {
    res.writeHead(200, { "content-type": asset.type, "cache-control": "max-age=300" });
    res.end(readFileSync(asset.file()));
    return true;
  }
  if (url === "/impact") {
    impactPage ??= readFileSync(path.join(here, "impact.html"), "utf8");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(impactPage);
    return true;
  }
  if ((url === "/api/impact" || url === "/api/plan") && d.impact) {
    const json = (status: number, body: unknown) => { res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }); res.end(JSON.stringify(body)); };
    if (url === "/api/impact") { json(200, d.impact.view(d.nowMs())); return true; }
    const raw = new URL(req.url ?? "/", "http://x").searchParams.get("budget");
    const budget = Number(raw);
    if (raw === null || raw === "" || !Number.isFinite(budget) || budget < 0) { json(400, { error: `budget: expected an amount a month, 0 or more, got ${JSON.stringify(raw)}` }); return true; }
    json(200, d.impact.plan(d.nowMs(), budget));
    return true;
  }
  if (url === "/api/state") {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(snapshot(d)));
    return true;
  }
  if (url === "/api/stream") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    const unsubscribe = subscribe(d, res);
    req.on("close", unsubscribe);
    return true;
  }
  return false;
}
