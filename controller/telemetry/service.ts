// The Telemetry gRPC service (proto/shadowmesh/telemetry/v1): Report (unary) and StreamReports (one
// stream per filter worker, one ack per report) take the filters' sketch deltas into the TelemetryStore, PushMetrics takes component metrics into the RiskEngine. Requests
// arrive as raw bytes and are decoded here, so a malformed message is INVALID_ARGUMENT with the
// field named (not a transport error), and a request is checked whole before anything is stored.
// Every call is authenticated first when credentials are configured (a bearer token in the
// `authorization` metadata, or a client certificate verified against the configured CA): without
// them UNAUTHENTICATED. Report entries for components that are not configured are dropped and
// counted (TelemetryStore.unknownComponents()); PushMetrics values must lie in their kind's range.
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { Type as ProtoType } from "protobufjs";
import type { Logger } from "pino";
import { decodeReport, telemetryRoot } from "./report.js";
import { ReportRejected, type TelemetryStore } from "./store.js";
import type { RiskEngine } from "../risk/engine.js";
import { RiskInputError } from "../risk/spec.js";
import { wallMs, type Clock } from "../../host/clock.js";

export const TELEMETRY_SERVICE = "shadowmesh.telemetry.v1.Telemetry";

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export function telemetryMethods(): grpc.ServiceDefinition {
  const root = telemetryRoot();
  const T = (n: string) => root.lookupType(`shadowmesh.telemetry.v1.${n}`);
  const enc = (t: ProtoType) => (o: object) => asBuffer(t.encode(t.fromObject(o)).finish());
  const dec = (t: ProtoType) => (b: Buffer) => t.toObject(t.decode(b), { longs: String, defaults: true });
  const raw = (b: Buffer | Uint8Array) => (b instanceof Uint8Array ? asBuffer(b) : Buffer.alloc(0));
  return {
    Report: {
      path: `/${TELEMETRY_SERVICE}/Report`, requestStream: false, responseStream: false,
      requestSerialize: raw, requestDeserialize: (b: Buffer) => b,
      responseSerialize: enc(T("ReportAck")), responseDeserialize: dec(T("ReportAck")),
    },
    StreamReports: {
      path: `/${TELEMETRY_SERVICE}/StreamReports`, requestStream: true, responseStream: true,
      requestSerialize: raw, requestDeserialize: (b: Buffer) => b,
      responseSerialize: enc(T("ReportAck")), responseDeserialize: dec(T("ReportAck")),
    },
    ForwardReports: {
      path: `/${TELEMETRY_SERVICE}/ForwardReports`, requestStream: false, responseStream: false,
      requestSerialize: enc(T("ReportBatch")), requestDeserialize: dec(T("ReportBatch")),
      responseSerialize: enc(T("ReportBatchAck")), responseDeserialize: dec(T("ReportBatchAck")),
    },
    PushMetrics: {
      path: `/${TELEMETRY_SERVICE}/PushMetrics`, requestStream: false, responseStream: false,
      requestSerialize: raw, requestDeserialize: (b: Buffer) => b,
      responseSerialize: enc(T("MetricsAck")), responseDeserialize: dec(T("MetricsAck")),
    },
  } as grpc.ServiceDefinition;
}

export interface TelemetryAuth {
  /** Accepted bearer tokens (`authorization: Bearer <token>`). */
  tokens: string[];
  /** The server verifies client certificates against a CA: a verified certificate is a credential. */
  mtls: boolean;
}

export interface TelemetryServiceDeps {
  store: TelemetryStore; engine: RiskEngine; clock: Clock; log: Logger;
  /** Absent (or no tokens and no mTLS): every caller is accepted, as before telemetry auth existed. */
  auth?: TelemetryAuth;
  /** How old a pushed point may be, in ms (default 60 s): older points are backfill. */
  maxMetricAgeMs?: number;
  /** Receives every proxy report merged here, as it arrived (HA: a follower forwards it to the leader). */
  forward?: (raw: Buffer) => void;
  /** Services the filter only observes (config `observe`): their entries are kept too. */
  observed?: ReadonlySet<string>;
}

