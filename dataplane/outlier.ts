// Envoy's outlier detection for one cluster (config.cluster.v3.OutlierDetection), as documented in
// the architecture overview: consecutive 5xx and consecutive gateway failures eject inline, success
// rate and failure percentage are judged on the interval timer; an ejected host stays out for
// base_ejection_time x its ejection multiplier (capped by max_ejection_time) and comes back on the
// first interval tick after that; every interval a host that is in service lowers its multiplier;
// max_ejection_percent caps ejections but one host may always be ejected. Locally originated errors
// (connect failure, reset, timeout) count as 5xx, as with split_external_local_origin_errors false.
// Pure apart from the time passed in: the interval timer is evaluated lazily, on the calls that
// follow it, so the detector needs no timers of its own (the results are the same).

export interface OutlierConfig {
  consecutive5xx: number;
  enforcingConsecutive5xx: number;
  consecutiveGatewayFailure: number;
  enforcingConsecutiveGatewayFailure: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  enforcingSuccessRate: number;
  successRateMinimumHosts: number;
  successRateRequestVolume: number;
  successRateStdevFactor: number;
  failurePercentageThreshold: number;
  enforcingFailurePercentage: number;
  failurePercentageMinimumHosts: number;
  failurePercentageRequestVolume: number;
}

/** Envoy's defaults, from outlier_detection.proto. */
export const ENVOY_OUTLIER_DEFAULTS: OutlierConfig = {
  consecutive5xx: 5, enforcingConsecutive5xx: 100,
  consecutiveGatewayFailure: 5, enforcingConsecutiveGatewayFailure: 0,
  intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectionPercent: 10,
  enforcingSuccessRate: 100, successRateMinimumHosts: 5, successRateRequestVolume: 100, successRateStdevFactor: 1900,
  failurePercentageThreshold: 85, enforcingFailurePercentage: 0, failurePercentageMinimumHosts: 5, failurePercentageRequestVolume: 50,
};

/** What one upstream attempt ended in: an HTTP status, or a locally originated error (no response). */
export type Outcome = number | "local_origin_error";

export type EjectionReason = "consecutive_5xx" | "consecutive_gateway_failure" | "success_rate" | "failure_percentage";

export interface Ejection { host: string; atMs: number; reason: EjectionReason; forMs: number }

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedAtMs: number | null;
  multiplier: number;
  ok: number;
  failed: number;
}

export class OutlierDetector {
  private readonly hosts = new Map<string, HostState>();
  private nextIntervalMs: number;
  /** Every ejection and return, oldest first (bounded), for status and the incident benchmark. */
  readonly log: ({ kind: "eject" } & Ejection | { kind: "uneject"; host: string; atMs: number })[] = [];

  constructor(readonly config: OutlierConfig, startMs: number, private readonly random: () => number) {
    this.nextIntervalMs = startMs + config.intervalMs;
  }

  /** Keeps the host set in step with the cluster's endpoints (EDS may change it). */
  setHosts(keys: string[]): void {
    const want = new Set(keys);
    for (const k of [...this.hosts.keys()]) if (!want.has(k)) this.hosts.delete(k);
    for (const k of keys) if (!this.hosts.has(k)) this.hosts.set(k, { consecutive5xx: 0, consecutiveGateway: 0, ejectedAtMs: null, multiplier: 0, ok: 0, failed: 0 });
  }

  isEjected(key: string, nowMs: number): boolean {
    this.advance(nowMs);
    return this.hosts.get(key)?.ejectedAtMs != null;
  }

  ejectedCount(nowMs: number): number {
    this.advance(nowMs);
    let n = 0;
    for (const h of this.hosts.values()) if (h.ejectedAtMs !== null) n++;
    return n;
  }

