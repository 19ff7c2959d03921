// `npm test`: builds the Wasm modules, type-checks, runs every test/**/*.test.ts with uvu, and
// closes with one line "N passed, N failed[, N skipped]". Exits non-zero on any failure.
import { spawnSync } from "node:child_process";

function step(name, cmd, args) {
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`\n${name} failed (exit ${r.status})`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

step("build", process.execPath, ["scripts/build-wasm.mjs"]);
step("type-check", process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"]);

const filter = process.argv[2] ?? "\\.test\\.ts$";
const r = spawnSync(process.execPath, ["--import", "tsx", "node_modules/uvu/bin.js", "test", filter],
  { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0" }, maxBuffer: 64 * 1024 * 1024 });
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
const num = (label) => Number((r.stdout.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
const total = num("Total"), passed = num("Passed"), skipped = num("Skipped") || 0;
if (!Number.isFinite(total) || !Number.isFinite(passed)) {
  console.log(`\nthe test runner did not report totals (exit ${r.status})`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const failed = total - passed - skipped + (r.status !== 0 && total === passed + skipped ? 1 : 0);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
