// Host-conformance probe (test-only module). Its plugin configuration is a script: for each
// callback, a list of host calls with arguments; every call's status and result is logged as
// "probe <callback> <op> -> <status> <result>". The host tests read those lines, so they test the
// host against the spec with a module that is not our filter. Also exercises pointers outside
// linear memory, which a well-behaved module never passes.
import { JsonParser, JValue, J_ARR, J_NUM, J_STR } from "../../assembly/json";

@external("env", "proxy_log") declare function proxy_log(l: i32, p: usize, n: usize): i32;
@external("env", "proxy_get_log_level") declare function proxy_get_log_level(r: usize): i32;
@external("env", "proxy_get_buffer_bytes") declare function proxy_get_buffer_bytes(t: i32, s: usize, m: usize, rp: usize, rl: usize): i32;
@external("env", "proxy_get_buffer_status") declare function proxy_get_buffer_status(t: i32, rs: usize, rf: usize): i32;
@external("env", "proxy_set_buffer_bytes") declare function proxy_set_buffer_bytes(t: i32, s: usize, n: usize, p: usize, l: usize): i32;
@external("env", "proxy_get_header_map_pairs") declare function proxy_get_header_map_pairs(m: i32, rp: usize, rl: usize): i32;
@external("env", "proxy_set_header_map_pairs") declare function proxy_set_header_map_pairs(m: i32, p: usize, l: usize): i32;
@external("env", "proxy_get_header_map_size") declare function proxy_get_header_map_size(m: i32, r: usize): i32;
@external("env", "proxy_get_header_map_value") declare function proxy_get_header_map_value(m: i32, kp: usize, kl: usize, rp: usize, rl: usize): i32;
@external("env", "proxy_add_header_map_value") declare function proxy_add_header_map_value(m: i32, kp: usize, kl: usize, vp: usize, vl: usize): i32;
@external("env", "proxy_replace_header_map_value") declare function proxy_replace_header_map_value(m: i32, kp: usize, kl: usize, vp: usize, vl: usize): i32;
@external("env", "proxy_remove_header_map_value") declare function proxy_remove_header_map_value(m: i32, kp: usize, kl: usize): i32;
@external("env", "proxy_get_property") declare function proxy_get_property(pp: usize, pl: usize, rp: usize, rl: usize): i32;
@external("env", "proxy_set_property") declare function proxy_set_property(pp: usize, pl: usize, vp: usize, vl: usize): i32;
@external("env", "proxy_set_tick_period_milliseconds") declare function proxy_set_tick_period_milliseconds(ms: u32): i32;
@external("env", "proxy_http_call") declare function proxy_http_call(up: usize, ul: usize, hp: usize, hl: usize, bp: usize, bl: usize, tp: usize, tl: usize, to: u32, rt: usize): i32;
@external("env", "proxy_grpc_call") declare function proxy_grpc_call(up: usize, ul: usize, sp: usize, sl: usize, mp: usize, ml: usize, ip: usize, il: usize, gp: usize, gl: usize, to: u32, rt: usize): i32;
@external("env", "proxy_grpc_cancel") declare function proxy_grpc_cancel(t: u32): i32;
@external("env", "proxy_set_shared_data") declare function proxy_set_shared_data(kp: usize, kl: usize, vp: usize, vl: usize, cas: u32): i32;
@external("env", "proxy_get_shared_data") declare function proxy_get_shared_data(kp: usize, kl: usize, rp: usize, rl: usize, rc: usize): i32;
@external("env", "proxy_register_shared_queue") declare function proxy_register_shared_queue(np: usize, nl: usize, r: usize): i32;
@external("env", "proxy_resolve_shared_queue") declare function proxy_resolve_shared_queue(vp: usize, vl: usize, np: usize, nl: usize, r: usize): i32;
@external("env", "proxy_enqueue_shared_queue") declare function proxy_enqueue_shared_queue(id: u32, p: usize, l: usize): i32;
@external("env", "proxy_dequeue_shared_queue") declare function proxy_dequeue_shared_queue(id: u32, rp: usize, rl: usize): i32;
@external("env", "proxy_define_metric") declare function proxy_define_metric(t: i32, np: usize, nl: usize, r: usize): i32;
@external("env", "proxy_increment_metric") declare function proxy_increment_metric(id: u32, d: i64): i32;
@external("env", "proxy_record_metric") declare function proxy_record_metric(id: u32, v: u64): i32;
@external("env", "proxy_get_metric") declare function proxy_get_metric(id: u32, r: usize): i32;
@external("env", "proxy_continue_stream") declare function proxy_continue_stream(t: i32): i32;
@external("env", "proxy_close_stream") declare function proxy_close_stream(t: i32): i32;
@external("env", "proxy_send_local_response") declare function proxy_send_local_response(c: u32, dp: usize, dl: usize, bp: usize, bl: usize, hp: usize, hl: usize, g: i32): i32;
@external("env", "proxy_get_status") declare function proxy_get_status(rc: usize, rp: usize, rl: usize): i32;
@external("env", "proxy_set_effective_context") declare function proxy_set_effective_context(c: u32): i32;
@external("env", "proxy_done") declare function proxy_done(): i32;
@external("wasi_snapshot_preview1", "clock_time_get") declare function clock_time_get(id: i32, p: i64, r: usize): i32;
@external("wasi_snapshot_preview1", "random_get") declare function random_get(p: usize, l: usize): i32;
@external("wasi_snapshot_preview1", "fd_write") declare function fd_write(fd: i32, iovs: usize, n: usize, r: usize): i32;
@external("wasi_snapshot_preview1", "environ_sizes_get") declare function environ_sizes_get(rc: usize, rs: usize): i32;
@external("wasi_snapshot_preview1", "proc_exit") declare function proc_exit(code: i32): void;

