// The env host functions of an HTTP stream: body buffers, header maps (only those the running
// callback may see; request maps writable only until sent on) and stream control (continue, close,
// local responses, the callout status). proxy-wasm ABI v0.2.1, through EnvHost (host/env.ts).
import { BufferType, MapType, Status, StreamType } from "./abi.js";
import type { EnvHost, Fn } from "./env.js";

/** proxy_add_header_map_value (append) and proxy_replace_header_map_value (set). */
function writeHeader(v: EnvHost, type: number, kp: number, kl: number, vp: number, vl: number, replace: boolean): number {
  const map = v.getWritableMap(type);
  if (!map) return Status.BadArgument;
  const m = v.mem;
  if (!m.check(kp, kl) || !m.check(vp, vl)) return Status.InvalidMemoryAccess;
  // Replaced values are usually a small set (cluster names): interned like keys.
  if (replace) map.set(m.readKey(kp, kl), m.readKey(vp, vl));
  else map.add(m.readKey(kp, kl), m.readString(vp, vl));
  v.stream()?.headersModified(type);
  return Status.Ok;
}

export function httpImports(v: EnvHost): Record<string, Fn> {
  const S = Status;
  return {
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
      return writeHeader(v, type, kp, kl, vp, vl, false);
    },
    proxy_replace_header_map_value(type: number, kp: number, kl: number, vp: number, vl: number): number {
      return writeHeader(v, type, kp, kl, vp, vl, true);
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
  };
}
