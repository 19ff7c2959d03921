// Strict YAML configuration: parse with line positions, validate with a zod schema, and report the
// first problem in document order as FILE:LINE:COLUMN: field.path: reason. Unknown keys are errors
// that list the allowed ones (a misspelt field must never be silently ignored).
//
// Bounded: a document is refused before it is parsed if it is over the size limit, or if a linear
// pre-scan finds it nested too deep (the parser recurses), with too many keys and items, or too many
// aliases; after parsing, an exact walk checks the same counts (and duplicate keys, in linear time;
// the yaml library's own uniqueKeys check is quadratic), and expanding aliases is capped
// (maxAliasCount). Each refusal is a LimitError-marked error naming the limit and where it was crossed.
import { LineCounter, parseDocument, isMap, isSeq, isAlias, isScalar, isPair, type Node as YamlNode, type YAMLMap } from "yaml";
import { z } from "zod";
import { readFileSync, statSync } from "node:fs";

export class YamlFieldError extends Error {
  constructor(readonly file: string, readonly line: number, readonly column: number, readonly field: string, readonly reason: string) {
    super(`${file}:${line}:${column}: ${field || "(document)"}: ${reason}`);
  }
}

type Path = (string | number | symbol)[];
type ErrorClass = new (file: string, line: number, column: number, field: string, reason: string) => YamlFieldError;

/** What a document may cost to parse. The same limits apply to files and to documents sent over the API. */
export interface YamlLimits {
  /** UTF-8 bytes of the document. */
  maxBytes: number;
  /** Mapping keys plus sequence items, over the whole document. */
  maxEntries: number;
  /** Nesting of mappings and sequences. */
  maxDepth: number;
  /** Alias nodes (`*name`) in the text; expanding them is capped too (the yaml library's maxAliasCount). */
  maxAliases: number;
}
/**
 * Policies (files and SetPolicy): a 5,000-entry policy takes a few hundred ms to parse, validate and
 * resolve on a busy 2-core machine; a real one has tens to hundreds.
 */
export const YAML_LIMITS: YamlLimits = { maxBytes: 256 * 1024, maxEntries: 5_000, maxDepth: 32, maxAliases: 32 };

/** The limit an error refused a document for, if it was a limit (and not a schema or syntax problem). */
export function yamlLimit(e: unknown): keyof YamlLimits | "aliasExpansion" | null {
  return (e as { yamlLimit?: keyof YamlLimits | "aliasExpansion" } | null)?.yamlLimit ?? null;
}

const n = (x: number) => x.toLocaleString("en-US");

/** "FILE: 2,400,000 bytes is over the limit of 262,144" (null when within it): checked before anything else reads the text. */
/** "no such file or directory (ENOENT)" from a fs error. */
export function fsReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const m = /^[A-Z]+: ([^,]+)/.exec(err.message ?? "");
  return m ? `${m[1]} (${err.code})` : String(err.message ?? e);
}

/**
 * A YAML file's text: one over the size limit is refused before it is read (the other limits are
 * parseYamlStrict's). Errors are Err(file, line, column, "", reason): a directory, an unreadable file.
 */
export function readYamlFile(file: string, Err: ErrorClass, limits: YamlLimits = YAML_LIMITS): string {
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new Err(file, 0, 0, "", "cannot read: it is a directory");
    if (st.size > limits.maxBytes) throw new Err(file, 1, 1, "", `${st.size.toLocaleString("en-US")} bytes is over the limit of ${limits.maxBytes.toLocaleString("en-US")}`);
    return readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof Err) throw e;
    throw new Err(file, 0, 0, "", `cannot read: ${fsReason(e)}`);
  }
}

export function sizeProblem(text: string, limits: YamlLimits = YAML_LIMITS): string | null {
  // UTF-16 length bounds the UTF-8 size from below (x1) and above (x3): count exactly only when it matters.
  if (text.length * 3 <= limits.maxBytes) return null;
  const bytes = text.length > limits.maxBytes ? text.length : Buffer.byteLength(text, "utf8");
  return bytes > limits.maxBytes ? `${n(bytes)} bytes is over the limit of ${n(limits.maxBytes)}` : null;
}

