// The shadowmesh HTTP filter: per-request classification, weighted sticky split, read mirroring
// with consistency checks, latency/status recording, and periodic telemetry. Every callback here
// is entered through index.ts, which resets the per-callback arena. Anything unexpected (a host
// call failing, a table full, a malformed map) leaves the request untouched and counts an error.
import {
  ACTION_CONTINUE, BUFFER_HTTP_CALL_RESPONSE_BODY, BUFFER_HTTP_RESPONSE_BODY, BUFFER_PLUGIN_CONFIGURATION,
  LOG_ERROR, LOG_INFO, LOG_WARN, MAP_HTTP_CALL_RESPONSE_HEADERS, MAP_REQUEST_HEADERS, MAP_RESPONSE_HEADERS,
  METRIC_COUNTER, OK, PairReader, PairWriter, arenaAlloc, defineMetric, getBufferBytes, getHeaderPairs,
  getHeaderValue, getProperty, getPropertyU64, grpcCall, httpCall, logString, monotonicNs,
  proxy_replace_header_map_value, proxy_set_effective_context, proxy_set_tick_period_milliseconds,
  randomU64, resultLen, resultPtr, wallNs,
} from "./abi";
import { Bytes, FNV_OFFSET, Rng, bytesEqualAny, fnv1a, mix64 } from "./bytes";
import { ComponentConfig, PluginConfig, configError, parseConfig } from "./config";
import {
  C_ABANDONED, C_BODY_MISMATCH, C_MATCH, C_MIRRORED, C_SHADOW_ERROR, C_SHADOW_TIMEOUT, C_SKIPPED_CAP,
  C_STATUS_MISMATCH, ComponentStats, T_PRIMARY, T_SHADOW_LIVE, T_SHADOW_MIRROR, bump,
} from "./stats";
import { MULTIPLIER, RELATIVE_ACCURACY } from "./sketch";
import { ProtoWriter } from "./proto";

// ---- Constant byte strings ----
const H_AUTHORITY = new Bytes(":authority");
const H_METHOD = new Bytes(":method");
const H_PATH = new Bytes(":path");
const H_STATUS = new Bytes(":status");
const H_COOKIE = new Bytes("cookie");
const MARKER_VALUE = new Bytes("1");
const P_DURATION = new Bytes("request\0duration");
const P_FLAGS = new Bytes("response\0flags");
const P_NODE_ID = new Bytes("node\0id");
const TELEMETRY_SERVICE = new Bytes("shadowmesh.telemetry.v1.Telemetry");
const TELEMETRY_METHOD = new Bytes("Report");

// Envoy response flags (StreamInfo::CoreResponseFlag bit values).
const RF_UPSTREAM_TIMEOUT: i64 = 0x4;
const RF_RESETS: i64 = 0x8 | 0x10 | 0x20 | 0x40;

// ---- Plugin state (one copy per VM, i.e. per Envoy worker) ----
let config: PluginConfig | null = null;
let configGeneration: u32 = 0;
let rootContextId: u32 = 0;
const statsList = new Array<ComponentStats>();
/** statsFor[i] = stats of config.components[i]; statsIndexFor[i] = its index in statsList. */
let statsFor = new Array<ComponentStats>();
let statsIndexFor = new Array<i32>();
const rng = new Rng();
let workerId: u64 = 0;
let nodeId: Bytes = new Bytes("");

let errorsLive: u64 = 0;
let errorsPending: u64 = 0;
let errorsSent: u64 = 0;
let mFilterErrors: i32 = -1;
let mTelemetrySent: i32 = -1;
let mTelemetryFailed: i32 = -1;
let lastErrorLogNs: u64 = 0;

function internalError(what: string): void {
  errorsLive++;
  // At most one log line per second: an error storm must not become a log storm.
  const now = monotonicNs();
  if (now - lastErrorLogNs >= 1000000000 || lastErrorLogNs == 0) {
    lastErrorLogNs = now;
    logString(LOG_WARN, "shadowmesh: internal error, request left untouched: " + what);
  }
}

