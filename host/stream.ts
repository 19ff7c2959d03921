// One HTTP stream through one VM, driven in Envoy's order: request headers, body chunks, trailers,
// response headers, body chunks, trailers, then done/log/delete. It keeps what the proxy would
// forward (headers after the filter changed them, bodies as released), honours Pause (buffering
// body until proxy_continue_stream), local responses and resets, and answers the stream
// properties Envoy provides (request.*, response.*, xds.*, upstream.*).
import { Action, BufferType, LogLevel, MapType, StreamType } from "./abi.js";
import { HeaderMap, type HeaderList } from "./headers.js";
import type { PropertyValue } from "./properties.js";
import type { WasmVm } from "./vm.js";

export interface StreamOptions {
  /** Per-stream properties (override the computed ones), e.g. {"xds.cluster_name": "orders-primary"}. */
  properties?: Record<string, PropertyValue>;
}

export interface LocalResponse {
  status: number;
  details: string;
  body: Uint8Array;
  headers: HeaderMap;
  grpcStatus: number;
}

const NO_PROPS: Map<string, PropertyValue> = new Map();

type Phase = "request_headers" | "request_body" | "request_trailers" | "response_headers" | "response_body" | "response_trailers" | "done";

export class HttpStream {
  readonly contextId: number;
  requestHeadersMap?: HeaderMap;
  requestTrailersMap?: HeaderMap;
  responseHeadersMap?: HeaderMap;
  responseTrailersMap?: HeaderMap;
  requestBodyBuffer?: Uint8Array;
  responseBodyBuffer?: Uint8Array;
  /** Body bytes released upstream / downstream so far. */
  readonly forwardedRequestBody: Uint8Array[] = [];
  readonly forwardedResponseBody: Uint8Array[] = [];
  localResponse?: LocalResponse;
  /** Set when the module changed request headers (Envoy clears the route cache then). */
  routeCacheCleared = false;
  requestPaused = false;
  responsePaused = false;
  resetBy?: "request" | "response";
  finished = false;
  /** Called when the module resumes a paused direction. */
  onResume?: (type: number) => void;
  private phase: Phase = "request_headers";
  private props: Map<string, PropertyValue>;
  private readonly startMono: number;
  private endMono?: number;
  private requestBodyBytes = 0;
  private responseBodyBytes = 0;
  private requestEnded = false;
  private responseEnded = false;
  private requestHeadersSent = false;
  private requestTrailersSent = false;
  private responseHeadersSent = false;
  private responseTrailersSent = false;

  constructor(readonly vm: WasmVm, opts: StreamOptions = {}) {
    this.props = opts.properties ? new Map(Object.entries(opts.properties)) : NO_PROPS;
    this.startMono = vm.plugin.clock.monotonicNs();
    this.contextId = vm.createStreamContext(this);
  }

  get responseStarted(): boolean { return this.responseHeadersMap !== undefined || this.localResponse !== undefined; }

  private failedAction(): number {
    // The VM failed: Envoy's fail_open decides between passing the stream and a 503.
    if (!this.vm.plugin.failOpen && !this.localResponse) {
      this.localResponse = { status: 503, details: "wasm_fail_stream", body: new Uint8Array(0), headers: new HeaderMap(), grpcStatus: -1 };
    }
    return Action.Continue;
  }

  private run(name: string, a?: number, b?: number): number {
    const r = this.vm.streamCallback(name, this.contextId, a, b);
    if (r === undefined) return this.vm.failed ? this.failedAction() : Action.Continue;
    if (r !== Action.Continue && r !== Action.Pause) {
      this.vm.plugin.log(LogLevel.Error, `${name} returned ${r}, which is not a proxy_action_t; treated as CONTINUE`, this.vm.index);
      return Action.Continue;
    }
    return r;
  }

  // ------------------------------------------------------------ request direction

  sendRequestHeaders(headers: HeaderList | HeaderMap, endOfStream = true): number {
    this.expect("request_headers", "request headers");
    this.requestHeadersMap = headers instanceof HeaderMap ? headers : new HeaderMap(headers);
    this.requestEnded = endOfStream;
    this.phase = endOfStream ? "response_headers" : "request_body";
    const a = this.run("proxy_on_request_headers", this.requestHeadersMap.size, endOfStream ? 1 : 0);
    this.requestPaused = a === Action.Pause;
    this.requestHeadersSent = !this.requestPaused;
    return a;
  }

