// Read mirroring and consistency: the mirror slot table (one per in-flight mirrored read), the
// caps (in flight, token bucket), sending the copy to the shadow with proxy_http_call (owned by the
// root context), digesting the primary's body as it streams, and the verdict once both answered.
import {
  BUFFER_HTTP_CALL_RESPONSE_BODY, BUFFER_HTTP_RESPONSE_BODY, MAP_HTTP_CALL_RESPONSE_HEADERS, OK, PairReader,
  PairWriter, getBufferBytes, getHeaderValue, httpCall, monotonicNs, proxy_set_effective_context, resultLen, resultPtr,
} from "./abi";
import { Bytes, FNV_OFFSET, bytesEqualAny, fnv1a, parseStatus } from "./bytes";
import { ComponentConfig } from "./config";
import {
  C_ABANDONED, C_BODY_MISMATCH, C_MATCH, C_MIRRORED, C_REQUEST_BYTES, C_RESPONSE_BYTES, C_SHADOW_ERROR, C_SHADOW_TIMEOUT, C_SKIPPED_CAP,
  C_STATUS_MISMATCH, ComponentStats, T_SHADOW_MIRROR,
} from "./stats";
import { config, internalError, rootContextId, statsList } from "./state";

const H_STATUS = new Bytes(":status");
const MARKER_VALUE = new Bytes("1");

const MIRRORS: i32 = 1024;
const mActive = new StaticArray<bool>(MIRRORS);
const mToken = new StaticArray<u32>(MIRRORS);
const mStats = new StaticArray<i32>(MIRRORS);
const mStartNs = new StaticArray<u64>(MIRRORS);
const mTimeoutMs = new StaticArray<u32>(MIRRORS);
const mCompareMax = new StaticArray<u64>(MIRRORS);
const mShadowDone = new StaticArray<bool>(MIRRORS);
const mShadowResult = new StaticArray<i32>(MIRRORS); // 0 response, 1 error, 2 timeout
const mShadowStatus = new StaticArray<u32>(MIRRORS);
const mShadowDigest = new StaticArray<u64>(MIRRORS);
const mShadowLen = new StaticArray<u64>(MIRRORS);
const mPrimaryDone = new StaticArray<bool>(MIRRORS);
const mPrimaryAbandoned = new StaticArray<bool>(MIRRORS);
const mPrimaryStatus = new StaticArray<u32>(MIRRORS);
const mPrimaryDigest = new StaticArray<u64>(MIRRORS);
const mPrimaryLen = new StaticArray<u64>(MIRRORS);
let mirrorsInUse: i32 = 0;

// Scratch for the mirrored request's header map.
const MIRROR_HDR_CAP: usize = 64 * 1024;
const MIRROR_HDR_BUF: usize = memory.data(64 * 1024, 16);
const writer = new PairWriter();

function allocMirror(): i32 {
  for (let i = 0; i < MIRRORS; i++) if (!unchecked(mActive[i])) return i;
  return -1;
}

/**
 * Mirrors the read whose request headers `r` still covers (this callback's map) to the shadow.
 * Returns the mirror slot to keep with the stream, or -1 when nothing was sent.
 */
export function mirror(ctx: u32, comp: ComponentConfig, st: ComponentStats, statsIdx: i32, r: PairReader): i32 {
  // Caps first: in flight, then a token bucket refilled from the monotonic clock.
  if (st.inFlight >= comp.mirrorMaxInFlight) { st.live.consistency[C_SKIPPED_CAP]++; return -1; }
  const now = monotonicNs();
  const rate = <f64>comp.mirrorMaxPerSecond;
  if (st.lastRefillNs == 0) st.tokens = rate;
  else st.tokens = Math.min(rate, st.tokens + <f64>(now - st.lastRefillNs) * 1e-9 * rate);
  st.lastRefillNs = now;
  if (st.tokens < 1.0) { st.live.consistency[C_SKIPPED_CAP]++; return -1; }
  const m = allocMirror();
  if (m < 0) { internalError("mirror table full"); return -1; }

  // Copy the request headers, minus the routing header, the configured removals and any marker,
  // plus our marker.
  const w = writer;
  w.begin(MIRROR_HDR_BUF, MIRROR_HDR_CAP);
  r.rewind();
  const cfg = config!;
  while (r.next()) {
    const kp = r.keyPtr, kl = r.keyLen;
    if (comp.routingHeader.equals(kp, kl) || cfg.markerHeader.equals(kp, kl)) continue;
    if (bytesEqualAny(comp.mirrorRemoveHeaders, kp, kl)) continue;
    w.add(kp, kl, r.valPtr, r.valLen);
  }
  w.add(cfg.markerHeader.ptr, cfg.markerHeader.len, MARKER_VALUE.ptr, MARKER_VALUE.len);
  const hl = w.finish();
  if (hl == 0) { internalError("mirror headers too large"); return -1; }

  // Owned by the root context: Envoy cancels a stream context's callouts when the stream ends,
  // and the shadow may well answer after the primary.
  if (proxy_set_effective_context(rootContextId) != OK) { internalError("set_effective_context failed"); return -1; }
  const sc = comp.shadowCluster;
  const tok = httpCall(sc.ptr, sc.len, MIRROR_HDR_BUF, hl, comp.mirrorTimeoutMs);
  proxy_set_effective_context(ctx);
  if (tok < 0) { internalError("proxy_http_call to the shadow failed"); return -1; }

  st.tokens -= 1.0;
  st.inFlight++;
  st.live.consistency[C_MIRRORED]++;
  st.live.consistency[C_REQUEST_BYTES] += <u64>hl;
  mirrorsInUse++;
  unchecked(mActive[m] = true);
  unchecked(mToken[m] = <u32>tok);
  unchecked(mStats[m] = statsIdx);
  unchecked(mStartNs[m] = now);
  unchecked(mTimeoutMs[m] = comp.mirrorTimeoutMs);
  unchecked(mCompareMax[m] = <u64>comp.compareBodyMaxBytes);
  unchecked(mShadowDone[m] = false);
  unchecked(mPrimaryDone[m] = false);
  unchecked(mPrimaryAbandoned[m] = false);
  unchecked(mPrimaryDigest[m] = FNV_OFFSET);
  unchecked(mPrimaryLen[m] = 0);
  unchecked(mPrimaryStatus[m] = 0);
  return m;
}

