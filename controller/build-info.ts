// The controller's version (package.json's, found by walking up from this file, so it holds from the
// sources and from a compiled tree alike) and revision (SHADOWMESH_REVISION, set by the image build;
// "unknown" otherwise): /metrics' shadowmesh_build_info and the CLI's --version.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const f = path.join(dir, "package.json");
    if (existsSync(f)) {
      try { const p = JSON.parse(readFileSync(f, "utf8")) as { name?: string; version?: string }; if (p.name === "shadowmesh" && p.version) return p.version; } catch { /* not ours */ }
    }
    dir = path.dirname(dir);
  }
  return "unknown";
}

export const BUILD = { version: packageVersion(), revision: process.env.SHADOWMESH_REVISION ?? "unknown" };
