// Property values (proxy_get_property) as Envoy encodes them: strings as raw bytes, integers and
// durations as 8-byte little-endian, timestamps as nanoseconds since the epoch, booleans as one
// byte, header maps in the serialized map format. Paths arrive NUL-separated ("request\0time").
import { HeaderMap } from "./headers.js";

/** A number is an int64 (durations, sizes, codes) when it is an integer; bigint for values past 2^53. */
export type PropertyValue = string | bigint | number | boolean | Uint8Array | HeaderMap;

export function encodeProperty(v: PropertyValue): Uint8Array {
  if (typeof v === "string") return Buffer.from(v, "utf8");
  if (typeof v === "number") v = BigInt(Math.round(v));
  if (typeof v === "bigint") {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt.asIntN(64, v));
    return b;
  }
  if (typeof v === "boolean") return Uint8Array.of(v ? 1 : 0);
  if (v instanceof HeaderMap) return v.serialize();
  return v;
}

const pathCache = new Map<string, string>();

/** "request\0time" -> "request.time"; a trailing NUL is tolerated. Memoised: paths repeat. */
export function propertyPathToKey(raw: string): string {
  const hit = pathCache.get(raw);
  if (hit !== undefined) return hit;
  const key = convertPath(raw);
  if (pathCache.size < 1024) pathCache.set(raw, key);
  return key;
}

function convertPath(raw: string): string {
  const parts = raw.split("\0");
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  return parts.join(".");
}
