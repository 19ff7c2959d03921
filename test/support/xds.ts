// Fixtures for xDS tests: gRPC backends that answer with their own name, an ADS server with a
// router over one component (primary + shadow on loopback), and a raw ADS client.
import * as grpc from "@grpc/grpc-js";
import { AdsServer, adsClient } from "../../controller/xds/server.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { XdsTrafficRouter } from "../../controller/xds/router.js";
import type { ComponentSpec } from "../../controller/xds/resources.js";
import { silentLogger } from "../../controller/log.js";

export const WHO_SERVICE = "shadowmesh.test.Who";
const raw = (b: Buffer) => b;
export const WHO_METHODS: grpc.ServiceDefinition = {
  Name: { path: `/${WHO_SERVICE}/Name`, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
} as grpc.ServiceDefinition;

/** A gRPC server whose one method answers with `name`. */
export async function whoServer(name: string): Promise<{ port: number; close: () => void; calls: () => number }> {
  const server = new grpc.Server();
  let calls = 0;
  server.addService(WHO_METHODS, { Name: (_call: unknown, cb: (e: null, b: Buffer) => void) => { calls++; cb(null, Buffer.from(name)); } });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, close: () => server.forceShutdown(), calls: () => calls };
}

export function component(name: string, primaryPort: number, shadowPort: number): ComponentSpec {
  return {
    name, hostnames: [`${name}.svc`], mode: "weighted_clusters",
    primary: { name: `${name}-primary`, locality: { region: "eu-west", zone: "eu-west-1a" }, endpoints: [{ address: "127.0.0.1", port: primaryPort }] },
    shadow: { name: `${name}-shadow`, locality: { region: "eu-west", zone: "eu-west-1b" }, endpoints: [{ address: "127.0.0.1", port: shadowPort }] },
  };
}

export async function controlPlane(components: ComponentSpec[], extra: Partial<ConstructorParameters<typeof XdsTrafficRouter>[0]> = {}) {
  const logger = silentLogger();
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, logger });
  const port = await server.listen("127.0.0.1:0");
  const router = new XdsTrafficRouter({ cache, server, logger, components, ...extra });
  const initial = router.start();
  return { cache, server, port, router, initial, close: () => server.close() };
}

export { adsClient };
