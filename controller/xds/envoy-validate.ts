// The protoc-gen-validate (PGV) rules of Envoy's protos, as Envoy applies them to a configuration after
// decoding it: read from protobufjs' reflection of the protos in protos.ts (`parsedOptions` of each
// field, `(validate.rules)`; `(validate.required)` of each oneof; `(validate.disabled)` of a message),
// and each rule judged on one decoded value (@bufbuild/protobuf's representation: bigint for 64-bit
// integers, Duration as {seconds, nanos}, Any as {typeUrl, value}). envoy-json.ts walks the message
// and calls these with the field path. Implemented: message.required/skip; string min_len, max_len,
// len, min_bytes, max_bytes, len_bytes, const, prefix, suffix, contains, not_contains, in, not_in,
// pattern, well_known_regex (HTTP header name/value, strict or not), ignore_empty; bytes min_len,
// max_len, len; bool.const; every integer and floating type's const, lt, lte, gt, gte (with PGV's
// inside/outside range semantics when both bounds are set), in, not_in, ignore_empty; enum const,
// defined_only, in, not_in; duration required, const, lt, lte, gt, gte, in, not_in; any required, in,
// not_in; repeated min_items, max_items, unique, items; map min_pairs, max_pairs, keys, values.
// Not implemented (no Envoy field loaded here uses them): string well_known email/hostname/ip/uri/
// address/uuid, timestamp rules.
import protobuf from "protobufjs";
import type { DescEnum } from "@bufbuild/protobuf";
import { envoyRoot } from "../../protocol/protos.js";

/** A field's `(validate.rules)` as parsed by protobufjs, e.g. { uint32: { lte: 65535 } }. */
export type Rules = Record<string, any>;

export interface MessageRules {
  /** `(validate.disabled)`: no rule of this message applies. */
  disabled: boolean;
  fields: Map<string, Rules>;
  /** Oneofs with `(validate.required)`: exactly one field must be set. */
  requiredOneofs: Set<string>;
}

const cache = new Map<string, MessageRules>();
const NONE: MessageRules = { disabled: true, fields: new Map(), requiredOneofs: new Set() };

export function messageRules(typeName: string): MessageRules {
  let r = cache.get(typeName);
  if (r) return r;
  let t: protobuf.Type;
  try { t = envoyRoot().lookupType(typeName); } catch { cache.set(typeName, NONE); return NONE; }
  const fields = new Map<string, Rules>();
  for (const f of t.fieldsArray) {
    const rules = merged(f.parsedOptions, "(validate.rules)");
    if (rules) fields.set(f.name, rules);
  }
  const requiredOneofs = new Set(t.oneofsArray.filter((o) => o.options?.["(validate.required)"] === true).map((o) => o.name));
  r = { disabled: t.options?.["(validate.disabled)"] === true || t.options?.["(validate.ignored)"] === true, fields, requiredOneofs };
  cache.set(typeName, r);
  return r;
}

/** protobufjs keeps one entry per option statement: `[(validate.rules).a = 1, (validate.rules).b = 2]` is two. */
function merged(parsed: Record<string, any>[] | undefined, key: string): Rules | undefined {
  let out: Rules | undefined;
  for (const o of parsed ?? []) if (o[key] && typeof o[key] === "object") out = deepMerge(out ?? {}, o[key]);
  return out;
}
function deepMerge(a: Rules, b: Rules): Rules {
  for (const [k, v] of Object.entries(b)) a[k] = v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object" ? deepMerge(a[k], v) : v;
  return a;
}

/** Message-valued fields whose presence a rule demands. */
export function requiresPresence(r: Rules | undefined): string | undefined {
  if (!r) return undefined;
  for (const k of ["message", "duration", "any", "timestamp"]) if (r[k]?.required === true) return `${k}.required`;
  return undefined;
}

