// xDS resources as the embedded data plane understands them: decoding (Envoy's v3 protos) and
// checking, with the reasons Envoy would give when it rejects an update. What the data plane cannot
// do is refused with a NACK that says so, never silently half-applied. Pure: bytes in, models out.
import { lookupType } from "../protocol/protos.js";
import type { AnyResource } from "./xds-client.js";
import { ENVOY_OUTLIER_DEFAULTS, type OutlierConfig } from "./outlier.js";

export class ResourceError extends Error {}

const TO_OBJ = { longs: Number, enums: String, bytes: Buffer, defaults: false, arrays: true } as const;

export function decodeAny(a: AnyResource, where: string): Record<string, any> {
  const name = a.type_url.slice(a.type_url.lastIndexOf("/") + 1);
  let type;
  try { type = lookupType(name); } catch { throw new ResourceError(`${where}: unknown type ${a.type_url}`); }
  try { return type.toObject(type.decode(a.value), TO_OBJ) as Record<string, any>; } catch (e) {
    throw new ResourceError(`${where}: cannot decode ${name}: ${(e as Error).message}`);
  }
}

/** google.protobuf.Duration to ms (absent: undefined). */
export function durationMs(d: { seconds?: number; nanos?: number } | undefined): number | undefined {
  if (!d) return undefined;
  return (d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6);
}

// ------------------------------------------------------------------------------------------ models

export interface WasmFilterModel {
  name: string;
  rootId: string;
  vmId: string;
  /** vm_config.code.local.filename. */
  filename: string;
  /** The plugin configuration (a StringValue in Envoy's Wasm filter config). */
  configuration: string;
  failOpen: boolean;
}

export type HttpFilterRef =
  | { kind: "router"; name: string }
  | { kind: "wasm"; name: string; discovered: true }
  | { kind: "wasm"; name: string; discovered: false; config: WasmFilterModel };

export interface ListenerModel {
  name: string;
  address: string;
  port: number;
  statPrefix: string;
  routeConfigName: string;
  /** http_connection_manager.route_config (static bootstraps); otherwise the routes come over RDS. */
  inlineRoutes?: RouteConfigModel;
  filters: HttpFilterRef[];
}

export interface HeaderMatch { name: string; present?: boolean; exact?: string; prefix?: string; invert: boolean }

export type RouteAction =
  | { kind: "cluster"; cluster: string }
  | { kind: "cluster_header"; header: string }
  | { kind: "weighted"; clusters: { name: string; weight: number }[]; total: number };

export interface RouteEntry {
  prefix?: string;
  path?: string;
  headers: HeaderMatch[];
  action: RouteAction;
  /** Envoy's route timeout (default 15 s; 0 disables). */
  timeoutMs: number;
}

export interface VirtualHostModel { name: string; domains: string[]; routes: RouteEntry[] }
export interface RouteConfigModel { name: string; virtualHosts: VirtualHostModel[] }

export interface Endpoint {
  address: string;
  port: number;
  /** LocalityLbEndpoints.priority: 0 is used first; higher ones take the load healthy hosts cannot (failover). */
  priority: number;
  /** The locality's zone, for status and logs. */
  zone?: string;
}
export interface ClusterModel {
  name: string;
  discovery: "EDS" | "STATIC";
  connectTimeoutMs: number;
  http2: boolean;
  /** STATIC: from load_assignment; EDS: filled from ClusterLoadAssignment. */
  endpoints: Endpoint[];
  /** outlier_detection, with Envoy's defaults for what it leaves out; absent: no outlier detection. */
  outlierDetection?: OutlierConfig;
  /** common_lb_config.healthy_panic_threshold (percent, default 50). */
  panicThresholdPercent: number;
  /** load_assignment.policy.overprovisioning_factor (percent, default 140); EDS sets its own. */
  overprovisioningPercent: number;
}

// ------------------------------------------------------------------------------------------ LDS

const HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "envoy.extensions.filters.http.router.v3.Router";
const WASM = "envoy.extensions.filters.http.wasm.v3.Wasm";

