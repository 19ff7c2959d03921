// Strict checking of Envoy configuration written as YAML/JSON (bootstraps, EnvoyFilter patches)
// against Envoy's v3 protos, the way Envoy's own loader reads it: proto3 JSON names (snake_case or
// the camelCase json_name), google.protobuf.Any as {"@type": URL, ...fields} resolved and checked in
// turn, Duration as "1.5s", wrappers as bare values, Struct/Value as any JSON, enums by name, at most
// one field of a oneof. An unknown field is an error naming its path, as with Envoy's
// --reject-unknown-dynamic-fields. Every Any's type must be one of the protos loaded in protos.ts.
import protobuf from "protobufjs";
import { envoyRoot } from "./protos.js";

export class EnvoyConfigError extends Error {}

const WRAPPERS = new Set(["DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue", "StringValue", "BytesValue"].map((n) => `.google.protobuf.${n}`));
const INT = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32", "int64", "uint64", "sint64", "fixed64", "sfixed64"]);

/** Every Any met while checking, by path: callers check references (clusters, filters) with them. */
export interface Visited { anys: { path: string; type: string; value: Record<string, unknown> }[] }

export function checkEnvoyJson(typeName: string, obj: unknown, where: string, visited: Visited = { anys: [] }): Visited {
  const t = lookup(typeName, where);
  checkMessage(t, obj, where, visited);
  return visited;
}

function lookup(name: string, where: string): protobuf.Type {
  try { return envoyRoot().lookupType(name.replace(/^\./, "")); } catch { throw new EnvoyConfigError(`${where}: unknown type ${name} (not in Envoy's v3 protos loaded by the controller)`); }
}

function checkMessage(type: protobuf.Type, obj: unknown, where: string, v: Visited): void {
  const full = type.fullName;
  if (WRAPPERS.has(full)) { checkScalar(type.fields.value!, obj, where); return; }
  if (full === ".google.protobuf.Duration") {
    if (typeof obj !== "string" || !/^-?\d+(\.\d{1,9})?s$/.test(obj)) throw new EnvoyConfigError(`${where}: a Duration is a string like "1.5s", got ${JSON.stringify(obj)}`);
    return;
  }
  if (full === ".google.protobuf.Struct" || full === ".google.protobuf.Value" || full === ".google.protobuf.ListValue") return;
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new EnvoyConfigError(`${where}: must be an object (${full.slice(1)})`);
  const rec = obj as Record<string, unknown>;
  if (full === ".google.protobuf.Any") {
    const url = rec["@type"];
    if (typeof url !== "string" || !url.includes("/")) throw new EnvoyConfigError(`${where}.@type: an Any needs "@type": "type.googleapis.com/<message>"`);
    const inner = lookup(url.slice(url.lastIndexOf("/") + 1), `${where}.@type`);
    const { "@type": _t, ...rest } = rec;
    // A well-known type inside an Any carries its JSON form under "value".
    if (WRAPPERS.has(inner.fullName) || inner.fullName === ".google.protobuf.Duration" || inner.fullName === ".google.protobuf.Struct") {
      checkMessage(inner, rest.value, `${where}.value`, v);
    } else checkMessage(inner, rest, where, v);
    v.anys.push({ path: where, type: inner.fullName.slice(1), value: rest });
    return;
  }
  const oneofSeen = new Map<string, string>();
  for (const [key, value] of Object.entries(rec)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => jsonName(f) === key);
    const p = `${where}.${key}`;
    if (!field) throw new EnvoyConfigError(`${p}: no such field in ${full.slice(1)}`);
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other) throw new EnvoyConfigError(`${p}: only one of oneof ${field.partOf.name} may be set (${other} is set too)`);
      oneofSeen.set(field.partOf.name, key);
    }
    if (value === null) continue;
    field.resolve();
    const one = (x: unknown, at: string) => {
      if (field.resolvedType instanceof protobuf.Type) checkMessage(field.resolvedType, x, at, v);
      else if (field.resolvedType instanceof protobuf.Enum) {
        if (!(typeof x === "string" ? x in field.resolvedType.values : Number.isInteger(x))) {
          throw new EnvoyConfigError(`${at}: ${JSON.stringify(x)} is not a value of ${field.resolvedType.fullName.slice(1)} (${Object.keys(field.resolvedType.values).join(", ")})`);
        }
      } else checkScalar(field, x, at);
    };
    if (field.map) {
      if (typeof value !== "object" || Array.isArray(value)) throw new EnvoyConfigError(`${p}: must be a map`);
      for (const [k, x] of Object.entries(value as Record<string, unknown>)) one(x, `${p}[${JSON.stringify(k)}]`);
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new EnvoyConfigError(`${p}: must be a list`);
      value.forEach((x, i) => one(x, `${p}[${i}]`));
    } else one(value, p);
  }
}

function jsonName(f: protobuf.Field): string { return f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()); }

function checkScalar(field: protobuf.Field, x: unknown, at: string): void {
  const t = field.type;
  const ok = t === "string" ? typeof x === "string"
    : t === "bool" ? typeof x === "boolean"
    : t === "bytes" ? typeof x === "string"
    : INT.has(t) ? (typeof x === "number" && Number.isInteger(x)) || (typeof x === "string" && /^-?\d+$/.test(x))
    : t === "double" || t === "float" ? typeof x === "number" : false;
  if (!ok) throw new EnvoyConfigError(`${at}: expected ${t}, got ${JSON.stringify(x)}`);
}
