// The strict Envoy decoder (controller/xds/envoy-json.ts: @bufbuild/protobuf's fromJson against the
// Envoy protos, then Envoy's protoc-gen-validate rules): what it must refuse, each error naming the
// where and the field path, what it must keep accepting (names in either case, enums by name, bare
// wrappers, Anys by "@type", every bootstrap in envoy/), and the Anys it hands to its callers.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { checkEnvoyJson, EnvoyConfigError } from "../../controller/xds/envoy-json.js";

const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";
const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const envoyDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "envoy");

type Obj = Record<string, any>;
const cluster = (c: Obj): Obj => ({ static_resources: { clusters: [{ name: "c", ...c }] } });
const CLUSTER = "b.static_resources.clusters[0]";
const withPort = (port: unknown): Obj => cluster({ load_assignment: { cluster_name: "c", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: port } } } }] }] } });
const PORT = `${CLUSTER}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value`;
/** A listener whose HTTP connection manager routes / to `route` (hcm: extra HCM fields). */
const listener = (hcm: Obj = {}, route: Obj = { cluster: "c" }): Obj => ({
  static_resources: { listeners: [{ name: "l", address: { socket_address: { address: "0.0.0.0", port_value: 10000 } }, filter_chains: [{ filters: [{ name: "hcm", typed_config: {
    "@type": HCM, stat_prefix: "ingress",
    route_config: { virtual_hosts: [{ name: "v", domains: ["*"], routes: [{ match: { prefix: "/" }, route }] }] },
    http_filters: [{ name: "router", typed_config: { "@type": ROUTER } }],
    ...hcm,
  } }] }] }] },
});
const HCM_AT = "b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config";

/** Refused with an EnvoyConfigError whose message starts with the path, then says why (re). */
function rejects(obj: unknown, at: string, re: RegExp, type = BOOTSTRAP): void {
  let err: unknown;
  try { checkEnvoyJson(type, obj, "b"); } catch (e) { err = e; }
  assert.ok(err instanceof EnvoyConfigError, `expected an EnvoyConfigError at ${at}, got ${err === undefined ? "acceptance" : String(err)}`);
  const msg = (err as Error).message;
  assert.ok(msg.startsWith(`${at}: `), `the error names ${at}: ${msg}`);
  assert.match(msg.slice(at.length + 2), re);
}

