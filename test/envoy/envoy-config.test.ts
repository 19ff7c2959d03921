// Every file in envoy/ as Envoy and Istio would read it: each bootstrap decoded strictly against
// Envoy's v3 Bootstrap proto (unknown fields, bad durations, two fields of a oneof fail), then the
// references checked (routes, ADS and the filter name clusters that exist; the router is the last
// HTTP filter; the filter's inline configuration is accepted by the real filter). The compose file's
// controller configuration parses. (The Istio manifests are in deploy/istio: test/deploy/istio.test.ts.)
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { checkEnvoyJson, EnvoyConfigError } from "../../controller/xds/envoy-json.js";
import { buildTelemetryCluster } from "../../controller/xds/resources.js";
import { pack, unpack } from "../../protocol/protos.js";
import { parseConfig } from "../../controller/config.js";
import { PluginHost } from "../../host/plugin.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const envoyDir = path.join(root, "envoy");
const WASM = readFileSync(path.join(root, "build", "shadowmesh.wasm"));
const load = (f: string) => YAML.parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJSON());

/** The real filter's verdict on a plugin configuration (its own error message when it refuses). */
async function filterAccepts(config: string): Promise<void> {
  await PluginHost.create({ wasm: WASM, pluginConfig: config }).then((h) => h.shutdown());
}

type Obj = Record<string, any>;
const BOOTSTRAPS = readdirSync(envoyDir).filter((f) => /\.(ya?ml|json)$/.test(f) && !["docker-compose.yaml", "controller.yaml"].includes(f));

test("every Envoy bootstrap in envoy/ decodes strictly as envoy.config.bootstrap.v3.Bootstrap, and its references resolve", async () => {
  assert.ok(BOOTSTRAPS.length >= 3, `bootstraps found: ${BOOTSTRAPS.join(", ")}`);
  for (const f of BOOTSTRAPS) {
    const [b] = load(path.join(envoyDir, f)) as Obj[];
    const visited = checkEnvoyJson("envoy.config.bootstrap.v3.Bootstrap", b, f);
    const clusters: Obj[] = b!.static_resources?.clusters ?? [];
    const names = new Set(clusters.map((c) => c.name));
    assert.is(names.size, clusters.length, `${f}: cluster names are unique`);
    for (const c of clusters) if (c.load_assignment) assert.is(c.load_assignment.cluster_name, c.name, `${f}: ${c.name}'s load_assignment names it`);
    for (const g of b!.dynamic_resources?.ads_config?.grpc_services ?? []) assert.ok(names.has(g.envoy_grpc.cluster_name), `${f}: ADS cluster ${g.envoy_grpc.cluster_name} exists`);
    const hcms = visited.anys.filter((a) => a.type.endsWith("HttpConnectionManager")).map((a) => a.value as Obj);
    for (const hcm of hcms) {
      const filters: Obj[] = hcm.http_filters;
      assert.is(filters.at(-1)!.typed_config["@type"], "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", `${f}: the router is the last HTTP filter`);
      for (const vh of hcm.route_config?.virtual_hosts ?? []) for (const r of vh.routes) {
        if (r.route.cluster) assert.ok(names.has(r.route.cluster), `${f}: route cluster ${r.route.cluster} exists`);
        if (r.route.cluster_header) assert.is(r.route.cluster_header, "x-shadowmesh-cluster", `${f}: cluster_header is the filter's routing header`);
      }
      for (const w of filters.filter((x) => x.typed_config?.["@type"]?.endsWith("wasm.v3.Wasm"))) {
        const cfg = w.typed_config.config;
        const json = cfg.configuration.value as string;
        await filterAccepts(json);
        const pc = JSON.parse(json);
        for (const c of pc.components) for (const k of ["primary_cluster", "shadow_cluster"]) assert.ok(names.has(c[k]), `${f}: the filter's ${k} ${c[k]} is a cluster`);
        if (pc.telemetry) assert.ok(names.has(pc.telemetry.cluster), `${f}: the filter's telemetry cluster exists`);
      }
    }
  }
});

