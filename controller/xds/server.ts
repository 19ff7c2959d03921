// The ADS server (envoy.service.discovery.v3.AggregatedDiscoveryService) on @grpc/grpc-js: both
// state-of-the-world and incremental (delta) streams, for LDS, RDS, CDS, EDS and ECDS. It delivers
// what the SnapshotCache holds for the node's group; per stream and type it tracks subscriptions,
// nonces and what the client confirmed, and records ACK/NACK per node. Responses are assembled from
// the snapshot's pre-encoded resource bytes. A client that stops reading never slows the others:
// past MAX_UNFLUSHED unflushed responses its changes are coalesced, and only the latest is sent.
import * as grpc from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { Logger } from "pino";
import { SnapshotCache, type NodeInfo } from "./cache.js";
import { Snapshot } from "./snapshot.js";
import { TYPE_NAME, WILDCARD_TYPES, isTypeUrl, lookupType, type TypeUrl } from "./protos.js";

export const ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const MAX_NAMES = 100_000;
/**
 * Responses written to a stream but not yet flushed to its HTTP/2 stream. Beyond this the stream is
 * "blocked": changes are coalesced (per type, only the latest is sent once writes complete), so a
 * client that stops reading holds at most this many responses in the server's memory.
 */
const MAX_UNFLUSHED = 2;
const MAX_NAME_BYTES = 4096;
/**
 * Nodes whose ACK/NACK history is kept (acks(node)); the least recently recorded is dropped beyond.
 * Without a bound every node id a client ever sent stayed in memory after its stream closed (found by
 * `npm run fuzz`: short-lived streams with new 1 KB node ids kept 27.5 MB per 20,000, linearly).
 */
export const MAX_ACK_LOG_NODES = 10_000;

const types = () => ({
  req: lookupType("envoy.service.discovery.v3.DiscoveryRequest"),
  res: lookupType("envoy.service.discovery.v3.DiscoveryResponse"),
  dreq: lookupType("envoy.service.discovery.v3.DeltaDiscoveryRequest"),
  dres: lookupType("envoy.service.discovery.v3.DeltaDiscoveryResponse"),
});

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, arrays: true, objects: true };
const toBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export interface DiscoveryRequest {
  version_info: string;
  node?: { id?: string; cluster?: string; locality?: { zone?: string; region?: string }; metadata?: Record<string, unknown> } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface DeltaDiscoveryRequest {
  node?: DiscoveryRequest["node"];
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: DiscoveryRequest["error_detail"];
}

/**
 * gRPC method definitions for both directions. The server writes pre-assembled response bytes;
 * a client (tests, benchmarks) gets decoded objects.
 */
export function adsMethods(): grpc.ServiceDefinition {
  const t = types();
  const enc = (T: protobuf.Type) => (o: object) => toBuffer(T.encode(T.fromObject(o)).finish());
  const dec = (T: protobuf.Type) => (b: Buffer) => T.toObject(T.decode(b), TO_OBJECT);
  const raw = (b: Uint8Array | object) => (b instanceof Uint8Array ? toBuffer(b) : Buffer.alloc(0));
  return {
    StreamAggregatedResources: {
      path: `/${ADS_SERVICE}/StreamAggregatedResources`, requestStream: true, responseStream: true,
      requestSerialize: enc(t.req), requestDeserialize: dec(t.req),
      responseSerialize: raw, responseDeserialize: dec(t.res),
    },
    DeltaAggregatedResources: {
      path: `/${ADS_SERVICE}/DeltaAggregatedResources`, requestStream: true, responseStream: true,
      requestSerialize: enc(t.dreq), requestDeserialize: dec(t.dreq),
      responseSerialize: raw, responseDeserialize: dec(t.dres),
    },
  } as grpc.ServiceDefinition;
}

/** A gRPC client for ADS (tests, benchmarks, tooling). */
export function adsClient(address: string, creds = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
  const Ctor = grpc.makeGenericClientConstructor(adsMethods(), ADS_SERVICE);
  return new Ctor(address, creds, options) as unknown as grpc.Client & {
    StreamAggregatedResources(): grpc.ClientDuplexStream<Partial<DiscoveryRequest>, Record<string, any>>;
    DeltaAggregatedResources(): grpc.ClientDuplexStream<Partial<DeltaDiscoveryRequest>, Record<string, any>>;
  };
}

/** Per type, what one stream subscribed to, sent, and had confirmed. */
interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  /** A first request arrived (before it, nothing is sent for the type). */
  active: boolean;
  lastNonce: string;
  /** Type version sent with lastNonce. */
  sentVersion?: string;
  /** Type version the client is known to hold (ACKed, or nothing needed to be sent). */
  confirmed?: string;
  nack?: { version: string; error: string; at: number };
  /** Delta: the resource versions the client holds. */
  known: Map<string, string>;
  /** Something changed while the stream could not be written. */
  dirty: boolean;
}