  sendRequestBody(chunk: Uint8Array | string, endOfStream: boolean): number {
    this.expect("request_body", "a request body chunk");
    const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.requestBodyBytes += data.length;
    this.requestBodyBuffer = this.requestPaused && this.requestBodyBuffer ? concat(this.requestBodyBuffer, data) : data;
    this.requestEnded = endOfStream;
    if (endOfStream) this.phase = "response_headers";
    const a = this.run("proxy_on_request_body", this.requestBodyBuffer.length, endOfStream ? 1 : 0);
    if (a === Action.Continue) this.releaseRequestBody(); else this.requestPaused = true;
    return a;
  }

  sendRequestTrailers(trailers: HeaderList): number {
    this.expect("request_body", "request trailers");
    this.requestTrailersMap = new HeaderMap(trailers);
    this.requestEnded = true;
    this.phase = "response_headers";
    const a = this.run("proxy_on_request_trailers", this.requestTrailersMap.size);
    this.requestPaused = a === Action.Pause;
    this.requestTrailersSent = !this.requestPaused;
    return a;
  }

  private releaseRequestBody(): void {
    if (this.requestBodyBuffer && this.requestBodyBuffer.length > 0) this.forwardedRequestBody.push(this.requestBodyBuffer);
    this.requestBodyBuffer = undefined;
    this.requestPaused = false;
  }

  // ------------------------------------------------------------ response direction

  sendResponseHeaders(headers: HeaderList | HeaderMap, endOfStream = false): number {
    if (this.phase !== "response_headers") {
      if (this.phase === "request_body" || this.phase === "request_headers") this.phase = "response_headers"; // early response
      else this.expect("response_headers", "response headers");
    }
    this.responseHeadersMap = headers instanceof HeaderMap ? headers : new HeaderMap(headers);
    this.responseEnded = endOfStream;
    this.phase = endOfStream ? "done" : "response_body";
    const a = this.run("proxy_on_response_headers", this.responseHeadersMap.size, endOfStream ? 1 : 0);
    this.responsePaused = a === Action.Pause;
    this.responseHeadersSent = !this.responsePaused;
    return a;
  }

  sendResponseBody(chunk: Uint8Array | string, endOfStream: boolean): number {
    this.expect("response_body", "a response body chunk");
    const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.responseBodyBytes += data.length;
    this.responseBodyBuffer = this.responsePaused && this.responseBodyBuffer ? concat(this.responseBodyBuffer, data) : data;
    this.responseEnded = endOfStream;
    if (endOfStream) this.phase = "done";
    const a = this.run("proxy_on_response_body", this.responseBodyBuffer.length, endOfStream ? 1 : 0);
    if (a === Action.Continue) this.releaseResponseBody(); else this.responsePaused = true;
    return a;
  }

  sendResponseTrailers(trailers: HeaderList): number {
    this.expect("response_body", "response trailers");
    this.responseTrailersMap = new HeaderMap(trailers);
    this.responseEnded = true;
    this.phase = "done";
    const a = this.run("proxy_on_response_trailers", this.responseTrailersMap.size);
    this.responsePaused = a === Action.Pause;
    this.responseTrailersSent = !this.responsePaused;
    return a;
  }

  private releaseResponseBody(): void {
    if (this.responseBodyBuffer && this.responseBodyBuffer.length > 0) this.forwardedResponseBody.push(this.responseBodyBuffer);
    this.responseBodyBuffer = undefined;
    this.responsePaused = false;
  }

  /** Ends the stream: proxy_on_done, then (unless the module defers with false) proxy_on_log and proxy_on_delete. */
  complete(): void {
    if (this.finished) return;
    this.finished = true;
    this.endMono = this.vm.plugin.clock.monotonicNs();
    this.phase = "done";
    this.vm.finishContext(this.contextId);
  }

  // ------------------------------------------------------------ called by the VM's host functions

