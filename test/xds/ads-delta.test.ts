// Incremental (delta) ADS with a raw client: wildcard and named subscriptions, per-resource
// versions, removals, unsubscribe, ACK/NACK by nonce, and reconnect with initial_resource_versions.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { NODE, RawAds, TYPE, adsClient, component, deltaResourcesOf } from "../support/xds.js";
import { AdsServer } from "../../controller/xds/server.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { Snapshot } from "../../controller/xds/snapshot.js";
import { buildApiListener, buildCluster, buildLoadAssignment, buildRoute, type RouteSpec } from "../../controller/xds/resources.js";
import { silentLogger } from "../../controller/log.js";

let cache: SnapshotCache, server: AdsServer, client: ReturnType<typeof adsClient>;
let seq = 0;

/** Publishes a snapshot holding exactly these components, at these shadow weights. */
function publish(comps: [RouteSpec, number][]): string {
  const version = `d${++seq}`;
  cache.setSnapshot("default", Snapshot.build(version, {
    listeners: comps.map(([c]) => buildApiListener(c)),
    routes: comps.map(([c, w]) => buildRoute(c, { primary: 10000 - w, shadow: w })),
    clusters: comps.flatMap(([c]) => [buildCluster(c.primary), buildCluster(c.shadow)]),
    endpoints: comps.flatMap(([c]) => [buildLoadAssignment(c.primary), buildLoadAssignment(c.shadow)]),
  }));
  return version;
}

const A = component("a", 7101, 7102), B = component("b", 7103, 7104), C = component("c", 7105, 7106);

test.before.each(async () => {
  cache = new SnapshotCache();
  server = new AdsServer({ cache, logger: silentLogger() });
  const port = await server.listen("127.0.0.1:0");
  client = adsClient(`127.0.0.1:${port}`);
  publish([[A, 0], [B, 0]]);
});
test.after.each(async () => { client.close(); await server.close(); });

test("wildcard LDS: everything with per-resource versions; a change sends only what changed; a removal is removed_resources", async () => {
  const s = new RawAds(client, true);
  s.send({ node: NODE("d1"), type_url: TYPE.listener, resource_names_subscribe: [] });
  const r1 = await s.next();
  const got = deltaResourcesOf(r1);
  assert.equal([...got.keys()].sort(), ["a", "b"]);
  assert.is(got.get("a")!.resource.name, "a");
  assert.is(r1.system_version_info, cache.getSnapshot("default")!.typeVersion(TYPE.listener));
  s.send({ type_url: TYPE.listener, response_nonce: r1.nonce });
  publish([[A, 0], [B, 0], [C, 0]]);
  const r2 = await s.next();
  assert.equal([...deltaResourcesOf(r2).keys()], ["c"], "only the new listener");
  assert.equal(r2.removed_resources, []);
  s.send({ type_url: TYPE.listener, response_nonce: r2.nonce });
  publish([[A, 0], [C, 0]]);
  const r3 = await s.next();
  assert.is(r3.resources.length, 0);
  assert.equal(r3.removed_resources, ["b"]);
  s.close();
});

test("named RDS: subscribe, get updates for it only, unsubscribe, resubscribe", async () => {
  const s = new RawAds(client, true);
  s.send({ node: NODE("d2"), type_url: TYPE.route, resource_names_subscribe: ["a-route"] });
  const r1 = await s.next();
  assert.equal([...deltaResourcesOf(r1).keys()], ["a-route"]);
  s.send({ type_url: TYPE.route, response_nonce: r1.nonce });
  publish([[A, 0], [B, 2500]]); // b changed, a did not
  assert.ok(await s.silent(), "nothing for a resource not subscribed");
  publish([[A, 1000], [B, 2500]]);
  const r2 = await s.next();
  const a = deltaResourcesOf(r2).get("a-route")!;
  assert.is(a.resource.virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].weight.value, 1000);
  s.send({ type_url: TYPE.route, response_nonce: r2.nonce, resource_names_subscribe: ["b-route"], resource_names_unsubscribe: ["a-route"] });
  const r3 = await s.next();
  assert.equal([...deltaResourcesOf(r3).keys()], ["b-route"]);
  assert.equal(r3.removed_resources, [], "unsubscribing is not a removal");
  s.send({ type_url: TYPE.route, response_nonce: r3.nonce });
  publish([[A, 5000], [B, 2500]]);
  assert.ok(await s.silent(), "a is no longer subscribed");
  s.close();
});

test("ACK and NACK go by nonce; a stale nonce is ignored", async () => {
  const s = new RawAds(client, true);
  s.send({ node: NODE("d3"), type_url: TYPE.cluster, resource_names_subscribe: [] });
  const r1 = await s.next();
  s.send({ type_url: TYPE.cluster, response_nonce: r1.nonce });
  await new Promise((r) => setTimeout(r, 50));
  const v1 = cache.getSnapshot("default")!.typeVersion(TYPE.cluster);
  assert.is(server.status().find((x) => x.node === "d3")!.types.CDS!.confirmed, v1);
  const version = publish([[A, 0], [B, 0], [C, 0]]);
  const r2 = await s.next();
  s.send({ type_url: TYPE.cluster, response_nonce: "12345", error_detail: { message: "bogus" } });
  s.send({ type_url: TYPE.cluster, response_nonce: r2.nonce, error_detail: { code: 3, message: "cluster c-primary: bad" } });
  const verified = await server.verify("default", version, 2000);
  assert.equal(verified.nacked, [{ node: "d3", type: "CDS", error: "cluster c-primary: bad" }]);
  assert.is(server.status().find((x) => x.node === "d3")!.types.CDS!.confirmed, v1, "the NACKed version is not confirmed");
  s.close();
});

test("reconnect with initial_resource_versions: only what the client lacks or has stale is sent", async () => {
  const s1 = new RawAds(client, true);
  s1.send({ node: NODE("d4"), type_url: TYPE.route, resource_names_subscribe: ["a-route", "b-route"] });
  const r1 = deltaResourcesOf(await s1.next());
  s1.close();
  publish([[A, 0], [B, 4000]]);
  const s2 = new RawAds(client, true);
  s2.send({
    node: NODE("d4"), type_url: TYPE.route, resource_names_subscribe: ["a-route", "b-route"],
    initial_resource_versions: { "a-route": r1.get("a-route")!.version, "b-route": r1.get("b-route")!.version },
  });
  const r2 = await s2.next();
  assert.equal([...deltaResourcesOf(r2).keys()], ["b-route"], "a-route is current, b-route changed while away");
  s2.close();
  const s3 = new RawAds(client, true);
  s3.send({ node: NODE("d4"), type_url: TYPE.listener, resource_names_subscribe: ["*"], initial_resource_versions: { a: "stale", gone: "x" } });
  const r3 = await s3.next();
  assert.equal([...deltaResourcesOf(r3).keys()].sort(), ["a", "b"]);
  assert.equal(r3.removed_resources, ["gone"], "a resource the client had that no longer exists");
  s3.close();
});

test.run();
