// Who calls each component: the caller's identity, resolved once per request from the first source
// configured that has one (the peer certificate's URI SAN, a header, the source address without its
// port, or this proxy's own workload), and a fixed table per component of its top-K callers plus
// "other" with requests, errors and latency, reported with the telemetry as deltas since the last
// acknowledged report. Nothing is allocated per request: names are copied into fixed buffers, a
// full table evicts its least active caller (its unreported counts move to "other", never lost), and
// while a report is in flight a new caller is counted as "other" instead.
import { OK, getProperty, resultLen, resultPtr } from "./abi";
import { Bytes, FNV_OFFSET, fnv1a, mix64, withoutPort } from "./bytes";
import { Ctx, checkKeys, fieldPath, getNum, headerName } from "./config-read";
import { JValue, J_ARR, J_STR } from "./json";
import { ProtoWriter } from "./proto";

export const SRC_PEER: u8 = 1;
export const SRC_HEADER: u8 = 2;
export const SRC_ADDRESS: u8 = 3;
export const SRC_NODE: u8 = 4;
const SOURCE_NAMES: StaticArray<string> = ["", "peer", "header", "address", "node"];

/** Slots per table (top_k may be smaller); "other" is the slot after them. */
export const MAX_TOP_K: i32 = 64;
const OTHER: i32 = MAX_TOP_K;
/** Bytes of a caller's name kept (a longer one is cut; its hash still tells it apart). */
const NAME_MAX: i32 = 128;
const F_REQ: i32 = 0;
const F_ERR: i32 = 1;
const F_LAT: i32 = 2;
const FIELDS: i32 = 3;
const NO_SLOT: u32 = 0xffffffff;

const P_PEER_SAN = new Bytes("connection\0uri_san_peer_certificate");
const P_SOURCE = new Bytes("source\0address");

/** The plugin's `callers` setting: where a caller's identity comes from, and how many are kept by name. */
export class CallersConfig {
  sources: Array<u8> = [];
  header: Bytes | null = null;
  topK: i32 = 16;
  /** This proxy's own workload (SRC_NODE), resolved at configuration; null when the node has none. */
  node: Bytes | null = null;
}

export function parseCallers(c: Ctx, v: JValue, path: string): CallersConfig {
  const cc = new CallersConfig();
  checkKeys(c, v, path, ["from", "header", "top_k"]);
  const from = v.get("from");
  const fp = fieldPath(path, "from");
  if (from === null) c.fail(fp, "is required (any of: peer, header, address, node, in the order to try)");
  else if (from.kind != J_ARR || from.items.length == 0) c.fail(fp, "must be a non-empty array of sources (peer, header, address, node)");
  else {
    for (let i = 0; i < from.items.length && c.ok(); i++) {
      const it = from.items[i];
      const ip = fp + "[" + i.toString() + "]";
      let src: u8 = 0;
      if (it.kind == J_STR) for (let s = 1; s < SOURCE_NAMES.length; s++) if (SOURCE_NAMES[s] == it.s) src = <u8>s;
      if (src == 0) { c.fail(ip, "must be one of peer, header, address, node, got " + (it.kind == J_STR ? "\"" + it.s + "\"" : it.kindName())); break; }
      if (cc.sources.includes(src)) { c.fail(ip, "\"" + it.s + "\" is listed twice"); break; }
      cc.sources.push(src);
    }
  }
  if (v.get("header") !== null) cc.header = new Bytes(headerName(c, v, path, "header", ""));
  if (c.ok() && cc.sources.includes(SRC_HEADER) && cc.header === null) c.fail(fieldPath(path, "header"), "is required when \"from\" lists header");
  cc.topK = <i32>getNum(c, v, path, "top_k", 1, <f64>MAX_TOP_K, true, 16);
  return cc;
}

// The caller found by resolveCaller (valid until the callback returns: it may point into the host's answer).
let callerPtr: usize = 0;
let callerLen: usize = 0;
/** The caller is the proxy's own workload (the same bytes at the same place every time): its slot can be remembered. */
let callerIsNode = false;

