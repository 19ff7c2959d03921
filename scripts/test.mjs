// `npm test`: makes sure the system programs the tests start are there (installing them with
// apt-get when it runs as root on Debian, as .ci/run does; otherwise naming the one command to run),
// installs node_modules from the lockfile when missing (npm ci), builds the Wasm modules, type-checks, runs every test/**/*.test.ts with uvu (in two lanes at once), and closes with one
// line "N passed, N failed[, N skipped]". Exits non-zero on any failure.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Program (on PATH, or an absolute path) -> Debian package, for what the tests run for real (never a downloaded browser). */
const NEEDED = [["openssl", "openssl"], ["chromium", "chromium"], ["/usr/lib/postgresql/15/bin/postgres", "postgresql"], ["promtool", "prometheus"], ["skopeo", "skopeo"], ["stress-ng", "stress-ng"], ["etcd", "etcd-server"]];

function onPath(cmd) { return cmd.startsWith("/") ? existsSync(cmd) : spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0; }

function ensureSystemPackages() {
  const missing = NEEDED.filter(([cmd]) => !onPath(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y ${missing.join(" ")}`;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (root && existsSync("/usr/bin/apt-get")) {
    console.error(`npm test: installing ${missing.join(", ")} (${command})`);
    const r = spawnSync("sh", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(" ")} >/dev/null`], { stdio: "inherit" });
    if (r.status === 0 && NEEDED.every(([cmd]) => onPath(cmd))) return;
    console.error(`npm test: installing ${missing.join(", ")} failed (exit ${r.status})`);
  }
  console.error(`npm test needs ${missing.join(" and ")} (Debian packages). Run, as root:\n  ${command}\nthen npm test again.`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

/** A fresh clone has no node_modules: install the locked dependencies first (npm ci), as .ci/run does. */
function ensureNodeModules() {
  if (existsSync("node_modules/.package-lock.json")) return;
  console.error("npm test: node_modules is missing: npm ci");
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { stdio: "inherit" });
  if (r.status === 0) return;
  console.error(`npm test: npm ci failed (exit ${r.status}); run it yourself, then npm test again.`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

function step(name, cmd, args) {
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`\n${name} failed (exit ${r.status})`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

ensureSystemPackages();
ensureNodeModules();
step("build", process.execPath, ["scripts/build-wasm.mjs"]);
step("type-check", process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"]);

/**
 * Two lanes at once: the real-PostgreSQL runs (test/system/postgres-*: minutes of wall clock each,
 * spent mostly waiting on the faults' timelines; and the PostgreSQL driver's own tests on real
 * instances, about a minute together) beside every other file (CPU-bound). One lane with a filter
 * argument.
 */
const REAL_LANE = "^(system[\\\\/]postgres-|drivers[\\\\/](postgres-driver|pg-lease-agent|pg-promote))";
const filter = process.argv[2];
const lanes = filter ? [[filter]] : [["\\.test\\.ts$", "-i", REAL_LANE], [`${REAL_LANE}.*\\.test\\.ts$`]];
const runLane = (args) => new Promise((resolve) => {
  const child = spawn(process.execPath, ["--import", "tsx", "node_modules/uvu/bin.js", "test", ...args],
    { env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "", lingered = false, stopTimer = null;
  child.stdout.setEncoding("utf8").on("data", (d) => {
    stdout += d;
    // uvu's last line is its Duration. A lane still running 10 s later is held open by a handle a test
    // left behind (seen once: a proxy-wasm tick timer), not by a test: its results are in, so it is
    // stopped and that is said on its own line, instead of the suite hanging until CI's timeout.
    if (stopTimer === null && /Duration:\s+[\d.]+ms/.test(stdout)) stopTimer = setTimeout(() => { lingered = true; child.kill("SIGKILL"); }, 10_000);
  });
  child.stderr.setEncoding("utf8").on("data", (d) => { stderr += d; });
  child.on("close", (status) => {
    if (stopTimer) clearTimeout(stopTimer);
    if (lingered) stderr += `\nlane ${args[0]}: every test finished, but the process did not exit within 10 s (a handle left open); stopped\n`;
    resolve({ status: lingered ? 0 : status, stdout, stderr });
  });
});
const results = await Promise.all(lanes.map(runLane));
let passed = 0, failed = 0, skipped = 0;
for (const r of results) {
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  // uvu colours its counts (Skipped's is "\x1b[33m1\x1b[39m"): read them with the escapes taken out.
  const plain = r.stdout.replace(/\x1b\[[0-9;]*m/g, "");
  const num = (label) => Number((plain.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
  const total = num("Total"), p = num("Passed"), sk = num("Skipped") || 0;
  if (!Number.isFinite(total) || !Number.isFinite(p)) {
    console.log(`\nthe test runner did not report totals (exit ${r.status})`);
    failed += 1;
    continue;
  }
  passed += p; skipped += sk;
  // uvu's Total counts the tests that ran: a skipped one is in neither Total nor Passed.
  failed += total - p + (r.status !== 0 && total === p ? 1 : 0);
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
