// Fixtures for xDS tests: gRPC backends that answer with their own name, an ADS server with a
// router over one component (primary + shadow on loopback), and a raw ADS client.
import * as grpc from "@grpc/grpc-js";
import { AdsServer } from "../../controller/xds/server.js";
import { adsClient } from "../../protocol/ads.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { XdsTrafficRouter } from "../../controller/xds/router.js";
import type { RouteSpec } from "../../controller/xds/resources.js";
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

export function component(name: string, primaryPort: number, shadowPort: number): RouteSpec {
  return {
    name, hostnames: [`${name}.svc`], mode: "weighted_clusters",
    primary: { name: `${name}-primary`, locality: { region: "eu-west", zone: "eu-west-1a" }, endpoints: [{ address: "127.0.0.1", port: primaryPort }] },
    shadow: { name: `${name}-shadow`, locality: { region: "eu-west", zone: "eu-west-1b" }, endpoints: [{ address: "127.0.0.1", port: shadowPort }] },
  };
}

export async function controlPlane(components: RouteSpec[], extra: Partial<ConstructorParameters<typeof XdsTrafficRouter>[0]> = {}) {
  const logger = silentLogger();
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, logger });
  const port = await server.listen("127.0.0.1:0");
  const router = new XdsTrafficRouter({ cache, server, logger, components, ...extra });
  const initial = router.start();
  return { cache, server, port, router, initial, close: () => server.close() };
}

export { adsClient };

import { TYPE, unpack } from "../../protocol/protos.js";

type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, any>>;

/** A raw ADS stream (SotW or delta) whose responses are awaited one by one. */
export class RawAds {
  readonly responses: Record<string, any>[] = [];
  private waiters: { resolve: (r: Record<string, any>) => void; reject: (e: Error) => void }[] = [];
  error?: grpc.ServiceError;
  ended = false;
  readonly call: Duplex;

  constructor(readonly client: ReturnType<typeof adsClient>, readonly delta = false) {
    this.call = (delta ? client.DeltaAggregatedResources() : client.StreamAggregatedResources()) as unknown as Duplex;
    this.call.on("data", (r) => { const w = this.waiters.shift(); if (w) w.resolve(r); else this.responses.push(r); });
    this.call.on("error", (e: grpc.ServiceError) => {
      this.error = e;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`stream failed: ${e.message}`));
    });
    this.call.on("end", () => { this.ended = true; });
  }

  send(req: Record<string, unknown>): void { this.call.write(req); }

  /** The next response, or an error after `ms`. */
  next(ms = 3000): Promise<Record<string, any>> {
    const r = this.responses.shift();
    if (r) return Promise.resolve(r);
    if (this.error) return Promise.reject(new Error(`stream failed: ${this.error.message}`));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (x: Record<string, any>) => { clearTimeout(t); resolve(x); },
        reject: (e: Error) => { clearTimeout(t); reject(e); },
      };
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); reject(new Error(`no response within ${ms} ms`)); }, ms);
      this.waiters.push(w);
    });
  }

  /** Resolves true when no response arrives within ms. */
  async silent(ms = 300): Promise<boolean> {
    try { await this.next(ms); return false; } catch { return true; }
  }

  /** Waits until the stream failed (returns its error). */
  async failed(ms = 3000): Promise<grpc.ServiceError> {
    const t0 = Date.now();
    while (!this.error && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 10));
    if (!this.error) throw new Error("the stream did not fail");
    return this.error;
  }

  close(): void { this.call.cancel(); }
}

export const NODE = (id: string) => ({ id, cluster: "test", locality: { zone: "eu-west-1a" } });

/** Decoded resources of a SotW response. */
export function resourcesOf(res: Record<string, any>): Record<string, any>[] {
  return (res.resources as { type_url: string; value: Uint8Array }[]).map((a) => unpack(a));
}

/** Decoded resources of a delta response, by name. */
export function deltaResourcesOf(res: Record<string, any>): Map<string, { version: string; resource: Record<string, any> }> {
  return new Map((res.resources as { name: string; version: string; resource: { type_url: string; value: Uint8Array } }[])
    .map((r) => [r.name, { version: r.version, resource: unpack(r.resource) }]));
}

/** The shadow weight in a route of the component's RDS resource. */
export function shadowWeight(route: Record<string, any>): number {
  const clusters = route.virtual_hosts[0].routes[0].route.weighted_clusters.clusters as { name: string; weight: { value?: number } }[];
  return clusters.find((c) => c.name.endsWith("-shadow"))!.weight.value ?? 0; // proto3 leaves a 0 out
}

/**
 * Waits until the server has processed the client's ACK of `version`: a change published before
 * that would make the ACK's nonce stale (and rightly ignored).
 */
export async function acked(server: AdsServer, node: string, type: string, version: string, ms = 2000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (server.status().some((s) => s.node === node && s.types[type]?.confirmed === version)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${node} ${type} never confirmed ${version}`);
}

export { TYPE };
