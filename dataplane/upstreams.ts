// The clusters the data plane knows (CDS, with endpoints from EDS or inline for STATIC ones), the
// choice of endpoint (Envoy's priority load: a priority's health is its share of hosts not ejected
// by outlier detection times the overprovisioning factor, lower priorities take what higher ones
// cannot, a priority below the panic threshold uses all its hosts; round robin inside a priority),
// outlier detection per cluster fed by every attempt's outcome, keep-alive pools per endpoint, and the plugin's
// callouts over real sockets: proxy_http_call as an HTTP/1.1 request to the named cluster,
// proxy_grpc_call as a unary gRPC call to it, proxy_grpc_stream as a bidirectional stream. The host enforces callout timeouts; cancelling (the
// stream or plugin went away) aborts the socket work.
import http from "node:http";
import * as grpc from "@grpc/grpc-js";
import type { Callouts, GrpcCallRequest, GrpcResult, GrpcStreamEvents, GrpcStreamSink, HttpCallRequest, HttpCallResponse } from "../host/callouts.js";
import type { HeaderMap } from "../host/headers.js";
import type { ClusterModel, Endpoint } from "./resources.js";
import { OutlierDetector, type Outcome } from "./outlier.js";

export interface UpstreamsOptions {
  /** Milliseconds for outlier detection (default: the wall clock; the incident benchmark passes a virtual one). */
  nowMs?: () => number;
  /** Uniform [0, 1) for priority picks and enforcement percentages (default Math.random). */
  random?: () => number;
}

const hostKey = (e: Endpoint) => `${e.address}:${e.port}`;

/** Headers that belong to one connection, never forwarded (RFC 9110 7.6.1). */
export const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "proxy-authenticate", "proxy-authorization"]);

const identity = (b: Buffer) => b;

/** A header map as Node's http wants it: pseudo-headers and hop-by-hop headers left out, repeats as arrays. */
export function toNodeHeaders(map: HeaderMap): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  map.forEach((k, v) => {
    if (k.startsWith(":") || HOP_BY_HOP.has(k)) return;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  });
  return out;
}

export class Upstreams implements Callouts {
  private clusters = new Map<string, ClusterModel>();
  private readonly eds = new Map<string, Endpoint[]>();
  private readonly edsOverprovisioning = new Map<string, number>();
  private readonly next = new Map<string, number>();
  private readonly outliers = new Map<string, OutlierDetector>();
  private readonly groups = new WeakMap<readonly Endpoint[], Endpoint[][]>();
  private readonly nowMs: () => number;
  private readonly random: () => number;
  private readonly agents = new Map<string, http.Agent>();
  private readonly grpcClients = new Map<string, grpc.Client>();
  private closed = false;
  /** Outbound call counts, by cluster, for status and tests. */
  readonly calls = { http: 0, grpc: 0, failed: 0 };

  constructor(o: UpstreamsOptions = {}) {
    this.nowMs = o.nowMs ?? Date.now;
    this.random = o.random ?? Math.random;
  }

  /** Replaces the cluster set (CDS is state of the world); pools of clusters that left are closed. */
  setClusters(list: ClusterModel[]): void {
    const before = this.clusters;
    this.clusters = new Map(list.map((c) => [c.name, c]));
    for (const name of [...this.eds.keys()]) if (!this.clusters.has(name)) this.eds.delete(name);
    for (const [name, c] of this.clusters) {
      const od = c.outlierDetection;
      const same = od && JSON.stringify(before.get(name)?.outlierDetection) === JSON.stringify(od);
      // A changed cluster starts a fresh detector, as Envoy rebuilds the cluster.
      if (!od) this.outliers.delete(name);
      else if (!same || !this.outliers.has(name)) this.outliers.set(name, new OutlierDetector(od, this.nowMs(), this.random));
      this.outliers.get(name)?.setHosts(this.endpoints(name).map(hostKey));
    }
    for (const name of [...this.outliers.keys()]) if (!this.clusters.has(name)) this.outliers.delete(name);
    this.prunePools();
  }

  setEndpoints(cluster: string, endpoints: Endpoint[], overprovisioningPercent = 140): void {
    this.eds.set(cluster, endpoints);
    this.edsOverprovisioning.set(cluster, overprovisioningPercent);
    this.outliers.get(cluster)?.setHosts(endpoints.map(hostKey));
    this.prunePools();
  }

  /** The cluster's outlier detector, if it has outlier detection (status, tests, the incident benchmark). */
  outlierDetector(cluster: string): OutlierDetector | undefined { return this.outliers.get(cluster); }

