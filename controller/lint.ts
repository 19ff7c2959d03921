// `shadowmesh lint FILE...`: checks the files a user writes or applies, each as what it is, without a
// controller or a cluster:
//   controller configuration   parsed as the controller does (every problem FILE:LINE:COL: field: reason)
//   policy file                parsed as the controller does
//   Envoy bootstrap            decoded strictly against Envoy's v3 Bootstrap (unknown fields refused),
//                              then its references: route clusters, the ADS cluster, load assignments
//   Kustomization              every resource it lists exists
//   Kubernetes/Istio manifests each document: apiVersion/kind/metadata.name present; Istio's
//                              networking kinds at their current version (networking.istio.io/v1); every
//                              EnvoyFilter patch decoded strictly as the Envoy message it patches in
// A file of another kind (a compose file, ...) is reported as skipped, never as passed.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { parseConfig } from "./config.js";
import { parsePolicy } from "./migration/policy.js";
import { checkEnvoyJson } from "./xds/envoy-json.js";
import { fsReason } from "./yaml-config.js";

/** notes: what lint could not judge here (environment variables the file names that are not set in this shell). */
export interface LintResult { file: string; kind: string; problems: string[]; skipped?: string; notes?: string[] }

type Obj = Record<string, any>;

/** Istio kinds served at networking.istio.io/v1 (Istio 1.22 and later); the older versions still load, but are deprecated. */
const ISTIO_V1 = new Set(["ServiceEntry", "DestinationRule", "VirtualService", "Gateway", "Sidecar", "WorkloadEntry", "WorkloadGroup"]);
/** What an EnvoyFilter patch's value is, by applyTo (the ones shadowmesh ships; others are not decoded). */
const PATCH_TYPES: Record<string, string> = {
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  LISTENER: "envoy.config.listener.v3.Listener",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
};

export function lintFile(file: string, env: NodeJS.ProcessEnv = process.env): LintResult {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) { return { file, kind: "file", problems: [`${file}: cannot read: ${fsReason(e)}`] }; }
  const docs = YAML.parseAllDocuments(text);
  const bad = docs.flatMap((d) => d.errors.map((e) => `${file}:${e.linePos?.[0]?.line ?? 0}:${e.linePos?.[0]?.col ?? 0}: ${e.message.split("\n")[0]}`));
  if (bad.length) return { file, kind: "YAML", problems: bad };
  const values = docs.map((d) => d.toJSON() as unknown).filter((v) => v !== null && v !== undefined);
  const first = values[0] as Obj | undefined;
  if (!first || typeof first !== "object" || Array.isArray(first)) return { file, kind: "YAML", problems: [], skipped: "not a mapping: nothing lint knows" };
  const problems: string[] = [];
  const attempt = (fn: () => void) => { try { fn(); } catch (e) { problems.push((e as Error).message); } };

  if (first.kind === "Kustomization") {
    // kubectl apply -k: every resource it lists must be there.
    (Array.isArray(first.resources) ? first.resources : []).forEach((r: unknown, i: number) => {
      if (typeof r !== "string") { problems.push(`${file}: resources[${i}]: expected a path`); return; }
      if (!/^[a-z]+:\/\//.test(r) && !existsSync(path.join(path.dirname(file), r))) problems.push(`${file}: resources[${i}]: ${r} does not exist next to the kustomization`);
    });
    return { file, kind: "Kustomization", problems };
  }
  if ("apiVersion" in first && "kind" in first) {
    values.forEach((v, i) => attempt(() => manifest(v as Obj, `${file}[${i}]`, problems)));
    return { file, kind: "Kubernetes manifests", problems };
  }
  if ("static_resources" in first || "dynamic_resources" in first || "staticResources" in first || "dynamicResources" in first) {
    attempt(() => bootstrap(first, file, problems));
    return { file, kind: "Envoy bootstrap", problems };
  }
  if ("listen" in first || (Array.isArray(first.components) && "api" in first)) {
    // The secrets' variables belong to the controller's environment, not to this shell: a stand-in
    // value lets the rest be checked, and the result says which were missing.
    const unset = new Set<string>();
    const lintEnv = new Proxy(env, { get: (t, k) => { if (typeof k !== "string" || t[k] !== undefined) return t[k as string]; unset.add(k); return `lint-stand-in-${"x".repeat(32)}`; } });
    attempt(() => parseConfig(text, file, lintEnv, { checkFiles: false }));
    return { file, kind: "controller configuration", problems, ...(unset.size ? { notes: [`not set in this environment (the controller needs them): ${[...unset].join(", ")}`] } : {}) };
  }
  if ("defaults" in first || (first.components && typeof first.components === "object" && !Array.isArray(first.components))) {
    attempt(() => parsePolicy(text, file));
    return { file, kind: "policy", problems };
  }
  if ("services" in first) return { file, kind: "compose file", problems: [], skipped: "a compose file: lint the controller configuration and bootstraps it mounts" };
  return { file, kind: "YAML", problems: [], skipped: "neither a controller configuration, a policy, an Envoy bootstrap nor a Kubernetes manifest" };
}