export function parseWasmFilter(name: string, wasm: Record<string, any>, where: string): WasmFilterModel {
  const c = wasm.config ?? {};
  const vm = c.vm_config ?? {};
  const filename = vm.code?.local?.filename;
  if (vm.code?.remote) throw new ResourceError(`${where}.config.vm_config.code.remote: remote code is not supported by the embedded data plane (use local.filename)`);
  if (typeof filename !== "string" || !filename) throw new ResourceError(`${where}.config.vm_config.code.local.filename: required`);
  if (vm.runtime && !/^envoy\.wasm\.runtime\.(v8|null|wamr|wasmtime)$/.test(vm.runtime)) throw new ResourceError(`${where}.config.vm_config.runtime: unknown runtime ${vm.runtime}`);
  let configuration = "";
  if (c.configuration) {
    const cfg = decodeAny(c.configuration, `${where}.config.configuration`);
    if (!c.configuration.type_url.endsWith("google.protobuf.StringValue") && !c.configuration.type_url.endsWith("google.protobuf.BytesValue")) {
      throw new ResourceError(`${where}.config.configuration: ${c.configuration.type_url} is not supported (use google.protobuf.StringValue)`);
    }
    configuration = Buffer.isBuffer(cfg.value) ? cfg.value.toString("utf8") : (cfg.value ?? "");
  }
  return { name, rootId: c.root_id ?? "", vmId: vm.vm_id ?? "", filename, configuration, failOpen: c.fail_open === true };
}

/** Returns the listener model, or null for an api_listener (Envoy accepts those only from bootstrap and skips them with a warning). */
export function parseListener(any: AnyResource): ListenerModel | null {
  const l = decodeAny(any, "listener");
  const name = l.name as string;
  const where = `listener ${JSON.stringify(name)}`;
  if (!name) throw new ResourceError("listener: name is required");
  if (l.api_listener) return null;
  const sa = l.address?.socket_address;
  if (!sa?.address || sa.port_value === undefined) throw new ResourceError(`${where}.address.socket_address: address and port_value are required`);
  const chains = l.filter_chains ?? [];
  if (chains.length !== 1) throw new ResourceError(`${where}.filter_chains: the embedded data plane serves exactly one filter chain, got ${chains.length}`);
  const filters = chains[0].filters ?? [];
  const hcmFilter = filters.find((f: any) => f.typed_config?.type_url?.endsWith(HCM));
  if (!hcmFilter || filters.length !== 1) throw new ResourceError(`${where}.filter_chains[0].filters: expected exactly one ${HCM}`);
  const hcm = decodeAny(hcmFilter.typed_config, `${where} http_connection_manager`);
  const inlineRoutes = hcm.route_config ? routeConfigOf(hcm.route_config, `${where} http_connection_manager.route_config`) : undefined;
  const routeConfigName = inlineRoutes ? inlineRoutes.name : hcm.rds?.route_config_name;
  if (routeConfigName === undefined || (!inlineRoutes && !routeConfigName)) throw new ResourceError(`${where} http_connection_manager: rds.route_config_name or route_config is required`);
  const httpFilters: HttpFilterRef[] = [];
  for (const [i, f] of (hcm.http_filters ?? []).entries()) {
    const fw = `${where} http_filters[${i}] (${f.name})`;
    if (f.config_discovery) {
      const urls: string[] = f.config_discovery.type_urls ?? [];
      if (!urls.some((u) => u.endsWith(WASM))) throw new ResourceError(`${fw}.config_discovery.type_urls: the embedded data plane discovers only ${WASM}`);
      httpFilters.push({ kind: "wasm", name: f.name, discovered: true });
    } else if (f.typed_config?.type_url?.endsWith(ROUTER)) {
      httpFilters.push({ kind: "router", name: f.name });
    } else if (f.typed_config?.type_url?.endsWith(WASM)) {
      httpFilters.push({ kind: "wasm", name: f.name, discovered: false, config: parseWasmFilter(f.name, decodeAny(f.typed_config, fw), fw) });
    } else {
      throw new ResourceError(`${fw}: Didn't find a registered implementation for type ${f.typed_config?.type_url ?? "(none)"}`);
    }
  }
  if (httpFilters.at(-1)?.kind !== "router") throw new ResourceError(`${where}: the last HTTP filter must be the router (envoy.filters.http.router)`);
  return { name, address: sa.address, port: sa.port_value, statPrefix: hcm.stat_prefix ?? name, routeConfigName, ...(inlineRoutes ? { inlineRoutes } : {}), filters: httpFilters };
}

// ------------------------------------------------------------------------------------------ RDS