// ---- Stream table: direct-mapped by context id (Envoy allocates ids increasingly) ----
const STREAMS: i32 = 16384;
const STREAM_MASK: u32 = <u32>STREAMS - 1;
const sCtx = new StaticArray<u32>(STREAMS);
const sStats = new StaticArray<i32>(STREAMS);   // index into statsList, -1 when not tracked
const sFlags = new StaticArray<u32>(STREAMS);
const sStatus = new StaticArray<u32>(STREAMS);
const sMirror = new StaticArray<i32>(STREAMS);  // mirror slot, -1 when none
const F_READ: u32 = 1;
const F_SHADOW: u32 = 2;
const F_MARKED: u32 = 4;
const F_RESPONDED: u32 = 8;
const F_BODY_DONE: u32 = 16;

function slotOf(ctx: u32): i32 {
  const s = <i32>(ctx & STREAM_MASK);
  return unchecked(sCtx[s]) == ctx ? s : -1;
}

// ---- Mirror slots: one per in-flight mirrored read ----
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

function allocMirror(): i32 {
  for (let i = 0; i < MIRRORS; i++) if (!unchecked(mActive[i])) return i;
  return -1;
}

// ---- Scratch for outgoing header maps and telemetry ----
const MIRROR_HDR_CAP: usize = 64 * 1024;
const MIRROR_HDR_BUF: usize = memory.data(64 * 1024, 16);
const reader = new PairReader();
const writer = new PairWriter();
const proto = new ProtoWriter();
let reportBuf: usize = memory.data(256 * 1024, 16);
let reportCap: usize = 256 * 1024;
let reportToken: u32 = 0;
let reportInFlight = false;
let reportSentNs: u64 = 0;
let reportSequence: u64 = 0;
let windowStartNs: u64 = 0;
let reportWindowEnd: u64 = 0;

// ======================= lifecycle and configuration =======================

/**
 * Claims the stream's slot on its first callback (request headers), so the module needs no
 * proxy_on_context_create export: one VM entry less per request. -1 when the slot is taken.
 */
function claimSlot(ctx: u32): i32 {
  const s = <i32>(ctx & STREAM_MASK);
  const owner = unchecked(sCtx[s]);
  if (owner == ctx) return s;
  if (owner != 0) { internalError("stream table slot busy"); return -1; }
  unchecked(sCtx[s] = ctx);
  unchecked(sStats[s] = -1);
  unchecked(sFlags[s] = 0);
  unchecked(sStatus[s] = 0);
  unchecked(sMirror[s] = -1);
  return s;
}

export function setRootContext(root: u32): void { rootContextId = root; }

export function onVmStart(): bool {
  rng.seed(randomU64() ^ monotonicNs());
  workerId = rng.next();
  windowStartNs = wallNs();
  mFilterErrors = defineMetric(METRIC_COUNTER, "shadowmesh.filter_errors");
  mTelemetrySent = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.sent");
  mTelemetryFailed = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.failed");
  return true;
}

