// The controller's configuration file (YAML): where it listens, how the API authenticates, where its
// state lives, the policy file, the protected components (clusters, risk signals, fence/promote
// actions), Prometheus scrape targets and event webhooks. Checked strictly: every error names the file,
// line, column and field. Paths are relative to the configuration file.
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { parseYamlStrict, YamlFieldError } from "./yaml-config.js";
import { SIGNAL_KINDS } from "./risk/predictor.js";
import type { ComponentSpec as RouteSpec } from "./xds/resources.js";
import type { SignalSpec } from "./risk/engine.js";
import type { ActionConfig } from "./migration/actions.js";
import { checkTargets, type ScrapeTarget } from "./metrics/prometheus.js";

export class ConfigError extends YamlFieldError {}

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$/, 'must be "host:port"');
const cluster = z.object({
  name: z.string().min(1), region: z.string().optional(), zone: z.string().optional(),
  endpoints: z.array(hostPort).min(1, "needs at least one endpoint"),
}).strict();
const signal = z.object({
  name: z.string().min(1), kind: z.enum(SIGNAL_KINDS), side: z.enum(["up", "down", "both"]).optional(),
  capacity: z.number().positive().optional(), exhaustion: z.enum(["up", "down"]).optional(),
  seasonS: z.number().nonnegative().optional(), window: z.number().int().min(16).optional(), staleAfterS: z.number().positive().optional(), horizonS: z.number().positive().optional(),
}).strict();
const actions = z.union([
  z.object({ webhook: z.string().url(), headers: z.record(z.string(), z.string()).optional() }).strict(),
  z.object({ command: z.array(z.string()).min(1) }).strict(),
]);
const component = z.object({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/, "a lower-case DNS-like label"),
  hostnames: z.array(z.string().min(1)).min(1),
  primary: cluster, shadow: cluster,
  routingHeader: z.string().optional(),
  /** Extra filter settings for this component (sticky key, read rule, mirror limits), in the filter's JSON form. */
  filter: z.object({
    sticky: z.object({ header: z.string().min(1).optional(), cookie: z.string().min(1).optional() }).strict().optional(),
    read: z.object({ methods: z.array(z.string()).optional(), path_prefixes: z.array(z.string()).optional() }).strict().optional(),
    mirror: z.object({ max_per_second: z.number().int().positive().optional(), max_in_flight: z.number().int().positive().optional(), timeout_ms: z.number().int().positive().optional(), remove_headers: z.array(z.string()).optional() }).strict().optional(),
    /** The failover floor's limits (shadow_fit is set by the migration engine, not here). */
    floor: z.object({
      enabled: z.boolean().optional(), consecutive_failures: z.number().int().min(1).max(1000).optional(),
      failure_share: z.number().gt(0).max(1).optional(), min_requests: z.number().int().min(1).max(100_000).optional(),
      window_ms: z.number().int().min(1000).max(60_000).optional(), base_ejection_ms: z.number().int().min(100).max(3_600_000).optional(),
      max_ejection_ms: z.number().int().min(100).max(3_600_000).optional(), probe_fraction: z.number().gt(0).max(1).optional(),
      probe_successes: z.number().int().min(1).max(1000).optional(),
    }).strict().optional(),
  }).strict().optional(),
  signals: z.array(signal).optional(),
  actions: actions.optional(),
}).strict();

const schema = z.object({
  listen: z.object({ xds: hostPort, telemetry: hostPort, api: hostPort, http: hostPort }).strict(),
  api: z.object({
    tokens: z.array(z.string().min(16, "tokens must be at least 16 characters")).optional(),
    tokenEnv: z.string().optional(),
    tls: z.object({ cert: z.string(), key: z.string(), clientCa: z.string().optional() }).strict().optional(),
  }).strict(),
  stateDir: z.string().optional(),
  policy: z.string().optional(),
  tickMs: z.number().int().min(50).max(60_000).optional(),
  /** Envoy listener carrying the filter, published over LDS (with ECDS for the filter), for Envoy or the embedded data plane. */
  dataplane: z.object({ listener: hostPort, name: z.string().min(1).optional(), wasm: z.string().min(1), telemetryIntervalMs: z.number().int().min(100).optional() }).strict().optional(),
  /** The risk engine's smoothing, staleness and exhaustion horizon (defaults: riseTauS 20, fallTauS 300, staleAfterS 60, horizonS 3600). */
  risk: z.object({ riseTauS: z.number().positive(), fallTauS: z.number().positive(), staleAfterS: z.number().positive(), horizonS: z.number().positive() }).partial().strict().optional(),
  components: z.array(component).min(1, "needs at least one component"),
  scrape: z.array(z.unknown()).optional(),
  webhooks: z.array(z.object({
    url: z.string().url(), headers: z.record(z.string(), z.string()).optional(),
    minSeverity: z.enum(["info", "warning", "error"]).optional(),
  }).strict()).optional(),
}).strict();

export interface WebhookTarget { url: string; headers: Record<string, string>; minSeverity: "info" | "warning" | "error" }

