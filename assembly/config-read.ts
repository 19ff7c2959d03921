// Reading the plugin configuration's JSON with field-path errors ("<field>: <why>", the first one
// wins): typed getters with bounds, unknown-key checks, header-name and token rules. Used by
// config.ts and the callers' configuration in edges.ts.
import { JValue, J_ARR, J_BOOL, J_NUM, J_OBJ, J_STR } from "./json";
import { Bytes } from "./bytes";

export const MAX_LIST = 32;

export class Ctx {
  err: string = "";
  fail(path: string, why: string): void { if (this.err.length == 0) this.err = path + ": " + why; }
  ok(): bool { return this.err.length == 0; }
}

export function checkKeys(c: Ctx, v: JValue, path: string, allowed: Array<string>): void {
  for (let i = 0; i < v.keys.length; i++) {
    const k = v.keys[i];
    if (!allowed.includes(k)) c.fail(path.length > 0 ? path + "." + k : k, "unknown field (allowed: " + allowed.join(", ") + ")");
  }
}

export function fieldPath(path: string, key: string): string { return path.length > 0 ? path + "." + key : key; }

export function getObj(c: Ctx, v: JValue, path: string, key: string, required: bool): JValue | null {
  const f = v.get(key);
  if (f === null) { if (required) c.fail(fieldPath(path, key), "is required"); return null; }
  if (f.kind != J_OBJ) { c.fail(fieldPath(path, key), "must be an object, got " + f.kindName()); return null; }
  return f;
}

export function getStr(c: Ctx, v: JValue, path: string, key: string, required: bool, def: string): string {
  const f = v.get(key);
  if (f === null) { if (required) c.fail(fieldPath(path, key), "is required"); return def; }
  if (f.kind != J_STR) { c.fail(fieldPath(path, key), "must be a string, got " + f.kindName()); return def; }
  if (f.s.length == 0) { c.fail(fieldPath(path, key), "must not be empty"); return def; }
  if (f.s.length > 256) { c.fail(fieldPath(path, key), "is longer than 256 characters"); return def; }
  return f.s;
}

export function fmt(n: f64): string {
  return Math.floor(n) == n && Math.abs(n) < 9.0e15 ? (<i64>n).toString() : n.toString();
}

export function getNum(c: Ctx, v: JValue, path: string, key: string, lo: f64, hi: f64, integer: bool, def: f64): f64 {
  const f = v.get(key);
  if (f === null) return def;
  const p = fieldPath(path, key);
  if (f.kind != J_NUM) { c.fail(p, "must be a number, got " + f.kindName()); return def; }
  if (!(f.n >= lo && f.n <= hi)) { c.fail(p, "must be between " + fmt(lo) + " and " + fmt(hi) + ", got " + fmt(f.n)); return def; }
  if (integer && Math.floor(f.n) != f.n) { c.fail(p, "must be an integer, got " + fmt(f.n)); return def; }
  return f.n;
}

export function getBool(c: Ctx, v: JValue, path: string, key: string, def: bool): bool {
  const f = v.get(key);
  if (f === null) return def;
  if (f.kind != J_BOOL) { c.fail(fieldPath(path, key), "must be a boolean, got " + f.kindName()); return def; }
  return f.b;
}

export function isVisibleAscii(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 0x21 || ch > 0x7e) return false;
  }
  return true;
}

export function isToken(s: string, lower: bool): bool {
  // RFC 9110 token characters; header names must also be lower-case (HTTP/2 and Envoy store them so).
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    const alnum = (ch >= 0x30 && ch <= 0x39) || (ch >= 0x61 && ch <= 0x7a) || (!lower && ch >= 0x41 && ch <= 0x5a);
    if (!alnum && "!#$%&'*+-.^_`|~".indexOf(String.fromCharCode(ch)) < 0) return false;
  }
  return s.length > 0;
}

export function getStrList(c: Ctx, v: JValue, path: string, key: string, headerNames: bool): Array<string> | null {
  const f = v.get(key);
  if (f === null) return null;
  const p = fieldPath(path, key);
  if (f.kind != J_ARR) { c.fail(p, "must be an array of strings, got " + f.kindName()); return null; }
  if (f.items.length > MAX_LIST) { c.fail(p, "has more than " + MAX_LIST.toString() + " entries"); return null; }
  const out = new Array<string>();
  for (let i = 0; i < f.items.length; i++) {
    const it = f.items[i];
    const ip = p + "[" + i.toString() + "]";
    if (it.kind != J_STR || it.s.length == 0) { c.fail(ip, "must be a non-empty string"); return null; }
    if (headerNames && !isToken(it.s, true)) { c.fail(ip, "must be a lower-case HTTP header name, got \"" + it.s + "\""); return null; }
    out.push(it.s);
  }
  return out;
}

export function toBytes(list: Array<string>): Array<Bytes> {
  const out = new Array<Bytes>();
  for (let i = 0; i < list.length; i++) out.push(new Bytes(list[i]));
  return out;
}

export function headerName(c: Ctx, v: JValue, path: string, key: string, def: string): string {
  const s = getStr(c, v, path, key, false, def);
  if (c.ok() && !isToken(s, true)) c.fail(fieldPath(path, key), "must be a lower-case HTTP header name, got \"" + s + "\"");
  return s;
}