type Call = grpc.ServerUnaryCall<Buffer, object>;
/** Reports in one ForwardReports call (a follower sends at most this many at once). */
export const MAX_FORWARD_BATCH = 5000;
/** Node ids in one replica's subscriber list (a replica serves a share of the fleet). */
export const MAX_REPLICA_SUBSCRIBERS = 100_000;

/** Why a call is not authenticated, or null when it is (or when no credentials are configured). */
export function telemetryAuthError(call: Call, auth: TelemetryAuth | undefined): string | null {
  if (!auth || (auth.tokens.length === 0 && !auth.mtls)) return null;
  if (auth.mtls) {
    // grpc-js returns the peer certificate only when the TLS socket verified it against the CA.
    const ctx = (call as unknown as { getAuthContext?: () => { sslPeerCertificate?: unknown } | null }).getAuthContext?.();
    if (ctx?.sslPeerCertificate) return null;
  }
  const header = call.metadata.get("authorization")[0];
  const token = typeof header === "string" && /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, "") : null;
  if (token !== null && auth.tokens.some((t) => t.length === token.length && timingSafeEqual(Buffer.from(t), Buffer.from(token)))) return null;
  if (header === undefined) return auth.tokens.length ? "no credentials: send `authorization: Bearer <token>`" + (auth.mtls ? " or a client certificate" : "") : "no credentials: a client certificate signed by the configured CA is required";
  return token === null ? "the authorization metadata is not a bearer token" : "the bearer token is not accepted";
}

/**
 * The range a pushed value of a signal kind must lie in: shares in [0, 1], durations, depths, lags and
 * usage not negative; "app" signals any finite number.
 */
export function metricRange(kind: string): [number, number] {
  switch (kind) {
    case "error_rate": case "consistency": return [0, 1];
    case "app": return [-Infinity, Infinity];
    default: return [0, Infinity];
  }
}

function fail(cb: grpc.sendUnaryData<object>, code: grpc.status, details: string): void {
  cb({ code, details, name: "Error", message: details, metadata: new grpc.Metadata() } as grpc.ServiceError, null);
}

/** A decoded MetricsBatch, checked point by point; throws RiskInputError naming the point. */
export function decodeMetrics(bytes: Uint8Array, engine: RiskEngine, nowMs: number, maxAgeMs = 60_000): { component: string; signal: string; tMs: number; value: number }[] {
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.MetricsBatch");
  let msg: Record<string, any>;
  try { msg = T.toObject(T.decode(bytes), { longs: String, defaults: true }); }
  catch (e) { throw new RiskInputError(`MetricsBatch: ${(e as Error).message}`); }
  const points = (msg.points as any[]).map((p, i) => {
    const ns = BigInt(p.timestampUnixNanos);
    const tMs = ns === 0n ? nowMs : Number(ns / 1_000_000n);
    return { i, component: String(p.component), signal: String(p.signal), tMs, value: Number(p.value) };
  });
  // Check every point (and the time order within the batch) before any is applied.
  const lastT = new Map<string, number>();
  const kinds = new Map<string, Map<string, string>>();
  const kindOf = (component: string, signal: string) => {
    let m = kinds.get(component);
    if (!m) { m = new Map((engine.get(component)?.contributions ?? []).map((c) => [c.signal, c.kind])); kinds.set(component, m); }
    return m.get(signal);
  };
  for (const p of points) {
    const key = `${p.component}\u0000${p.signal}`;
    const err = engine.check(p.component, p.signal, p.tMs, p.value, lastT.get(key));
    if (err) throw new RiskInputError(`points[${p.i}]: ${err}`);
    const kind = kindOf(p.component, p.signal) ?? "app";
    const [lo, hi] = metricRange(kind);
    if (p.value < lo || p.value > hi) throw new RiskInputError(`points[${p.i}]: ${p.component}/${p.signal}: value ${p.value} is out of range for a ${kind} signal [${lo}, ${hi}]`);
    if (p.tMs > nowMs + 10_000) throw new RiskInputError(`points[${p.i}]: ${p.component}/${p.signal}: timestamp is ${((p.tMs - nowMs) / 1000).toFixed(0)} s in the future`);
    if (p.tMs < nowMs - maxAgeMs) throw new RiskInputError(`points[${p.i}]: ${p.component}/${p.signal}: timestamp is ${((nowMs - p.tMs) / 1000).toFixed(0)} s in the past (the limit is ${maxAgeMs / 1000} s): backfill is refused`);
    lastT.set(key, p.tMs);
  }
  return points;
}

