// The ADS server (envoy.service.discovery.v3.AggregatedDiscoveryService) on @grpc/grpc-js, split as
// go-control-plane splits it: this file wires the gRPC service, owns the open streams, the checks
// every request passes (node, type, names), the ACK/NACK bookkeeping (fed to the AckLog in acks.ts)
// and the push with back-pressure, and answers status() and verify(); the state-of-the-world and
// delta protocols are in sotw.ts and delta.ts, a stream's subscriptions in stream.ts, the wire
// protocol in protocol/ads.ts. It delivers what the SnapshotCache holds for the node's group, for LDS,
// RDS, CDS, EDS and ECDS. A client that stops reading never slows the others: past MAX_UNFLUSHED
// unflushed responses its changes are coalesced, and only the latest is sent.
import * as grpc from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { Logger } from "pino";
import { SystemClock, wallMs, type Clock } from "../../host/clock.js";
import type { SnapshotCache } from "./cache.js";
import type { Snapshot } from "./snapshot.js";
import { TYPE_NAME, isTypeUrl, type TypeUrl } from "../../protocol/protos.js";
import { adsMethods, type DeltaDiscoveryRequest, type DiscoveryRequest } from "../../protocol/ads.js";
import { MAX_NAMES, MAX_NAME_BYTES, MAX_UNFLUSHED, Stream, type Call, type StreamHandlers, type TypeState } from "./stream.js";
import { onSotwRequest, sotwResponse } from "./sotw.js";
import { deltaResponse, onDeltaRequest } from "./delta.js";
import { AckLog, type NodeAckRecord } from "./acks.js";

/** How long verify() waits after a change before it evaluates again (coalescing a burst of ACKs). */
const VERIFY_COALESCE_MS = 20;

export interface TypeStatus { subscribed: string[] | "*"; sent?: string; confirmed?: string; nack?: { version: string; error: string; at: number } }
export interface StreamStatus {
  id: number; node: string; group: string; delta: boolean;
  /** The client is not reading: changes are coalesced until it drains. */
  blocked: boolean;
  types: Partial<Record<string, TypeStatus>>;
}

export interface AdsServerOptions {
  cache: SnapshotCache;
  logger: Logger;
  /** Trace every push and ACK at debug level. */
  debug?: boolean;
  /** Identifies this control plane in responses. */
  controlPlaneId?: string;
  /** What stamps ACKs and NACKs (default: the system clock). */
  clock?: Clock;
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

export class AdsServer extends EventEmitter implements StreamHandlers {
  private readonly server = new grpc.Server({ "grpc.max_concurrent_streams": 1 << 20 } as grpc.ServerOptions);
  private readonly streams = new Set<Stream>();
  private nextStreamId = 1;
  private readonly ackLog = new AckLog();
  /** ControlPlane identifier: field 6 of a DiscoveryResponse, field 7 of a DeltaDiscoveryResponse. */
  private readonly controlPlane: Uint8Array;
  private readonly deltaControlPlane: Uint8Array;
  readonly cache: SnapshotCache;
  private readonly log: Logger;
  private readonly debug: boolean;
  private readonly clock: Clock;

