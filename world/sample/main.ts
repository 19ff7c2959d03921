// Runs one node of the sample KV pair as a process (the compose file's orders-a and orders-b):
//   SAMPLE_KV_ADMIN_TOKEN=... node --import tsx world/sample/main.ts --name orders-zone-a --side primary --role leader --port 7001 --peer http://orders-b:7002 [--require-lease]
// The admin endpoints always require the token (read from an environment variable, never the command
// line, which any local user can read); the node binds 127.0.0.1 unless --host says otherwise.
import { Command, InvalidArgumentError } from "commander";
import { createLogger } from "../../controller/log.js";
import { KvNode } from "./kv.js";

const port = (v: string) => { const n = Number(v); if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`must be a port number, got ${JSON.stringify(v)}`); return n; };
const o = new Command("sample-kv")
  .requiredOption("--name <name>").requiredOption("--side <side>", "primary or shadow").requiredOption("--role <role>", "leader or follower")
  .option("--zone <zone>", "zone label", "zone-a").option("--port <n>", "port", port, 7001).option("--host <address>", "address to bind", "127.0.0.1")
  .option("--admin-token-env <name>", "environment variable holding the token /admin/* requires (at least 16 characters)", "SAMPLE_KV_ADMIN_TOKEN")
  .option("--peer <url>", "the other node's base URL")
  .option("--require-lease", "take writes only while the controller's leader lease is valid (see world/sample/kv.ts)", false)
  .parse().opts<{ name: string; side: string; role: string; zone: string; port: number; host: string; peer?: string; requireLease: boolean; adminTokenEnv: string }>();
const adminToken = process.env[o.adminTokenEnv];
if (!adminToken || adminToken.length < 16) { console.error(`--admin-token-env: the environment variable ${o.adminTokenEnv} must hold the admin token (at least 16 characters)${adminToken ? `, got ${adminToken.length}` : ": it is not set"}`); process.exit(2); }
if (o.side !== "primary" && o.side !== "shadow") { console.error(`--side: must be primary or shadow, got ${JSON.stringify(o.side)}`); process.exit(2); }
if (o.role !== "leader" && o.role !== "follower") { console.error(`--role: must be leader or follower, got ${JSON.stringify(o.role)}`); process.exit(2); }
const node = new KvNode({ name: o.name, side: o.side, zone: o.zone, role: o.role, requireLease: o.requireLease, adminToken, log: createLogger(o.name, undefined, 2), ...(o.peer ? { peer: o.peer } : {}) });
await node.start(o.port, o.host);
process.stderr.write(`${o.name} (${o.role}) listening on ${o.host}:${o.port}\n`);