export function telemetryHandlers(d: TelemetryServiceDeps): grpc.UntypedServiceImplementation {
  let refusedAuth = 0;
  const denied = (call: Call, cb: grpc.sendUnaryData<object>, method: string): boolean => {
    const why = telemetryAuthError(call, d.auth);
    if (why === null) return false;
    // Logged (without any token) for the first few and then every 1000th, so a scan cannot flood the log.
    if (++refusedAuth <= 10 || refusedAuth % 1000 === 0) d.log.warn({ peer: call.getPeer(), method, refused: refusedAuth, why }, "telemetry call not authenticated");
    fail(cb, grpc.status.UNAUTHENTICATED, why);
    return true;
  };
  /** Whether entries for a component are kept: a configured one (the engine's) or an observed one. */
  const known = (name: string): boolean => d.engine.hasComponent(name) || d.observed?.has(name) === true;
  /** One proxy report, from a unary call or a stream: decoded, checked, merged (and forwarded when merged). */
  const take = (bytes: Buffer, peer: string): { sequence: number } | { code: grpc.status; details: string } => {
    let report;
    try {
      report = decodeReport(bytes);
    } catch (e) {
      d.log.warn({ peer, err: (e as Error).message }, "malformed telemetry report");
      return { code: grpc.status.INVALID_ARGUMENT, details: `FilterReport: ${(e as Error).message}` };
    }
    try {
      const outcome = d.store.ingest(report, known);
      d.log.debug({ node: report.nodeId, sequence: report.sequence, outcome }, "telemetry report");
      if (outcome === "merged") d.forward?.(bytes);
      return { sequence: report.sequence };
    } catch (e) {
      if (!(e instanceof ReportRejected)) throw e;
      d.log.warn({ node: report.nodeId, err: e.message }, "telemetry report refused");
      return { code: e.code === "RESOURCE_EXHAUSTED" ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT, details: `FilterReport: ${e.message}` };
    }
  };
  return {
    Report(call: grpc.ServerUnaryCall<Buffer, object>, cb: grpc.sendUnaryData<object>) {
      if (denied(call, cb, "Report")) return;
      const r = take(call.request, call.getPeer());
      if ("code" in r) return fail(cb, r.code, r.details);
      cb(null, { sequence: r.sequence });
    },
    /** The filter's report stream: each report taken as Report takes it; a refusal ends the stream with its status. */
    StreamReports(call: grpc.ServerDuplexStream<Buffer, object>) {
      let open = true;
      const end = (code: grpc.status, details: string) => { if (!open) return; open = false; call.emit("error", { code, details, name: "Error", message: details, metadata: new grpc.Metadata() }); };
      call.on("error", () => { open = false; }); // cancelled by the proxy, or ended by end()
      if (denied(call as unknown as Call, (e) => { if (e) end(e.code ?? grpc.status.UNAUTHENTICATED, e.details ?? "not authenticated"); }, "StreamReports")) return;
      const peer = call.getPeer();
      call.on("data", (bytes: Buffer) => {
        if (!open) return;
        let r: ReturnType<typeof take>;
        try { r = take(bytes, peer); }
        catch (e) {
          // A fault of ours, not the report's (unary Report answers these UNKNOWN through grpc-js): this
          // listener runs inside grpc-js's stream, where a throw would not be caught.
          d.log.error({ err: e, peer }, "telemetry report stream: report not taken");
          return end(grpc.status.INTERNAL, `FilterReport: not taken: ${(e as Error).message}`);
        }
        if ("code" in r) end(r.code, r.details);
        else call.write({ sequence: r.sequence });
      });
      call.on("end", () => { if (open) { open = false; call.end(); } });
    },
    /** A follower replica's batch: each report checked and merged like one from its proxy. */
    ForwardReports(call: grpc.ServerUnaryCall<{ reports?: Uint8Array[]; subscribers?: { replica?: string; nodes?: string[] } | null }, object>, cb: grpc.sendUnaryData<object>) {
      if (denied(call as unknown as Call, cb, "ForwardReports")) return;
      const list = call.request.reports ?? [];
      if (list.length > MAX_FORWARD_BATCH) return fail(cb, grpc.status.INVALID_ARGUMENT, `ReportBatch: ${list.length} reports, at most ${MAX_FORWARD_BATCH}`);
      const subs = call.request.subscribers;
      if (subs) {
        const nodes = subs.nodes ?? [], empty = nodes.findIndex((n) => !n);
        const bad = !subs.replica ? "subscribers.replica: empty (the sending replica's name is required)"
          : nodes.length > MAX_REPLICA_SUBSCRIBERS ? `subscribers.nodes: ${nodes.length} nodes, at most ${MAX_REPLICA_SUBSCRIBERS}`
          : empty >= 0 ? `subscribers.nodes[${empty}]: empty node id` : null;
        if (bad) return fail(cb, grpc.status.INVALID_ARGUMENT, `ReportBatch: ${bad}`);
        d.store.setReplicaSubscribers(subs.replica!, nodes);
      }
      let merged = 0, refused = 0;
      for (const bytes of list) {
        try { if (d.store.ingest(decodeReport(bytes), known) === "merged") merged++; else refused++; }
        catch { refused++; } // malformed or refused: as the proxy's own call would have been
      }
      if (refused > 0) d.log.debug({ peer: call.getPeer(), merged, refused }, "forwarded reports refused");
      cb(null, { merged, refused });
    },
    PushMetrics(call: grpc.ServerUnaryCall<Buffer, object>, cb: grpc.sendUnaryData<object>) {
      if (denied(call, cb, "PushMetrics")) return;
      let points;
      try {
        points = decodeMetrics(call.request, d.engine, wallMs(d.clock), d.maxMetricAgeMs);
      } catch (e) {
        if (!(e instanceof RiskInputError)) throw e;
        return fail(cb, grpc.status.INVALID_ARGUMENT, `MetricsBatch: ${e.message}`);
      }
      for (const p of points) d.engine.observe(p.component, p.signal, p.tMs, p.value);
      cb(null, { accepted: points.length });
    },
  };
}