  /** A map may change while its callback runs, or for as long as the filter keeps it paused (spec "HTTP fields"). */
  mayModifyMap(type: number): boolean {
    switch (type) {
      case MapType.HttpRequestHeaders: return this.requestHeadersMap !== undefined && !this.requestHeadersSent;
      case MapType.HttpRequestTrailers: return this.requestTrailersMap !== undefined && !this.requestTrailersSent;
      case MapType.HttpResponseHeaders: return this.responseHeadersMap !== undefined && !this.responseHeadersSent;
      case MapType.HttpResponseTrailers: return this.responseTrailersMap !== undefined && !this.responseTrailersSent;
      default: return false;
    }
  }

  headersModified(type: number): void {
    if (type === MapType.HttpRequestHeaders) this.routeCacheCleared = true;
  }

  spliceBody(type: number, start: number, size: number, data: Uint8Array): void {
    const cur = type === BufferType.HttpRequestBody ? this.requestBodyBuffer : this.responseBodyBuffer;
    if (!cur) return;
    const s = Math.min(start, cur.length);
    const e = Math.min(cur.length, s + size);
    const next = concat(concat(cur.subarray(0, s), data), cur.subarray(e));
    if (type === BufferType.HttpRequestBody) this.requestBodyBuffer = next; else this.responseBodyBuffer = next;
  }

  resume(type: number): void {
    if (type === StreamType.HttpRequest && this.requestPaused) {
      this.releaseRequestBody();
      this.requestHeadersSent = true;
      if (this.requestTrailersMap) this.requestTrailersSent = true;
    }
    if (type === StreamType.HttpResponse && this.responsePaused) {
      this.releaseResponseBody();
      this.responseHeadersSent = true;
      if (this.responseTrailersMap) this.responseTrailersSent = true;
    }
    this.onResume?.(type);
  }

  reset(type: number): void {
    this.resetBy = type === StreamType.HttpRequest ? "request" : "response";
  }

  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderMap, grpcStatus: number): void {
    this.localResponse = { status, details, body, headers, grpcStatus };
  }

  onContextFinalized(): void { this.finished = true; }

  /** Envoy's attributes for this stream (the ones a filter reads most). */
  property(key: string): PropertyValue | undefined {
    const own = this.props.size > 0 ? this.props.get(key) : undefined;
    if (own !== undefined) return own;
    const rq = this.requestHeadersMap;
    switch (key) {
      case "request.time": {
        // Derived on demand: wall now minus the monotonic time elapsed since the stream began.
        const c = this.vm.plugin.clock;
        return c.realtimeNs() - BigInt(Math.round(c.monotonicNs() - this.startMono));
      }
      case "request.duration": return BigInt(Math.round((this.endMono ?? this.vm.plugin.clock.monotonicNs()) - this.startMono));
      case "request.size": return BigInt(this.requestBodyBytes);
      case "request.total_size": return BigInt(this.requestBodyBytes + (rq?.serializedSize() ?? 0));
      case "request.method": return rq?.get(":method");
      case "request.path": return rq?.get(":path");
      case "request.url_path": return rq?.get(":path")?.split("?")[0];
      case "request.host": return rq?.get(":authority");
      case "request.scheme": return rq?.get(":scheme");
      case "request.headers": return rq;
      case "request.id": return rq?.get("x-request-id");
      case "response.code": {
        const s = this.localResponse?.status ?? Number(this.responseHeadersMap?.get(":status") ?? NaN);
        return Number.isFinite(s) ? BigInt(s) : undefined;
      }
      case "response.size": return BigInt(this.responseBodyBytes);
      case "response.headers": return this.responseHeadersMap;
      case "response.trailers": return this.responseTrailersMap;
      case "response.flags": return this.props.get("response.flags") ?? 0n;
      default: return undefined;
    }
  }

  setProperty(key: string, value: PropertyValue): void {
    if (this.props === NO_PROPS) this.props = new Map();
    this.props.set(key, value);
  }

  private expect(p: Phase, what: string): void {
    if (this.finished) throw new Error(`stream ${this.contextId}: ${what} after the stream completed`);
    if (this.phase !== p) throw new Error(`stream ${this.contextId}: ${what} not expected in phase ${this.phase}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0); out.set(b, a.length);
  return out;
}

/** Re-exported for hosts that map the response-header phase themselves. */
export { MapType };
