// One Wasm VM (one Envoy worker): the module instance, its contexts, and the `env` host functions
// of proxy-wasm ABI v0.2.1. Host functions act on the *effective* context (the callback's context
// unless proxy_set_effective_context changed it) and only see the buffers and maps the spec makes
// available in the running callback. Every guest pointer is bounds-checked; failures return the
// spec's status codes. Callbacks never re-enter the VM: replies that arrive while the VM is running
// are queued and delivered when the outermost callback returns.
import {
  BufferType, LogLevel, LogLevelValue, MapType, MetricType, Status, StreamType,
} from "./abi.js";
import { GuestMemory } from "./memory.js";
import { HeaderMap, MapParseError, parsePairs } from "./headers.js";
import { encodeProperty, propertyPathToKey, PropertyValue } from "./properties.js";
import { ProcExit, wasiImports } from "./wasi.js";
import type { Timer } from "./clock.js";
import type { GrpcStreamSink } from "./callouts.js";
import type { PluginHost } from "./plugin.js";
import type { HttpStream } from "./stream.js";

type Fn = (...args: number[]) => number | void;

/** Which callback is running: decides which buffers and maps exist (spec "Buffers", "HTTP fields"). */
export interface CallbackScope {
  name: string;
  buffers?: Partial<Record<number, Uint8Array>>;
  maps?: Partial<Record<number, HeaderMap>>;
  status?: { code: number; message: string };
}

export interface Context {
  id: number;
  rootId: number; // 0 for a root context
  stream?: HttpStream;
  pendingFinalize: boolean;
  httpCalls: Map<number, () => void>;
  grpcCalls: Map<number, () => void>;
  tickTimer?: Timer;
  tickMs: number;
  properties: Map<string, Uint8Array>;
}

/**
 * Bookkeeping shared by HTTP and unary gRPC callouts: the token, the timeout (from the plugin's
 * clock), registration with the owning context (Envoy cancels a context's callouts when it goes
 * away), and delivering the answer exactly once, never into a context that is gone.
 */
class Callout {
  readonly token: number;
  error = "";
  private settled = false;
  private timer?: Timer;
  private cancelTransport?: () => void;

  constructor(private readonly vm: WasmVm, private readonly ctx: Context, private readonly table: "httpCalls" | "grpcCalls") {
    this.token = vm.takeToken();
  }

  /** Starts the transport; false (with `error`) when it threw. */
  start(timeoutMs: number, onTimeout: () => void, transport: () => (() => void) | void): boolean {
    try {
      this.cancelTransport = transport() ?? undefined;
    } catch (e) {
      this.error = (e as Error).message;
      return false;
    }
    if (this.settled) return true; // answered synchronously
    if (this.ctx[this.table] === NO_CALLS) this.ctx[this.table] = new Map();
    this.ctx[this.table].set(this.token, () => this.cancel());
    if (timeoutMs > 0) {
      this.timer = this.vm.plugin.clock.setTimer(timeoutMs, () => {
        this.timer = undefined;
        if (!this.settled) this.cancelTransport?.();
        onTimeout();
      });
    }
    return true;
  }

  /** Records the answer (first one wins) and delivers it when the VM is idle. */
  settle(deliver: () => void): void {
    if (this.settled) return;
    this.finish();
    this.vm.deliverTo(this.ctx.id, deliver);
  }

  private cancel(): void {
    if (this.settled) return;
    this.finish();
    this.cancelTransport?.();
  }

  private finish(): void {
    this.settled = true;
    if (this.timer) this.vm.plugin.clock.clearTimer(this.timer);
    this.ctx[this.table].delete(this.token);
  }
}

/** Shared by contexts that never made a callout (replaced on the first one). */
const NO_CALLS: Map<number, () => void> = new Map();
/** Shared by contexts that never set a property (replaced on the first set). */
const EMPTY_PROPS: Map<string, Uint8Array> = new Map();
const SCOPE_CONTEXT_CREATE: CallbackScope = { name: "context_create" };
const SCOPE_DONE: CallbackScope = { name: "done" };
const SCOPE_LOG: CallbackScope = { name: "log" };
const SCOPE_DELETE: CallbackScope = { name: "delete" };

export class WasmVm {
  readonly instance: WebAssembly.Instance;
  readonly memory: GuestMemory;
  readonly rootContextId: number;
  failed = false;
  failure?: Error;
  /** Host calls made by the module (the filter benchmark reports calls per request). */
  hostCalls = 0;

  private readonly exportsFns: Record<string, Function>;
  private readonly callbacks = new Map<string, Function>();
  private readonly contexts = new Map<number, Context>();
  private nextContextId = 1;
  private nextToken = 1;
  private depth = 0;
  private current: Context | undefined;
  private effective: Context | undefined;
  private scope: CallbackScope = { name: "none" };
  private readonly deferred: (() => void)[] = [];
  private readonly metricIds = new Map<number, string>();
  private nextMetricId = 1;
  private readonly grpcStreams = new Map<number, { ctx: Context; sink: GrpcStreamSink }>();
  private readonly alloc: (size: number) => number;