/**
 * The caller of the current request, from the first configured source that has one; the header's
 * value was found by the request path's header loop (hdrP/hdrL, 0 length when absent). False when none has.
 */
export function resolveCaller(cfg: CallersConfig, hdrP: usize, hdrL: usize): bool {
  const srcs = cfg.sources;
  callerIsNode = false;
  for (let i = 0, n = srcs.length; i < n; i++) {
    const s = unchecked(srcs[i]);
    if (s == SRC_HEADER) {
      if (hdrL > 0) { callerPtr = hdrP; callerLen = hdrL; return true; }
    } else if (s == SRC_NODE) {
      const nd = cfg.node;
      if (nd !== null) { callerPtr = nd.ptr; callerLen = nd.len; callerIsNode = true; return true; }
    } else if (s == SRC_PEER) {
      if (getProperty(P_PEER_SAN.ptr, P_PEER_SAN.len) == OK && resultLen > 0) { callerPtr = resultPtr; callerLen = resultLen; return true; }
    } else if (getProperty(P_SOURCE.ptr, P_SOURCE.len) == OK && resultLen > 0) {
      callerPtr = resultPtr;
      callerLen = hostOf(resultPtr, resultLen);
      return true;
    }
  }
  return false;
}

/** "10.0.0.7:41234" -> "10.0.0.7", "[::1]:80" -> "::1" (callerPtr may move past a bracket). */
function hostOf(p: usize, l: usize): usize {
  const e = withoutPort(p, l);
  if (e == l) return l;
  if (load<u8>(p) == 0x5b && e >= 2 && load<u8>(p + e - 1) == 0x5d) { callerPtr = p + 1; return e - 2; }
  // An IPv6 address without brackets has more colons: keep it whole.
  for (let i: usize = 0; i < e; i++) if (load<u8>(p + i) == 0x3a) return l;
  return e;
}

export class EdgeTable {
  used: i32 = 0;
  hashes: StaticArray<u64> = new StaticArray<u64>(MAX_TOP_K);
  names: StaticArray<u8> = new StaticArray<u8>(MAX_TOP_K * NAME_MAX);
  nameLens: StaticArray<i32> = new StaticArray<i32>(MAX_TOP_K);
  /** Bumped when a slot changes hands: a stream that started with the old caller counts as "other". */
  gens: StaticArray<u32> = new StaticArray<u32>(MAX_TOP_K);
  /** Counts since the slot was taken (cur), at the last acknowledged report (base), in the report in flight (sent). */
  cur: StaticArray<u64> = new StaticArray<u64>((MAX_TOP_K + 1) * FIELDS);
  base: StaticArray<u64> = new StaticArray<u64>((MAX_TOP_K + 1) * FIELDS);
  sent: StaticArray<u64> = new StaticArray<u64>((MAX_TOP_K + 1) * FIELDS);
  /** Requests in the last report (with those since): the eviction score, so a busy caller is not evicted after a report. */
  prev: StaticArray<u64> = new StaticArray<u64>(MAX_TOP_K);
  inFlight: bool = false;
  /** The node's own slot and generation (NO_SLOT: not taken yet), so the usual case skips the lookup. */
  nodeSlot: u32 = NO_SLOT;

  /** The slot of the caller resolveCaller found, with its generation (for record), taken when new. */
  slotForCaller(topK: i32): u32 {
    const ns = this.nodeSlot;
    if (callerIsNode && ns != NO_SLOT && unchecked(this.gens[<i32>(ns & 0xff)]) == (ns >> 8)) return ns;
    const sg = this.lookup(topK);
    if (callerIsNode && (sg & 0xff) != <u32>OTHER) this.nodeSlot = sg;
    return sg;
  }

