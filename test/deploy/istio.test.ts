// deploy/istio as an Istio operator would apply it (kubectl apply -k), checked the way we can without
// a cluster: the kustomization rendered here (its resources in order, its image set); every
// document validated against its kind's schema (kubernetes-models, @kubernetes-models/istio: types,
// enums, patterns) with unknown spec fields refused (the schemas allow extra fields, so the field
// lists of each kind come from the Kubernetes and Istio API references); every EnvoyFilter patch
// decoded strictly as the Envoy message it patches (shadowmesh lint); and the references between the
// files: the controller configuration in the ConfigMap parses and runs the Istio data plane, its
// cluster names are the sidecar's for the Service's ports, the VirtualService routes on the header
// values the filter writes, volumes, secrets and probe ports exist; the Deployment is hardened.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import YAML from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { ServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import { EnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter";
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import { parseConfig } from "../../controller/config.js";
import { lintFile } from "../../controller/lint.js";
import { PluginHost } from "../../host/plugin.js";

type Obj = Record<string, any>;
const DIR = "deploy/istio";
const MODELS: Record<string, new (d: any) => { validate(): void }> = {
  "v1/Namespace": Namespace, "v1/Secret": Secret, "v1/PersistentVolumeClaim": PersistentVolumeClaim, "v1/ConfigMap": ConfigMap, "v1/Service": Service,
  "apps/v1/Deployment": Deployment, "apps/v1/StatefulSet": StatefulSet, "networking.istio.io/v1/DestinationRule": DestinationRule, "networking.istio.io/v1/ServiceEntry": ServiceEntry,
  "networking.istio.io/v1/VirtualService": VirtualService, "networking.istio.io/v1alpha3/EnvoyFilter": EnvoyFilter, "extensions.istio.io/v1alpha1/WasmPlugin": WasmPlugin,
};
// Fields per object, from the Kubernetes API reference (1.30) and Istio's (1.24): what the schemas leave open.
const FIELDS: Record<string, string[]> = {
  "WasmPlugin.spec": ["selector", "targetRef", "targetRefs", "url", "sha256", "imagePullPolicy", "imagePullSecret", "pluginConfig", "pluginName", "phase", "priority", "failStrategy", "vmConfig", "match", "type"],
  "EnvoyFilter.spec": ["workloadSelector", "targetRefs", "configPatches", "priority"],
  "ServiceEntry.spec": ["hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector", "exportTo", "subjectAltNames"],
  "DestinationRule.spec": ["host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"],
  "VirtualService.spec": ["hosts", "gateways", "http", "tls", "tcp", "exportTo"],
  "VirtualService.http": ["name", "match", "route", "redirect", "directResponse", "delegate", "rewrite", "timeout", "retries", "fault", "mirror", "mirrors", "mirrorPercentage", "corsPolicy", "headers"],
  "Deployment.spec": ["replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit", "paused", "progressDeadlineSeconds"],
  "PodSpec": ["containers", "initContainers", "volumes", "securityContext", "serviceAccountName", "automountServiceAccountToken", "nodeSelector", "affinity", "tolerations", "terminationGracePeriodSeconds", "priorityClassName", "topologySpreadConstraints", "imagePullSecrets"],
  "Container": ["name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports", "resources", "volumeMounts", "startupProbe", "readinessProbe", "livenessProbe", "securityContext", "workingDir", "lifecycle", "terminationMessagePolicy"],
  "StatefulSet.spec": ["replicas", "selector", "template", "serviceName", "volumeClaimTemplates", "podManagementPolicy", "updateStrategy", "revisionHistoryLimit", "minReadySeconds", "persistentVolumeClaimRetentionPolicy", "ordinals"],
  "Service.spec": ["selector", "ports", "type", "clusterIP", "sessionAffinity", "ipFamilyPolicy", "internalTrafficPolicy", "externalTrafficPolicy", "publishNotReadyAddresses"],
};

function unknownFields(kind: string, obj: Obj | undefined, where: string): string[] {
  const allowed = FIELDS[kind];
  if (!allowed || !obj) return [];
  return Object.keys(obj).filter((k) => !allowed.includes(k)).map((k) => `${where}.${k}: not a field of ${kind}`);
}

