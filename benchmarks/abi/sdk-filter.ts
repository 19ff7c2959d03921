// ABI-layer comparison, SDK side: the per-request core of the filter (read :authority, :method
// and the sticky header, set the routing header, read :status, read request.duration in on_log)
// written idiomatically with @gcoredev/proxy-wasm-sdk-as. Benchmark-only; never shipped.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, get_property,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";

let durations: u64 = 0;
let statuses: u64 = 0;

function bucket(s: string): u32 {
  let h: u32 = 2166136261;
  for (let i = 0; i < s.length; i++) h = (h ^ <u32>s.charCodeAt(i)) * 16777619;
  return h % 10000;
}

class BenchRoot extends RootContext {
  createContext(context_id: u32): Context { return new BenchContext(context_id, this); }
}

class BenchContext extends Context {
  constructor(context_id: u32, root: BenchRoot) { super(context_id, root); }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const authority = stream_context.headers.request.get(":authority");
    if (authority == "orders.svc") {
      const isRead = stream_context.headers.request.get(":method") == "GET";
      const shadow = isRead && bucket(stream_context.headers.request.get("x-user")) < 500;
      stream_context.headers.request.replace("x-shadowmesh-cluster", shadow ? "orders-shadow" : "orders-primary");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    statuses += <u64>I32.parseInt(stream_context.headers.response.get(":status"));
    return FilterHeadersStatusValues.Continue;
  }

  onLog(): void {
    const d = get_property("request\0duration");
    if (d.byteLength == 8) durations += load<u64>(changetype<usize>(d));
  }

  onDone(): bool { return true; }
}

registerRootContext((context_id: u32) => new BenchRoot(context_id), "bench");
