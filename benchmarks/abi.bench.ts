// ABI layer: the same per-request core (benchmarks/abi/*-filter.ts) on @gcoredev/proxy-wasm-sdk-as
// and on our own layer (assembly/abi.ts), through the same host, in the same run. This is the
// measurement behind using our own layer instead of the SDK.
import { readFileSync } from "node:fs";
import { HeaderMap, PluginHost, RecordingCallouts, SystemClock, checkModuleContract } from "../host/index.js";
import { medianNs, writeResult } from "./harness.js";

const REQUEST: [string, string][] = [
  [":method", "GET"], [":path", "/api/items/12345?view=full"], [":authority", "orders.svc"], [":scheme", "http"],
  ["user-agent", "curl/8.5.0"], ["accept", "application/json"], ["x-request-id", "6c1f8f4e-2f0a-4b6a-9d8e-0c1f2a3b4c5d"], ["x-user", "user-42"],
];
const RESPONSE: [string, string][] = [[":status", "200"], ["content-type", "application/json"], ["content-length", "128"]];

async function measure(file: string) {
  const wasm = readFileSync(new URL(`../build/${file}`, import.meta.url));
  checkModuleContract(new WebAssembly.Module(wasm));
  const host = await PluginHost.create({ wasm, clock: new SystemClock(), callouts: new RecordingCallouts() });
  const vm = host.worker(0);
  const memory = vm.instance.exports.memory as WebAssembly.Memory;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = host.newHttpStream();
      s.sendRequestHeaders(HeaderMap.fromLowercase(REQUEST), true);
      s.sendResponseHeaders(HeaderMap.fromLowercase(RESPONSE), true);
      s.complete();
      if (s.requestHeadersMap!.get("x-shadowmesh-cluster") === undefined) throw new Error(`${file}: no routing header`);
    }
  };
  run(100_000);
  const c0 = vm.hostCalls;
  run(10_000);
  const calls = (vm.hostCalls - c0) / 10_000;
  const ns = medianNs(5, () => { const t0 = process.hrtime.bigint(); run(200_000); return Number(process.hrtime.bigint() - t0) / 200_000; });
  const pages0 = memory.buffer.byteLength / 65536;
  run(300_000);
  const grown = memory.buffer.byteLength / 65536 - pages0;
  host.shutdown();
  return { ns, calls, grown, size: wasm.length };
}

const own = await measure("abi-own.wasm");
const sdk = await measure("abi-sdk.wasm");
writeResult("abi", {
  own_per_request_ns: own.ns,
  sdk_per_request_ns: sdk.ns,
  ratio_sdk_over_own: sdk.ns / own.ns,
  own_host_calls_per_request: own.calls,
  sdk_host_calls_per_request: sdk.calls,
  own_memory_grow_pages_300k: own.grown,
  sdk_memory_grow_pages_300k: sdk.grown,
  own_module_bytes: own.size,
  sdk_module_bytes: sdk.size,
}, {
  method: "median of 5 runs of 200,000 requests after 100,000 warm-up, each: 8 request headers, 3 response headers; the module reads :authority, :method and x-user, sets the routing header, reads :status, reads request.duration in on_log. Same host, same run. Memory growth over 300,000 more requests.",
});
