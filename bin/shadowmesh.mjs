#!/usr/bin/env node
// The `shadowmesh` executable: loads the TypeScript sources through tsx and runs the CLI.
import { register } from "tsx/esm/api";
register();
const { buildCli } = await import("../controller/cli.ts");
try {
  await buildCli().parseAsync(process.argv);
} catch (e) {
  // The commands report their own errors; this is for anything that escaped them.
  process.stderr.write(`shadowmesh: ${e instanceof Error ? e.message || e.name : String(e)}\n`);
  process.exit(1);
}