/** Every problem a document has: its schema's, and its unknown fields. */
function problems(d: Obj, where: string): string[] {
  const Model = MODELS[`${d.apiVersion}/${d.kind}`];
  if (!Model) return [`${where}: ${d.apiVersion} ${d.kind} is not a kind this test knows`];
  const out: string[] = [];
  try { new Model(d).validate(); } catch (e) { out.push(`${where}: ${(e as Error).message}`); }
  out.push(...unknownFields(`${d.kind}.spec`, d.spec, `${where}.spec`));
  if (d.kind === "VirtualService") for (const [i, h] of (d.spec?.http ?? []).entries()) out.push(...unknownFields("VirtualService.http", h, `${where}.spec.http[${i}]`));
  if (d.kind === "Deployment" || d.kind === "StatefulSet") {
    const pod = d.spec?.template?.spec;
    out.push(...unknownFields("PodSpec", pod, `${where}.spec.template.spec`));
    for (const [i, c] of (pod?.containers ?? []).entries()) out.push(...unknownFields("Container", c, `${where}.spec.template.spec.containers[${i}]`));
  }
  return out;
}

/** kubectl apply -k's input: the kustomization's resources in order, with its images applied. */
function render(): { file: string; d: Obj }[] {
  const k = YAML.parse(readFileSync(path.join(DIR, "kustomization.yaml"), "utf8")) as { resources: string[]; images?: { name: string; newName?: string; newTag?: string }[] };
  const docs = k.resources.flatMap((f) => YAML.parseAllDocuments(readFileSync(path.join(DIR, f), "utf8")).map((doc) => ({ file: f, d: doc.toJSON() as Obj })));
  for (const { d } of docs) for (const c of d.spec?.template?.spec?.containers ?? []) {
    const img = k.images?.find((i) => i.name === c.image);
    if (img) c.image = `${img.newName ?? img.name}:${img.newTag ?? "latest"}`;
  }
  return docs;
}

const docs = render();
const one = (kind: string, name?: string) => {
  const found = docs.filter((x) => x.d.kind === kind && (!name || x.d.metadata.name === name));
  assert.is(found.length, 1, `one ${kind}${name ? ` ${name}` : ""}`);
  return found[0]!.d;
};

test("the kustomization renders in order, every document passes its kind's schema with no unknown field, and lint passes every file", () => {
  assert.equal([...new Set(docs.map((x) => x.d.kind))], ["Namespace", "Secret", "PersistentVolumeClaim", "ConfigMap", "Deployment", "Service", "DestinationRule", "ServiceEntry", "EnvoyFilter", "VirtualService"]);
  for (const { file, d } of docs) assert.equal(problems(d, `${file} (${d.kind} ${d.metadata?.name})`), []);
  for (const f of [...new Set(docs.map((x) => x.file)), "alternatives/wasmplugin.yaml"]) assert.equal(lintFile(path.join(DIR, f)).problems, [], f);
  const wp = YAML.parse(readFileSync(path.join(DIR, "alternatives/wasmplugin.yaml"), "utf8")) as Obj;
  assert.equal(problems(wp, "wasmplugin"), []);
});

test("the checks refuse what a cluster would: an unknown field, a bad enum, a short sha256, an unknown container field", () => {
  const dr = structuredClone(one("DestinationRule", "orders"));
  dr.spec.trafficPolcy = {};
  assert.match(problems(dr, "dr").join("\n"), /dr\.spec\.trafficPolcy: not a field of DestinationRule\.spec/);
  const wp = YAML.parse(readFileSync(path.join(DIR, "alternatives/wasmplugin.yaml"), "utf8")) as Obj;
  assert.match(problems({ ...wp, spec: { ...wp.spec, failStrategy: "OPEN" } }, "wp").join("\n"), /failStrategy/);
  assert.match(problems({ ...wp, spec: { ...wp.spec, sha256: "abc" } }, "wp").join("\n"), /sha256 must match pattern/);
  const dep = structuredClone(one("Deployment"));
  dep.spec.template.spec.containers[0].livenesProbe = {};
  assert.match(problems(dep, "dep").join("\n"), /containers\[0\]\.livenesProbe: not a field of Container/);
});

