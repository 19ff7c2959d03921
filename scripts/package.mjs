// `npm run package`: owns the two release artifacts. (1) The filter as a Wasm OCI image, written as an
// OCI image layout (build/oci/shadowmesh-wasm/) and a tarball of it (build/oci/shadowmesh-wasm.tar, an
// `oci-archive:`), every digest computed here with node:crypto. (2) The controller compiled to
// JavaScript (dist/, as deploy/Containerfile's build stage does with `--controller-only`): tsc -p
// tsconfig.build.json, the files the compiled code reads beside itself (proto/, the dashboard's page),
// a check that it imports no devDependency, and `node dist/controller/cli-main.js --version` without tsx.
//
// The image format, as verified against the sources: Istio's fetcher, istio/istio
// pkg/wasm/imagefetcher.go, takes three kinds of image, following https://github.com/solo-io/wasm/tree/master/spec:
// the "compat" variant (spec-compat.md: ONE layer of application/vnd.oci.image.layer.v1.tar+gzip, or
// Docker's rootfs.diff.tar.gzip, holding a file plugin.wasm; annotation module.wasm.image/variant=compat)
// and the "oci" variant (spec.md), which is the one with the custom media types
// application/vnd.module.wasm.content.layer.v1+wasm (the raw module) and
// application/vnd.module.wasm.config.v1+json (the runtime config). So the media types asked for are
// the oci variant's, not compat's; this writes the oci variant. Istio's extractOCIArtifactImage
// requires exactly TWO layers and picks the one of the content media type, so the image is laid out as
// wasme (solo-io/wasm tools/wasme/pkg/push/push.go, the reference writer) pushes it: the manifest's
// config is runtime-config.json (config media type) and the layers are [runtime-config.json, the
// module], each titled (org.opencontainers.image.title), with the manifest annotations
// module.wasm.runtime/type and module.wasm.runtime/abi_version. runtime-config.json follows wasme's
// config.Runtime (tools/wasme/pkg/config/runtime.proto, in its JSON form): type "envoy_proxy",
// abiVersions, config.rootIds. The WasmPlugin `sha256` field (istio pkg/wasm/cache.go): for an
// http(s)/file url it is the module's sha256; for an oci:// url Istio compares it with the image's
// MANIFEST digest, so both are printed.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { builtinModules } from "node:module";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  wasmConfig: "application/vnd.module.wasm.config.v1+json",
  wasmLayer: "application/vnd.module.wasm.content.layer.v1+wasm",
};
/** The filter's root id, as the controller's ECDS/LDS config names it (controller/xds/resources.ts). */
const ROOT_IDS = ["shadowmesh"];
const WASM = "build/shadowmesh.wasm";
const OCI_DIR = "build/oci/shadowmesh-wasm";
const OCI_TAR = "build/oci/shadowmesh-wasm.tar";

class PackageError extends Error {}
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const fromRoot = (p) => path.join(ROOT, p);

function run(what, args, opts = {}) {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", ...opts });
  if (r.status !== 0) throw new PackageError(`${what} failed (exit ${r.status ?? r.signal}): node ${args.join(" ")}\n${(r.stdout ?? "") + (r.stderr ?? "")}`.trimEnd());
  return r.stdout;
}

// ---- (1) the Wasm OCI image ----

/** The proxy-wasm ABI the module declares (its proxy_abi_version_* export). */
function abiVersions(module) {
  let exports;
  try { exports = WebAssembly.Module.exports(new WebAssembly.Module(module)); } catch (e) { throw new PackageError(`${WASM}: not a valid Wasm module: ${e.message}`); }
  const abis = exports.map((e) => e.name).filter((n) => n.startsWith("proxy_abi_version_"));
  if (abis.length === 0) throw new PackageError(`${WASM}: exports no proxy_abi_version_* function: not a proxy-wasm module`);
  return abis;
}

