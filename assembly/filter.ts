// The shadowmesh HTTP filter's entry points, wired by index.ts (which resets the per-callback arena
// on every entry): VM start and configuration here; the request path in routing.ts, the stream
// table and recording in record.ts, mirroring and consistency in mirror.ts, the failover floor in
// floor.ts, writes paused while the writer is switched in pause.ts, reports in telemetry.ts, callers
// in edges.ts, plugin-wide state in state.ts. Anything unexpected (a host call failing, a table full,
// a malformed map) leaves the request untouched and counts an error.
import {
  BUFFER_PLUGIN_CONFIGURATION, LOG_ERROR, LOG_INFO, OK, arenaAlloc, getBufferBytes, getProperty, logString,
  monotonicNs, randomU64, resultLen, resultPtr,
} from "./abi";
import { Bytes } from "./bytes";
import { MAX_COMPONENTS, configError, parseConfig } from "./config";
import { ComponentStats } from "./stats";
import { configureFloors } from "./floor";
import { configGeneration, install, nodeId, rng, rootContextId, setNodeId, setWorkerId, statsList } from "./state";
import { EdgeTable } from "./edges";
import { initTelemetry, setTickPeriod, telemetryReconfigured } from "./telemetry";
import { releasePaused } from "./pause";

/** Distinct component names one VM keeps stats for over its life (four configurations' worth). */
export const MAX_NAMES: i32 = 4 * MAX_COMPONENTS;

export { setRootContext } from "./state";
export { onRequestHeaders } from "./routing";
export { onResponseHeaders, onResponseBody, onLog } from "./record";
export { onHttpCallResponse } from "./mirror";
export { onTick, onGrpcReceive, onGrpcClose } from "./telemetry";
export { onRequestBody } from "./pause";

const P_NODE_ID = new Bytes("node\0id");
const P_WORKLOAD = new Bytes("node\0metadata\0WORKLOAD_NAME");
const P_NAMESPACE = new Bytes("node\0metadata\0NAMESPACE");

/** This proxy's workload as a caller: Istio's node metadata (WORKLOAD_NAME.NAMESPACE), else the node id. */
function nodeWorkload(): Bytes | null {
  if (getProperty(P_WORKLOAD.ptr, P_WORKLOAD.len) == OK && resultLen > 0) {
    let name = String.UTF8.decodeUnsafe(resultPtr, resultLen);
    if (getProperty(P_NAMESPACE.ptr, P_NAMESPACE.len) == OK && resultLen > 0) name += "." + String.UTF8.decodeUnsafe(resultPtr, resultLen);
    return new Bytes(name);
  }
  return nodeId.len > 0 ? nodeId : null;
}

export function onVmStart(): bool {
  rng.seed(randomU64() ^ monotonicNs());
  setWorkerId(rng.next());
  initTelemetry();
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
  // Stats are kept per name for the VM's life (a reconfiguration loses no counts), so the number of
  // distinct names is bounded: past it a configuration is refused (the previous one stays) instead of
  // memory growing by ~100 KB per name for good (found by npm run fuzz).
  let fresh = 0;
  for (let i = 0; i < cfg.components.length; i++) {
    let known = false;
    for (let j = 0; j < statsList.length; j++) if (statsList[j].name == cfg.components[i].name) { known = true; break; }
    if (!known) fresh++;
  }
  if (statsList.length + fresh > MAX_NAMES) {
    logString(LOG_ERROR, "shadowmesh: rejected plugin configuration: components: " + fresh.toString() + " new component names would pass the limit of " + MAX_NAMES.toString() +
      " distinct names this VM keeps stats for (" + statsList.length.toString() + " kept); restart the proxy to start over; keeping the previous one");
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
    if (cfg.callers !== null && st.edges === null) st.edges = new EdgeTable();
    mapped.push(st);
    mappedIndex.push(statsList.indexOf(st));
  }
  if (cfg.nodeId.length > 0) setNodeId(new Bytes(cfg.nodeId));
  else if (getProperty(P_NODE_ID.ptr, P_NODE_ID.len) == OK && resultLen > 0) {
    setNodeId(new Bytes(String.UTF8.decodeUnsafe(resultPtr, resultLen)));
  }
  if (cfg.callers !== null) cfg.callers!.node = nodeWorkload();
  install(cfg, mapped, mappedIndex);
  telemetryReconfigured(rootContextId);
  configureFloors(cfg, mappedIndex);
  const now = monotonicNs();
  setTickPeriod(cfg, now);
  releasePaused(rootContextId, now); // writes paused for a switch this configuration ends go on to its write target
  logString(LOG_INFO, "shadowmesh: configuration accepted (" + cfg.components.length.toString() + " components, generation " + configGeneration.toString() + ")");
  return true;
}

// Used by index.ts for an allocator that cannot fail silently.
export function allocate(size: usize): usize { return arenaAlloc(size); }
