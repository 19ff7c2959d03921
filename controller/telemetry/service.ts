// The Telemetry gRPC service (proto/shadowmesh/telemetry/v1): Report takes the filters' sketch
// deltas into the TelemetryStore, PushMetrics takes component metrics into the RiskEngine. Requests
// arrive as raw bytes and are decoded here, so a malformed message is INVALID_ARGUMENT with the
// field named (not a transport error), and a request is checked whole before anything is stored.
import * as grpc from "@grpc/grpc-js";
import type { Type as ProtoType } from "protobufjs";
import type { Logger } from "pino";
import { decodeReport, telemetryRoot } from "./report.js";
import { ReportRejected, type TelemetryStore } from "./store.js";
import { RiskInputError, type RiskEngine } from "../risk/engine.js";
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
    PushMetrics: {
      path: `/${TELEMETRY_SERVICE}/PushMetrics`, requestStream: false, responseStream: false,
      requestSerialize: raw, requestDeserialize: (b: Buffer) => b,
      responseSerialize: enc(T("MetricsAck")), responseDeserialize: dec(T("MetricsAck")),
    },
  } as grpc.ServiceDefinition;
}

export interface TelemetryServiceDeps { store: TelemetryStore; engine: RiskEngine; clock: Clock; log: Logger }

function fail(cb: grpc.sendUnaryData<object>, code: grpc.status, details: string): void {
  cb({ code, details, name: "Error", message: details, metadata: new grpc.Metadata() } as grpc.ServiceError, null);
}

/** A decoded MetricsBatch, checked point by point; throws RiskInputError naming the point. */
export function decodeMetrics(bytes: Uint8Array, engine: RiskEngine, nowMs: number): { component: string; signal: string; tMs: number; value: number }[] {
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
  for (const p of points) {
    const key = `${p.component}\u0000${p.signal}`;
    const err = engine.check(p.component, p.signal, p.tMs, p.value, lastT.get(key));
    if (err) throw new RiskInputError(`points[${p.i}]: ${err}`);
    if (p.tMs > nowMs + 300_000) throw new RiskInputError(`points[${p.i}]: timestamp is ${((p.tMs - nowMs) / 1000).toFixed(0)} s in the future`);
    lastT.set(key, p.tMs);
  }
  return points;
}

export function telemetryHandlers(d: TelemetryServiceDeps): grpc.UntypedServiceImplementation {
  return {
    Report(call: grpc.ServerUnaryCall<Buffer, object>, cb: grpc.sendUnaryData<object>) {
      let report;
      try {
        report = decodeReport(call.request);
      } catch (e) {
        d.log.warn({ peer: call.getPeer(), err: (e as Error).message }, "malformed telemetry report");
        return fail(cb, grpc.status.INVALID_ARGUMENT, `FilterReport: ${(e as Error).message}`);
      }
      try {
        const outcome = d.store.ingest(report);
        d.log.debug({ node: report.nodeId, sequence: report.sequence, outcome }, "telemetry report");
        cb(null, { sequence: report.sequence });
      } catch (e) {
        if (!(e instanceof ReportRejected)) throw e;
        d.log.warn({ node: report.nodeId, err: e.message }, "telemetry report refused");
        fail(cb, e.code === "RESOURCE_EXHAUSTED" ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT, `FilterReport: ${e.message}`);
      }
    },
    PushMetrics(call: grpc.ServerUnaryCall<Buffer, object>, cb: grpc.sendUnaryData<object>) {
      let points;
      try {
        points = decodeMetrics(call.request, d.engine, wallMs(d.clock));
      } catch (e) {
        if (!(e instanceof RiskInputError)) throw e;
        return fail(cb, grpc.status.INVALID_ARGUMENT, `MetricsBatch: ${e.message}`);
      }
      for (const p of points) d.engine.observe(p.component, p.signal, p.tMs, p.value);
      cb(null, { accepted: points.length });
    },
  };
}

export function addTelemetryService(server: grpc.Server, deps: TelemetryServiceDeps): void {
  server.addService(telemetryMethods(), telemetryHandlers(deps));
}

export function telemetryClient(address: string, creds = grpc.credentials.createInsecure()) {
  const Ctor = grpc.makeGenericClientConstructor(telemetryMethods(), TELEMETRY_SERVICE);
  return new Ctor(address, creds) as grpc.Client & Record<string, (req: Uint8Array, cb: (e: grpc.ServiceError | null, r: any) => void) => void>;
}