export function onConfigure(size: usize): bool {
  if (size == 0) {
    logString(LOG_ERROR, "shadowmesh: rejected plugin configuration: configuration: is empty; keeping the previous one");
    return false;
  }
  if (getBufferBytes(BUFFER_PLUGIN_CONFIGURATION, 0, size) != OK) {
    logString(LOG_ERROR, "shadowmesh: rejected plugin configuration: configuration: the host did not return it; keeping the previous one");
    return false;
  }
  const cfg = parseConfig(resultPtr, resultLen);
  if (cfg === null) {
    logString(LOG_ERROR, "shadowmesh: rejected plugin configuration: " + configError + "; keeping the previous one");
    return false;
  }
  const mapped = new Array<ComponentStats>();
  const mappedIndex = new Array<i32>();
  for (let i = 0; i < cfg.components.length; i++) {
    const cc = cfg.components[i];
    let st: ComponentStats | null = null;
    for (let j = 0; j < statsList.length; j++) if (statsList[j].name == cc.name) { st = statsList[j]; break; }
    if (st === null) { st = new ComponentStats(cc.name); statsList.push(st); }
    st.weightBp = cc.shadowWeightBp;
    mapped.push(st);
    mappedIndex.push(statsList.indexOf(st));
  }
  if (cfg.nodeId.length > 0) nodeId = new Bytes(cfg.nodeId);
  else if (getProperty(P_NODE_ID.ptr, P_NODE_ID.len) == OK && resultLen > 0) {
    nodeId = new Bytes(String.UTF8.decodeUnsafe(resultPtr, resultLen));
  }
  config = cfg;
  statsFor = mapped;
  statsIndexFor = mappedIndex;
  configGeneration++;
  proxy_set_tick_period_milliseconds(cfg.telemetryIntervalMs);
  logString(LOG_INFO, "shadowmesh: configuration accepted (" + cfg.components.length.toString() + " components, generation " + configGeneration.toString() + ")");
  return true;
}

// ============================ request path ============================

function findComponent(cfg: PluginConfig, p: usize, l: usize): i32 {
  const comps = cfg.components;
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0, n = comps.length; i < n; i++) {
      if (bytesEqualAny(unchecked(comps[i]).authorities, p, l)) return i;
    }
    // Second pass: the same authority without a trailing ":port".
    let c = l;
    while (c > 0 && load<u8>(p + c - 1) >= 0x30 && load<u8>(p + c - 1) <= 0x39) c--;
    if (c == l || c < 2 || load<u8>(p + c - 1) != 0x3a) break;
    l = c - 1;
  }
  return cfg.defaultComponent;
}

/** Finds `name=value` in a Cookie header value; sets cookieVal* and returns true when found. */
let cookieValPtr: usize = 0;
let cookieValLen: usize = 0;
function findCookie(name: Bytes, p: usize, l: usize): bool {
  const end = p + l;
  let i = p;
  while (i < end) {
    while (i < end && (load<u8>(i) == 0x20 || load<u8>(i) == 0x3b)) i++;
    const start = i;
    while (i < end && load<u8>(i) != 0x3b) i++;
    const pairLen = i - start;
    if (pairLen > name.len && load<u8>(start + name.len) == 0x3d && memory.compare(start, name.ptr, name.len) == 0) {
      cookieValPtr = start + name.len + 1;
      cookieValLen = pairLen - name.len - 1;
      return true;
    }
  }
  return false;
}

/** Bucket in [0, 10000) for the sticky key; a key's bucket never changes, so a rising weight never moves it back. */
function stickyBucket(salt: u64, p: usize, l: usize): u32 {
  const h = mix64(fnv1a(FNV_OFFSET ^ salt, p, l));
  return <u32>(((h >> 32) * 10000) >> 32);
}

