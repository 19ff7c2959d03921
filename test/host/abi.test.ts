// The host against the proxy-wasm v0.2.1 spec, driven through the probe module (not our filter).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Action, HeaderMap, LogLevel, Status } from "../../host/index.js";
import { callbacks, hexOf, le64, probe, result, results } from "../support/probe.js";

const GET: [string, string][] = [[":method", "GET"], [":path", "/a?b=1"], [":authority", "svc"], ["x-one", "1"]];

test("lifecycle: root context first, then a stream's callbacks in Envoy's order, then done/log/delete", async () => {
  const { host, clock } = await probe({});
  const s = host.newHttpStream();
  assert.is(s.sendRequestHeaders(GET, false), Action.Continue);
  s.sendRequestBody("abc", true);
  clock.advance(3);
  s.sendResponseHeaders([[":status", "200"]], false);
  s.sendResponseBody("xy", false);
  s.sendResponseTrailers([["grpc-status", "0"]]);
  s.complete();
  assert.equal(callbacks(host), [
    "on_request_headers 4 0", "on_request_body 3 1", "on_response_headers 1 0", "on_response_body 2 0",
    "on_response_trailers 1", "on_done", "on_log", "on_delete",
  ]);
  assert.is(host.worker(0).liveContexts, 1, "only the root context remains");
});

test("lifecycle: on_done returning false defers on_log/on_delete until proxy_done", async () => {
  const { host, clock } = await probe({ return: { on_done: 0 } });
  const s = host.newHttpStream();
  s.sendRequestHeaders(GET, true);
  s.sendResponseHeaders([[":status", "200"]], true);
  s.complete();
  assert.equal(callbacks(host).slice(-1), ["on_done"]);
  host.reconfigure(JSON.stringify({ on_configure: [["set_tick", 10]], on_tick: [["set_effective", s.contextId], ["done"], ["done"]] }));
  clock.advance(10);
  assert.equal(result(host, "on_tick", "set_effective"), [Status.Ok, ""]);
  assert.equal(results(host, "on_tick", "done").map((r) => r[0]), [Status.Ok, Status.NotFound], "a second proxy_done finds nothing pending");
  assert.equal(callbacks(host).slice(-3), ["on_tick", "on_log", "on_delete"]);
});

test("header maps: get, pairs, size, add, replace, remove, set_pairs, and their errors", async () => {
  const { host } = await probe({
    on_request_headers: [
      ["get_map_value", 0, ":path"], ["get_map_value", 0, "missing"], ["get_map_pairs", 0], ["get_map_size", 0],
      ["add_map_value", 0, "x-two", "2"], ["replace_map_value", 0, "x-one", "uno"], ["remove_map_value", 0, "x-absent"],
      ["get_map_value", 2, ":status"], ["get_map_value", 99, "k"], ["get_map_value_oob", 0], ["get_map_value_ret_oob", 0, ":path"],
      ["set_map_pairs_garbage", 0],
    ],
    on_response_headers: [
      ["replace_map_value", 0, "x-late", "1"], ["get_map_value", 0, "x-one"], ["set_map_pairs", 2, [[":status", "201"], ["x-r", "r"]]],
      ["remove_map_value", 2, "x-r"], ["add_map_value", 2, "x-added", "a"],
    ],
  });
  const s = host.newHttpStream();
  s.sendRequestHeaders(GET, true);
  const cb = "on_request_headers";
  assert.equal(result(host, cb, "get_map_value", 0), [Status.Ok, "/a?b=1"]);
  assert.equal(result(host, cb, "get_map_value", 1), [Status.NotFound, ""]);
  assert.equal(result(host, cb, "get_map_pairs"), [Status.Ok, ":method=GET;:path=/a?b=1;:authority=svc;x-one=1"]);
  assert.equal(result(host, cb, "get_map_size"), [Status.Ok, String(new HeaderMap(GET).serializedSize())]);
  assert.equal(result(host, cb, "get_map_value", 2), [Status.BadArgument, ""], "response headers do not exist yet");
  assert.equal(result(host, cb, "get_map_value", 3), [Status.BadArgument, ""], "unknown map type");
  assert.equal(result(host, cb, "get_map_value_oob"), [Status.InvalidMemoryAccess, ""]);
  assert.equal(result(host, cb, "get_map_value_ret_oob"), [Status.InvalidMemoryAccess, ""]);
  assert.equal(result(host, cb, "set_map_pairs_garbage"), [Status.BadArgument, ""]);
  assert.is(s.requestHeadersMap!.get("x-one"), "uno");
  assert.is(s.requestHeadersMap!.get("x-two"), "2");
  assert.ok(s.routeCacheCleared, "changing request headers clears the route cache, as Envoy does");

  s.sendResponseHeaders([[":status", "200"], ["x-r", "0"]], true);
  assert.equal(result(host, "on_response_headers", "replace_map_value"), [Status.BadArgument, ""], "request headers were already sent");
  assert.equal(result(host, "on_response_headers", "get_map_value"), [Status.Ok, "uno"], "but can still be read");
  assert.equal(s.responseHeadersMap!.entries(), [[":status", "201"], ["x-added", "a"]]);
});

