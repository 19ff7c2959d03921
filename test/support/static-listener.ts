// Envoy bootstrap static_resources for data plane tests: one listener on 127.0.0.1 (an ephemeral
// port) whose HTTP filter chain is one inline Wasm filter then the router, every request routed to
// cluster "orders"; and that STATIC cluster at one address. Built with the controller's own pieces
// (the Wasm filter, the router, the load assignment), inline instead of over ECDS and EDS.
import { pack } from "../../protocol/protos.js";
import { buildLoadAssignment, buildWasmFilterConfig, ROUTER_FILTER } from "../../controller/xds/resources.js";

/** Listener "ingress": the Wasm module at `filename` (its plugin configuration `configuration`), then the router. */
export function wasmListener(filename: string, configuration: string) {
  return pack("envoy.config.listener.v3.Listener", {
    name: "ingress",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{ filters: [{ name: "hcm", typed_config: pack("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
      stat_prefix: "ingress",
      route_config: { name: "inline", virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "" }, route: { cluster: "orders" } }] }] },
      http_filters: [buildWasmFilterConfig("wasm", configuration, { filename }), ROUTER_FILTER],
    }) }] }],
  });
}

/** Cluster "orders": STATIC, one endpoint. */
export function ordersCluster(port: number, address = "127.0.0.1") {
  return pack("envoy.config.cluster.v3.Cluster", { name: "orders", type: "STATIC", connect_timeout: { seconds: 1 }, load_assignment: buildLoadAssignment({ name: "orders", locality: {}, endpoints: [{ address, port }] }) });
}