/** A ustar archive of [name, bytes | null (a directory)] entries: fixed owner, mode and mtime, so the same layout gives the same bytes. */
export function tarball(entries, mtime = Number(process.env.SOURCE_DATE_EPOCH ?? 0)) {
  const blocks = [];
  for (const [name, data] of entries) {
    if (Buffer.byteLength(name) > 100) throw new PackageError(`tar: entry name longer than 100 bytes: ${name}`);
    const h = Buffer.alloc(512);
    const field = (off, len, s) => h.write(s, off, len, "ascii");
    const octal = (off, len, n) => field(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
    h.write(name, 0, 100, "utf8");
    octal(100, 8, data ? 0o644 : 0o755);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, data ? data.length : 0);
    octal(136, 12, mtime);
    field(148, 8, "        ");
    field(156, 1, data ? "0" : "5");
    field(257, 6, "ustar\0");
    field(263, 2, "00");
    let sum = 0;
    for (const b of h) sum += b;
    field(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h);
    if (data) {
      blocks.push(data);
      if (data.length % 512) blocks.push(Buffer.alloc(512 - (data.length % 512)));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Writes the oci-variant image of `module` as an OCI layout at outDir and a tarball of it at tarPath. */
export function writeWasmImage({ module, outDir, tarPath, version, revision }) {
  const blobs = new Map();
  const blob = (mediaType, bytes, annotations) => {
    const digest = `sha256:${sha256(bytes)}`;
    blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) };
  };
  const abis = abiVersions(module);
  const runtimeConfig = Buffer.from(JSON.stringify({ type: "envoy_proxy", abiVersions: abis, config: { rootIds: ROOT_IDS } }));
  const title = (t) => ({ "org.opencontainers.image.title": t });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: blob(MEDIA.wasmConfig, runtimeConfig),
    layers: [blob(MEDIA.wasmConfig, runtimeConfig, title("runtime-config.json")), blob(MEDIA.wasmLayer, module, title("filter.wasm"))],
    annotations: {
      "module.wasm.runtime/type": "envoy_proxy",
      "module.wasm.runtime/abi_version": abis.join(","),
      "org.opencontainers.image.title": "shadowmesh",
      "org.opencontainers.image.version": version,
      ...(revision ? { "org.opencontainers.image.revision": revision } : {}),
    },
  }, null, 2));
  const manifestDesc = blob(MEDIA.manifest, manifest, { "org.opencontainers.image.ref.name": version });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests: [manifestDesc] }, null, 2));
  const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(path.join(outDir, "blobs", "sha256"), { recursive: true });
  writeFileSync(path.join(outDir, "oci-layout"), layout);
  writeFileSync(path.join(outDir, "index.json"), index);
  const names = [...blobs.keys()].map((d) => d.slice("sha256:".length)).sort();
  for (const hex of names) writeFileSync(path.join(outDir, "blobs", "sha256", hex), blobs.get(`sha256:${hex}`));
  writeFileSync(tarPath, tarball([
    ["oci-layout", layout], ["index.json", index], ["blobs/", null], ["blobs/sha256/", null],
    ...names.map((hex) => [`blobs/sha256/${hex}`, blobs.get(`sha256:${hex}`)]),
  ]));
  return { moduleSha256: sha256(module), manifestDigest: manifestDesc.digest, abis };
}

// ---- (2) the controller, compiled ----

