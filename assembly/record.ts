// The stream table (one slot per live stream, direct-mapped by context id) and what each stream
// records: its classification and target from the request path, the primary's status from the
// response headers, and in proxy_on_log the latency, status class, resets and timeouts into the
// target's stats, the mirror's primary half, and the primary's answer to a live read for the
// failover floor (floor.ts).
import { ACTION_CONTINUE, MAP_RESPONSE_HEADERS, OK, getHeaderValue, getPropertyU64, resultLen, resultPtr } from "./abi";
import { Bytes, parseStatus } from "./bytes";
import { T_PRIMARY, T_SHADOW_LIVE } from "./stats";
import { primaryBody, primaryFinished } from "./mirror";
import { floors } from "./floor";
import { internalError, statsList } from "./state";

const H_STATUS = new Bytes(":status");
const P_DURATION = new Bytes("request\0duration");
const P_FLAGS = new Bytes("response\0flags");

// Envoy response flags (StreamInfo::CoreResponseFlag bit values).
const RF_UPSTREAM_TIMEOUT: i64 = 0x4;
const RF_RESETS: i64 = 0x8 | 0x10 | 0x20 | 0x40;

// ---- Stream table: direct-mapped by context id (Envoy allocates ids increasingly) ----
const STREAMS: i32 = 16384;
const STREAM_MASK: u32 = <u32>STREAMS - 1;
export const sCtx = new StaticArray<u32>(STREAMS);
export const sStats = new StaticArray<i32>(STREAMS);   // index into statsList, -1 when not tracked
export const sFlags = new StaticArray<u32>(STREAMS);
export const sStatus = new StaticArray<u32>(STREAMS);
export const sMirror = new StaticArray<i32>(STREAMS);  // mirror slot, -1 when none
export const sEdge = new StaticArray<u32>(STREAMS);    // caller slot and generation (edges.ts), NO_EDGE when none
export const NO_EDGE: u32 = 0xffffffff;
export const F_READ: u32 = 1;
export const F_SHADOW: u32 = 2;
export const F_MARKED: u32 = 4;
export const F_RESPONDED: u32 = 8;
export const F_BODY_DONE: u32 = 16;
/** A read the floor sent to the primary as a probe. */
export const F_PROBE: u32 = 32;
/** A read the floor sent to the shadow because the primary is ejected. */
export const F_DIVERTED: u32 = 64;
/** A request to an observed component: counted, never split; the floor does not watch it. */
export const F_OBSERVED: u32 = 128;
/** A write held in the proxy while the writer is switched (pause.ts); it has no target until it is continued. */
export const F_HELD: u32 = 256;

export function slotOf(ctx: u32): i32 {
  const s = <i32>(ctx & STREAM_MASK);
  return unchecked(sCtx[s]) == ctx ? s : -1;
}

/**
 * Claims the stream's slot on its first callback (request headers), so the module needs no
 * proxy_on_context_create export: one VM entry less per request. -1 when the slot is taken.
 */
export function claimSlot(ctx: u32): i32 {
  const s = <i32>(ctx & STREAM_MASK);
  const owner = unchecked(sCtx[s]);
  if (owner == ctx) return s;
  if (owner != 0) { internalError("stream table slot busy"); return -1; }
  unchecked(sCtx[s] = ctx);
  unchecked(sStats[s] = -1);
  unchecked(sFlags[s] = 0);
  unchecked(sStatus[s] = 0);
  unchecked(sMirror[s] = -1);
  unchecked(sEdge[s] = NO_EDGE);
  return s;
}

export function onResponseHeaders(ctx: u32, endOfStream: bool): i32 {
  const slot = slotOf(ctx);
  if (slot < 0 || unchecked(sStats[slot]) < 0) return ACTION_CONTINUE;
  if (getHeaderValue(MAP_RESPONSE_HEADERS, H_STATUS.ptr, H_STATUS.len) != OK) {
    internalError("response :status unavailable");
    return ACTION_CONTINUE;
  }
  unchecked(sStatus[slot] = parseStatus(resultPtr, resultLen));
  let f = unchecked(sFlags[slot]) | F_RESPONDED;
  if (endOfStream) f |= F_BODY_DONE;
  unchecked(sFlags[slot] = f);
  return ACTION_CONTINUE;
}

