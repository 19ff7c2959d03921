// Sketch benchmark: our insert inside wasm vs @datadog/sketches-js and hdr-histogram-js at the
// same accuracy (1% relative / 2 significant digits), merge cost, and the size of one telemetry
// report after 1,000 realistic latencies (measured through the filter in the host).
import { DDSketch } from "@datadog/sketches-js";
import * as hdr from "hdr-histogram-js";
import { loadSketchWasm, stage, encoded } from "../test/support/sketch-wasm.js";
import { distributions, mulberry32 } from "../test/support/random.js";
import { medianNs, perOp, writeResult } from "./harness.js";
import { rig, get, component, config } from "../test/support/filter.js";

const N = 1_000_000;
const RUNS = 7;
const rand = mulberry32(1);
const values = Float64Array.from({ length: N }, () => distributions.lognormal!(rand));
const ints = Float64Array.from(values, (v) => Math.max(1, Math.round(v)));

// Ours: a loop of inserts inside wasm (how the filter calls it), values staged in linear memory.
const w = loadSketchWasm();
const ptr = stage(w, values);
w.insertMany(ptr, N, 0); // warm-up
const ours = medianNs(RUNS, () => { w.clear(0); return perOp(N, (n) => w.insertMany(ptr, n, 0)); });
// One JS->wasm crossing per insert, for reference.
const oursPerCall = medianNs(RUNS, () => { w.clear(0); return perOp(N, (n) => { for (let i = 0; i < n; i++) w.insertOne(values[i]!); }); });

const datadog = medianNs(RUNS, () => {
  const s = new DDSketch({ relativeAccuracy: 0.01 });
  return perOp(N, (n) => { for (let i = 0; i < n; i++) s.accept(values[i]!); });
});

const hdrJs = medianNs(RUNS, () => {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 32, numberOfSignificantValueDigits: 2 });
  return perOp(N, (n) => { for (let i = 0; i < n; i++) h.recordValue(ints[i]!); });
});
await hdr.initWebAssembly();
const hdrWasm = medianNs(RUNS, () => {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2 ** 32, numberOfSignificantValueDigits: 2, useWebAssembly: true });
  const t = perOp(N, (n) => { for (let i = 0; i < n; i++) h.recordValue(ints[i]!); });
  h.destroy();
  return t;
});

// Merge: a sketch holding 1,000 realistic latencies into an accumulator (what the controller and
// the filter's pending/sent buffers do), inside wasm.
w.clear(0); w.clear(1);
w.insertMany(ptr, 1000, 1);
const MERGES = 200_000;
const merge = medianNs(RUNS, () => perOp(MERGES, (n) => { for (let i = 0; i < n; i++) w.mergeBIntoA(); }));
const occupied = (() => { const b = encoded(w, 1); return b.length; })();

// One report after 1,000 realistic requests through the filter (one component, primary target).
const r = await rig(config([component()]));
for (let i = 0; i < 1000; i++) {
  const s = r.host.newHttpStream();
  s.sendRequestHeaders(get(), true);
  r.clock.advance(values[i]! / 1000);
  s.sendResponseHeaders([[":status", "200"]], true);
  s.complete();
  if (i === 998) r.callouts.takeGrpc().forEach((c) => c.reply({ status: 0, message: new Uint8Array(0) }));
}
r.callouts.takeGrpc().forEach((c) => c.reply({ status: 0, message: new Uint8Array(0) }));
r.clock.advance(1000 - (Math.floor(r.clock.monotonicNs() / 1e6) % 1000));
const report = r.callouts.takeGrpc().at(-1)!;
const deltaBytes = report.req.message!.length;

writeResult("sketch", {
  insert_ns: ours,
  insert_ns_js_call_per_insert: oursPerCall,
  insert_ns_datadog: datadog,
  insert_ns_hdr: hdrJs,
  insert_ns_hdr_wasm: hdrWasm,
  ratio_datadog_over_ours: datadog / ours,
  ratio_hdr_over_ours: hdrJs / ours,
  merge_ns: merge,
  delta_bytes_1k: deltaBytes,
  encoded_target_bytes_1k: occupied,
}, {
  targets: { ratio_datadog_over_ours: ">= 5", merge_ns: "< 2000", delta_bytes_1k: "< 1024" },
  method: `median of ${RUNS} runs; ${N} lognormal latencies (median 5 ms, sigma 1); accuracy 1% (DDSketch relativeAccuracy 0.01, HDR 2 significant digits, 1 us..2^32 us)`,
});
