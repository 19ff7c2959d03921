// `npm run package` (scripts/package.mjs), checked from the outside without trusting the writer: the
// Wasm OCI image layout is read back (oci-layout, index.json -> manifest -> config and layers) with
// every blob re-hashed against its file name and descriptor, the media types and the two-layer shape
// Istio's fetcher takes for the "oci" variant, the module layer being exactly build/shadowmesh.wasm;
// the tarball is listed and unpacked by the system's tar; `skopeo inspect --raw` when skopeo is there.
// The compiled controller runs without tsx: --version, and `controller` started from dist/ (as a
// non-root uid when the test runs as root) serving /healthz, the dashboard and the API, writing only
// to its state directory. deploy/Containerfile: non-root USER, no tsx at run time, npm ci --omit=dev.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { testControllerYaml } from "../support/controller-config.js";
import { whenAvailable } from "../support/real-servers.js";

const OCI = "build/oci/shadowmesh-wasm";
const TAR = "build/oci/shadowmesh-wasm.tar";
const WASM_CONFIG = "application/vnd.module.wasm.config.v1+json";
const WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Descriptor { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }
interface Manifest { schemaVersion: number; mediaType?: string; config: Descriptor; layers: Descriptor[]; annotations?: Record<string, string> }

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
/** A child's environment without NODE_OPTIONS, which could carry a TypeScript loader in. */
function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}
function node(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, args, { encoding: "utf8", env: plainEnv(opts.env), cwd: opts.cwd ?? process.cwd(), maxBuffer: 16 * 1024 * 1024 });
}
const onPath = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;

/** Reads the blob a descriptor names and checks its digest (file name and content) and size. */
function blob(d: Descriptor, what: string): Buffer {
  assert.match(d.digest, /^sha256:[a-f0-9]{64}$/, `${what}: digest ${d.digest} is not sha256:<64 hex>`);
  const hex = d.digest.slice("sha256:".length);
  const file = path.join(OCI, "blobs", "sha256", hex);
  assert.ok(existsSync(file), `${what}: blob ${file} is missing`);
  const bytes = readFileSync(file);
  assert.is(sha256(bytes), hex, `${what}: ${file} hashes to ${sha256(bytes)}, not its name`);
  assert.is(bytes.length, d.size, `${what}: descriptor size ${d.size}, blob has ${bytes.length} bytes`);
  return bytes;
}

let stdout = "";
let elapsedS = 0;

