// Strict checking of Envoy configuration written as YAML/JSON (bootstraps, EnvoyFilter patches)
// against Envoy's v3 protos, the way Envoy's own loader reads it: decoded by @bufbuild/protobuf's
// fromJson (proto3 JSON: snake_case or camelCase names, Any as {"@type": URL, ...fields} resolved in
// the registry of envoy-registry.ts, Duration as "1.5s", wrappers as bare values, Struct/Value as any
// JSON, enums by name or number, integers in range, at most one field of a oneof, unknown fields
// refused as with Envoy's --reject-unknown-dynamic-fields), then the protoc-gen-validate rules Envoy
// applies after decoding (envoy-validate.ts) checked on every field, Any contents included. Every error
// is an EnvoyConfigError naming the path: fromJson says what is wrong but not where, so when it refuses
// a document, locate() walks it against the descriptors and asks fromJson about one field at a time.
// With { partial: true } (a fragment merged into a resource, as an EnvoyFilter MERGE patch) fields it
// does not write are not required. Stricter than Envoy in one way: an enum number that names no value
// is refused on every field, not only where PGV's defined_only is set (Envoy's loader keeps such a
// number; no configuration means it).
import { fromBinary, fromJson, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { hasCustomJsonRepresentation, isWrapperDesc, type Any } from "@bufbuild/protobuf/wkt";
import { envoyRegistry } from "./envoy-registry.js";
import { mapViolation, messageRules, repeatedViolation, requiresPresence, violation, type Rules } from "./envoy-validate.js";

export class EnvoyConfigError extends Error {}

/** Every Any met while checking, by path: callers check references (clusters, filters) with them. */
export interface Visited { anys: { path: string; type: string; value: Record<string, unknown> }[] }

const NOT_LOADED = "(not in Envoy's v3 protos loaded by the controller)";

export interface CheckOptions {
  /** A fragment merged into a resource (an EnvoyFilter MERGE patch): rules that need a field set or non-empty
   *  (required fields and oneofs, min_len, min_items...) are judged only on the fields it writes. */
  partial?: boolean;
}

export function checkEnvoyJson(typeName: string, obj: unknown, where: string, visited: Visited = { anys: [] }, opts: CheckOptions = {}): Visited {
  const registry = envoyRegistry();
  const desc = registry.getMessage(typeName.replace(/^\./, ""));
  if (!desc) throw new EnvoyConfigError(`${where}: unknown type ${typeName} ${NOT_LOADED}`);
  let msg: Record<string, unknown>;
  try {
    msg = fromJson(desc, obj as JsonValue, { registry }) as unknown as Record<string, unknown>;
  } catch (e) {
    locate(desc, obj, where);
    throw new EnvoyConfigError(`${where}: ${reason(e)}`); // not narrowed down: fromJson's own words
  }
  walk(desc, msg, obj, where, { ...visited, partial: opts.partial === true });
  return visited;
}

const fail = (at: string, why: string): never => { throw new EnvoyConfigError(`${at}: ${why}`); };
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const reason = (e: unknown): string => String((e as Error)?.message ?? e).replace(/^cannot decode .*? from JSON:? /, "");
const enumNames = (f: DescField): string => f.enum!.values.map((v) => v.name).join(", ");
const fieldOf = (desc: DescMessage, key: string): DescField | undefined => desc.fields.find((f) => f.name === key || f.jsonName === key);

// ---- where fromJson's refusal is ----

function locate(desc: DescMessage, json: unknown, at: string): void {
  const t = desc.typeName;
  if (t === "google.protobuf.Any") return locateAny(json, at);
  if (t.startsWith("google.protobuf.")) {
    try { fromJson(desc, json as JsonValue); } catch (e) {
      if (t === "google.protobuf.Duration") fail(at, `a Duration is a string like "1.5s", got ${JSON.stringify(json)}`);
      fail(at, `not a ${t}: ${reason(e)}`);
    }
    return;
  }
  if (!isObject(json)) fail(at, `must be an object (${t})`);
  const seen = new Map<DescField, string>();
  const oneofs = new Map<string, string>();
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const p = `${at}.${key}`;
    const f = fieldOf(desc, key);
    if (!f) fail(p, `no such field in ${t}`);
    if (seen.has(f!)) fail(p, `the same field as ${seen.get(f!)}`);
    seen.set(f!, key);
    if (f!.oneof) {
      const other = oneofs.get(f!.oneof.name);
      if (other) fail(p, `only one of oneof ${f!.oneof.name} may be set (${other} is set too)`);
      oneofs.set(f!.oneof.name, key);
    }
    if (value === null) continue;
    const field = f!;
    const leaf = (wrapped: unknown, x: unknown, xp: string) => {
      try { fromJson(desc, { [key]: wrapped } as JsonValue, { registry: envoyRegistry() }); } catch (e) {
        if (field.enum) fail(xp, `${JSON.stringify(x)} is not a value of ${field.enum.typeName} (${enumNames(field)})`);
        fail(xp, reason(e));
      }
    };
    if (field.fieldKind === "message") locate(field.message, value, p);
    else if (field.fieldKind === "list") {
      if (!Array.isArray(value)) fail(p, "must be a list");
      (value as unknown[]).forEach((x, i) => field.listKind === "message" ? locate(field.message!, x, `${p}[${i}]`) : leaf([x], x, `${p}[${i}]`));
    } else if (field.fieldKind === "map") {
      if (!isObject(value)) fail(p, "must be a map");
      for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
        const kp = `${p}[${JSON.stringify(k)}]`;
        if (field.mapKind === "message") locate(field.message!, x, kp); else leaf({ [k]: x }, x, kp);
      }
    } else leaf(value, value, p);
  }
}

