// One Wasm VM (one Envoy worker): the module instance, its contexts, callback dispatch and what the
// `env` host functions of proxy-wasm ABI v0.2.1 use (EnvHost; the functions themselves are in
// host/env-*.ts, by concern). Host functions act on the *effective* context (the callback's context
// unless proxy_set_effective_context changed it) and only see the buffers and maps the spec makes
// available in the running callback. Every guest pointer is bounds-checked; failures return the
// spec's status codes. Callbacks never re-enter the VM: replies that arrive while the VM is running
// are queued and delivered when the outermost callback returns.
import { BufferType, LogLevel, MapType, Status } from "./abi.js";
import { GuestMemory } from "./memory.js";
import { HeaderMap, MapParseError, parsePairs } from "./headers.js";
import type { PropertyValue } from "./properties.js";
import { ProcExit, wasiImports } from "./wasi.js";
import type { GrpcStreamSink } from "./callouts.js";
import type { PluginHost } from "./plugin.js";
import type { HttpStream } from "./stream.js";
import { EMPTY_PROPS, NO_CALLS, type CallbackScope, type Context } from "./context.js";
import { envImports, type EnvHost, type Fn } from "./env.js";

export type { CallbackScope, Context } from "./context.js";

const SCOPE_CONTEXT_CREATE: CallbackScope = { name: "context_create" };
const SCOPE_DONE: CallbackScope = { name: "done" };
const SCOPE_LOG: CallbackScope = { name: "log" };
const SCOPE_DELETE: CallbackScope = { name: "delete" };

export class WasmVm implements EnvHost {
  readonly instance: WebAssembly.Instance;
  readonly memory: GuestMemory;
  readonly rootContextId: number;
  failed = false;
  failure?: Error;
  /** Host calls made by the module (the filter benchmark reports calls per request). */
  hostCalls = 0;

  private readonly exportsFns: Record<string, Function>;
  private readonly callbacks = new Map<string, Function>();
  readonly contexts = new Map<number, Context>();
  private nextContextId = 1;
  private nextToken = 1;
  private depth = 0;
  private current: Context | undefined;
  effective: Context | undefined;
  scope: CallbackScope = { name: "none" };
  private readonly deferred: (() => void)[] = [];
  readonly grpcStreams = new Map<number, { ctx: Context; sink: GrpcStreamSink }>();
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
      env: counted(envImports(this)),
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
  deliver(fn: () => void): void {
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

  finalize(ctx: Context): void {
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

  // ---------------------------------------------------------------- for the env host functions (EnvHost, host/env.ts)

  get mem(): GuestMemory { return this.memory; }

  /** Copies data into memory the module allocates, and writes (ptr, len) to the return slots. */
  returnBytes(data: Uint8Array, retPtr: number, retLen: number): number {
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
  returnString(value: string, retPtr: number, retLen: number): number {
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

  allocate(size: number): number {
    const p = (this.alloc(size) as number) >>> 0;
    this.memory.sync(); // the allocator may have grown memory
    if (p === 0 || !this.mem.check(p, size)) return 0;
    return p;
  }

  stream(): HttpStream | undefined { return this.effective?.stream; }

  /** The map `type` as visible from the running callback, or undefined (BAD_ARGUMENT). */
  getMap(type: number): HeaderMap | undefined {
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
  getWritableMap(type: number): HeaderMap | undefined {
    const s = this.stream();
    if (!s) return undefined;
    if (!s.mayModifyMap(type)) return undefined;
    return this.getMap(type);
  }

  getBuffer(type: number): Uint8Array | undefined {
    const scoped = this.scope.buffers?.[type];
    if (scoped) return scoped;
    const s = this.stream();
    if (!s) return undefined;
    if (type === BufferType.HttpRequestBody) return s.requestBodyBuffer;
    if (type === BufferType.HttpResponseBody) return s.responseBodyBuffer;
    return undefined;
  }

  readMap(ptr: number, len: number): HeaderMap | number {
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
  property(key: string): PropertyValue | Uint8Array | undefined {
    const ctx = this.effective;
    const own = (ctx && ctx.properties.size > 0 ? ctx.properties.get(key) : undefined)
      ?? (this.root.properties.size > 0 ? this.root.properties.get(key) : undefined);
    if (own) return own;
    const s = ctx?.stream;
    if (s) { const v = s.property(key); if (v !== undefined) return v; }
    return this.plugin.property(key, this.index);
  }

  scheduleTick(ctx: Context): void {
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