  private lookup(topK: i32): u32 {
    const p = callerPtr, l = callerLen;
    const keep = <i32>l < NAME_MAX ? <i32>l : NAME_MAX;
    const h = mix64(fnv1a(FNV_OFFSET, p, l));
    const n = this.used;
    for (let i = 0; i < n; i++) {
      if (unchecked(this.hashes[i]) == h && unchecked(this.nameLens[i]) == keep &&
        memory.compare(changetype<usize>(this.names) + <usize>(i * NAME_MAX), p, <usize>keep) == 0) {
        return <u32>i | (unchecked(this.gens[i]) << 8);
      }
    }
    let slot: i32;
    if (n < topK) { slot = n; this.used = n + 1; }
    else {
      if (this.inFlight) return <u32>OTHER;
      slot = 0;
      let least: u64 = U64.MAX_VALUE;
      for (let i = 0; i < n; i++) {
        const score = unchecked(this.prev[i]) + unchecked(this.cur[i * FIELDS]) - unchecked(this.base[i * FIELDS]);
        if (score < least) { least = score; slot = i; }
      }
      for (let f = 0; f < FIELDS; f++) {
        const k = slot * FIELDS + f;
        unchecked(this.cur[OTHER * FIELDS + f] += unchecked(this.cur[k]) - unchecked(this.base[k]));
        unchecked(this.cur[k] = 0);
        unchecked(this.base[k] = 0);
      }
      unchecked(this.prev[slot] = 0);
      unchecked(this.gens[slot] = (unchecked(this.gens[slot]) + 1) & 0xffffff);
    }
    unchecked(this.hashes[slot] = h);
    unchecked(this.nameLens[slot] = keep);
    memory.copy(changetype<usize>(this.names) + <usize>(slot * NAME_MAX), p, <usize>keep);
    return <u32>slot | (unchecked(this.gens[slot]) << 8);
  }

  /** One finished request of the caller slotForCaller returned (an older generation counts as "other"). */
  record(slotGen: u32, error: bool, latencyUs: u64): void {
    let s = <i32>(slotGen & 0xff);
    if (s >= this.used || unchecked(this.gens[s]) != (slotGen >> 8)) s = OTHER;
    const k = s * FIELDS;
    unchecked(this.cur[k + F_REQ]++);
    if (error) unchecked(this.cur[k + F_ERR]++);
    unchecked(this.cur[k + F_LAT] += latencyUs);
  }

  beginSend(): void {
    const n = (MAX_TOP_K + 1) * FIELDS;
    for (let k = 0; k < n; k++) unchecked(this.sent[k] = unchecked(this.cur[k]));
    for (let i = 0; i < this.used; i++) unchecked(this.prev[i] = unchecked(this.sent[i * FIELDS]) - unchecked(this.base[i * FIELDS]));
    this.inFlight = true;
  }

  endSend(ok: bool): void {
    if (ok) {
      const n = (MAX_TOP_K + 1) * FIELDS;
      for (let k = 0; k < n; k++) unchecked(this.base[k] = unchecked(this.sent[k]));
    }
    this.inFlight = false;
  }

  /** Nothing will be reported (no telemetry cluster): what was counted is dropped. */
  discard(): void {
    const n = (MAX_TOP_K + 1) * FIELDS;
    for (let k = 0; k < n; k++) unchecked(this.base[k] = unchecked(this.cur[k]));
  }

  /** ComponentStats.callers (field 8): one entry per caller with requests in the report in flight. */
  encode(w: ProtoWriter): void {
    for (let i = 0; i <= this.used; i++) {
      const s = i == this.used ? OTHER : i;
      const k = s * FIELDS;
      const req = unchecked(this.sent[k + F_REQ]) - unchecked(this.base[k + F_REQ]);
      if (req == 0) continue;
      w.begin(8);
      if (s == OTHER) w.uint(5, 1);
      else w.bytes(1, changetype<usize>(this.names) + <usize>(s * NAME_MAX), <usize>unchecked(this.nameLens[s]));
      w.uint(2, req);
      w.uint(3, unchecked(this.sent[k + F_ERR]) - unchecked(this.base[k + F_ERR]));
      w.uint(4, unchecked(this.sent[k + F_LAT]) - unchecked(this.base[k + F_LAT]));
      w.end_();
    }
  }

  /** Whether the report in flight carries anything of this table. */
  hasSent(): bool {
    for (let i = 0; i <= this.used; i++) {
      const s = i == this.used ? OTHER : i;
      if (unchecked(this.sent[s * FIELDS]) != unchecked(this.base[s * FIELDS])) return true;
    }
    return false;
  }
}
