// Benchmark and accuracy-test entry for the sketch alone (not shipped to Envoy): inserts looped
// inside wasm, merges, and the encoded sketch, so the JS side can compare against exact quantiles.
import { Sketch } from "./sketch";
import { ProtoWriter } from "./proto";
import { MULTIPLIER, RELATIVE_ACCURACY } from "./sketch";
import { TargetStats } from "./stats";

const a = new TargetStats();
const b = new TargetStats();
const proto = new ProtoWriter();
const OUT_CAP: i32 = 64 * 1024;
const out = memory.data(64 * 1024, 16);

/** Scratch for f64 values the JS side writes before calling insertMany. */
export function valuesPtr(n: i32): usize { return heap.alloc(<usize>n << 3); }

export function insertMany(ptr: usize, n: i32, which: i32): void {
  const s = which == 0 ? a.sketch : b.sketch;
  for (let i = 0; i < n; i++) s.add(load<f64>(ptr + (<usize>i << 3)));
}

export function insertOne(v: f64): void { a.sketch.add(v); }

export function mergeBIntoA(): void { a.sketch.merge(b.sketch); }

export function clear(which: i32): void { (which == 0 ? a : b).clear(); }

/** Encodes sketch `which` as a TargetStats message body; returns its length (bytes at outPtr()). */
export function encode(which: i32): i32 {
  proto.reset(out, OUT_CAP);
  (which == 0 ? a : b).encode(proto, 1, MULTIPLIER, RELATIVE_ACCURACY);
  return proto.overflow ? -1 : <i32>proto.length;
}

export function outPtr(): usize { return out; }
