// Whether the controller tells the proxies to stream their reports (the filter's telemetry.stream):
// as configured (dataplane.telemetryStream), else only when the module the proxies run can be read
// and imports proxy_grpc_stream, because a filter built before the setting refuses a configuration
// with a field it does not know (every later update, migration steps included, would be refused).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { Writable } from "node:stream";
import { telemetryStreams } from "../../controller/main.js";
import { parseConfig, ConfigError } from "../../controller/config.js";
import { silentLogger } from "../../controller/log.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const FILTER = path.join(ROOT, "build/shadowmesh.wasm");
const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-stream-cap-"));
// A valid module that imports only proxy_log: as a filter built before streaming would look.
const OLD = path.join(dir, "old.wasm");
writeFileSync(OLD, Buffer.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // type section: (i32 i32 i32) -> i32
  0x02, 0x11, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x09, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6c, 0x6f, 0x67, 0x00, 0x00, // import env.proxy_log
]));
const dp = (over: Record<string, unknown> = {}) => ({ listener: null, wasm: FILTER, telemetryIntervalMs: 1000, ...over });

test("the module decides: this build streams, an older one (no proxy_grpc_stream import) does not, an unreadable one does not and says so", () => {
  assert.is(telemetryStreams(dp(), null, silentLogger()), true, "build/shadowmesh.wasm imports proxy_grpc_stream");
  assert.is(telemetryStreams(dp({ wasm: OLD }), null, silentLogger()), false);
  const lines: string[] = [];
  const log = pino({ level: "info" }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  assert.is(telemetryStreams(dp({ wasm: path.join(dir, "on-the-proxy-hosts-only.wasm") }), null, log), false);
  assert.ok(lines.some((l) => /telemetry on unary Report calls/.test(l) && /dataplane.telemetryStream/.test(l)), lines.join(""));
  assert.is(telemetryStreams(null, null, silentLogger()), false, "no dataplane block");
});

test("dataplane.telemetryStream overrides the check either way, and a bad value is refused by name", () => {
  assert.is(telemetryStreams(dp({ wasm: OLD, telemetryStream: true }), null, silentLogger()), true);
  assert.is(telemetryStreams(dp({ telemetryStream: false }), null, silentLogger()), false);
  const file = path.join(dir, "controller.yaml");
  const yaml = (v: string) => `listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["api-token-0123456789abcdef"] }
dataplane: { listener: "127.0.0.1:0", wasm: ${FILTER}, telemetryStream: ${v} }
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
`;
  assert.is(parseConfig(yaml("false"), file).dataplane?.telemetryStream, false);
  assert.throws(() => parseConfig(yaml('"yes"'), file), (e: unknown) => e instanceof ConfigError && /controller\.yaml:3:\d+: dataplane\.telemetryStream: /.test((e as Error).message));
});

test.run();