export function parseRouteConfig(any: AnyResource): RouteConfigModel {
  const r = decodeAny(any, "route configuration");
  const name = r.name as string;
  if (!name) throw new ResourceError("route configuration: name is required");
  return routeConfigOf(r, `route configuration ${JSON.stringify(name)}`);
}

/** A decoded RouteConfiguration (from RDS, or inline in a static listener, where the name may be empty). */
function routeConfigOf(r: Record<string, any>, where: string): RouteConfigModel {
  const name = (r.name as string | undefined) ?? "";
  const seenDomains = new Set<string>();
  const virtualHosts = (r.virtual_hosts ?? []).map((vh: any, i: number): VirtualHostModel => {
    const vw = `${where}.virtual_hosts[${i}]`;
    const domains: string[] = vh.domains ?? [];
    if (domains.length === 0) throw new ResourceError(`${vw}.domains: at least one domain is required`);
    for (const d of domains) {
      // Envoy: "Only unique values for domains are permitted".
      if (seenDomains.has(d.toLowerCase())) throw new ResourceError(`${vw}.domains: Only unique values for domains are permitted. Duplicate entry of domain ${d}`);
      seenDomains.add(d.toLowerCase());
    }
    const routes = (vh.routes ?? []).map((rt: any, j: number): RouteEntry => {
      const rw = `${vw}.routes[${j}]`;
      const m = rt.match ?? {};
      if (m.safe_regex || m.path_separated_prefix || m.path_match_policy || m.connect_matcher) {
        throw new ResourceError(`${rw}.match: only prefix and path matches are supported by the embedded data plane`);
      }
      const headers = (m.headers ?? []).map((h: any, k: number): HeaderMatch => {
        const hw = `${rw}.match.headers[${k}]`;
        if (!h.name) throw new ResourceError(`${hw}.name: required`);
        const sm = h.string_match;
        if (sm && (sm.safe_regex || sm.suffix !== undefined || sm.contains !== undefined)) throw new ResourceError(`${hw}.string_match: only exact and prefix are supported`);
        return { name: String(h.name).toLowerCase(), present: h.present_match, exact: sm?.exact ?? h.exact_match, prefix: sm?.prefix ?? h.prefix_match, invert: h.invert_match === true };
      });
      const a = rt.route;
      if (!a) throw new ResourceError(`${rw}: only route actions are supported (no redirect or direct_response)`);
      let action: RouteAction;
      if (a.cluster) action = { kind: "cluster", cluster: a.cluster };
      else if (a.cluster_header) action = { kind: "cluster_header", header: String(a.cluster_header).toLowerCase() };
      else if (a.weighted_clusters) {
        const clusters = (a.weighted_clusters.clusters ?? []).map((c: any) => ({ name: c.name as string, weight: c.weight?.value ?? 0 }));
        if (clusters.length === 0) throw new ResourceError(`${rw}.route.weighted_clusters.clusters: at least one cluster is required`);
        const total = clusters.reduce((s: number, c: { weight: number }) => s + c.weight, 0);
        if (total === 0) throw new ResourceError(`${rw}.route.weighted_clusters: Sum of weights in the weighted_cluster must be greater than 0.`);
        action = { kind: "weighted", clusters, total };
      } else throw new ResourceError(`${rw}.route: one of cluster, cluster_header or weighted_clusters is required`);
      const timeoutMs = durationMs(a.timeout) ?? 15_000;
      // proto3 drops an empty prefix on the wire: "" and absent are the same match-everything prefix.
      return { ...(m.path !== undefined ? { path: m.path } : { prefix: m.prefix ?? "" }), headers, action, timeoutMs };
    });
    return { name: vh.name ?? `vh${i}`, domains, routes };
  });
  return { name, virtualHosts };
}

// ------------------------------------------------------------------------------------------ CDS/EDS