export function onRequestHeaders(ctx: u32): i32 {
  const cfg = config;
  if (cfg === null) return ACTION_CONTINUE;
  const slot = claimSlot(ctx);
  if (slot < 0) return ACTION_CONTINUE;
  if (getHeaderPairs(MAP_REQUEST_HEADERS) != OK) { internalError("request headers unavailable"); return ACTION_CONTINUE; }
  const r = reader;
  if (!r.open(resultPtr, resultLen)) { internalError("malformed request header map"); return ACTION_CONTINUE; }

  let authP: usize = 0, authL: usize = 0, methP: usize = 0, methL: usize = 0, pathP: usize = 0, pathL: usize = 0;
  let marked = false;
  const marker = cfg.markerHeader;
  while (r.next()) {
    const kp = r.keyPtr, kl = r.keyLen;
    if (kl > 0 && load<u8>(kp) == 0x3a) {
      if (H_AUTHORITY.equals(kp, kl)) { authP = r.valPtr; authL = r.valLen; }
      else if (H_METHOD.equals(kp, kl)) { methP = r.valPtr; methL = r.valLen; }
      else if (H_PATH.equals(kp, kl)) { pathP = r.valPtr; pathL = r.valLen; }
    } else if (marker.equals(kp, kl)) marked = true;
  }
  const ci = findComponent(cfg, authP, authL);
  if (ci < 0) return ACTION_CONTINUE;
  const comp = unchecked(cfg.components[ci]);
  const st = unchecked(statsFor[ci]);

  // Read rule: method, then path prefix, then header; a second pass only when a header matters.
  let isRead = bytesEqualAny(comp.read.methods, methP, methL);
  const prefixes = comp.read.pathPrefixes;
  if (isRead && prefixes.length > 0) {
    let any = false;
    for (let i = 0, n = prefixes.length; i < n; i++) if (unchecked(prefixes[i]).prefixOf(pathP, pathL)) { any = true; break; }
    isRead = any;
  }
  const rh = comp.read.headerName;
  const sh = comp.stickyHeader;
  const sc = comp.stickyCookie;
  let keyP: usize = 0, keyL: usize = 0, haveKey = false;
  if ((isRead && rh !== null) || sh !== null || sc !== null) {
    let headerOk = rh === null;
    r.rewind();
    while (r.next()) {
      const kp = r.keyPtr, kl = r.keyLen;
      if (rh !== null && rh.equals(kp, kl)) {
        const hv = comp.read.headerValue;
        if (hv === null || hv.equals(r.valPtr, r.valLen)) headerOk = true;
      }
      if (!haveKey) {
        if (sh !== null && sh.equals(kp, kl)) { keyP = r.valPtr; keyL = r.valLen; haveKey = keyL > 0; }
        else if (sc !== null && H_COOKIE.equals(kp, kl) && findCookie(sc, r.valPtr, r.valLen)) {
          keyP = cookieValPtr; keyL = cookieValLen; haveKey = keyL > 0;
        }
      }
    }
    isRead = isRead && headerOk;
  }

  // Target: mirrors (marked) keep going where they were sent and never fan out again; writes go to
  // the write target; reads follow the shadow weight, sticky by key when there is one.
  let toShadow: bool;
  if (marked) toShadow = isRead;
  else if (!isRead) toShadow = comp.writeToShadow;
  else if (comp.shadowWeightBp == 0) toShadow = false;
  else if (comp.shadowWeightBp >= 10000) toShadow = true;
  else {
    const bucket = haveKey ? stickyBucket(comp.salt, keyP, keyL) : rng.below(10000);
    toShadow = bucket < comp.shadowWeightBp;
  }
  const cluster = toShadow ? comp.shadowCluster : comp.primaryCluster;
  const rhdr = comp.routingHeader;
  if (proxy_replace_header_map_value(MAP_REQUEST_HEADERS, rhdr.ptr, rhdr.len, cluster.ptr, cluster.len) != OK) {
    internalError("could not set the routing header");
    return ACTION_CONTINUE;
  }
  if (marked) return ACTION_CONTINUE; // not live traffic: no stats, no mirror

  const statsIdx = unchecked(statsIndexFor[ci]);
  unchecked(sStats[slot] = statsIdx);
  let flags: u32 = 0;
  if (isRead) { flags |= F_READ; st.live.reads++; } else st.live.writes++;
  if (toShadow) { flags |= F_SHADOW; st.live.routedShadow++; }
  unchecked(sFlags[slot] = flags);

  if (isRead && !toShadow && comp.mirrorFractionPpm > 0 && rng.below(1000000) < comp.mirrorFractionPpm) {
    mirror(ctx, slot, comp, st, statsIdx);
  }
  return ACTION_CONTINUE;
}

