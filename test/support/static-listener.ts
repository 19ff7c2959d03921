// Envoy bootstrap static_resources for data plane tests: one listener on 127.0.0.1 (an ephemeral
// port) whose HTTP filter chain is one inline Wasm filter then the router, every request routed to
// cluster "orders"; and that STATIC cluster at one address.
import { pack } from "../../protocol/protos.js";

const WASM = "envoy.extensions.filters.http.wasm.v3.Wasm";

/** Listener "ingress": the Wasm module at `filename` (its plugin configuration `configuration`), then the router. */
export function wasmListener(filename: string, configuration: string) {
  return pack("envoy.config.listener.v3.Listener", {
    name: "ingress",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{ filters: [{ name: "hcm", typed_config: pack("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
      stat_prefix: "ingress",
      route_config: { name: "inline", virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "" }, route: { cluster: "orders" } }] }] },
      http_filters: [
        { name: "wasm", typed_config: pack(WASM, { config: { name: "wasm", root_id: "", vm_config: { vm_id: "t", runtime: "envoy.wasm.runtime.v8", code: { local: { filename } } }, configuration: pack("google.protobuf.StringValue", { value: configuration }), fail_open: false } }) },
        { name: "envoy.filters.http.router", typed_config: pack("envoy.extensions.filters.http.router.v3.Router", {}) },
      ],
    }) }] }],
  });
}

/** Cluster "orders": STATIC, one endpoint. */
export function ordersCluster(port: number, address = "127.0.0.1") {
  return pack("envoy.config.cluster.v3.Cluster", { name: "orders", type: "STATIC", connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: "orders", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }] } });
}
