// The proxy-wasm ABI v0.2.1 boundary: raw host imports, the allocator the host calls back into,
// and the readers for host-written blobs. This is the only module that handles raw pointers the
// host returns; everything above it works on (ptr, len) views this module has bounds-checked.

// ---- Status codes, enums (spec "Types") ----
export const OK: i32 = 0;
export const NOT_FOUND: i32 = 1;
export const BAD_ARGUMENT: i32 = 2;

export const LOG_TRACE: i32 = 0;
export const LOG_DEBUG: i32 = 1;
export const LOG_INFO: i32 = 2;
export const LOG_WARN: i32 = 3;
export const LOG_ERROR: i32 = 4;
export const LOG_CRITICAL: i32 = 5;

export const ACTION_CONTINUE: i32 = 0;
/** Stop iteration: what Envoy expects from a callback that sent a local response. */
export const ACTION_PAUSE: i32 = 1;

export const BUFFER_HTTP_RESPONSE_BODY: i32 = 1;
export const BUFFER_HTTP_CALL_RESPONSE_BODY: i32 = 4;
export const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;

export const MAP_REQUEST_HEADERS: i32 = 0;
export const MAP_RESPONSE_HEADERS: i32 = 2;
export const MAP_HTTP_CALL_RESPONSE_HEADERS: i32 = 6;

export const METRIC_COUNTER: i32 = 0;
export const METRIC_GAUGE: i32 = 1;

// ---- Raw imports (host functions) ----
@external("env", "proxy_log")
export declare function proxy_log(level: i32, ptr: usize, len: usize): i32;
@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(kind: i32, start: usize, maxSize: usize, retPtr: usize, retLen: usize): i32;
@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(map: i32, retPtr: usize, retLen: usize): i32;
@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(map: i32, keyPtr: usize, keyLen: usize, retPtr: usize, retLen: usize): i32;
@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(map: i32, keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize): i32;
@external("env", "proxy_get_property")
export declare function proxy_get_property(pathPtr: usize, pathLen: usize, retPtr: usize, retLen: usize): i32;
@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(ms: u32): i32;
@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  status: u32, detailsPtr: usize, detailsLen: usize, bodyPtr: usize, bodyLen: usize,
  headersPtr: usize, headersLen: usize, grpcStatus: i32): i32;
@external("env", "proxy_http_call")
export declare function proxy_http_call(
  upPtr: usize, upLen: usize, hdrPtr: usize, hdrLen: usize, bodyPtr: usize, bodyLen: usize,
  trlPtr: usize, trlLen: usize, timeoutMs: u32, retToken: usize): i32;
@external("env", "proxy_grpc_call")
export declare function proxy_grpc_call(
  upPtr: usize, upLen: usize, svcPtr: usize, svcLen: usize, methPtr: usize, methLen: usize,
  mdPtr: usize, mdLen: usize, msgPtr: usize, msgLen: usize, timeoutMs: u32, retToken: usize): i32;
@external("env", "proxy_grpc_stream")
export declare function proxy_grpc_stream(
  upPtr: usize, upLen: usize, svcPtr: usize, svcLen: usize, methPtr: usize, methLen: usize,
  mdPtr: usize, mdLen: usize, retToken: usize): i32;
@external("env", "proxy_grpc_send")
export declare function proxy_grpc_send(token: u32, msgPtr: usize, msgLen: usize, endStream: u32): i32;
@external("env", "proxy_grpc_cancel")
export declare function proxy_grpc_cancel(token: u32): i32;
@external("env", "proxy_grpc_close")
export declare function proxy_grpc_close(token: u32): i32;
@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(keyPtr: usize, keyLen: usize, retPtr: usize, retLen: usize, retCas: usize): i32;
@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize, cas: u32): i32;
@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(ctx: u32): i32;
@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: i32): i32;
@external("env", "proxy_define_metric")
export declare function proxy_define_metric(kind: i32, namePtr: usize, nameLen: usize, retId: usize): i32;
@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(id: u32, delta: i64): i32;
@external("env", "proxy_record_metric")
export declare function proxy_record_metric(id: u32, value: u64): i32;
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function wasi_clock_time_get(clockId: i32, precision: i64, retTime: usize): i32;
@external("wasi_snapshot_preview1", "random_get")
export declare function wasi_random_get(buf: usize, len: usize): i32;