/** Files the compiled code reads relative to itself: copied to the same place under dist/. */
function copyAssets() {
  // proto/: controller/api/service.ts and telemetry/report.ts resolve ../../proto from their own
  // directory, which from dist/controller/{api,telemetry} is dist/proto.
  cpSync(fromRoot("proto"), fromRoot("dist/proto"), { recursive: true });
  // Non-TypeScript files beside the sources (the dashboard's index.html and page.js).
  const walk = (dir) => {
    for (const e of readdirSync(fromRoot(dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (!/\.(ts|md)$/.test(e.name)) cpSync(fromRoot(rel), fromRoot(path.join("dist", rel)));
    }
  };
  for (const d of ["controller", "host", "dataplane", "protocol"]) walk(d);
}

/** Every package the compiled code imports or requires must be a production dependency (the image has no others). */
export function checkRuntimeImports() {
  const pkg = JSON.parse(readFileSync(fromRoot("package.json"), "utf8"));
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  const builtins = new Set(builtinModules);
  const problems = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) { walk(f); continue; }
      // Only what tsc emitted (X.js from X.ts): copied browser assets (the dashboard's) are not run by node.
      if (!f.endsWith(".js") || !existsSync(fromRoot(path.relative(fromRoot("dist"), f).replace(/\.js$/, ".ts")))) continue;
      const src = readFileSync(f, "utf8");
      // `from` as a keyword (after a space or `}`), not the word inside a string such as ["callers", "from"].
      for (const m of src.matchAll(/(?:(?<=[\s}])from\s*|\bimport\s*\(\s*|\brequire(?:\.resolve)?\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm)) {
        const spec = m[1];
        if (spec.startsWith(".") || spec.startsWith("node:") || builtins.has(spec)) continue;
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
        if (!deps.has(name)) problems.push(`${path.relative(ROOT, f)} imports "${spec}", but ${name} is not in package.json "dependencies" (the image installs only those)`);
      }
    }
  };
  walk(fromRoot("dist"));
  if (problems.length) throw new PackageError(problems.join("\n"));
}

export function compileController() {
  rmSync(fromRoot("dist"), { recursive: true, force: true });
  run("tsc -p tsconfig.build.json", [fromRoot("node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"]);
  const entry = fromRoot("dist/controller/cli-main.js");
  if (!existsSync(entry)) throw new PackageError(`tsc -p tsconfig.build.json: ${path.relative(ROOT, entry)} was not emitted (check outDir/rootDir in tsconfig.build.json)`);
  copyAssets();
  checkRuntimeImports();
  // Plain node, no loader: a .ts import or a missing file fails here. NODE_OPTIONS could carry tsx in.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const out = run("the compiled CLI (node dist/controller/cli-main.js --version)", ["dist/controller/cli-main.js", "--version"], { env });
  if (!out.startsWith("shadowmesh ")) throw new PackageError(`node dist/controller/cli-main.js --version printed ${JSON.stringify(out)}, not "shadowmesh <version> ..."`);
  return out.trim();
}

// ---- main ----

async function main(argv) {
  const unknown = argv.filter((a) => a !== "--controller-only" && a !== "--no-wasm-build");
  if (unknown.length) throw new PackageError(`unknown argument ${unknown[0]} (usage: node scripts/package.mjs [--controller-only | --no-wasm-build])`);
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  let img = null;
  if (!argv.includes("--controller-only")) {
    // --no-wasm-build: package the module as built (npm test builds it before the tests run).
    if (!argv.includes("--no-wasm-build")) run("the Wasm build (node scripts/build-wasm.mjs)", [fromRoot("scripts/build-wasm.mjs")]);
    if (!existsSync(fromRoot(WASM)) || statSync(fromRoot(WASM)).size === 0) throw new PackageError(`${WASM} is missing or empty${argv.includes("--no-wasm-build") ? ": build it first (npm run build), or drop --no-wasm-build" : " after the Wasm build"}`);
    const version = JSON.parse(readFileSync(fromRoot("package.json"), "utf8")).version;
    mkdirSync(fromRoot("build/oci"), { recursive: true });
    img = writeWasmImage({ module: readFileSync(fromRoot(WASM)), outDir: fromRoot(OCI_DIR), tarPath: fromRoot(OCI_TAR), version, revision: process.env.SHADOWMESH_REVISION });
    console.log(`wasm image: ${OCI_DIR}/ (OCI layout, tag ${version}) and ${OCI_TAR} (oci-archive), ABI ${img.abis.join(",")} [${elapsed()}]`);
  }
  const cli = compileController();
  console.log(`controller: dist/ (node dist/controller/cli-main.js), ${cli} [${elapsed()}]`);
  if (img) {
    console.log(`module sha256: ${img.moduleSha256} (the layer's digest; WasmPlugin sha256 for a file:// or http(s):// url)`);
    console.log(`manifest digest: ${img.manifestDigest} (WasmPlugin sha256 for an oci:// url, without "sha256:")`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    console.error(`package: ${e instanceof PackageError ? e.message : e?.stack ?? e}`);
    process.exit(1);
  }
}
