// ECDS carries the Wasm filter's configuration and follows the weights; node groups get their own
// snapshots; pushes and ACKs are traced behind the debug flag, NACKs are always logged; ACKs and
// NACKs are stamped by the server's clock.
import { test } from "uvu";
import * as assert from "uvu/assert";
import pino from "pino";
import { Writable } from "node:stream";
import { NODE, RawAds, TYPE, acked, adsClient, component, controlPlane, resourcesOf } from "../support/xds.js";
import { AdsServer } from "../../controller/xds/server.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { Snapshot } from "../../controller/xds/snapshot.js";
import { buildCluster, buildLoadAssignment } from "../../controller/xds/resources.js";
import { unpack } from "../../protocol/protos.js";
import { ManualClock } from "../../host/clock.js";

function pluginConfigOf(ext: Record<string, any>): Record<string, any> {
  const wasm = unpack(ext.typed_config) as { config: { configuration: { type_url: string; value: Uint8Array } } };
  return JSON.parse((unpack(wasm.config.configuration) as { value: string }).value);
}

test("ECDS: the shadowmesh filter config is served by name and follows setWeights and setMirror", async () => {
  const A = component("orders", 1, 2);
  const cp = await controlPlane([A], { envoyListener: { name: "ingress", address: "0.0.0.0", port: 15001 } });
  const client = adsClient(`127.0.0.1:${cp.port}`);
  try {
    const s = new RawAds(client);
    s.send({ node: NODE("envoy-1"), type_url: TYPE.extension, resource_names: ["shadowmesh"] });
    const r1 = await s.next();
    assert.is(r1.type_url, TYPE.extension);
    const [ext] = resourcesOf(r1);
    assert.is(ext!.name, "shadowmesh");
    assert.is(pluginConfigOf(ext!).components[0].shadow_weight_bp, 0);
    s.send({ type_url: TYPE.extension, resource_names: ["shadowmesh"], version_info: r1.version_info, response_nonce: r1.nonce });
    await acked(cp.server, "envoy-1", "ECDS", r1.version_info);
    const v = cp.router.setWeights("orders", { primary: 9500, shadow: 500 });
    const r2 = await s.next();
    assert.is(pluginConfigOf(resourcesOf(r2)[0]!).components[0].shadow_weight_bp, 500);
    s.send({ type_url: TYPE.extension, resource_names: ["shadowmesh"], version_info: r2.version_info, response_nonce: r2.nonce });
    assert.ok((await cp.router.verify(v, 2000)).ok);
    cp.router.setMirror("orders", { fraction: 0.02 });
    const r3 = await s.next();
    assert.is(pluginConfigOf(resourcesOf(r3)[0]!).components[0].mirror.fraction, 0.02);
    s.close();
  } finally { client.close(); await cp.close(); }
});

test("node groups: nodes of different groups get different snapshots; verify() of one group ignores the other", async () => {
  const cache = new SnapshotCache((node) => node.cluster ?? "default");
  const logger = pino({ level: "silent" });
  const server = new AdsServer({ cache, logger });
  const port = await server.listen("127.0.0.1:0");
  const A = component("a", 1, 2), B = component("b", 3, 4);
  cache.setSnapshot("east", Snapshot.build("e1", { clusters: [buildCluster(A.primary)], endpoints: [buildLoadAssignment(A.primary)] }));
  cache.setSnapshot("west", Snapshot.build("w1", { clusters: [buildCluster(B.primary)], endpoints: [buildLoadAssignment(B.primary)] }));
  const client = adsClient(`127.0.0.1:${port}`);
  try {
    const east = new RawAds(client), west = new RawAds(client);
    east.send({ node: { id: "e", cluster: "east" }, type_url: TYPE.cluster, resource_names: [] });
    west.send({ node: { id: "w", cluster: "west" }, type_url: TYPE.cluster, resource_names: [] });
    assert.equal(resourcesOf(await east.next()).map((c) => c.name), ["a-primary"]);
    assert.equal(resourcesOf(await west.next()).map((c) => c.name), ["b-primary"]);
    const v = await server.verify("east", "e1", 300);
    assert.ok(!v.ok && v.pending.includes("e") && !v.pending.includes("w"), JSON.stringify(v));
    east.close(); west.close();
  } finally { client.close(); await server.close(); }
});

function capture(level: string) {
  const lines: Record<string, any>[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { logger: pino({ level }, sink), lines };
}

/**
 * One CDS exchange on a fresh server: the node ACKs v1, then (after `between`) NACKs v2 with
 * `error`; returns once the server has recorded both, with the two versions.
 */
async function ackThenNack(opts: { logger: pino.Logger; debug?: boolean; clock?: ManualClock }, node: string, error: string, between: () => void = () => {}) {
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, ...opts });
  const port = await server.listen("127.0.0.1:0");
  const A = component("a", 1, 2);
  cache.setSnapshot("default", Snapshot.build("v1", { clusters: [buildCluster(A.primary)], endpoints: [buildLoadAssignment(A.primary)] }));
  const client = adsClient(`127.0.0.1:${port}`);
  try {
    const s = new RawAds(client);
    s.send({ node: NODE(node), type_url: TYPE.cluster, resource_names: [] });
    const r1 = await s.next();
    s.send({ type_url: TYPE.cluster, resource_names: [], version_info: r1.version_info, response_nonce: r1.nonce });
    await acked(server, node, "CDS", r1.version_info);
    between();
    cache.setSnapshot("default", Snapshot.build("v2", { clusters: [{ ...buildCluster(A.primary), lb_policy: "RANDOM" }], endpoints: [buildLoadAssignment(A.primary)] }));
    const r2 = await s.next();
    s.send({ type_url: TYPE.cluster, resource_names: [], version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { message: error } });
    const t0 = Date.now();
    while (server.acks(node).length < 2 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    s.close();
    return { v1: r1.version_info, v2: r2.version_info, acks: server.acks(node) };
  } finally { client.close(); await server.close(); }
}

for (const debug of [true, false]) {
  test(`logging: pushes and ACKs are traced ${debug ? "with" : "only with"} the debug flag; a NACK is logged with its error`, async () => {
    const { logger, lines } = capture("debug");
    const { v1, v2 } = await ackThenNack({ logger, debug }, "logged", "lb_policy RANDOM refused");
    const msgs = lines.map((l) => l.msg);
    assert.is(msgs.includes("xds push"), debug);
    assert.is(msgs.includes("xds ACK"), debug);
    const nack = lines.find((l) => l.msg === "xds NACK");
    assert.ok(nack, "a NACK is always logged");
    assert.equal([nack.node, nack.type, nack.version, nack.kept, nack.error, nack.level], ["logged", "CDS", v2, v1, "lb_policy RANDOM refused", 40]);
  });
}

test("ACKs and NACKs are stamped by the server's clock, not the machine's", async () => {
  const clock = new ManualClock(1_800_000_000_000);
  const { v1, v2, acks } = await ackThenNack({ logger: pino({ level: "silent" }), clock }, "stamped", "refused", () => clock.advance(5000));
  assert.equal(acks.map((a) => [a.version, a.error ?? null, a.at]), [[v1, null, 1_800_000_000_000], [v2, "refused", 1_800_000_005_000]]);
});

test.run();
