// The Envoy protos of protos.ts (a protobufjs Root) as a @bufbuild/protobuf FileRegistry, built once:
// envoy-json.ts decodes YAML/JSON with @bufbuild's fromJson against it. The descriptors are made here
// from protobufjs' reflection, one FileDescriptorProto per .proto file with fully-qualified type names
// and its imports, in dependency order: protobufjs' own Root#toDescriptor (protobufjs/ext/descriptor)
// groups types by package rather than by file (Envoy's packages import each other in cycles across
// files), writes relative type names, lists no imports and drops custom options, and @bufbuild resolves
// every type name as it adds a file. The PGV rules (custom options) are read from protobufjs directly
// (envoy-validate.ts). Extensions and services are left out: decoding configuration needs neither.
import protobuf from "protobufjs";
import { create, createFileRegistry, type FileRegistry, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { envoyRoot } from "../../protocol/protos.js";

// FieldDescriptorProto.Type numbers, by protobufjs' scalar type names.
const SCALAR: Record<string, number> = {
  double: 1, float: 2, int64: 3, uint64: 4, int32: 5, fixed64: 6, fixed32: 7, bool: 8, string: 9,
  bytes: 12, uint32: 13, sfixed32: 15, sfixed64: 16, sint32: 17, sint64: 18,
};
const TYPE_MESSAGE = 11, TYPE_ENUM = 14;
const LABEL_OPTIONAL = 1, LABEL_REQUIRED = 2, LABEL_REPEATED = 3;

let registry: FileRegistry | undefined;

/** Every message and enum of envoyRoot(), for fromJson/toJson/anyUnpack (built on first use). */
export function envoyRegistry(): FileRegistry {
  if (registry) return registry;
  const files = new Map<string, { pkg: string; syntax: string; types: (protobuf.Type | protobuf.Enum)[]; deps: Set<string> }>();
  const fileOf = (t: protobuf.ReflectionObject): string => {
    let top = t;
    while (top.parent instanceof protobuf.Type) top = top.parent;
    // protobufjs' bundled well-known types carry no file name: one file per package stands in for them.
    return top.filename ?? `${top.parent!.fullName.slice(1).replace(/\./g, "/")}/bundled.proto`;
  };
  const collect = (ns: protobuf.NamespaceBase): void => {
    for (const n of ns.nestedArray) {
      if (n instanceof protobuf.Type || n instanceof protobuf.Enum) {
        const name = fileOf(n);
        let f = files.get(name);
        if (!f) files.set(name, f = { pkg: ns.fullName.slice(1), syntax: syntaxOf(n), types: [], deps: new Set() });
        f.types.push(n);
      } else if (n instanceof protobuf.Namespace && !(n instanceof protobuf.Service)) collect(n);
    }
  };
  const root = envoyRoot();
  collect(root);

  const fileProtos = new Map<string, Json>();
  for (const [name, f] of files) {
    const ref = (t: protobuf.Type | protobuf.Enum): string => {
      const dep = fileOf(t);
      if (dep !== name) f.deps.add(dep);
      return t.fullName;
    };
    fileProtos.set(name, {
      name, package: f.pkg, syntax: f.syntax,
      messageType: f.types.filter((t) => t instanceof protobuf.Type).map((t) => messageProto(t as protobuf.Type, ref, f.syntax)),
      enumType: f.types.filter((t) => t instanceof protobuf.Enum).map((e) => enumProto(e as protobuf.Enum)),
    });
  }
  // Imports first: @bufbuild resolves a field's type when its file is added.
  const ordered: Json[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string): void => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") throw new Error(`envoy-registry: import cycle through ${name}`);
    state.set(name, "visiting");
    for (const d of files.get(name)!.deps) visit(d);
    state.set(name, "done");
    ordered.push({ ...fileProtos.get(name)!, dependency: [...files.get(name)!.deps] });
  };
  for (const name of files.keys()) visit(name);
  // The objects above use FieldDescriptorProto's (camelCase) field names and numeric enums: create() takes them as they are.
  registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered as MessageInitShape<typeof FileDescriptorProtoSchema>[] }));
  return registry;
}

function syntaxOf(t: protobuf.ReflectionObject): string {
  const e = (t as unknown as { _edition?: string })._edition ?? "proto2";
  if (e !== "proto2" && e !== "proto3") throw new Error(`envoy-registry: ${t.fullName} is edition ${e}, only proto2/proto3 are supported`);
  return e;
}

type Ref = (t: protobuf.Type | protobuf.Enum) => string;
type Json = Record<string, unknown>;

function messageProto(t: protobuf.Type, ref: Ref, syntax: string): Json {
  const nested: Json[] = [], enums: Json[] = [];
  for (const n of t.nestedArray) {
    if (n instanceof protobuf.Type) nested.push(messageProto(n, ref, syntax));
    else if (n instanceof protobuf.Enum) enums.push(enumProto(n));
  }
  const oneofs = t.oneofsArray;
  // Extensions declared elsewhere appear in the extended type (e.g. FieldOptions' "(validate.rules)"): left out.
  const fields = t.fieldsArray.filter((f) => !(f as { declaringField?: unknown }).declaringField).map((f) => {
    f.resolve();
    const p: Json = { name: f.name, number: f.id, jsonName: jsonName(f.name) };
    if (f.partOf) p.oneofIndex = oneofs.indexOf(f.partOf);
    if (f.options?.proto3_optional) p.proto3Optional = true;
    if (f instanceof protobuf.MapField) {
      // A map is a repeated nested XxxEntry message with key = 1, value = 2.
      const entry = `${jsonName(f.name).replace(/^./, (c) => c.toUpperCase())}Entry`;
      nested.push({ name: entry, options: { mapEntry: true }, field: [
        { name: "key", number: 1, jsonName: "key", label: LABEL_OPTIONAL, type: SCALAR[f.keyType] },
        { name: "value", number: 2, jsonName: "value", label: LABEL_OPTIONAL, ...typeOf(f, ref) },
      ] });
      return { ...p, label: LABEL_REPEATED, type: TYPE_MESSAGE, typeName: `${t.fullName}.${entry}` };
    }
    return { ...p, label: f.repeated ? LABEL_REPEATED : f.required && syntax === "proto2" ? LABEL_REQUIRED : LABEL_OPTIONAL, ...typeOf(f, ref) };
  });
  return { name: t.name, field: fields, nestedType: nested, enumType: enums, oneofDecl: oneofs.map((o) => ({ name: o.name })) };
}

function typeOf(f: protobuf.Field, ref: Ref): Json {
  const r = f.resolvedType;
  if (r instanceof protobuf.Type) return { type: TYPE_MESSAGE, typeName: ref(r) };
  if (r instanceof protobuf.Enum) return { type: TYPE_ENUM, typeName: ref(r) };
  const s = SCALAR[f.type];
  if (s === undefined) throw new Error(`envoy-registry: ${f.fullName} has unresolved type ${f.type}`);
  return { type: s };
}

function enumProto(e: protobuf.Enum): Json {
  const values = Object.entries(e.values).map(([name, number]) => ({ name, number }));
  const aliased = new Set(values.map((v) => v.number)).size !== values.length;
  return { name: e.name, value: values, ...(aliased ? { options: { allowAlias: true } } : {}) };
}

/** protoc's json_name: drop each underscore and upper-case the letter after it. */
function jsonName(name: string): string {
  return name.replace(/_+([^_])?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase());
}
