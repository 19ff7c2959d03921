// The xDS side the fleet benchmarks share (xds.bench.ts, ha-replica.ts): an ADS server on a loopback
// port with its snapshot cache and a traffic router for one component, as the controller builds them.
import { AdsServer } from "../controller/xds/server.js";
import { SnapshotCache } from "../controller/xds/cache.js";
import { XdsTrafficRouter } from "../controller/xds/router.js";
import { silentLogger } from "../controller/log.js";

export const BENCH_COMPONENT = {
  name: "orders", hostnames: ["orders.svc"], mode: "weighted_clusters" as const,
  primary: { name: "orders-primary", locality: { zone: "a" }, endpoints: [{ address: "10.0.0.1", port: 5432 }] },
  shadow: { name: "orders-shadow", locality: { zone: "b" }, endpoints: [{ address: "10.0.1.1", port: 5432 }] },
};

export async function benchXds(): Promise<{ cache: SnapshotCache; server: AdsServer; router: XdsTrafficRouter; port: number }> {
  const logger = silentLogger();
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, logger });
  const port = await server.listen("127.0.0.1:0");
  const router = new XdsTrafficRouter({ cache, server, logger, components: [BENCH_COMPONENT] });
  router.start();
  return { cache, server, router, port };
}
