// The `env` module a proxy-wasm v0.2.1 VM imports, assembled from its parts by concern (as
// proxy-wasm-go-sdk splits its host emulator): core (logging, time, lifecycle, properties,
// foreign functions), HTTP (buffers, header maps, stream control), callouts (HTTP and gRPC calls
// and streams) and state (shared data, queues, metrics). EnvHost is what those parts may use of
// the VM (host/vm.ts): the effective context, the running callback's scope, guest memory and the
// ways to answer into it, and delivery when the VM is idle.
import type { GuestMemory } from "./memory.js";
import type { HeaderMap } from "./headers.js";
import type { PropertyValue } from "./properties.js";
import type { GrpcStreamSink } from "./callouts.js";
import type { PluginHost } from "./plugin.js";
import type { HttpStream } from "./stream.js";
import type { CallbackScope, Context } from "./context.js";
import { coreImports } from "./env-core.js";
import { httpImports } from "./env-http.js";
import { calloutImports } from "./env-callouts.js";
import { stateImports } from "./env-state.js";

export type Fn = (...args: number[]) => number | void;

export interface EnvHost {
  readonly plugin: PluginHost;
  /** The worker this VM stands for. */
  readonly index: number;
  readonly mem: GuestMemory;
  readonly root: Context;
  readonly contexts: ReadonlyMap<number, Context>;
  /** The context host functions act on (the callback's, unless proxy_set_effective_context changed it). */
  effective: Context | undefined;
  /** What the running callback may see. */
  readonly scope: CallbackScope;
  /** Open gRPC streams by token (cancelled with their context). */
  readonly grpcStreams: Map<number, { ctx: Context; sink: GrpcStreamSink }>;
  takeToken(): number;
  callback(name: string, ctx: Context, scope: CallbackScope, a?: number, b?: number, c?: number, d?: number, e?: number): number | undefined;
  /** Runs fn now when the VM is idle, else right after the running callback returns. */
  deliver(fn: () => void): void;
  /** deliver(), skipped if context `id` is gone by then. */
  deliverTo(id: number, fn: () => void): void;
  /** on_log and on_delete, then the context's callouts cancelled and the context dropped. */
  finalize(ctx: Context): void;
  scheduleTick(ctx: Context): void;
  /** The effective context's HTTP stream, if it has one. */
  stream(): HttpStream | undefined;
  getBuffer(type: number): Uint8Array | undefined;
  getMap(type: number): HeaderMap | undefined;
  getWritableMap(type: number): HeaderMap | undefined;
  /** A serialized map in guest memory, or the status to return. */
  readMap(ptr: number, len: number): HeaderMap | number;
  property(key: string): PropertyValue | Uint8Array | undefined;
  /** Copies into memory the module allocates and writes (ptr, len) to the return slots; a status. */
  returnBytes(data: Uint8Array, retPtr: number, retLen: number): number;
  returnString(value: string, retPtr: number, retLen: number): number;
  /** Memory from the module's allocator, checked; 0 when it failed. */
  allocate(size: number): number;
}

/** Every env host function, bound to one VM. */
export function envImports(v: EnvHost): Record<string, Fn> {
  return { ...coreImports(v), ...httpImports(v), ...calloutImports(v), ...stateImports(v) };
}
