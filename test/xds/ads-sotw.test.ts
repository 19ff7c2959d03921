// State-of-the-world ADS with a raw client: versions, nonces, subscriptions, ACK/NACK, reconnect,
// and bad input (unknown types, bogus nonces, garbage names, a missing node).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { NODE, RawAds, TYPE, acked, adsClient, component, controlPlane, resourcesOf, shadowWeight } from "../support/xds.js";

type CP = Awaited<ReturnType<typeof controlPlane>>;
let cp: CP;
let client: ReturnType<typeof adsClient>;

test.before.each(async () => {
  cp = await controlPlane([component("orders", 7001, 7002), component("users", 7003, 7004)]);
  client = adsClient(`127.0.0.1:${cp.port}`);
});
test.after.each(async () => { client.close(); await cp.close(); });

test("LDS wildcard: all listeners, versioned, nonce per response; an ACK gets no reply; unrelated changes do not resend", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n1"), type_url: TYPE.listener, resource_names: [] });
  const r1 = await s.next();
  assert.is(r1.type_url, TYPE.listener);
  assert.is(r1.nonce, "1");
  assert.equal(resourcesOf(r1).map((l) => l.name).sort(), ["orders", "users"]);
  assert.is(r1.version_info, cp.cache.getSnapshot("default")!.typeVersion(TYPE.listener));
  assert.is(r1.control_plane.identifier, "shadowmesh");
  s.send({ type_url: TYPE.listener, resource_names: [], version_info: r1.version_info, response_nonce: r1.nonce });
  assert.ok(await s.silent(), "an ACK is not answered");
  cp.router.setWeights("orders", { primary: 5000, shadow: 5000 }); // changes RDS only
  assert.ok(await s.silent(), "LDS did not change");
  s.close();
});

test("RDS by name: weights arrive, a new version per change with a fresh nonce, and verify() sees the ACK", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n2"), type_url: TYPE.route, resource_names: ["orders-route"] });
  const r1 = await s.next();
  const [route] = resourcesOf(r1);
  assert.is(route!.name, "orders-route");
  assert.is(shadowWeight(route!), 0);
  s.send({ type_url: TYPE.route, resource_names: ["orders-route"], version_info: r1.version_info, response_nonce: r1.nonce });
  await acked(cp.server, "n2", "RDS", r1.version_info);
  const v = cp.router.setWeights("orders", { primary: 9000, shadow: 1000 });
  const pending = cp.router.verify(v, 2000);
  const r2 = await s.next();
  assert.is.not(r2.version_info, r1.version_info);
  assert.is.not(r2.nonce, r1.nonce);
  assert.is(shadowWeight(resourcesOf(r2)[0]!), 1000);
  s.send({ type_url: TYPE.route, resource_names: ["orders-route"], version_info: r2.version_info, response_nonce: r2.nonce });
  const verified = await pending;
  assert.ok(verified.ok, JSON.stringify(verified));
  assert.equal(verified.acked, ["n2"]);
  assert.is(cp.server.acks("n2").at(-1)!.version, r2.version_info);
  s.close();
});

test("subscription changes: adding a name answers with both; empty names unsubscribe; resubscribing answers again", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n3"), type_url: TYPE.route, resource_names: ["orders-route"] });
  const r1 = await s.next();
  s.send({ type_url: TYPE.route, resource_names: ["orders-route", "users-route"], version_info: r1.version_info, response_nonce: r1.nonce });
  const r2 = await s.next();
  assert.equal(resourcesOf(r2).map((r) => r.name).sort(), ["orders-route", "users-route"]);
  s.send({ type_url: TYPE.route, resource_names: [], version_info: r2.version_info, response_nonce: r2.nonce });
  assert.ok(await s.silent(), "unsubscribed: nothing sent");
  cp.router.setWeights("users", { primary: 1, shadow: 9999 });
  assert.ok(await s.silent(), "and nothing sent on changes either");
  s.send({ type_url: TYPE.route, resource_names: ["users-route"], version_info: r2.version_info, response_nonce: r2.nonce });
  const r3 = await s.next();
  assert.equal(resourcesOf(r3).map((r) => r.name), ["users-route"]);
  assert.is(shadowWeight(resourcesOf(r3)[0]!), 9999);
  s.close();
});

