// The embedded data plane: an Envoy stand-in on loopback for running shadowmesh on one machine. It
// is an ADS client of the controller (CDS, EDS, LDS, RDS, ECDS), runs the shadowmesh Wasm module in
// the TypeScript proxy-wasm host (one VM per worker, as Envoy), opens the listeners LDS describes once
// they are warm (route configuration and filter configuration received), and proxies HTTP/1.1 through
// them. Updates are applied per type and ACKed, or NACKed with Envoy's kind of reason and the previous
// configuration kept.
import http from "node:http";
import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { PluginHost, type LogRecord } from "../host/plugin.js";
import { LogLevel } from "../host/abi.js";
import { TYPE, type TypeUrl } from "../protocol/protos.js";
import { EnvoyLikeAdsClient, type AnyResource, type NodeIdentity } from "./xds-client.js";
import {
  ResourceError, parseCluster, parseExtensionConfig, parseListener, parseLoadAssignment, parseRouteConfig,
  type ClusterModel, type ListenerModel, type RouteConfigModel, type WasmFilterModel,
} from "./resources.js";
import { Upstreams } from "./upstreams.js";
import { proxyRequest, type ListenerRuntime, type ProxyContext, type ProxyStats } from "./http-proxy.js";

export interface DataPlaneOptions {
  /** The controller's ADS address, "host:port"; without it the data plane runs on staticResources only. */
  xds?: string;
  /**
   * Envoy's bootstrap static_resources, as packed Listener and Cluster messages: applied at start()
   * before any xDS, as Envoy does (e.g. the reactive baseline: envoy/reactive-baseline.yaml).
   */
  staticResources?: { listeners?: AnyResource[]; clusters?: AnyResource[] };
  node: NodeIdentity;
  /** Worker VMs per Wasm filter (Envoy: --concurrency). Default 2. */
  workers?: number;
  log: Logger;
  /** Seeded source for weighted cluster picks (tests); default Math.random. */
  random?: () => number;
  /** Maps a Wasm filename from ECDS to a local path (the controller may name the path on the Envoy hosts). */
  resolveWasm?: (filename: string) => string;
}

interface RunningListener {
  model: ListenerModel;
  /** What each request needs from the model, derived once per LDS update, not per request. */
  runtime: ListenerRuntime;
  server?: http.Server;
  /** An open is under way (it may await inline Wasm code): warm() must not start a second. */
  opening?: boolean;
  /** Set once the socket is bound. */
  port?: number;
}

/** The routes of a listener with inline route_config are kept under a name RDS cannot use. */
const inlineRouteKey = (m: ListenerModel) => `\u0000inline:${m.name}`;

const runtimeOf = (m: ListenerModel): ListenerRuntime => ({
  routeConfigName: m.inlineRoutes ? inlineRouteKey(m) : m.routeConfigName, wasmFilters: m.filters.filter((f) => f.kind === "wasm").map((f) => f.name),
});

interface LoadedFilter { model: WasmFilterModel; codeHash: string; host: PluginHost }

export class EmbeddedDataPlane {
  readonly upstreams: Upstreams;
  readonly stats: ProxyStats = { requests: 0, localReplies: {}, upstreamRequests: 0, responses: {} };
  private readonly routes = new Map<string, RouteConfigModel>();
  private readonly filters = new Map<string, LoadedFilter>();
  private readonly listeners = new Map<string, RunningListener>();
  private readonly ads: EnvoyLikeAdsClient | null;
  private readonly proxy: ProxyContext;
  private closed = false;

  constructor(private readonly o: DataPlaneOptions) {
    this.upstreams = new Upstreams(o.random ? { random: o.random } : {});
    if (!o.xds && !o.staticResources) throw new Error("the data plane needs xds (the controller's ADS address) or staticResources");
    this.ads = !o.xds ? null : new EnvoyLikeAdsClient({
      address: o.xds, node: o.node, apply: (t, r) => this.apply(t, r),
      onStatus: (s) => (s.connected ? o.log.info("connected to the controller's ADS") : o.log.warn({ error: s.error }, "ADS stream lost; reconnecting")),
    });
    this.proxy = {
      routes: (n) => this.routes.get(n), plugin: (n) => this.filters.get(n)?.host,
      upstreams: this.upstreams, stats: this.stats, random: o.random ?? Math.random,
    };
  }

  /** Applies the static resources (a bad one throws, naming it, as Envoy refuses such a bootstrap), then starts ADS. */
  start(): void {
    const st = this.o.staticResources;
    if (st) {
      // Clusters first, as Envoy initializes them before listeners; each is decoded and checked as an xDS update would be.
      if (st.clusters?.length) this.applyClusters(st.clusters);
      if (st.listeners?.length) this.applyListeners(st.listeners);
      this.warm();
    }
    this.ads?.start();
  }

