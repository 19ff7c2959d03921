// The author recorded with an operator command is the authenticated identity: the name of the bearer
// token (plain string tokens are token-N) or the subject of the client certificate (mTLS). The
// client's own x-shadowmesh-user header is only recorded as "on behalf of ... (unverified)" and is
// never a credential by itself.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { parseConfig, ConfigError } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { controllerClient, authMetadata, type ControllerClient } from "../../controller/api/service.js";
import { silentLogger } from "../../controller/log.js";
import { makePki } from "../support/certs.js";

const ALICE = "alice-token-0123456789";
const PLAIN = "plain-token-0123456789";
const dir = mkdtempSync(path.join(tmpdir(), "sm-identity-"));
const pki = makePki();

const components = ["a", "b", "c", "d"].map((n, i) => `
  - name: ${n}
    hostnames: [${n}.svc]
    primary: { name: ${n}-primary, zone: a, endpoints: ["127.0.0.1:${7100 + 2 * i}"] }
    shadow: { name: ${n}-shadow, zone: b, endpoints: ["127.0.0.1:${7101 + 2 * i}"] }`).join("");
const LISTEN = `listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }`;

function call<T>(c: ControllerClient, method: string, req: object, md = authMetadata(c)): Promise<T> {
  return new Promise((resolve, reject) => c[method]!(req, md, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));
}
const promoteMessage = (ctl: RunningController, component: string) =>
  ctl.manager.events(component, 20).map((e) => e.message).find((m) => /manual promote by/.test(m)) ?? "(none)";

let tokenCtl: RunningController;
let mtlsCtl: RunningController;

test.before(async () => {
  tokenCtl = await startController(parseConfig(`${LISTEN}
api: { tokens: [{ name: alice, token: ${ALICE} }, ${PLAIN}] }
tickMs: 50
components:${components}
`, path.join(dir, "tokens.yaml")), { log: silentLogger() });
  mtlsCtl = await startController(parseConfig(`${LISTEN}
api: { tls: { cert: ${pki.serverCert}, key: ${pki.serverKey}, clientCa: ${pki.ca} } }
tickMs: 50
components:${components}
`, path.join(dir, "mtls.yaml")), { log: silentLogger() });
});

test.after(async () => {
  await Promise.all([tokenCtl.stop(), mtlsCtl.stop()]);
  rmSync(dir, { recursive: true });
});

test("a command is recorded as the token's name; the client's header only as an unverified 'on behalf of'", async () => {
  const addr = `127.0.0.1:${tokenCtl.ports.api}`;
  const alice = controllerClient(addr, ALICE);
  const plain = controllerClient(addr, PLAIN);
  try {
    await call(alice, "promote", { component: "a" });
    assert.match(promoteMessage(tokenCtl, "a"), /manual promote by alice$/);

    // The header that used to name the author: now an unverified extra next to the real identity.
    const md = authMetadata(plain);
    md.set("x-shadowmesh-user", "mallory");
    await call(plain, "promote", { component: "b" }, md);
    assert.match(promoteMessage(tokenCtl, "b"), /manual promote by token-2 on behalf of "mallory" \(unverified\)$/);

    // Naming oneself adds nothing.
    const same = authMetadata(alice);
    same.set("x-shadowmesh-user", "alice");
    await call(alice, "promote", { component: "c" }, same);
    assert.match(promoteMessage(tokenCtl, "c"), /manual promote by alice$/);

    // The header alone is no credential.
    const anon = controllerClient(addr, null);
    const headerOnly = new grpc.Metadata();
    headerOnly.set("x-shadowmesh-user", "alice");
    try {
      await call(anon, "promote", { component: "d" }, headerOnly);
      assert.unreachable("a header without a token must be refused");
    } catch (e) {
      assert.is((e as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
    } finally { anon.close(); }
    assert.is(promoteMessage(tokenCtl, "d"), "(none)");
  } finally { alice.close(); plain.close(); }
});

test("with mTLS a command is recorded as the client certificate's subject", async () => {
  const creds = grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.clientKey), readFileSync(pki.clientCert));
  const c = controllerClient(`localhost:${mtlsCtl.ports.api}`, null, creds);
  try {
    const md = new grpc.Metadata();
    md.set("x-shadowmesh-user", "bob");
    await call(c, "promote", { component: "a" }, md);
    assert.match(promoteMessage(mtlsCtl, "a"), /manual promote by cert CN=envoy-sidecar on behalf of "bob" \(unverified\)$/);
  } finally { c.close(); }
});

test("api.tokens: plain strings and {name, token} objects; names and tokens must be unique", () => {
  const cfg = (tokens: string) => `${LISTEN}\napi: { tokens: ${tokens} }\ncomponents:${components}\n`;
  const ok = parseConfig(cfg(`["${PLAIN}", { name: ops-bot, token: ${ALICE} }]`), "c.yaml");
  assert.equal(ok.api.tokens, [{ name: "token-1", token: PLAIN }, { name: "ops-bot", token: ALICE }]);
  const env = parseConfig(`${LISTEN}\napi: { tokenEnv: SM_TOKEN }\ncomponents:${components}\n`, "c.yaml", { SM_TOKEN: ALICE });
  assert.equal(env.api.tokens, [{ name: "SM_TOKEN", token: ALICE }], "a tokenEnv token is named after its variable");
  const bad = (tokens: string, re: RegExp) => assert.throws(() => parseConfig(cfg(tokens), "c.yaml"), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), re.source);
  bad(`[{ name: a, token: short }]`, /^c\.yaml:2:\d+: api\.tokens\[0\]\.token: tokens must be at least 16 characters/);
  bad(`["short"]`, /api\.tokens\[0\]: tokens must be at least 16 characters/);
  bad(`[{ name: "a b", token: ${ALICE} }]`, /api\.tokens\[0\]\.name: a name of letters/);
  bad(`[{ name: x, token: ${ALICE} }, { name: x, token: ${PLAIN} }]`, /api\.tokens\[1\]\.name: the name x is already api\.tokens\[0\]'s/);
  bad(`[${ALICE}, { name: y, token: ${ALICE} }]`, /api\.tokens\[1\]\.token: the same token is listed twice/);
  bad(`[{ name: x, tokn: ${ALICE} }]`, /api\.tokens\[0\]/);
});

test.run();
