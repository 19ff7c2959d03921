// The import rule between top-level folders: imports point down, from the simulation and tools
// (world/, benchmarks/, scripts/, test/) to the data plane and the controller, and from those to
// the protocol and the libraries (protocol/: the xDS protos and ADS; host/: the proxy-wasm host,
// clocks, seeded randomness). The controller and the data plane are peers that never import each
// other, nothing in production imports test/, the demo or the benchmarks, and the bottom layer
// imports no other folder. The tools at the top (none of them shipped) may share their fixtures
// (test/support's generators and loaders, the benchmarks' harness). Read from the sources as text (every static and dynamic import with a
// relative specifier), so a violation names the file, the line and what it imports.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Layer of each top-level folder with TypeScript sources: a folder may import only from lower layers (and itself). */
const LAYER: Record<string, number> = {
  protocol: 0, host: 0,
  controller: 1, dataplane: 1,
  world: 2, benchmarks: 3, scripts: 3, test: 3,
};
/** The tools' layer: its folders may import one another. */
const TOOLS = 3;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== "node_modules") out.push(...sources(rel)); }
    else if (/\.(ts|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

/** Every relative import of a file: [line, specifier, top-level folder it lands in]. */
function importsOf(file: string): [number, string, string][] {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  const out: [number, string, string][] = [];
  for (const m of text.matchAll(IMPORT)) {
    const target = path.normalize(path.join(path.dirname(file), m[1]!));
    const line = text.slice(0, m.index).split("\n").length;
    out.push([line, m[1]!, target.split(path.sep)[0]!]);
  }
  return out;
}

function violations(folders: string[]): string[] {
  const bad: string[] = [];
  for (const folder of folders) {
    for (const file of sources(folder)) {
      for (const [line, spec, top] of importsOf(file)) {
        if (top === folder || top === "node_modules" || top === "package.json") continue;
        const to = LAYER[top];
        if (to === undefined) { if (LAYER[folder]! < 2) bad.push(`${file}:${line}: imports ${spec} (${top}/ is not a layer a production file may use)`); continue; }
        if (to > LAYER[folder]! || (to === LAYER[folder] && to < TOOLS)) bad.push(`${file}:${line}: imports ${spec}: ${folder}/ (layer ${LAYER[folder]}) may import only lower layers (peers below the tools do not import each other), not ${top}/ (layer ${to})`);
      }
    }
  }
  return bad;
}

test("every top-level folder imports only the layers below it", () => {
  const bad = violations(Object.keys(LAYER).filter((f) => f !== "test"));
  assert.equal(bad, [], `\n${bad.join("\n")}`);
});

test("the check finds what it looks for: this tree has imports across folders, and a made-up upward one is named", () => {
  // Not vacuous: the controller does import the lower layers, and the regex sees them.
  const controllerImports = sources("controller").flatMap(importsOf).map(([, , top]) => top);
  assert.ok(controllerImports.includes("host"), "the controller imports host/ (its clock)");
  assert.ok(sources("dataplane").flatMap(importsOf).some(([, , top]) => top === "protocol"), "the data plane imports protocol/");
  const fake = `import { x } from "../controller/a.js";\nconst y = await import("../world/b.js");\nimport "../test/c.js";\n`;
  const found = [...fake.matchAll(IMPORT)].map((m) => m[1]);
  assert.equal(found, ["../controller/a.js", "../world/b.js", "../test/c.js"]);
});

test.run();