test("header maps: non-ASCII names and values survive serialization both ways", async () => {
  const { host } = await probe({
    on_request_headers: [["get_map_pairs", 0], ["get_map_value", 0, "x-name"], ["add_map_value", 0, "x-out", "żółw 🐢"]],
  });
  const s = host.newHttpStream();
  s.sendRequestHeaders([[":method", "GET"], [":path", "/ü"], [":authority", "svc"], ["x-name", "Grüße, 世界"]], true);
  assert.equal(result(host, "on_request_headers", "get_map_pairs"), [Status.Ok, ":method=GET;:path=/ü;:authority=svc;x-name=Grüße, 世界"]);
  assert.equal(result(host, "on_request_headers", "get_map_value"), [Status.Ok, "Grüße, 世界"]);
  assert.is(s.requestHeadersMap!.get("x-out"), "żółw 🐢");
});

test("paused request headers: a body callback that returns Continue continues them too (Envoy's decodeData after StopIteration)", async () => {
  const { host } = await probe({ return: { on_request_headers: 1 } });
  const s = host.newHttpStream();
  const resumed: number[] = [];
  s.onResume = (t) => resumed.push(t);
  assert.is(s.sendRequestHeaders([[":method", "POST"], [":path", "/"], [":authority", "svc"]], false), 1);
  assert.ok(s.requestPaused);
  assert.is(s.sendRequestBody("abc", true), 0);
  assert.not.ok(s.requestPaused, "the headers went on with the body");
  assert.equal(resumed, [0], "reported as the request continuing");
  assert.is(Buffer.concat(s.forwardedRequestBody).toString(), "abc");
});

test("buffers: chunks per callback, Pause buffers until continue, set_buffer edits, availability and bounds", async () => {
  const { host } = await probe({
    on_request_body: [["get_buffer", 0, 0, 100], ["get_buffer_status", 0], ["get_buffer", 7, 0, 10], ["get_buffer", 42, 0, 1],
      ["get_buffer", 0, 1000, 1]],
    on_response_body: [["get_buffer", 1, 0, 100], ["set_buffer", 1, 0, 1, "J"], ["get_buffer", 1, 1, 2]],
    return: { on_request_body: 1 },
  });
  const s = host.newHttpStream();
  s.sendRequestHeaders([[":method", "POST"], [":path", "/"], [":authority", "svc"]], false);
  s.sendRequestBody("hello ", false);
  s.sendRequestBody("world", true);
  assert.equal(results(host, "on_request_body", "get_buffer").map((r) => r.slice(0, 2)).filter((_, i) => i % 4 === 0),
    [[Status.Ok, "hello "], [Status.Ok, "hello world"]], "paused: body_size grows and the buffer accumulates");
  assert.equal(result(host, "on_request_body", "get_buffer_status", 1), [Status.Ok, "11"]);
  assert.equal(result(host, "on_request_body", "get_buffer", 1), [Status.NotFound, ""], "plugin configuration only in on_configure");
  assert.equal(result(host, "on_request_body", "get_buffer", 2), [Status.BadArgument, ""], "unknown buffer type");
  assert.equal(result(host, "on_request_body", "get_buffer", 3), [Status.BadArgument, ""], "start beyond the end");
  assert.is(s.forwardedRequestBody.length, 0, "nothing released while paused");
  s.resume(0);
  assert.is(Buffer.concat(s.forwardedRequestBody).toString(), "hello world");
  s.sendResponseHeaders([[":status", "200"]], false);
  s.sendResponseBody("json", true);
  assert.equal(result(host, "on_response_body", "get_buffer"), [Status.Ok, "json"]);
  assert.equal(result(host, "on_response_body", "get_buffer", 1), [Status.Ok, "so"]);
  assert.is(Buffer.concat(s.forwardedResponseBody).toString(), "Json");
});