function mirror(ctx: u32, slot: i32, comp: ComponentConfig, st: ComponentStats, statsIdx: i32): void {
  // Caps first: in flight, then a token bucket refilled from the monotonic clock.
  if (st.inFlight >= comp.mirrorMaxInFlight) { st.live.consistency[C_SKIPPED_CAP]++; return; }
  const now = monotonicNs();
  const rate = <f64>comp.mirrorMaxPerSecond;
  if (st.lastRefillNs == 0) st.tokens = rate;
  else st.tokens = Math.min(rate, st.tokens + <f64>(now - st.lastRefillNs) * 1e-9 * rate);
  st.lastRefillNs = now;
  if (st.tokens < 1.0) { st.live.consistency[C_SKIPPED_CAP]++; return; }
  const m = allocMirror();
  if (m < 0) { internalError("mirror table full"); return; }

  // Copy the request headers (the reader still covers this callback's map), minus the routing
  // header, the configured removals and any marker, plus our marker.
  const w = writer;
  w.begin(MIRROR_HDR_BUF, MIRROR_HDR_CAP);
  const r = reader;
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
  if (hl == 0) { internalError("mirror headers too large"); return; }

  // Owned by the root context: Envoy cancels a stream context's callouts when the stream ends,
  // and the shadow may well answer after the primary.
  if (proxy_set_effective_context(rootContextId) != OK) { internalError("set_effective_context failed"); return; }
  const sc = comp.shadowCluster;
  const tok = httpCall(sc.ptr, sc.len, MIRROR_HDR_BUF, hl, comp.mirrorTimeoutMs);
  proxy_set_effective_context(ctx);
  if (tok < 0) { internalError("proxy_http_call to the shadow failed"); return; }

  st.tokens -= 1.0;
  st.inFlight++;
  st.live.consistency[C_MIRRORED]++;
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
  unchecked(sMirror[slot] = m);
}

function parseStatus(p: usize, l: usize): u32 {
  if (l != 3) return 0;
  let v: u32 = 0;
  for (let i: usize = 0; i < 3; i++) {
    const d = <u32>load<u8>(p + i) - 0x30;
    if (d > 9) return 0;
    v = v * 10 + d;
  }
  return v >= 100 ? v : 0;
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
  const before = unchecked(mPrimaryLen[m]);
  unchecked(mPrimaryLen[m] = before + <u64>size);
  if (size > 0 && before + <u64>size <= unchecked(mCompareMax[m])) {
    if (getBufferBytes(BUFFER_HTTP_RESPONSE_BODY, 0, size) == OK) {
      unchecked(mPrimaryDigest[m] = fnv1a(unchecked(mPrimaryDigest[m]), resultPtr, resultLen));
    } else {
      internalError("response body unavailable");
    }
  }
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
  if (si < 0) return;
  const st = unchecked(statsList[si]);
  const t = unchecked(st.live.targets[(flags & F_SHADOW) != 0 ? T_SHADOW_LIVE : T_PRIMARY]);
  t.requests++;
  if (status != 0) t.recordStatus(status);
  if (status == 0 || status >= 500) {
    const rf = getPropertyU64(P_FLAGS.ptr, P_FLAGS.len);
    if (rf > 0 && (rf & RF_UPSTREAM_TIMEOUT) != 0) t.timeouts++;
    else if (status == 0 || (rf > 0 && (rf & RF_RESETS) != 0)) t.resets++;
  }
  if (status != 0) {
    const dur = getPropertyU64(P_DURATION.ptr, P_DURATION.len);
    if (dur >= 0) t.sketch.add(<f64>dur * 1e-3);
  }
  if (m >= 0) primaryFinished(m, status, (flags & F_BODY_DONE) != 0);
}