test("lint decodes an EnvoyFilter MERGE patch as the partial message it is, and still refuses what Envoy would", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-lint-"));
  const patch = (value: unknown) => {
    const f = path.join(dir, "ef.yaml");
    writeFileSync(f, YAML.stringify({ apiVersion: "networking.istio.io/v1alpha3", kind: "EnvoyFilter", metadata: { name: "x" }, spec: { configPatches: [{ applyTo: "CLUSTER", patch: { operation: "MERGE", value } }] } }));
    return lintFile(f).problems;
  };
  assert.equal(patch({ connect_timeout: "1s" }), [], "a MERGE writes some fields: the cluster's name is not among them");
  assert.match(patch({ connect_timeout: "soon" }).join("\n"), /connect_timeout/);
  assert.match(patch({ load_assignment: { cluster_name: "c", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "1.2.3.4", port_value: -5 } } } }] }] } }).join("\n"), /port_value/);
});

test("the files agree: the controller runs the Istio data plane with the sidecars' cluster names, the VirtualService routes on the filter's header values", () => {
  const svc = one("Service", "shadowmesh-controller");
  const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
  const portNamed = (n: string) => svc.spec.ports.find((p: Obj) => p.name === n)?.port;
  const cm = one("ConfigMap", "shadowmesh-controller");
  const env = { SHADOWMESH_TOKEN: "a-test-token-of-32-characters-xx", SHADOWMESH_TELEMETRY_TOKEN: "a-telemetry-token-of-32-chars-xx", SAMPLE_KV_ADMIN_TOKEN: "a-kv-admin-token-of-32-chars-xxx" };
  const cfg = parseConfig(cm.data["controller.yaml"], "/etc/shadowmesh/controller.yaml", env, { checkFiles: false });
  assert.ok(cm.data["policy.yaml"] && cfg.policyFile === "/etc/shadowmesh/policy.yaml", "the policy ships in the same ConfigMap");
  assert.is(cfg.dataplane?.listener, null, "Istio: no listener of the controller's own");
  assert.is(cfg.dataplane?.wasmCluster, `outbound|${portNamed("http")}||${host}`);
  assert.is(cfg.dataplane?.telemetryCluster, `outbound|${portNamed("grpc-telemetry")}||${host}`);
  assert.is(new URL(cfg.dataplane!.wasmUrl!).port, String(portNamed("http")));
  assert.is(new URL(cfg.dataplane!.wasmUrl!).hostname, host);
  assert.is(cfg.stateDir, "/var/lib/shadowmesh");
  // The EnvoyFilter subscribes to the ECDS name the controller publishes, through the xDS port's cluster.
  const ef = one("EnvoyFilter");
  const value = ef.spec.configPatches[0].patch.value;
  assert.is(value.name, "shadowmesh");
  assert.is(value.config_discovery.config_source.api_config_source.grpc_services[0].envoy_grpc.cluster_name, `outbound|${portNamed("grpc-xds")}||${host}`);
  assert.is(one("DestinationRule", "shadowmesh-controller-xds").spec.trafficPolicy.portLevelSettings[0].port.number, portNamed("grpc-xds"));
  // The VirtualService: the shadow's header value routes to the shadow; everything else to the primary's subset.
  const comp = cfg.components[0]!.route;
  const vs = one("VirtualService");
  assert.equal(vs.spec.hosts, comp.hostnames);
  const [toShadow, toPrimary] = vs.spec.http;
  assert.is(toShadow.match[0].headers["x-shadowmesh-cluster"].exact, comp.shadow.name, "the header value the filter writes for the shadow");
  const [, port, subset, shadowHost] = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(comp.shadow.name)!;
  assert.equal(toShadow.route[0].destination, { host: shadowHost, port: { number: Number(port) }, ...(subset ? { subset } : {}) });
  const [, pPort, pSubset, pHost] = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(comp.primary.name)!;
  assert.not.ok(toPrimary.match, "the primary route takes everything the filter did not send to the shadow");
  assert.equal(toPrimary.route[0].destination, { host: pHost, subset: pSubset, port: { number: Number(pPort) } });
  assert.ok(one("DestinationRule", "orders").spec.subsets.some((s: Obj) => s.name === pSubset), "the primary's subset exists");
  assert.ok(one("ServiceEntry").spec.hosts.includes(shadowHost) && one("ServiceEntry").spec.ports.some((p: Obj) => p.number === Number(port)), "the shadow is in the mesh");
});