test("properties: Envoy attributes encoded as Envoy does, plugin and stream values, set_property", async () => {
  const { host, clock } = await probe({
    on_request_headers: [["get_property", "request.time"], ["get_property", "request.path"], ["get_property", "node.id"],
      ["get_property", "xds.cluster_name"], ["get_property", "no.such.thing"], ["set_property", "my.key", "v1"], ["get_property", "my.key"]],
    on_log: [["get_property", "request.duration"], ["get_property", "response.code"], ["get_property", "response.flags"]],
  }, { properties: { "node.id": "proxy-7" } });
  const start = clock.realtimeNs();
  const s = host.newHttpStream({ properties: { "xds.cluster_name": "orders-primary", "response.flags": 0x4n } });
  s.sendRequestHeaders(GET, true);
  clock.advance(12.5);
  s.sendResponseHeaders([[":status", "504"]], true);
  s.complete();
  const cb = "on_request_headers";
  assert.equal(result(host, cb, "get_property", 0), [Status.Ok, le64(start)]);
  assert.equal(result(host, cb, "get_property", 1), [Status.Ok, hexOf("/a?b=1")]);
  assert.equal(result(host, cb, "get_property", 2), [Status.Ok, hexOf("proxy-7")]);
  assert.equal(result(host, cb, "get_property", 3), [Status.Ok, hexOf("orders-primary")]);
  assert.equal(result(host, cb, "get_property", 4), [Status.NotFound, ""]);
  assert.equal(result(host, cb, "set_property"), [Status.Ok, ""]);
  assert.equal(result(host, cb, "get_property", 5), [Status.Ok, hexOf("v1")]);
  assert.equal(result(host, "on_log", "get_property", 0), [Status.Ok, le64(12_500_000n)]);
  assert.equal(result(host, "on_log", "get_property", 1), [Status.Ok, le64(504n)]);
  assert.equal(result(host, "on_log", "get_property", 2), [Status.Ok, le64(4n)]);
});

test("http_call: validation, token, response callback with headers/body, timeout, and cancellation with the stream", async () => {
  const hdrs = [[":method", "GET"], [":path", "/x"], [":authority", "a"]];
  const { host, clock, callouts } = await probe({
    on_request_headers: [["http_call", "nowhere", hdrs, "", 100], ["http_call", "upstream-a", [[":method", "GET"], [":authority", "a"]], "", 100],
      ["http_call", "upstream-a", hdrs, "body", 100], ["http_call", "upstream-a", hdrs, "", 50], ["http_call_from_root", "upstream-a", hdrs, 1000],
      ["http_call", "upstream-a", hdrs, "", 1000]],
    on_http_call_response: [["get_map_value", 6, ":status"], ["get_buffer", 4, 0, 100], ["get_status"]],
  });
  const s = host.newHttpStream();
  s.sendRequestHeaders(GET, true);
  const calls = results(host, "on_request_headers", "http_call");
  assert.equal(calls[0]![0], Status.BadArgument, "unknown upstream");
  assert.equal(calls[1]![0], Status.BadArgument, "missing :path");
  assert.equal(calls[2]![0], Status.Ok);
  const pending = callouts.takeHttp();
  assert.is(pending.length, 4);
  assert.is(pending[0]!.req.cluster, "upstream-a");
  assert.is(Buffer.from(pending[0]!.req.body).toString(), "body");
  assert.is(pending[0]!.req.headers.get(":path"), "/x");
  pending[0]!.respond({ headers: [[":status", "202"], ["x", "y"]], body: "pong" });
  assert.ok(callbacks(host).includes(`on_http_call_response ctx=${s.contextId} token=${calls[2]![1]} headers=2 body=4 trailers=0`));
  assert.equal(result(host, "on_http_call_response", "get_map_value"), [Status.Ok, "202"]);
  assert.equal(result(host, "on_http_call_response", "get_buffer"), [Status.Ok, "pong"]);
  clock.advance(50);
  assert.ok(callbacks(host).some((c) => c.startsWith(`on_http_call_response ctx=${s.contextId} token=${calls[3]![1]} headers=0`)), "timeout: zero headers");
  assert.ok(pending[1]!.cancelled, "the transport is told to cancel a timed-out call");
  s.sendResponseHeaders([[":status", "200"]], true);
  s.complete();
  assert.ok(pending[3]!.cancelled, "a stream's outstanding call is cancelled when the stream ends");
  pending[3]!.respond({ headers: [[":status", "200"]] });
  pending[2]!.respond({ headers: [[":status", "200"]] });
  const rootId = host.worker(0).rootContextId;
  const rootCall = result(host, "on_request_headers", "http_call_from_root");
  assert.is(rootCall[0], Status.Ok);
  assert.ok(callbacks(host).some((c) => c.startsWith(`on_http_call_response ctx=${rootId} token=${rootCall[1]} headers=1`)), "a root-owned call outlives the stream");
  assert.not.ok(callbacks(host).some((c) => c.includes(`token=${calls[4]![1]} `)), "the cancelled call never calls back");
});