test.before(() => {
  const t0 = performance.now();
  // The suite built the module before the tests (npm test): package it as built.
  const r = node(["scripts/package.mjs", "--no-wasm-build"]);
  elapsedS = (performance.now() - t0) / 1000;
  assert.is(r.status, 0, `node scripts/package.mjs failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  stdout = r.stdout;
  console.log(`package: node scripts/package.mjs took ${elapsedS.toFixed(1)} s`);
});

test("package.mjs finishes (within a minute: a hang guard, not a speed target) and prints the module's sha256 and the manifest digest", () => {
  assert.ok(elapsedS < 60, `took ${elapsedS.toFixed(1)} s`);
  const mod = stdout.match(/^module sha256: ([a-f0-9]{64})\b/m);
  const man = stdout.match(/^manifest digest: (sha256:[a-f0-9]{64})\b/m);
  assert.ok(mod, `no "module sha256:" line in:\n${stdout}`);
  assert.ok(man, `no "manifest digest:" line in:\n${stdout}`);
  assert.is(mod[1], sha256(readFileSync("build/shadowmesh.wasm")), "the printed module sha256 is build/shadowmesh.wasm's");
  const index = JSON.parse(readFileSync(path.join(OCI, "index.json"), "utf8")) as { manifests: Descriptor[] };
  assert.is(man[1], index.manifests[0]?.digest, "the printed manifest digest is index.json's");
});

test("the OCI layout reads back: oci-layout, index.json -> manifest, every blob's digest and size", () => {
  assert.equal(JSON.parse(readFileSync(path.join(OCI, "oci-layout"), "utf8")), { imageLayoutVersion: "1.0.0" });
  const index = JSON.parse(readFileSync(path.join(OCI, "index.json"), "utf8")) as { schemaVersion: number; mediaType?: string; manifests: Descriptor[] };
  assert.is(index.schemaVersion, 2);
  assert.is(index.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.is(index.manifests.length, 1, "one image in the layout");
  const md = index.manifests[0]!;
  assert.is(md.mediaType, MANIFEST);
  const manifest = JSON.parse(blob(md, "manifest").toString("utf8")) as Manifest;
  assert.is(manifest.schemaVersion, 2);
  assert.is(manifest.mediaType, MANIFEST);
  const referenced = new Set([md.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
  for (const f of readdirSync(path.join(OCI, "blobs", "sha256"))) {
    assert.is(sha256(readFileSync(path.join(OCI, "blobs", "sha256", f))), f, `blob ${f}: content does not hash to its name`);
    assert.ok(referenced.has(`sha256:${f}`), `blob ${f} is referenced by no descriptor`);
  }
  assert.equal(readdirSync(OCI).sort(), ["blobs", "index.json", "oci-layout"]);
  // The shipped WasmPlugin names this image by its manifest digest (what Istio checks for oci://).
  const wp = readFileSync("deploy/istio/alternatives/wasmplugin.yaml", "utf8");
  assert.match(wp, new RegExp(`sha256: "${md.digest.slice("sha256:".length)}"`), `deploy/istio/alternatives/wasmplugin.yaml's sha256 must be this build's manifest digest ${md.digest}`);
});

test("the image is the Wasm image spec's oci variant as Istio fetches it: the layer is build/shadowmesh.wasm", () => {
  const index = JSON.parse(readFileSync(path.join(OCI, "index.json"), "utf8")) as { manifests: Descriptor[] };
  const manifest = JSON.parse(blob(index.manifests[0]!, "manifest").toString("utf8")) as Manifest;
  assert.is(manifest.config.mediaType, WASM_CONFIG);
  const config = JSON.parse(blob(manifest.config, "config").toString("utf8")) as { type: string; abiVersions: string[]; config: { rootIds: string[] } };
  // istio pkg/wasm/imagefetcher.go extractOCIArtifactImage: exactly two layers, the module is the one of WASM_LAYER.
  assert.is(manifest.layers.length, 2, "Istio's oci-variant fetcher needs exactly 2 layers");
  const wasmLayers = manifest.layers.filter((l) => l.mediaType === WASM_LAYER);
  assert.is(wasmLayers.length, 1, `one layer of ${WASM_LAYER}`);
  const other = manifest.layers.find((l) => l.mediaType !== WASM_LAYER)!;
  assert.is(other.mediaType, WASM_CONFIG, "the other layer is the runtime config");
  assert.equal(blob(other, "config layer"), blob(manifest.config, "config"), "the config layer is runtime-config.json");
  assert.is(other.annotations?.["org.opencontainers.image.title"], "runtime-config.json");

  const module = readFileSync("build/shadowmesh.wasm");
  const layer = blob(wasmLayers[0]!, "wasm layer");
  assert.is(wasmLayers[0]!.digest, `sha256:${sha256(module)}`, "the layer digest is the module's sha256");
  assert.ok(layer.equals(module), "the layer is build/shadowmesh.wasm byte for byte");
  assert.ok(layer.subarray(0, 4).equals(Buffer.from([0, 0x61, 0x73, 0x6d])), "Istio's isValidWasmBinary: \\0asm magic");

  const exported = WebAssembly.Module.exports(new WebAssembly.Module(module)).map((e) => e.name);
  assert.is(config.type, "envoy_proxy");
  assert.ok(config.abiVersions.length > 0 && config.abiVersions.every((a) => exported.includes(a)), `abiVersions ${config.abiVersions} are exports of the module`);
  assert.equal(config.config.rootIds, ["shadowmesh"]);
  assert.is(manifest.annotations?.["module.wasm.runtime/type"], "envoy_proxy");
  assert.is(manifest.annotations?.["module.wasm.runtime/abi_version"], config.abiVersions.join(","));
});

test("the tarball holds the same layout: listed and unpacked by the system's tar", () => {
  const list = spawnSync("tar", ["-tf", TAR], { encoding: "utf8" });
  assert.is(list.status, 0, `tar -tf ${TAR}: ${list.stderr}`);
  const files = list.stdout.split("\n").filter((l) => l && !l.endsWith("/")).sort();
  const blobs = readdirSync(path.join(OCI, "blobs", "sha256")).map((f) => `blobs/sha256/${f}`);
  assert.equal(files, [...blobs, "index.json", "oci-layout"].sort());
  const dir = mkdtempSync(path.join(tmpdir(), "sm-oci-"));
  try {
    const x = spawnSync("tar", ["-xf", TAR, "-C", dir], { encoding: "utf8" });
    assert.is(x.status, 0, `tar -xf ${TAR}: ${x.stderr}`);
    for (const f of files) assert.ok(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(OCI, f))), `${f} in ${TAR} differs from ${OCI}/${f}`);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

// A skip is registered as one (and said on its own line), never counted as a pass.
whenAvailable("skopeo", onPath("skopeo") ? null : "not installed (Debian: apt-get install skopeo)", "skopeo inspect --raw returns the same manifest", async () => {
  const r = spawnSync("skopeo", ["inspect", "--raw", `oci:${OCI}`], { encoding: "buffer" });
  assert.is(r.status, 0, `skopeo inspect --raw oci:${OCI}: ${r.stderr.toString()}`);
  const index = JSON.parse(readFileSync(path.join(OCI, "index.json"), "utf8")) as { manifests: Descriptor[] };
  assert.is(sha256(r.stdout), index.manifests[0]!.digest.slice("sha256:".length), "skopeo's raw manifest has the index's digest");
});

test("the compiled CLI runs without tsx: --version", () => {
  assert.ok(!existsSync("dist/test") && !existsSync("dist/benchmarks"), "dist/ has no tests or benchmarks");
  const r = node(["dist/controller/cli-main.js", "--version"]);
  assert.is(r.status, 0, `node dist/controller/cli-main.js --version: exit ${r.status}: ${r.stderr}`);
  assert.match(r.stdout.split("\n")[0]!, /^shadowmesh \S+ \(revision /);
});

/** Every file under dir with its mtime (to see that a run wrote nothing there). */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => { for (const e of readdirSync(d, { withFileTypes: true })) { const f = path.join(d, e.name); if (e.isDirectory()) walk(f); else out.push(`${f} ${statSync(f).mtimeMs}`); } };
  walk(dir);
  return out.sort();
}

test("the compiled controller serves /healthz, the dashboard and its API, and writes only to its state directory", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-dist-"));
  const token = "package-test-token-0123456789";
  const state = path.join(dir, "state"), cwd = path.join(dir, "cwd");
  for (const d of [state, cwd]) spawnSync("mkdir", ["-p", d]);
  writeFileSync(path.join(dir, "controller.yaml"), testControllerYaml({ token, stateDir: state }));
  // As root, run as 65532 (the image's USER) when setpriv is there: the repository is not writable to it.
  const asUser = process.getuid?.() === 0 && onPath("setpriv");
  if (asUser) { chmodSync(dir, 0o755); chownSync(state, 65532, 65532); chownSync(cwd, 65532, 65532); }
  else console.log("package: the compiled controller runs as the current user (not root, or no setpriv)");
  const before = snapshot("dist");
  const cmd = asUser ? "setpriv" : process.execPath;
  const args = [...(asUser ? ["--reuid=65532", "--regid=65532", "--clear-groups", process.execPath] : []), path.resolve("dist/controller/cli-main.js"), "controller", "--config", path.join(dir, "controller.yaml")];
  const child = spawn(cmd, args, { cwd, env: plainEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stderr.on("data", (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  try {
    try {
      const ready = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the compiled controller was not ready in 20 s:\n${out}${err}`)), 20_000);
        child.stdout.on("data", (b: Buffer) => { out += b.toString(); const m = out.match(/controller ready: .*\n/); if (m) { clearTimeout(timer); resolve(m[0]); } });
        child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the compiled controller exited (${code}) before it was ready:\n${out}${err}`)); });
      });
      const http = ready.match(/http :(\d+)/)?.[1], api = ready.match(/api :(\d+)/)?.[1];
      assert.ok(http && api, `ports in ${ready}`);
      assert.is(await (await fetch(`http://127.0.0.1:${http}/healthz`)).text(), "ok\n");
      for (const [p, want] of [["/", "<title>shadowmesh</title>"], ["/assets/dashboard.js", ""], ["/assets/uplot.js", ""]] as const) {
        const res = await fetch(`http://127.0.0.1:${http}${p}`);
        assert.is(res.status, 200, `GET ${p}`);
        assert.ok((await res.text()).includes(want), `GET ${p} has ${want}`);
      }
      // The CLI's API client loads controller.proto from dist/proto.
      const st = node(["dist/controller/cli-main.js", "status", "--address", `127.0.0.1:${api}`, "-o", "json"], { env: { SHADOWMESH_TOKEN: token } });
      assert.is(st.status, 0, `status: ${st.stderr}`);
      assert.equal((JSON.parse(st.stdout) as { components: { name: string }[] }).components.map((c) => c.name), ["orders"]);
    } finally {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    }
    assert.ok(readdirSync(state).length > 0, "the controller saved its state in stateDir");
    assert.equal(readdirSync(cwd), [], "nothing written to the working directory");
    assert.equal(snapshot("dist"), before, "nothing written under dist/");
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("deploy/Containerfile: multi-stage, compiled entry point, npm ci --omit=dev, non-root numeric USER, no tsx at run time", () => {
  const text = readFileSync("deploy/Containerfile", "utf8").replace(/\\\n/g, " ");
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const froms = lines.map((l, i) => [l, i] as const).filter(([l]) => /^FROM\s/i.test(l));
  assert.ok(froms.length >= 2, "a build stage and a runtime stage");
  const runtime = lines.slice(froms[froms.length - 1]![1]);
  const build = lines.slice(froms[0]![1], froms[froms.length - 1]![1]);
  const user = runtime.filter((l) => /^USER\s/i.test(l)).pop();
  assert.ok(user, "the runtime stage sets USER");
  const uid = user.split(/\s+/)[1]!.split(":")[0]!;
  assert.match(uid, /^\d+$/, `USER ${uid} is numeric (Kubernetes' runAsNonRoot can check it)`);
  assert.ok(Number(uid) !== 0, "USER is not root");
  for (const l of lines.filter((l) => /^(CMD|ENTRYPOINT)\s/i.test(l))) assert.not.match(l, /tsx/, `no tsx at run time: ${l}`);
  assert.ok(runtime.some((l) => /^ENTRYPOINT\s.*dist\/controller\/cli-main\.js/i.test(l)), "ENTRYPOINT runs the compiled CLI");
  assert.ok(runtime.some((l) => /^RUN\s.*npm ci\b.*--omit=dev/i.test(l)), "the runtime stage runs npm ci --omit=dev");
  assert.ok(runtime.some((l) => /^COPY\s+--from=build\s+\S*dist\b/i.test(l)), "the runtime stage copies dist/ from the build stage");
  assert.ok(build.some((l) => /^RUN\s.*(tsc -p tsconfig\.build\.json|scripts\/package\.mjs --controller-only)/i.test(l)), "the build stage compiles with tsconfig.build.json");
  // Every file the build stage copies from the context exists (a moved file breaks the recipe here first).
  for (const l of build.filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))) {
    const srcs = l.split(/\s+/).slice(1, -1).filter((s) => !s.startsWith("--"));
    for (const s of srcs) assert.ok(existsSync(s), `deploy/Containerfile: ${l}: ${s} does not exist`);
  }
});

test.run();
