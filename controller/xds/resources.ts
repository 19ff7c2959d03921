// Builders for the xDS resources of protected components: EDS clusters and their load
// assignments (with zone/region localities), the route that splits primary/shadow (Envoy-native
// weighted_clusters, also understood by proxyless gRPC, or cluster_header set by the filter), the
// Envoy listener carrying the Wasm filter (its configuration delivered by ECDS) and the router, the
// api_listener proxyless gRPC resolves, and the telemetry cluster pointing at the controller.
// Everything returned is a plain object in Envoy's JSON shape (snake_case); snapshot.ts packs it.
import { pack, type PackedAny } from "../../protocol/protos.js";

export interface Endpoint { address: string; port: number }
export interface Locality { region?: string; zone?: string; sub_zone?: string }
export interface ClusterSpec { name: string; locality: Locality; endpoints: Endpoint[] }

/** The two sides of a component: the primary and its shadow (the only meaning of "Side"). */
export type Side = "primary" | "shadow";

/** Traffic split in basis points; primary + shadow must equal TOTAL_WEIGHT. */
export interface Weights { primary: number; shadow: number }
export const TOTAL_WEIGHT = 10000;

export type RoutingMode = "weighted_clusters" | "cluster_header";

/** How a component is routed: its hostnames, its two clusters and how the proxies split between them. */
export interface RouteSpec {
  name: string;
  /** Virtual host domains (the :authority values). */
  hostnames: string[];
  primary: ClusterSpec;
  shadow: ClusterSpec;
  /** weighted_clusters: Envoy (and proxyless gRPC) split; cluster_header: the filter decides. */
  mode: RoutingMode;
  routingHeader?: string;
}

/** A service the filter observes only: its callers and latency are recorded, its traffic left on its cluster. */
export interface ObservedSpec { name: string; hostnames: string[]; cluster: ClusterSpec }

export const ROUTER_FILTER = {
  name: "envoy.filters.http.router",
  typed_config: pack("envoy.extensions.filters.http.router.v3.Router", {}),
};

const ads = { ads: {}, resource_api_version: "V3" };

export function routeName(component: string): string { return `${component}-route`; }

export function buildCluster(c: ClusterSpec): Record<string, unknown> {
  return {
    name: c.name,
    type: "EDS",
    eds_cluster_config: { eds_config: ads },
    lb_policy: "ROUND_ROBIN",
    connect_timeout: { seconds: 1 },
  };
}

export function buildLoadAssignment(c: ClusterSpec): Record<string, unknown> {
  return {
    cluster_name: c.name,
    endpoints: [{
      locality: c.locality,
      // Without a weight, proxyless gRPC drops the locality silently.
      load_balancing_weight: { value: 1 },
      lb_endpoints: c.endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } } })),
    }],
  };
}

export class WeightsError extends RangeError {}

/** Refuses anything but two non-negative integers summing to TOTAL_WEIGHT, naming the component. */
export function checkWeights(component: string, w: Weights): void {
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= TOTAL_WEIGHT;
  if (!ok(w.primary) || !ok(w.shadow)) {
    throw new WeightsError(`${component}: weights must be integers between 0 and ${TOTAL_WEIGHT}, got primary=${w.primary} shadow=${w.shadow}`);
  }
  if (w.primary + w.shadow !== TOTAL_WEIGHT) {
    throw new WeightsError(`${component}: weights must sum to ${TOTAL_WEIGHT}, got ${w.primary} + ${w.shadow} = ${w.primary + w.shadow}`);
  }
}

export function buildRoute(c: RouteSpec, w: Weights): Record<string, unknown> {
  checkWeights(c.name, w);
  const action = c.mode === "cluster_header"
    ? { cluster_header: c.routingHeader ?? "x-shadowmesh-cluster" }
    : {
      weighted_clusters: {
        // A zero weight is fine; all zero is not (there is always a primary or shadow share).
        clusters: [
          { name: c.primary.name, weight: { value: w.primary } },
          { name: c.shadow.name, weight: { value: w.shadow } },
        ],
      },
    };
  return {
    name: routeName(c.name),
    virtual_hosts: [{ name: c.name, domains: [...c.hostnames, c.name], routes: [{ match: { prefix: "" }, route: action }] }],
  };
}

/** The listener proxyless gRPC asks for with xds:///<component>: an api_listener over RDS. */
export function buildApiListener(c: RouteSpec): Record<string, unknown> {
  return {
    name: c.name,
    api_listener: {
      api_listener: pack("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
        rds: { config_source: ads, route_config_name: routeName(c.name) },
        http_filters: [ROUTER_FILTER],
      }),
    },
  };
}

export interface EnvoyListenerSpec {
  name: string;
  address: string;
  port: number;
  /** Route configuration names served on this listener, one virtual host set per component. */
  routeConfigName: string;
  /** ECDS name of the shadowmesh Wasm filter. */
  filterName: string;
}

