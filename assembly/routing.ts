// The request path (proxy_on_request_headers): component lookup by :authority, the read rule, the
// sticky weighted split, the routing header, the caller (edges.ts), held and paused writes (pause.ts),
// and the hand-off to mirroring.
// One header-map read and one header write per request (none for an observed component); nothing allocated.
import {
  ACTION_CONTINUE, ACTION_PAUSE, MAP_REQUEST_HEADERS, OK, PairReader, getHeaderPairs, monotonicNs, proxy_replace_header_map_value,
  resultLen, resultPtr,
} from "./abi";
import { Bytes, FNV_OFFSET, bytesEqualAny, fnv1a, mix64, withoutPort } from "./bytes";
import { PluginConfig, TOTAL_WEIGHT } from "./config";
import { mirror } from "./mirror";
import { DIVERT, PROBE, floors } from "./floor";
import { F_DIVERTED, F_OBSERVED, F_PROBE, F_READ, F_SHADOW, claimSlot, sEdge, sFlags, sMirror, sStats } from "./record";
import { resolveCaller } from "./edges";
import { FL_WRITES_HELD } from "./stats";
import { config, internalError, rng, statsFor, statsIndexFor } from "./state";
import { HELD_DETAILS, answerHeld, pauseWrite } from "./pause";

const H_AUTHORITY = new Bytes(":authority");
const H_METHOD = new Bytes(":method");
const H_PATH = new Bytes(":path");
const H_COOKIE = new Bytes("cookie");


/** The request header map of the current callback (mirroring copies from it). */
const reader = new PairReader();

function findComponent(cfg: PluginConfig, p: usize, l: usize): i32 {
  const comps = cfg.components;
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0, n = comps.length; i < n; i++) {
      if (bytesEqualAny(unchecked(comps[i]).authorities, p, l)) return i;
    }
    // Second pass: the same authority without a trailing ":port".
    const c = withoutPort(p, l);
    if (c == l) break;
    l = c;
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

/** Bucket in [0, TOTAL_WEIGHT) for the sticky key; a key's bucket never changes, so a rising weight never moves it back. */
function stickyBucket(salt: u64, p: usize, l: usize): u32 {
  const h = mix64(fnv1a(FNV_OFFSET ^ salt, p, l));
  return <u32>(((h >> 32) * <u64>TOTAL_WEIGHT) >> 32);
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
  const callers = cfg.callers;
  let callerHeader: Bytes | null = null;
  if (callers !== null) callerHeader = callers.header;
  let callerP: usize = 0, callerL: usize = 0;
  while (r.next()) {
    const kp = r.keyPtr, kl = r.keyLen;
    if (kl > 0 && load<u8>(kp) == 0x3a) {
      if (H_AUTHORITY.equals(kp, kl)) { authP = r.valPtr; authL = r.valLen; }
      else if (H_METHOD.equals(kp, kl)) { methP = r.valPtr; methL = r.valLen; }
      else if (H_PATH.equals(kp, kl)) { pathP = r.valPtr; pathL = r.valLen; }
    } else if (marker.equals(kp, kl)) marked = true;
    else if (callerHeader !== null && callerHeader!.equals(kp, kl)) { callerP = r.valPtr; callerL = r.valLen; }
  }
  const ci = findComponent(cfg, authP, authL);
  if (ci < 0) return ACTION_CONTINUE;
  const comp = unchecked(cfg.components[ci]);
  const st = unchecked(statsFor[ci]);
  // The caller (edges.ts): live requests only (a mirror is the filter's own copy).
  if (callers !== null && !marked && resolveCaller(callers, callerP, callerL)) {
    const et = st.edges;
    if (et !== null) unchecked(sEdge[slot] = et.slotForCaller(callers.topK));
  }
  if (comp.observe) {
    // Observed, not protected: counted where the route sends it; no split, mirror, hold or floor.
    unchecked(sStats[slot] = unchecked(statsIndexFor[ci]));
    unchecked(sFlags[slot] = F_OBSERVED);
    if (bytesEqualAny(comp.read.methods, methP, methL)) st.live.reads++; else st.live.writes++;
    return ACTION_CONTINUE;
  }

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

  // Held writes (hold_writes, during an emergency failover): answered here with a 503, never
  // forwarded; with pause_writes_ms as well they wait instead (below), and get that 503 past the bound.
  // A write carrying the mirror marker is held too (mirrors are reads: the marker is forged).
  const held = comp.holdBody;
  if (held !== null && !isRead && comp.pauseWritesMs == 0) {
    if (answerHeld(HELD_DETAILS, held)) {
      st.live.writes++;
      unchecked(st.live.floor[FL_WRITES_HELD]++);
      return ACTION_PAUSE;
    }
    internalError("could not send the held-writes response");
    return ACTION_CONTINUE;
  }

  // Paused writes (pause_writes_ms, while the writer is switched, planned or in a failover): held here
  // until a configuration names the new write target (pause.ts); a marked write is held too.
  const statsIdx = unchecked(statsIndexFor[ci]);
  if (!isRead && comp.pauseWritesMs > 0) {
    unchecked(sStats[slot] = statsIdx);
    return pauseWrite(slot, ctx, comp, st, monotonicNs());
  }

  // Target: mirrors (marked) keep going where they were sent and never fan out again; writes go to
  // the write target; reads follow the shadow weight, sticky by key when there is one, unless the
  // floor has ejected the primary (then they go to the shadow, but for probes).
  let flags: u32 = 0;
  let toShadow: bool;
  if (marked) toShadow = isRead;
  else if (!isRead) toShadow = comp.writeToShadow;
  else if (comp.shadowWeightBp == 0) toShadow = false;
  else if (comp.shadowWeightBp >= TOTAL_WEIGHT) toShadow = true;
  else {
    const bucket = haveKey ? stickyBucket(comp.salt, keyP, keyL) : rng.below(TOTAL_WEIGHT);
    toShadow = bucket < comp.shadowWeightBp;
  }
  if (isRead && !toShadow && !marked) {
    const fl = unchecked(floors[statsIdx]);
    if (fl.hot) {
      const d = fl.route();
      if (d == DIVERT) { toShadow = true; flags = F_DIVERTED; }
      else if (d == PROBE) flags = F_PROBE;
    }
  }
  const cluster = toShadow ? comp.shadowCluster : comp.primaryCluster;
  const rhdr = comp.routingHeader;
  if (proxy_replace_header_map_value(MAP_REQUEST_HEADERS, rhdr.ptr, rhdr.len, cluster.ptr, cluster.len) != OK) {
    internalError("could not set the routing header");
    return ACTION_CONTINUE;
  }
  if (marked) return ACTION_CONTINUE; // not live traffic: no stats, no mirror

  unchecked(sStats[slot] = statsIdx);
  if (isRead) { flags |= F_READ; st.live.reads++; } else st.live.writes++;
  if (toShadow) { flags |= F_SHADOW; st.live.routedShadow++; }
  unchecked(sFlags[slot] = flags);

  if (isRead && !toShadow && comp.mirrorFractionPpm > 0 && rng.below(1000000) < comp.mirrorFractionPpm) {
    unchecked(sMirror[slot] = mirror(ctx, comp, st, statsIdx, r));
  }
  return ACTION_CONTINUE;
}
