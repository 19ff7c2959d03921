// Fuzzing the filter: the real build/shadowmesh.wasm in host/PluginHost (2 workers, a manual clock,
// recorded callouts). One input is one event of a long-lived proxy: a whole request (random method,
// path, authority, up to 200 headers with values up to 8 KB, request and response bodies up to 64 KB,
// response status and Envoy flags, and what the shadow does with a mirrored read: a garbage answer,
// a failure, a timeout, or a late answer some inputs later), a reconfiguration (valid, invalid JSON,
// huge arrays), a telemetry tick with random replies, or late shadow answers.
// Properties: the VM never traps, nothing escapes the host (no exception, no non-action return),
// every request is answered (a local response) or continued, and the wasm memory stays flat after
// warm-up. Inputs are drawn with fast-check from a seed; a failure is replayed and shrunk on a fresh
// plugin (fc.check with the same seed), and printed with that seed.
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { ManualClock, PluginHost, RecordingCallouts, LogLevel } from "../../host/index.js";
import type { PendingHttpCall } from "../../host/callouts.js";
import { mulberry32, seededBytes } from "../../host/random.js";

export const WASM_URL = new URL("../../build/shadowmesh.wasm", import.meta.url);

let cachedModule: WebAssembly.Module | undefined;
export function filterWasm(): WebAssembly.Module {
  cachedModule ??= new WebAssembly.Module(readFileSync(WASM_URL));
  return cachedModule;
}

// ------------------------------------------------------------------ arbitraries

const small = <T>(a: fc.Arbitrary<T>, b: fc.Arbitrary<T>) => fc.oneof({ arbitrary: a, weight: 30 }, { arbitrary: b, weight: 1 });

// Large values are drawn as (length, seed, pattern) and filled by a fast PRNG: fast-check's own
// 64 KB arrays cost milliseconds each to generate, ten times what the filter spends on them. They
// still shrink (by length) and repeat exactly from the seed.
const PATTERNS = ["random", "ascii", "zero", "0xff", "utf8", "separators"] as const;
function fill(len: number, seed: number, pattern: (typeof PATTERNS)[number]): Uint8Array {
  const out = new Uint8Array(len);
  const rand = mulberry32(seed);
  switch (pattern) {
    case "zero": break;
    case "0xff": out.fill(0xff); break;
    case "ascii": for (let i = 0; i < len; i++) out[i] = 32 + ((rand() * 95) | 0); break;
    case "separators": for (let i = 0; i < len; i++) out[i] = ";=, \t\r\n:\"\\".charCodeAt((rand() * 11) | 0); break;
    case "utf8": { const chunk = Buffer.from("é€😀\u0000\uFFFD", "utf8"); for (let i = 0; i < len; i++) out[i] = chunk[(i + ((rand() * 3) | 0)) % chunk.length]!; break; }
    default: for (let i = 0; i < len; i += 4) { const v = (rand() * 4294967296) >>> 0; out[i] = v; out[i + 1] = v >>> 8; out[i + 2] = v >>> 16; out[i + 3] = v >>> 24; }
  }
  return out;
}
const bigBytes = (max: number) => fc.tuple(fc.integer({ min: 0, max }), fc.integer(), fc.constantFrom(...PATTERNS)).map(([n, s, p]) => fill(n, s, p));
const bytes = (max: number) => small(fc.uint8Array({ maxLength: 64 }), bigBytes(max));
const str = (max: number) => small(fc.string({ maxLength: 40 }), bigBytes(max).map((b) => Buffer.from(b).toString("latin1")));

