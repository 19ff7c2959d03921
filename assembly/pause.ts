// Writes paused while the writer is switched (pause_writes_ms): while the controller fences the old
// writer, promotes the new one and moves the write target (a planned switch, or a failover, which
// also sets hold_writes), a write is held in the proxy (request headers StopIteration, its body
// buffered) instead of reaching a writer that refuses it. A new configuration without the pause
// continues each held write to the write target it names, or answers it 503 if it holds writes
// without pausing them; a write held longer than pause_writes_ms, or past MAX_PAUSED, is answered 503
// (with hold_writes' reason when set). Released from proxy_on_configure and from the tick, each stream
// made current with proxy_set_effective_context. The request path pays only when a pause is
// configured, but for one VM entry per request body chunk (proxy_on_request_body).
import {
  ACTION_CONTINUE, ACTION_PAUSE, MAP_REQUEST_HEADERS, OK, proxy_continue_stream, proxy_replace_header_map_value,
  proxy_set_effective_context, sendLocalResponse, serializePairs,
} from "./abi";
import { Bytes } from "./bytes";
import { ComponentConfig, PluginConfig } from "./config";
import { F_HELD, F_SHADOW, sFlags, sStats, slotOf } from "./record";
import { ComponentStats, FL_WRITES_HELD, FL_WRITES_PAUSED } from "./stats";
import { config, internalError, statsIndexFor, statsList } from "./state";

/** Writes one VM (one Envoy worker) holds at most; past it a write is answered 503 at once. */
export const MAX_PAUSED: i32 = 1024;

const STREAM_REQUEST: i32 = 0;
const pCtx = new StaticArray<u32>(MAX_PAUSED);
const pDeadline = new StaticArray<u64>(MAX_PAUSED);
/** Held writes (entries whose stream ended meanwhile are dropped at the next release). */
export let pausedCount: i32 = 0;

// A held write's 503: its header map, and the access-log details (bodies are per component or cause).
const HELD_HEADERS = serializePairs(["content-type", "x-shadowmesh-held"], ["application/json", "writes"]);
export const HELD_DETAILS = new Bytes("shadowmesh_writes_held");
const PAUSED_DETAILS = new Bytes("shadowmesh_writes_paused");

/** Answers the current stream's write with the held-writes 503 (JSON `body`); false when the host refused. */
export function answerHeld(details: Bytes, body: Bytes): bool {
  return sendLocalResponse(503, details.ptr, details.len, body.ptr, body.len, changetype<usize>(HELD_HEADERS), <usize>HELD_HEADERS.byteLength) == OK;
}
const FULL_BODY = new Bytes("{\"error\":\"shadowmesh: writes held: too many writes are waiting for the write switch\"}");
const GONE_BODY = new Bytes("{\"error\":\"shadowmesh: writes held: the component is no longer configured\"}");

/**
 * Holds the write on `slot` (its stats index already set): ACTION_PAUSE, or a 503 sent when MAX_PAUSED
 * writes wait already. The write counts as a write now; its target when it is continued.
 */
export function pauseWrite(slot: i32, ctx: u32, comp: ComponentConfig, st: ComponentStats, now: u64): i32 {
  st.live.writes++;
  if (pausedCount >= MAX_PAUSED) {
    unchecked(st.live.floor[FL_WRITES_HELD]++);
    unchecked(sStats[slot] = -1); // answered here: not a response of either side
    if (!answerHeld(PAUSED_DETAILS, FULL_BODY)) {
      internalError("could not answer a write past the paused-writes limit");
      return ACTION_CONTINUE;
    }
    return ACTION_PAUSE;
  }
  unchecked(st.live.floor[FL_WRITES_PAUSED]++);
  unchecked(sFlags[slot] = F_HELD);
  unchecked(pCtx[pausedCount] = ctx);
  unchecked(pDeadline[pausedCount] = now + <u64>comp.pauseWritesMs * 1000000);
  pausedCount++;
  return ACTION_PAUSE;
}

/** proxy_on_request_body: a held write keeps its body buffered (Continue here would continue the headers too, in Envoy). */
export function onRequestBody(ctx: u32): i32 {
  const slot = slotOf(ctx);
  return slot >= 0 && (unchecked(sFlags[slot]) & F_HELD) != 0 ? ACTION_PAUSE : ACTION_CONTINUE;
}

/** Whether a configured component pauses writes now (then the tick comes every FLOOR_TICK_MS). */
export function anyPause(cfg: PluginConfig): bool {
  for (let i = 0, n = cfg.components.length; i < n; i++) if (unchecked(cfg.components[i]).pauseWritesMs > 0) return true;
  return false;
}

function componentFor(si: i32): ComponentConfig | null {
  const cfg = config;
  if (cfg === null) return null;
  for (let i = 0, n = cfg.components.length; i < n; i++) if (unchecked(statsIndexFor[i]) == si) return unchecked(cfg.components[i]);
  return null;
}

/**
 * Settles the held writes the configuration in force no longer pauses, and those past their deadline.
 * Called from proxy_on_configure and the tick of root context `root`; the effective context goes back
 * to it afterwards (the tick's telemetry callouts belong to it).
 */
export function releasePaused(root: u32, now: u64): void {
  if (pausedCount == 0) return;
  let kept = 0;
  let switched = false;
  for (let i = 0, n = pausedCount; i < n; i++) {
    const ctx = unchecked(pCtx[i]);
    const slot = slotOf(ctx);
    if (slot < 0 || (unchecked(sFlags[slot]) & F_HELD) == 0) continue; // the client went away
    const si = unchecked(sStats[slot]);
    const comp = componentFor(si);
    const late = now >= unchecked(pDeadline[i]);
    if (comp !== null && comp.pauseWritesMs > 0 && !late) {
      unchecked(pCtx[kept] = ctx);
      unchecked(pDeadline[kept] = unchecked(pDeadline[i]));
      kept++;
      continue;
    }
    if (proxy_set_effective_context(ctx) != OK) { unchecked(sFlags[slot] = 0); internalError("a paused write's stream is gone"); continue; }
    switched = true;
    const st = unchecked(statsList[si]);
    if (comp !== null && comp.holdBody === null && comp.pauseWritesMs == 0) {
      // The switch is done: on to the write target this configuration names.
      const cluster = comp.writeToShadow ? comp.shadowCluster : comp.primaryCluster;
      const rh = comp.routingHeader;
      let flags: u32 = 0;
      if (comp.writeToShadow) { flags = F_SHADOW; st.live.routedShadow++; }
      unchecked(sFlags[slot] = flags);
      if (proxy_replace_header_map_value(MAP_REQUEST_HEADERS, rh.ptr, rh.len, cluster.ptr, cluster.len) != OK) internalError("could not set a paused write's routing header");
      if (proxy_continue_stream(STREAM_REQUEST) != OK) internalError("could not continue a paused write");
      continue;
    }
    // Held too long, writes held (hold_writes) without a pause now, or the component gone: answered 503, never forwarded.
    unchecked(sFlags[slot] = 0);
    unchecked(sStats[slot] = -1);
    unchecked(st.live.floor[FL_WRITES_HELD]++);
    const body = comp === null ? GONE_BODY : comp.holdBody !== null ? comp.holdBody! : comp.pauseBody;
    if (!answerHeld(PAUSED_DETAILS, body)) internalError("could not answer a paused write");
  }
  pausedCount = kept;
  if (switched) proxy_set_effective_context(root);
}
