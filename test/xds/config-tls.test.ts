// The xDS server's TLS from the controller's configuration file (`xds.tls {cert, key, clientCa}`):
// with clientCa the proxies must present a certificate from that CA (mTLS); without it, TLS only.
// The controller process is started from a configuration text, as `shadowmesh controller` does.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { NODE, RawAds, TYPE, adsClient } from "../support/xds.js";
import { parseConfig } from "../../controller/config.js";
import { startController } from "../../controller/main.js";
import { silentLogger } from "../../controller/log.js";
import { makePki } from "../support/certs.js";

const pki = makePki();
const ca = readFileSync(pki.ca);

/** Certificate paths relative to the configuration file, as an operator writes them. */
function config(tls: string): string {
  return `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["xds-tls-token-0123456789"] }
xds: { tls: ${tls} }
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
`;
}

/** Opens an LDS stream: "ok" on a response, else the failure's code. */
async function tryLds(address: string, creds: grpc.ChannelCredentials): Promise<"ok" | grpc.status> {
  const client = adsClient(address, creds);
  const s = new RawAds(client);
  s.send({ node: NODE("config-tls-node"), type_url: TYPE.listener, resource_names: [] });
  try { await s.next(3000); return "ok"; } catch { return s.error?.code ?? grpc.status.UNAVAILABLE; } finally { s.close(); client.close(); }
}

test("xds.tls with clientCa: the controller's xDS port is mutual TLS (paths relative to the configuration file)", async () => {
  const file = path.join(pki.dir, "controller.yaml");
  const cfg = parseConfig(config("{ cert: server.crt, key: server.key, clientCa: ca.crt }"), file);
  assert.equal(cfg.xds.tls, { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca });
  const ctl = await startController(cfg, { log: silentLogger() });
  try {
    const at = `localhost:${ctl.ports.xds}`;
    assert.is(await tryLds(at, grpc.credentials.createSsl(ca, readFileSync(pki.clientKey), readFileSync(pki.clientCert))), "ok", "client certificate from the CA");
    assert.is.not(await tryLds(at, grpc.credentials.createSsl(ca)), "ok", "no client certificate");
    assert.is.not(await tryLds(at, grpc.credentials.createInsecure()), "ok", "plaintext");
  } finally { await ctl.stop(); }
});

test("xds.tls without clientCa: TLS, no client certificate needed; a client that does not trust the CA is refused", async () => {
  const ctl = await startController(parseConfig(config(`{ cert: ${pki.serverCert}, key: ${pki.serverKey} }`), path.join(pki.dir, "c.yaml")), { log: silentLogger() });
  try {
    const at = `localhost:${ctl.ports.xds}`;
    assert.is(await tryLds(at, grpc.credentials.createSsl(ca)), "ok");
    assert.is.not(await tryLds(at, grpc.credentials.createSsl()), "ok", "unknown CA");
    assert.is.not(await tryLds(at, grpc.credentials.createInsecure()), "ok", "plaintext");
  } finally { await ctl.stop(); }
});

test("no xds block: plaintext on loopback, as before", async () => {
  const cfg = parseConfig(config("{ cert: x, key: y }").replace(/^xds: .*$/m, ""), path.join(pki.dir, "c.yaml"));
  assert.is(cfg.xds.tls, null);
  const ctl = await startController(cfg, { log: silentLogger() });
  try { assert.is(await tryLds(`127.0.0.1:${ctl.ports.xds}`, grpc.credentials.createInsecure()), "ok"); } finally { await ctl.stop(); }
});

test.run();