export interface TypeStatus { subscribed: string[] | "*"; sent?: string; confirmed?: string; nack?: { version: string; error: string; at: number } }
export interface StreamStatus {
  id: number; node: string; group: string; delta: boolean;
  /** The client is not reading: changes are coalesced until it drains. */
  blocked: boolean;
  types: Partial<Record<string, TypeStatus>>;
}
export interface NodeAckRecord { type: string; version: string; error?: string; at: number }

type Call = grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, Uint8Array>;

class Stream {
  node?: NodeInfo;
  group = "";
  readonly types = new Map<TypeUrl, TypeState>();
  blocked = false;
  unflushed = 0;
  closed = false;
  unwatch?: () => void;
  nonce = 0;
  readonly warnedTypes = new Set<string>();
  constructor(readonly id: number, readonly call: Call, readonly delta: boolean) {}

  state(type: TypeUrl): TypeState {
    let t = this.types.get(type);
    if (!t) {
      t = { wildcard: false, names: new Set(), active: false, lastNonce: "", known: new Map(), dirty: false };
      this.types.set(type, t);
    }
    return t;
  }
}

export interface AdsServerOptions {
  cache: SnapshotCache;
  logger: Logger;
  /** Trace every push and ACK at debug level. */
  debug?: boolean;
  /** Identifies this control plane in responses. */
  controlPlaneId?: string;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle to verify client certificates (mTLS). */
  caFile?: string;
  /** Refuse clients without a certificate signed by caFile. */
  requireClientCert?: boolean;
}

export interface VerifyResult {
  version: string;
  ok: boolean;
  acked: string[];
  nacked: { node: string; type: string; error: string }[];
  pending: string[];
  /** A newer snapshot replaced the version before every node confirmed it. */
  superseded: boolean;
}

export class AdsServer extends EventEmitter {
  private readonly server = new grpc.Server({ "grpc.max_concurrent_streams": 1 << 20 } as grpc.ServerOptions);
  private readonly streams = new Set<Stream>();
  private nextStreamId = 1;
  private readonly ackLog = new Map<string, NodeAckRecord[]>();
  private readonly t = types();
  /** ControlPlane identifier: field 6 of a DiscoveryResponse, field 7 of a DeltaDiscoveryResponse. */
  private readonly controlPlane: Uint8Array;
  private readonly deltaControlPlane: Uint8Array;
  readonly cache: SnapshotCache;
  private readonly log: Logger;
  private readonly debug: boolean;

  constructor(opts: AdsServerOptions) {
    super();
    this.setMaxListeners(0);
    this.cache = opts.cache;
    this.log = opts.logger;
    this.debug = opts.debug ?? false;
    const cpField = (no: number) => {
      const w = protobuf.Writer.create();
      w.uint32((no << 3) | 2).fork().uint32(10).string(opts.controlPlaneId ?? "shadowmesh").ldelim();
      return w.finish();
    };
    this.controlPlane = cpField(6);
    this.deltaControlPlane = cpField(7);
    this.server.addService(adsMethods(), {
      StreamAggregatedResources: (call: Call) => this.open(call, false),
      DeltaAggregatedResources: (call: Call) => this.open(call, true),
    });
  }

