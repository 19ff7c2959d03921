// The sketch compiled alone (assembly/sketch-bench.ts): insert/merge inside wasm, encode as the
// filter does, decode on the controller side.
import { readFileSync } from "node:fs";
import { telemetryRoot } from "../../controller/telemetry/report.js";
import { LatencySketch } from "../../controller/telemetry/sketch.js";

export interface SketchWasm {
  memory: WebAssembly.Memory;
  valuesPtr(n: number): number;
  insertMany(ptr: number, n: number, which: number): void;
  insertOne(v: number): void;
  mergeBIntoA(): void;
  clear(which: number): void;
  encode(which: number): number;
  outPtr(): number;
}

export function loadSketchWasm(): SketchWasm {
  const m = new WebAssembly.Module(readFileSync(new URL("../../build/sketch-bench.wasm", import.meta.url)));
  const inst = new WebAssembly.Instance(m, {
    env: {
      abort: () => { throw new Error("abort"); },
      proxy_log: () => 0, proxy_define_metric: () => 0, proxy_increment_metric: () => 0, proxy_record_metric: () => 0,
    },
  });
  (inst.exports._initialize as () => void)(); // runs the module's global initialisers
  return inst.exports as unknown as SketchWasm;
}

/** Copies values into wasm memory (once) and returns the pointer. */
export function stage(w: SketchWasm, values: ArrayLike<number>): number {
  const p = w.valuesPtr(values.length);
  new Float64Array(w.memory.buffer, p, values.length).set(values);
  return p;
}

/** Encoded bytes of sketch `which`: a TargetStats message as field 2 of a ComponentStats. */
export function encoded(w: SketchWasm, which: number): Uint8Array {
  const n = w.encode(which);
  if (n < 0) throw new Error("encode overflow");
  return new Uint8Array(w.memory.buffer, w.outPtr(), n).slice();
}

export function decodeSketch(bytes: Uint8Array): LatencySketch {
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.ComponentStats");
  const msg = T.toObject(T.decode(bytes), { longs: Number }) as { targets: { latency?: Record<string, unknown> }[] };
  const lat = msg.targets[0]?.latency;
  return lat ? LatencySketch.fromMessage(lat) : new LatencySketch();
}
