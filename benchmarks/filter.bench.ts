// Filter benchmark: one request's path through the TypeScript host (context create, request
// headers, response headers, done/log/delete) with the real filter and the system clock, no
// mirror. Reports ns per request, host calls per request, and memory growth over 1M requests, and
// the same with callers recorded (edges.ts) against not, in the same run; and a write with a body
// (the filter's proxy_on_request_body) against the empty module.
import { readFileSync } from "node:fs";
import { HeaderMap, PluginHost, RecordingCallouts, SystemClock } from "../host/index.js";
import { medianNs, perOp, writeResult } from "./harness.js";

// SHADOWMESH_WASM: another build of the filter (e.g. the previous commit's) for a before/after run.
const wasm = readFileSync(process.env.SHADOWMESH_WASM ?? new URL("../build/shadowmesh.wasm", import.meta.url));
const COMPONENTS = [{
  name: "orders", authorities: ["orders.svc"], primary_cluster: "orders-primary", shadow_cluster: "orders-shadow",
  shadow_weight_bp: 500, sticky: { header: "x-user" },
}];
/** The filter with `callers` as given (undefined: callers not recorded); the node has Istio's workload metadata. */
const filterHost = (callers?: Record<string, unknown>) => PluginHost.create({
  wasm, clock: new SystemClock(), callouts: new RecordingCallouts(),
  properties: { "node.id": "bench", "node.metadata.WORKLOAD_NAME": "web-v1", "node.metadata.NAMESPACE": "shop" },
  pluginConfig: JSON.stringify({ components: COMPONENTS, ...(callers ? { callers } : {}) }),
});
const host = await filterHost();
const vm = host.worker(0);
const memory = vm.instance.exports.memory as WebAssembly.Memory;

const REQUEST: [string, string][] = [
  [":method", "GET"], [":path", "/api/items/12345?view=full"], [":authority", "orders.svc"], [":scheme", "http"],
  ["user-agent", "curl/8.5.0"], ["accept", "application/json"], ["x-request-id", "6c1f8f4e-2f0a-4b6a-9d8e-0c1f2a3b4c5d"], ["x-user", "user-42"],
];
const RESPONSE: [string, string][] = [[":status", "200"], ["content-type", "application/json"], ["content-length", "128"]];

function run(n: number, h: PluginHost = host): void {
  for (let i = 0; i < n; i++) {
    const s = h.newHttpStream();
    s.sendRequestHeaders(HeaderMap.fromLowercase(REQUEST), true);
    s.sendResponseHeaders(HeaderMap.fromLowercase(RESPONSE), true);
    s.complete();
  }
}

// The host's own cost with a module that does nothing: the floor any filter pays here.
const WARMUP = 100_000;
run(WARMUP);
const calls0 = vm.hostCalls;
run(10_000);
const hostCallsPerRequest = (vm.hostCalls - calls0) / 10_000;

const N = 200_000;
const perRequest = medianNs(5, () => {
  const t0 = process.hrtime.bigint();
  run(N);
  return Number(process.hrtime.bigint() - t0) / N;
});

// Memory: 1M more requests after warm-up; any memory.grow shows as a larger buffer.
const pagesBefore = memory.buffer.byteLength / 65536;
run(1_000_000);
const pagesAfter = memory.buffer.byteLength / 65536;

// The host path without the filter's work: same stream calls on a module whose callbacks return at once.
const emptyModule = await import("./empty-module.js");
const bare = await PluginHost.create({ wasm: emptyModule.emptyFilterWasm(), clock: new SystemClock() });
function runBare(n: number): void {
  for (let i = 0; i < n; i++) {
    const s = bare.newHttpStream();
    s.sendRequestHeaders(HeaderMap.fromLowercase(REQUEST), true);
    s.sendResponseHeaders(HeaderMap.fromLowercase(RESPONSE), true);
    s.complete();
  }
}
runBare(WARMUP);
const bareRequest = medianNs(5, () => {
  const t0 = process.hrtime.bigint();
  runBare(N);
  return Number(process.hrtime.bigint() - t0) / N;
});