const R = memory.data(32, 8);
const OOB: usize = 0xfffffff0; // far outside any memory this module will have

let script: JValue | null = null;
let scriptBytes: ArrayBuffer | null = null;
let lastCtx: u32 = 0;
let rootCtx: u32 = 0;

function bytesOf(s: string): ArrayBuffer { return String.UTF8.encode(s); }

function out(line: string): void {
  const b = bytesOf(line);
  proxy_log(2, changetype<usize>(b), <usize>b.byteLength);
}

function hex(p: usize, l: usize): string {
  let s = "";
  for (let i: usize = 0; i < l; i++) {
    const b = load<u8>(p + i);
    s += (b < 16 ? "0" : "") + (<u32>b).toString(16);
  }
  return s;
}

function text(p: usize, l: usize): string { return l == 0 ? "" : String.UTF8.decodeUnsafe(p, l); }

function pairsText(p: usize, l: usize): string {
  if (l <= 1) return "";
  const n = load<u32>(p);
  let s = "";
  let d = p + 4 + (<usize>n << 3);
  for (let i: u32 = 0; i < n; i++) {
    const kl = <usize>load<u32>(p + 4 + (<usize>i << 3));
    const vl = <usize>load<u32>(p + 8 + (<usize>i << 3));
    if (i > 0) s += ";";
    s += text(d, kl) + "=" + text(d + kl + 1, vl);
    d += kl + vl + 2;
  }
  return s;
}

function serializePairs(v: JValue): ArrayBuffer {
  const n = v.items.length;
  let size = 4 + 8 * n;
  const ks = new Array<ArrayBuffer>(), vs = new Array<ArrayBuffer>();
  for (let i = 0; i < n; i++) {
    ks.push(bytesOf(v.items[i].items[0].s)); vs.push(bytesOf(v.items[i].items[1].s));
    size += ks[i].byteLength + vs[i].byteLength + 2;
  }
  const buf = new ArrayBuffer(size);
  const p = changetype<usize>(buf);
  store<u32>(p, n);
  let d = p + 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    store<u32>(p + 4 + 8 * i, ks[i].byteLength); store<u32>(p + 8 + 8 * i, vs[i].byteLength);
    memory.copy(d, changetype<usize>(ks[i]), ks[i].byteLength); d += ks[i].byteLength; store<u8>(d++, 0);
    memory.copy(d, changetype<usize>(vs[i]), vs[i].byteLength); d += vs[i].byteLength; store<u8>(d++, 0);
  }
  return buf;
}

function pathBytes(s: string): ArrayBuffer { return bytesOf(s.replaceAll(".", "\0")); }

function num(v: JValue, i: i32): i64 { return i < v.items.length && v.items[i].kind == J_NUM ? <i64>v.items[i].n : 0; }
function str(v: JValue, i: i32): string { return i < v.items.length && v.items[i].kind == J_STR ? v.items[i].s : ""; }

function run(cb: string, ctx: u32): void {
  lastCtx = ctx;
  const sc = script;
  if (sc === null) return;
  const ops = sc.get(cb);
  if (ops === null || ops.kind != J_ARR) return;
  for (let i = 0; i < ops.items.length; i++) op(cb, ops.items[i]);
}