// ---- Return slots: the host writes (ptr, len) pairs here ----
const RET = memory.data(16, 8);
const RET_PTR: usize = RET;
const RET_LEN: usize = RET + 4;
const RET_U64: usize = RET + 8;

// ---- Arena allocator ----
// The host calls proxy_on_memory_allocate for every value it returns (headers, bodies, properties).
// Those values only live for the callback that asked for them, so they come from a bump arena
// that is reset on entry to every callback: no per-request heap allocation, no memory.grow after
// warm-up. A request larger than the arena falls back to the heap and is freed at the next reset.
const ARENA_SIZE: usize = 256 * 1024;
const ARENA: usize = memory.data(<i32>ARENA_SIZE, 16);
let arenaTop: usize = 0;
const MAX_OVERFLOW = 64;
const overflow = new StaticArray<usize>(MAX_OVERFLOW);
let overflowCount = 0;

export function arenaReset(): void {
  arenaTop = 0;
  for (let i = 0; i < overflowCount; i++) heap.free(unchecked(overflow[i]));
  overflowCount = 0;
}

export function arenaAlloc(size: usize): usize {
  const aligned = (size + 7) & ~(<usize>7);
  if (arenaTop + aligned <= ARENA_SIZE) {
    const p = ARENA + arenaTop;
    arenaTop += aligned;
    return p;
  }
  if (overflowCount >= MAX_OVERFLOW) return 0; // the host reports the failure to the caller
  const p = heap.alloc(size);
  unchecked(overflow[overflowCount++] = p);
  return p;
}

// ---- Results of the last get-call: (ptr, len) inside the arena ----
export let resultPtr: usize = 0;
export let resultLen: usize = 0;

function takeResult(status: i32): i32 {
  if (status == OK) {
    resultPtr = <usize>load<u32>(RET_PTR);
    resultLen = <usize>load<u32>(RET_LEN);
    // A well-behaved host returns memory from our allocator; refuse anything outside linear memory.
    const limit = <usize>memory.size() << 16;
    if (resultLen > 0 && (resultPtr == 0 || resultPtr > limit || resultLen > limit - resultPtr)) {
      resultPtr = 0; resultLen = 0;
      return BAD_ARGUMENT;
    }
  } else {
    resultPtr = 0; resultLen = 0;
  }
  return status;
}

export function getHeaderPairs(map: i32): i32 {
  return takeResult(proxy_get_header_map_pairs(map, RET_PTR, RET_LEN));
}

export function getHeaderValue(map: i32, keyPtr: usize, keyLen: usize): i32 {
  return takeResult(proxy_get_header_map_value(map, keyPtr, keyLen, RET_PTR, RET_LEN));
}

export function getBufferBytes(kind: i32, start: usize, maxSize: usize): i32 {
  return takeResult(proxy_get_buffer_bytes(kind, start, maxSize, RET_PTR, RET_LEN));
}

export function getProperty(pathPtr: usize, pathLen: usize): i32 {
  return takeResult(proxy_get_property(pathPtr, pathLen, RET_PTR, RET_LEN));
}

/** Reads an 8-byte little-endian integer property (Envoy encodes ints and durations this way). */
export function getPropertyU64(pathPtr: usize, pathLen: usize): i64 {
  if (getProperty(pathPtr, pathLen) != OK || resultLen != 8) return -1;
  return load<i64>(resultPtr);
}

/** The CAS of the last getSharedData (pass it to setSharedData to write only if nobody wrote since). */
export let sharedCas: u32 = 0;

/** Reads a key shared by every VM of this vm_id (all the proxy's workers): resultPtr/resultLen, sharedCas. */
export function getSharedData(keyPtr: usize, keyLen: usize): i32 {
  const st = takeResult(proxy_get_shared_data(keyPtr, keyLen, RET_PTR, RET_LEN, RET_U64));
  sharedCas = st == OK ? load<u32>(RET_U64) : 0;
  return st;
}

/** Writes a shared key; a non-zero cas must still be current (CAS_MISMATCH otherwise). */
export function setSharedData(keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize, cas: u32): i32 {
  return proxy_set_shared_data(keyPtr, keyLen, valPtr, valLen, cas);
}

export function monotonicNs(): u64 {
  if (wasi_clock_time_get(1, 0, RET_U64) != 0) return 0;
  return load<u64>(RET_U64);
}

export function wallNs(): u64 {
  if (wasi_clock_time_get(0, 0, RET_U64) != 0) return 0;
  return load<u64>(RET_U64);
}

