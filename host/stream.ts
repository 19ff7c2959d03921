// One HTTP stream through one VM, driven in Envoy's order: request headers, body chunks, trailers,
// response headers, body chunks, trailers, then done/log/delete. It keeps what the proxy would
// forward (headers after the filter changed them, bodies as released), honours Pause (buffering
// body until proxy_continue_stream), local responses and resets, and answers the stream
// properties Envoy provides (request.*, response.*, xds.*, upstream.*).
import { Action, BufferType, LogLevel, MapType, StreamType } from "./abi.js";
import { HeaderMap, type HeaderList } from "./headers.js";
import type { PropertyValue } from "./properties.js";
import type { CallbackScope, Context, WasmVm } from "./vm.js";

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
/** One scope object per stream callback name, shared by every stream. */
const SCOPES = new Map<string, CallbackScope>();

type Phase = "request_headers" | "request_body" | "response_headers" | "response_body" | "done";

/** One direction of a stream (request or response): its maps, its body and what was released. */
class Direction {
  headers?: HeaderMap;
  trailers?: HeaderMap;
  /** The body the module can see now: the current chunk, or everything buffered while paused. */
  body?: Uint8Array;
  /** Body bytes released (upstream for the request, downstream for the response); created on first use. */
  forwarded?: Uint8Array[];
  bodyBytes = 0;
  paused = false;
  headersSent = false;
  trailersSent = false;

  constructor(
    readonly onHeaders: string, readonly onBody: string, readonly onTrailers: string,
    /** Phase after this direction's body, and after headers or body ending the stream. */
    readonly bodyPhase: Phase, readonly endPhase: Phase,
  ) {}

  release(): void {
    if (this.body && this.body.length > 0) (this.forwarded ??= []).push(this.body);
    this.body = undefined;
    this.paused = false;
  }

  /** proxy_continue_stream: release the body and everything the module held back. */
  resume(): void {
    if (!this.paused) return;
    this.release();
    this.headersSent = true;
    if (this.trailers) this.trailersSent = true;
  }
}

export class HttpStream {
  readonly contextId: number;
  private readonly ctx: Context;
  readonly request = new Direction("proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers", "request_body", "response_headers");
  readonly response = new Direction("proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers", "response_body", "done");
  localResponse?: LocalResponse;
  /** Set when the module changed request headers (Envoy clears the route cache then). */
  routeCacheCleared = false;
  resetBy?: "request" | "response";
  finished = false;
  /** Called when the module resumes a paused direction. */
  onResume?: (type: number) => void;
  /** Called when the module sends a local response (e.g. from a later callback, while the request is paused). */
  onLocalResponse?: () => void;
  private phase: Phase = "request_headers";
  private props: Map<string, PropertyValue>;
  private readonly startMono: number;
  private endMono?: number;

  constructor(readonly vm: WasmVm, opts: StreamOptions = {}) {
    this.props = opts.properties ? new Map(Object.entries(opts.properties)) : NO_PROPS;
    this.startMono = vm.plugin.clock.monotonicNs();
    this.ctx = vm.createStreamContext(this);
    this.contextId = this.ctx.id;
  }

  get requestHeadersMap(): HeaderMap | undefined { return this.request.headers; }
  get requestTrailersMap(): HeaderMap | undefined { return this.request.trailers; }
  get responseHeadersMap(): HeaderMap | undefined { return this.response.headers; }
  get responseTrailersMap(): HeaderMap | undefined { return this.response.trailers; }
  get requestBodyBuffer(): Uint8Array | undefined { return this.request.body; }
  get responseBodyBuffer(): Uint8Array | undefined { return this.response.body; }
  get forwardedRequestBody(): Uint8Array[] { return this.request.forwarded ?? []; }
  get forwardedResponseBody(): Uint8Array[] { return this.response.forwarded ?? []; }
  get requestPaused(): boolean { return this.request.paused; }
  get responsePaused(): boolean { return this.response.paused; }
  get responseStarted(): boolean { return this.response.headers !== undefined || this.localResponse !== undefined; }

  private failedAction(): number {
    // The VM failed: Envoy's fail_open decides between passing the stream and a 503.
    if (!this.vm.plugin.failOpen && !this.localResponse) {
      this.localResponse = { status: 503, details: "wasm_fail_stream", body: new Uint8Array(0), headers: new HeaderMap(), grpcStatus: -1 };
    }
    return Action.Continue;
  }

  private run(name: string, a: number, b?: number): number {
    let scope = SCOPES.get(name);
    if (!scope) { scope = { name }; SCOPES.set(name, scope); }
    const r = this.vm.streamCallback(name, scope, this.ctx, a, b);
    if (r === undefined) return this.vm.failed ? this.failedAction() : Action.Continue;
    if (r !== Action.Continue && r !== Action.Pause) {
      this.vm.plugin.log(LogLevel.Error, `${name} returned ${r}, which is not a proxy_action_t; treated as CONTINUE`, this.vm.index);
      return Action.Continue;
    }
    return r;
  }