export function parseCluster(any: AnyResource): ClusterModel {
  const c = decodeAny(any, "cluster");
  const name = c.name as string;
  const where = `cluster ${JSON.stringify(name)}`;
  if (!name) throw new ResourceError("cluster: name is required");
  const type = c.type ?? "STATIC";
  if (type !== "EDS" && type !== "STATIC") throw new ResourceError(`${where}.type: ${type} is not supported by the embedded data plane (EDS or STATIC)`);
  if (c.lb_policy && !["ROUND_ROBIN", "RANDOM", "LEAST_REQUEST"].includes(c.lb_policy)) throw new ResourceError(`${where}.lb_policy: ${c.lb_policy} is not supported`);
  const opts = c.typed_extension_protocol_options?.["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
  let http2 = !!c.http2_protocol_options;
  if (opts) {
    const o = decodeAny(opts, `${where}.typed_extension_protocol_options`);
    http2 = http2 || !!o.explicit_http_config?.http2_protocol_options;
  }
  const endpoints = type === "STATIC" ? endpointsOf(c.load_assignment, `${where}.load_assignment`) : [];
  if (type === "STATIC" && endpoints.length === 0) throw new ResourceError(`${where}.load_assignment: a STATIC cluster needs endpoints`);
  const panic = c.common_lb_config?.healthy_panic_threshold?.value;
  return {
    name, discovery: type, connectTimeoutMs: durationMs(c.connect_timeout) ?? 5000, http2, endpoints,
    ...(c.outlier_detection ? { outlierDetection: outlierConfigOf(c.outlier_detection, `${where}.outlier_detection`) } : {}),
    panicThresholdPercent: panic ?? 50,
    overprovisioningPercent: c.load_assignment?.policy?.overprovisioning_factor?.value ?? 140,
  };
}

/** outlier_detection with Envoy's defaults filled in; the fields this data plane does not model are refused. */
function outlierConfigOf(o: Record<string, any>, where: string): OutlierConfig {
  const unsupported = ["split_external_local_origin_errors", "consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure",
    "enforcing_local_origin_success_rate", "enforcing_failure_percentage_local_origin", "max_ejection_time_jitter", "successful_active_health_check_uneject_host", "monitors", "always_eject_one_host"];
  for (const k of unsupported) if (o[k] !== undefined && o[k] !== false && !(Array.isArray(o[k]) && o[k].length === 0)) throw new ResourceError(`${where}.${k}: not supported by the embedded data plane`);
  const d = ENVOY_OUTLIER_DEFAULTS;
  const u = (k: string, def: number) => (o[k]?.value ?? def) as number;
  const pct = (k: string, def: number) => {
    const v = u(k, def);
    if (v > 100) throw new ResourceError(`${where}.${k}: must be at most 100, got ${v}`);
    return v;
  };
  const ms = (k: string, def: number) => {
    const v = durationMs(o[k]) ?? def;
    if (v <= 0) throw new ResourceError(`${where}.${k}: must be greater than 0`);
    return v;
  };
  return {
    consecutive5xx: u("consecutive_5xx", d.consecutive5xx), enforcingConsecutive5xx: pct("enforcing_consecutive_5xx", d.enforcingConsecutive5xx),
    consecutiveGatewayFailure: u("consecutive_gateway_failure", d.consecutiveGatewayFailure),
    enforcingConsecutiveGatewayFailure: pct("enforcing_consecutive_gateway_failure", d.enforcingConsecutiveGatewayFailure),
    intervalMs: ms("interval", d.intervalMs), baseEjectionTimeMs: ms("base_ejection_time", d.baseEjectionTimeMs),
    maxEjectionTimeMs: ms("max_ejection_time", d.maxEjectionTimeMs), maxEjectionPercent: pct("max_ejection_percent", d.maxEjectionPercent),
    enforcingSuccessRate: pct("enforcing_success_rate", d.enforcingSuccessRate), successRateMinimumHosts: u("success_rate_minimum_hosts", d.successRateMinimumHosts),
    successRateRequestVolume: u("success_rate_request_volume", d.successRateRequestVolume), successRateStdevFactor: u("success_rate_stdev_factor", d.successRateStdevFactor),
    failurePercentageThreshold: pct("failure_percentage_threshold", d.failurePercentageThreshold), enforcingFailurePercentage: pct("enforcing_failure_percentage", d.enforcingFailurePercentage),
    failurePercentageMinimumHosts: u("failure_percentage_minimum_hosts", d.failurePercentageMinimumHosts),
    failurePercentageRequestVolume: u("failure_percentage_request_volume", d.failurePercentageRequestVolume),
  };
}

function endpointsOf(cla: any, where: string): Endpoint[] {
  const out: Endpoint[] = [];
  for (const [i, le] of (cla?.endpoints ?? []).entries()) {
    for (const [j, e] of (le.lb_endpoints ?? []).entries()) {
      const sa = e.endpoint?.address?.socket_address;
      if (!sa?.address || sa.port_value === undefined) throw new ResourceError(`${where}.endpoints[${i}].lb_endpoints[${j}]: socket_address with address and port_value is required`);
      out.push({ address: sa.address, port: sa.port_value, priority: le.priority ?? 0, ...(le.locality?.zone ? { zone: le.locality.zone } : {}) });
    }
  }
  // Envoy: priorities must run from 0 without gaps.
  const prios = [...new Set(out.map((e) => e.priority))].sort((a, b) => a - b);
  prios.forEach((p, i) => { if (p !== i) throw new ResourceError(`${where}.endpoints: priorities must be contiguous from 0, got ${prios.join(", ")}`); });
  return out;
}

export function parseLoadAssignment(any: AnyResource): { cluster: string; endpoints: Endpoint[]; overprovisioningPercent: number } {
  const cla = decodeAny(any, "cluster load assignment");
  if (!cla.cluster_name) throw new ResourceError("cluster load assignment: cluster_name is required");
  return { cluster: cla.cluster_name, endpoints: endpointsOf(cla, `load assignment ${JSON.stringify(cla.cluster_name)}`), overprovisioningPercent: cla.policy?.overprovisioning_factor?.value ?? 140 };
}

// ------------------------------------------------------------------------------------------ ECDS

export function parseExtensionConfig(any: AnyResource): WasmFilterModel {
  const e = decodeAny(any, "extension config");
  const name = e.name as string;
  if (!name) throw new ResourceError("extension config: name is required");
  const where = `extension config ${JSON.stringify(name)}`;
  if (!e.typed_config?.type_url?.endsWith(WASM)) throw new ResourceError(`${where}.typed_config: ${e.typed_config?.type_url ?? "(none)"} is not ${WASM}`);
  return parseWasmFilter(name, decodeAny(e.typed_config, where), where);
}

// ------------------------------------------------------------------------------------------ routing

function hostMatches(domain: string, host: string): boolean {
  if (domain === "*") return true;
  if (domain.startsWith("*")) return host.endsWith(domain.slice(1));
  if (domain.endsWith("*")) return host.startsWith(domain.slice(0, -1));
  return domain === host;
}

/** Envoy's virtual host selection: exact domain first, then suffix wildcards, prefix wildcards, then "*". */
export function selectVirtualHost(rc: RouteConfigModel, authority: string): VirtualHostModel | undefined {
  const host = authority.toLowerCase();
  const bare = host.replace(/:\d+$/, "");
  const candidates = host === bare ? [host] : [host, bare];
  for (const h of candidates) {
    for (const pass of [(d: string) => d === h, (d: string) => d.startsWith("*") && d !== "*", (d: string) => d.endsWith("*") && d !== "*", (d: string) => d === "*"]) {
      const vh = rc.virtualHosts.find((v) => v.domains.some((d) => pass(d.toLowerCase()) && hostMatches(d.toLowerCase(), h)));
      if (vh) return vh;
    }
  }
  return undefined;
}

/** The cluster a route sends the request to: its cluster, the one its header names, or a weighted pick (random in [0, 1)). */
export function routeCluster(a: RouteAction, header: (name: string) => string | undefined, random: () => number): string | undefined {
  if (a.kind === "cluster") return a.cluster;
  if (a.kind === "cluster_header") return header(a.header);
  let r = random() * a.total;
  for (const c of a.clusters) { if (r < c.weight) return c.name; r -= c.weight; }
  return a.clusters.at(-1)!.name;
}

export function selectRoute(vh: VirtualHostModel, path: string, header: (name: string) => string | undefined): RouteEntry | undefined {
  return vh.routes.find((r) => {
    if (r.path !== undefined ? path.split("?")[0] !== r.path : !path.startsWith(r.prefix ?? "")) return false;
    return r.headers.every((h) => {
      const v = header(h.name);
      let ok: boolean;
      if (h.present !== undefined) ok = (v !== undefined) === h.present;
      else if (h.exact !== undefined) ok = v === h.exact;
      else if (h.prefix !== undefined) ok = v !== undefined && v.startsWith(h.prefix);
      else ok = v !== undefined;
      return h.invert ? !ok : ok;
    });
  });
}