/**
 * One pass over the characters, before the parser sees them: flow nesting ([ and { outside quotes and
 * comments), an estimate of keys and items (block keys "k:" and items "- "; in flow collections the
 * first entry and each comma) and alias nodes. The estimate matches the real count except inside
 * block scalars (| and >) and for " - " within a plain scalar, where it runs over: a document that
 * close to the limit may be refused here rather than by the exact walk after parsing, with the same
 * reason. Returns the offset and the reason of the first limit crossed.
 */
function preScan(text: string, limits: YamlLimits): { at: number; limit: keyof YamlLimits; reason: string } | null {
  let flow = 0, entries = 0, aliases = 0;
  let quote = "";
  const len = text.length;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (quote) {
      if (quote === '"' && c === 92 /* \\ */) { i++; continue; }
      if (c === quote.charCodeAt(0)) {
        if (quote === "'" && text.charCodeAt(i + 1) === 39) { i++; continue; }
        quote = "";
      }
      continue;
    }
    const prev = i === 0 ? 10 : text.charCodeAt(i - 1);
    const atStart = prev === 10 || prev === 13 || prev === 32 || prev === 9 || prev === 91 || prev === 123 || prev === 44 || prev === 58;
    switch (c) {
      case 35: /* # */ if (prev === 10 || prev === 13 || prev === 32 || prev === 9) { while (i < len && text.charCodeAt(i) !== 10) i++; } break;
      case 34: case 39: /* " ' */ if (atStart) quote = text[i]!; break;
      case 91: case 123: /* [ { */
        if (flow > 0 || atStart) {
          flow++;
          // The first entry of a non-empty collection (the rest are counted by their commas).
          let j = i + 1;
          while (j < len && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 10 || text.charCodeAt(j) === 13 || text.charCodeAt(j) === 9)) j++;
          const close = c === 91 ? 93 : 125;
          if (j < len && text.charCodeAt(j) !== close) entries++;
          if (flow > limits.maxDepth) return { at: i, limit: "maxDepth", reason: `nested deeper than the limit of ${n(limits.maxDepth)}` };
        }
        break;
      case 93: case 125: /* ] } */ if (flow > 0) flow--; break;
      case 44: /* , */ if (flow > 0) entries++; break;
      case 58: /* : */ { const next = text.charCodeAt(i + 1); if (flow === 0 && (i + 1 >= len || next === 32 || next === 10 || next === 13 || next === 9)) entries++; break; }
      case 45: /* - */ { const next = text.charCodeAt(i + 1); if (atStart && flow === 0 && (i + 1 >= len || next === 32 || next === 10 || next === 13)) entries++; break; }
      case 42: /* * */ if (atStart) { aliases++; if (aliases > limits.maxAliases) return { at: i, limit: "maxAliases", reason: `more than ${n(limits.maxAliases)} aliases (the limit)` }; } break;
    }
    if (entries > limits.maxEntries) return { at: i, limit: "maxEntries", reason: `more than ${n(limits.maxEntries)} keys and items (the limit)` };
  }
  return null;
}