test("grpc_call: success is one on_grpc_receive, failure is on_grpc_close with get_status, unknown upstream is PARSE_FAILURE", async () => {
  const { host, callouts, clock } = await probe({
    on_configure: [["set_tick", 1000]],
    on_tick: [["grpc_call", "controller", "svc.S", "M", "hi", 500], ["grpc_call", "controller", "svc.S", "M", "x", 500],
      ["grpc_call", "bogus", "svc.S", "M", "x", 500], ["grpc_call", "controller", "svc.S", "M", "y", 100], ["grpc_cancel", 999]],
    on_grpc_receive: [["get_buffer", 5, 0, 100]],
    on_grpc_close: [["get_status"]],
  });
  clock.advance(1000);
  const calls = results(host, "on_tick", "grpc_call");
  assert.equal(calls.map((c) => c[0]), [Status.Ok, Status.Ok, Status.ParseFailure, Status.Ok]);
  assert.equal(result(host, "on_tick", "grpc_cancel"), [Status.NotFound, ""]);
  const g = callouts.takeGrpc();
  assert.is(g[0]!.req.service, "svc.S");
  assert.is(Buffer.from(g[0]!.req.message!).toString(), "hi");
  g[0]!.reply({ status: 0, message: Buffer.from("ack") });
  g[1]!.reply({ status: 14, statusMessage: "unavailable" });
  assert.ok(callbacks(host).includes(`on_grpc_receive token=${calls[0]![1]} size=3`));
  assert.equal(result(host, "on_grpc_receive", "get_buffer"), [Status.Ok, "ack"]);
  assert.ok(callbacks(host).includes(`on_grpc_close token=${calls[1]![1]} status=14`));
  assert.equal(result(host, "on_grpc_close", "get_status"), [Status.Ok, "14 unavailable"]);
  clock.advance(100);
  assert.ok(callbacks(host).includes(`on_grpc_close token=${calls[3]![1]} status=4`), "deadline exceeded after the timeout");
  assert.not.ok(callbacks(host).some((c) => c.startsWith(`on_grpc_receive token=${calls[1]![1]}`)));
});

test("ticks: period in ms, changed and disabled from the module", async () => {
  const { host, clock } = await probe({ on_configure: [["set_tick", 100]] });
  clock.advance(350);
  assert.is(callbacks(host).filter((c) => c === "on_tick").length, 3);
  host.reconfigure(JSON.stringify({ on_configure: [["set_tick", 0]] }));
  clock.advance(1000);
  assert.is(callbacks(host).filter((c) => c === "on_tick").length, 3, "period 0 disables the timer");
});

test("ticks: a stream context setting the period sets its root context's", async () => {
  const { host, clock } = await probe({ on_request_headers: [["set_tick", 50]] });
  host.newHttpStream().sendRequestHeaders(GET, true);
  assert.equal(result(host, "on_request_headers", "set_tick"), [Status.Ok, ""]);
  clock.advance(100);
  assert.is(callbacks(host).filter((c) => c === "on_tick").length, 2);
});

