// telemetry.token: the real filter sends it as gRPC initial metadata (`authorization: Bearer <token>`)
// on every Report callout, a controller with token auth accepts those bytes and metadata and refuses
// them without it; a bad token is rejected by name, and the token never appears in any log line.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { LogLevel } from "../../host/index.js";
import { ManualClock } from "../../host/clock.js";
import { component, config, get, rig, roundTrip } from "../support/filter.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { addTelemetryService } from "../../controller/telemetry/service.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { silentLogger } from "../../controller/log.js";

const TOKEN = "proxy-token-2f6c1e0a9b7d4c3e";
const withToken = (token: unknown) => config([component()], { telemetry: { cluster: "controller", interval_ms: 1000, token } });

const allLogs = (r: Awaited<ReturnType<typeof rig>>) =>
  [LogLevel.Trace, LogLevel.Debug, LogLevel.Info, LogLevel.Warn, LogLevel.Error, LogLevel.Critical].flatMap((l) => r.host.logsAt(l));

test("every report carries `authorization: Bearer <token>` as initial metadata, on every worker, and after a failed report", async () => {
  const r = await rig(withToken(TOKEN), { workers: 2 });
  roundTrip(r, get(), { worker: 0 });
  roundTrip(r, get(), { worker: 1 });
  r.clock.advance(1000);
  const calls = r.callouts.takeGrpc().filter((c) => c.req.method === "Report");
  assert.is(calls.length, 2);
  for (const c of calls) {
    assert.is(c.req.initialMetadata.get("authorization"), `Bearer ${TOKEN}`);
    assert.is(c.req.initialMetadata.size, 1, "nothing else is sent");
    c.reply({ status: 16, statusMessage: "unauthenticated" });
  }
  r.clock.advance(1000);
  const again = r.callouts.takeGrpc().filter((c) => c.req.method === "Report");
  assert.ok(again.length >= 1 && again.every((c) => c.req.initialMetadata.get("authorization") === `Bearer ${TOKEN}`));
  assert.not.ok(allLogs(r).some((m) => m.includes(TOKEN)), "the token is never logged");
});

test("without telemetry.token no metadata is sent (as before)", async () => {
  const r = await rig();
  roundTrip(r, get());
  r.clock.advance(1000);
  const c = r.callouts.takeGrpc().find((x) => x.req.method === "Report")!;
  assert.is(c.req.initialMetadata.size, 0);
});

test("a bad token is rejected with the field named and its value never shown; the previous configuration stays", async () => {
  const r = await rig(withToken(TOKEN));
  for (const [bad, why] of [
    ["short-token", /telemetry\.token: must be 16 to 4096 characters long \(the value is not shown\)/],
    ["a token with spaces in it", /telemetry\.token: must be visible ASCII characters only/],
    ["tab\tseparated-token-value", /telemetry\.token: must be visible ASCII characters only/],
    [12345678901234567, /telemetry\.token: must be a string, got a number/],
  ] as const) {
    assert.not.ok(r.host.reconfigure(withToken(bad)), `rejected: ${bad}`);
    const errors = r.host.logsAt(LogLevel.Error);
    assert.ok(errors.some((m) => why.test(m)), `logged: ${errors.at(-1)}`);
    if (typeof bad === "string") assert.not.ok(errors.some((m) => m.includes(bad)), "the value is not in the log");
  }
  roundTrip(r, get());
  r.clock.advance(1000);
  const c = r.callouts.takeGrpc().find((x) => x.req.method === "Report")!;
  assert.is(c.req.initialMetadata.get("authorization"), `Bearer ${TOKEN}`, "the previous token is still in force");
});

test("the real filter's report and metadata pass a controller requiring the token; without it UNAUTHENTICATED", async () => {
  const r = await rig(withToken(TOKEN));
  for (let i = 0; i < 4; i++) roundTrip(r, get(`/item/${i}`));
  r.clock.advance(1000);
  const c = r.callouts.takeGrpc().find((x) => x.req.method === "Report")!;
  const clock = r.clock as ManualClock;
  const store = new TelemetryStore({ clock });
  const engine = new RiskEngine({ clock });
  engine.setComponent({ name: "orders", signals: [{ name: "request_error_rate", kind: "error_rate" }] });
  const server = new grpc.Server();
  addTelemetryService(server, { store, engine, clock, log: silentLogger(), auth: { tokens: [TOKEN], mtls: false } });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  // As the embedded data plane forwards a callout: the filter's metadata pairs become gRPC metadata.
  const send = (withMd: boolean) => new Promise<grpc.ServiceError | null>((res) => {
    const md = new grpc.Metadata();
    if (withMd) for (const [k, v] of c.req.initialMetadata.entries()) md.add(k, v);
    client.makeUnaryRequest(`/${c.req.service}/${c.req.method}`, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, c.req.message!, md, (err) => res(err));
  });
  const denied = await send(false);
  assert.is(denied?.code, grpc.status.UNAUTHENTICATED);
  assert.is(store.stats.reports, 0);
  assert.is(await send(true), null);
  assert.is(store.stats.reports, 1);
  assert.is(store.window("orders", 0, Number.MAX_SAFE_INTEGER)!.targets.get("PRIMARY")!.requests, 4);
  client.close();
  server.forceShutdown();
});

test.run();
