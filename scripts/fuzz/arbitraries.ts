// The fast-check arbitraries and mutators the controller's fuzz targets share (scripts/fuzz/controller.ts):
// extreme numbers, 64-bit integers as decimal strings, component names, byte-string mutations of a
// valid message, "@now" times resolved against a clock, text mutations of a YAML or JSON document,
// and random YAML values and documents.
import fc from "fast-check";
import { stringify as yamlStringify } from "yaml";

export const extremeNumber = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, 2 ** 53 + 1, 1e308, -1e308, 4294967295, 4294967296, 0.5),
  fc.double(),
  fc.integer(),
);
export const u64 = fc.oneof(fc.constantFrom("0", "1", "18446744073709551615", "9223372036854775807", "9223372036854775808", "4294967296", "-1"), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), fc.nat(1000).map(String));
export const i64 = fc.oneof(fc.constantFrom("0", "-1", "9223372036854775807", "-9223372036854775808"), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(String));
export const name = fc.oneof({ arbitrary: fc.constantFrom("orders", "users", "", "ORDERS", "orders ", "a".repeat(300), "../x", "orders\u0000"), weight: 3 }, { arbitrary: fc.string({ maxLength: 40 }), weight: 1 });

/** Mutations of a byte string: flips, truncation, insertion, duplication, splices. */
export const byteOps = fc.array(fc.tuple(fc.constantFrom("flip", "cut", "insert", "dup", "set", "splice"), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 12 })), { minLength: 1, maxLength: 6 });
export type ByteOps = typeof byteOps extends fc.Arbitrary<infer T> ? T : never;
export function mutateBytes(base: Uint8Array, ops: ByteOps): Uint8Array {
  let b = Buffer.from(base);
  for (const [op, at, v, ins] of ops) {
    const i = b.length ? at % b.length : 0;
    if (op === "flip" && b.length) b[i] = b[i]! ^ (1 << (v & 7));
    else if (op === "set" && b.length) b[i] = v;
    else if (op === "cut") b = b.subarray(0, i);
    else if (op === "insert") b = Buffer.concat([b.subarray(0, i), Buffer.from(ins), b.subarray(i)]);
    else if (op === "dup") b = Buffer.concat([b, b.subarray(i)]);
    else if (op === "splice") b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + v))]);
  }
  return new Uint8Array(b);
}

/** Replaces "@now<+/-ns>" strings anywhere in `o` by the clock's wall time in ns plus the offset. */
export function resolveNow(o: unknown, nowNs: bigint): unknown {
  if (typeof o === "string" && o.startsWith("@now")) return String(nowNs + BigInt(o.slice(4)));
  if (Array.isArray(o)) return o.map((x) => resolveNow(x, nowNs));
  if (o && typeof o === "object" && !(o instanceof Uint8Array)) return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveNow(v, nowNs)]));
  return o;
}

/** Text mutations (YAML and JSON lines): replace, delete, duplicate lines, insert YAML tokens. */
const TOKENS = [":", "- ", "{", "}", "[", "]", "&a ", "*a", "!!str ", "!!binary ", "? ", "|", ">-", "'", '"', "#", "\t", "\n", "  ", "~", "null", "1e999", "-1", ".nan", "0x10", "<<: *a", "---\n", "...\n", "%YAML 1.2\n", "\u0000", "\uFEFF"];
const mutateText = (base: string) => fc.array(fc.tuple(fc.constantFrom("token", "delete", "dupline", "dropline", "swap", "indent"), fc.nat(), fc.constantFrom(...TOKENS), fc.nat(40)), { minLength: 1, maxLength: 5 })
  .map((ops) => {
    let s = base;
    for (const [op, at, tok, n] of ops) {
      const i = s.length ? at % s.length : 0;
      const lines = s.split("\n");
      const li = at % lines.length;
      if (op === "token") s = s.slice(0, i) + tok + s.slice(i);
      else if (op === "delete") s = s.slice(0, i) + s.slice(i + n);
      else if (op === "dupline") { lines.splice(li, 0, lines[li]!); s = lines.join("\n"); }
      else if (op === "dropline") { lines.splice(li, 1); s = lines.join("\n"); }
      else if (op === "swap") { const j = (li + 1 + n) % lines.length; [lines[li], lines[j]] = [lines[j]!, lines[li]!]; s = lines.join("\n"); }
      else if (op === "indent") { lines[li] = " ".repeat(n % 7) + lines[li]!.trimStart(); s = lines.join("\n"); }
    }
    return s;
  });

const yamlValue = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: "small", withCrossShrink: true },
    fc.oneof(fc.string({ maxLength: 20 }), extremeNumber, fc.boolean(), fc.constant(null), fc.constantFrom("30s", "5m", "1h", "-1s", "1e9h", "0", "100%", "127.0.0.1:0", "orders")),
    fc.array(tie("v"), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.constantFrom("defaults", "components", "orders", "risk", "steps", "bake", "listen", "name", "hostnames", "primary", "shadow", "endpoints", "zone", "api", "tokens", "enter", "leave", "emergency", "gates", "preflight", "signals", "scrape", "telemetry", "dataplane", "stateDir", "webhooks", "slo", "capacity", "warnAt", "target", "threshold", "periodS", "seasonS", "learning"), fc.string({ maxLength: 10 })), tie("v"), { maxKeys: 6 })),
})).v;

export const yamlDoc = (base: string) => fc.oneof(
  { arbitrary: mutateText(base), weight: 6 },
  { arbitrary: yamlValue.map((v) => { try { return yamlStringify(v); } catch { return String(v); } }), weight: 3 },
  { arbitrary: fc.string({ maxLength: 300, unit: "binary" }), weight: 1 },
  { arbitrary: fc.constantFrom("", "---", "a: &a [*a]", "a: !!binary xyz", "? [a]\n: b", "x: " + "[".repeat(40), "<<: {a: 1}", "a: 1\na: 2", "- - - - -"), weight: 1 },
);