export function randomU64(): u64 {
  if (wasi_random_get(RET_U64, 8) != 0) return 0;
  return load<u64>(RET_U64);
}

export function httpCall(
  upPtr: usize, upLen: usize, hdrPtr: usize, hdrLen: usize, timeoutMs: u32): i64 {
  const st = proxy_http_call(upPtr, upLen, hdrPtr, hdrLen, 0, 0, 0, 0, timeoutMs, RET_PTR);
  if (st != OK) return -1 - <i64>st;
  return <i64>load<u32>(RET_PTR);
}

export function grpcCall(
  upPtr: usize, upLen: usize, svcPtr: usize, svcLen: usize, methPtr: usize, methLen: usize,
  mdPtr: usize, mdLen: usize, msgPtr: usize, msgLen: usize, timeoutMs: u32): i64 {
  // mdPtr/mdLen: initial metadata serialized by serializePairs (0, 0 for none).
  const st = proxy_grpc_call(upPtr, upLen, svcPtr, svcLen, methPtr, methLen, mdPtr, mdLen, msgPtr, msgLen, timeoutMs, RET_PTR);
  if (st != OK) return -1 - <i64>st;
  return <i64>load<u32>(RET_PTR);
}

/** Opens a gRPC stream (initial metadata as for grpcCall); the token, or -1 - the host's status. */
export function grpcStream(
  upPtr: usize, upLen: usize, svcPtr: usize, svcLen: usize, methPtr: usize, methLen: usize,
  mdPtr: usize, mdLen: usize): i64 {
  const st = proxy_grpc_stream(upPtr, upLen, svcPtr, svcLen, methPtr, methLen, mdPtr, mdLen, RET_PTR);
  if (st != OK) return -1 - <i64>st;
  return <i64>load<u32>(RET_PTR);
}

/** Sends one message on an open gRPC stream; the host's status (OK is 0). */
export function grpcSend(token: u32, msgPtr: usize, msgLen: usize): i32 {
  return proxy_grpc_send(token, msgPtr, msgLen, 0);
}

/** Cancels a gRPC call or stream (no close callback follows). */
export function grpcCancel(token: u32): void {
  proxy_grpc_cancel(token);
}

/** Closes a gRPC stream gracefully (half-close: the server ends it, and a close callback follows). */
export function grpcClose(token: u32): void {
  proxy_grpc_close(token);
}

/**
 * Answers the current stream with a local response (status, details for the access log, body and a
 * header map serialized by serializePairs). No gRPC status (-1). Returns the host's status code.
 */
export function sendLocalResponse(status: u32, detailsPtr: usize, detailsLen: usize, bodyPtr: usize, bodyLen: usize,
  headersPtr: usize, headersLen: usize): i32 {
  return proxy_send_local_response(status, detailsPtr, detailsLen, bodyPtr, bodyLen, headersPtr, headersLen, -1);
}

export function defineMetric(kind: i32, name: string): i32 {
  const buf = String.UTF8.encode(name);
  if (proxy_define_metric(kind, changetype<usize>(buf), <usize>buf.byteLength, RET_PTR) != OK) return -1;
  return <i32>load<u32>(RET_PTR);
}

export function logString(level: i32, msg: string): void {
  const buf = String.UTF8.encode(msg);
  proxy_log(level, changetype<usize>(buf), <usize>buf.byteLength);
}

// ---- Serialized header maps (spec "Serialization") ----
// A reader over a host-written map: u32 count, count x (u32 keyLen, u32 valLen), then each key
// and value followed by NUL. `open` validates the whole layout once, so `next` cannot run past it.
export class PairReader {
  base: usize = 0;
  end: usize = 0;
  count: u32 = 0;
  index: u32 = 0;
  sizes: usize = 0;
  cursor: usize = 0;
  keyPtr: usize = 0;
  keyLen: usize = 0;
  valPtr: usize = 0;
  valLen: usize = 0;

  /** Returns false when the blob is malformed (the caller fails open). An empty map is valid. */
  open(ptr: usize, len: usize): bool {
    this.base = ptr; this.end = ptr + len; this.index = 0; this.count = 0;
    if (len <= 1) return true; // empty map: size 0, or a single 0x00 byte
    if (len < 4) return false;
    const n = load<u32>(ptr);
    if (<u64>n * 8 + 4 > <u64>len) return false;
    let need: u64 = 4 + <u64>n * 8;
    for (let i: u32 = 0; i < n; i++) {
      const p = ptr + 4 + (<usize>i << 3);
      need += <u64>load<u32>(p) + <u64>load<u32>(p + 4) + 2;
    }
    if (need > <u64>len) return false;
    this.count = n;
    this.sizes = ptr + 4;
    this.cursor = ptr + 4 + (<usize>n << 3);
    return true;
  }