test("the Deployment: the image set, probes on real ports, volumes and secrets that exist, hardened", () => {
  const dep = one("Deployment");
  const pod = dep.spec.template.spec, c = pod.containers[0];
  assert.is(c.image, "ghcr.io/shadowmesh/controller:0.1.0");
  const ports = c.ports.map((p: Obj) => p.containerPort);
  assert.is(c.readinessProbe.httpGet.path, "/readyz");
  assert.ok(ports.includes(c.readinessProbe.httpGet.port) && ports.includes(c.startupProbe.httpGet.port));
  assert.is(c.livenessProbe.grpc.port, 18001, "grpc.health.v1 on the plaintext telemetry port");
  const svc = one("Service", "shadowmesh-controller");
  for (const p of svc.spec.ports) assert.ok(ports.includes(p.targetPort), `Service port ${p.name} targets a container port`);
  assert.equal(svc.spec.selector, dep.spec.template.metadata.labels);
  const volumes = new Set(pod.volumes.map((v: Obj) => v.name));
  for (const m of c.volumeMounts) assert.ok(volumes.has(m.name), `volume ${m.name} exists`);
  assert.is(pod.volumes.find((v: Obj) => v.name === "state").persistentVolumeClaim.claimName, one("PersistentVolumeClaim").metadata.name);
  assert.is(pod.volumes.find((v: Obj) => v.name === "config").configMap.name, one("ConfigMap").metadata.name);
  const secret = one("Secret", "shadowmesh-api");
  for (const e of c.env) assert.ok(Object.keys(secret.stringData).includes(e.valueFrom.secretKeyRef.key), `secret key ${e.valueFrom.secretKeyRef.key}`);
  assert.equal(c.args, ["controller", "--config", "/etc/shadowmesh/controller.yaml"]);
  assert.ok(c.volumeMounts.some((m: Obj) => m.mountPath === "/etc/shadowmesh"));
  assert.is(pod.securityContext.runAsNonRoot, true);
  assert.equal([c.securityContext.readOnlyRootFilesystem, c.securityContext.allowPrivilegeEscalation, c.securityContext.capabilities.drop], [true, false, ["ALL"]]);
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
  assert.is(dep.spec.strategy.type, "Recreate", "one writer of the state volume");
  assert.is(dep.spec.template.metadata.annotations["sidecar.istio.io/inject"], "false");
  // The Containerfile runs what the Deployment asks for, as the user the pod requires.
  const cf = readFileSync("deploy/Containerfile", "utf8");
  assert.match(cf, /^USER 65532:65532$/m);
  assert.is(pod.securityContext.runAsUser, 65532);
  assert.match(cf, /\/app\/wasm\/shadowmesh\.wasm|\.\/wasm\/shadowmesh\.wasm/);
  const cfg = parseConfig(one("ConfigMap").data["controller.yaml"], "/etc/shadowmesh/controller.yaml", { SHADOWMESH_TOKEN: "x".repeat(32), SHADOWMESH_TELEMETRY_TOKEN: "y".repeat(32), SAMPLE_KV_ADMIN_TOKEN: "z".repeat(32) }, { checkFiles: false });
  assert.is(cfg.dataplane?.wasm, "/app/wasm/shadowmesh.wasm", "the module where the image has it");
});