function locateAny(json: unknown, at: string): void {
  if (!isObject(json)) fail(at, `an Any is an object with "@type", got ${JSON.stringify(json)}`);
  const { "@type": url, ...rest } = json as Record<string, unknown>;
  if (typeof url !== "string" || !url.includes("/")) fail(`${at}.@type`, `an Any needs "@type": "type.googleapis.com/<message>"`);
  const name = (url as string).slice((url as string).lastIndexOf("/") + 1);
  const inner = envoyRegistry().getMessage(name);
  if (!inner) fail(`${at}.@type`, `unknown type ${name} ${NOT_LOADED}`);
  // A type with its own JSON form (Duration, a wrapper, Struct...) carries it under "value".
  if (hasCustomJsonRepresentation(inner!)) locate(inner!, rest.value, `${at}.value`);
  else locate(inner!, rest, at);
}

// ---- the rules Envoy applies after decoding, and every Any ----

type Walk = Visited & { partial: boolean };

function walk(desc: DescMessage, msg: Record<string, any>, json: unknown, at: string, v: Walk): void {
  if (desc.typeName === "google.protobuf.Any") return walkAny(msg as unknown as Any, json, at, v);
  if (desc.typeName.startsWith("google.protobuf.")) return; // Duration, wrappers, Struct...: fromJson judged them
  const rules = messageRules(desc.typeName);
  const obj = isObject(json) ? json : {};
  if (!rules.disabled && !v.partial) {
    for (const o of desc.oneofs) {
      if (rules.requiredOneofs.has(o.name) && msg[o.localName]?.case === undefined) {
        fail(at, `one of ${o.fields.map((f) => f.name).join(", ")} is required (oneof ${o.name}, validate.required)`);
      }
    }
  }
  for (const f of desc.fields) {
    const key = f.name in obj ? f.name : f.jsonName in obj ? f.jsonName : undefined;
    if (key === undefined && v.partial) continue;
    const p = `${at}.${key ?? f.name}`;
    const r = rules.disabled ? undefined : rules.fields.get(f.name);
    const sub = key === undefined ? undefined : obj[key];
    let value: unknown, set: boolean;
    if (f.oneof) {
      const o = msg[f.oneof.localName] as { case?: string; value?: unknown } | undefined;
      set = o?.case === f.localName;
      value = set ? o!.value : undefined;
    } else {
      value = msg[f.localName];
      set = value !== undefined;
    }
    if (f.fieldKind === "list") {
      const items = value as unknown[];
      if (r?.repeated) { const why = repeatedViolation(r.repeated, items); if (why) fail(p, why); }
      items.forEach((x, i) => one(f, x, Array.isArray(sub) ? sub[i] : undefined, `${p}[${i}]`, r?.repeated?.items, v));
    } else if (f.fieldKind === "map") {
      const m = value as Record<string, unknown>;
      if (r?.map) { const why = mapViolation(r.map, Object.keys(m).length); if (why) fail(p, why); }
      for (const [k, x] of Object.entries(m)) {
        const kp = `${p}[${JSON.stringify(k)}]`;
        const kwhy = r?.map?.keys ? violation(r.map.keys, k) : undefined;
        if (kwhy) fail(kp, `the key ${kwhy}`);
        one(f, x, isObject(sub) ? sub[k] : undefined, kp, r?.map?.values, v);
      }
    } else {
      if (!set) {
        if (f.oneof) continue; // a oneof's rules apply to the field that is set (validate.required covers none)
        const need = requiresPresence(r);
        if (need) fail(p, `is required (${need})`);
        // Only proto3's implicit scalars and enums have a value (their zero) when not set.
        if (f.fieldKind === "message" || f.presence !== 2 /* IMPLICIT */) continue;
      }
      one(f, value, sub, p, r, v);
    }
  }
}

/** One value of a field (the field itself, a list item or a map value). */
function one(f: DescField, x: unknown, json: unknown, p: string, r: Rules | undefined, v: Walk): void {
  const kind = f.fieldKind === "list" ? f.listKind : f.fieldKind === "map" ? f.mapKind : f.fieldKind;
  if (kind === "enum" && !f.enum!.values.some((e) => e.number === x)) {
    fail(p, `${JSON.stringify(x)} is not a value of ${f.enum!.typeName} (${enumNames(f)})${r?.enum?.defined_only ? " (enum.defined_only)" : ""}`);
  }
  if (kind === "message") {
    const m = f.message!;
    if (isWrapperDesc(m) && isObject(x)) x = x.value; // singular wrappers come unboxed, list items do not
    if (r) { const why = violation(r, x, f.enum); if (why) fail(p, why); }
    if (!isWrapperDesc(m) && r?.message?.skip !== true) walk(m, x as Record<string, any>, json, p, v);
    return;
  }
  if (r) { const why = violation(r, x, f.enum); if (why) fail(p, why); }
}

function walkAny(any: Any, json: unknown, at: string, v: Walk): void {
  // fromJson reads {} as an Any of no type; Envoy can do nothing with it.
  if (!any.typeUrl) fail(`${at}.@type`, `an Any needs "@type": "type.googleapis.com/<message>"`);
  const inner = envoyRegistry().getMessage(any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1))!;
  const { "@type": _t, ...rest } = isObject(json) ? json : {};
  const msg = fromBinary(inner, any.value) as unknown as Record<string, any>;
  if (hasCustomJsonRepresentation(inner)) walk(inner, msg, rest.value, `${at}.value`, v);
  else walk(inner, msg, rest, at, v);
  v.anys.push({ path: at, type: inner.typeName, value: rest });
}