test("port_value: negative, beyond uint32, not an integer and above PGV's lte 65535 are refused at their path", () => {
  rejects(withPort(-5), PORT, /uint32.*-5 out of range/);
  rejects(withPort(99999999999), PORT, /uint32.*99999999999 out of range/);
  rejects(withPort(1.5), PORT, /uint32.*1\.5/);
  rejects(withPort(70000), PORT, /must be at most 65535 \(uint32\.lte\)/);
  checkEnvoyJson(BOOTSTRAP, withPort(65535), "b");
  checkEnvoyJson(BOOTSTRAP, withPort("8080"), "b"); // proto3 JSON takes integers as strings too
  // SocketAddress' port_specifier oneof is (validate.required)
  const noPort = withPort(1);
  delete noPort.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value;
  rejects(noPort, PORT.replace(/\.port_value$/, ""), /one of port_value, named_port is required \(oneof port_specifier/);
});

test("an enum number that names no value is refused, with or without PGV's defined_only; names and defined numbers decode", () => {
  rejects(cluster({ lb_policy: 999 }), `${CLUSTER}.lb_policy`, /^999 is not a value of envoy\.config\.cluster\.v3\.Cluster\.LbPolicy \(ROUND_ROBIN, .*\(enum\.defined_only\)$/);
  // Cluster.protocol_selection has no defined_only rule: refused here all the same (see envoy-json.ts)
  rejects(cluster({ protocol_selection: 999 }), `${CLUSTER}.protocol_selection`, /^999 is not a value of envoy\.config\.cluster\.v3\.Cluster\.ClusterProtocolSelection/);
  rejects(cluster({ lb_policy: "FASTEST" }), `${CLUSTER}.lb_policy`, /"FASTEST" is not a value of envoy\.config\.cluster\.v3\.Cluster\.LbPolicy/);
  rejects(listener({ codec_type: 7 }), `${HCM_AT}.codec_type`, /7 is not a value of .*HttpConnectionManager\.CodecType/);
  checkEnvoyJson(BOOTSTRAP, cluster({ lb_policy: "RING_HASH" }), "b");
  checkEnvoyJson(BOOTSTRAP, cluster({ lb_policy: 2 }), "b");
});

test("an empty cluster name (Cluster.name) and an empty route cluster (RouteAction.cluster) are refused: PGV min_len 1", () => {
  rejects(cluster({ name: "" }), `${CLUSTER}.name`, /must not be empty \(string\.min_len\)/);
  rejects({ static_resources: { clusters: [{ type: "STATIC" }] } }, `${CLUSTER}.name`, /must not be empty/); // absent is empty in proto3
  rejects(listener({}, { cluster: "" }), `${HCM_AT}.route_config.virtual_hosts[0].routes[0].route.cluster`, /must not be empty \(string\.min_len\)/);
  rejects(listener({ route_config: { virtual_hosts: [{ name: "v", domains: [], routes: [] }] } }), `${HCM_AT}.route_config.virtual_hosts[0].domains`, /at least 1 item \(repeated\.min_items\)/);
});

test("unknown fields, two fields of a oneof, malformed durations and unknown @types are refused at their path", () => {
  rejects(cluster({ conect_timeout: "1s" }), `${CLUSTER}.conect_timeout`, /no such field in envoy\.config\.cluster\.v3\.Cluster/);
  rejects(listener({ stat_prefx: "x" }), `${HCM_AT}.stat_prefx`, /no such field in .*HttpConnectionManager/);
  rejects(cluster({ type: "STATIC", cluster_type: { name: "x" } }), `${CLUSTER}.cluster_type`, /only one of oneof cluster_discovery_type may be set \(type is set too\)/);
  for (const d of [5, "1.5", "abc", "1 s"]) rejects(cluster({ connect_timeout: d }), `${CLUSTER}.connect_timeout`, /a Duration is a string like "1\.5s"/);
  rejects(cluster({ connect_timeout: "-1s" }), `${CLUSTER}.connect_timeout`, /greater than 0s \(duration\.gt\)/);
  rejects({ stats_flush_interval: "301s" }, "b.stats_flush_interval", /less than 300s/);
  rejects(listener({ http_filters: [{ name: "x", typed_config: { "@type": "type.googleapis.com/no.such.Type" } }] }), `${HCM_AT}.http_filters[0].typed_config.@type`, /unknown type no\.such\.Type/);
  rejects(listener({ http_filters: [{ name: "x", typed_config: {} }] }), `${HCM_AT}.http_filters[0].typed_config.@type`, /an Any needs "@type"/);
  rejects(listener({}, { cluster_header: "not a header\n" }), `${HCM_AT}.route_config.virtual_hosts[0].routes[0].route.cluster_header`, /HTTP header name/);
  rejects(cluster({ per_connection_buffer_limit_bytes: -1 }), `${CLUSTER}.per_connection_buffer_limit_bytes`, /out of range/);
  rejects({ static_resources: { clusters: { name: "c" } } }, "b.static_resources.clusters", /must be a list/);
  assert.throws(() => checkEnvoyJson("no.such.Bootstrap", {}, "b"), (e: Error) => e instanceof EnvoyConfigError && /^b: unknown type no\.such\.Bootstrap/.test(e.message));
});

test("proto3 JSON as Envoy reads it: camelCase names, bare wrappers, Struct as any JSON, null as unset", () => {
  checkEnvoyJson(BOOTSTRAP, { staticResources: { clusters: [{ name: "c", connectTimeout: "0.25s", lbPolicy: "RING_HASH", perConnectionBufferLimitBytes: 32768 }] } }, "b");
  checkEnvoyJson(BOOTSTRAP, cluster({ connect_timeout: null, metadata: { filter_metadata: { shadowmesh: { a: [1, { b: null }], c: "d" } } } }), "b");
  rejects(cluster({ metadata: { filter_metadata: { "": {} } } }), `${CLUSTER}.metadata.filter_metadata[""]`, /the key must not be empty/);
});

test("a partial fragment (an EnvoyFilter MERGE patch) is not required to carry what the resource already has", () => {
  const CLUSTER_T = "envoy.config.cluster.v3.Cluster";
  assert.throws(() => checkEnvoyJson(CLUSTER_T, { connect_timeout: "1s" }, "p"), /^p\.name: must not be empty/);
  checkEnvoyJson(CLUSTER_T, { connect_timeout: "1s" }, "p", undefined, { partial: true });
  // what it does write is judged
  rejects(cluster({ name: "" }).static_resources.clusters[0], "b.name", /must not be empty/, CLUSTER_T);
  assert.throws(() => checkEnvoyJson(CLUSTER_T, { lb_policy: 999 }, "p", undefined, { partial: true }), /^p\.lb_policy: 999 is not a value/);
  assert.throws(() => checkEnvoyJson(CLUSTER_T, { name: "" }, "p", undefined, { partial: true }), /^p\.name: must not be empty/);
});

test("every Any is handed back with its path, type and JSON, inner ones included", () => {
  const v = checkEnvoyJson(BOOTSTRAP, listener(), "b");
  assert.equal(v.anys.map((a) => [a.path, a.type]), [
    [`${HCM_AT}.http_filters[0].typed_config`, "envoy.extensions.filters.http.router.v3.Router"],
    [HCM_AT, "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"],
  ]);
  const hcm = v.anys[1]!.value as Obj;
  assert.is(hcm.stat_prefix, "ingress");
  assert.is(hcm["@type"], undefined);
  // a visited set passed in is added to
  checkEnvoyJson(BOOTSTRAP, listener(), "again", v);
  assert.is(v.anys.length, 4);
});

test("every Envoy bootstrap in envoy/ still decodes", () => {
  const files = readdirSync(envoyDir).filter((f) => /\.(ya?ml|json)$/.test(f) && !["docker-compose.yaml", "controller.yaml"].includes(f));
  assert.ok(files.length >= 3, files.join(", "));
  for (const f of files) {
    const [doc] = YAML.parseAllDocuments(readFileSync(path.join(envoyDir, f), "utf8")).map((d) => d.toJSON());
    const v = checkEnvoyJson(BOOTSTRAP, doc, f);
    const listeners = (doc as Obj).static_resources?.listeners?.length ?? 0; // bootstrap-ads.yaml gets its listeners by ADS
    assert.is(v.anys.filter((a) => a.type.endsWith("HttpConnectionManager")).length, listeners, `${f}: each listener's HTTP connection manager is visited`);
  }
});

test.run();