export interface ControllerConfig {
  file: string;
  listen: { xds: string; telemetry: string; api: string; http: string };
  api: { tokens: string[]; tls: { cert: string; key: string; clientCa?: string } | null };
  stateDir: string | null;
  policyFile: string | null;
  tickMs: number;
  components: { route: RouteSpec; signals: SignalSpec[]; actions: ActionConfig | null; filter: Record<string, unknown> | null }[];
  dataplane: { listener: { name: string; address: string; port: number }; wasm: string; telemetryIntervalMs: number } | null;
  risk: { riseTauS?: number; fallTauS?: number; staleAfterS?: number; horizonS?: number };
  scrape: ScrapeTarget[];
  webhooks: WebhookTarget[];
}

/** The signals the telemetry feed and a pushed lag metric fill when a component lists none. */
export const DEFAULT_SIGNALS: SignalSpec[] = [
  { name: "request_latency_p99_ms", kind: "latency" },
  { name: "request_error_rate", kind: "error_rate" },
  { name: "mirror_divergence", kind: "consistency" },
  { name: "replication_lag_s", kind: "replication_lag" },
];

/** "host:port" (IPv6 in brackets) as the address and the port number. */
export function splitHostPort(s: string): { address: string; port: number } {
  const i = s.lastIndexOf(":");
  return { address: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const { data, fail } = parseYamlStrict(text, file, schema, ConfigError);
  const dir = path.dirname(path.resolve(file));
  const rel = (p: string) => path.resolve(dir, p);
  const tokens = [...(data.api.tokens ?? [])];
  if (data.api.tokenEnv) {
    const t = env[data.api.tokenEnv];
    if (!t) fail(["api", "tokenEnv"], `environment variable ${data.api.tokenEnv} is not set`);
    if (t!.length < 16) fail(["api", "tokenEnv"], `the token in ${data.api.tokenEnv} must be at least 16 characters`);
    tokens.push(t!);
  }
  if (tokens.length === 0 && !data.api.tls?.clientCa) fail(["api"], "the API needs credentials: tokens, tokenEnv, or tls with clientCa (mTLS)");
  const names = new Set<string>();
  const comps = data.components.map((c, i) => {
    if (names.has(c.name)) fail(["components", i, "name"], `${c.name} is listed twice`);
    names.add(c.name);
    if (c.primary.name === c.shadow.name) fail(["components", i, "shadow", "name"], "the shadow cluster must differ from the primary");
    const fl = c.filter?.floor;
    // The filter's defaults (base 10 s, max 300 s) apply to the one not given.
    if (fl && (fl.max_ejection_ms ?? 300_000) < (fl.base_ejection_ms ?? 10_000)) fail(["components", i, "filter", "floor", "max_ejection_ms"], `must be at least base_ejection_ms (${fl.base_ejection_ms ?? 10_000}), got ${fl.max_ejection_ms ?? 300_000}`);
    const cl = (x: z.infer<typeof cluster>) => ({
      name: x.name, locality: { ...(x.region ? { region: x.region } : {}), ...(x.zone ? { zone: x.zone } : {}) }, endpoints: x.endpoints.map(splitHostPort),
    });
    const route: RouteSpec = { name: c.name, hostnames: c.hostnames, primary: cl(c.primary), shadow: cl(c.shadow), mode: "weighted_clusters", ...(c.routingHeader ? { routingHeader: c.routingHeader } : {}) };
    return { route, signals: (c.signals ?? DEFAULT_SIGNALS) as SignalSpec[], actions: (c.actions ?? null) as ActionConfig | null, filter: (c.filter ?? null) as Record<string, unknown> | null };
  });
  let scrape: ScrapeTarget[] = [];
  try { scrape = checkTargets(data.scrape ?? []); } catch (e) {
    const m = /^scrape\[(\d+)\]/.exec((e as Error).message);
    fail(m ? ["scrape", Number(m[1])] : ["scrape"], (e as Error).message);
  }
  for (const [i, t] of scrape.entries()) if (!names.has(t.component)) fail(["scrape", i, "component"], `unknown component ${t.component}`);
  return {
    file, listen: data.listen,
    api: { tokens, tls: data.api.tls ? { cert: rel(data.api.tls.cert), key: rel(data.api.tls.key), ...(data.api.tls.clientCa ? { clientCa: rel(data.api.tls.clientCa) } : {}) } : null },
    stateDir: data.stateDir ? rel(data.stateDir) : null,
    policyFile: data.policy ? rel(data.policy) : null,
    tickMs: data.tickMs ?? 1000,
    dataplane: data.dataplane ? {
      listener: { name: data.dataplane.name ?? "shadowmesh-ingress", ...splitHostPort(data.dataplane.listener) },
      wasm: rel(data.dataplane.wasm), telemetryIntervalMs: data.dataplane.telemetryIntervalMs ?? 1000,
    } : null,
    risk: data.risk ?? {},
    components: comps, scrape,
    webhooks: (data.webhooks ?? []).map((w) => ({ url: w.url, headers: w.headers ?? {}, minSeverity: w.minSeverity ?? "info" })),
  };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) { throw new ConfigError(file, 0, 0, "", `cannot read: ${(e as Error).message}`); }
  return parseConfig(text, file, env);
}