function primaryFinished(m: i32, status: u32, complete: bool): void {
  unchecked(mPrimaryDone[m] = true);
  unchecked(mPrimaryStatus[m] = status);
  unchecked(mPrimaryAbandoned[m] = status == 0 || !complete);
  if (unchecked(mShadowDone[m])) compareAndFree(m);
}

// ============================ mirror responses ============================

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

// ============================ telemetry ============================

export function onTick(): void {
  for (let i = 0, n = statsList.length; i < n; i++) {
    const s = unchecked(statsList[i]);
    s.flushMetrics(); // live holds exactly the delta since the previous tick
    s.pending.merge(s.live);
    s.live.clear();
  }
  bump(mFilterErrors, errorsLive);
  errorsPending += errorsLive;
  errorsLive = 0;
  const cfg = config;
  if (cfg === null) return;
  const now = monotonicNs();
  if (reportInFlight && now - reportSentNs > <u64>cfg.telemetryTimeoutMs * 3000000) {
    reportDone(false); // the host never answered: its data goes back to pending
  }
  if (reportInFlight) return;
  if (cfg.telemetryCluster === null) {
    for (let i = 0, n = statsList.length; i < n; i++) unchecked(statsList[i]).pending.clear();
    errorsPending = 0;
    return;
  }
  // Sent even when empty: an empty report tells the controller this worker is alive.
  for (let i = 0, n = statsList.length; i < n; i++) unchecked(statsList[i]).beginSend();
  errorsSent = errorsPending;
  errorsPending = 0;
  const windowEnd = wallNs();
  const len = encodeReport(windowEnd);
  const tc = cfg.telemetryCluster!;
  const tok = len == 0 ? -1 : grpcCall(tc.ptr, tc.len, TELEMETRY_SERVICE.ptr, TELEMETRY_SERVICE.len,
    TELEMETRY_METHOD.ptr, TELEMETRY_METHOD.len, reportBuf, len, cfg.telemetryTimeoutMs);
  if (len == 0) internalError("telemetry report could not be encoded");
  reportInFlight = true;
  reportSentNs = now;
  reportWindowEnd = windowEnd;
  if (tok < 0) { reportDone(false); return; }
  reportToken = <u32>tok;
}

function encodeReport(windowEnd: u64): usize {
  for (let attempt = 0; attempt < 2; attempt++) {
    const w = proto;
    w.reset(reportBuf, reportCap);
    w.bytes(1, nodeId.ptr, nodeId.len);
    w.fixed64(2, workerId);
    w.uint(3, reportSequence + 1);
    w.uint(4, windowStartNs);
    w.uint(5, windowEnd);
    for (let i = 0, n = statsList.length; i < n; i++) {
      const s = unchecked(statsList[i]);
      if (!s.sent.isEmpty()) s.encode(w, MULTIPLIER, RELATIVE_ACCURACY);
    }
    w.uint(7, errorsSent);
    w.uint(8, <u64>configGeneration);
    if (!w.overflow) { reportSequence++; return w.length; }
    // Grow once to a bound that always fits: at tick time, never on the request path.
    reportCap = reportCap * 8;
    reportBuf = heap.alloc(reportCap);
  }
  return 0;
}

function reportDone(ok: bool): void {
  reportInFlight = false;
  for (let i = 0, n = statsList.length; i < n; i++) unchecked(statsList[i]).endSend(ok);
  if (ok) {
    errorsSent = 0;
    windowStartNs = reportWindowEnd;
    bump(mTelemetrySent, 1);
  } else {
    errorsPending += errorsSent;
    errorsSent = 0;
    bump(mTelemetryFailed, 1);
  }
}

export function onGrpcReceive(token: u32): void {
  if (reportInFlight && token == reportToken) reportDone(true);
}

export function onGrpcClose(token: u32, status: u32): void {
  if (reportInFlight && token == reportToken) reportDone(status == 0);
}

// Used by index.ts for an allocator that cannot fail silently.
export function allocate(size: usize): usize { return arenaAlloc(size); }