/** A chunk of the primary's response body (in proxy_on_response_body): digested up to the compare limit. */
export function primaryBody(m: i32, size: usize): void {
  const before = unchecked(mPrimaryLen[m]);
  unchecked(mPrimaryLen[m] = before + <u64>size);
  if (size > 0 && before + <u64>size <= unchecked(mCompareMax[m])) {
    if (getBufferBytes(BUFFER_HTTP_RESPONSE_BODY, 0, size) == OK) {
      unchecked(mPrimaryDigest[m] = fnv1a(unchecked(mPrimaryDigest[m]), resultPtr, resultLen));
    } else {
      internalError("response body unavailable");
    }
  }
}

/** The primary's stream ended (proxy_on_log); compares when the shadow has answered too. */
export function primaryFinished(m: i32, status: u32, complete: bool): void {
  unchecked(mPrimaryDone[m] = true);
  unchecked(mPrimaryStatus[m] = status);
  unchecked(mPrimaryAbandoned[m] = status == 0 || !complete);
  if (unchecked(mShadowDone[m])) compareAndFree(m);
}

export function onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize): void {
  let m = -1;
  if (mirrorsInUse > 0) {
    for (let i = 0; i < MIRRORS; i++) {
      if (unchecked(mActive[i]) && !unchecked(mShadowDone[i]) && unchecked(mToken[i]) == token) { m = i; break; }
    }
  }
  if (m < 0) return;
  const st = unchecked(statsList[unchecked(mStats[m])]);
  if (st.inFlight > 0) st.inFlight--;
  const t = unchecked(st.live.targets[T_SHADOW_MIRROR]);
  t.requests++;
  const elapsedNs = monotonicNs() - unchecked(mStartNs[m]);
  unchecked(mShadowDone[m] = true);
  if (numHeaders == 0) {
    // The ABI reports every failure the same way; a failure at (or near) the deadline is a timeout.
    const timedOut = elapsedNs >= <u64>unchecked(mTimeoutMs[m]) * 950000;
    unchecked(mShadowResult[m] = timedOut ? 2 : 1);
    if (timedOut) t.timeouts++; else t.resets++;
  } else {
    unchecked(mShadowResult[m] = 0);
    let status: u32 = 0;
    if (getHeaderValue(MAP_HTTP_CALL_RESPONSE_HEADERS, H_STATUS.ptr, H_STATUS.len) == OK) status = parseStatus(resultPtr, resultLen);
    unchecked(mShadowStatus[m] = status);
    t.recordStatus(status);
    t.sketch.add(<f64>elapsedNs * 1e-3);
    unchecked(mShadowLen[m] = <u64>bodySize);
    st.live.consistency[C_RESPONSE_BYTES] += <u64>bodySize;
    let digest = FNV_OFFSET;
    if (bodySize > 0 && <u64>bodySize <= unchecked(mCompareMax[m])) {
      if (getBufferBytes(BUFFER_HTTP_CALL_RESPONSE_BODY, 0, bodySize) == OK) digest = fnv1a(digest, resultPtr, resultLen);
      else { internalError("mirror response body unavailable"); unchecked(mShadowResult[m] = 1); }
    }
    unchecked(mShadowDigest[m] = digest);
  }
  if (unchecked(mPrimaryDone[m])) compareAndFree(m);
}

function compareAndFree(m: i32): void {
  const c = unchecked(statsList[unchecked(mStats[m])]).live.consistency;
  const result = unchecked(mShadowResult[m]);
  let outcome: i32;
  if (result == 2) outcome = C_SHADOW_TIMEOUT;
  else if (result == 1) outcome = C_SHADOW_ERROR;
  // A primary that failed (5xx) says nothing about the shadow's data: not a comparison. Its errors
  // are counted in its own target; counting them here would blame the shadow for the primary's trouble.
  else if (unchecked(mPrimaryAbandoned[m]) || unchecked(mPrimaryStatus[m]) >= 500) outcome = C_ABANDONED;
  else if (unchecked(mShadowStatus[m]) != unchecked(mPrimaryStatus[m])) outcome = C_STATUS_MISMATCH;
  else {
    const pl = unchecked(mPrimaryLen[m]), sl = unchecked(mShadowLen[m]), max = unchecked(mCompareMax[m]);
    if (pl != sl) outcome = C_BODY_MISMATCH;
    else if (pl <= max && unchecked(mPrimaryDigest[m]) != unchecked(mShadowDigest[m])) outcome = C_BODY_MISMATCH;
    else outcome = C_MATCH; // above the size limit, status and length only
  }
  c[outcome]++;
  unchecked(mActive[m] = false);
  mirrorsInUse--;
}
