// Runs the PostgreSQL lease agent (world/sample/pg-lease-agent.ts) as a process, e.g. in the instance's zone:
//   SHADOWMESH_LEASE_TOKEN=... ip netns exec ZONE node --import tsx world/sample/pg-lease-agent-main.ts --pg URL --host ADDR --port N
// Prints "listening on ADDR:PORT" on stdout once it listens.
import { Command, InvalidArgumentError } from "commander";
import { PgLeaseAgent } from "./pg-lease-agent.js";

const port = (v: string) => { const n = Number(v); if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`must be a port number, got ${JSON.stringify(v)}`); return n; };
const o = new Command("pg-lease-agent")
  .requiredOption("--pg <url>", "the local instance, postgresql://USER@HOST:PORT/DB")
  .option("--host <address>", "address to bind", "127.0.0.1").option("--port <n>", "port", port, 0)
  .option("--data-dir <dir>", "the instance's data directory: an instance that cannot be fenced when the lease runs out is killed")
  .option("--token-env <name>", "environment variable holding the bearer token the controller sends", "SHADOWMESH_LEASE_TOKEN")
  .parse().opts<{ pg: string; host: string; port: number; tokenEnv: string; dataDir?: string }>();
const token = process.env[o.tokenEnv];
if (!token || token.length < 16) { console.error(`--token-env: ${o.tokenEnv} must hold the token (at least 16 characters)`); process.exit(2); }
const agent = new PgLeaseAgent({ url: o.pg, token, ...(o.dataDir ? { dataDir: o.dataDir } : {}) });
const p = await agent.start(o.port, o.host);
process.stdout.write(`listening on ${o.host}:${p}\n`);
const stop = () => void agent.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
