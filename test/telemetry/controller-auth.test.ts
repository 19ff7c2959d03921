// The controller's `telemetry` block: tokens and tokenEnv checked (length, characters, duplicates,
// an unset variable) with the field named; the controller process then requires a token on its
// telemetry port, gives the first token to the proxies in the filter's configuration (ECDS), and
// warns at startup when the block is absent (reports still accepted, as before).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { Writable } from "node:stream";
import { parseConfig, ConfigError } from "../../controller/config.js";
import { startController } from "../../controller/main.js";
import { telemetryRoot } from "../../controller/telemetry/report.js";
import { silentLogger } from "../../controller/log.js";

const API = "api-token-0123456789abcdef";
const TEL = "telemetry-token-0123456789";
const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-telauth-"));
const file = path.join(dir, "controller.yaml");

const yaml = (telemetry: string) => `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["${API}"] }
${telemetry}
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
`;

test("the telemetry block: tokens, tokenEnv and tls parsed; bad tokens refused with the field named", () => {
  const c = parseConfig(yaml(`telemetry: { tokens: ["${TEL}", "second-token-abcdefghij"], tokenEnv: TEL_TOKEN, tls: { cert: a.crt, key: a.key, clientCa: ca.crt } }`), file, { TEL_TOKEN: "from-the-env-0123456789" });
  assert.equal(c.telemetry.tokens, [TEL, "second-token-abcdefghij", "from-the-env-0123456789"]);
  assert.equal(c.telemetry.tls, { cert: path.join(dir, "a.crt"), key: path.join(dir, "a.key"), clientCa: path.join(dir, "ca.crt") });
  assert.equal(parseConfig(yaml(""), file).telemetry, { tokens: [], tls: null }, "absent: no authentication");
  for (const [block, env, re] of [
    [`telemetry: { tokens: ["short"] }`, {}, /telemetry\.tokens\[0\]: the token must be 16 to 4096 characters long/],
    [`telemetry: { tokens: ["has a space in it 0123"] }`, {}, /telemetry\.tokens\[0\]: the token must be visible ASCII characters only/],
    [`telemetry: { tokens: ["${TEL}", "${TEL}"] }`, {}, /telemetry\.tokens\[1\]: the token is listed twice/],
    [`telemetry: { tokenEnv: NOPE }`, {}, /telemetry\.tokenEnv: environment variable NOPE is not set/],
    [`telemetry: { tokenEnv: T }`, { T: "tiny" }, /telemetry\.tokenEnv: the token in T must be 16 to 4096/],
    [`telemetry: { token: "${TEL}" }`, {}, /telemetry/],
  ] as const) {
    assert.throws(() => parseConfig(yaml(block), file, env as NodeJS.ProcessEnv), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), String(re));
  }
  // The refusal never shows a token's value.
  try { parseConfig(yaml(`telemetry: { tokens: ["has a space in it 0123"] }`), file); } catch (e) { assert.not.ok((e as Error).message.includes("has a space")); }
});

const FR = () => telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
function reportBytes(): Uint8Array {
  const T = FR();
  const end = BigInt(Date.now()) * 1_000_000n;
  return T.encode(T.fromObject({ nodeId: "sidecar-1", workerId: "7", sequence: "1", windowStartUnixNanos: String(end - 1_000_000_000n), windowEndUnixNanos: String(end), components: [] })).finish();
}
function report(port: number, token?: string): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (token) md.set("authorization", `Bearer ${token}`);
  return new Promise((res) => client.makeUnaryRequest("/shadowmesh.telemetry.v1.Telemetry/Report", (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, reportBytes(), md,
    (err) => { client.close(); res(err); }));
}

test("the controller requires the token on its telemetry port and publishes the first one to the proxies", async () => {
  const cfg = parseConfig(yaml(`telemetry: { tokens: ["${TEL}", "second-token-abcdefghij"] }`), file);
  const ctl = await startController(cfg, { log: silentLogger() });
  try {
    const plugin = JSON.parse(ctl.router.pluginConfig());
    assert.is(plugin.telemetry.token, TEL, "the filter's telemetry.token is the first configured token");
    assert.is((await report(ctl.ports.telemetry))?.code, grpc.status.UNAUTHENTICATED);
    assert.is((await report(ctl.ports.telemetry, "wrong-token-0123456789abc"))?.code, grpc.status.UNAUTHENTICATED);
    assert.is(await report(ctl.ports.telemetry, TEL), null);
    assert.is(await report(ctl.ports.telemetry, "second-token-abcdefghij"), null, "any configured token is accepted");
  } finally { await ctl.stop(); }
});

test("without the block: reports accepted as before, no token published, and a startup warning names the risk", async () => {
  const lines: string[] = [];
  const log = pino({ level: "warn" }, new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }));
  const ctl = await startController(parseConfig(yaml(""), file), { log });
  try {
    assert.is(JSON.parse(ctl.router.pluginConfig()).telemetry.token, undefined);
    assert.is(await report(ctl.ports.telemetry), null);
    assert.ok(lines.some((l) => /telemetry server has no authentication.*drive migrations/.test(l)), lines.join("\n"));
  } finally { await ctl.stop(); }
});

test.run();