  /** Starts over on the map open() validated. */
  rewind(): void {
    this.index = 0;
    this.cursor = this.sizes + (<usize>this.count << 3);
  }

  next(): bool {
    if (this.index >= this.count) return false;
    const p = this.sizes + (<usize>this.index << 3);
    this.keyLen = <usize>load<u32>(p);
    this.valLen = <usize>load<u32>(p + 4);
    this.keyPtr = this.cursor;
    this.valPtr = this.cursor + this.keyLen + 1;
    this.cursor = this.valPtr + this.valLen + 1;
    this.index++;
    return true;
  }
}

/** Writes a serialized header map into [dst, dst+cap): begin, add pairs, finish. */
export class PairWriter {
  dst: usize = 0;
  cap: usize = 0;
  n: u32 = 0;
  maxPairs: u32 = 0;
  dataPos: usize = 0;
  ok: bool = true;
  // Pairs are staged as (keyPtr, keyLen, valPtr, valLen) so the size table can precede the data.
  staged: StaticArray<usize> = new StaticArray<usize>(4 * 256);

  begin(dst: usize, cap: usize): void {
    this.dst = dst; this.cap = cap; this.n = 0; this.ok = true;
  }

  add(kp: usize, kl: usize, vp: usize, vl: usize): void {
    if (this.n >= 256) { this.ok = false; return; }
    const i = <i32>this.n * 4;
    unchecked(this.staged[i] = kp);
    unchecked(this.staged[i + 1] = kl);
    unchecked(this.staged[i + 2] = vp);
    unchecked(this.staged[i + 3] = vl);
    this.n++;
  }

  /** Returns the serialized length, or 0 when it did not fit. */
  finish(): usize {
    if (!this.ok) return 0;
    const n = this.n;
    let total: usize = 4 + (<usize>n << 3);
    for (let i = 0; i < <i32>n; i++) total += unchecked(this.staged[i * 4 + 1]) + unchecked(this.staged[i * 4 + 3]) + 2;
    if (total > this.cap) return 0;
    const d = this.dst;
    store<u32>(d, n);
    let pos = d + 4 + (<usize>n << 3);
    for (let i = 0; i < <i32>n; i++) {
      const kp = unchecked(this.staged[i * 4]), kl = unchecked(this.staged[i * 4 + 1]);
      const vp = unchecked(this.staged[i * 4 + 2]), vl = unchecked(this.staged[i * 4 + 3]);
      store<u32>(d + 4 + (<usize>i << 3), <u32>kl);
      store<u32>(d + 8 + (<usize>i << 3), <u32>vl);
      memory.copy(pos, kp, kl); pos += kl; store<u8>(pos, 0); pos++;
      memory.copy(pos, vp, vl); pos += vl; store<u8>(pos, 0); pos++;
    }
    return total;
  }
}

/** Serializes a header map once (at configure time) into a buffer the module owns. */
export function serializePairs(keys: Array<string>, values: Array<string>): ArrayBuffer {
  const n = keys.length;
  const kb = new Array<ArrayBuffer>(), vb = new Array<ArrayBuffer>();
  let total = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    kb.push(String.UTF8.encode(keys[i])); vb.push(String.UTF8.encode(values[i]));
    total += kb[i].byteLength + vb[i].byteLength + 2;
  }
  const out = new ArrayBuffer(total);
  const d = changetype<usize>(out);
  store<u32>(d, <u32>n);
  let pos = d + 4 + (<usize>n << 3);
  for (let i = 0; i < n; i++) {
    const kl = <usize>kb[i].byteLength, vl = <usize>vb[i].byteLength;
    store<u32>(d + 4 + (<usize>i << 3), <u32>kl);
    store<u32>(d + 8 + (<usize>i << 3), <u32>vl);
    memory.copy(pos, changetype<usize>(kb[i]), kl); pos += kl; store<u8>(pos, 0); pos++;
    memory.copy(pos, changetype<usize>(vb[i]), vl); pos += vl; store<u8>(pos, 0); pos++;
  }
  return out;
}