  /** Binds (e.g. "127.0.0.1:0") and returns the port. */
  async listen(address: string, tls?: TlsFiles): Promise<number> {
    const creds = tls
      ? grpc.ServerCredentials.createSsl(tls.caFile ? readFileSync(tls.caFile) : null,
        [{ private_key: readFileSync(tls.keyFile), cert_chain: readFileSync(tls.certFile) }], tls.requireClientCert ?? false)
      : grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  /** Ends every stream and stops; streams still open after graceMs are cut. */
  async close(graceMs = 200): Promise<void> {
    for (const s of this.streams) { s.unwatch?.(); s.call.end(); }
    this.streams.clear();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      this.server.tryShutdown(() => { clearTimeout(t); resolve(); });
    });
  }

  // ------------------------------------------------------------------ streams

  private open(call: Call, delta: boolean): void {
    const s = new Stream(this.nextStreamId++, call, delta);
    this.streams.add(s);
    const done = () => {
      if (s.closed) return;
      s.closed = true;
      s.unwatch?.();
      this.streams.delete(s);
      if (this.debug) this.log.debug({ stream: s.id, node: s.node?.id }, "xds stream closed");
      this.emit("change");
    };
    call.on("data", (req) => {
      try {
        if (delta) this.onDelta(s, req as DeltaDiscoveryRequest); else this.onSotw(s, req as DiscoveryRequest);
      } catch (e) {
        this.log.error({ err: e, stream: s.id }, "xds request failed");
        this.fail(s, grpc.status.INTERNAL, (e as Error).message);
      }
    });
    call.on("end", () => { done(); call.end(); });
    call.on("error", done);
    call.on("close", done);
    call.on("cancelled", done);
  }

  /** A write completed (flushed to HTTP/2): unblock and send what was coalesced meanwhile. */
  private flushed(s: Stream): void {
    s.unflushed--;
    if (s.closed || !s.blocked || s.unflushed >= MAX_UNFLUSHED) return;
    s.blocked = false;
    for (const [type, t] of s.types) if (t.dirty) { t.dirty = false; this.push(s, type); }
  }

  private fail(s: Stream, code: grpc.status, message: string): void {
    this.log.warn({ stream: s.id, node: s.node?.id, code, message }, "closing xds stream");
    // grpc-js turns an 'error' on a server call into the status it sends, then ends the call.
    s.call.emit("error", Object.assign(new Error(message), { code, details: message }));
  }

  /** The node (first request) and its group; false when the stream was closed for lacking one. */
  private identify(s: Stream, node: DiscoveryRequest["node"]): boolean {
    if (s.node) return true;
    if (!node?.id) {
      this.fail(s, grpc.status.INVALID_ARGUMENT, "the first request on a stream must carry node.id");
      return false;
    }
    if (Buffer.byteLength(node.id) > MAX_NAME_BYTES) {
      this.fail(s, grpc.status.INVALID_ARGUMENT, `node.id: longer than ${MAX_NAME_BYTES} bytes`);
      return false;
    }
    s.node = { id: node.id, cluster: node.cluster, zone: node.locality?.zone, metadata: node.metadata };
    s.group = this.cache.groupOf(s.node);
    s.unwatch = this.cache.watch(s.group, () => this.onSnapshot(s));
    if (this.debug) this.log.debug({ stream: s.id, node: s.node.id, group: s.group, delta: s.delta }, "xds stream opened");
    return true;
  }

  private checkNames(s: Stream, names: string[], field: string): boolean {
    if (names.length > MAX_NAMES) {
      this.fail(s, grpc.status.INVALID_ARGUMENT, `${field}: ${names.length} names, more than ${MAX_NAMES}`);
      return false;
    }
    for (let i = 0; i < names.length; i++) {
      if (Buffer.byteLength(names[i]!) > MAX_NAME_BYTES) {
        this.fail(s, grpc.status.INVALID_ARGUMENT, `${field}[${i}]: longer than ${MAX_NAME_BYTES} bytes`);
        return false;
      }
    }
    return true;
  }

  private knownType(s: Stream, typeUrl: string): typeUrl is TypeUrl {
    if (isTypeUrl(typeUrl)) return true;
    if (!s.warnedTypes.has(typeUrl)) {
      s.warnedTypes.add(typeUrl);
      this.log.warn({ stream: s.id, node: s.node?.id, type_url: typeUrl }, "xds request for an unknown type URL ignored");
    }
    return false;
  }

  /** ACK or NACK of the latest response; false when the nonce is stale (the request is ignored). */
  private settle(s: Stream, type: TypeUrl, t: TypeState, nonce: string, error: DiscoveryRequest["error_detail"], sotwVersion?: string): boolean {
    if (!nonce) return true;
    if (nonce !== t.lastNonce) {
      if (this.debug) this.log.debug({ stream: s.id, type: TYPE_NAME[type], nonce, latest: t.lastNonce }, "stale nonce ignored");
      return false;
    }
    const node = s.node!.id;
    const now = Date.now();
    if (error && (error.message || error.code)) {
      const version = t.sentVersion ?? "";
      t.nack = { version, error: error.message || `code ${error.code}`, at: now };
      this.record(node, { type: TYPE_NAME[type], version, error: t.nack.error, at: now });
      this.log.warn({ node, type: TYPE_NAME[type], version, kept: sotwVersion ?? t.confirmed, error: t.nack.error }, "xds NACK");
      this.emit("nack", node, type, version, t.nack.error);
    } else {
      t.confirmed = s.delta ? t.sentVersion : (sotwVersion || t.sentVersion);
      t.nack = undefined;
      this.record(node, { type: TYPE_NAME[type], version: t.confirmed ?? "", at: now });
      if (this.debug) this.log.debug({ node, type: TYPE_NAME[type], version: t.confirmed }, "xds ACK");
      this.emit("ack", node, type, t.confirmed);
    }
    this.emit("change");
    return true;
  }

  private record(node: string, r: NodeAckRecord): void {
    let list = this.ackLog.get(node);
    if (list) this.ackLog.delete(node); // re-inserted below: the Map's order is least recently recorded first
    else {
      list = [];
      if (this.ackLog.size >= MAX_ACK_LOG_NODES) this.ackLog.delete(this.ackLog.keys().next().value!);
    }
    this.ackLog.set(node, list);
    list.push(r);
    if (list.length > 100) list.shift();
  }

  private onSotw(s: Stream, req: DiscoveryRequest): void {
    if (!this.identify(s, req.node)) return;
    if (!this.knownType(s, req.type_url)) return;
    if (!this.checkNames(s, req.resource_names, "resource_names")) return;
    const type = req.type_url;
    const t = s.state(type);
    if (!this.settle(s, type, t, req.response_nonce, req.error_detail, req.version_info)) return;
    const names = new Set(req.resource_names);
    const wildcard = names.has("*") || (WILDCARD_TYPES.has(type) && names.size === 0 && (!t.active || t.wildcard));
    names.delete("*");
    const changed = !t.active || wildcard !== t.wildcard || !sameSet(names, t.names);
    t.active = true;
    t.wildcard = wildcard;
    t.names = names;
    // A first request, or a changed subscription, is answered; an ACK alone waits for the next change.
    if (changed) { t.sentVersion = undefined; this.push(s, type); }
  }

  private onDelta(s: Stream, req: DeltaDiscoveryRequest): void {
    if (!this.identify(s, req.node)) return;
    if (!this.knownType(s, req.type_url)) return;
    if (!this.checkNames(s, req.resource_names_subscribe, "resource_names_subscribe")) return;
    if (!this.checkNames(s, req.resource_names_unsubscribe, "resource_names_unsubscribe")) return;
    const type = req.type_url;
    const t = s.state(type);
    if (!this.settle(s, type, t, req.response_nonce, req.error_detail)) return;
    let changed = false;
    const first = !t.active;
    if (first) {
      t.active = true;
      t.wildcard = WILDCARD_TYPES.has(type) && req.resource_names_subscribe.length === 0;
      // What the client still holds from an earlier stream: only newer versions need sending.
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) t.known.set(name, version);
      changed = true;
    }
    for (const n of req.resource_names_subscribe) {
      if (n === "*") { if (!t.wildcard) { t.wildcard = true; changed = true; } continue; }
      if (!t.names.has(n)) { t.names.add(n); changed = true; }
      // A later (re-)subscription asks for the resource again even if it was sent before.
      if (!first) t.known.delete(n);
    }
    for (const n of req.resource_names_unsubscribe) {
      if (n === "*") { if (t.wildcard) { t.wildcard = false; changed = true; } continue; }
      if (t.names.delete(n)) changed = true;
      t.known.delete(n);
    }
    if (changed) this.push(s, type);
  }

  private onSnapshot(s: Stream): void {
    for (const [type, t] of s.types) if (t.active) this.push(s, type);
  }

  /** Sends the type's current state if the client lacks it (coalesced while the stream is blocked). */
  private push(s: Stream, type: TypeUrl): void {
    if (s.closed) return;
    const t = s.state(type);
    if (s.blocked || s.unflushed >= MAX_UNFLUSHED) { s.blocked = true; t.dirty = true; return; }
    const snap = this.cache.getSnapshot(s.group);
    if (!snap) return; // nothing published for this group yet: the watch will call again
    const bytes = s.delta ? this.deltaResponse(s, type, t, snap) : this.sotwResponse(s, type, t, snap);
    if (!bytes) return;
    s.unflushed++;
    s.call.write(bytes, () => this.flushed(s));
  }

  private nextNonce(s: Stream): string { return String(++s.nonce); }

  private sotwResponse(s: Stream, type: TypeUrl, t: TypeState, snap: Snapshot): Uint8Array | undefined {
    const version = snap.typeVersion(type);
    if (t.sentVersion === version) return undefined;
    if (!t.wildcard && t.names.size === 0) { t.confirmed = version; return undefined; } // unsubscribed
    const body = snap.sotwBody(type, t.wildcard ? "*" : t.names);
    // RDS/EDS/ECDS: names the snapshot lacks are simply not sent; the client keeps waiting for them.
    if (!t.wildcard && body.count === 0) { t.confirmed = version; return undefined; }
    const nonce = this.nextNonce(s);
    t.lastNonce = nonce;
    t.sentVersion = version;
    const w = protobuf.Writer.create();
    w.uint32(10).string(version).uint32(34).string(type).uint32(42).string(nonce);
    if (this.debug) this.log.debug({ stream: s.id, node: s.node?.id, type: TYPE_NAME[type], version, nonce, resources: body.count }, "xds push");
    return Buffer.concat([w.finish(), body.bytes, this.controlPlane]);
  }

  private deltaResponse(s: Stream, type: TypeUrl, t: TypeState, snap: Snapshot): Uint8Array | undefined {
    const version = snap.typeVersion(type);
    const resources = snap.resources(type);
    const parts: Uint8Array[] = [];
    const removed: string[] = [];
    const inScope = (n: string) => t.wildcard || t.names.has(n);
    for (const r of t.wildcard ? resources.values() : [...t.names].map((n) => resources.get(n)).filter((r) => r !== undefined)) {
      if (t.known.get(r.name) !== r.version) { parts.push(r.deltaEntry); t.known.set(r.name, r.version); }
    }
    for (const name of [...t.known.keys()]) {
      if (!resources.has(name) && inScope(name)) { removed.push(name); t.known.delete(name); }
      else if (!inScope(name)) t.known.delete(name);
    }
    if (parts.length === 0 && removed.length === 0) {
      if (t.sentVersion === undefined || t.confirmed === t.sentVersion) t.confirmed = version;
      return undefined;
    }
    const nonce = this.nextNonce(s);
    t.lastNonce = nonce;
    t.sentVersion = version;
    const w = protobuf.Writer.create();
    w.uint32(10).string(version).uint32(34).string(type).uint32(42).string(nonce);
    for (const n of removed) w.uint32(50).string(n);
    if (this.debug) this.log.debug({ stream: s.id, node: s.node?.id, type: TYPE_NAME[type], version, nonce, resources: parts.length, removed: removed.length }, "xds delta push");
    return Buffer.concat([w.finish(), ...parts, this.deltaControlPlane]);
  }

  // ------------------------------------------------------------------ status and verification

  /** Every open stream: node, group, and per type what was subscribed, sent and confirmed. */
  status(): StreamStatus[] {
    return [...this.streams].filter((s) => s.node).map((s) => ({
      id: s.id, node: s.node!.id, group: s.group, delta: s.delta, blocked: s.blocked,
      types: Object.fromEntries([...s.types].filter(([, t]) => t.active).map(([type, t]) => [TYPE_NAME[type], {
        subscribed: t.wildcard ? "*" as const : [...t.names], sent: t.sentVersion, confirmed: t.confirmed, nack: t.nack,
      }])),
    }));
  }

  /** The last ACK/NACK records of a node (newest last). */
  acks(node: string): NodeAckRecord[] { return this.ackLog.get(node) ?? []; }

  /** Nodes with an open stream. */
  connectedNodes(): string[] { return [...new Set([...this.streams].filter((s) => s.node).map((s) => s.node!.id))]; }

  /** Where every open stream of `group` stands against `snapshot`. */
  private evaluate(group: string, snapshot: Snapshot): Omit<VerifyResult, "superseded" | "ok"> {
    const acked = new Set<string>(), pending = new Set<string>();
    const nacked: VerifyResult["nacked"] = [];
    for (const s of this.streams) {
      if (!s.node || s.group !== group) continue;
      let state: "acked" | "pending" | "nacked" = "acked";
      for (const [type, t] of s.types) {
        if (!t.active || (!t.wildcard && t.names.size === 0)) continue;
        const want = snapshot.typeVersion(type);
        if (t.confirmed === want) continue;
        if (t.nack && t.nack.version === want) { state = "nacked"; nacked.push({ node: s.node.id, type: TYPE_NAME[type], error: t.nack.error }); }
        else if (state !== "nacked") state = "pending";
      }
      (state === "acked" ? acked : state === "pending" ? pending : null)?.add(s.node.id);
    }
    for (const n of nacked) { acked.delete(n.node); pending.delete(n.node); }
    for (const p of pending) acked.delete(p);
    return { version: snapshot.version, acked: [...acked], nacked, pending: [...pending] };
  }

  /**
   * Resolves when every connected node of the group has confirmed the snapshot `version` for every
   * type it subscribes to (ok), as soon as one NACKs it (not ok, naming node, type and error), when
   * a newer snapshot replaces it (superseded), or at the timeout (pending nodes listed).
   */
  verify(group: string, version: string, timeoutMs = 10_000): Promise<VerifyResult> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: VerifyResult) => {
        this.off("change", check);
        if (timer) clearTimeout(timer);
        resolve(r);
      };
      const check = (timedOut = false) => {
        const snap = this.cache.getSnapshot(group);
        if (!snap) return finish({ version, ok: false, acked: [], nacked: [], pending: [], superseded: false });
        if (snap.version !== version) return finish({ version, ok: false, acked: [], nacked: [], pending: [], superseded: true });
        const r = this.evaluate(group, snap);
        if (r.nacked.length > 0) return finish({ ...r, ok: false, superseded: false });
        if (r.pending.length === 0) return finish({ ...r, ok: true, superseded: false });
        if (timedOut) return finish({ ...r, ok: false, superseded: false });
      };
      this.on("change", check);
      timer = setTimeout(() => check(true), timeoutMs);
      timer.unref();
      check();
    });
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
