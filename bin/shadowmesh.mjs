#!/usr/bin/env node
// The `shadowmesh` executable: loads the TypeScript sources through tsx and runs the CLI.
import { register } from "tsx/esm/api";
register();
const { buildCli } = await import("../controller/cli.ts");
await buildCli().parseAsync(process.argv);