  /** Tells outlier detection how an attempt to `ep` ended (an HTTP status, or a local origin error). */
  report(cluster: string, ep: Endpoint, outcome: Outcome): void {
    this.outliers.get(cluster)?.report(hostKey(ep), outcome, this.nowMs());
  }

  cluster(name: string): ClusterModel | undefined { return this.clusters.get(name); }
  edsClusterNames(): string[] { return [...this.clusters.values()].filter((c) => c.discovery === "EDS").map((c) => c.name); }

  endpoints(name: string): Endpoint[] {
    const c = this.clusters.get(name);
    if (!c) return [];
    return c.discovery === "STATIC" ? c.endpoints : (this.eds.get(name) ?? []);
  }

  /**
   * A priority by Envoy's priority load, then round robin over its usable hosts; undefined when the
   * cluster has no endpoints (Envoy: no healthy upstream).
   */
  pick(name: string): Endpoint | undefined {
    const eps = this.endpoints(name);
    if (eps.length === 0) return undefined;
    const c = this.clusters.get(name)!;
    const od = this.outliers.get(name);
    const now = this.nowMs();
    const over = c.discovery === "EDS" ? (this.edsOverprovisioning.get(name) ?? 140) : c.overprovisioningPercent;
    const groups = this.priorityGroups(eps);
    let candidates = groups[0]!;
    // With nothing ejected every priority is fully healthy and priority 0 takes all the load: no per-request work.
    if ((od && od.ejectedCount(now) > 0) || over < 100) {
      const levels = groups.map((hosts) => {
        const usable = od ? hosts.filter((e) => !od.isEjected(hostKey(e), now)) : hosts;
        return { hosts, usable, health: hosts.length ? Math.min(100, (over * usable.length) / hosts.length) : 0 };
      });
      const total = levels.reduce((s, l) => s + l.health, 0);
      let level = levels[0]!;
      if (total > 0) {
        // Priority load: each level takes what its health allows of what is left; below 100 in total, normalised.
        let r = this.random() * 100, left = 100;
        for (const l of levels) {
          const load = total >= 100 ? Math.min(left, l.health) : (l.health * 100) / total;
          left -= load;
          if (r < load) { level = l; break; }
          r -= load;
        }
      }
      // Panic: a level with too few usable hosts balances over all of them, ejected or not.
      if (level.usable.length === 0 && c.panicThresholdPercent === 0) return undefined;
      const usablePercent = level.hosts.length ? (100 * level.usable.length) / level.hosts.length : 0;
      candidates = usablePercent < c.panicThresholdPercent || level.usable.length === 0 ? level.hosts : level.usable;
    }
    const i = (this.next.get(name) ?? 0) % candidates.length;
    this.next.set(name, i + 1);
    return candidates[i];
  }

  /** Endpoints by priority (index = priority; contiguous, checked on parse), derived once per endpoint list. */
  private priorityGroups(eps: readonly Endpoint[]): Endpoint[][] {
    let g = this.groups.get(eps);
    if (!g) {
      g = [];
      for (const e of eps) (g[e.priority] ??= []).push(e);
      this.groups.set(eps, g);
    }
    return g;
  }

