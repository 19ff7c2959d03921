// The fake gRPC server calls the controller's fuzz targets drive handlers with (no sockets): a
// recording unary callback, a unary call carrying a request and metadata, and the server-side duplex
// call the ADS server streams on.
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";

export type Cb = { calls: number; err: grpc.ServiceError | null };
export const recorder = (): [Cb, grpc.sendUnaryData<any>] => { const r: Cb = { calls: 0, err: null }; return [r, ((e: grpc.ServiceError | null) => { r.calls++; r.err = e; }) as grpc.sendUnaryData<any>]; };

export function fakeUnary(request: unknown, md: [string, string][] = []): grpc.ServerUnaryCall<any, any> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of md) { try { metadata.add(k, v); } catch { /* a name grpc refuses is not sent */ } }
  return { request, metadata, getPeer: () => "ipv4:127.0.0.1:1", getAuthContext: () => null } as unknown as grpc.ServerUnaryCall<any, any>;
}

/** A server-side duplex call as grpc-js presents it to the ADS server: data in, writes out, 'error' closes. */
export class FakeAdsCall extends EventEmitter {
  written: Buffer[] = [];
  statuses: { code: number; details: string }[] = [];
  ended = false;
  metadata = new grpc.Metadata();
  constructor() {
    super();
    // grpc-js ends the call on 'error' after sending the status.
    this.on("error", (e: { code?: number; details?: string }) => { this.statuses.push({ code: e.code ?? -1, details: e.details ?? "" }); this.emit("close"); });
  }
  write(b: Buffer, cb?: () => void): boolean { this.written.push(b); if (this.written.length > 64) this.written.shift(); if (cb) queueMicrotask(cb); return true; }
  end(): void { this.ended = true; }
  getPeer(): string { return "ipv4:127.0.0.1:2"; }
}