/** The exact counts on the parsed document, iteratively (no recursion), with duplicate keys found by a set per mapping. */
function walk(root: unknown, limits: YamlLimits): { node: YamlNode; limit: keyof YamlLimits | "uniqueKeys" | "scalarKeys"; reason: string } | null {
  let entries = 0, aliases = 0;
  const stack: { node: unknown; depth: number }[] = [{ node: root, depth: 1 }];
  while (stack.length) {
    const { node, depth } = stack.pop()!;
    if (isAlias(node)) {
      if (++aliases > limits.maxAliases) return { node, limit: "maxAliases", reason: `more than ${n(limits.maxAliases)} aliases (the limit)` };
      continue;
    }
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth > limits.maxDepth) return { node, limit: "maxDepth", reason: `nested deeper than the limit of ${n(limits.maxDepth)}` };
    entries += node.items.length;
    if (entries > limits.maxEntries) return { node, limit: "maxEntries", reason: `more than ${n(limits.maxEntries)} keys and items (the limit)` };
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const it of node.items) {
        // A collection (or an alias) as a key has no place in a configuration; converting it made the
        // yaml library emit a process warning per document (a SetPolicy caller could fill the log).
        // So is a tagged scalar whose value is an object (`!!binary ...` is a Uint8Array).
        if (it.key !== null && it.key !== undefined && (!isScalar(it.key) || (typeof it.key.value === "object" && it.key.value !== null))) return { node: it.key as YamlNode, limit: "scalarKeys", reason: "a mapping key must be a plain scalar (a name), not a collection, an alias or a tagged binary value" };
        const k = isScalar(it.key) ? it.key.value : undefined;
        if (k !== undefined) {
          if (seen.has(k)) return { node: it.key as YamlNode, limit: "uniqueKeys", reason: `Map keys must be unique` };
          seen.add(k);
        }
        if (it.key && typeof it.key === "object") stack.push({ node: it.key, depth: depth + 1 });
        stack.push({ node: it.value, depth: depth + 1 });
      }
    } else {
      for (const it of node.items) stack.push({ node: isPair(it) ? it.value : it, depth: depth + 1 });
    }
  }
  return null;
}

/** Parses `text` and validates it against `schema`; `fail` raises an error at any path of the document. */
export function parseYamlStrict<S extends z.ZodType>(text: string, file: string, schema: S, Err: ErrorClass = YamlFieldError, limits: YamlLimits = YAML_LIMITS): { data: z.output<S>; fail: (path: Path, reason: string) => never } {
  const limitError = (line: number, col: number, limit: keyof YamlLimits | "aliasExpansion", reason: string) =>
    Object.assign(new Err(file, line, col, "", reason), { yamlLimit: limit });
  const size = sizeProblem(text, limits);
  if (size) throw limitError(1, 1, "maxBytes", size);
  const lc = new LineCounter();
  const pre = preScan(text, limits);
  if (pre) {
    // Line and column by counting newlines up to the offset (the document was not parsed).
    let line = 1, start = 0;
    for (let i = text.indexOf("\n"); i !== -1 && i < pre.at; i = text.indexOf("\n", i + 1)) { line++; start = i + 1; }
    throw limitError(line, pre.at - start + 1, pre.limit, pre.reason);
  }
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new Err(file, pos.line, pos.col, "", `YAML syntax: ${e.message.split("\n")[0]}`);
  }
  const over = walk(doc.contents, limits);
  if (over) {
    const pos = lc.linePos(over.node.range?.[0] ?? 0);
    if (over.limit === "uniqueKeys" || over.limit === "scalarKeys") throw new Err(file, pos.line, pos.col, "", `YAML syntax: ${over.reason}`);
    throw limitError(pos.line, pos.col, over.limit, over.reason);
  }
  const fail = (path: Path, reason: string): never => {
    const { line, col } = locate(doc, lc, path);
    throw new Err(file, line, col, fieldName(path), reason);
  };
  let js: unknown;
  try { js = doc.toJS({ maxAliasCount: 100 }); } catch (e) {
    if (e instanceof ReferenceError && /alias/i.test(e.message)) throw limitError(1, 1, "aliasExpansion", `aliases expand to too many nodes (over the limit of ${n(100)} expansions: ${e.message})`);
    throw e;
  }
  const parsed = schema.safeParse(js ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const path = i.code === "unrecognized_keys" ? [...i.path, (i as { keys: string[] }).keys[0]!] : i.path;
      // zod reports a bad record key as "Invalid key in record"; the key's own rule says more.
      const keyIssue = i.code === "invalid_key" ? (i as { issues?: { message: string }[] }).issues?.[0]?.message : undefined;
      const reason = i.code === "unrecognized_keys" ? `unknown field (allowed: ${allowedKeys(schema, i.path)})` : keyIssue ? `invalid name: ${keyIssue}` : i.message;
      return { path, reason, pos: locate(doc, lc, path) };
    }).sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
    fail(issues[0]!.path, issues[0]!.reason);
  }
  return { data: parsed.data as z.output<S>, fail };
}

