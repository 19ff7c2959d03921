// The seam between the host and whatever carries a plugin's outbound calls: proxy_http_call and
// proxy_grpc_call/stream land here. The embedded data plane implements it over real sockets;
// tests use RecordingCallouts and answer each call by hand.
import type { HeaderList, HeaderMap } from "./headers.js";

export interface HttpCallRequest {
  readonly worker: number;
  readonly contextId: number;
  readonly token: number;
  readonly cluster: string;
  readonly headers: HeaderMap;
  readonly body: Uint8Array;
  readonly trailers: HeaderMap;
  readonly timeoutMs: number;
}

export interface HttpCallResponse {
  headers: HeaderList;
  body?: Uint8Array | string;
  trailers?: HeaderList;
}

export interface GrpcCallRequest {
  readonly worker: number;
  readonly contextId: number;
  readonly token: number;
  readonly upstream: string;
  readonly service: string;
  readonly method: string;
  readonly initialMetadata: HeaderMap;
  /** Absent for streams: messages then arrive through GrpcStreamSink.send. */
  readonly message?: Uint8Array;
  readonly timeoutMs: number;
}

export interface GrpcResult {
  /** gRPC status code; 0 is OK. */
  status: number;
  message?: Uint8Array;
  statusMessage?: string;
}

/** What the host can do to a gRPC stream it opened on the plugin's behalf. */
export interface GrpcStreamSink {
  send(message: Uint8Array, endStream: boolean): void;
  close(): void;
  cancel(): void;
}

/** What the transport reports back on a gRPC stream. */
export interface GrpcStreamEvents {
  initialMetadata(md: HeaderList): void;
  message(msg: Uint8Array): void;
  trailingMetadata(md: HeaderList): void;
  close(status: number, statusMessage: string): void;
}

export interface Callouts {
  /** Whether `name` is a cluster (upstream) this host can call; unknown upstreams are refused. */
  hasUpstream(name: string): boolean;
  /** Starts an HTTP call. `reply(null)` reports a failure. Returns a cancel function, if any. */
  httpCall(req: HttpCallRequest, reply: (res: HttpCallResponse | null) => void): (() => void) | void;
  /** Starts a unary gRPC call. Returns a cancel function, if any. */
  grpcCall(req: GrpcCallRequest, reply: (res: GrpcResult) => void): (() => void) | void;
  /** Opens a gRPC stream; hosts without streaming leave it out (the call returns UNIMPLEMENTED). */
  grpcStream?(req: GrpcCallRequest, events: GrpcStreamEvents): GrpcStreamSink;
}

export interface PendingHttpCall {
  req: HttpCallRequest;
  respond(res: HttpCallResponse): void;
  fail(): void;
  cancelled: boolean;
}

export interface PendingGrpcCall {
  req: GrpcCallRequest;
  reply(res: GrpcResult): void;
  cancelled: boolean;
}

/** Test double: records every call; the test answers (or never answers) each one. */
export class RecordingCallouts implements Callouts {
  readonly http: PendingHttpCall[] = [];
  readonly grpc: PendingGrpcCall[] = [];
  readonly streams: { req: GrpcCallRequest; events: GrpcStreamEvents; sent: Uint8Array[]; closed: boolean; cancelled: boolean }[] = [];
  upstreams: Set<string> | "any";

  constructor(upstreams: Iterable<string> | "any" = "any") {
    this.upstreams = upstreams === "any" ? "any" : new Set(upstreams);
  }

  hasUpstream(name: string): boolean { return this.upstreams === "any" || this.upstreams.has(name); }

  httpCall(req: HttpCallRequest, reply: (res: HttpCallResponse | null) => void): () => void {
    const call: PendingHttpCall = {
      req, cancelled: false,
      respond: (res) => reply(res),
      fail: () => reply(null),
    };
    this.http.push(call);
    return () => { call.cancelled = true; };
  }

  grpcCall(req: GrpcCallRequest, reply: (res: GrpcResult) => void): () => void {
    const call: PendingGrpcCall = { req, cancelled: false, reply };
    this.grpc.push(call);
    return () => { call.cancelled = true; };
  }

  grpcStream(req: GrpcCallRequest, events: GrpcStreamEvents): GrpcStreamSink {
    const s = { req, events, sent: [] as Uint8Array[], closed: false, cancelled: false };
    this.streams.push(s);
    return {
      send: (m) => { s.sent.push(m); },
      close: () => { s.closed = true; },
      cancel: () => { s.cancelled = true; },
    };
  }

  /** Removes and returns the HTTP calls made so far. */
  takeHttp(): PendingHttpCall[] { return this.http.splice(0); }
  takeGrpc(): PendingGrpcCall[] { return this.grpc.splice(0); }
}