const headerName = fc.oneof(
  fc.constantFrom("x-user", "cookie", "x-shadowmesh-mirror", "x-shadowmesh-cluster", "x-read-only", "authorization",
    ":status", ":path", ":method", ":authority", "content-length", "x-request-id", "host", ""),
  fc.stringMatching(/^[a-z0-9-]{1,24}$/),
  fc.string({ maxLength: 40, unit: "binary" }),
);
const headerValue = fc.oneof(
  { arbitrary: fc.constantFrom("", "sid=abc; theme=x", "1", "sid=", ";;;", "true", "orders-primary", "orders-shadow"), weight: 4 },
  { arbitrary: str(8192), weight: 6 },
);
const headers = small(fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 }), fc.array(fc.tuple(headerName, headerValue), { minLength: 100, maxLength: 200 }));
const method = fc.oneof(fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "", "get"), fc.string({ maxLength: 16, unit: "binary" }));
const authority = fc.oneof(
  { arbitrary: fc.constantFrom("orders.svc", "orders.svc:80", "orders.svc:", ":80", "users.svc", "catalog.svc", "dflt", "other", ""), weight: 5 },
  { arbitrary: str(1024), weight: 1 },
);
const path = fc.oneof(
  { arbitrary: fc.constantFrom("/", "/query/a", "/v1/get", "/item/1?x=1", "*"), weight: 3 },
  { arbitrary: str(4096), weight: 2 },
);
const status = fc.oneof(fc.constantFrom("200", "204", "404", "500", "503", "99", "1000", "abc", "", "-1", "2000000000000"), fc.string({ maxLength: 8 }));
// Envoy response flags: the bits the filter reads (UT, UR, UC, LR, UF, ...) and random ones.
const flags = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(1n, 2n, 4n, 8n, 16n, 32n, 64n, 128n, 256n));

const shadowAnswer = fc.oneof(
  fc.constant({ kind: "fail" as const }),
  fc.constant({ kind: "timeout" as const }),
  fc.constant({ kind: "late" as const }),
  fc.record({
    kind: fc.constant("answer" as const),
    headers: fc.oneof(fc.tuple(status).map(([s]) => [[":status", s]] as [string, string][]), fc.array(fc.tuple(headerName, headerValue), { maxLength: 20 })),
    body: bytes(65536),
    trailers: fc.option(fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 })),
  }),
);

const request = fc.record({
  kind: fc.constant("request" as const),
  worker: fc.nat(1),
  method, path, authority, headers,
  requestBody: fc.option(fc.array(bytes(65536), { minLength: 1, maxLength: 3 }), { freq: 3 }),
  requestTrailers: fc.option(fc.array(fc.tuple(headerName, headerValue), { maxLength: 3 }), { freq: 8 }),
  earlyResponse: fc.boolean(),
  status,
  responseHeaders: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
  responseBody: fc.array(bytes(65536), { maxLength: 3 }),
  noResponse: fc.boolean(),
  flags,
  // Mostly milliseconds; sometimes long enough to cross ticks, timeouts and ejections (each second
  // crossed is a telemetry tick on every worker, the costliest thing an input can do).
  latencyMs: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 50 }), weight: 30 }, { arbitrary: fc.double({ min: 0, max: 5_000, noNaN: true }), weight: 3 }, { arbitrary: fc.double({ min: 0, max: 120_000, noNaN: true }), weight: 1 }),
  shadow: shadowAnswer,
  shadowFirst: fc.boolean(),
});

