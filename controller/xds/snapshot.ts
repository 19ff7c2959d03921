// An immutable, versioned set of xDS resources for one node group. Building one packs every
// resource once (strict schema check), hashes it for its per-resource version, and pre-encodes the
// bytes both response kinds need, so fanning a version out to many streams costs a concatenation,
// not a serialization. consistencyErrors() is what the cache checks before it publishes.
import { createHash } from "node:crypto";
import protobuf from "protobufjs";
import { TYPE, TYPE_URLS, TYPE_NAME, pack, unpack, type TypeUrl } from "../../protocol/protos.js";

export interface EncodedResource {
  readonly name: string;
  /** Content hash: changes exactly when the resource's bytes change. */
  readonly version: string;
  readonly object: Readonly<Record<string, unknown>>;
  /** `resources` entry (field 2, an Any) of a DiscoveryResponse. */
  readonly sotwEntry: Uint8Array;
  /** `resources` entry (field 2, a Resource) of a DeltaDiscoveryResponse. */
  readonly deltaEntry: Uint8Array;
}

export interface SnapshotResources {
  listeners?: Record<string, unknown>[];
  routes?: Record<string, unknown>[];
  clusters?: Record<string, unknown>[];
  endpoints?: Record<string, unknown>[];
  extensions?: Record<string, unknown>[];
}

const MESSAGE: Record<TypeUrl, string> = {
  [TYPE.listener]: "envoy.config.listener.v3.Listener",
  [TYPE.route]: "envoy.config.route.v3.RouteConfiguration",
  [TYPE.cluster]: "envoy.config.cluster.v3.Cluster",
  [TYPE.endpoint]: "envoy.config.endpoint.v3.ClusterLoadAssignment",
  [TYPE.extension]: "envoy.config.core.v3.TypedExtensionConfig",
};

const KEY: Record<TypeUrl, keyof SnapshotResources> = {
  [TYPE.listener]: "listeners", [TYPE.route]: "routes", [TYPE.cluster]: "clusters", [TYPE.endpoint]: "endpoints", [TYPE.extension]: "extensions",
};

const nameOf = (type: TypeUrl, o: Record<string, unknown>) => String(type === TYPE.endpoint ? o.cluster_name : o.name);

function field(no: number, bytes: Uint8Array): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((no << 3) | 2).bytes(bytes);
  return w.finish();
}

function encodeAny(typeUrl: string, value: Uint8Array): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(10).string(typeUrl).uint32(18).bytes(value);
  return w.finish();
}

function encodeDeltaResource(name: string, version: string, any: Uint8Array): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(10).string(version).uint32(18).bytes(any).uint32(26).string(name);
  return w.finish();
}

export class SnapshotError extends Error {}

export class Snapshot {
  private readonly byType = new Map<TypeUrl, ReadonlyMap<string, EncodedResource>>();
  private readonly typeVersions = new Map<TypeUrl, string>();
  private readonly sotwCache = new Map<string, { bytes: Uint8Array; count: number }>();

  private constructor(readonly version: string) {}

  /** Packs and encodes every resource; throws (naming type, resource and field) on a schema error or duplicate name. */
  static build(version: string, res: SnapshotResources): Snapshot {
    if (!version) throw new SnapshotError("snapshot version must not be empty");
    const s = new Snapshot(version);
    for (const type of TYPE_URLS) {
      const list = res[KEY[type]] ?? [];
      const map = new Map<string, EncodedResource>();
      for (const obj of list) {
        const name = nameOf(type, obj);
        if (!name || name === "undefined") throw new SnapshotError(`${TYPE_NAME[type]}: a resource has no name`);
        if (map.has(name)) throw new SnapshotError(`${TYPE_NAME[type]} ${name}: defined twice`);
        const any = pack(MESSAGE[type], obj, `${TYPE_NAME[type]} ${name}`);
        const hash = createHash("sha256").update(any.value).digest("hex").slice(0, 16);
        const anyBytes = encodeAny(any.type_url, any.value);
        map.set(name, Object.freeze({
          name, version: hash, object: Object.freeze(obj),
          sotwEntry: field(2, anyBytes),
          deltaEntry: field(2, encodeDeltaResource(name, hash, anyBytes)),
        }));
      }
      s.byType.set(type, map);
      const h = createHash("sha256");
      for (const name of [...map.keys()].sort()) h.update(name).update("\0").update(map.get(name)!.version).update("\0");
      s.typeVersions.set(type, map.size === 0 ? "empty" : h.digest("hex").slice(0, 16));
    }
    return s;
  }

