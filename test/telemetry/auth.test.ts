// Telemetry port authentication: with tokens configured, Report and PushMetrics without credentials
// or with a wrong token are UNAUTHENTICATED and store nothing; with mTLS, a client without a
// certificate (or with one from another CA) is UNAUTHENTICATED, a verified one is accepted; without
// any credentials configured the port behaves as before (everyone accepted).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { ManualClock } from "../../host/clock.js";
import { rig, config, component, get, roundTrip } from "../support/filter.js";
import { makePki } from "../support/certs.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { addTelemetryService, telemetryClient, telemetryServerCredentials, type TelemetryAuth, type TelemetryTls } from "../../controller/telemetry/service.js";
import { REQUEST_SIGNALS } from "../../controller/telemetry/feed.js";
import { telemetryRoot } from "../../controller/telemetry/report.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { silentLogger } from "../../controller/log.js";
import { TelemetryForwarder } from "../../controller/ha/forward.js";
import { replicaCredentials } from "../../controller/ha/credentials.js";

const TOKEN = "telemetry-token-0123456789abcdef";

async function serve(clock: ManualClock, auth: TelemetryAuth | undefined, tls: TelemetryTls | null = null) {
  const store = new TelemetryStore({ clock });
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [{ name: REQUEST_SIGNALS.errors, kind: "error_rate" }, { name: "cpu", kind: "cpu" }] });
  const server = new grpc.Server();
  addTelemetryService(server, { store, engine, clock, log: silentLogger(), ...(auth ? { auth } : {}) });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", telemetryServerCredentials(tls), (e, p) => (e ? rej(e) : res(p))));
  const clients: grpc.Client[] = [];
  const call = (method: string, bytes: Uint8Array, opts: { token?: string; creds?: grpc.ChannelCredentials } = {}) => {
    const client = telemetryClient(`localhost:${port}`, opts.creds ?? grpc.credentials.createInsecure());
    clients.push(client);
    const md = new grpc.Metadata();
    if (opts.token !== undefined) md.set("authorization", opts.token);
    return new Promise<{ err: grpc.ServiceError | null; res: any }>((res) =>
      (client as any).makeUnaryRequest(`/shadowmesh.telemetry.v1.Telemetry/${method}`, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, bytes, md, { deadline: Date.now() + 5000 },
        (err: grpc.ServiceError | null, r: any) => res({ err, res: r })));
  };
  return { store, engine, call, port, close: () => { for (const c of clients) c.close(); server.forceShutdown(); } };
}

async function filterReport(): Promise<{ bytes: Uint8Array; clock: ManualClock }> {
  const r = await rig(config([component()]));
  for (let i = 0; i < 5; i++) roundTrip(r, get(`/item/${i}`));
  r.clock.advance(1000);
  const c = r.callouts.takeGrpc().find((x) => x.req.method === "Report")!;
  return { bytes: c.req.message!, clock: r.clock };
}

const metrics = (value: number) => {
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.MetricsBatch");
  return T.encode(T.fromObject({ points: [{ component: "orders", signal: "cpu", value }] })).finish();
};

test("tokens configured: no credentials, a wrong token, or a non-bearer header are UNAUTHENTICATED and store nothing", async () => {
  const { bytes, clock } = await filterReport();
  const s = await serve(clock, { tokens: [TOKEN], mtls: false });
  for (const [token, re] of [
    [undefined, /no credentials: send `authorization: Bearer <token>`/],
    ["Bearer wrong-token-0123456789abcdef", /the bearer token is not accepted/],
    [`Basic ${TOKEN}`, /not a bearer token/],
    [`Bearer ${TOKEN}x`, /the bearer token is not accepted/],
  ] as const) {
    for (const [method, body] of [["Report", bytes], ["PushMetrics", metrics(0.5)]] as const) {
      const { err } = await s.call(method, body, token === undefined ? {} : { token });
      assert.is(err?.code, grpc.status.UNAUTHENTICATED, `${method} with ${token}`);
      assert.match(err!.details, re);
      assert.not.ok(err!.details.includes(TOKEN), "the refusal never echoes a token");
    }
  }
  assert.is(s.store.stats.reports, 0);
  assert.equal(s.store.componentNames(), []);
  const ok = await s.call("Report", bytes, { token: `Bearer ${TOKEN}` });
  assert.is(ok.err, null);
  assert.is(s.store.stats.reports, 1);
  assert.is((await s.call("PushMetrics", metrics(0.5), { token: `bearer ${TOKEN}` })).err, null, "the scheme is case-insensitive");
  s.close();
});