  constructor(readonly plugin: PluginHost, readonly index: number, module: WebAssembly.Module) {
    const wasi = wasiImports({
      mem: () => this.memory,
      clock: plugin.clock,
      ...(plugin.random ? { random: plugin.random } : {}),
      env: plugin.env,
      log: (lvl, msg) => plugin.log(lvl, msg, index),
    });
    // Counts host calls and applies injected faults. Fixed-arity wrappers: a rest/spread wrapper
    // costs more than most host functions themselves.
    const faults = plugin.faults;
    const counted = (fns: Record<string, Fn>): Record<string, Fn> => {
      const out: Record<string, Fn> = {};
      for (const [k, f] of Object.entries(fns)) {
        const g = f as (...a: number[]) => number;
        const pre = () => {
          this.hostCalls++;
          this.memory.sync(); // the module may have grown its memory since the last host call
          return faults.size > 0 ? faults.get(k) : undefined;
        };
        switch (f.length) {
          case 0: out[k] = () => pre() ?? g(); break;
          case 1: out[k] = (a) => pre() ?? g(a!); break;
          case 2: out[k] = (a, b) => pre() ?? g(a!, b!); break;
          case 3: out[k] = (a, b, c) => pre() ?? g(a!, b!, c!); break;
          case 4: out[k] = (a, b, c, d) => pre() ?? g(a!, b!, c!, d!); break;
          case 5: out[k] = (a, b, c, d, e) => pre() ?? g(a!, b!, c!, d!, e!); break;
          default: out[k] = (...a: number[]) => pre() ?? g(...a);
        }
      }
      return out;
    };
    this.instance = new WebAssembly.Instance(module, {
      env: counted(this.envImports()),
      wasi_snapshot_preview1: counted(wasi),
    });
    const ex = this.instance.exports as Record<string, unknown>;
    if (!(ex.memory instanceof WebAssembly.Memory)) throw new Error("module does not export its memory");
    this.memory = new GuestMemory(ex.memory);
    this.exportsFns = ex as Record<string, Function>;
    for (const [k, f] of Object.entries(ex)) if (typeof f === "function" && k.startsWith("proxy_on_")) this.callbacks.set(k, f as Function);
    const allocFn = (ex.proxy_on_memory_allocate ?? ex.malloc) as ((n: number) => number) | undefined;
    if (!allocFn) throw new Error("module exports neither proxy_on_memory_allocate nor malloc");
    this.alloc = allocFn;
    // Integration (spec): _initialize then main when _initialize exists, otherwise _start.
    this.guard("_initialize", () => {
      if (typeof ex._initialize === "function") {
        (ex._initialize as Function)();
        if (typeof ex.main === "function") (ex.main as Function)(0, 0);
      } else if (typeof ex._start === "function") (ex._start as Function)();
    });
    this.rootContextId = this.newContextId();
    this.contexts.set(this.rootContextId, this.makeContext(this.rootContextId, 0));
    this.callback("proxy_on_context_create", this.contexts.get(this.rootContextId)!, { name: "context_create" }, this.rootContextId, 0);
  }

  private makeContext(id: number, rootId: number, stream?: HttpStream): Context {
    return { id, rootId, stream, pendingFinalize: false, httpCalls: NO_CALLS, grpcCalls: NO_CALLS, tickMs: 0, properties: EMPTY_PROPS };
  }

  private newContextId(): number { return this.nextContextId++; }

  // ---------------------------------------------------------------- calling into the module

  hasExport(name: string): boolean { return typeof this.exportsFns[name] === "function"; }