  private headers(d: Direction, headers: HeaderList | HeaderMap, endOfStream: boolean): number {
    d.headers = headers instanceof HeaderMap ? headers : new HeaderMap(headers);
    this.phase = endOfStream ? d.endPhase : d.bodyPhase;
    const a = this.run(d.onHeaders, d.headers.size, endOfStream ? 1 : 0);
    d.paused = a === Action.Pause;
    d.headersSent = !d.paused;
    return a;
  }

  private body(d: Direction, chunk: Uint8Array | string, endOfStream: boolean): number {
    const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    d.bodyBytes += data.length;
    d.body = d.paused && d.body ? concat(d.body, data) : data;
    if (endOfStream) this.phase = d.endPhase;
    const a = this.run(d.onBody, d.body.length, endOfStream ? 1 : 0);
    if (a !== Action.Continue) { d.paused = true; return a; }
    // Continue from a body callback continues headers the module paused too (Envoy's decodeData
    // returning Continue after decodeHeaders' StopIteration): a filter that holds a request must
    // also hold its body.
    const headersHeld = !d.headersSent;
    d.release();
    if (headersHeld) {
      d.headersSent = true;
      this.onResume?.(d === this.request ? StreamType.HttpRequest : StreamType.HttpResponse);
    }
    return a;
  }

  private trailers(d: Direction, trailers: HeaderList): number {
    d.trailers = new HeaderMap(trailers);
    this.phase = d.endPhase;
    const a = this.run(d.onTrailers, d.trailers.size);
    d.paused = a === Action.Pause;
    d.trailersSent = !d.paused;
    return a;
  }

  sendRequestHeaders(headers: HeaderList | HeaderMap, endOfStream = true): number {
    this.expect("request_headers", "request headers");
    return this.headers(this.request, headers, endOfStream);
  }

  sendRequestBody(chunk: Uint8Array | string, endOfStream: boolean): number {
    this.expect("request_body", "a request body chunk");
    return this.body(this.request, chunk, endOfStream);
  }

  sendRequestTrailers(trailers: HeaderList): number {
    this.expect("request_body", "request trailers");
    return this.trailers(this.request, trailers);
  }

  /** Response headers; allowed before the request ended too (an upstream may answer early). */
  sendResponseHeaders(headers: HeaderList | HeaderMap, endOfStream = false): number {
    if (this.phase === "request_headers" || this.phase === "request_body") this.phase = "response_headers";
    this.expect("response_headers", "response headers");
    return this.headers(this.response, headers, endOfStream);
  }

  sendResponseBody(chunk: Uint8Array | string, endOfStream: boolean): number {
    this.expect("response_body", "a response body chunk");
    return this.body(this.response, chunk, endOfStream);
  }

  sendResponseTrailers(trailers: HeaderList): number {
    this.expect("response_body", "response trailers");
    return this.trailers(this.response, trailers);
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
      case MapType.HttpRequestHeaders: return this.request.headers !== undefined && !this.request.headersSent;
      case MapType.HttpRequestTrailers: return this.request.trailers !== undefined && !this.request.trailersSent;
      case MapType.HttpResponseHeaders: return this.response.headers !== undefined && !this.response.headersSent;
      case MapType.HttpResponseTrailers: return this.response.trailers !== undefined && !this.response.trailersSent;
      default: return false;
    }
  }

  headersModified(type: number): void {
    if (type === MapType.HttpRequestHeaders) this.routeCacheCleared = true;
  }

  spliceBody(type: number, start: number, size: number, data: Uint8Array): void {
    const d = type === BufferType.HttpRequestBody ? this.request : this.response;
    const cur = d.body;
    if (!cur) return;
    const s = Math.min(start, cur.length);
    const e = Math.min(cur.length, s + size);
    d.body = concat(concat(cur.subarray(0, s), data), cur.subarray(e));
  }

  resume(type: number): void {
    const d = type === StreamType.HttpRequest ? this.request : type === StreamType.HttpResponse ? this.response : null;
    if (!d?.paused) return; // continuing a stream that is not paused changes nothing (Envoy: a no-op)
    d.resume();
    this.onResume?.(type);
  }

  reset(type: number): void {
    this.resetBy = type === StreamType.HttpRequest ? "request" : "response";
  }

  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderMap, grpcStatus: number): void {
    this.localResponse = { status, details, body, headers, grpcStatus };
    this.onLocalResponse?.();
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
      case "request.duration": return Math.round((this.endMono ?? this.vm.plugin.clock.monotonicNs()) - this.startMono);
      case "request.size": return BigInt(this.request.bodyBytes);
      case "request.total_size": return BigInt(this.request.bodyBytes + (rq?.serializedSize() ?? 0));
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
      case "response.size": return BigInt(this.response.bodyBytes);
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
