// Shared fixtures for filter tests: the compiled module, a baseline configuration, and a plugin
// wired to a manual clock and recording callouts.
import { readFileSync, existsSync } from "node:fs";
import { ManualClock, PluginHost, RecordingCallouts, type PluginOptions } from "../../host/index.js";
import { mulberry32, seededBytes } from "../../host/random.js";

export const WASM_PATH = new URL("../../build/shadowmesh.wasm", import.meta.url);
export const DEBUG_WASM_PATH = new URL("../../build/shadowmesh.debug.wasm", import.meta.url);

const cached = new Map<string, WebAssembly.Module>();
function load(url: URL): WebAssembly.Module {
  let m = cached.get(url.href);
  if (!m) {
    if (!existsSync(url)) throw new Error(`${url.pathname} is missing: run \`npm run build\``);
    m = new WebAssembly.Module(readFileSync(url));
    cached.set(url.href, m);
  }
  return m;
}
/** The optimized filter (what Envoy runs). */
export function filterModule(): WebAssembly.Module { return load(WASM_PATH); }
/** The debug build: assertions and bounds checks on. */
export function debugFilterModule(): WebAssembly.Module { return load(DEBUG_WASM_PATH); }

export type Component = Record<string, unknown>;

export function component(over: Component = {}): Component {
  return {
    name: "orders",
    authorities: ["orders.svc"],
    primary_cluster: "orders-primary",
    shadow_cluster: "orders-shadow",
    ...over,
  };
}

export function config(components: Component[] = [component()], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ telemetry: { cluster: "controller", interval_ms: 1000 }, components, ...extra });
}

export interface Rig {
  host: PluginHost;
  clock: ManualClock;
  callouts: RecordingCallouts;
}

/** A plugin on the optimized filter; WASI random_get is seeded (`seed`, default 1) so runs repeat exactly. */
export async function rig(cfg: string = config(), opts: Partial<PluginOptions> & { seed?: number } = {}): Promise<Rig> {
  const clock = new ManualClock();
  const callouts = new RecordingCallouts();
  const { seed, ...rest } = opts;
  const host = await PluginHost.create({
    wasm: filterModule(), pluginConfig: cfg, clock, callouts,
    properties: { "node.id": "sidecar-1" }, random: seededBytes(mulberry32(seed ?? 1)), ...rest,
  });
  return { host, clock, callouts };
}

export function get(path = "/item/1", extra: [string, string][] = [], authority = "orders.svc"): [string, string][] {
  return [[":method", "GET"], [":path", path], [":authority", authority], [":scheme", "http"], ...extra];
}

export function post(path = "/item/1", extra: [string, string][] = [], authority = "orders.svc"): [string, string][] {
  return [[":method", "POST"], [":path", path], [":authority", authority], [":scheme", "http"], ...extra];
}

/** Runs one full request: headers (no body), a response with `status` and `body`, then completes it after `latencyMs`. */
export function roundTrip(r: Rig, headers: [string, string][], opts: { status?: number; body?: string; latencyMs?: number; worker?: number } = {}) {
  const s = r.host.newHttpStream({ worker: opts.worker });
  s.sendRequestHeaders(headers, true);
  r.clock.advance(opts.latencyMs ?? 5);
  s.sendResponseHeaders([[":status", String(opts.status ?? 200)]], opts.body === undefined);
  if (opts.body !== undefined) s.sendResponseBody(opts.body, true);
  s.complete();
  return s;
}

import { decodeReport, mergeComponents, type ComponentTotals, type DecodedReport } from "../../controller/telemetry/report.js";

/** Advances to the next telemetry tick, acknowledges (or fails) every report sent, and returns them decoded. */
export function tickReports(r: Rig, opts: { ok?: boolean; intervalMs?: number } = {}): DecodedReport[] {
  r.clock.advance(opts.intervalMs ?? 1000);
  const calls = r.callouts.takeGrpc();
  const out: DecodedReport[] = [];
  for (const c of calls) {
    if (c.req.service !== "shadowmesh.telemetry.v1.Telemetry" || c.req.method !== "Report") continue;
    out.push(decodeReport(c.req.message!));
    if (opts.ok === false) c.reply({ status: 14, statusMessage: "unavailable" });
    else c.reply({ status: 0, message: new Uint8Array(0) });
  }
  return out;
}

/** The totals across reports (all workers). */
export function totals(reports: DecodedReport[]): Map<string, ComponentTotals> {
  const acc = new Map<string, ComponentTotals>();
  for (const rep of reports) mergeComponents(acc, rep.components);
  return acc;
}

/** Envoy stat value for component `c` (the filter flushes them on tick). */
export function stat(r: Rig, c: string, name: string): number {
  return r.host.metricValue(`shadowmesh.${c}.${name}`) ?? NaN;
}