  constructor(opts: AdsServerOptions) {
    super();
    this.setMaxListeners(0);
    this.cache = opts.cache;
    this.log = opts.logger;
    this.debug = opts.debug ?? false;
    this.clock = opts.clock ?? new SystemClock();
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
        if (delta) onDeltaRequest(this, s, req as DeltaDiscoveryRequest); else onSotwRequest(this, s, req as DiscoveryRequest);
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
  identify(s: Stream, node: DiscoveryRequest["node"]): boolean {
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

  checkNames(s: Stream, names: string[], field: string): boolean {
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

  knownType(s: Stream, typeUrl: string): typeUrl is TypeUrl {
    if (isTypeUrl(typeUrl)) return true;
    if (!s.warnedTypes.has(typeUrl)) {
      s.warnedTypes.add(typeUrl);
      this.log.warn({ stream: s.id, node: s.node?.id, type_url: typeUrl }, "xds request for an unknown type URL ignored");
    }
    return false;
  }

  /** ACK or NACK of the latest response; false when the nonce is stale (the request is ignored). */
  settle(s: Stream, type: TypeUrl, t: TypeState, nonce: string, error: DiscoveryRequest["error_detail"], sotwVersion?: string): boolean {
    if (!nonce) return true;
    if (nonce !== t.lastNonce) {
      if (this.debug) this.log.debug({ stream: s.id, type: TYPE_NAME[type], nonce, latest: t.lastNonce }, "stale nonce ignored");
      return false;
    }
    const node = s.node!.id;
    const now = wallMs(this.clock);
    if (error && (error.message || error.code)) {
      const version = t.sentVersion ?? "";
      t.nack = { version, error: error.message || `code ${error.code}`, at: now };
      this.ackLog.record(node, { type: TYPE_NAME[type], version, error: t.nack.error, at: now });
      this.log.warn({ node, type: TYPE_NAME[type], version, kept: sotwVersion ?? t.confirmed, error: t.nack.error }, "xds NACK");
      this.emit("nack", node, type, version, t.nack.error);
    } else {
      t.confirmed = s.delta ? t.sentVersion : (sotwVersion || t.sentVersion);
      t.nack = undefined;
      this.ackLog.record(node, { type: TYPE_NAME[type], version: t.confirmed ?? "", at: now });
      if (this.debug) this.log.debug({ node, type: TYPE_NAME[type], version: t.confirmed }, "xds ACK");
      this.emit("ack", node, type, t.confirmed);
    }
    this.emit("change");
    return true;
  }

  private onSnapshot(s: Stream): void {
    for (const [type, t] of s.types) if (t.active) this.push(s, type);
  }

  /** Sends the type's current state if the client lacks it (coalesced while the stream is blocked). */
  push(s: Stream, type: TypeUrl): void {
    if (s.closed) return;
    const t = s.state(type);
    if (s.blocked || s.unflushed >= MAX_UNFLUSHED) { s.blocked = true; t.dirty = true; return; }
    const snap = this.cache.getSnapshot(s.group);
    if (!snap) return; // nothing published for this group yet: the watch will call again
    const trace = this.debug ? this.log : null;
    const bytes = s.delta ? deltaResponse(s, type, t, snap, this.deltaControlPlane, trace) : sotwResponse(s, type, t, snap, this.controlPlane, trace);
    if (!bytes) return;
    s.unflushed++;
    s.call.write(bytes, () => this.flushed(s));
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
  acks(node: string): NodeAckRecord[] { return this.ackLog.of(node); }

  /** Nodes whose ACK/NACK history is held (bounded by MAX_ACK_LOG_NODES). */
  ackLogNodes(): number { return this.ackLog.size; }

  /** Nodes of `group` with an open stream subscribed to `type` (wildcard, or naming a resource). */
  subscribers(group: string, type: TypeUrl): string[] {
    const out = new Set<string>();
    for (const s of this.streams) {
      const t = s.node && s.group === group ? s.types.get(type) : undefined;
      if (t?.active && (t.wildcard || t.names.size > 0)) out.add(s.node!.id);
    }
    return [...out];
  }

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
      // Evaluating walks every stream of the group: on a burst of ACKs (a fleet confirming a push) it
      // runs at most once per VERIFY_COALESCE_MS, not once per ACK (O(streams^2) per push before).
      let queued: NodeJS.Timeout | null = null;
      const onChange = () => { if (!queued) queued = setTimeout(() => { queued = null; check(); }, VERIFY_COALESCE_MS); };
      const finish = (r: VerifyResult) => {
        this.off("change", onChange);
        if (timer) clearTimeout(timer);
        if (queued) clearTimeout(queued);
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
      this.on("change", onChange);
      timer = setTimeout(() => check(true), timeoutMs);
      timer.unref();
      check();
    });
  }

}