  resources(type: TypeUrl): ReadonlyMap<string, EncodedResource> { return this.byType.get(type)!; }

  /** Changes exactly when some resource of the type changes (or one is added or removed). */
  typeVersion(type: TypeUrl): string { return this.typeVersions.get(type)!; }

  /**
   * The concatenated `resources` entries for `names` (every resource when names is "*"),
   * computed once per distinct subscription and shared by every stream with it.
   */
  sotwBody(type: TypeUrl, names: ReadonlySet<string> | "*"): { bytes: Uint8Array; count: number } {
    // Keyed by the subscription itself, so a stream whose body is cached selects nothing again.
    const key = `${type}|${names === "*" ? "*" : [...names].sort().join("\0")}`;
    let body = this.sotwCache.get(key);
    if (!body) {
      const map = this.resources(type);
      const selected = names === "*" ? [...map.values()] : [...names].sort().map((n) => map.get(n)).filter((r): r is EncodedResource => !!r);
      body = { bytes: Buffer.concat(selected.map((r) => r.sotwEntry)), count: selected.length };
      if (this.sotwCache.size < 1024) this.sotwCache.set(key, body);
    }
    return body;
  }

  /** What must hold before publishing: references resolve, EDS clusters have endpoints. */
  consistencyErrors(): string[] {
    const errors: string[] = [];
    const clusters = this.resources(TYPE.cluster), routes = this.resources(TYPE.route);
    const endpoints = this.resources(TYPE.endpoint), extensions = this.resources(TYPE.extension);
    for (const r of routes.values()) {
      for (const vh of (r.object.virtual_hosts as Record<string, unknown>[] | undefined) ?? []) {
        for (const rt of (vh.routes as Record<string, unknown>[] | undefined) ?? []) {
          const action = rt.route as Record<string, unknown> | undefined;
          const refs: string[] = [];
          if (action?.cluster) refs.push(String(action.cluster));
          const wc = action?.weighted_clusters as { clusters?: { name: string }[] } | undefined;
          for (const c of wc?.clusters ?? []) refs.push(c.name);
          for (const ref of refs) {
            if (!clusters.has(ref)) errors.push(`RDS ${r.name}: virtual host ${String(vh.name)} routes to cluster ${ref}, which CDS does not define`);
          }
        }
      }
    }
    for (const c of clusters.values()) {
      if (c.object.type !== "EDS") continue;
      const la = endpoints.get(c.name);
      const count = ((la?.object.endpoints as { lb_endpoints?: unknown[] }[] | undefined) ?? []).reduce((n, l) => n + (l.lb_endpoints?.length ?? 0), 0);
      if (!la) errors.push(`CDS ${c.name}: EDS cluster without a ClusterLoadAssignment`);
      else if (count === 0) errors.push(`EDS ${c.name}: no endpoints`);
    }
    for (const l of this.resources(TYPE.listener).values()) {
      for (const hcm of hcmsOf(l.object)) {
        const rds = hcm.rds as { route_config_name?: string } | undefined;
        if (rds?.route_config_name && !routes.has(rds.route_config_name)) {
          errors.push(`LDS ${l.name}: uses route configuration ${rds.route_config_name}, which RDS does not define`);
        }
        for (const f of (hcm.http_filters as Record<string, unknown>[] | undefined) ?? []) {
          if (f.config_discovery && !extensions.has(String(f.name))) {
            errors.push(`LDS ${l.name}: filter ${String(f.name)} is discovered over ECDS, which does not define it`);
          }
        }
      }
    }
    return errors;
  }
}

/** The HTTP connection managers inside a listener (api_listener or filter chains), decoded. */
function hcmsOf(listener: Readonly<Record<string, unknown>>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const api = (listener.api_listener as { api_listener?: { type_url: string; value: Uint8Array } } | undefined)?.api_listener;
  if (api) out.push(unpack(api));
  for (const fc of (listener.filter_chains as { filters?: { typed_config?: { type_url: string; value: Uint8Array } }[] }[] | undefined) ?? []) {
    for (const f of fc.filters ?? []) {
      if (f.typed_config?.type_url.endsWith("HttpConnectionManager")) out.push(unpack(f.typed_config));
    }
  }
  return out;
}