// Plugin configurations: mostly structurally valid components with random values, some invalid JSON, huge arrays.
const clusterName = fc.oneof(fc.constantFrom("orders-primary", "orders-shadow", "d-p", "d-s", "controller", ""), fc.string({ maxLength: 20 }));
const num = fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.double({ noNaN: false }), fc.constantFrom(0, 1, 0.5, 1e9, -1, 4294967296, 1e308));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });
const componentArb = fc.record({
  name: fc.oneof(fc.constantFrom("orders", "users", "dflt"), fc.string({ maxLength: 30 })),
  authorities: small(fc.array(fc.oneof(fc.constantFrom("orders.svc", "users.svc", "dflt", ""), fc.string({ maxLength: 20 })), { maxLength: 4 }),
    fc.array(fc.string({ maxLength: 12 }), { maxLength: 3000, size: "max" })),
  default: maybe(fc.boolean()),
  primary_cluster: clusterName,
  shadow_cluster: clusterName,
  write_target: maybe(fc.constantFrom("primary", "shadow", "x")),
  shadow_weight_bp: maybe(fc.oneof(fc.integer({ min: 0, max: 10_000 }), num)),
  routing_header: maybe(fc.constantFrom("x-shadowmesh-cluster", "", ":authority", "x-r")),
  hold_writes: maybe(fc.oneof(fc.string({ maxLength: 40 }), fc.constant(""))),
  sticky: maybe(fc.oneof(fc.record({ header: fc.constantFrom("x-user", "", "X-User") }), fc.record({ cookie: fc.constantFrom("sid", "", "a=b") }))),
  read_rule: maybe(fc.record({
    methods: maybe(small(fc.array(method, { maxLength: 4 }), fc.array(fc.constantFrom("GET", "X"), { maxLength: 5000, size: "max" }))),
    path_prefixes: maybe(fc.array(fc.oneof(fc.constantFrom("/", "/query", "/v1/"), fc.string({ maxLength: 10 })), { maxLength: 5 })),
    header: maybe(fc.record({ name: fc.constantFrom("x-read-only", "", ":method"), value: maybe(fc.string({ maxLength: 5 })) })),
  })),
  mirror: maybe(fc.record({
    fraction: maybe(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), num)),
    max_in_flight: maybe(fc.oneof(fc.integer({ min: 0, max: 1024 }), num)),
    max_per_second: maybe(fc.oneof(fc.integer({ min: 0, max: 100_000 }), num)),
    timeout_ms: maybe(fc.oneof(fc.integer({ min: 1, max: 60_000 }), num)),
    compare_body_max_bytes: maybe(fc.oneof(fc.integer({ min: 0, max: 100_000 }), num)),
    remove_headers: maybe(fc.array(headerName, { maxLength: 6 })),
  })),
  floor: maybe(fc.record({
    enabled: maybe(fc.boolean()),
    shadow_fit: maybe(fc.boolean()),
    consecutive_failures: maybe(fc.oneof(fc.integer({ min: 1, max: 10 }), num)),
    failure_share: maybe(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), num)),
    min_requests: maybe(fc.oneof(fc.integer({ min: 1, max: 50 }), num)),
    window_ms: maybe(fc.oneof(fc.integer({ min: 100, max: 60_000 }), num)),
    base_ejection_ms: maybe(fc.oneof(fc.integer({ min: 100, max: 60_000 }), num)),
    max_ejection_ms: maybe(fc.oneof(fc.integer({ min: 100, max: 600_000 }), num)),
    probe_fraction: maybe(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), num)),
    probe_successes: maybe(fc.oneof(fc.integer({ min: 1, max: 10 }), num)),
  })),
  observe: maybe(fc.oneof(fc.boolean(), num)),
}, { requiredKeys: ["name", "authorities", "primary_cluster", "shadow_cluster"] });

const extraField = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 });
const configDoc = fc.record({
  telemetry: maybe(fc.record({
    cluster: fc.constantFrom("controller", "", "nope"),
    interval_ms: maybe(fc.oneof(fc.integer({ min: 100, max: 5000 }), num)),
    timeout_ms: maybe(fc.oneof(fc.integer({ min: 10, max: 5000 }), num)),
    token: maybe(fc.oneof(fc.constant("fuzz-token-0123456789"), fc.string({ maxLength: 30 }))),
  })),
  components: small(fc.array(componentArb, { maxLength: 4 }), fc.array(componentArb, { maxLength: 200, size: "max" })),
  mirror_marker_header: maybe(fc.constantFrom("x-shadowmesh-mirror", "", "X-Up", ":path")),
  node_id: maybe(fc.string({ maxLength: 20 })),
  callers: maybe(fc.record({
    from: maybe(fc.oneof(fc.array(fc.constantFrom("peer", "header", "address", "node", "x", ""), { maxLength: 6 }), fc.constant("node"))),
    header: maybe(fc.constantFrom("x-user", "x-caller", "", "X-C", ":path")),
    top_k: maybe(fc.oneof(fc.integer({ min: 1, max: 64 }), num)),
  })),
}).chain((doc) => fc.tuple(fc.constant(doc), fc.option(extraField, { freq: 10 })).map(([d, x]) => (x ? { ...d, ...x } : d)));