  /** Called when an attempt to `key` ends (the router's upstream response or its local error). */
  report(key: string, outcome: Outcome, nowMs: number): void {
    this.advance(nowMs);
    const h = this.hosts.get(key);
    if (!h) return;
    const is5xx = outcome === "local_origin_error" || outcome >= 500;
    const isGateway = outcome === "local_origin_error" || outcome === 502 || outcome === 503 || outcome === 504;
    if (is5xx) h.failed++; else h.ok++;
    if (!is5xx) { h.consecutive5xx = 0; h.consecutiveGateway = 0; return; }
    h.consecutive5xx++;
    h.consecutiveGateway = isGateway ? h.consecutiveGateway + 1 : 0;
    if (h.ejectedAtMs !== null) return;
    const c = this.config;
    if (h.consecutive5xx >= c.consecutive5xx && this.enforced(c.enforcingConsecutive5xx)) this.eject(key, h, "consecutive_5xx", nowMs);
    else if (h.consecutiveGateway >= c.consecutiveGatewayFailure && this.enforced(c.enforcingConsecutiveGatewayFailure)) this.eject(key, h, "consecutive_gateway_failure", nowMs);
  }

  private enforced(percent: number): boolean { return percent >= 100 || (percent > 0 && this.random() * 100 < percent); }

  private eject(key: string, h: HostState, reason: EjectionReason, nowMs: number): void {
    let ejected = 0;
    for (const x of this.hosts.values()) if (x.ejectedAtMs !== null) ejected++;
    // Envoy ejects at least one host whatever max_ejection_percent says.
    if (ejected > 0 && ((ejected + 1) * 100) / this.hosts.size > this.config.maxEjectionPercent) return;
    h.multiplier++;
    h.ejectedAtMs = nowMs;
    this.record({ kind: "eject", host: key, atMs: nowMs, reason, forMs: this.ejectionTimeMs(h) });
  }

  private ejectionTimeMs(h: HostState): number {
    const c = this.config;
    return Math.min(c.baseEjectionTimeMs * h.multiplier, Math.max(c.maxEjectionTimeMs, c.baseEjectionTimeMs));
  }

  private record(e: OutlierDetector["log"][number]): void {
    this.log.push(e);
    if (this.log.length > 1000) this.log.splice(0, this.log.length - 1000);
  }

  /** Runs every interval tick that fell due before nowMs, in order. */
  private advance(nowMs: number): void {
    while (this.nextIntervalMs <= nowMs) {
      const at = this.nextIntervalMs;
      this.interval(at);
      this.nextIntervalMs += this.config.intervalMs;
    }
  }

  private interval(atMs: number): void {
    for (const [key, h] of this.hosts) {
      if (h.ejectedAtMs !== null) {
        if (atMs >= h.ejectedAtMs + this.ejectionTimeMs(h)) {
          h.ejectedAtMs = null;
          h.consecutive5xx = 0;
          h.consecutiveGateway = 0;
          this.record({ kind: "uneject", host: key, atMs });
        }
      } else if (h.multiplier > 0) h.multiplier--;
    }
    this.judgeRates(atMs);
    for (const h of this.hosts.values()) { h.ok = 0; h.failed = 0; }
  }

  /** Success-rate and failure-percentage ejection over the interval that just ended. */
  private judgeRates(atMs: number): void {
    const c = this.config;
    const sr: { key: string; h: HostState; rate: number }[] = [];
    const fp: { key: string; h: HostState; rate: number }[] = [];
    for (const [key, h] of this.hosts) {
      if (h.ejectedAtMs !== null) continue;
      const n = h.ok + h.failed;
      if (n >= c.successRateRequestVolume) sr.push({ key, h, rate: (100 * h.ok) / n });
      if (n >= c.failurePercentageRequestVolume) fp.push({ key, h, rate: (100 * h.ok) / n });
    }
    if (sr.length >= c.successRateMinimumHosts && c.enforcingSuccessRate > 0) {
      const mean = sr.reduce((s, x) => s + x.rate, 0) / sr.length;
      const stdev = Math.sqrt(sr.reduce((s, x) => s + (x.rate - mean) ** 2, 0) / sr.length);
      const floor = mean - (c.successRateStdevFactor / 1000) * stdev;
      for (const x of sr) if (x.rate < floor && x.h.ejectedAtMs === null && this.enforced(c.enforcingSuccessRate)) this.eject(x.key, x.h, "success_rate", atMs);
    }
    if (fp.length >= c.failurePercentageMinimumHosts && c.enforcingFailurePercentage > 0) {
      for (const x of fp) if (100 - x.rate >= c.failurePercentageThreshold && x.h.ejectedAtMs === null && this.enforced(c.enforcingFailurePercentage)) this.eject(x.key, x.h, "failure_percentage", atMs);
    }
  }
}