/** Certificate files for the telemetry port (controller config `telemetry.tls`). */
export interface TelemetryTls { cert: string; key: string; clientCa?: string }

/**
 * Server credentials for the telemetry port: plaintext without `tls`; TLS with it; with `clientCa`, a
 * client certificate is requested and verified against that CA, but a connection without one is not
 * cut at the handshake: its calls are answered UNAUTHENTICATED unless they carry an accepted bearer
 * token (so mTLS and tokens can be used side by side, and a refusal says why).
 */
export function telemetryServerCredentials(tls: TelemetryTls | null): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const cert = readFileSync(tls.cert), key = readFileSync(tls.key);
  if (!tls.clientCa) return grpc.ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }], false);
  const ca = readFileSync(tls.clientCa);
  // One static provider for both roles (grpc-js's factory names its arguments in the other order).
  const provider: grpc.experimental.CertificateProvider = {
    addCaCertificateListener: (l) => process.nextTick(l, { caCertificate: ca }),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (l) => process.nextTick(l, { certificate: cert, privateKey: key }),
    removeIdentityCertificateListener: () => {},
  };
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

export function addTelemetryService(server: grpc.Server, deps: TelemetryServiceDeps): void {
  server.addService(telemetryMethods(), telemetryHandlers(deps));
}

export function telemetryClient(address: string, creds = grpc.credentials.createInsecure()) {
  const Ctor = grpc.makeGenericClientConstructor(telemetryMethods(), TELEMETRY_SERVICE);
  return new Ctor(address, creds) as grpc.Client & Record<string, (req: Uint8Array, cb: (e: grpc.ServiceError | null, r: any) => void) => void>;
}