const reconfigure = fc.record({
  kind: fc.constant("reconfigure" as const),
  text: fc.oneof(
    { arbitrary: configDoc.map((d) => JSON.stringify(d)), weight: 8 },
    { arbitrary: fc.json({ maxDepth: 4 }), weight: 1 },
    { arbitrary: fc.string({ maxLength: 200, unit: "binary" }), weight: 1 },
    { arbitrary: configDoc.chain((d) => fc.nat().map((cut) => { const s = JSON.stringify(d); return s.slice(0, cut % (s.length + 1)); })), weight: 1 },
    { arbitrary: fc.constantFrom("", "{", "null", "[]", '{"components":[]}', '{"components":{}}', "\u0000", '{"components":[' + "{},".repeat(20000) + "{}]}",
      '{"components":' + "[".repeat(5000) + "]".repeat(5000) + "}", '{"a":' + "1".repeat(400) + "}"), weight: 1 },
  ),
  // Reconfigurations come back to a sane configuration most of the time, so requests keep exercising the filter.
  restore: fc.boolean(),
});

const tick = fc.record({
  kind: fc.constant("tick" as const),
  advanceMs: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 2000 }), weight: 80 }, { arbitrary: fc.constantFrom(1000, 5000, 30_000), weight: 15 }, { arbitrary: fc.constant(600_000), weight: 1 }),
  replies: fc.array(fc.oneof(
    fc.record({ status: fc.constant(0), message: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({ status: fc.integer({ min: 0, max: 20 }), statusMessage: fc.string({ maxLength: 40 }) }),
    fc.constant(null),
  ), { maxLength: 4 }),
});

const lateAnswers = fc.record({ kind: fc.constant("late" as const), answers: fc.array(shadowAnswer, { maxLength: 8 }) });

// A valid configuration that adds one component with a new name (what a controller does when a
// component is added, renamed or removed), then the base configuration again. Rare on purpose (about
// 1 in 2,000 inputs): the filter keeps every name's state forever (see the README's fuzzing notes).
const rename = fc.record({ kind: fc.constant("rename" as const), name: fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/) });

export const filterInput = fc.oneof(
  { arbitrary: request, weight: 1600 },
  { arbitrary: reconfigure, weight: 80 },
  { arbitrary: tick, weight: 160 },
  { arbitrary: lateAnswers, weight: 120 },
  { arbitrary: rename, weight: 1 },
);
export type FilterInput = typeof filterInput extends fc.Arbitrary<infer T> ? T : never;
type Request = Extract<FilterInput, { kind: "request" }>;
type ShadowAnswer = Request["shadow"];

// ------------------------------------------------------------------ the rig

export const BASE_CONFIG = JSON.stringify({
  telemetry: { cluster: "controller", interval_ms: 1000 },
  components: [
    { name: "orders", authorities: ["orders.svc"], primary_cluster: "orders-primary", shadow_cluster: "orders-shadow", shadow_weight_bp: 4000,
      sticky: { cookie: "sid" }, mirror: { fraction: 0.7, max_in_flight: 8, max_per_second: 100000, compare_body_max_bytes: 1024 },
      read_rule: { methods: ["GET", "HEAD"], header: { name: "x-read-only" } }, floor: { shadow_fit: true, consecutive_failures: 3 } },
    { name: "users", authorities: ["users.svc"], primary_cluster: "u-p", shadow_cluster: "u-s", hold_writes: "fuzz", floor: { shadow_fit: true } },
    { name: "dflt", authorities: [], default: true, primary_cluster: "d-p", shadow_cluster: "d-s", sticky: { header: "x-user" }, shadow_weight_bp: 9999, mirror: { fraction: 1 } },
    { name: "catalog", authorities: ["catalog.svc"], primary_cluster: "c-p", observe: true },
  ],
  // Callers from the fuzzed x-user header (many distinct ones: the top-K table evicts), else the node.
  callers: { from: ["header", "node"], header: "x-user", top_k: 4 },
});