test("no credentials configured: the port accepts anyone (today's behaviour, warned about at startup)", async () => {
  const { bytes, clock } = await filterReport();
  const s = await serve(clock, { tokens: [], mtls: false });
  assert.is((await s.call("Report", bytes)).err, null);
  s.close();
});

test("mTLS: no client certificate or one from another CA is UNAUTHENTICATED; a verified certificate or a token is accepted", async () => {
  const pki = makePki(), other = makePki();
  const { bytes, clock } = await filterReport();
  const tls = { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca };
  const ca = readFileSync(pki.ca);
  const noCert = grpc.credentials.createSsl(ca);
  const withCert = grpc.credentials.createSsl(ca, readFileSync(pki.clientKey), readFileSync(pki.clientCert));
  const foreignCert = grpc.credentials.createSsl(ca, readFileSync(other.clientKey), readFileSync(other.clientCert));

  const onlyMtls = await serve(clock, { tokens: [], mtls: true }, tls);
  const a = await onlyMtls.call("Report", bytes, { creds: noCert });
  assert.is(a.err?.code, grpc.status.UNAUTHENTICATED, `no client certificate: ${a.err?.code} ${a.err?.details}`);
  assert.match(a.err!.details, /a client certificate signed by the configured CA is required/);
  const f = await onlyMtls.call("Report", bytes, { creds: foreignCert });
  assert.ok(f.err, "a certificate from another CA is not a credential");
  assert.ok(f.err!.code === grpc.status.UNAUTHENTICATED || f.err!.code === grpc.status.UNAVAILABLE, `foreign certificate: ${f.err!.code} ${f.err!.details}`);
  const plain = await onlyMtls.call("Report", bytes);
  assert.ok(plain.err, "plaintext to a TLS port fails");
  assert.is(onlyMtls.store.stats.reports, 0);
  const b = await onlyMtls.call("Report", bytes, { creds: withCert });
  assert.is(b.err, null, `verified client certificate: ${b.err?.details}`);
  assert.is(onlyMtls.store.stats.reports, 1);
  onlyMtls.close();

  const both = await serve(clock, { tokens: [TOKEN], mtls: true }, tls);
  assert.is((await both.call("Report", bytes, { creds: noCert })).err?.code, grpc.status.UNAUTHENTICATED);
  assert.is((await both.call("Report", bytes, { creds: noCert, token: `Bearer ${TOKEN}` })).err, null, "TLS without a client certificate, with a token");
  both.close();
});

test("HA: a follower forwards reports to a leader whose telemetry port has (mutual) TLS, with the replicas' shared certificate; plaintext does not get through", async () => {
  const pki = makePki();
  const { bytes, clock } = await filterReport();
  // The replicas' telemetry.tls: their certificate (names localhost, as a Service name would) and the proxies' CA.
  const tls = { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca };
  const leader = await serve(clock, { tokens: [TOKEN], mtls: true }, tls);
  const port = leader.port;
  const send = async (credentials: grpc.ChannelCredentials | undefined) => {
    const f = new TelemetryForwarder({ leader: () => ({ replica: "r0", telemetry: `127.0.0.1:${port}` }), token: TOKEN, log: silentLogger(), timeoutMs: 3000, ...(credentials ? { credentials } : {}) });
    f.forward(Buffer.from(bytes));
    const t0 = Date.now();
    while (f.stats.forwarded + f.stats.failed === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    f.close();
    return f.stats;
  };
  const plain = await send(undefined);
  assert.is(plain.failed, 1, "plaintext to the TLS port fails (counted, logged)");
  assert.is(leader.store.stats.reports, 0);
  const secure = await send(replicaCredentials(tls));
  assert.equal([secure.forwarded, secure.merged, secure.failed], [1, 1, 0], JSON.stringify(secure));
  assert.is(leader.store.stats.reports, 1, "merged at the leader");
  leader.close();
});

test.run();