export function onResponseBody(ctx: u32, size: usize, endOfStream: bool): i32 {
  const slot = slotOf(ctx);
  if (slot < 0) return ACTION_CONTINUE;
  const m = unchecked(sMirror[slot]);
  if (m < 0) return ACTION_CONTINUE;
  primaryBody(m, size);
  if (endOfStream) unchecked(sFlags[slot] = unchecked(sFlags[slot]) | F_BODY_DONE);
  return ACTION_CONTINUE;
}

/**
 * The stream's last callback for the filter: the spec calls proxy_on_log for every context the
 * host finishes, so the slot is released here (no proxy_on_delete export: one VM entry less).
 */
export function onLog(ctx: u32): void {
  const slot = slotOf(ctx);
  if (slot < 0) return;
  const si = unchecked(sStats[slot]);
  const m = unchecked(sMirror[slot]);
  const flags = unchecked(sFlags[slot]);
  const status = unchecked(sStatus[slot]);
  unchecked(sCtx[slot] = 0);
  if (si < 0 || (flags & F_HELD) != 0) return; // a write still held when its client left reached neither side
  const st = unchecked(statsList[si]);
  const t = unchecked(st.live.targets[(flags & F_SHADOW) != 0 ? T_SHADOW_LIVE : T_PRIMARY]);
  t.requests++;
  let rf: i64 = 0;
  // One failure is counted once (errors = 5xx + resets + timeouts): Envoy's local 503 after a refused
  // connection or 504 after an upstream timeout counts as the reset or timeout it is, not also as a 5xx.
  let counted = false;
  if (status == 0 || status >= 500) {
    rf = getPropertyU64(P_FLAGS.ptr, P_FLAGS.len);
    if (rf > 0 && (rf & RF_UPSTREAM_TIMEOUT) != 0) { t.timeouts++; counted = true; }
    else if (status == 0 || (rf > 0 && (rf & RF_RESETS) != 0)) { t.resets++; counted = true; }
  }
  if (status != 0 && !counted) t.recordStatus(status);
  let dur: i64 = -1;
  if (status != 0) {
    dur = getPropertyU64(P_DURATION.ptr, P_DURATION.len);
    if (dur >= 0) t.sketch.add(<f64>dur * 1e-3);
  }
  const edge = unchecked(sEdge[slot]);
  if (edge != NO_EDGE) {
    const et = st.edges;
    if (et !== null) et.record(edge, status == 0 || status >= 500 || counted, dur > 0 ? <u64>dur / 1000 : 0);
  }
  if (m >= 0) primaryFinished(m, status, (flags & F_BODY_DONE) != 0);
  // The floor watches the primary's answers to live reads: a failure is a 5xx, or no response with
  // Envoy's flags showing an upstream reset, timeout or connection failure. No response without
  // such a flag (the client went away) says nothing about the primary.
  if ((flags & (F_SHADOW | F_OBSERVED)) != 0) return;
  const localOrigin = rf > 0 && (rf & (RF_RESETS | RF_UPSTREAM_TIMEOUT)) != 0;
  const fl = unchecked(floors[si]);
  if ((flags & F_READ) != 0) {
    if (status == 0 && !localOrigin) return;
    fl.observe((flags & F_PROBE) != 0, status == 0 || status >= 500);
  } else if (localOrigin) {
    // Writes to the primary are evidence too (never diverted): as in Envoy's split of local-origin
    // errors, a connection failure, reset or timeout says the primary is unreachable, an answer says
    // it is up. A 5xx the primary sent may be a refusal of that write (fenced, lease), not trouble:
    // alone it is not evidence, but it extends a run of failures a read began (floor.ts).
    fl.observe(false, true);
  } else if (status >= 500) fl.corroborate();
  else if (status != 0) fl.observe(false, false);
}
