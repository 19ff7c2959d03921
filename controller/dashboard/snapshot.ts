// What the dashboard shows, as one JSON snapshot: per component its migration status and step plan,
// the risk with its explanation (each signal's data freshness and score), the failure probability with
// the model's horizon, mirrored-read counts, each side's rate, errors and p99 over the last minute, the
// shadow's cost, the history (history.ts) and the last events; and every proxy connected over xDS with
// per resource type the version sent, ACKed and NACKed (at most MAX_PROXIES, with a count of the rest).
// Also the sampling of the history on the controller's tick. Read-only: it reads public methods only.
import type { ImpactService } from "../impact/service.js";
import type { ShadowCost } from "../drivers/cost.js";
import { shadowKey, type RiskEngine } from "../risk/engine.js";
import type { MigrationManager, Observed } from "../migration/manager.js";
import type { SideSummary } from "../migration/status.js";
import { RECENT_MS } from "../migration/inputs.js";
import type { StreamStatus } from "../xds/server.js";
import { proxyView, type ProxyView } from "../xds/proxy-status.js";
import type { DashboardHistory } from "./history.js";

/**
 * model: the failure model as the API's Model message (absent: the page shows no tile; its horizonS
 * labels the failure probability). proxies: every xDS stream (absent: no proxies view).
 */
export interface DashboardDeps {
  manager: MigrationManager; engine: RiskEngine; history: DashboardHistory; nowMs: () => number;
  model?: () => unknown; cost?: (component: string) => ShadowCost | null; proxies?: () => StreamStatus[];
  /** HA mode: this replica's role, the leader and whether etcd has a quorum (absent: one process). */
  ha?: () => { replica: string; role: string; leader: string | null; quorum: boolean };
  /** The impact analysis (the /impact page); absent: the page says so. */
  impact?: Pick<ImpactService, "view" | "plan">;
}

/** The window of the migration inputs' `recent`. */
export const RECENT_WINDOW_S = RECENT_MS / 1000;
/** Proxies listed in one snapshot; the rest are counted. */
export const MAX_PROXIES = 200;

/** The signal's data as a person reads it: the engine's "ok" means the data is fresh, not that the signal is fine. */
const DATA: Record<string, string> = { ok: "fresh", warming: "warming", stale: "stale", missing: "missing" };

const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

function side(s: SideSummary | null | undefined) {
  return s ? { requestsPerS: r4(s.requests / RECENT_WINDOW_S), errorRate: r4(s.errorRate), p99Ms: r4(s.latencyMs) } : null;
}

function consistencyOf(observed: Observed | null): { compared: number; diverged: number } | null {
  const c = observed?.recent.consistency;
  return c && c.compared > 0 ? { compared: c.compared, diverged: c.diverged } : null;
}

/** Records one sample per component (called on the controller's tick, at most once a second). */
export function sampleHistory(d: DashboardDeps): void {
  const t = d.nowMs();
  for (const name of d.manager.components()) {
    const r = d.engine.riskOf(name);
    const { status: st, observed } = d.manager.get(name);
    const c = consistencyOf(observed);
    d.history.sample(name, {
      t, risk: r && !r.noData ? r.risk : null, probability: r && !r.noData ? r.probability : null,
      shadowPercent: st.shadowWeightBp / 100, lagS: d.engine.freshValue(name, "replication_lag"), divergence: c ? c.diverged / c.compared : null,
    });
  }
}

/** A proxy's worst resource: one that NACKed comes first, then one not in sync (or not reading), then the synced ones. */
function rank(p: ProxyView): number {
  if (p.resources.some((r) => r.state === "nacked")) return 0;
  return p.blocked || p.resources.some((r) => r.state !== "synced") ? 1 : 2;
}

/** The proxies, those with a problem first (so the bound never hides one), then by name; at most MAX_PROXIES. */
function proxies(d: DashboardDeps) {
  if (!d.proxies) return null;
  const all = d.proxies().map((st) => ({ st, p: proxyView(st) })).map((x) => ({ ...x, rank: rank(x.p) }));
  all.sort((a, b) => a.rank - b.rank || a.p.node.localeCompare(b.p.node) || a.st.id - b.st.id);
  const count = (r: number) => all.filter((x) => x.rank === r).length;
  return {
    total: all.length, more: Math.max(0, all.length - MAX_PROXIES), nacked: count(0), unsynced: count(1), synced: count(2),
    list: all.slice(0, MAX_PROXIES).map((x) => x.p),
  };
}

export function snapshot(d: DashboardDeps) {
  const model = (d.model?.() ?? null) as ({ horizonS?: number } & Record<string, unknown>) | null;
  return {
    nowMs: d.nowMs(),
    ha: d.ha?.() ?? null,
    model,
    horizonS: model?.horizonS ?? null,
    proxies: proxies(d),
    components: d.manager.components().map((name) => {
      const { status, policy, observed } = d.manager.get(name);
      const r = d.engine.get(name), sr = d.engine.get(shadowKey(name));
      return {
        name,
        status: {
          phase: status.phase, direction: status.direction, stepIndex: status.stepIndex, steps: policy.steps.map((s) => s.weightBp / 100),
          shadowPercent: status.shadowWeightBp / 100, mirrorFraction: status.mirrorFraction, writeTarget: status.writeTarget, fenced: status.fenced,
          message: status.message, blockedReason: status.blockedReason, paused: status.paused, lastVerdict: status.lastVerdict,
          phaseSinceMs: status.phaseSinceMs, holdWrites: status.holdWrites ?? null, pauseWritesMs: status.pauseWritesMs ?? 0,
        },
        // The step plan: each step's share of reads for the side taking them (the shadow forward, the primary in reverse) and bake.
        plan: {
          steps: policy.steps.map((s) => ({ weightPercent: s.weightBp / 100, bakeMs: s.bakeMs })),
          stepIndex: status.stepIndex, direction: status.direction,
          promotion: status.promotion ? { stage: status.promotion.stage, sinceMs: status.promotion.sinceMs } : null,
        },
        thresholds: { enter: policy.risk.enter, leave: policy.risk.leave },
        risk: r ? {
          risk: r.noData ? null : r.risk, probability: r.noData ? null : r.probability, noData: r.noData,
          contributions: r.contributions.map((c) => ({ signal: c.signal, kind: c.kind, data: DATA[c.state] ?? c.state, value: c.value, expected: c.expected, score: c.score, share: c.share, exhaustionS: c.exhaustionS, view: c.view, reason: c.reason })),
        } : null,
        shadowRisk: sr && !sr.noData ? sr.risk : null,
        lagS: d.engine.freshValue(name, "replication_lag"),
        consistency: consistencyOf(observed),
        sides: { windowS: RECENT_WINDOW_S, primary: side(observed?.recent.primary), shadow: side(observed?.recent.shadow) },
        cost: d.cost?.(name) ?? null,
        history: d.history.get(name),
        events: d.manager.events(name, 30).map((e) => ({ atMs: e.atMs, kind: e.kind, phase: e.phase, severity: e.severity, message: e.message })),
      };
    }),
  };
}

export type DashboardSnapshot = ReturnType<typeof snapshot>;