test("stale and bogus nonces are ignored", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n4"), type_url: TYPE.route, resource_names: ["orders-route"] });
  const r1 = await s.next();
  s.send({ type_url: TYPE.route, resource_names: ["orders-route"], version_info: r1.version_info, response_nonce: r1.nonce });
  await acked(cp.server, "n4", "RDS", r1.version_info);
  cp.router.setWeights("orders", { primary: 8000, shadow: 2000 });
  const r2 = await s.next();
  // A late request carrying the previous nonce and a different subscription: ignored.
  s.send({ type_url: TYPE.route, resource_names: ["users-route"], version_info: r1.version_info, response_nonce: r1.nonce });
  s.send({ type_url: TYPE.route, resource_names: ["users-route"], version_info: "x", response_nonce: "999999" });
  assert.ok(await s.silent(), "no answer to stale or bogus nonces");
  const st = cp.server.status().find((x) => x.node === "n4")!;
  assert.equal(st.types.RDS!.subscribed, ["orders-route"]);
  assert.is(st.types.RDS!.confirmed, r1.version_info, "nothing was ACKed by them");
  s.send({ type_url: TYPE.route, resource_names: ["orders-route"], version_info: r2.version_info, response_nonce: r2.nonce });
  await acked(cp.server, "n4", "RDS", r2.version_info);
  s.close();
});

test("a NACK is recorded per node with its error; the node keeps its last accepted version; verify() names it", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n5"), type_url: TYPE.route, resource_names: ["orders-route"] });
  const r1 = await s.next();
  s.send({ type_url: TYPE.route, resource_names: ["orders-route"], version_info: r1.version_info, response_nonce: r1.nonce });
  await acked(cp.server, "n5", "RDS", r1.version_info);
  const v = cp.router.setWeights("orders", { primary: 7000, shadow: 3000 });
  const r2 = await s.next();
  s.send({ type_url: TYPE.route, resource_names: ["orders-route"], version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { code: 3, message: "route rejected: test" } });
  const verified = await cp.router.verify(v, 2000);
  assert.not.ok(verified.ok);
  assert.equal(verified.nacked, [{ node: "n5", type: "RDS", error: "route rejected: test" }]);
  const st = cp.server.status().find((x) => x.node === "n5")!.types.RDS!;
  assert.is(st.confirmed, r1.version_info, "the last accepted version stays");
  assert.is(st.nack!.version, r2.version_info);
  assert.equal(cp.server.acks("n5").at(-1), { type: "RDS", version: r2.version_info, error: "route rejected: test", at: cp.server.acks("n5").at(-1)!.at });
  s.close();
});

test("reconnect: a new stream gets the current state, whatever version the client says it had", async () => {
  const s1 = new RawAds(client);
  s1.send({ node: NODE("n6"), type_url: TYPE.cluster, resource_names: [] });
  const r1 = await s1.next();
  assert.equal(resourcesOf(r1).map((c) => c.name).sort(), ["orders-primary", "orders-shadow", "users-primary", "users-shadow"]);
  s1.close();
  const s2 = new RawAds(client);
  s2.send({ node: NODE("n6"), type_url: TYPE.cluster, resource_names: [], version_info: r1.version_info });
  const r2 = await s2.next();
  assert.is(r2.version_info, r1.version_info);
  assert.is(r2.nonce, "1", "nonces are per stream");
  assert.is(resourcesOf(r2).length, 4);
  s2.close();
});

test("bad input: unknown type URLs are ignored and the stream keeps working", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n7"), type_url: "type.googleapis.com/envoy.config.nope.v3.Nope", resource_names: [] });
  s.send({ type_url: "", resource_names: ["x"] });
  assert.ok(await s.silent());
  s.send({ type_url: TYPE.endpoint, resource_names: ["orders-primary"] });
  const r = await s.next();
  assert.is(resourcesOf(r)[0]!.cluster_name, "orders-primary");
  s.close();
});

test("bad input: garbage resource names are just absent; absurd ones close the stream with INVALID_ARGUMENT naming the field", async () => {
  const s = new RawAds(client);
  s.send({ node: NODE("n8"), type_url: TYPE.endpoint, resource_names: ["\u0000\u00ff weird \ud83d\ude00", "../../etc/passwd", "x".repeat(1000)] });
  assert.ok(await s.silent(), "nothing by those names");
  s.send({ type_url: TYPE.endpoint, resource_names: ["orders-shadow", "\u0000"] });
  assert.equal(resourcesOf(await s.next()).map((r) => r.cluster_name), ["orders-shadow"]);
  s.close();
  const bad = new RawAds(client);
  bad.send({ node: NODE("n9"), type_url: TYPE.endpoint, resource_names: ["ok", "y".repeat(5000)] });
  const err = await bad.failed();
  assert.is(err.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err.details, /resource_names\[1\]: longer than 4096 bytes/);
});

test("bad input: a stream whose first request has no node is closed with INVALID_ARGUMENT", async () => {
  const s = new RawAds(client);
  s.send({ type_url: TYPE.listener, resource_names: [] });
  const err = await s.failed();
  assert.is(err.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err.details, /first request on a stream must carry node\.id/);
});

test.run();
