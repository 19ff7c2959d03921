// The controller's configuration file (YAML): where it listens, how the API authenticates, where its
// state lives, the policy file, the protected components (clusters, risk signals, fence/promote
// actions), Prometheus scrape targets and event webhooks. Checked strictly: every error names the file,
// line, column and field. Paths are relative to the configuration file.
//
// Exposure: a server (xds, api, telemetry) whose listen address is beyond loopback (not 127.0.0.0/8,
// ::1 or localhost) needs TLS on it (xds.tls, api.tls) or an explicit acknowledgement that it runs in
// plaintext (listen.allowInsecure: [telemetry]); the telemetry server's TLS is telemetry.tls. loadConfig
// also checks that the TLS files it names are readable
// and that stateDir is not a file, naming the field and the file. The resolved form is config-types.ts.
import { haSchema, resolveHa } from "./ha/config.js";
import { impactSchema, resolveImpact } from "./impact/config.js";
import type { ApiToken, ControllerConfig, TlsFiles } from "./config-types.js";
export type { ApiToken, ControllerConfig, TlsFiles, WebhookTarget } from "./config-types.js";
import { accessSync, constants as fsConstants, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { fsReason, parseYamlStrict, readYamlFile, sizeProblem, YamlFieldError, YAML_LIMITS } from "./yaml-config.js";
export { fsReason } from "./yaml-config.js";
import { SIGNAL_KINDS } from "./risk/predictor.js";
import type { RouteSpec, Side } from "./xds/resources.js";
import type { SignalSpec } from "./risk/spec.js";
import type { ActionConfig } from "./migration/actions.js";
import type { DriverConfig } from "./drivers/factory.js";
import { checkPromqlSources, PromqlConfigError, type PromqlSource } from "./metrics/promql.js";
import { checkTargets, type ScrapeTarget } from "./metrics/prometheus.js";

export class ConfigError extends YamlFieldError {}

/** The policy's YAML limits, with room for large fleets (the configuration is a local file the operator owns). */
export const CONFIG_LIMITS = { ...YAML_LIMITS, maxEntries: 20_000 };

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$/;
/** "host:port" with a port from `min` (0 for listen addresses: any free port, as the tests bind) to 65535. */
const addressWithPort = (min: 0 | 1) => z.string().regex(HOST_PORT, 'must be "host:port"').superRefine((v, ctx) => {
  const p = Number(v.slice(v.lastIndexOf(":") + 1));
  if (p < min || p > 65535) ctx.addIssue({ code: "custom", message: `port must be ${min ? "1..65535" : "0..65535 (0: any free port)"}, got ${p}` });
});
const hostPort = addressWithPort(1);
const listenAddress = addressWithPort(0);
/** Certificate files (PEM), relative to the configuration file; clientCa turns on mutual TLS. */
const tlsFiles = z.object({ cert: z.string().min(1), key: z.string().min(1), clientCa: z.string().min(1).optional() }).strict();
const INSECURE_OK = ["xds", "api", "telemetry"] as const;
const cluster = z.object({
  name: z.string().min(1), region: z.string().optional(), zone: z.string().optional(),
  endpoints: z.array(hostPort).min(1, "needs at least one endpoint"),
}).strict();
const signal = z.object({
  name: z.string().min(1), kind: z.enum(SIGNAL_KINDS), side: z.enum(["up", "down", "both"]).optional(),
  capacity: z.number().positive().optional(), exhaustion: z.enum(["up", "down"]).optional(),
  seasonS: z.number().nonnegative().optional(), window: z.number().int().min(16).optional(), staleAfterS: z.number().positive().optional(), horizonS: z.number().positive().optional(),
  /** Utilisation at which the saturation view scores 0.5 (needs capacity). */
  warnAt: z.number().gt(0).lt(1).optional(),
  /** A service-level objective scored by multi-window burn rates: target (e.g. 0.999), threshold (latency), periodS (default 30 days). */
  slo: z.object({ target: z.number().gt(0).lt(1), threshold: z.number().positive().optional(), periodS: z.number().positive().optional() }).strict().optional(),
}).strict().superRefine((s, ctx) => {
  if (s.warnAt !== undefined && s.capacity === undefined) ctx.addIssue({ code: "custom", path: ["warnAt"], message: "needs a capacity (warnAt is a share of it)" });
  if (s.slo && s.slo.threshold === undefined && s.kind !== "error_rate") ctx.addIssue({ code: "custom", path: ["slo", "threshold"], message: `a ${s.kind} SLO needs the value above which an interval is bad (only an error_rate is itself the bad fraction)` });
});
const actions = z.union([
  /** tokenEnv: an environment variable holding a bearer token the webhook sends (the component's admin token). */
  z.object({ webhook: z.string().url(), headers: z.record(z.string(), z.string()).optional(), tokenEnv: z.string().min(1).optional() }).strict(),
  z.object({ command: z.array(z.string()).min(1) }).strict(),
]);
/** The PostgreSQL driver's view of one side (drivers/postgres.ts): never a password in the file. */
const pgSide = z.object({
  url: z.string().regex(/^postgres(ql)?:\/\/[^/]+\/[^/?#]+/, "a postgresql://USER@HOST:PORT/DATABASE URL").refine((u) => { try { return new URL(u).password === ""; } catch { return false; } }, "must not hold a password (name an environment variable in passwordEnv)"),
  passwordEnv: z.string().min(1).optional(), dataDir: z.string().min(1).optional(), bin: z.string().min(1).optional(), osUser: z.string().min(1).optional(),
  /** The network namespace the instance runs in on this machine (rejoin's commands run there). */
  netns: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "a network namespace name").optional(),
  /** The lease agent beside the instance (world/sample/pg-lease-agent.ts) and the environment variable holding its token. */
  leaseAgent: z.object({ url: z.string().url(), tokenEnv: z.string().min(1) }).strict().optional(),
}).strict();
const driverPoll = { intervalS: z.number().min(0.1).max(3600).optional(), lagSignal: z.string().min(1).optional() };
/** The component's driver (drivers/): exactly one backend. */
const driver = z.object({
  postgres: z.object({ primary: pgSide, shadow: pgSide, fenceVerifyMs: z.number().int().min(100).max(60_000).optional(), ...driverPoll }).strict().optional(),
  kv: z.object({ primary: z.string().url(), shadow: z.string().url(), tokenEnv: z.string().min(1).optional(), ...driverPoll }).strict().optional(),
}).strict().superRefine((d, ctx) => {
  const n = (d.postgres ? 1 : 0) + (d.kv ? 1 : 0);
  if (n !== 1) ctx.addIssue({ code: "custom", message: `name exactly one driver (postgres or kv), got ${n}` });
});
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
  driver: driver.optional(),
}).strict();

