// Strict YAML configuration: parse with line positions, validate with a zod schema, and report the
// first problem in document order as FILE:LINE:COLUMN: field.path: reason. Unknown keys are errors
// that list the allowed ones (a misspelt field must never be silently ignored).
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from "yaml";
import { z } from "zod";

export class YamlFieldError extends Error {
  constructor(readonly file: string, readonly line: number, readonly column: number, readonly field: string, readonly reason: string) {
    super(`${file}:${line}:${column}: ${field || "(document)"}: ${reason}`);
  }
}

type Path = (string | number | symbol)[];
type ErrorClass = new (file: string, line: number, column: number, field: string, reason: string) => YamlFieldError;

/** Parses `text` and validates it against `schema`; `fail` raises an error at any path of the document. */
export function parseYamlStrict<S extends z.ZodType>(text: string, file: string, schema: S, Err: ErrorClass = YamlFieldError): { data: z.output<S>; fail: (path: Path, reason: string) => never } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new Err(file, pos.line, pos.col, "", `YAML syntax: ${e.message.split("\n")[0]}`);
  }
  const fail = (path: Path, reason: string): never => {
    const { line, col } = locate(doc, lc, path);
    throw new Err(file, line, col, fieldName(path), reason);
  };
  const parsed = schema.safeParse(doc.toJS() ?? {});
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

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: Path): { line: number; col: number } {
  // Walks as deep as the document goes: an unknown key or a missing field points at its parent.
  let node: unknown = doc.contents;
  let best = (node as YamlNode | null)?.range?.[0] ?? 0;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === key);
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

function fieldName(path: Path): string {
  return path.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i ? "." : ""}${String(k)}`)).join("");
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