test("metrics: counters, gauges, histograms, and their errors", async () => {
  const { host } = await probe({
    on_configure: [["define_metric", 0, "c"], ["define_metric", 1, "g"], ["define_metric", 2, "h"], ["define_metric", 7, "bad"],
      ["inc_metric", 1, 5], ["inc_metric", 1, -1], ["get_metric", 1], ["record_metric", 2, 42], ["inc_metric", 2, -2], ["get_metric", 2],
      ["record_metric", 3, 9], ["get_metric", 3], ["inc_metric", 3, 1], ["inc_metric", 99, 1]],
  });
  const cb = "on_configure";
  assert.equal(results(host, cb, "define_metric").map((r) => r[0]), [Status.Ok, Status.Ok, Status.Ok, Status.BadArgument]);
  assert.equal(results(host, cb, "inc_metric").map((r) => r[0]), [Status.Ok, Status.BadArgument, Status.Ok, Status.BadArgument, Status.NotFound]);
  assert.equal(results(host, cb, "get_metric"), [[Status.Ok, "5"], [Status.Ok, "40"], [Status.BadArgument, ""]]);
  assert.is(host.metricValue("c"), 5);
  assert.is(host.metricValue("g"), 40);
  assert.equal(host.metricSamples("h"), [9]);
});

test("shared data: CAS semantics, visible across workers", async () => {
  const { host, clock } = await probe({
    on_configure: [["set_tick", 10]],
    on_tick: [["get_shared", "k"], ["set_shared", "k", "v1", 0], ["get_shared", "k"], ["set_shared", "k", "v2", 12345],
      ["set_shared", "k", "v3", 1], ["get_shared", "k"]],
  }, { workers: 2 });
  clock.advance(10);
  const w = results(host, "on_tick", "get_shared");
  assert.equal(w[0], [Status.NotFound, ""], "worker 0: nothing yet");
  assert.equal(w[1], [Status.Ok, "v1 cas=1"]);
  assert.equal(results(host, "on_tick", "set_shared").map((r) => r[0]).slice(0, 3), [Status.Ok, Status.CasMismatch, Status.Ok]);
  assert.equal(w[2], [Status.Ok, "v3 cas=2"]);
  assert.equal(w[3], [Status.Ok, "v3 cas=2"], "worker 1 sees worker 0's value");
});

test("shared queues: register, resolve from another worker, enqueue notifies the registrant, dequeue, empty", async () => {
  const { host, clock } = await probe({ on_configure: [["register_queue", "q"], ["set_tick", 10]] }, { workers: 2 });
  const id = results(host, "on_configure", "register_queue")[0]![1];
  assert.equal(results(host, "on_configure", "register_queue")[1], [Status.Ok, id], "same name, same queue");
  host.reconfigure(JSON.stringify({
    on_configure: [["resolve_queue", "", "q"], ["resolve_queue", "", "nope"], ["set_tick", 10]],
    on_tick: [["enqueue", Number(id), "item"], ["enqueue", 777, "x"]],
    on_queue_ready: [["dequeue", Number(id)], ["dequeue", Number(id)], ["dequeue", 777]],
  }));
  assert.equal(result(host, "on_configure", "resolve_queue", 2), [Status.Ok, id]);
  assert.equal(result(host, "on_configure", "resolve_queue", 3), [Status.NotFound, ""]);
  clock.advance(10);
  assert.equal(results(host, "on_tick", "enqueue").map((r) => r[0]), [Status.Ok, Status.NotFound, Status.Ok, Status.NotFound]);
  const ready = host.logs.filter((l) => l.message === `probe cb on_queue_ready queue=${id}`);
  assert.ok(ready.length >= 1 && ready.every((l) => l.worker === 0), "the registering worker is notified");
  const dq = results(host, "on_queue_ready", "dequeue");
  assert.equal(dq.filter((r) => r[0] === Status.Ok), [[Status.Ok, "item"], [Status.Ok, "item"]], "both workers' items arrive once each");
  assert.ok(dq.filter((r) => r[0] === Status.NotFound).length >= 1, "an unknown queue id is NOT_FOUND");
  assert.ok(dq.some((r) => r[0] === Status.Empty), "an empty queue answers EMPTY");
});

