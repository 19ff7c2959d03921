// `npm run bench [name]`: builds, then runs benchmarks/<name>.bench.ts (all by default); each writes
// benchmarks/results/<name>.json.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const b = spawnSync(process.execPath, ["scripts/build-wasm.mjs", "--bench"], { stdio: "inherit" });
if (b.status !== 0) process.exit(1);
const only = process.argv[2];
const files = readdirSync("benchmarks").filter((f) => f.endsWith(".bench.ts") && (!only || f === `${only}.bench.ts`));
if (files.length === 0) { console.error(`no benchmark named ${only}`); process.exit(2); }
let failed = 0;
for (const f of files) {
  console.log(`\n== ${f}`);
  const r = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", `benchmarks/${f}`], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