function bootstrap(b: Obj, where: string, problems: string[]): void {
  checkEnvoyJson("envoy.config.bootstrap.v3.Bootstrap", b, where);
  const clusters: Obj[] = b.static_resources?.clusters ?? [];
  const names = new Set(clusters.map((c) => c.name));
  if (names.size !== clusters.length) problems.push(`${where}: static_resources.clusters: cluster names must be unique`);
  for (const c of clusters) if (c.load_assignment && c.load_assignment.cluster_name !== c.name) problems.push(`${where}: cluster ${c.name}: load_assignment.cluster_name is ${JSON.stringify(c.load_assignment.cluster_name)}, not the cluster's name`);
  for (const g of b.dynamic_resources?.ads_config?.grpc_services ?? []) {
    const n = g.envoy_grpc?.cluster_name;
    if (n !== undefined && !names.has(n)) problems.push(`${where}: dynamic_resources.ads_config: cluster ${n} is not a static cluster`);
  }
  const walk = (o: unknown, path: string): void => {
    if (Array.isArray(o)) { o.forEach((x, i) => walk(x, `${path}[${i}]`)); return; }
    if (!o || typeof o !== "object") return;
    const r = o as Obj;
    if (r.route && typeof r.route === "object" && typeof r.route.cluster === "string" && !names.has(r.route.cluster)) problems.push(`${where}: ${path}.route.cluster: ${r.route.cluster} is not a static cluster`);
    for (const [k, v] of Object.entries(r)) walk(v, path ? `${path}.${k}` : k);
  };
  walk(b.static_resources?.listeners ?? [], "static_resources.listeners");
}

function manifest(m: Obj, where: string, problems: string[]): void {
  if (typeof m.apiVersion !== "string" || typeof m.kind !== "string") { problems.push(`${where}: apiVersion and kind are required`); return; }
  if (typeof m.metadata?.name !== "string" || !m.metadata.name) problems.push(`${where}: ${m.kind}: metadata.name is required`);
  const at = `${where} (${m.kind} ${m.metadata?.name ?? "?"})`;
  if (ISTIO_V1.has(m.kind) && m.apiVersion.startsWith("networking.istio.io/") && m.apiVersion !== "networking.istio.io/v1") {
    problems.push(`${at}: apiVersion ${m.apiVersion} is deprecated: ${m.kind} is served as networking.istio.io/v1 (Istio 1.22+)`);
  }
  if (m.kind === "EnvoyFilter") {
    (m.spec?.configPatches ?? []).forEach((p: Obj, i: number) => {
      const type = PATCH_TYPES[p.applyTo];
      if (!type || p.patch?.value === undefined) return;
      try { checkEnvoyJson(type, p.patch.value, `${at}.spec.configPatches[${i}].patch.value`, { anys: [] }, { partial: p.patch.operation === "MERGE" }); } catch (e) { problems.push((e as Error).message); }
    });
  }
}
