// The compiled `shadowmesh` entry point (dist/controller/cli-main.js, the container image's ENTRYPOINT):
// what bin/shadowmesh.mjs does, without tsx: builds the CLI and runs it on process.argv.
import { buildCli } from "./cli.js";

try {
  await buildCli().parseAsync(process.argv);
} catch (e) {
  // The commands report their own errors; this is for anything that escaped them.
  process.stderr.write(`shadowmesh: ${e instanceof Error ? e.message || e.name : String(e)}\n`);
  process.exit(1);
}