const schema = z.object({
  listen: z.object({
    xds: listenAddress, telemetry: listenAddress, api: listenAddress, http: listenAddress,
    /** Servers allowed to listen beyond loopback without TLS (an explicit acknowledgement). */
    allowInsecure: z.array(z.enum(INSECURE_OK)).optional(),
  }).strict(),
  api: z.object({
    /** Bearer tokens: a plain string (recorded as token-N, N its position) or {name, token}. */
    tokens: z.array(z.union([z.string(), z.object({ name: z.string(), token: z.string() }).strict()])).optional(),
    tokenEnv: z.string().optional(),
    tls: tlsFiles.optional(),
  }).strict(),
  stateDir: z.string().optional(),
  policy: z.string().optional(),
  tickMs: z.number().int().min(50).max(60_000).optional(),
  /**
   * The filter's data plane. With `listener`: an Envoy listener carrying the filter, published over LDS
   * (with ECDS for the filter), for Envoy or the embedded data plane. Without it (Istio): only the
   * filter's ECDS configuration, for sidecars that insert the filter themselves (an EnvoyFilter with
   * config_discovery); `wasmUrl` + `wasmCluster` make the sidecars fetch the module from the
   * controller (its HTTP port serves `wasm` at /wasm/shadowmesh.wasm, with its sha256), and
   * `telemetryCluster` names the controller's telemetry port as a sidecar knows it
   * (outbound|PORT||HOST).
   */
  dataplane: z.object({
    listener: listenAddress.optional(), name: z.string().min(1).optional(), wasm: z.string().min(1), telemetryIntervalMs: z.number().int().min(100).optional(),
    wasmUrl: z.string().url().optional(), wasmCluster: z.string().min(1).optional(), telemetryCluster: z.string().min(1).optional(),
    /** How the proxies reach the telemetry server over TLS: files on the proxy hosts (not relative to this file). */
    telemetryTls: z.object({ ca: z.string().min(1), cert: z.string().min(1).optional(), key: z.string().min(1).optional(), sni: z.string().min(1).optional() }).strict().optional(),
    /**
     * Whether the filter sends its reports on one StreamReports stream per worker (its telemetry.stream).
     * Absent: yes when the module at `wasm` can be read here and imports proxy_grpc_stream (a build
     * that knows the setting; an older one would refuse the whole configuration), else unary calls.
     */
    telemetryStream: z.boolean().optional(),
  }).strict().optional(),
  /** The risk engine's smoothing, staleness and exhaustion horizon (defaults: riseTauS 20, fallTauS 300, staleAfterS 60, horizonS 3600). */
  risk: z.object({ riseTauS: z.number().positive(), fallTauS: z.number().positive(), staleAfterS: z.number().positive(), horizonS: z.number().positive() }).partial().strict().optional(),
  /**
   * Learning the failure model from outcomes (stateDir/history.jsonl and model.json): how often each
   * component's features are sampled, how often the model is retrained, the horizon it predicts over and
   * the samples kept per component (defaults 10 s, 3600 s, 900 s, 8640).
   */
  learning: z.object({
    sampleEveryS: z.number().min(1).max(3600), retrainEveryS: z.number().min(60).max(30 * 86_400),
    horizonS: z.number().min(10).max(7 * 86_400), maxSamplesPerComponent: z.number().int().min(100).max(1_000_000),
  }).partial().strict().optional(),
  components: z.array(component).min(1, "needs at least one component"),
  scrape: z.array(z.unknown()).optional(),
  /** Signals read from a Prometheus server's query API (PromQL), per component. */
  promql: z.array(z.unknown()).optional(),
  webhooks: z.array(z.object({
    url: z.string().url(), headers: z.record(z.string(), z.string()).optional(),
    minSeverity: z.enum(["info", "warning", "error"]).optional(),
  }).strict()).optional(),
  /** TLS (clientCa: mutual TLS) on the xDS server. */
  xds: z.object({ tls: tlsFiles }).strict().optional(),
  /**
   * Who may report to the telemetry server: bearer tokens (the first is the one the controller gives the
   * proxies, in the filter's telemetry.token) and/or TLS with clientCa (mutual TLS). Absent: anyone
   * (warned about at startup).
   */
  telemetry: z.object({
    tokens: z.array(z.string()).optional(),
    tokenEnv: z.string().optional(),
    tls: tlsFiles.optional(),
  }).strict().optional(),
  /** Controller replicas on etcd (ha/config.ts); absent: one process with its file journal. */
  ha: haSchema.optional(),
  /** Services the filter observes only (callers and latency for the impact analysis; no split, no shadow). */
  observe: z.array(z.object({ name: z.string().min(1), hostnames: z.array(z.string().min(1)).min(1), cluster }).strict()).optional(),
  /** Impact analysis: callers, identities, tiers, prices (impact/config.ts). */
  impact: impactSchema.optional(),
}).strict();