// Recording callers (edges.ts) against not, in the same run, alternating so drift hits both alike:
// the controller's default (the proxy's own workload, cached at configuration: no host call), a header
// source (found in the header loop: no host call) and the peer certificate then the node (one property
// read per request, which finds nothing on plaintext).
const withDefault = await filterHost({ from: ["node"], top_k: 16 });
const withPeer = await filterHost({ from: ["peer", "node"], top_k: 16 });
const withHeader = await filterHost({ from: ["header"], header: "x-user", top_k: 16 });
for (const h of [withDefault, withHeader, withPeer]) run(WARMUP, h);
const callsOf = (h: PluginHost) => { const w = h.worker(0), c0 = w.hostCalls; run(10_000, h); return (w.hostCalls - c0) / 10_000; };
const hostCallsCallers = callsOf(withDefault);
// A collection before each timed run (npm run bench passes --expose-gc): one variant's garbage is not collected in the next one's time.
const timed = (h: PluginHost) => { global.gc?.(); return perOp(N, (n) => run(n, h)); };
const offRuns: number[] = [], onRuns: number[] = [], headerRuns: number[] = [], peerRuns: number[] = [];
// The order rotates each round, so no variant always runs right after the same one.
const variants: [PluginHost, number[]][] = [[host, offRuns], [withDefault, onRuns], [withHeader, headerRuns], [withPeer, peerRuns]];
for (let i = 0; i < 9; i++) for (let k = 0; k < variants.length; k++) { const [h, out] = variants[(i + k) % variants.length]!; out.push(timed(h)); }
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

// A write with a body (one 64-byte chunk): the filter's proxy_on_request_body (exported so a write
// held through a switch keeps its body) is one VM entry more than a module without it, measured
// against the empty module (which has none) on the same requests, alternating, in the same run.
const WRITE: [string, string][] = REQUEST.map(([k, v]) => [k, k === ":method" ? "POST" : v]);
const BODY = Buffer.from(JSON.stringify({ item: 12345, qty: 2, note: "x".repeat(20) }).padEnd(64, " "));
function runWrite(n: number, h: PluginHost): void {
  for (let i = 0; i < n; i++) {
    const s = h.newHttpStream();
    s.sendRequestHeaders(HeaderMap.fromLowercase(WRITE), false);
    s.sendRequestBody(BODY, true);
    s.sendResponseHeaders(HeaderMap.fromLowercase(RESPONSE), true);
    s.complete();
  }
}
runWrite(WARMUP, host); runWrite(WARMUP, bare);
const writeRuns: number[] = [], bareWriteRuns: number[] = [];
for (let i = 0; i < 5; i++) {
  global.gc?.(); writeRuns.push(perOp(N, (n) => runWrite(n, host)));
  global.gc?.(); bareWriteRuns.push(perOp(N, (n) => runWrite(n, bare)));
}
const writeNs = med(writeRuns), bareWriteNs = med(bareWriteRuns);
const callersOff = med(offRuns), callersOn = med(onRuns), callersHeader = med(headerRuns), callersPeer = med(peerRuns);

writeResult("filter", {
  per_request_ns_callers_off: callersOff,
  per_request_ns_callers_on: callersOn,
  per_request_ns_callers_header: callersHeader,
  callers_overhead_ratio: callersOn / callersOff - 1,
  callers_header_overhead_ratio: callersHeader / callersOff - 1,
  per_request_ns_callers_peer: callersPeer,
  callers_peer_overhead_ratio: callersPeer / callersOff - 1,
  host_calls_per_request_callers_on: hostCallsCallers,
  per_request_ns: perRequest,
  host_calls_per_request: hostCallsPerRequest,
  memory_grow_after_warmup: pagesAfter - pagesBefore,
  host_only_per_request_ns: bareRequest,
  filter_share_per_request_ns: perRequest - bareRequest,
  // Machine-independent: the filter's cost in units of the bare host path measured in the same run.
  ratio_to_host_only: perRequest / bareRequest,
  write_with_body_per_request_ns: writeNs,
  write_with_body_host_only_ns: bareWriteNs,
  write_with_body_ratio_to_host_only: writeNs / bareWriteNs,
}, {
  targets: { per_request_ns: "<= 2000", host_calls_per_request: "<= 8", memory_grow_after_warmup: "0", callers_overhead_ratio: "<= 0.05" },
  method: `median of 5 runs of ${N} requests after ${WARMUP} warm-up; each request builds its 8 request and 3 response headers (HeaderMap.fromLowercase, as from Node's parsed headers), creates a stream, runs request headers, response headers and done/log/delete; sticky split at 5%, no mirror; SystemClock. write_with_body: the same request as a POST with one 64-byte body chunk (request headers, request body, response headers, done), against the empty module on the same requests, 5 alternating runs each, medians. memory_grow_after_warmup is in 64 KiB pages over 1,000,000 requests. host_only_per_request_ns: the same path on a module whose callbacks return immediately. callers: the same requests with callers recorded (on: the controller's default source, the proxy's workload; header: the x-user header; peer: the peer certificate then the node, one property read a request), 9 rounds of one run each, the order rotating every round, a collection before each run, medians; the overhead ratio is on/off - 1 in the same run.`,
});
host.shutdown();
bare.shutdown();
withDefault.shutdown();
withHeader.shutdown();
withPeer.shutdown();
