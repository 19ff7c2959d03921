// Module entry: the proxy-wasm v0.2.1 exports. Each callback resets the per-callback arena on the
// outermost entry (a host may re-enter, e.g. fail an http call synchronously) and delegates.
// Built with AssemblyScript's "minimal" runtime: no shadow stack on the hot path (the incremental
// runtime's shadow stack tripled the cost of a sketch insert). Its collector does not scan the
// stack, so it runs only here, after configure and tick, when no managed reference is on it;
// the request path allocates nothing, so nothing else needs collecting.
// proxy_on_request_body keeps a paused write's body buffered (pause.ts).
// Callbacks the filter has no use for (context create, request trailers, response trailers,
// on_done, on_delete, queues) are not exported: every callback is optional, and each one exported costs a VM entry per request.
import { arenaReset } from "./abi";
import * as f from "./filter";

let depth = 0;
@inline function enter(): void { if (depth++ == 0) arenaReset(); }
@inline function leave(): void { depth--; }

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_memory_allocate(size: usize): usize { return f.allocate(size); }

export function proxy_on_vm_start(root: u32, size: usize): bool { enter(); f.setRootContext(root); const r = f.onVmStart(); leave(); return r; }

export function proxy_on_configure(root: u32, size: usize): bool {
  enter(); f.setRootContext(root); const r = f.onConfigure(size); leave();
  if (depth == 0) __collect();
  return r;
}

export function proxy_on_request_headers(ctx: u32, n: u32, eos: bool): i32 {
  enter(); const r = f.onRequestHeaders(ctx); leave(); return r;
}

export function proxy_on_request_body(ctx: u32, size: usize, eos: bool): i32 {
  enter(); const r = f.onRequestBody(ctx); leave(); return r;
}

export function proxy_on_response_headers(ctx: u32, n: u32, eos: bool): i32 {
  enter(); const r = f.onResponseHeaders(ctx, eos); leave(); return r;
}

export function proxy_on_response_body(ctx: u32, size: usize, eos: bool): i32 {
  enter(); const r = f.onResponseBody(ctx, size, eos); leave(); return r;
}

export function proxy_on_log(ctx: u32): void { enter(); f.onLog(ctx); leave(); }

export function proxy_on_tick(root: u32): void {
  enter(); const report = f.onTick(root); leave();
  // A collection per report tick; the floors' 10 ms ticks in between allocate nothing.
  if (report && depth == 0) __collect();
}

export function proxy_on_http_call_response(ctx: u32, token: u32, headers: u32, bodySize: usize, trailers: u32): void {
  enter(); f.onHttpCallResponse(token, headers, bodySize); leave();
}

export function proxy_on_grpc_receive(ctx: u32, token: u32, size: usize): void { enter(); f.onGrpcReceive(ctx, token); leave(); }

export function proxy_on_grpc_close(ctx: u32, token: u32, status: u32): void { enter(); f.onGrpcClose(ctx, token, status); leave(); }