function op(cb: string, v: JValue): void {
  const name = str(v, 0);
  let st: i32 = -1;
  let res = "";
  const rp = R, rl = R + 4, r8 = R + 8;
  if (name == "log") { const b = bytesOf(str(v, 2)); st = proxy_log(<i32>num(v, 1), changetype<usize>(b), b.byteLength); }
  else if (name == "log_oob") st = proxy_log(2, OOB, 64);
  else if (name == "log_level") { st = proxy_get_log_level(rp); res = load<u32>(rp).toString(); }
  else if (name == "get_map_value") {
    const k = bytesOf(str(v, 2));
    st = proxy_get_header_map_value(<i32>num(v, 1), changetype<usize>(k), k.byteLength, rp, rl);
    if (st == 0) res = text(load<u32>(rp), load<u32>(rl));
  } else if (name == "get_map_value_oob") st = proxy_get_header_map_value(<i32>num(v, 1), OOB, 8, rp, rl);
  else if (name == "get_map_value_ret_oob") { const k = bytesOf(str(v, 2)); st = proxy_get_header_map_value(<i32>num(v, 1), changetype<usize>(k), k.byteLength, OOB, OOB); }
  else if (name == "get_map_pairs") { st = proxy_get_header_map_pairs(<i32>num(v, 1), rp, rl); if (st == 0) res = pairsText(load<u32>(rp), load<u32>(rl)); }
  else if (name == "get_map_size") { st = proxy_get_header_map_size(<i32>num(v, 1), rp); res = load<u32>(rp).toString(); }
  else if (name == "add_map_value" || name == "replace_map_value") {
    const k = bytesOf(str(v, 2)), x = bytesOf(str(v, 3));
    st = name == "add_map_value"
      ? proxy_add_header_map_value(<i32>num(v, 1), changetype<usize>(k), k.byteLength, changetype<usize>(x), x.byteLength)
      : proxy_replace_header_map_value(<i32>num(v, 1), changetype<usize>(k), k.byteLength, changetype<usize>(x), x.byteLength);
  } else if (name == "remove_map_value") { const k = bytesOf(str(v, 2)); st = proxy_remove_header_map_value(<i32>num(v, 1), changetype<usize>(k), k.byteLength); }
  else if (name == "set_map_pairs") { const b = serializePairs(v.items[2]); st = proxy_set_header_map_pairs(<i32>num(v, 1), changetype<usize>(b), b.byteLength); }
  else if (name == "set_map_pairs_garbage") { const b = bytesOf("\xff\xff\xff\x7fgarbage"); st = proxy_set_header_map_pairs(<i32>num(v, 1), changetype<usize>(b), b.byteLength); }
  else if (name == "get_buffer") {
    st = proxy_get_buffer_bytes(<i32>num(v, 1), <usize>num(v, 2), <usize>num(v, 3), rp, rl);
    if (st == 0) res = text(load<u32>(rp), load<u32>(rl));
  } else if (name == "get_buffer_status") { st = proxy_get_buffer_status(<i32>num(v, 1), rp, rl); if (st == 0) res = load<u32>(rp).toString(); }
  else if (name == "set_buffer") { const b = bytesOf(str(v, 4)); st = proxy_set_buffer_bytes(<i32>num(v, 1), <usize>num(v, 2), <usize>num(v, 3), changetype<usize>(b), b.byteLength); }
  else if (name == "get_property") {
    const p = pathBytes(str(v, 1));
    st = proxy_get_property(changetype<usize>(p), p.byteLength, rp, rl);
    if (st == 0) res = hex(load<u32>(rp), load<u32>(rl));
  } else if (name == "set_property") { const p = pathBytes(str(v, 1)), x = bytesOf(str(v, 2)); st = proxy_set_property(changetype<usize>(p), p.byteLength, changetype<usize>(x), x.byteLength); }
  else if (name == "set_tick") st = proxy_set_tick_period_milliseconds(<u32>num(v, 1));
  else if (name == "http_call") {
    const u = bytesOf(str(v, 1)), h = serializePairs(v.items[2]), b = bytesOf(str(v, 3));
    st = proxy_http_call(changetype<usize>(u), u.byteLength, changetype<usize>(h), h.byteLength, changetype<usize>(b), b.byteLength, 0, 0, <u32>num(v, 4), rp);
    if (st == 0) res = load<u32>(rp).toString();
  } else if (name == "http_call_from_root") {
    proxy_set_effective_context(rootCtx);
    const u = bytesOf(str(v, 1)), h = serializePairs(v.items[2]);
    st = proxy_http_call(changetype<usize>(u), u.byteLength, changetype<usize>(h), h.byteLength, 0, 0, 0, 0, <u32>num(v, 3), rp);
    if (st == 0) res = load<u32>(rp).toString();
    proxy_set_effective_context(lastCtx);
  } else if (name == "grpc_call") {
    const u = bytesOf(str(v, 1)), s = bytesOf(str(v, 2)), m = bytesOf(str(v, 3)), g = bytesOf(str(v, 4));
    st = proxy_grpc_call(changetype<usize>(u), u.byteLength, changetype<usize>(s), s.byteLength, changetype<usize>(m), m.byteLength, 0, 0, changetype<usize>(g), g.byteLength, <u32>num(v, 5), rp);
    if (st == 0) res = load<u32>(rp).toString();
  } else if (name == "grpc_cancel") st = proxy_grpc_cancel(<u32>num(v, 1));
  else if (name == "set_shared") { const k = bytesOf(str(v, 1)), x = bytesOf(str(v, 2)); st = proxy_set_shared_data(changetype<usize>(k), k.byteLength, changetype<usize>(x), x.byteLength, <u32>num(v, 3)); }
  else if (name == "get_shared") {
    const k = bytesOf(str(v, 1));
    st = proxy_get_shared_data(changetype<usize>(k), k.byteLength, rp, rl, r8);
    if (st == 0) res = text(load<u32>(rp), load<u32>(rl)) + " cas=" + load<u32>(r8).toString();
  } else if (name == "register_queue") { const n = bytesOf(str(v, 1)); st = proxy_register_shared_queue(changetype<usize>(n), n.byteLength, rp); if (st == 0) res = load<u32>(rp).toString(); }
  else if (name == "resolve_queue") { const a = bytesOf(str(v, 1)), n = bytesOf(str(v, 2)); st = proxy_resolve_shared_queue(changetype<usize>(a), a.byteLength, changetype<usize>(n), n.byteLength, rp); if (st == 0) res = load<u32>(rp).toString(); }
  else if (name == "enqueue") { const x = bytesOf(str(v, 2)); st = proxy_enqueue_shared_queue(<u32>num(v, 1), changetype<usize>(x), x.byteLength); }
  else if (name == "dequeue") { st = proxy_dequeue_shared_queue(<u32>num(v, 1), rp, rl); if (st == 0) res = text(load<u32>(rp), load<u32>(rl)); }
  else if (name == "define_metric") { const n = bytesOf(str(v, 2)); st = proxy_define_metric(<i32>num(v, 1), changetype<usize>(n), n.byteLength, rp); if (st == 0) res = load<u32>(rp).toString(); }
  else if (name == "inc_metric") st = proxy_increment_metric(<u32>num(v, 1), num(v, 2));
  else if (name == "record_metric") st = proxy_record_metric(<u32>num(v, 1), <u64>num(v, 2));
  else if (name == "get_metric") { st = proxy_get_metric(<u32>num(v, 1), r8); if (st == 0) res = load<u64>(r8).toString(); }
  else if (name == "continue") st = proxy_continue_stream(<i32>num(v, 1));
  else if (name == "close") st = proxy_close_stream(<i32>num(v, 1));
  else if (name == "local_response") {
    const d = bytesOf(str(v, 2)), b = bytesOf(str(v, 3)), h = serializePairs(v.items[4]);
    st = proxy_send_local_response(<u32>num(v, 1), changetype<usize>(d), d.byteLength, changetype<usize>(b), b.byteLength, changetype<usize>(h), h.byteLength, -1);
  } else if (name == "get_status") { st = proxy_get_status(r8, rp, rl); if (st == 0) res = load<u32>(r8).toString() + " " + text(load<u32>(rp), load<u32>(rl)); }
  else if (name == "set_effective") st = proxy_set_effective_context(<u32>num(v, 1));
  else if (name == "done") st = proxy_done();
  else if (name == "clock") { st = clock_time_get(<i32>num(v, 1), 0, r8); if (st == 0) res = load<u64>(r8).toString(); }
  else if (name == "clock_oob") st = clock_time_get(0, 0, OOB);
  else if (name == "random") { st = random_get(R, <usize>num(v, 1)); }
  else if (name == "fd_write") {
    const b = bytesOf(str(v, 2));
    store<u32>(R + 16, changetype<usize>(b)); store<u32>(R + 20, b.byteLength);
    st = fd_write(<i32>num(v, 1), R + 16, 1, R + 24);
    if (st == 0) res = load<u32>(R + 24).toString();
  } else if (name == "environ_sizes") { st = environ_sizes_get(rp, rl); res = load<u32>(rp).toString() + " " + load<u32>(rl).toString(); }
  else if (name == "proc_exit") { proc_exit(<i32>num(v, 1)); }
  else if (name == "trap") unreachable();
  else res = "unknown-op";
  out("probe " + cb + " " + name + " -> " + st.toString() + (res.length > 0 ? " " + res : ""));
}