  /** A keep-alive pool per endpoint, shared by live traffic and callouts. */
  agent(ep: Endpoint): http.Agent {
    const key = hostKey(ep);
    let a = this.agents.get(key);
    if (!a) { a = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1000 }); this.agents.set(key, a); }
    return a;
  }

  private prunePools(): void {
    const live = new Set<string>();
    for (const c of this.clusters.keys()) for (const e of this.endpoints(c)) live.add(`${e.address}:${e.port}`);
    for (const [k, a] of this.agents) if (!live.has(k)) { a.destroy(); this.agents.delete(k); }
    for (const [k, c] of this.grpcClients) if (!live.has(k)) { c.close(); this.grpcClients.delete(k); }
  }

  close(): void {
    this.closed = true;
    for (const a of this.agents.values()) a.destroy();
    for (const c of this.grpcClients.values()) c.close();
    this.agents.clear();
    this.grpcClients.clear();
  }

  // ------------------------------------------------------------------ Callouts (the plugin's outbound calls)

  hasUpstream(name: string): boolean { return this.clusters.has(name); }

  /** A plugin's callout after close() fails at once instead of opening a connection (or a channel) nothing will close. */
  private calloutTarget(cluster: string): Endpoint | undefined { return this.closed ? undefined : this.pick(cluster); }
  private noTarget(cluster: string): string { return this.closed ? "the data plane is closed" : `no endpoint in cluster ${cluster}`; }

  httpCall(req: HttpCallRequest, reply: (res: HttpCallResponse | null) => void): () => void {
    const ep = this.calloutTarget(req.cluster);
    this.calls.http++;
    if (!ep) { this.calls.failed++; queueMicrotask(() => reply(null)); return () => undefined; }
    const headers = toNodeHeaders(req.headers);
    headers.host = req.headers.get(":authority") ?? req.cluster;
    if (req.body.length > 0) headers["content-length"] = String(req.body.length);
    let done = false;
    const finish = (r: HttpCallResponse | null) => { if (!done) { done = true; if (!r) this.calls.failed++; reply(r); } };
    const out = http.request({
      host: ep.address, port: ep.port, agent: this.agent(ep),
      method: req.headers.get(":method") ?? "GET", path: req.headers.get(":path") ?? "/", headers,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const list: [string, string][] = [[":status", String(res.statusCode ?? 0)]];
        for (let i = 0; i < res.rawHeaders.length; i += 2) list.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
        const trailers: [string, string][] = [];
        for (let i = 0; i < res.rawTrailers.length; i += 2) trailers.push([res.rawTrailers[i]!.toLowerCase(), res.rawTrailers[i + 1]!]);
        finish({ headers: list, body: Buffer.concat(chunks), trailers });
      });
      res.on("error", () => finish(null));
    });
    out.on("error", () => finish(null));
    out.end(req.body.length > 0 ? Buffer.from(req.body) : undefined);
    return () => { done = true; out.destroy(); };
  }

  /** The gRPC client for one endpoint of a cluster (one channel per endpoint, shared by calls and streams). */
  private grpcClient(ep: Endpoint): grpc.Client {
    const key = `${ep.address}:${ep.port}`;
    let client = this.grpcClients.get(key);
    if (!client) { client = new grpc.Client(key, grpc.credentials.createInsecure()); this.grpcClients.set(key, client); }
    return client;
  }

  grpcCall(req: GrpcCallRequest, reply: (res: GrpcResult) => void): () => void {
    const ep = this.calloutTarget(req.upstream);
    this.calls.grpc++;
    if (!ep) { this.calls.failed++; queueMicrotask(() => reply({ status: grpc.status.UNAVAILABLE, statusMessage: this.noTarget(req.upstream) })); return () => undefined; }
    const call = this.grpcClient(ep).makeUnaryRequest(`/${req.service}/${req.method}`, identity, identity, Buffer.from(req.message ?? new Uint8Array(0)), grpcMetadata(req), {},
      (err: grpc.ServiceError | null, res?: Buffer) => {
        if (err) { if (err.code !== grpc.status.CANCELLED) this.calls.failed++; reply({ status: err.code, statusMessage: err.details }); }
        else reply({ status: 0, message: res ?? Buffer.alloc(0) });
      });
    return () => call.cancel();
  }

  /** A bidirectional stream: messages both ways, then one close with the status (none after cancel, as Envoy). */
  grpcStream(req: GrpcCallRequest, events: GrpcStreamEvents): GrpcStreamSink {
    const ep = this.calloutTarget(req.upstream);
    this.calls.grpc++;
    let done = false;
    if (!ep) {
      this.calls.failed++;
      queueMicrotask(() => { if (!done) { done = true; events.close(grpc.status.UNAVAILABLE, this.noTarget(req.upstream)); } });
      return { send: () => undefined, close: () => undefined, cancel: () => { done = true; } };
    }
    const call = this.grpcClient(ep).makeBidiStreamRequest(`/${req.service}/${req.method}`, identity, identity, grpcMetadata(req), {});
    const pairs = (m: grpc.Metadata): [string, string][] => Object.entries(m.getMap()).map(([k, v]) => [k, String(v)]);
    call.on("metadata", (m: grpc.Metadata) => { if (!done) events.initialMetadata(pairs(m)); });
    call.on("data", (b: Buffer) => { if (!done) events.message(b); });
    call.on("error", () => undefined); // the status event carries it
    call.on("status", (st: grpc.StatusObject) => {
      if (done) return;
      done = true;
      if (st.code !== grpc.status.OK && st.code !== grpc.status.CANCELLED) this.calls.failed++;
      events.trailingMetadata(pairs(st.metadata));
      events.close(st.code, st.details);
    });
    return {
      send: (m, end) => { if (done) return; call.write(Buffer.from(m)); if (end) call.end(); },
      close: () => { if (!done) call.end(); },
      cancel: () => { if (!done) { done = true; call.cancel(); } },
    };
  }
}

/** A callout's initial metadata as gRPC metadata (pseudo-headers and grpc- reserved keys left out). */
function grpcMetadata(req: GrpcCallRequest): grpc.Metadata {
  const md = new grpc.Metadata();
  req.initialMetadata.forEach((k, v) => { if (!k.startsWith(":") && !k.startsWith("grpc-")) md.add(k, v); });
  return md;
}
