// The dashboard's server side: a bounded history per component (risk, failure probability, shadow
// weight, replication lag, mirrored-read divergence) sampled on every controller tick, and the HTTP
// handlers that serve the page, its assets (uPlot from node_modules), a JSON snapshot and a
// Server-Sent Events stream that pushes the snapshot once a second, with the failure model in use (its
// source, samples, positives, holdout Brier and ECE, horizon) for the page's tile. Read-only: it changes nothing,
// so it has no credentials; bind the controller's http address to loopback or put it behind a proxy.
import type { ShadowCost } from "../drivers/cost.js";
import type http from "node:http";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { shadowKey, type RiskEngine } from "../risk/engine.js";
import type { MigrationManager } from "../migration/manager.js";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

export interface HistoryPoint { t: number; risk: number | null; probability: number | null; shadowPercent: number; lagS: number | null; divergence: number | null }

/** Keeps the last `capacity` samples per component (15 minutes at one sample a second by default). */
export class DashboardHistory {
  private readonly points = new Map<string, HistoryPoint[]>();
  constructor(private readonly capacity = 900) {}

  sample(component: string, p: HistoryPoint): void {
    let list = this.points.get(component);
    if (!list) { list = []; this.points.set(component, list); }
    list.push(p);
    if (list.length > this.capacity) list.splice(0, list.length - this.capacity);
  }

  get(component: string): HistoryPoint[] { return this.points.get(component) ?? []; }
}

/** model: the failure model as the API's Model message (absent: the page shows no tile). */
export interface DashboardDeps { manager: MigrationManager; engine: RiskEngine; history: DashboardHistory; nowMs: () => number; model?: () => unknown; cost?: (component: string) => ShadowCost | null }

/** Records one sample per component (called on the controller's tick, at most once a second). */
export function sampleHistory(d: DashboardDeps): void {
  const t = d.nowMs();
  for (const name of d.manager.components()) {
    const r = d.engine.get(name);
    const st = d.manager.get(name).status;
    const val = (kind: string) => r?.contributions.find((c) => c.kind === kind && c.state === "ok")?.value ?? null;
    d.history.sample(name, {
      t, risk: r && !r.noData ? r.risk : null, probability: r && !r.noData ? r.probability : null,
      shadowPercent: st.shadowWeightBp / 100, lagS: val("replication_lag"), divergence: val("consistency"),
    });
  }
}

export function snapshot(d: DashboardDeps) {
  return {
    nowMs: d.nowMs(),
    model: d.model?.() ?? null,
    components: d.manager.components().map((name) => {
      const { status, policy } = d.manager.get(name);
      const r = d.engine.get(name), sr = d.engine.get(shadowKey(name));
      return {
        name,
        status: {
          phase: status.phase, direction: status.direction, stepIndex: status.stepIndex, steps: policy.steps.map((s) => s.weightBp / 100),
          shadowPercent: status.shadowWeightBp / 100, mirrorFraction: status.mirrorFraction, writeTarget: status.writeTarget, fenced: status.fenced,
          message: status.message, blockedReason: status.blockedReason, paused: status.paused, lastVerdict: status.lastVerdict,
          phaseSinceMs: status.phaseSinceMs,
        },
        thresholds: { enter: policy.risk.enter, leave: policy.risk.leave },
        risk: r ? {
          risk: r.noData ? null : r.risk, probability: r.noData ? null : r.probability, noData: r.noData,
          contributions: r.contributions.map((c) => ({ signal: c.signal, kind: c.kind, state: c.state, value: c.value, expected: c.expected, score: c.score, share: c.share, exhaustionS: c.exhaustionS, view: c.view, reason: c.reason })),
        } : null,
        shadowRisk: sr && !sr.noData ? sr.risk : null,
        cost: d.cost?.(name) ?? null,
        history: d.history.get(name),
        events: d.manager.events(name, 30).map((e) => ({ atMs: e.atMs, kind: e.kind, phase: e.phase, severity: e.severity, message: e.message })),
      };
    }),
  };
}

let page: string | undefined;
const ASSETS: Record<string, { file: () => string; type: string }> = {
  "/assets/uplot.js": { file: () => require.resolve("uplot/dist/uPlot.iife.min.js"), type: "text/javascript" },
  "/assets/uplot.css": { file: () => require.resolve("uplot/dist/uPlot.min.css"), type: "text/css" },
  "/assets/dashboard.js": { file: () => path.join(here, "page.js"), type: "text/javascript" },
};

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
  if (url === "/api/state") {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(snapshot(d)));
    return true;
  }
  if (url === "/api/stream") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    const send = () => res.write(`data: ${JSON.stringify(snapshot(d))}\n\n`);
    send();
    const t = setInterval(send, 1000);
    req.on("close", () => clearInterval(t));
    return true;
  }
  return false;
}