/** An Envoy listener: HTTP connection manager over RDS, the shadowmesh filter via ECDS, then the router. */
export function buildEnvoyListener(l: EnvoyListenerSpec): Record<string, unknown> {
  const hcm = pack("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
    stat_prefix: l.name,
    codec_type: "AUTO",
    rds: { config_source: ads, route_config_name: l.routeConfigName },
    http_filters: [
      {
        name: l.filterName,
        config_discovery: {
          config_source: ads,
          type_urls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"],
          // Until ECDS delivers it, requests pass (the filter fails open by design).
          apply_default_config_without_warming: false,
        },
      },
      ROUTER_FILTER,
    ],
  });
  return {
    name: l.name,
    address: { socket_address: { address: l.address, port_value: l.port } },
    filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }] }],
  };
}

/**
 * One route configuration holding every component's virtual host, for an Envoy listener. The filter
 * decides each request's cluster (sticky reads, writes to the write target) and names it in the
 * routing header, which the first route follows (cluster_header). When the filter did not set it
 * (it failed open, or ECDS has not delivered it yet) the second route sends the request to the
 * write target: the one side that accepts writes and serves reads.
 */
export function buildSharedRoute(name: string, components: RouteSpec[], writeTargets: Map<string, "primary" | "shadow">, observed: ObservedSpec[] = []): Record<string, unknown> {
  return {
    name,
    virtual_hosts: [...observed.map((o) => ({ name: o.name, domains: [...o.hostnames, o.name], routes: [{ match: { prefix: "" }, route: { cluster: o.cluster.name } }] })), ...components.map((c) => {
      const header = c.routingHeader ?? "x-shadowmesh-cluster";
      const fallback = writeTargets.get(c.name) === "shadow" ? c.shadow.name : c.primary.name;
      return {
        name: c.name, domains: [...c.hostnames, c.name],
        routes: [
          { match: { prefix: "", headers: [{ name: header, present_match: true }] }, route: { cluster_header: header } },
          { match: { prefix: "" }, route: { cluster: fallback } },
        ],
      };
    })],
  };
}

/** Where the proxies load the module from: a local file, or a URL fetched through `cluster` and checked against sha256. */
export interface WasmSource { filename?: string; sha256?: string; uri?: string; cluster?: string }

/** ECDS resource: the Wasm HTTP filter with the shadowmesh plugin configuration (JSON). */
export function buildWasmFilterConfig(name: string, pluginConfigJson: string, source: WasmSource): Record<string, unknown> {
  const code = source.uri
    ? { remote: { http_uri: { uri: source.uri, cluster: source.cluster ?? "shadowmesh-wasm-source", timeout: { seconds: 10 } }, sha256: source.sha256 ?? "", retry_policy: { num_retries: { value: 5 } } } }
    : { local: { filename: source.filename ?? "/etc/envoy/shadowmesh.wasm" } };
  return {
    name,
    typed_config: pack("envoy.extensions.filters.http.wasm.v3.Wasm", {
      config: {
        name,
        root_id: "shadowmesh",
        vm_config: { vm_id: "shadowmesh", runtime: "envoy.wasm.runtime.v8", code },
        configuration: pack("google.protobuf.StringValue", { value: pluginConfigJson }),
        // An internal error in the filter must never break traffic.
        fail_open: true,
      },
    }),
  };
}

/** The cluster the filter's telemetry gRPC calls go to: the controller, over HTTP/2. */
/** The proxies' side of a TLS telemetry server: files on the proxy hosts; cert + key for mutual TLS. */
export interface TelemetryTlsOnProxy { ca: string; cert?: string; key?: string; sni?: string }

const isIp = (a: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a) || a.includes(":");

/** The cluster the filter reports telemetry to (HTTP/2; TLS, mutual with a client certificate, when `tls` is given). */
export function buildTelemetryCluster(name: string, address: string, port: number, tls?: TelemetryTlsOnProxy): Record<string, unknown> {
  return {
    name,
    // A name (the controller's service) is resolved by DNS; STATIC takes addresses only.
    type: isIp(address) ? "STATIC" : "STRICT_DNS",
    connect_timeout: { seconds: 1 },
    ...(tls ? {
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: pack("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", {
          sni: tls.sni ?? address,
          common_tls_context: {
            alpn_protocols: ["h2"],
            ...(tls.cert && tls.key ? { tls_certificates: [{ certificate_chain: { filename: tls.cert }, private_key: { filename: tls.key } }] } : {}),
            validation_context: {
              trusted_ca: { filename: tls.ca },
              match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: tls.sni ?? address } }],
            },
          },
        }),
      },
    } : {}),
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }],
    },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": pack("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {
        explicit_http_config: { http2_protocol_options: {} },
      }),
    },
  };
}

export type { PackedAny };
