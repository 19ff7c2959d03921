// The controller's configuration as the process uses it, resolved from the file (config.ts parses
// and checks it): listeners, credentials, components with their routes, signals and drivers, the
// data plane, risk and learning settings, scrape and PromQL sources, webhooks, HA, observed services
// and the impact analysis.
import type { HaConfig } from "./ha/config.js";
import type { ImpactConfig } from "./impact/config.js";
import type { RouteSpec, ObservedSpec, TelemetryTlsOnProxy } from "./xds/resources.js";
import type { SignalSpec } from "./risk/spec.js";
import type { ActionConfig } from "./migration/actions.js";
import type { DriverConfig } from "./drivers/factory.js";
import type { PromqlSource } from "./metrics/promql.js";
import type { ScrapeTarget } from "./metrics/prometheus.js";

export interface TlsFiles { cert: string; key: string; clientCa?: string }
/** A bearer token and the name its holder is recorded as. */
export interface ApiToken { name: string; token: string }

export interface WebhookTarget { url: string; headers: Record<string, string>; minSeverity: "info" | "warning" | "error" }

export interface ControllerConfig {
  file: string;
  listen: { xds: string; telemetry: string; api: string; http: string };
  api: { tokens: ApiToken[]; tls: TlsFiles | null };
  xds: { tls: TlsFiles | null };
  /** Telemetry server credentials; tokens[0] goes to the proxies. Neither tokens nor tls.clientCa: no authentication. */
  telemetry: { tokens: string[]; tls: TlsFiles | null };
  stateDir: string | null;
  policyFile: string | null;
  tickMs: number;
  components: { route: RouteSpec; signals: SignalSpec[]; actions: ActionConfig | null; driver: DriverConfig | null; filter: Record<string, unknown> | null }[];
  dataplane: {
    /** Absent: ECDS only (Istio sidecars insert the filter themselves). */
    listener: { name: string; address: string; port: number } | null;
    wasm: string; telemetryIntervalMs: number; telemetryTls?: TelemetryTlsOnProxy;
    /** The proxies fetch the module from this URL through this cluster (remote code, checked by sha256). */
    wasmUrl?: string; wasmCluster?: string;
    /** The telemetry cluster's name in the proxies (default shadowmesh-telemetry, which the controller publishes). */
    telemetryCluster?: string;
    /** Reports on a StreamReports stream (the filter's telemetry.stream); absent: decided from the module. */
    telemetryStream?: boolean;
  } | null;
  risk: { riseTauS?: number; fallTauS?: number; staleAfterS?: number; horizonS?: number };
  /** Learning the failure model from outcomes (absent: the defaults). */
  learning?: { sampleEveryS?: number; retrainEveryS?: number; horizonS?: number; maxSamplesPerComponent?: number };
  scrape: ScrapeTarget[];
  /** Signals read with PromQL from a Prometheus server (absent in older configurations: none). */
  promql?: PromqlSource[];
  webhooks: WebhookTarget[];
  /** Replicas on etcd (absent: one process). */
  ha?: HaConfig;
  /** Observed services (absent in older configurations: none). */
  observe?: ObservedSpec[];
  /** Impact analysis settings, with their defaults (absent only in configurations built by hand). */
  impact?: ImpactConfig;
}