  private guard<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.fail(what, e as Error);
      return undefined;
    }
  }

  private fail(what: string, e: Error): void {
    if (!this.failed) {
      this.failed = true;
      this.failure = e;
      const why = e instanceof ProcExit ? `the module called proc_exit(${e.code})` : `trap: ${e.message}`;
      this.plugin.log(LogLevel.Critical, `wasm VM failed in ${what}: ${why}`, this.index);
    }
  }

  /**
   * Calls export `name` for context `ctx` with `scope` available. Returns the export's result, or
   * undefined when the export is missing or the VM has failed (the caller applies fail-open/closed).
   */
  callback(name: string, ctx: Context, scope: CallbackScope, a = 0, b = 0, c = 0, d = 0, e = 0): number | undefined {
    const fn = this.callbacks.get(name);
    if (this.failed || fn === undefined) return undefined;
    const prevCurrent = this.current, prevEffective = this.effective, prevScope = this.scope;
    this.current = ctx; this.effective = ctx; this.scope = scope;
    this.depth++;
    let r: number | undefined;
    try {
      r = fn(a, b, c, d, e) as number | undefined; // a module ignores arguments beyond its signature
    } catch (e) {
      this.fail(name, e as Error);
      r = undefined;
    } finally {
      this.depth--;
      this.current = prevCurrent; this.effective = prevEffective; this.scope = prevScope;
    }
    if (this.depth === 0) this.drain();
    return typeof r === "number" ? r : r === undefined ? undefined : Number(r);
  }

  takeToken(): number { return this.nextToken++; }

  /** deliver(), skipped if context `id` is gone by then (its callouts were cancelled with it). */
  deliverTo(id: number, fn: () => void): void {
    this.deliver(() => { if (this.contexts.has(id)) fn(); });
  }

  /** Runs fn now when the VM is idle, else right after the running callback returns. */
  private deliver(fn: () => void): void {
    if (this.depth > 0) this.deferred.push(fn); else fn();
  }

  private drain(): void {
    while (this.deferred.length > 0 && this.depth === 0) this.deferred.shift()!();
  }

  // ---------------------------------------------------------------- lifecycle (used by plugin/stream)

  get root(): Context { return this.contexts.get(this.rootContextId)!; }

  startVm(vmConfig: Uint8Array): boolean {
    const r = this.callback("proxy_on_vm_start", this.root, { name: "vm_start", buffers: { [BufferType.VmConfiguration]: vmConfig } },
      this.rootContextId, vmConfig.length);
    return r === undefined ? !this.failed : r !== 0;
  }

  configure(pluginConfig: Uint8Array): boolean {
    const r = this.callback("proxy_on_configure", this.root, { name: "configure", buffers: { [BufferType.PluginConfiguration]: pluginConfig } },
      this.rootContextId, pluginConfig.length);
    return r === undefined ? !this.failed : r !== 0;
  }

  /** Creates a stream context (proxy_on_context_create) and returns it; the stream keeps it for its callbacks. */
  createStreamContext(stream: HttpStream): Context {
    const id = this.newContextId();
    const ctx = this.makeContext(id, this.rootContextId, stream);
    this.contexts.set(id, ctx);
    this.callback("proxy_on_context_create", ctx, SCOPE_CONTEXT_CREATE, id, this.rootContextId);
    return ctx;
  }

  /** A stream callback (request/response headers, body, trailers) for a live stream context. */
  streamCallback(name: string, scope: CallbackScope, ctx: Context, a: number, b = 0): number | undefined {
    return this.callback(name, ctx, scope, ctx.id, a, b);
  }

  /** on_done; when it returns true, on_log and on_delete (spec order). False waits for proxy_done. */
  finishContext(contextId: number): void {
    const ctx = this.contexts.get(contextId);
    if (!ctx) return;
    const r = this.callback("proxy_on_done", ctx, SCOPE_DONE, contextId);
    if (r === 0 && !this.failed) { ctx.pendingFinalize = true; return; }
    this.finalize(ctx);
  }

  private finalize(ctx: Context): void {
    this.callback("proxy_on_log", ctx, SCOPE_LOG, ctx.id);
    this.callback("proxy_on_delete", ctx, SCOPE_DELETE, ctx.id);
    // Envoy cancels a context's outstanding callouts when the context goes away.
    if (ctx.httpCalls.size > 0) for (const cancel of ctx.httpCalls.values()) cancel();
    if (ctx.grpcCalls.size > 0) for (const cancel of ctx.grpcCalls.values()) cancel();
    if (this.grpcStreams.size > 0) for (const [tok, s] of this.grpcStreams) if (s.ctx === ctx) { s.sink.cancel(); this.grpcStreams.delete(tok); }
    if (ctx.tickTimer) this.plugin.clock.clearTimer(ctx.tickTimer);
    this.contexts.delete(ctx.id);
    ctx.stream?.onContextFinalized();
  }

  get liveContexts(): number { return this.contexts.size; }

  // ---------------------------------------------------------------- helpers for host functions

  private get mem(): GuestMemory { return this.memory; }

  /** Copies data into memory the module allocates, and writes (ptr, len) to the return slots. */
  private returnBytes(data: Uint8Array, retPtr: number, retLen: number): number {
    const m = this.mem;
    if (!m.check(retPtr, 4) || !m.check(retLen, 4)) return Status.InvalidMemoryAccess;
    if (data.length === 0) { m.setU32(retPtr, 0); m.setU32(retLen, 0); return Status.Ok; }
    const p = this.allocate(data.length);
    if (p === 0) return Status.InvalidMemoryAccess;
    m.setBytes(p, data);
    m.setU32(retPtr, p);
    m.setU32(retLen, data.length);
    return Status.Ok;
  }

  /** Like returnBytes for a string; short ASCII strings are copied without a native encode. */
  private returnString(value: string, retPtr: number, retLen: number): number {
    const m = this.mem;
    const len = value.length;
    if (len === 0) { m.setU32(retPtr, 0); m.setU32(retLen, 0); return Status.Ok; }
    let ascii = len <= 256;
    for (let i = 0; ascii && i < len; i++) if (value.charCodeAt(i) > 0x7f) ascii = false;
    const size = ascii ? len : Buffer.byteLength(value);
    const p = this.allocate(size);
    if (p === 0) return Status.InvalidMemoryAccess;
    const b = m.bytes;
    if (ascii) for (let i = 0; i < len; i++) b[p + i] = value.charCodeAt(i);
    else m.writeString(p, value);
    m.setU32(retPtr, p);
    m.setU32(retLen, size);
    return Status.Ok;
  }

  private allocate(size: number): number {
    const p = (this.alloc(size) as number) >>> 0;
    this.memory.sync(); // the allocator may have grown memory
    if (p === 0 || !this.mem.check(p, size)) return 0;
    return p;
  }

  private stream(): HttpStream | undefined { return this.effective?.stream; }

  /** The map `type` as visible from the running callback, or undefined (BAD_ARGUMENT). */
  private getMap(type: number): HeaderMap | undefined {
    const scoped = this.scope.maps?.[type];
    if (scoped) return scoped;
    const s = this.stream();
    if (!s) return undefined;
    switch (type) {
      case MapType.HttpRequestHeaders: return s.requestHeadersMap;
      case MapType.HttpRequestTrailers: return s.requestTrailersMap;
      case MapType.HttpResponseHeaders: return s.responseHeadersMap;
      case MapType.HttpResponseTrailers: return s.responseTrailersMap;
      default: return undefined;
    }
  }

  /** A map the running callback may modify (request maps only until they were sent on). */
  private getWritableMap(type: number): HeaderMap | undefined {
    const s = this.stream();
    if (!s) return undefined;
    if (!s.mayModifyMap(type)) return undefined;
    return this.getMap(type);
  }

  private getBuffer(type: number): Uint8Array | undefined {
    const scoped = this.scope.buffers?.[type];
    if (scoped) return scoped;
    const s = this.stream();
    if (!s) return undefined;
    if (type === BufferType.HttpRequestBody) return s.requestBodyBuffer;
    if (type === BufferType.HttpResponseBody) return s.responseBodyBuffer;
    return undefined;
  }

  private readMap(ptr: number, len: number): HeaderMap | number {
    const m = this.mem;
    if (!m.check(ptr, len)) return Status.InvalidMemoryAccess;
    try {
      return new HeaderMap(parsePairs(m.readBytes(ptr, len)));
    } catch (e) {
      if (e instanceof MapParseError) return Status.BadArgument;
      throw e;
    }
  }

  /** Property lookup: the stream's own values, then the plugin's, then what the module set. */
  private property(key: string): PropertyValue | Uint8Array | undefined {
    const ctx = this.effective;
    const own = (ctx && ctx.properties.size > 0 ? ctx.properties.get(key) : undefined)
      ?? (this.root.properties.size > 0 ? this.root.properties.get(key) : undefined);
    if (own) return own;
    const s = ctx?.stream;
    if (s) { const v = s.property(key); if (v !== undefined) return v; }
    return this.plugin.property(key, this.index);
  }

  // ---------------------------------------------------------------- env imports

  private envImports(): Record<string, Fn> {
    const v = this;
    const S = Status;
    return {
      // ---- logging and time
      proxy_log(level: number, ptr: number, len: number): number {
        if (level < 0 || level > 5) return S.BadArgument;
        if (!v.mem.check(ptr, len)) return S.InvalidMemoryAccess;
        v.plugin.log(level as LogLevelValue, v.mem.readString(ptr, len), v.index);
        return S.Ok;
      },
      proxy_get_log_level(ret: number): number {
        if (!v.mem.check(ret, 4)) return S.InvalidMemoryAccess;
        v.mem.setU32(ret, v.plugin.logLevel);
        return S.Ok;
      },
      proxy_get_current_time_nanoseconds(ret: number): number {
        if (!v.mem.check(ret, 8)) return S.InvalidMemoryAccess;
        v.mem.setU64(ret, v.plugin.clock.realtimeNs());
        return S.Ok;
      },
      proxy_set_tick_period_milliseconds(period: number): number {
        // The timer belongs to the root context; Envoy applies a stream context's call to its root.
        const eff = v.effective;
        const ctx = eff && eff.rootId !== 0 ? v.contexts.get(eff.rootId) : eff;
        if (!ctx) return S.BadArgument;
        if (ctx.tickTimer) v.plugin.clock.clearTimer(ctx.tickTimer);
        ctx.tickTimer = undefined;
        ctx.tickMs = period >>> 0;
        if (ctx.tickMs > 0) v.scheduleTick(ctx);
        return S.Ok;
      },

      // ---- lifecycle
      proxy_done(): number {
        const ctx = v.effective;
        if (!ctx || !ctx.pendingFinalize) return S.NotFound;
        ctx.pendingFinalize = false;
        v.deliver(() => v.finalize(ctx));
        return S.Ok;
      },
      proxy_set_effective_context(id: number): number {
        const ctx = v.contexts.get(id >>> 0);
        if (!ctx) return S.BadArgument;
        v.effective = ctx;
        return S.Ok;
      },

      // ---- buffers
      proxy_get_buffer_bytes(type: number, start: number, maxSize: number, retPtr: number, retLen: number): number {
        if (type < 0 || type > BufferType.ForeignFunctionArguments) return S.BadArgument;
        const buf = v.getBuffer(type);
        if (!buf) return S.NotFound;
        const st = start >>> 0, mx = maxSize >>> 0;
        if (st + mx > 0xffffffff || st > buf.length) return S.BadArgument;
        return v.returnBytes(buf.subarray(st, Math.min(buf.length, st + mx)), retPtr, retLen);
      },
      proxy_get_buffer_status(type: number, retSize: number, retFlags: number): number {
        if (type < 0 || type > BufferType.ForeignFunctionArguments) return S.BadArgument;
        const buf = v.getBuffer(type);
        if (!buf) return S.NotFound;
        if (!v.mem.check(retSize, 4) || !v.mem.check(retFlags, 4)) return S.InvalidMemoryAccess;
        v.mem.setU32(retSize, buf.length);
        v.mem.setU32(retFlags, 0);
        return S.Ok;
      },
      proxy_set_buffer_bytes(type: number, start: number, size: number, ptr: number, len: number): number {
        if (type < 0 || type > BufferType.ForeignFunctionArguments) return S.BadArgument;
        const s = v.stream();
        const modifiable = s && (type === BufferType.HttpRequestBody || type === BufferType.HttpResponseBody);
        if (!modifiable || !v.getBuffer(type)) return S.NotFound;
        if (!v.mem.check(ptr, len)) return S.InvalidMemoryAccess;
        s!.spliceBody(type, start >>> 0, size >>> 0, v.mem.readBytes(ptr, len));
        return S.Ok;
      },

      // ---- header maps
      proxy_get_header_map_size(type: number, ret: number): number {
        const map = v.getMap(type);
        if (!map) return S.BadArgument;
        if (!v.mem.check(ret, 4)) return S.InvalidMemoryAccess;
        v.mem.setU32(ret, map.serializedSize());
        return S.Ok;
      },
      proxy_get_header_map_pairs(type: number, retPtr: number, retLen: number): number {
        const map = v.getMap(type);
        if (!map) return S.BadArgument;
        const m = v.mem;
        if (!m.check(retPtr, 4) || !m.check(retLen, 4)) return S.InvalidMemoryAccess;
        let size = map.asciiSerializedSize();
        if (size === 0) { m.setU32(retPtr, 0); m.setU32(retLen, 0); return S.Ok; }
        let p = v.allocate(size);
        if (p === 0) return S.InvalidMemoryAccess;
        if (!map.serializeAsciiInto(m.bytes, p)) {
          size = map.serializedSize();
          p = v.allocate(size);
          if (p === 0) return S.InvalidMemoryAccess;
          map.serializeInto(m.bytes, p);
        }
        m.setU32(retPtr, p);
        m.setU32(retLen, size);
        return S.Ok;
      },
      proxy_set_header_map_pairs(type: number, ptr: number, len: number): number {
        const map = v.getWritableMap(type);
        if (!map) return S.BadArgument;
        const parsed = v.readMap(ptr, len);
        if (typeof parsed === "number") return parsed;
        map.replaceAll(parsed.entries());
        v.stream()?.headersModified(type);
        return S.Ok;
      },
      proxy_get_header_map_value(type: number, kp: number, kl: number, retPtr: number, retLen: number): number {
        const map = v.getMap(type);
        if (!map) return S.BadArgument;
        if (!v.mem.check(kp, kl)) return S.InvalidMemoryAccess;
        const value = map.get(v.mem.readKey(kp, kl));
        if (value === undefined) return S.NotFound;
        const m = v.mem;
        if (!m.check(retPtr, 4) || !m.check(retLen, 4)) return S.InvalidMemoryAccess;
        return v.returnString(value, retPtr, retLen);
      },
      proxy_add_header_map_value(type: number, kp: number, kl: number, vp: number, vl: number): number {
        return v.writeHeader(type, kp, kl, vp, vl, false);
      },
      proxy_replace_header_map_value(type: number, kp: number, kl: number, vp: number, vl: number): number {
        return v.writeHeader(type, kp, kl, vp, vl, true);
      },
      proxy_remove_header_map_value(type: number, kp: number, kl: number): number {
        const map = v.getWritableMap(type);
        if (!map) return S.BadArgument;
        if (!v.mem.check(kp, kl)) return S.InvalidMemoryAccess;
        map.remove(v.mem.readKey(kp, kl));
        v.stream()?.headersModified(type);
        return S.Ok;
      },

      // ---- stream control
      proxy_continue_stream(type: number): number {
        const s = v.stream();
        if (type < 0 || type > StreamType.Upstream) return S.BadArgument;
        if (type > StreamType.HttpResponse) return S.Unimplemented;
        if (!s) return S.NotFound;
        v.deliver(() => s.resume(type));
        return S.Ok;
      },
      proxy_close_stream(type: number): number {
        const s = v.stream();
        if (type < 0 || type > StreamType.Upstream) return S.BadArgument;
        if (!s) return S.NotFound;
        v.deliver(() => s.reset(type));
        return S.Ok;
      },
      proxy_continue_request(): number { return v.stream() ? (v.deliver(() => v.stream()?.resume(StreamType.HttpRequest)), S.Ok) : S.NotFound; },
      proxy_continue_response(): number { return v.stream() ? (v.deliver(() => v.stream()?.resume(StreamType.HttpResponse)), S.Ok) : S.NotFound; },
      proxy_clear_route_cache(): number { v.stream()?.headersModified(MapType.HttpRequestHeaders); return S.Ok; },
      proxy_get_configuration(retPtr: number, retLen: number): number {
        return v.returnBytes(v.plugin.pluginConfig, retPtr, retLen);
      },
      proxy_send_local_response(code: number, dp: number, dl: number, bp: number, bl: number, hp: number, hl: number, grpc: number): number {
        const s = v.stream();
        if (!s) return S.NotFound;
        const m = v.mem;
        if (!m.check(dp, dl) || !m.check(bp, bl)) return S.InvalidMemoryAccess;
        const headers = v.readMap(hp, hl);
        if (typeof headers === "number") return headers;
        if (s.responseStarted) return S.BadArgument;
        s.sendLocalResponse(code >>> 0, m.readString(dp, dl), m.readBytes(bp, bl), headers, grpc | 0);
        return S.Ok;
      },
      proxy_get_status(retCode: number, retPtr: number, retLen: number): number {
        const st = v.scope.status;
        if (!st) return S.NotFound;
        if (!v.mem.check(retCode, 4)) return S.InvalidMemoryAccess;
        v.mem.setU32(retCode, st.code);
        return v.returnBytes(Buffer.from(st.message, "utf8"), retPtr, retLen);
      },

      // ---- callouts
      proxy_http_call(up: number, ul: number, hp: number, hl: number, bp: number, bl: number,
        tp: number, tl: number, timeout: number, retToken: number): number {
        const m = v.mem;
        if (!m.check(up, ul) || !m.check(bp, bl) || !m.check(retToken, 4)) return S.InvalidMemoryAccess;
        const headers = v.readMap(hp, hl);
        if (typeof headers === "number") return headers;
        const trailers = v.readMap(tp, tl);
        if (typeof trailers === "number") return trailers;
        const cluster = m.readString(up, ul);
        if (!v.plugin.callouts.hasUpstream(cluster)) return S.BadArgument;
        if (!headers.get(":method") || !headers.get(":path") || !headers.get(":authority")) return S.BadArgument;
        const ctx = v.effective!;
        const call = new Callout(v, ctx, "httpCalls");
        const answer = (headersOut: HeaderMap | null, bodyOut: Uint8Array, trailersOut: HeaderMap) => call.settle(() => {
          const scope: CallbackScope = {
            name: "http_call_response",
            buffers: { [BufferType.HttpCallResponseBody]: bodyOut },
            maps: { [MapType.HttpCallResponseHeaders]: headersOut ?? new HeaderMap(), [MapType.HttpCallResponseTrailers]: trailersOut },
            status: { code: headersOut ? Number(headersOut.get(":status") ?? 0) : 0, message: headersOut ? "" : "failed" },
          };
          v.callback("proxy_on_http_call_response", ctx, scope, ctx.id, call.token, headersOut ? headersOut.size : 0, bodyOut.length, trailersOut.size);
        });
        const failed = () => answer(null, new Uint8Array(0), new HeaderMap());
        const started = call.start(timeout >>> 0, failed, () => v.plugin.callouts.httpCall(
          { worker: v.index, contextId: ctx.id, token: call.token, cluster, headers, body: m.readBytes(bp, bl), trailers, timeoutMs: timeout >>> 0 },
          (res) => {
            if (!res) { failed(); return; }
            const b = typeof res.body === "string" ? Buffer.from(res.body, "utf8") : (res.body ?? new Uint8Array(0));
            answer(new HeaderMap(res.headers), b, new HeaderMap(res.trailers ?? []));
          }));
        return v.callStarted(call, started, retToken, `http call to ${cluster}`);
      },
      proxy_grpc_call(up: number, ul: number, sp: number, sl: number, mp: number, ml: number,
        ip: number, il: number, msgp: number, msgl: number, timeout: number, retToken: number): number {
        const m = v.mem;
        if (!m.check(up, ul) || !m.check(sp, sl) || !m.check(mp, ml) || !m.check(msgp, msgl) || !m.check(retToken, 4)) {
          return S.InvalidMemoryAccess;
        }
        const md = v.readMap(ip, il);
        if (typeof md === "number") return md;
        const upstream = m.readString(up, ul);
        if (!v.plugin.callouts.hasUpstream(upstream)) return S.ParseFailure;
        const ctx = v.effective!;
        const call = new Callout(v, ctx, "grpcCalls");
        // Envoy: a unary success is one proxy_on_grpc_receive; a failure is proxy_on_grpc_close.
        const answer = (status: number, message: Uint8Array | undefined, statusMessage: string) => call.settle(() => {
          if (status === 0 && message) {
            v.callback("proxy_on_grpc_receive", ctx, { name: "grpc_receive", buffers: { [BufferType.GrpcReceiveBuffer]: message } },
              ctx.id, call.token, message.length);
          } else {
            v.callback("proxy_on_grpc_close", ctx, { name: "grpc_close", status: { code: status, message: statusMessage } },
              ctx.id, call.token, status);
          }
        });
        const started = call.start(timeout >>> 0, () => answer(4, undefined, "deadline exceeded"), () => v.plugin.callouts.grpcCall({
          worker: v.index, contextId: ctx.id, token: call.token, upstream, service: m.readString(sp, sl), method: m.readString(mp, ml),
          initialMetadata: md, message: m.readBytes(msgp, msgl), timeoutMs: timeout >>> 0,
        }, (res) => answer(res.status, res.message, res.statusMessage ?? "")));
        return v.callStarted(call, started, retToken, `gRPC call to ${upstream}`);
      },
      proxy_grpc_stream(up: number, ul: number, sp: number, sl: number, mp: number, ml: number,
        ip: number, il: number, retToken: number): number {
        const m = v.mem;
        if (!m.check(up, ul) || !m.check(sp, sl) || !m.check(mp, ml) || !m.check(retToken, 4)) return S.InvalidMemoryAccess;
        const md = v.readMap(ip, il);
        if (typeof md === "number") return md;
        const upstream = m.readString(up, ul);
        if (!v.plugin.callouts.hasUpstream(upstream)) return S.ParseFailure;
        if (!v.plugin.callouts.grpcStream) return S.Unimplemented;
        const ctx = v.effective!;
        const token = v.nextToken++;
        const alive = () => v.grpcStreams.has(token) && v.contexts.has(ctx.id);
        const sink = v.plugin.callouts.grpcStream({
          worker: v.index, contextId: ctx.id, token, upstream, service: m.readString(sp, sl), method: m.readString(mp, ml),
          initialMetadata: md, timeoutMs: 0,
        }, {
          initialMetadata: (list) => v.deliver(() => {
            if (!alive()) return;
            const map = new HeaderMap(list);
            v.callback("proxy_on_grpc_receive_initial_metadata", ctx, { name: "grpc_initial_metadata", maps: { [MapType.GrpcReceiveInitialMetadata]: map } }, ctx.id, token, map.size);
          }),
          message: (msg) => v.deliver(() => {
            if (!alive()) return;
            v.callback("proxy_on_grpc_receive", ctx, { name: "grpc_receive", buffers: { [BufferType.GrpcReceiveBuffer]: msg } }, ctx.id, token, msg.length);
          }),
          trailingMetadata: (list) => v.deliver(() => {
            if (!alive()) return;
            const map = new HeaderMap(list);
            v.callback("proxy_on_grpc_receive_trailing_metadata", ctx, { name: "grpc_trailing_metadata", maps: { [MapType.GrpcReceiveTrailingMetadata]: map } }, ctx.id, token, map.size);
          }),
          close: (status, message) => v.deliver(() => {
            if (!alive()) return;
            v.grpcStreams.delete(token);
            v.callback("proxy_on_grpc_close", ctx, { name: "grpc_close", status: { code: status, message } }, ctx.id, token, status);
          }),
        });
        v.grpcStreams.set(token, { ctx, sink });
        m.setU32(retToken, token);
        return S.Ok;
      },
      proxy_grpc_send(token: number, p: number, l: number, end: number): number {
        const s = v.grpcStreams.get(token >>> 0);
        if (!s) return S.NotFound;
        if (!v.mem.check(p, l)) return S.InvalidMemoryAccess;
        s.sink.send(v.mem.readBytes(p, l), end !== 0);
        return S.Ok;
      },
      proxy_grpc_cancel(token: number): number {
        const t = token >>> 0;
        const s = v.grpcStreams.get(t);
        if (s) { v.grpcStreams.delete(t); s.sink.cancel(); return S.Ok; }
        for (const ctx of v.contexts.values()) {
          const c = ctx.grpcCalls.get(t);
          if (c) { ctx.grpcCalls.delete(t); c(); return S.Ok; }
        }
        return S.NotFound;
      },
      proxy_grpc_close(token: number): number {
        const t = token >>> 0;
        const s = v.grpcStreams.get(t);
        if (s) { s.sink.close(); return S.Ok; }
        for (const ctx of v.contexts.values()) {
          const c = ctx.grpcCalls.get(t);
          if (c) { ctx.grpcCalls.delete(t); c(); return S.Ok; } // closing a unary call cancels it
        }
        return S.NotFound;
      },

      // ---- shared data and queues
      proxy_get_shared_data(kp: number, kl: number, retPtr: number, retLen: number, retCas: number): number {
        const m = v.mem;
        if (!m.check(kp, kl) || !m.check(retCas, 4)) return S.InvalidMemoryAccess;
        const e = v.plugin.sharedData.get(m.readString(kp, kl));
        if (!e) return S.NotFound;
        const st = v.returnBytes(e.value, retPtr, retLen);
        if (st === S.Ok) m.setU32(retCas, e.cas);
        return st;
      },
      proxy_set_shared_data(kp: number, kl: number, vp: number, vl: number, cas: number): number {
        const m = v.mem;
        if (!m.check(kp, kl) || !m.check(vp, vl)) return S.InvalidMemoryAccess;
        return v.plugin.setSharedData(m.readString(kp, kl), m.readBytes(vp, vl), cas >>> 0) ? S.Ok : S.CasMismatch;
      },
      proxy_register_shared_queue(np: number, nl: number, retId: number): number {
        const m = v.mem;
        if (!m.check(np, nl) || !m.check(retId, 4)) return S.InvalidMemoryAccess;
        const ctx = v.effective ?? v.root;
        m.setU32(retId, v.plugin.registerQueue(m.readString(np, nl), v.index, ctx.rootId === 0 ? ctx.id : ctx.rootId));
        return S.Ok;
      },
      proxy_resolve_shared_queue(vp: number, vl: number, np: number, nl: number, retId: number): number {
        const m = v.mem;
        if (!m.check(vp, vl) || !m.check(np, nl) || !m.check(retId, 4)) return S.InvalidMemoryAccess;
        const id = v.plugin.resolveQueue(m.readString(vp, vl), m.readString(np, nl));
        if (id === undefined) return S.NotFound;
        m.setU32(retId, id);
        return S.Ok;
      },
      proxy_enqueue_shared_queue(id: number, p: number, l: number): number {
        if (!v.mem.check(p, l)) return S.InvalidMemoryAccess;
        return v.plugin.enqueue(id >>> 0, v.mem.readBytes(p, l)) ? S.Ok : S.NotFound;
      },
      proxy_dequeue_shared_queue(id: number, retPtr: number, retLen: number): number {
        const r = v.plugin.dequeue(id >>> 0);
        if (r === "missing") return S.NotFound;
        if (r === "empty") return S.Empty;
        return v.returnBytes(r, retPtr, retLen);
      },

      // ---- metrics
      proxy_define_metric(type: number, np: number, nl: number, retId: number): number {
        if (type < MetricType.Counter || type > MetricType.Histogram) return S.BadArgument;
        const m = v.mem;
        if (!m.check(np, nl) || !m.check(retId, 4)) return S.InvalidMemoryAccess;
        const name = m.readString(np, nl);
        if (!v.plugin.defineMetric(name, type)) return S.BadArgument;
        const id = v.nextMetricId++;
        v.metricIds.set(id, name);
        m.setU32(retId, id);
        return S.Ok;
      },
      proxy_increment_metric(id: number, delta: bigint | number): number {
        const name = v.metricIds.get(id >>> 0);
        if (name === undefined) return S.NotFound;
        return v.plugin.incrementMetric(name, Number(BigInt.asIntN(64, BigInt(delta)))) ? S.Ok : S.BadArgument;
      },
      proxy_record_metric(id: number, value: bigint | number): number {
        const name = v.metricIds.get(id >>> 0);
        if (name === undefined) return S.NotFound;
        return v.plugin.recordMetric(name, Number(BigInt.asUintN(64, BigInt(value)))) ? S.Ok : S.BadArgument;
      },
      proxy_get_metric(id: number, ret: number): number {
        const name = v.metricIds.get(id >>> 0);
        if (name === undefined) return S.NotFound;
        if (!v.mem.check(ret, 8)) return S.InvalidMemoryAccess;
        const val = v.plugin.metricValue(name);
        if (val === undefined) return S.BadArgument; // histograms have no single value
        v.mem.setU64(ret, BigInt(val));
        return S.Ok;
      },

      // ---- properties
      proxy_get_property(pp: number, pl: number, retPtr: number, retLen: number): number {
        if (!v.mem.check(pp, pl)) return S.InvalidMemoryAccess;
        const key = propertyPathToKey(v.mem.readKey(pp, pl));
        const val = v.property(key);
        if (val === undefined) return S.NotFound;
        if ((typeof val === "bigint" || typeof val === "number") && v.mem.check(retPtr, 4) && v.mem.check(retLen, 4)) {
          // Fast path for integers and durations: no intermediate buffer, no BigInt for numbers.
          const p = v.allocate(8);
          if (p === 0) return S.InvalidMemoryAccess;
          if (typeof val === "number") v.mem.setI64FromNumber(p, val); else v.mem.setU64(p, val);
          v.mem.setU32(retPtr, p);
          v.mem.setU32(retLen, 8);
          return S.Ok;
        }
        return v.returnBytes(val instanceof Uint8Array ? val : encodeProperty(val), retPtr, retLen);
      },
      proxy_set_property(pp: number, pl: number, vp: number, vl: number): number {
        if (!v.mem.check(pp, pl) || !v.mem.check(vp, vl)) return S.InvalidMemoryAccess;
        const key = propertyPathToKey(v.mem.readString(pp, pl));
        if (key.length === 0) return S.BadArgument;
        const ctx = v.effective ?? v.root;
        if (ctx.properties === EMPTY_PROPS) ctx.properties = new Map();
        ctx.properties.set(key, v.mem.readBytes(vp, vl));
        return S.Ok;
      },

      // ---- foreign functions
      proxy_call_foreign_function(np: number, nl: number, ap: number, al: number, retPtr: number, retLen: number): number {
        if (!v.mem.check(np, nl) || !v.mem.check(ap, al)) return S.InvalidMemoryAccess;
        const fn = v.plugin.foreignFunctions[v.mem.readString(np, nl)];
        if (!fn) return S.NotFound;
        const out = fn(v.mem.readBytes(ap, al));
        return v.returnBytes(out ?? new Uint8Array(0), retPtr, retLen);
      },
    };
  }

  /** proxy_add_header_map_value (append) and proxy_replace_header_map_value (set). */
  private writeHeader(type: number, kp: number, kl: number, vp: number, vl: number, replace: boolean): number {
    const map = this.getWritableMap(type);
    if (!map) return Status.BadArgument;
    const m = this.memory;
    if (!m.check(kp, kl) || !m.check(vp, vl)) return Status.InvalidMemoryAccess;
    // Replaced values are usually a small set (cluster names): interned like keys.
    if (replace) map.set(m.readKey(kp, kl), m.readKey(vp, vl));
    else map.add(m.readKey(kp, kl), m.readString(vp, vl));
    this.stream()?.headersModified(type);
    return Status.Ok;
  }

  /** A callout's host-call result: its token, or INTERNAL_FAILURE (logged) when the transport threw. */
  private callStarted(call: Callout, started: boolean, retToken: number, what: string): number {
    if (!started) {
      this.plugin.log(LogLevel.Error, `${what} could not start: ${call.error}`, this.index);
      return Status.InternalFailure;
    }
    this.memory.setU32(retToken, call.token);
    return Status.Ok;
  }

  private scheduleTick(ctx: Context): void {
    const period = ctx.tickMs;
    ctx.tickTimer = this.plugin.clock.setTimer(period, () => {
      ctx.tickTimer = undefined;
      if (!this.contexts.has(ctx.id) || ctx.tickMs !== period) return;
      this.scheduleTick(ctx); // next tick first, so the callback may change the period
      this.deliver(() => this.callback("proxy_on_tick", ctx, { name: "tick" }, ctx.id));
    });
  }

  /** Notifies the root context that registered a queue (proxy_on_queue_ready). */
  queueReady(rootId: number, queueId: number): void {
    const ctx = this.contexts.get(rootId);
    if (!ctx) return;
    this.deliver(() => this.callback("proxy_on_queue_ready", ctx, { name: "queue_ready" }, rootId, queueId));
  }

  stopTicks(): void {
    for (const ctx of this.contexts.values()) if (ctx.tickTimer) { this.plugin.clock.clearTimer(ctx.tickTimer); ctx.tickTimer = undefined; }
  }
}