const TOKEN_NAME = /^[A-Za-z0-9][-A-Za-z0-9_.@]{0,63}$/;

/** 127.0.0.0/8, ::1 and localhost: reachable from this host only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
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

const cl = (x: z.infer<typeof cluster>) => ({
  name: x.name, locality: { ...(x.region ? { region: x.region } : {}), ...(x.zone ? { zone: x.zone } : {}) }, endpoints: x.endpoints.map(splitHostPort),
});

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, opts: { checkFiles?: boolean } = {}): ControllerConfig {
  const { data, fail } = parseYamlStrict(text, file, schema, ConfigError, CONFIG_LIMITS);
  const dir = path.dirname(path.resolve(file));
  const rel = (p: string) => path.resolve(dir, p);
  const tokens: ApiToken[] = [];
  const tokenNames = new Map<string, number>();
  (data.api.tokens ?? []).forEach((t, i) => {
    const { name, token } = typeof t === "string" ? { name: `token-${i + 1}`, token: t } : t;
    const at = typeof t === "string" ? ["api", "tokens", i] : ["api", "tokens", i, "token"];
    if (token.length < 16) fail(at, "tokens must be at least 16 characters");
    if (typeof t !== "string" && !TOKEN_NAME.test(name)) fail(["api", "tokens", i, "name"], "a name of letters, digits and - _ . @ (at most 64), starting with a letter or digit");
    if (tokenNames.has(name)) fail(["api", "tokens", i, typeof t === "string" ? "" : "name"].filter((x) => x !== ""), `the name ${name} is already api.tokens[${tokenNames.get(name)}]'s`);
    if (tokens.some((o) => o.token === token)) fail(at, "the same token is listed twice (who used it could not be told apart)");
    tokenNames.set(name, i);
    tokens.push({ name, token });
  });
  if (data.api.tokenEnv) {
    const t = env[data.api.tokenEnv];
    if (!t) fail(["api", "tokenEnv"], `environment variable ${data.api.tokenEnv} is not set`);
    if (t!.length < 16) fail(["api", "tokenEnv"], `the token in ${data.api.tokenEnv} must be at least 16 characters`);
    tokens.push({ name: data.api.tokenEnv, token: t! });
  }
  // Telemetry tokens travel in the filter's configuration and as an HTTP/2 header: visible ASCII, 16..4096.
  const telemetryTokens: string[] = [];
  const checkTelemetryToken = (t: string, at: (string | number)[], what: string) => {
    if (t.length < 16 || t.length > 4096) fail(at, `${what} must be 16 to 4096 characters long`);
    if (!/^[\x21-\x7e]+$/.test(t)) fail(at, `${what} must be visible ASCII characters only (no spaces or control characters)`);
    if (telemetryTokens.includes(t)) fail(at, `${what} is listed twice`);
    telemetryTokens.push(t);
  };
  (data.telemetry?.tokens ?? []).forEach((t, i) => checkTelemetryToken(t, ["telemetry", "tokens", i], "the token"));
  if (data.telemetry?.tokenEnv) {
    const t = env[data.telemetry.tokenEnv];
    if (!t) fail(["telemetry", "tokenEnv"], `environment variable ${data.telemetry.tokenEnv} is not set`);
    checkTelemetryToken(t!, ["telemetry", "tokenEnv"], `the token in ${data.telemetry.tokenEnv}`);
  }
  // Plaintext beyond loopback only with the acknowledgement; the acknowledgement only where it means something.
  const insecure = new Set(data.listen.allowInsecure ?? []);
  const tlsOf = { xds: data.xds?.tls ? "xds.tls" : null, api: data.api.tls ? "api.tls" : null, telemetry: data.telemetry?.tls ? "telemetry.tls" : null } as const;
  for (const server of INSECURE_OK) {
    const at = data.listen[server];
    if (tlsOf[server] && insecure.has(server)) fail(["listen", "allowInsecure"], `${server} has TLS (${tlsOf[server]}): remove it from the list`);
    if (isLoopback(splitHostPort(at).address) || tlsOf[server] || insecure.has(server)) continue;
    const fix = `set ${server}.tls {cert, key, clientCa}, or acknowledge plaintext`;
    fail(["listen", server], `${at} is reachable beyond loopback without TLS: ${fix} with listen.allowInsecure: [${server}]`);
  }
  if (opts.checkFiles) {
    const readable = (p: (string | number)[], f: string) => {
      try {
        if (!statSync(f).isFile()) fail(p, `${f} is not a file`);
        accessSync(f, fsConstants.R_OK);
      } catch (e) {
        if (e instanceof ConfigError) throw e;
        fail(p, `cannot read ${f}: ${fsReason(e)}`);
      }
    };
    for (const [block, tls] of [["api", data.api.tls], ["xds", data.xds?.tls], ["telemetry", data.telemetry?.tls]] as const) {
      if (!tls) continue;
      for (const k of ["cert", "key", "clientCa"] as const) if (tls[k]) readable([block, "tls", k], rel(tls[k]));
    }
    if (data.stateDir) {
      const d = rel(data.stateDir);
      let st;
      try { st = statSync(d); } catch (e) { if ((e as NodeJS.ErrnoException).code !== "ENOENT") fail(["stateDir"], `cannot use ${d}: ${fsReason(e)}`); }
      if (st && !st.isDirectory()) fail(["stateDir"], `${d} is not a directory`);
    }
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
    const route: RouteSpec = { name: c.name, hostnames: c.hostnames, primary: cl(c.primary), shadow: cl(c.shadow), mode: "weighted_clusters", ...(c.routingHeader ? { routingHeader: c.routingHeader } : {}) };
    let act: ActionConfig | null = null;
    if (c.actions && "webhook" in c.actions) {
      const { tokenEnv, ...hook } = c.actions;
      const headers = { ...hook.headers };
      if (tokenEnv) {
        const t = env[tokenEnv];
        if (!t) fail(["components", i, "actions", "tokenEnv"], `environment variable ${tokenEnv} is not set`);
        headers.authorization = `Bearer ${t}`;
      }
      act = { webhook: hook.webhook, ...(Object.keys(headers).length ? { headers } : {}) };
    } else if (c.actions) act = c.actions as ActionConfig;
    let drv: DriverConfig | null = null;
    if (c.driver && c.actions) fail(["components", i, "driver"], "a component has either a driver or actions, not both (the driver carries out the actions)");
    const secret = (at: (string | number)[], name: string | undefined) => {
      if (name === undefined) return undefined;
      const v = env[name];
      if (!v) fail(at, `environment variable ${name} is not set`);
      return v;
    };
    if (c.driver?.postgres) {
      const d = c.driver.postgres;
      const side = (x: z.infer<typeof pgSide>, which: Side) => {
        const pw = secret(["components", i, "driver", "postgres", which, "passwordEnv"], x.passwordEnv);
        return { url: x.url, ...(pw !== undefined ? { password: pw } : {}), ...(x.dataDir ? { dataDir: rel(x.dataDir) } : {}), ...(x.bin ? { bin: x.bin } : {}), ...(x.osUser ? { osUser: x.osUser } : {}), ...(x.netns ? { netns: x.netns } : {}),
          ...(x.leaseAgent ? { leaseAgent: { url: x.leaseAgent.url.replace(/\/$/, ""), token: secret(["components", i, "driver", "postgres", which, "leaseAgent", "tokenEnv"], x.leaseAgent.tokenEnv)! } } : {}) };
      };
      drv = { kind: "postgres", primary: side(d.primary, "primary"), shadow: side(d.shadow, "shadow"), intervalS: d.intervalS ?? 1, ...(d.lagSignal ? { lagSignal: d.lagSignal } : {}), ...(d.fenceVerifyMs ? { fenceVerifyMs: d.fenceVerifyMs } : {}) };
    } else if (c.driver?.kv) {
      const d = c.driver.kv;
      const token = secret(["components", i, "driver", "kv", "tokenEnv"], d.tokenEnv);
      drv = { kind: "kv", primary: d.primary.replace(/\/$/, ""), shadow: d.shadow.replace(/\/$/, ""), intervalS: d.intervalS ?? 1, ...(token !== undefined ? { adminToken: token } : {}), ...(d.lagSignal ? { lagSignal: d.lagSignal } : {}) };
    }
    return { route, signals: (c.signals ?? DEFAULT_SIGNALS) as SignalSpec[], actions: act, driver: drv, filter: (c.filter ?? null) as Record<string, unknown> | null };
  });
  let scrape: ScrapeTarget[] = [];
  try { scrape = checkTargets(data.scrape ?? []); } catch (e) {
    const m = /^scrape\[(\d+)\]/.exec((e as Error).message);
    fail(m ? ["scrape", Number(m[1])] : ["scrape"], (e as Error).message);
  }
  for (const [i, t] of scrape.entries()) if (!names.has(t.component)) fail(["scrape", i, "component"], `unknown component ${t.component}`);
  let promql: PromqlSource[] = [];
  try { promql = checkPromqlSources(data.promql ?? []); } catch (e) {
    if (e instanceof PromqlConfigError) fail(e.path, e.reason);
    throw e;
  }
  for (const [i, t] of promql.entries()) {
    const ci = data.components.findIndex((c) => c.name === t.component);
    if (ci < 0) fail(["promql", i, "component"], `unknown component ${t.component}`);
    const own = new Set((comps[ci]!.signals ?? []).map((s) => s.name));
    for (const [j, s] of t.signals.entries()) if (!own.has(s.signal)) fail(["promql", i, "signals", j, "signal"], `${s.signal} is not a signal of ${t.component} (its signals: ${[...own].join(", ")})`);
    const tokenEnv = (t as PromqlSource & { bearerTokenEnv?: string }).bearerTokenEnv;
    if (tokenEnv !== undefined) {
      const v = env[tokenEnv];
      if (!v) fail(["promql", i, "bearerTokenEnv"], `environment variable ${tokenEnv} is not set`);
      t.bearerToken = v;
      delete (t as { bearerTokenEnv?: string }).bearerTokenEnv;
    }
  }
  const clusterNames = new Set(comps.flatMap((c) => [c.route.primary.name, c.route.shadow.name]));
  const observe = (data.observe ?? []).map((o, i) => {
    if (names.has(o.name)) fail(["observe", i, "name"], `${o.name} is already a ${comps.some((c) => c.route.name === o.name) ? "protected component" : "observed service"}`);
    if (clusterNames.has(o.cluster.name)) fail(["observe", i, "cluster", "name"], `the cluster ${o.cluster.name} is already used`);
    names.add(o.name); clusterNames.add(o.cluster.name);
    return { name: o.name, hostnames: o.hostnames, cluster: cl(o.cluster) };
  });
  const impact = resolveImpact(data.impact, fail);
  const dp = data.dataplane;
  if (dp && (dp.wasmUrl === undefined) !== (dp.wasmCluster === undefined)) fail(["dataplane", dp.wasmUrl === undefined ? "wasmUrl" : "wasmCluster"], "wasmUrl and wasmCluster go together: the proxies fetch the module from wasmUrl through the cluster wasmCluster");
  if (dp && !dp.listener && !dp.wasmUrl) fail(["dataplane", "wasmUrl"], "without a listener (sidecars insert the filter themselves) the proxies have no local copy of the module: give wasmUrl and wasmCluster (the controller serves it at /wasm/shadowmesh.wasm)");
  if (dp && dp.wasmUrl && !/\/wasm\/shadowmesh\.wasm$/.test(new URL(dp.wasmUrl).pathname)) fail(["dataplane", "wasmUrl"], `the controller serves the module at /wasm/shadowmesh.wasm on its http port, not ${new URL(dp.wasmUrl).pathname}`);
  if (data.ha?.advertiseEnv && !env[data.ha.advertiseEnv]) fail(["ha", "advertiseEnv"], `environment variable ${data.ha.advertiseEnv} is not set`);
  if (data.ha?.advertise && data.ha.advertiseEnv) fail(["ha", "advertiseEnv"], "give advertise or advertiseEnv, not both");
  const ptls = data.dataplane?.telemetryTls;
  if (ptls && !data.telemetry?.tls) fail(["dataplane", "telemetryTls"], "the proxies would speak TLS to a plaintext telemetry server: set telemetry.tls {cert, key, clientCa} too");
  if (ptls && (ptls.cert === undefined) !== (ptls.key === undefined)) fail(["dataplane", "telemetryTls", ptls.cert === undefined ? "cert" : "key"], "a client certificate needs both cert and key");
  return {
    file, listen: { xds: data.listen.xds, telemetry: data.listen.telemetry, api: data.listen.api, http: data.listen.http },
    api: { tokens, tls: data.api.tls ? tlsPaths(data.api.tls, rel) : null },
    xds: { tls: data.xds?.tls ? tlsPaths(data.xds.tls, rel) : null },
    telemetry: { tokens: telemetryTokens, tls: data.telemetry?.tls ? tlsPaths(data.telemetry.tls, rel) : null },
    stateDir: data.stateDir ? rel(data.stateDir) : null,
    policyFile: data.policy ? rel(data.policy) : null,
    tickMs: data.tickMs ?? 1000,
    dataplane: data.dataplane ? {
      listener: data.dataplane.listener ? { name: data.dataplane.name ?? "shadowmesh-ingress", ...splitHostPort(data.dataplane.listener) } : null,
      ...(data.dataplane.wasmUrl ? { wasmUrl: data.dataplane.wasmUrl, wasmCluster: data.dataplane.wasmCluster! } : {}),
      ...(data.dataplane.telemetryCluster ? { telemetryCluster: data.dataplane.telemetryCluster } : {}),
      wasm: rel(data.dataplane.wasm), telemetryIntervalMs: data.dataplane.telemetryIntervalMs ?? 1000,
      ...(data.dataplane.telemetryTls ? { telemetryTls: data.dataplane.telemetryTls } : {}),
      ...(data.dataplane.telemetryStream !== undefined ? { telemetryStream: data.dataplane.telemetryStream } : {}),
    } : null,
    risk: data.risk ?? {},
    learning: data.learning ?? {},
    components: comps, scrape, promql,
    webhooks: (data.webhooks ?? []).map((w) => ({ url: w.url, headers: w.headers ?? {}, minSeverity: w.minSeverity ?? "info" })),
    ...(data.ha ? { ha: resolveHa(data.ha, env) } : {}),
    observe, impact,
  };
}

function tlsPaths(t: TlsFiles, rel: (p: string) => string): TlsFiles {
  return { cert: rel(t.cert), key: rel(t.key), ...(t.clientCa ? { clientCa: rel(t.clientCa) } : {}) };
}

/** Reads, parses and checks the configuration file, and that the files it names (TLS, stateDir) are usable. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const text = readYamlFile(file, ConfigError);
  const big = sizeProblem(text);
  if (big) throw new ConfigError(file, 1, 1, "", big);
  return parseConfig(text, file, env, { checkFiles: true });
}
