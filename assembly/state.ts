// Plugin-wide state shared by the filter's concerns (one copy per VM, i.e. per Envoy worker): the
// configuration in force, the per-component stats kept by name across reconfigurations, the
// PRNG, the root context id, and fail-open error accounting (internalError).
import { LOG_WARN, logString, monotonicNs } from "./abi";
import { Bytes, Rng } from "./bytes";
import { PluginConfig } from "./config";
import { ComponentStats } from "./stats";

export let config: PluginConfig | null = null;
export let configGeneration: u32 = 0;
export let rootContextId: u32 = 0;
/** Every component ever configured, by first appearance; indices are stable (stream and mirror tables keep them). */
export const statsList = new Array<ComponentStats>();
/** statsFor[i] = stats of config.components[i]; statsIndexFor[i] = its index in statsList. */
export let statsFor = new Array<ComponentStats>();
export let statsIndexFor = new Array<i32>();
export const rng = new Rng();
export let workerId: u64 = 0;
export let nodeId: Bytes = new Bytes("");

/** Internal errors since the last tick (telemetry.ts folds them into reports and the Envoy stat). */
export let errorsLive: u64 = 0;
let lastErrorLogNs: u64 = 0;

export function setRootContext(root: u32): void { rootContextId = root; }

export function internalError(what: string): void {
  errorsLive++;
  // At most one log line per second: an error storm must not become a log storm.
  const now = monotonicNs();
  if (now - lastErrorLogNs >= 1000000000 || lastErrorLogNs == 0) {
    lastErrorLogNs = now;
    logString(LOG_WARN, "shadowmesh: internal error, request left untouched: " + what);
  }
}

/** Returns the errors counted since the previous call and starts over. */
export function takeErrors(): u64 {
  const e = errorsLive;
  errorsLive = 0;
  return e;
}

export function setWorkerId(id: u64): void { workerId = id; }
export function setNodeId(id: Bytes): void { nodeId = id; }

/** Puts an accepted configuration in force, with its components' stats (same order as cfg.components). */
export function install(cfg: PluginConfig, mapped: Array<ComponentStats>, mappedIndex: Array<i32>): void {
  config = cfg;
  statsFor = mapped;
  statsIndexFor = mappedIndex;
  configGeneration++;
}
