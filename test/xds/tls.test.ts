// TLS and mutual TLS on the xDS port, from certificate files.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { NODE, RawAds, TYPE, adsClient } from "../support/xds.js";
import { AdsServer } from "../../controller/xds/server.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { Snapshot } from "../../controller/xds/snapshot.js";
import { silentLogger } from "../../controller/log.js";
import { makePki } from "../support/certs.js";

const pki = makePki();

async function serve(requireClientCert: boolean) {
  const cache = new SnapshotCache();
  cache.setSnapshot("default", Snapshot.build("v1", {}));
  const server = new AdsServer({ cache, logger: silentLogger() });
  const port = await server.listen("127.0.0.1:0", { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca, requireClientCert });
  return { server, port };
}

/** Opens an LDS stream and resolves "ok" on a response, else the failure's code. */
async function tryLds(address: string, creds: grpc.ChannelCredentials): Promise<"ok" | grpc.status> {
  const client = adsClient(address, creds);
  const s = new RawAds(client);
  s.send({ node: NODE("tls-node"), type_url: TYPE.listener, resource_names: [] });
  try { await s.next(3000); return "ok"; } catch { return s.error?.code ?? grpc.status.UNAVAILABLE; } finally { s.close(); client.close(); }
}

const ca = readFileSync(pki.ca);
const mtls = () => grpc.credentials.createSsl(ca, readFileSync(pki.clientKey), readFileSync(pki.clientCert));

test("mTLS: a client with a certificate from the CA is served; without one, or in plaintext, it is refused", async () => {
  const { server, port } = await serve(true);
  try {
    assert.is(await tryLds(`localhost:${port}`, mtls()), "ok");
    assert.is.not(await tryLds(`localhost:${port}`, grpc.credentials.createSsl(ca)), "ok", "no client certificate");
    assert.is.not(await tryLds(`localhost:${port}`, grpc.credentials.createInsecure()), "ok", "plaintext");
  } finally { await server.close(); }
});

test("TLS without client certificates: a client that trusts the CA is served, one that does not is refused", async () => {
  const { server, port } = await serve(false);
  try {
    assert.is(await tryLds(`localhost:${port}`, grpc.credentials.createSsl(ca)), "ok");
    assert.is.not(await tryLds(`localhost:${port}`, grpc.credentials.createSsl()), "ok", "unknown CA");
  } finally { await server.close(); }
});

test("a missing certificate file is a clear error at startup", async () => {
  const server = new AdsServer({ cache: new SnapshotCache(), logger: silentLogger() });
  try {
    await server.listen("127.0.0.1:0", { certFile: "/nonexistent/server.crt", keyFile: pki.serverKey });
    assert.unreachable("listen must fail");
  } catch (e) {
    assert.match((e as Error).message, /\/nonexistent\/server\.crt/);
  } finally { await server.close(); }
});

test.run();
