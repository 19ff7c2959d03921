// The env host functions for outbound calls: proxy_http_call, proxy_grpc_call and the gRPC stream
// calls (proxy_grpc_stream, _send, _cancel, _close), carried by the plugin's Callouts seam
// (host/callouts.ts). Answers are delivered when the VM is idle, never into a context that is gone;
// a context's callouts and streams are cancelled with it (WasmVm.finalize).
import { BufferType, LogLevel, MapType, Status } from "./abi.js";
import { HeaderMap } from "./headers.js";
import type { Timer } from "./clock.js";
import { NO_CALLS, type CallbackScope, type Context } from "./context.js";
import type { EnvHost, Fn } from "./env.js";

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

  constructor(private readonly vm: EnvHost, private readonly ctx: Context, private readonly table: "httpCalls" | "grpcCalls") {
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

/** A callout's host-call result: its token, or INTERNAL_FAILURE (logged) when the transport threw. */
function callStarted(v: EnvHost, call: Callout, started: boolean, retToken: number, what: string): number {
  if (!started) {
    v.plugin.log(LogLevel.Error, `${what} could not start: ${call.error}`, v.index);
    return Status.InternalFailure;
  }
  v.mem.setU32(retToken, call.token);
  return Status.Ok;
}

export function calloutImports(v: EnvHost): Record<string, Fn> {
  const S = Status;
  return {
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
      return callStarted(v, call, started, retToken, `http call to ${cluster}`);
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
      return callStarted(v, call, started, retToken, `gRPC call to ${upstream}`);
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
      const token = v.takeToken();
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
  };
}