  get xdsStats() { return this.ads ? { ...this.ads.stats, lastNack: this.ads.lastNack } : null; }

  /** Resolves with the bound port once the named listener is warm and listening. */
  listenerPort(name: string, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const poll = () => {
        const l = this.listeners.get(name);
        if (l?.port !== undefined) return resolve(l.port);
        if (Date.now() > deadline) return reject(new Error(`listener ${name} was not warm within ${timeoutMs} ms (listeners: ${[...this.listeners.keys()].join(", ") || "none"})`));
        setTimeout(poll, 20);
      };
      poll();
    });
  }

  /** The plugin host of a loaded Wasm filter (tests read its metrics and logs). */
  filterHost(name: string): PluginHost | undefined { return this.filters.get(name)?.host; }

  async close(): Promise<void> {
    this.closed = true;
    this.ads?.close();
    await Promise.all([...this.listeners.values()].map((l) => this.closeListener(l)));
    for (const f of this.filters.values()) f.host.shutdown();
    this.upstreams.close();
  }

  // ------------------------------------------------------------------ xDS

  private async apply(type: TypeUrl, resources: AnyResource[]): Promise<string | null> {
    try {
      switch (type) {
        case TYPE.cluster: this.applyClusters(resources); break;
        case TYPE.endpoint: this.applyEndpoints(resources); break;
        case TYPE.listener: this.applyListeners(resources); break;
        case TYPE.route: this.applyRoutes(resources); break;
        case TYPE.extension: await this.applyFilters(resources); break;
      }
    } catch (e) {
      const msg = (e as Error).message;
      this.o.log.warn({ type, error: msg }, "xDS update rejected (NACK)");
      return msg;
    }
    this.warm();
    return null;
  }

  private applyClusters(resources: AnyResource[]): void {
    const list: ClusterModel[] = resources.map(parseCluster);
    const names = new Set<string>();
    for (const c of list) {
      if (names.has(c.name)) throw new ResourceError(`cluster ${c.name}: duplicate cluster name`);
      names.add(c.name);
    }
    this.upstreams.setClusters(list);
    this.ads?.subscribe(TYPE.endpoint, this.upstreams.edsClusterNames());
  }

  private applyEndpoints(resources: AnyResource[]): void {
    const parsed = resources.map(parseLoadAssignment);
    for (const p of parsed) this.upstreams.setEndpoints(p.cluster, p.endpoints, p.overprovisioningPercent);
  }

  private applyListeners(resources: AnyResource[]): void {
    const models: ListenerModel[] = [];
    const names = new Set<string>();
    for (const r of resources) {
      const m = parseListener(r);
      if (!m) { this.o.log.warn("an api_listener arrived over LDS; Envoy accepts those only from bootstrap, so it is skipped"); continue; }
      if (names.has(m.name)) throw new ResourceError(`listener ${m.name}: duplicate listener name`);
      names.add(m.name);
      models.push(m);
    }
    const bound = new Map<string, string>();
    for (const m of models) {
      const key = `${m.address}:${m.port}`;
      if (m.port !== 0 && bound.has(key)) throw new ResourceError(`listener ${m.name}: address ${key} is already used by listener ${bound.get(key)}`);
      bound.set(key, m.name);
    }
    // State of the world: listeners that left are drained and closed; changed ones are rebuilt.
    for (const [name, l] of this.listeners) {
      const m = models.find((x) => x.name === name);
      if (!m || m.address !== l.model.address || m.port !== l.model.port) { void this.closeListener(l); this.listeners.delete(name); }
      else { l.model = m; l.runtime = runtimeOf(m); }
    }
    for (const m of models) if (!this.listeners.has(m.name)) this.listeners.set(m.name, { model: m, runtime: runtimeOf(m) });
    for (const m of models) if (m.inlineRoutes) this.routes.set(inlineRouteKey(m), m.inlineRoutes);
    this.ads?.subscribe(TYPE.route, models.filter((m) => !m.inlineRoutes).map((m) => m.routeConfigName));
    this.ads?.subscribe(TYPE.extension, models.flatMap((m) => m.filters.filter((f) => f.kind === "wasm" && f.discovered).map((f) => f.name)));
  }

  private applyRoutes(resources: AnyResource[]): void {
    const parsed = resources.map(parseRouteConfig);
    for (const rc of parsed) this.routes.set(rc.name, rc);
  }

  private async applyFilters(resources: AnyResource[]): Promise<void> {
    const parsed = resources.map(parseExtensionConfig);
    // Load every new module before touching any running filter: a bad one leaves all as they were.
    const fresh = new Map<string, LoadedFilter>();
    for (const m of parsed) {
      const path = this.o.resolveWasm ? this.o.resolveWasm(m.filename) : m.filename;
      let bytes: Buffer;
      try { bytes = await readFile(path); } catch (e) { throw new ResourceError(`extension config ${m.name}: cannot read Wasm code ${path}: ${(e as Error).message}`); }
      const codeHash = createHash("sha256").update(bytes).digest("hex");
      const cur = this.filters.get(m.name);
      if (cur && cur.codeHash === codeHash && cur.model.vmId === m.vmId && cur.model.rootId === m.rootId && cur.model.failOpen === m.failOpen) {
        if (cur.model.configuration !== m.configuration && !cur.host.reconfigure(m.configuration)) {
          throw new ResourceError(`extension config ${m.name}: the Wasm plugin rejected its configuration${lastError(cur.host)}`);
        }
        cur.model = m;
        continue;
      }
      try {
        fresh.set(m.name, { model: m, codeHash, host: await this.loadPlugin(m, bytes) });
      } catch (e) {
        for (const f of fresh.values()) f.host.shutdown();
        throw new ResourceError(`extension config ${m.name}: Unable to create Wasm HTTP filter: ${(e as Error).message}`);
      }
    }
    // Closed while the modules loaded: they must not start ticking after close() stopped the others.
    if (this.closed) { for (const f of fresh.values()) f.host.shutdown(); return; }
    for (const [name, f] of fresh) {
      this.filters.get(name)?.host.shutdown();
      this.filters.set(name, f);
    }
  }

  /** One plugin as Envoy runs it: a VM per worker, the node's identity as properties, logs to ours. */
  private loadPlugin(m: WasmFilterModel, bytes: Uint8Array): Promise<PluginHost> {
    return PluginHost.create({
      wasm: bytes, workers: this.o.workers ?? 2, callouts: this.upstreams, pluginConfig: m.configuration, rootId: m.rootId,
      vmId: m.vmId, pluginName: m.name, failOpen: m.failOpen, properties: { "node.id": this.o.node.id, "node.cluster": this.o.node.cluster, ...Object.fromEntries(Object.entries(this.o.node.metadata ?? {}).map(([k, v]) => [`node.metadata.${k}`, v])) },
      logger: (r: LogRecord) => this.wasmLog(m.name, r),
    });
  }

  private wasmLog(filter: string, r: LogRecord): void {
    const fields = { filter, worker: r.worker };
    if (r.level >= LogLevel.Error) this.o.log.error(fields, r.message);
    else if (r.level >= LogLevel.Warn) this.o.log.warn(fields, r.message);
    else if (r.level >= LogLevel.Info) this.o.log.info(fields, r.message);
  }

  /** Opens every listener whose route configuration and discovered filters have arrived (Envoy's warming). */
  private warm(): void {
    if (this.closed) return;
    for (const l of this.listeners.values()) {
      if (l.server || l.opening) continue;
      const m = l.model;
      if (!this.routes.has(l.runtime.routeConfigName)) continue;
      if (m.filters.some((f) => f.kind === "wasm" && f.discovered && !this.filters.has(f.name))) continue;
      l.opening = true;
      void this.openListener(l).catch((e: Error) => this.o.log.error({ listener: m.name, error: e.message }, "cannot open listener"));
    }
  }

  private async openListener(l: RunningListener): Promise<void> {
    // Inline (non-discovered) Wasm filters are loaded on first open.
    for (const f of l.model.filters) {
      if (f.kind === "wasm" && !f.discovered && !this.filters.has(f.name)) {
        const bytes = await readFile(this.o.resolveWasm ? this.o.resolveWasm(f.config.filename) : f.config.filename);
        const host = await this.loadPlugin(f.config, bytes);
        if (this.closed) { host.shutdown(); return; } // closed while it loaded: no tick, no listener
        this.filters.set(f.name, { model: f.config, codeHash: "", host });
      }
    }
    if (this.closed) return;
    // l.runtime is read per request: an LDS update may change filters or routes in place.
    const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => proxyRequest(this.proxy, l.runtime, req, res));
    server.keepAliveTimeout = 60_000;
    l.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(l.model.port, l.model.address, () => resolve());
    });
    if (this.closed) { await this.closeListener(l); return; } // closed while it bound
    l.port = (server.address() as { port: number }).port;
    this.o.log.info({ listener: l.model.name, address: `${l.model.address}:${l.port}` }, "listener warm and serving");
  }

  private closeListener(l: RunningListener): Promise<void> {
    const s = l.server;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => { s.close(() => resolve()); s.closeIdleConnections(); setTimeout(() => s.closeAllConnections(), 1000).unref(); });
  }
}

function lastError(host: PluginHost): string {
  const errs = host.logs.filter((l) => l.level >= LogLevel.Error).map((l) => l.message);
  return errs.length ? `: ${errs.at(-1)}` : "";
}
