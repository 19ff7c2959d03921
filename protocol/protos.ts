// Envoy's v3 protos (shipped by @grpc/grpc-js-xds under deps/) loaded once into a protobufjs Root,
// the xDS type URLs, and strict packing into google.protobuf.Any: with keepCase, protobufjs drops
// unknown (e.g. camelCase) keys silently, so pack() checks every key against the schema first and
// names the path of the first one that does not belong.
import protobuf from "protobufjs";
import path from "node:path";
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export const TYPE = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  extension: "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
} as const;
export type TypeUrl = (typeof TYPE)[keyof typeof TYPE];
export const TYPE_URLS: readonly TypeUrl[] = [TYPE.listener, TYPE.route, TYPE.cluster, TYPE.endpoint, TYPE.extension];
/** Short names for logs and status. */
export const TYPE_NAME: Record<TypeUrl, string> = {
  [TYPE.listener]: "LDS", [TYPE.route]: "RDS", [TYPE.cluster]: "CDS", [TYPE.endpoint]: "EDS", [TYPE.extension]: "ECDS",
};
/** LDS and CDS are wildcard types: an empty first subscription means "everything". */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE.listener, TYPE.cluster]);

export function isTypeUrl(t: string): t is TypeUrl { return (TYPE_URLS as readonly string[]).includes(t); }

const PROTO_FILES = [
  "envoy/service/discovery/v3/ads.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/wasm/v3/wasm.proto",
  "envoy/config/core/v3/extension.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "google/protobuf/wrappers.proto",
];

export const PROTO_INCLUDE_DIRS = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) =>
  path.join(path.dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps", d));

let root: protobuf.Root | undefined;

/** The Root with every proto above (loaded once, on first use: ~0.1 s here). */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const desc = require("protobufjs/google/protobuf/descriptor.json");
  protobuf.common("descriptor", desc.nested.google.nested.protobuf.nested);
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (target.startsWith("google/protobuf/")) return target; // protobufjs' bundled well-known types
    for (const d of PROTO_INCLUDE_DIRS) {
      const p = path.join(d, target);
      if (fs.existsSync(p)) return p;
    }
    return target;
  };
  r.loadSync(PROTO_FILES, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

export function lookupType(fullName: string): protobuf.Type {
  return envoyRoot().lookupType(fullName);
}

export class ResourceSchemaError extends Error {}

/** An Any as the wire wants it: the packed message's bytes. */
export interface PackedAny { type_url: string; value: Uint8Array }

export function isPackedAny(v: unknown): v is PackedAny {
  return typeof v === "object" && v !== null && typeof (v as PackedAny).type_url === "string" && (v as PackedAny).value instanceof Uint8Array;
}

/** Checks obj against type: every key a field (snake_case), nested messages recursively, enums by name or number. */
export function checkFields(type: protobuf.Type, obj: unknown, where: string): void {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new ResourceSchemaError(`${where}: must be an object for ${type.fullName.slice(1)}`);
  if (type.fullName === ".google.protobuf.Any") {
    if (!isPackedAny(obj)) throw new ResourceSchemaError(`${where}: an Any must be packed with pack() (type_url and value bytes)`);
    return;
  }
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    const field = type.fields[key];
    const p = `${where}.${key}`;
    if (!field) {
      const hint = /[A-Z]/.test(key) ? " (fields are snake_case)" : "";
      throw new ResourceSchemaError(`${p}: no such field in ${type.fullName.slice(1)}${hint}`);
    }
    if (value === undefined || value === null) continue;
    field.resolve();
    const check = (v: unknown, at: string) => {
      if (field.resolvedType instanceof protobuf.Type) checkFields(field.resolvedType, v, at);
      else if (field.resolvedType instanceof protobuf.Enum) {
        const e = field.resolvedType;
        if (!(typeof v === "string" ? v in e.values : typeof v === "number" && Object.values(e.values).includes(v))) {
          throw new ResourceSchemaError(`${at}: ${JSON.stringify(v)} is not a value of ${e.fullName.slice(1)}`);
        }
      }
    };
    if (field.map) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) check(v, `${p}[${JSON.stringify(k)}]`);
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new ResourceSchemaError(`${p}: must be a list`);
      value.forEach((v, i) => check(v, `${p}[${i}]`));
    } else check(value, p);
  }
}

/** Encodes obj as typeName (checked strictly) and wraps it as an Any. */
export function pack(typeName: string, obj: Record<string, unknown>, where = typeName.split(".").pop()!): PackedAny {
  const type = lookupType(typeName);
  checkFields(type, obj, where);
  const msg = type.fromObject(obj);
  return { type_url: `type.googleapis.com/${typeName}`, value: type.encode(msg).finish() };
}

/** Decodes an Any (for inspection and tests). */
export function unpack(any: { type_url: string; value: Uint8Array }): Record<string, unknown> {
  const name = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
  const type = lookupType(name);
  return type.toObject(type.decode(any.value), { longs: String, enums: String, bytes: Buffer, defaults: false }) as Record<string, unknown>;
}