const list = (x: unknown): unknown[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const show = (v: unknown): string => (typeof v === "bigint" ? v.toString() : typeof v === "string" ? JSON.stringify(v) : String(v));
const NUMERIC = ["double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"];
type Num = number | bigint;

/** A violation of the rules by one value (a scalar, an enum number, a Duration, an Any), or undefined. */
export function violation(r: Rules, value: unknown, enumDesc?: DescEnum): string | undefined {
  for (const kind of NUMERIC) if (r[kind]) return numeric(r[kind], kind, toNum(value), show);
  if (r.string) return stringRules(r.string, String(value ?? ""));
  if (r.bytes) return bytesRules(r.bytes, value instanceof Uint8Array ? value : new Uint8Array());
  if (r.bool && r.bool.const !== undefined && value !== r.bool.const) return `must be ${r.bool.const} (bool.const)`;
  if (r.enum) return enumRules(r.enum, Number(value ?? 0), enumDesc);
  if (r.duration && value !== undefined) return numeric(r.duration, "duration", durationNanos(value), (n) => `${Number(n) / 1e9}s`, durationNanos);
  if (r.any && value !== undefined) {
    const url = (value as { typeUrl?: string }).typeUrl ?? "";
    if (r.any.in && !list(r.any.in).includes(url)) return `@type must be one of ${list(r.any.in).join(", ")} (any.in)`;
    if (list(r.any.not_in).includes(url)) return `@type must not be ${url} (any.not_in)`;
  }
  return undefined;
}

function toNum(v: unknown): Num { return typeof v === "bigint" || typeof v === "number" ? v : Number(v ?? 0); }
function durationNanos(d: unknown): bigint {
  const x = (d ?? {}) as { seconds?: bigint | number | string; nanos?: number };
  return BigInt(x.seconds ?? 0) * 1_000_000_000n + BigInt(x.nanos ?? 0);
}

/** PGV's const/lt/lte/gt/gte/in/not_in; with both bounds set, lower < upper means inside the range, else outside it. */
function numeric(r: Rules, kind: string, v: Num, fmt: (n: Num) => string, conv: (x: unknown) => Num = toNum): string | undefined {
  const isZero = typeof v === "bigint" ? v === 0n : v === 0;
  if (r.ignore_empty && isZero) return undefined;
  const eq = (a: Num, b: Num) => a == b; // loose on purpose: a bigint and a number compare by value
  if (r.const !== undefined && !eq(v, conv(r.const))) return `must equal ${fmt(conv(r.const))} (${kind}.const)`;
  if (r.in !== undefined && !list(r.in).some((x) => eq(v, conv(x)))) return `must be one of ${list(r.in).map((x) => fmt(conv(x))).join(", ")} (${kind}.in)`;
  if (list(r.not_in).some((x) => eq(v, conv(x)))) return `must not be ${fmt(v)} (${kind}.not_in)`;
  const lo = r.gt !== undefined ? { b: conv(r.gt), excl: true, k: "gt" } : r.gte !== undefined ? { b: conv(r.gte), excl: false, k: "gte" } : undefined;
  const hi = r.lt !== undefined ? { b: conv(r.lt), excl: true, k: "lt" } : r.lte !== undefined ? { b: conv(r.lte), excl: false, k: "lte" } : undefined;
  const above = (l: NonNullable<typeof lo>) => (l.excl ? v > l.b : v >= l.b);
  const below = (h: NonNullable<typeof hi>) => (h.excl ? v < h.b : v <= h.b);
  const word = (x: { excl: boolean }, lower: boolean) => (lower ? (x.excl ? "greater than" : "at least") : (x.excl ? "less than" : "at most"));
  if (lo && hi) {
    const rule = `${kind}.${lo.k}+${hi.k}`;
    if (hi.b > lo.b) return above(lo) && below(hi) ? undefined : `must be ${word(lo, true)} ${fmt(lo.b)} and ${word(hi, false)} ${fmt(hi.b)} (${rule})`;
    return above(lo) || below(hi) ? undefined : `must be ${word(hi, false)} ${fmt(hi.b)} or ${word(lo, true)} ${fmt(lo.b)} (${rule})`;
  }
  if (lo && !above(lo)) return `must be ${word(lo, true)} ${fmt(lo.b)} (${kind}.${lo.k})`;
  if (hi && !below(hi)) return `must be ${word(hi, false)} ${fmt(hi.b)} (${kind}.${hi.k})`;
  return undefined;
}

// PGV's well-known regexes (validate.proto: KnownRegex), strict unless `strict: false`.
const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const patterns = new Map<string, RegExp | null>();

function stringRules(r: Rules, s: string): string | undefined {
  if (r.ignore_empty && s === "") return undefined;
  const runes = [...s].length, bytes = Buffer.byteLength(s, "utf8");
  if (r.const !== undefined && s !== r.const) return `must be ${JSON.stringify(r.const)} (string.const)`;
  if (r.len !== undefined && runes !== Number(r.len)) return `must be ${r.len} characters long (string.len)`;
  if (r.min_len !== undefined && runes < Number(r.min_len)) return Number(r.min_len) === 1 ? "must not be empty (string.min_len)" : `must be at least ${r.min_len} characters long (string.min_len)`;
  if (r.max_len !== undefined && runes > Number(r.max_len)) return `must be at most ${r.max_len} characters long (string.max_len)`;
  if (r.len_bytes !== undefined && bytes !== Number(r.len_bytes)) return `must be ${r.len_bytes} bytes long (string.len_bytes)`;
  if (r.min_bytes !== undefined && bytes < Number(r.min_bytes)) return `must be at least ${r.min_bytes} bytes long (string.min_bytes)`;
  if (r.max_bytes !== undefined && bytes > Number(r.max_bytes)) return `must be at most ${r.max_bytes} bytes long (string.max_bytes)`;
  if (r.prefix !== undefined && !s.startsWith(r.prefix)) return `must start with ${JSON.stringify(r.prefix)} (string.prefix)`;
  if (r.suffix !== undefined && !s.endsWith(r.suffix)) return `must end with ${JSON.stringify(r.suffix)} (string.suffix)`;
  if (r.contains !== undefined && !s.includes(r.contains)) return `must contain ${JSON.stringify(r.contains)} (string.contains)`;
  if (r.not_contains !== undefined && s.includes(r.not_contains)) return `must not contain ${JSON.stringify(r.not_contains)} (string.not_contains)`;
  if (r.in !== undefined && !list(r.in).includes(s)) return `must be one of ${list(r.in).map((x) => JSON.stringify(x)).join(", ")} (string.in)`;
  if (list(r.not_in).includes(s)) return `must not be ${JSON.stringify(s)} (string.not_in)`;
  if (r.pattern !== undefined) {
    let re = patterns.get(r.pattern);
    if (re === undefined) {
      try { re = new RegExp(r.pattern, "u"); } catch { re = null; } // an RE2 construct JavaScript lacks: not judged
      patterns.set(r.pattern, re);
    }
    if (re && !re.test(s)) return `must match ${r.pattern} (string.pattern)`;
  }
  const wk = r.well_known_regex;
  if (wk !== undefined && wk !== "UNKNOWN" && wk !== 0) {
    const name = wk === "HTTP_HEADER_NAME" || wk === 1;
    const re = r.strict === false ? HEADER_LOOSE : name ? HEADER_NAME : HEADER_VALUE;
    if (!re.test(s)) return `must be a valid HTTP header ${name ? "name" : "value"} (string.well_known_regex)`;
  }
  return undefined;
}

function bytesRules(r: Rules, b: Uint8Array): string | undefined {
  if (r.len !== undefined && b.length !== Number(r.len)) return `must be ${r.len} bytes long (bytes.len)`;
  if (r.min_len !== undefined && b.length < Number(r.min_len)) return `must be at least ${r.min_len} bytes long (bytes.min_len)`;
  if (r.max_len !== undefined && b.length > Number(r.max_len)) return `must be at most ${r.max_len} bytes long (bytes.max_len)`;
  return undefined;
}

function enumRules(r: Rules, v: number, e: DescEnum | undefined): string | undefined {
  const name = (n: unknown) => e?.values.find((x) => x.number === Number(n))?.name ?? String(n);
  if (r.const !== undefined && v !== Number(r.const)) return `must be ${name(r.const)} (enum.const)`;
  if (r.defined_only && e && !e.values.some((x) => x.number === v)) return `${v} is not a value of ${e.typeName} (enum.defined_only)`;
  if (r.in !== undefined && !list(r.in).some((x) => Number(x) === v)) return `must be one of ${list(r.in).map(name).join(", ")} (enum.in)`;
  if (list(r.not_in).some((x) => Number(x) === v)) return `must not be ${name(v)} (enum.not_in)`;
  return undefined;
}

/** repeated: min_items, max_items, unique (items are judged one by one with `violation`). */
export function repeatedViolation(r: Rules, items: unknown[]): string | undefined {
  if (r.ignore_empty && items.length === 0) return undefined;
  if (r.min_items !== undefined && items.length < Number(r.min_items)) return `must have at least ${r.min_items} item${Number(r.min_items) === 1 ? "" : "s"} (repeated.min_items)`;
  if (r.max_items !== undefined && items.length > Number(r.max_items)) return `must have at most ${r.max_items} items (repeated.max_items)`;
  if (r.unique && new Set(items.map((x) => (typeof x === "bigint" ? `${x}n` : x))).size !== items.length) return "items must be unique (repeated.unique)";
  return undefined;
}

/** map: min_pairs, max_pairs (keys and values are judged one by one with `violation`). */
export function mapViolation(r: Rules, size: number): string | undefined {
  if (r.ignore_empty && size === 0) return undefined;
  if (r.min_pairs !== undefined && size < Number(r.min_pairs)) return `must have at least ${r.min_pairs} entr${Number(r.min_pairs) === 1 ? "y" : "ies"} (map.min_pairs)`;
  if (r.max_pairs !== undefined && size > Number(r.max_pairs)) return `must have at most ${r.max_pairs} entries (map.max_pairs)`;
  return undefined;
}