// Key -> pair per mapping, built on first use: locating every schema issue stays linear in the issues.
const keyIndex = new WeakMap<YAMLMap, Map<unknown, YAMLMap["items"][number]>>();
function pairOf(map: YAMLMap, key: unknown) {
  let idx = keyIndex.get(map);
  if (!idx) {
    idx = new Map();
    for (const it of map.items) { const k = (it.key as { value?: unknown } | null)?.value; if (!idx.has(k)) idx.set(k, it); }
    keyIndex.set(map, idx);
  }
  return idx.get(key);
}

/** Where `path` is inside a YAML (or JSON: JSON is YAML) text, for errors about data read from it. */
export function positionOf(text: string, path: readonly PropertyKey[]): { line: number; col: number } {
  const lc = new LineCounter();
  return locate(parseDocument(text, { lineCounter: lc, prettyErrors: false }), lc, [...path]);
}

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: Path): { line: number; col: number } {
  // Walks as deep as the document goes: an unknown key or a missing field points at its parent.
  let node: unknown = doc.contents;
  let best = (node as YamlNode | null)?.range?.[0] ?? 0;
  for (const key of path) {
    if (isMap(node)) {
      const pair = pairOf(node, key);
      if (!pair) break;
      best = (pair.key as YamlNode).range?.[0] ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number") {
      node = node.items[key];
      best = (node as YamlNode | undefined)?.range?.[0] ?? best;
    } else break;
  }
  const pos = lc.linePos(best);
  return { line: pos.line, col: pos.col };
}

function fieldName(path: readonly PropertyKey[]): string {
  return path.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i ? "." : ""}${String(k)}`)).join("");
}

/**
 * The first problem zod found in a record read from a state file, as `field: reason (got VALUE)`. A
 * misspelt field is reported as itself ("unknown field") rather than as the required field it stands
 * for. path: the field's; parent: where it sits (for a line number, an unknown key has no position of
 * its own in a schema). whole: what to call the record itself when the problem is at its root.
 */
export function zodProblem(err: z.ZodError, raw: unknown, whole = "(record)"): { path: readonly PropertyKey[]; parent: readonly PropertyKey[]; text: string } {
  const i = err.issues.find((x) => x.code === "unrecognized_keys") ?? err.issues[0]!;
  const unknown = i.code === "unrecognized_keys";
  const path = unknown ? [...i.path, (i as { keys: string[] }).keys[0]!] : i.path;
  const field = fieldName(path) || whole;
  if (unknown) return { path, parent: i.path, text: `${field}: unknown field` };
  let v: unknown = raw;
  for (const k of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  const got = v === undefined ? "" : ` (got ${JSON.stringify(v)?.slice(0, 60)})`;
  return { path, parent: path, text: `${field}: ${i.message}${got}` };
}

function allowedKeys(root: z.ZodType, path: PropertyKey[]): string {
  let s: z.ZodType = root;
  for (const k of path) {
    const def = unwrap(s);
    if (def instanceof z.ZodObject) s = (def.shape as Record<string, z.ZodType>)[String(k)]!;
    else if (def instanceof z.ZodRecord) s = def.valueType as z.ZodType;
    else if (def instanceof z.ZodArray) s = def.element as z.ZodType;
    else if (def instanceof z.ZodUnion) s = (def.options as z.ZodType[]).find((o) => unwrap(o) instanceof z.ZodObject) ?? def;
    if (!s) return "?";
  }
  const obj = unwrap(s);
  return obj instanceof z.ZodObject ? Object.keys(obj.shape).join(", ") : "?";
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let i = 0; i < 8; i++) {
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable || cur instanceof z.ZodDefault) cur = cur.unwrap() as z.ZodType;
    else if (cur instanceof z.ZodUnion) {
      const obj = (cur.options as z.ZodType[]).find((o) => unwrap(o) instanceof z.ZodObject);
      if (!obj) return cur;
      cur = obj;
    } else return cur;
  }
  return cur;
}

