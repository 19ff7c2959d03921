// Drives the probe module (test/wasm/probe.ts): a script of host calls per callback, and helpers
// to read back "probe <callback> <op> -> <status> <result>" lines.
import { readFileSync } from "node:fs";
import { ManualClock, PluginHost, RecordingCallouts, type PluginOptions } from "../../host/index.js";

let mod: WebAssembly.Module | undefined;
export function probeModule(): WebAssembly.Module {
  mod ??= new WebAssembly.Module(readFileSync(new URL("../../build/probe.wasm", import.meta.url)));
  return mod;
}

export type Script = Record<string, unknown>;

export interface ProbeRig { host: PluginHost; clock: ManualClock; callouts: RecordingCallouts }

export async function probe(script: Script, opts: Partial<PluginOptions> = {}): Promise<ProbeRig> {
  const clock = new ManualClock();
  const callouts = new RecordingCallouts(["upstream-a", "controller"]);
  const host = await PluginHost.create({ wasm: probeModule(), pluginConfig: JSON.stringify(script), clock, callouts, ...opts });
  return { host, clock, callouts };
}

/** Every probe line, in order. */
export function lines(host: PluginHost): string[] {
  return host.logs.map((l) => l.message).filter((m) => m.startsWith("probe "));
}

/** Callback lines only ("on_request_headers 3 1", ...). */
export function callbacks(host: PluginHost): string[] {
  return lines(host).filter((l) => l.startsWith("probe cb ")).map((l) => l.slice("probe cb ".length));
}

/** Results of `op` run in `cb`, as [status, result] in call order. */
export function results(host: PluginHost, cb: string, op: string): [number, string][] {
  const prefix = `probe ${cb} ${op} -> `;
  return lines(host).filter((l) => l.startsWith(prefix)).map((l) => {
    const rest = l.slice(prefix.length);
    const sp = rest.indexOf(" ");
    return sp < 0 ? [Number(rest), ""] : [Number(rest.slice(0, sp)), rest.slice(sp + 1)];
  });
}

export function result(host: PluginHost, cb: string, op: string, nth = 0): [number, string] {
  const r = results(host, cb, op)[nth];
  if (!r) throw new Error(`no result for ${cb} ${op} #${nth}; lines:\n${lines(host).join("\n")}`);
  return r;
}

export const le64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64LE(v); return b.toString("hex"); };
export const hexOf = (s: string) => Buffer.from(s).toString("hex");
