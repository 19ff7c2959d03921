// The metric source of the migration engine in the controller: the risk engine gives the primary's
// risk, the shadow's own risk (shadowKey) and the replica's lag (a signal of kind replication_lag, pushed or scraped), the telemetry
// store gives each side's recent traffic and the traffic since the current step began (sketches and
// mirrored-read comparisons), and the primary's health over the emergency window (its failed live
// requests, and how many proxies' failover floors ejected it). Missing data stays null or empty: the
// reconciler treats it as unknown.
import type { FeatureGap } from "../xds/features.js";
import { shadowKey, type RiskEngine } from "../risk/engine.js";
import type { TelemetryStore } from "../telemetry/store.js";
import { addCounts, emptyTarget, type ComponentTotals, type TargetTotals } from "../telemetry/report.js";
import type { InputSource, Observed } from "./manager.js";
import type { MigrationStatus, MirrorCost, PrimaryHealth, SideSummary } from "./reconcile.js";
import { DEFAULT_POLICY, type Policy } from "./policy.js";
import type { TargetSample } from "./verify.js";
import type { Side } from "../xds/resources.js";

/** An active health check per side: failed checks in a row, null when the side has none. */
export interface HealthProbes {
  probeFailures(component: string, side: Side): number | null;
  /** When the writer itself last answered a lag read (a driver that reads its WAL position); absent or null: no such proof. */
  writerAnsweredAtMs?(component: string): number | null;
}
/** Measures a component's replication lag now, out of schedule, into the risk engine; resolves to the readings fed. */
export interface LagProbe { measureLag(component: string): Promise<number> }

export interface TelemetryInputOptions {
  engine: RiskEngine;
  store: TelemetryStore;
  /** The window "recent" covers (baselines, preflight shadow health). */
  recentMs?: number;
  /** The latency quantile baselines record (match the policy's verification.latencyQuantile). */
  latencyQuantile?: number;
  probes?: HealthProbes;
  /** Proxies that would refuse pause_writes_ms (xds/features.ts); absent: none. */
  pauseBlockers?: () => FeatureGap;
}

/** The window `recent` covers by default (baselines, preflight shadow health, the dashboard's per-side rates). */
export const RECENT_MS = 60_000;

export class TelemetryInputSource implements InputSource {
  constructor(private readonly o: TelemetryInputOptions) {}

  gather(component: string, status: MigrationStatus, nowMs: number, policy: Policy = DEFAULT_POLICY): Observed {
    // The risk and the lag as of the last tick, without building explanations (this runs every tick).
    const risk = this.o.engine.riskOf(component);
    const riskValue = risk && !risk.noData ? risk.risk : null;
    const lagPoint = this.o.engine.freshPoint(component, "replication_lag"), lag = lagPoint?.value ?? null;
    const sr = this.o.engine.riskOf(shadowKey(component));
    const recent = this.o.store.window(component, nowMs - (this.o.recentMs ?? RECENT_MS), nowMs);
    const since = this.o.store.window(component, status.stepSinceMs ?? nowMs, nowMs);
    return {
      risk: riskValue, primaryRisk: riskValue, replicaLagS: lag, replicaLagAtMs: lagPoint?.tMs ?? null, shadowRisk: sr && !sr.noData ? sr.risk : null,
      recent: { primary: this.summary(side(recent, "primary")), shadow: this.summary(side(recent, "shadow")), consistency: consistency(recent), mirror: mirrorCost(recent, (this.o.recentMs ?? RECENT_MS) / 1000) },
      health: this.health(component, nowMs, policy.emergency.windowMs),
      shadowProbeFailures: this.o.probes?.probeFailures(component, "shadow") ?? null,
      writerAnsweredAtMs: this.o.probes?.writerAnsweredAtMs?.(component) ?? null,
      ...(this.o.pauseBlockers ? { pauseBlockedBy: this.o.pauseBlockers() } : {}),
      window: {
        primary: sample(side(since, "primary")), shadow: sample(side(since, "shadow")),
        consistency: consistency(since),
      },
    };
  }

  /**
   * One proxy node is one voice, as for the risk engine's request signals: the failure share is the
   * median node's (nodes with at least MIN_NODE_REQUESTS; pooled when none has that many), and the
   * floor's evidence counts nodes most of whose workers ejected the primary. So a node that reports
   * (or a token holder who invents) a flood of failures or ejecting workers cannot fail a primary over.
   */
  private health(component: string, nowMs: number, windowMs: number): PrimaryHealth | null {
    const from = nowMs - windowMs;
    const p = side(this.o.store.window(component, from, nowMs), "primary");
    const f = this.o.store.floor(component, from, nowMs);
    const probe = this.o.probes?.probeFailures(component, "primary") ?? null;
    if (!p && f.reporting === 0 && probe === null) return null;
    const requests = p?.requests ?? 0;
    const shares = [...this.o.store.primaryByProxy(component, from, nowMs).values()].filter((v) => v.requests >= MIN_NODE_REQUESTS).map((v) => v.errors / v.requests).sort((a, b) => a - b);
    const share = shares.length ? shares[Math.floor((shares.length - 1) / 2)]! : (p && requests > 0 ? errors(p) / requests : 0);
    return { requests, failures: Math.round(share * requests), reporting: f.nodesReporting, ejecting: f.nodesEjecting, probeFailures: probe };
  }

  private summary(t: TargetTotals | null): SideSummary | null {
    if (!t || t.requests === 0) return null;
    return { requests: t.requests, errorRate: errors(t) / t.requests, latencyMs: t.latency.quantile(this.o.latencyQuantile ?? 0.99) / 1000 };
  }
}

/** A node's failure share counts once it sent this many requests to the primary in the window. */
const MIN_NODE_REQUESTS = 10;

function errors(t: TargetTotals): number { return t.status[4] + t.resets + t.timeouts; }

/** The primary's totals, or the shadow's live and mirrored traffic merged (both are its real answers). */
function side(c: ComponentTotals | undefined, which: Side): TargetTotals | null {
  if (!c) return null;
  if (which === "primary") return c.targets.get("PRIMARY") ?? null;
  const live = c.targets.get("SHADOW_LIVE"), mirror = c.targets.get("SHADOW_MIRROR");
  if (!live && !mirror) return null;
  const out = emptyTarget();
  for (const t of [live, mirror]) {
    if (!t) continue;
    out.latency.merge(t.latency);
    addCounts(out, t);
  }
  return out;
}

function sample(t: TargetTotals | null): TargetSample {
  return t ? { requests: t.requests, errors: errors(t), latency: t.latency } : { requests: 0, errors: 0, latency: null };
}

/** The mirror's bytes and counts over the window, as rates (null: nothing mirrored or read). */
function mirrorCost(c: ComponentTotals | undefined, windowS: number): MirrorCost | null {
  const k = c?.consistency ?? {};
  if (!c || (!(k.mirrored ?? 0) && !c.reads)) return null;
  return { bytesPerS: ((k.requestBytes ?? 0) + (k.responseBytes ?? 0)) / windowS, mirroredPerS: (k.mirrored ?? 0) / windowS, readsPerS: c.reads / windowS };
}

function consistency(c: ComponentTotals | undefined): { compared: number; diverged: number } {
  const k = c?.consistency ?? {};
  const diverged = (k.statusMismatch ?? 0) + (k.bodyMismatch ?? 0);
  return { compared: (k.match ?? 0) + diverged, diverged };
}