test("logging and WASI: levels, bad level, bad pointers, stdout/stderr, clocks, random, environment", async () => {
  const { host, clock } = await probe({
    on_configure: [["log", 3, "warned"], ["log", 9, "x"], ["log_oob"], ["log_level"], ["fd_write", 1, "out line\n"], ["fd_write", 2, "err line\n"],
      ["fd_write", 5, "x"], ["clock", 0], ["clock", 1], ["clock", 7], ["clock_oob"], ["random", 16], ["random", 70000], ["environ_sizes"]],
  }, { env: { A: "1", BB: "22" }, logLevel: LogLevel.Trace });
  const cb = "on_configure";
  assert.equal(results(host, cb, "log").map((r) => r[0]), [Status.Ok, Status.BadArgument]);
  assert.ok(host.logsAt(LogLevel.Warn).includes("warned"));
  assert.equal(result(host, cb, "log_oob"), [Status.InvalidMemoryAccess, ""]);
  assert.equal(result(host, cb, "log_level"), [Status.Ok, String(LogLevel.Trace)]);
  assert.equal(results(host, cb, "fd_write"), [[0, "9"], [0, "9"], [8, ""]]);
  assert.ok(host.logsAt(LogLevel.Info).includes("out line"));
  assert.ok(host.logsAt(LogLevel.Error).includes("err line"));
  assert.equal(results(host, cb, "clock"), [[0, String(clock.realtimeNs())], [0, String(clock.monotonicNs())], [58, ""]]);
  assert.equal(result(host, cb, "clock_oob"), [21, ""]);
  assert.equal(results(host, cb, "random").map((r) => r[0]), [0, 28]);
  assert.equal(result(host, cb, "environ_sizes"), [0, "2 10"], "A=1\\0 and BB=22\\0");
});

test("stream control: local response, effective context errors", async () => {
  const { host } = await probe({
    on_request_headers: [["local_response", 403, "denied_by_probe", "no", [["x-why", "probe"]]], ["set_effective", 4242], ["continue", 9], ["continue", 2]],
  });
  const s = host.newHttpStream();
  s.sendRequestHeaders(GET, true);
  assert.equal(result(host, "on_request_headers", "local_response"), [Status.Ok, ""]);
  assert.is(s.localResponse!.status, 403);
  assert.is(s.localResponse!.details, "denied_by_probe");
  assert.is(Buffer.from(s.localResponse!.body).toString(), "no");
  assert.is(s.localResponse!.headers.get("x-why"), "probe");
  assert.equal(result(host, "on_request_headers", "set_effective"), [Status.BadArgument, ""]);
  assert.equal(results(host, "on_request_headers", "continue").map((r) => r[0]), [Status.BadArgument, Status.Unimplemented]);
});

test("one VM per worker: a trap fails only its worker; fail_open decides what its streams see", async () => {
  for (const failOpen of [false, true]) {
    const { host } = await probe({}, { workers: 2, failOpen });
    host.reconfigure(JSON.stringify({}));
    // Only worker 0 gets the trapping script.
    host.worker(0).configure(Buffer.from(JSON.stringify({ on_request_headers: [["trap"]] })));
    const bad = host.newHttpStream({ worker: 0 });
    bad.sendRequestHeaders(GET, true);
    assert.ok(host.worker(0).failed);
    assert.not.ok(host.worker(1).failed);
    assert.ok(host.logsAt(LogLevel.Critical).some((m) => /wasm VM failed in proxy_on_request_headers/.test(m)));
    assert.is(bad.localResponse?.status, failOpen ? undefined : 503);
    const next = host.newHttpStream({ worker: 0 });
    assert.is(next.sendRequestHeaders(GET, true), Action.Continue, "a failed VM is skipped");
    const good = host.newHttpStream({ worker: 1 });
    good.sendRequestHeaders(GET, true);
    assert.is(good.localResponse, undefined);
  }
});

test("proc_exit ends the VM", async () => {
  const { host } = await probe({ on_request_headers: [["proc_exit", 3]] });
  host.newHttpStream().sendRequestHeaders(GET, true);
  assert.ok(host.worker(0).failed);
  assert.match(host.worker(0).failure!.message, /proc_exit\(3\)/);
});

test("a rejected configuration keeps the previous one; the first one must be accepted", async () => {
  const { host } = await probe({ return: { on_configure: 1 } });
  assert.not.ok(host.reconfigure(JSON.stringify({ return: { on_configure: 0 } })));
  try {
    await probe({ return: { on_configure: 0 } });
    assert.unreachable("create must fail");
  } catch (e) {
    assert.match((e as Error).message, /rejected the configuration/);
  }
});

test.run();
