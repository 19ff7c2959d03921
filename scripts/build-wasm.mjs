// Builds the filter (optimized + debug) and the sketch benchmark module with asc.
import { main } from "assemblyscript/asc";
import { mkdirSync } from "node:fs";

mkdirSync("build", { recursive: true });
const common = [
  "--lib", "assembly/lib",
  "--use", "abort=shadowmesh_abort",
  "--exportStart", "_initialize",
  "--runtime", "minimal",
];
const targets = [
  ["assembly/index.ts", "build/shadowmesh.wasm", ["-O3", "--noAssert", "--converge"]],
  ["assembly/index.ts", "build/shadowmesh.debug.wasm", ["--debug", "--sourceMap"]],
  ["assembly/sketch-bench.ts", "build/sketch-bench.wasm", ["-O3", "--noAssert"]],
  // Test-only: a scriptable module that checks the host against the spec without our filter.
  ["test/wasm/probe.ts", "build/probe.wasm", ["-O1"]],
];
// Benchmark-only: the same per-request core on @gcoredev/proxy-wasm-sdk-as and on our ABI layer
// (benchmarks/abi.bench.ts), built only by `npm run bench`.
if (process.argv.includes("--bench")) {
  targets.push(
    ["benchmarks/abi/own-filter.ts", "build/abi-own.wasm", ["-O3", "--noAssert"]],
    ["benchmarks/abi/sdk-filter.ts", "build/abi-sdk.wasm", ["-O3", "--noAssert", "--config", "node_modules/@assemblyscript/wasi-shim/asconfig.json", "--use", "abort=abort_proc_exit", "--runtime", "incremental"]],
  );
}
for (const [entry, out, flags] of targets) {
  // The SDK build brings its own configuration (abort mapping, runtime): ours must not override it.
  const base = flags.includes("--config") ? [] : common;
  const { error, stderr } = await main([entry, "--outFile", out, "--textFile", out.replace(/\.wasm$/, ".wat"), ...base, ...flags]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build failed: ${entry} -> ${out}: ${error.message}`);
    process.exit(1);
  }
  console.log(`built ${out}`);
}