function ret(cb: string, def: i32): i32 {
  const sc = script;
  if (sc === null) return def;
  const r = sc.get("return");
  if (r === null) return def;
  const x = r.get(cb);
  return x === null ? def : <i32>x.n;
}

export function proxy_abi_version_0_2_1(): void {}
export function proxy_on_memory_allocate(size: usize): usize { return heap.alloc(size); }
export function proxy_on_context_create(ctx: u32, parent: u32): void { if (parent == 0) rootCtx = ctx; run(parent == 0 ? "on_root_create" : "on_context_create", ctx); }
export function proxy_on_vm_start(root: u32, size: usize): bool {
  if (proxy_get_buffer_bytes(6, 0, size, R, R + 4) == 0) out("probe vm_config " + text(load<u32>(R), load<u32>(R + 4)));
  return true;
}
export function proxy_on_configure(root: u32, size: usize): bool {
  if (proxy_get_buffer_bytes(7, 0, size, R, R + 4) != 0) return false;
  const len = load<u32>(R + 4);
  const copy = new ArrayBuffer(len);
  memory.copy(changetype<usize>(copy), load<u32>(R), len);
  const parser = new JsonParser();
  const parsed = parser.parse(changetype<usize>(copy), len);
  if (parsed === null) { out("probe config error " + parser.error); return false; }
  scriptBytes = copy;
  script = parsed;
  run("on_configure", root);
  return ret("on_configure", 1) != 0;
}
export function proxy_on_request_headers(c: u32, n: u32, e: bool): i32 { out("probe cb on_request_headers " + n.toString() + " " + (e ? "1" : "0")); run("on_request_headers", c); return ret("on_request_headers", 0); }
export function proxy_on_request_body(c: u32, n: usize, e: bool): i32 { out("probe cb on_request_body " + n.toString() + " " + (e ? "1" : "0")); run("on_request_body", c); return ret("on_request_body", 0); }
export function proxy_on_request_trailers(c: u32, n: u32): i32 { out("probe cb on_request_trailers " + n.toString()); run("on_request_trailers", c); return ret("on_request_trailers", 0); }
export function proxy_on_response_headers(c: u32, n: u32, e: bool): i32 { out("probe cb on_response_headers " + n.toString() + " " + (e ? "1" : "0")); run("on_response_headers", c); return ret("on_response_headers", 0); }
export function proxy_on_response_body(c: u32, n: usize, e: bool): i32 { out("probe cb on_response_body " + n.toString() + " " + (e ? "1" : "0")); run("on_response_body", c); return ret("on_response_body", 0); }
export function proxy_on_response_trailers(c: u32, n: u32): i32 { out("probe cb on_response_trailers " + n.toString()); run("on_response_trailers", c); return ret("on_response_trailers", 0); }
export function proxy_on_done(c: u32): bool { out("probe cb on_done"); run("on_done", c); return ret("on_done", 1) != 0; }
export function proxy_on_log(c: u32): void { out("probe cb on_log"); run("on_log", c); }
export function proxy_on_delete(c: u32): void { out("probe cb on_delete"); run("on_delete", c); }
export function proxy_on_tick(c: u32): void { out("probe cb on_tick"); run("on_tick", c); }
export function proxy_on_http_call_response(c: u32, t: u32, h: u32, b: usize, tr: u32): void {
  out("probe cb on_http_call_response ctx=" + c.toString() + " token=" + t.toString() + " headers=" + h.toString() + " body=" + b.toString() + " trailers=" + tr.toString());
  run("on_http_call_response", c);
}
export function proxy_on_grpc_receive(c: u32, t: u32, n: usize): void { out("probe cb on_grpc_receive token=" + t.toString() + " size=" + n.toString()); run("on_grpc_receive", c); }
export function proxy_on_grpc_close(c: u32, t: u32, s: u32): void { out("probe cb on_grpc_close token=" + t.toString() + " status=" + s.toString()); run("on_grpc_close", c); }
export function proxy_on_queue_ready(c: u32, q: u32): void { out("probe cb on_queue_ready queue=" + q.toString()); run("on_queue_ready", c); }