test("the WasmPlugin alternative: match on the client port, FAIL_OPEN, a sha256, and a configuration the real filter accepts", async () => {
  const wp = YAML.parse(readFileSync(path.join(DIR, "alternatives/wasmplugin.yaml"), "utf8")) as Obj;
  assert.is(wp.spec.failStrategy, "FAIL_OPEN");
  assert.equal(wp.spec.match, [{ mode: "CLIENT", ports: [{ number: 7001 }] }]);
  assert.match(wp.spec.sha256, /^[0-9a-f]{64}$/);
  assert.match(wp.spec.url, /^oci:\/\//);
  await PluginHost.create({ wasm: readFileSync("build/shadowmesh.wasm"), pluginConfig: JSON.stringify(wp.spec.pluginConfig) }).then((h) => h.shutdown());
});

/**
 * The HA overlay (deploy/istio/ha) as kustomize renders it: the base, then its own resources, then its
 * strategic-merge patches (lists of named objects merged by name; $patch: replace / delete).
 */
function renderHa(): { file: string; d: Obj }[] {
  const k = YAML.parse(readFileSync(path.join(DIR, "ha", "kustomization.yaml"), "utf8")) as { resources: string[]; patches: { path: string }[] };
  assert.equal(k.resources[0], "../", "the overlay starts from the base");
  let out = [...docs.map((x) => ({ file: x.file, d: structuredClone(x.d) }))];
  for (const f of k.resources.slice(1)) out.push(...YAML.parseAllDocuments(readFileSync(path.join(DIR, "ha", f), "utf8")).map((doc) => ({ file: `ha/${f}`, d: doc.toJSON() as Obj })));
  const merge = (a: any, b: any): any => {
    if (b && typeof b === "object" && b.$patch === "replace") { const { $patch: _, ...rest } = b; return rest; }
    if (Array.isArray(a) && Array.isArray(b)) {
      const r = [...a];
      for (const x of b) { const i = r.findIndex((y) => y?.name !== undefined && y.name === x?.name); if (i >= 0) r[i] = merge(r[i], x); else r.push(x); }
      return r;
    }
    if (a && b && typeof a === "object" && typeof b === "object") { const r = { ...a }; for (const [kk, v] of Object.entries(b)) r[kk] = kk in a ? merge(a[kk], v) : v; return r; }
    return b;
  };
  for (const pt of k.patches) for (const doc of YAML.parseAllDocuments(readFileSync(path.join(DIR, "ha", pt.path), "utf8"))) {
    const p = doc.toJSON() as Obj;
    const i = out.findIndex((x) => x.d.kind === p.kind && x.d.metadata?.name === p.metadata.name);
    assert.ok(i >= 0, `the patch targets ${p.kind} ${p.metadata.name}, which the base has`);
    if (p.$patch === "delete") out.splice(i, 1); else out[i] = { file: out[i]!.file, d: merge(out[i]!.d, p) };
  }
  return out;
}

test("the HA overlay: three replicas on a 3-member etcd, every document valid, the configuration the controller accepts, no state volume", () => {
  const ha = renderHa();
  for (const { file, d } of ha) assert.equal(problems(d, `${file} (${d.kind} ${d.metadata?.name})`), []);
  assert.ok(!ha.some((x) => x.d.kind === "PersistentVolumeClaim"), "the state volume claim is gone");
  const dep = ha.find((x) => x.d.kind === "Deployment")!.d;
  assert.is(dep.spec.replicas, 3);
  assert.is(dep.spec.strategy.type, "RollingUpdate");
  assert.equal(dep.spec.template.spec.volumes.find((v: Obj) => v.name === "state"), { name: "state", emptyDir: { sizeLimit: "256Mi" } });
  const c = dep.spec.template.spec.containers[0];
  assert.ok(c.env.some((e: Obj) => e.name === "POD_IP" && e.valueFrom.fieldRef.fieldPath === "status.podIP"));
  assert.ok(c.env.some((e: Obj) => e.name === "SHADOWMESH_TOKEN"), "the base's env is kept");
  const etcd = ha.find((x) => x.d.kind === "StatefulSet")!.d;
  const cm = ha.find((x) => x.d.kind === "ConfigMap")!.d;
  const cfg = parseConfig(cm.data["controller.yaml"], "/etc/shadowmesh/controller.yaml", { SHADOWMESH_TOKEN: "t".repeat(32), SHADOWMESH_TELEMETRY_TOKEN: "u".repeat(32), SAMPLE_KV_ADMIN_TOKEN: "v".repeat(32), POD_IP: "10.1.2.3" }, { checkFiles: false });
  assert.is(cfg.ha?.advertise, "10.1.2.3");
  assert.is(cfg.ha?.endpoints.length, etcd.spec.replicas);
  // The endpoints name the StatefulSet's pods through its headless Service.
  const svc = ha.find((x) => x.d.kind === "Service" && x.d.metadata.name === etcd.spec.serviceName)!.d;
  assert.is(svc.spec.clusterIP, "None");
  for (const [i, e] of cfg.ha!.endpoints.entries()) assert.is(e, `http://${etcd.metadata.name}-${i}.${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:2379`);
  assert.throws(() => parseConfig(cm.data["controller.yaml"], "c.yaml", { SHADOWMESH_TOKEN: "t".repeat(32), SHADOWMESH_TELEMETRY_TOKEN: "u".repeat(32), SAMPLE_KV_ADMIN_TOKEN: "v".repeat(32) }, { checkFiles: false }), /ha\.advertiseEnv: environment variable POD_IP is not set/);
  assert.equal(lintFile(path.join(DIR, "ha", "etcd.yaml")).problems, []);
});

test.run();