export interface FilterFailure { kind: "trap" | "crash"; message: string; input: FilterInput }

const MAX_PENDING = 256;

export class FilterRig {
  readonly clock = new ManualClock();
  readonly callouts = new RecordingCallouts();
  host!: PluginHost;
  private pending: PendingHttpCall[] = [];
  private errorLogs = 0;
  private lastPages = 0;
  /** Inputs run on this rig. */
  inputs = 0;
  /** The largest configuration text offered so far (bytes). */
  maxConfigBytes = 0;
  /** Every time the wasm memory grew: after which input, what it was, and whether a configuration larger than any before caused it. */
  readonly growth: { input: number; kind: string; fromPages: number; toPages: number; configBytes?: number; newLargestConfig: boolean }[] = [];

  static async create(seed: number, workers = 2): Promise<FilterRig> {
    const r = new FilterRig();
    r.host = await PluginHost.create({
      wasm: filterWasm(), workers, pluginConfig: BASE_CONFIG, clock: r.clock, callouts: r.callouts,
      properties: { "node.id": "fuzz-1" }, random: seededBytes(mulberry32(seed)), logLevel: LogLevel.Warn,
      logger: (l) => { if (l.level >= LogLevel.Error && /not a proxy_action_t|wasm VM failed/.test(l.message)) r.errorLogs++; },
    });
    return r;
  }

  /** Wasm pages per worker. */
  pages(): number[] {
    return this.host.vms.map((vm) => (vm.instance.exports.memory as WebAssembly.Memory).buffer.byteLength / 65536);
  }

  failedVm(): string | null {
    for (const vm of this.host.vms) if (vm.failed) return `worker ${vm.index}: ${vm.failure?.message ?? "failed"}`;
    return null;
  }

  /** Runs one input; returns the property it broke, or null. Exceptions escaping the host are crashes. */
  run(x: FilterInput): FilterFailure | null {
    const logsBefore = this.errorLogs;
    try {
      const bad = this.apply(x);
      if (bad) return { kind: "crash", message: bad, input: x };
    } catch (e) {
      const trap = this.failedVm();
      if (trap) return { kind: "trap", message: trap, input: x };
      return { kind: "crash", message: `exception escaped into the host: ${(e as Error).stack ?? e}`, input: x };
    }
    this.inputs++;
    const pages = Math.max(...this.pages());
    if (pages !== this.lastPages) {
      const cfg = x.kind === "reconfigure" ? Buffer.byteLength(x.text) : undefined;
      if (this.lastPages) this.growth.push({ input: this.inputs, kind: x.kind, fromPages: this.lastPages, toPages: pages, ...(cfg !== undefined ? { configBytes: cfg } : {}), newLargestConfig: cfg !== undefined && cfg >= this.maxConfigBytes });
      this.lastPages = pages;
    }
    if (x.kind === "reconfigure") this.maxConfigBytes = Math.max(this.maxConfigBytes, Buffer.byteLength(x.text));
    const trap = this.failedVm();
    if (trap) return { kind: "trap", message: trap, input: x };
    if (this.errorLogs !== logsBefore) return { kind: "crash", message: `the host logged a misbehaving callback`, input: x };
    return null;
  }

