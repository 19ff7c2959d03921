// Runs the orders API (world/sample/orders.ts) as a process, e.g. in its instance's zone:
//   ip netns exec ZONE node --import tsx world/sample/orders-main.ts --pg URL --host ADDR --port N [--name NAME]
// Prints "listening on ADDR:PORT" on stdout once it listens.
import { Command, InvalidArgumentError } from "commander";
import { OrdersApi } from "./orders.js";

const port = (v: string) => { const n = Number(v); if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`must be a port number, got ${JSON.stringify(v)}`); return n; };
const o = new Command("orders-api")
  .requiredOption("--pg <url>", "the local instance, postgresql://USER@HOST:PORT/DB")
  .option("--host <address>", "address to bind", "127.0.0.1").option("--port <n>", "port", port, 0)
  .option("--name <name>", "a name for the instance's application_name")
  .parse().opts<{ pg: string; host: string; port: number; name?: string }>();
const api = new OrdersApi({ url: o.pg, ...(o.name ? { name: o.name } : {}) });
const p = await api.start(o.port, o.host);
process.stdout.write(`listening on ${o.host}:${p}\n`);
const stop = () => void api.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
