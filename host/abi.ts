// proxy-wasm ABI v0.2.1 constants, as named in the spec's "Types" section, plus the WASI errno
// values Envoy's host returns.

export const Status = {
  Ok: 0, NotFound: 1, BadArgument: 2, SerializationFailure: 3, ParseFailure: 4,
  InvalidMemoryAccess: 6, Empty: 7, CasMismatch: 8, InternalFailure: 10, Unimplemented: 12,
} as const;

export const LogLevel = { Trace: 0, Debug: 1, Info: 2, Warn: 3, Error: 4, Critical: 5 } as const;
export type LogLevelValue = (typeof LogLevel)[keyof typeof LogLevel];
export const LOG_LEVEL_NAMES = ["trace", "debug", "info", "warn", "error", "critical"] as const;

export const Action = { Continue: 0, Pause: 1 } as const;

export const BufferType = {
  HttpRequestBody: 0, HttpResponseBody: 1, DownstreamData: 2, UpstreamData: 3, HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5, VmConfiguration: 6, PluginConfiguration: 7, ForeignFunctionArguments: 8,
} as const;

export const MapType = {
  HttpRequestHeaders: 0, HttpRequestTrailers: 1, HttpResponseHeaders: 2, HttpResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4, GrpcReceiveTrailingMetadata: 5, HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;

export const StreamType = { HttpRequest: 0, HttpResponse: 1, Downstream: 2, Upstream: 3 } as const;
export const PeerType = { Unknown: 0, Local: 1, Remote: 2 } as const;
export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2 } as const;

export const WasiErrno = { Success: 0, Badf: 8, Fault: 21, Inval: 28, Nosys: 52, Notsup: 58 } as const;
export const WasiClock = { Realtime: 0, Monotonic: 1 } as const;

/** The host functions Envoy (proxy-wasm-cpp-host) provides in the `env` module for ABI v0.2.1. */
export const ENVOY_ENV_IMPORTS = [
  "proxy_log", "proxy_get_log_level", "proxy_get_current_time_nanoseconds", "proxy_set_tick_period_milliseconds",
  "proxy_get_buffer_bytes", "proxy_set_buffer_bytes", "proxy_get_buffer_status",
  "proxy_get_header_map_size", "proxy_get_header_map_pairs", "proxy_set_header_map_pairs",
  "proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_replace_header_map_value",
  "proxy_remove_header_map_value", "proxy_continue_stream", "proxy_close_stream", "proxy_get_status",
  "proxy_send_local_response", "proxy_http_call", "proxy_grpc_call", "proxy_grpc_stream", "proxy_grpc_send",
  "proxy_grpc_cancel", "proxy_grpc_close", "proxy_set_shared_data", "proxy_get_shared_data",
  "proxy_register_shared_queue", "proxy_resolve_shared_queue", "proxy_enqueue_shared_queue",
  "proxy_dequeue_shared_queue", "proxy_define_metric", "proxy_record_metric", "proxy_increment_metric",
  "proxy_get_metric", "proxy_get_property", "proxy_set_property", "proxy_call_foreign_function",
  "proxy_done", "proxy_set_effective_context",
  // ABI v0.1.0 names Envoy still exports next to their v0.2.x replacements.
  "proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache", "proxy_get_configuration",
] as const;

/** The WASI functions Envoy provides (proxy-wasm-cpp-host include/proxy-wasm/exports.h). */
export const ENVOY_WASI_IMPORTS = [
  "fd_write", "fd_read", "fd_close", "fd_seek", "fd_fdstat_get", "fd_prestat_get", "fd_prestat_dir_name",
  "environ_get", "environ_sizes_get", "args_get", "args_sizes_get", "clock_time_get", "random_get",
  "proc_exit", "poll_oneoff", "sched_yield",
] as const;