test("the strict decoder names what Envoy would reject", () => {
  const rejects = (obj: unknown, re: RegExp) => assert.throws(() => checkEnvoyJson("envoy.config.bootstrap.v3.Bootstrap", obj, "b"), (e: Error) => e instanceof EnvoyConfigError && re.test(e.message));
  rejects({ static_resources: { clusters: [{ name: "c", conect_timeout: "1s" }] } }, /b\.static_resources\.clusters\[0\]\.conect_timeout: no such field in envoy\.config\.cluster\.v3\.Cluster/);
  rejects({ static_resources: { clusters: [{ name: "c", connect_timeout: 5 }] } }, /connect_timeout: a Duration is a string like "1\.5s"/);
  rejects({ static_resources: { clusters: [{ name: "c", type: "STATIC", cluster_type: { name: "x" } }] } }, /only one of oneof cluster_discovery_type/);
  rejects({ static_resources: { clusters: [{ name: "c", lb_policy: "FASTEST" }] } }, /"FASTEST" is not a value of envoy\.config\.cluster\.v3\.Cluster\.LbPolicy/);
  rejects({ static_resources: { listeners: [{ name: "l", filter_chains: [{ filters: [{ name: "h", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", stat_prefx: "x" } }] }] }] } },
    /typed_config\.stat_prefx: no such field in envoy\.extensions\.filters\.network\.http_connection_manager\.v3\.HttpConnectionManager/);
  rejects({ static_resources: { listeners: [{ name: "l", filter_chains: [{ filters: [{ name: "h", typed_config: { "@type": "type.googleapis.com/no.such.Type" } }] }] }] } }, /unknown type no\.such\.Type/);
  // camelCase json names are Envoy's too
  checkEnvoyJson("envoy.config.bootstrap.v3.Bootstrap", { staticResources: { clusters: [{ name: "c", connectTimeout: "0.25s" }] } }, "b");
});

test("docker-compose: the files it mounts exist and the controller configuration it runs parses", () => {
  const [compose] = load(path.join(envoyDir, "docker-compose.yaml")) as Obj[];
  for (const s of ["controller", "orders-a", "orders-b", "envoy"]) assert.ok(compose!.services[s], `service ${s}`);
  const envoy = compose!.services.envoy;
  assert.ok(envoy.volumes.some((v: string) => v.startsWith("./bootstrap-ads.yaml:")), "envoy runs the ADS bootstrap");
  assert.ok(envoy.command.includes("--reject-unknown-dynamic-fields"));
  const cmd: string[] = compose!.services.controller.command;
  const cfgFile = path.join(root, cmd[cmd.indexOf("--config") + 1]!);
  const cfg = parseConfig(readFileSync(cfgFile, "utf8"), cfgFile, compose!.services.controller.environment);
  assert.ok(cfg.policyFile && existsSync(cfg.policyFile), `policy ${cfg.policyFile}`);
  assert.is(cfg.dataplane?.listener?.port, 10000, "the controller publishes the listener Envoy's port maps");
  for (const s of ["orders-a", "orders-b"]) assert.ok(existsSync(path.join(root, compose!.services[s].command[3])), `${s} runs a file that exists`);
  const [ads] = load(path.join(envoyDir, "bootstrap-ads.yaml")) as Obj[];
  const ctl = ads!.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  assert.equal([ctl.address, ctl.port_value], ["controller", cfg.listen.xds.split(":").map(Number)[1]], "Envoy's ADS cluster points at the controller's xDS port");
  // The telemetry cluster the controller publishes to this Envoy: mutual TLS to the controller's name, checked strictly.
  const tel = buildTelemetryCluster("shadowmesh-telemetry", "controller", 18001, cfg.dataplane!.telemetryTls);
  pack("envoy.config.cluster.v3.Cluster", tel); // strict: every field exists in Envoy's protos
  assert.is(tel.type, "STRICT_DNS", "a name, resolved by DNS");
  const socket = (tel.transport_socket as { name: string; typed_config: { type_url: string; value: Uint8Array } });
  assert.is(socket.name, "envoy.transport_sockets.tls");
  const tlsJson = JSON.stringify(unpack(socket.typed_config));
  for (const f of ["/etc/envoy/tls/ca.crt", "/etc/envoy/tls/envoy.crt", "/etc/envoy/tls/envoy.key", "controller", "h2"]) assert.ok(tlsJson.includes(f), `${f} in ${tlsJson}`);
  assert.ok(cfg.telemetry.tls?.clientCa, "the controller requires the client certificate on telemetry");
});

test.run();