  private apply(x: FilterInput): string | null {
    switch (x.kind) {
      case "request": return this.request(x);
      case "reconfigure": {
        this.host.reconfigure(x.text);
        if (x.restore) this.host.reconfigure(BASE_CONFIG);
        return null;
      }
      case "rename": {
        const base = JSON.parse(BASE_CONFIG) as { components: object[] };
        base.components.push({ name: `renamed-${x.name}`, authorities: ["renamed.svc"], primary_cluster: "r-p", shadow_cluster: "r-s" });
        if (!this.host.reconfigure(JSON.stringify(base))) {
          // Past the 256 distinct names a VM keeps stats for, the filter refuses by design (naming the limit).
          const last = this.host.logs.at(-1)?.message ?? "";
          if (!/distinct names this VM keeps stats for/.test(last)) return `a valid configuration adding component renamed-${x.name} was rejected: ${last}`;
        }
        this.host.reconfigure(BASE_CONFIG);
        return null;
      }
      case "tick": {
        this.clock.advance(x.advanceMs);
        const calls = this.callouts.takeGrpc();
        calls.forEach((c, i) => {
          const rep = x.replies[i % Math.max(1, x.replies.length)];
          if (rep === null) return; // never answered: the call times out later
          c.reply(rep ?? { status: 0, message: new Uint8Array(0) });
        });
        this.pending = this.pending.filter((p) => !p.cancelled);
        return null;
      }
      case "late": {
        x.answers.forEach((a) => { const c = this.pending.shift(); if (c) this.answer(c, a); });
        return null;
      }
    }
  }

  private answer(c: PendingHttpCall, a: ShadowAnswer): void {
    if (c.cancelled) return;
    switch (a.kind) {
      case "fail": c.fail(); break;
      case "timeout": this.clock.advance(c.req.timeoutMs + 1); break;
      case "late": if (this.pending.length < MAX_PENDING) this.pending.push(c); else c.fail(); break;
      case "answer": c.respond({ headers: a.headers, body: a.body, ...(a.trailers ? { trailers: a.trailers } : {}) }); break;
    }
  }

  private request(q: Request): string | null {
    const s = this.host.newHttpStream({ worker: q.worker % this.host.vms.length, properties: { "response.flags": q.flags } });
    const hasBody = q.requestBody !== null;
    let paused = s.sendRequestHeaders([[":method", q.method], [":path", q.path], [":authority", q.authority], [":scheme", "http"], ...q.headers], !hasBody && !q.requestTrailers);
    if (paused !== 0 && paused !== 1) return `request headers returned ${paused}`;
    const answerShadow = () => { for (const c of this.callouts.takeHttp()) this.answer(c, q.shadow); };
    if (!q.earlyResponse && !s.finished) {
      if (hasBody) q.requestBody!.forEach((c, i) => s.sendRequestBody(c, i === q.requestBody!.length - 1 && !q.requestTrailers));
      if (q.requestTrailers) s.sendRequestTrailers(q.requestTrailers);
    }
    // Answered or continued: a request the filter holds must have a local response.
    if (s.requestPaused && !s.localResponse) return "the request was paused and neither continued nor answered";
    if (q.shadowFirst) answerShadow();
    this.clock.advance(q.latencyMs);
    if (!q.noResponse && !s.localResponse && !s.finished) {
      s.sendResponseHeaders([[":status", q.status], ...q.responseHeaders], q.responseBody.length === 0);
      q.responseBody.forEach((c, i) => s.sendResponseBody(c, i === q.responseBody.length - 1));
      if (s.responsePaused) return "the response was paused and never continued";
    }
    s.complete();
    if (!q.shadowFirst) answerShadow();
    return null;
  }
}

// ------------------------------------------------------------------ replay and shrink

/** Replays batch `seed` up to `index` on fresh rigs, one input each, and shrinks what fails. */
export async function shrinkFilter(seed: number, index: number): Promise<{ reproduced: boolean; counterexample?: unknown; message?: string }> {
  const details = await fc.check(fc.asyncProperty(filterInput, async (x) => {
    const r = await FilterRig.create(1);
    const f = r.run(x);
    r.host.shutdown();
    if (f) throw new Error(`${f.kind}: ${f.message}`);
  }), { seed, numRuns: index + 1, endOnFailure: false });
  if (!details.failed) return { reproduced: false };
  return { reproduced: true, counterexample: details.counterexample?.[0], message: String((details.errorInstance as Error | undefined)?.message ?? "") };
}
