// Snapshots and the router: strict resource schemas, consistency before publishing, one
// serialization shared across subscribers, and weights refused before they reach a proxy.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Snapshot, SnapshotError } from "../../controller/xds/snapshot.js";
import { InconsistentSnapshotError, SnapshotCache } from "../../controller/xds/cache.js";
import { ResourceSchemaError, TYPE, unpack } from "../../protocol/protos.js";
import { buildCluster, buildLoadAssignment, buildRoute, buildEnvoyListener, buildWasmFilterConfig, WeightsError } from "../../controller/xds/resources.js";
import { UnknownComponentError } from "../../controller/xds/router.js";
import { FakeTrafficRouter } from "../support/fake-router.js";
import { component, controlPlane } from "../support/xds.js";

const A = component("a", 1, 2);

test("a resource with a camelCase or unknown field, or a bad enum, is refused naming the path", () => {
  assert.throws(() => Snapshot.build("v1", { clusters: [{ name: "x", type: "EDS", edsClusterConfig: {} }] }),
    (e: Error) => e instanceof ResourceSchemaError && /CDS x\.edsClusterConfig: no such field in envoy\.config\.cluster\.v3\.Cluster \(fields are snake_case\)/.test(e.message));
  assert.throws(() => Snapshot.build("v1", { clusters: [{ name: "x", type: "NOPE" }] }), /CDS x\.type: "NOPE" is not a value/);
  assert.throws(() => Snapshot.build("v1", { routes: [{ name: "r", virtual_hosts: [{ name: "v", domains: ["*"], routes: [{ match: { prefix: "" }, route: { cluster: "c", wieght: 1 } }] }] }] }),
    /RDS r\.virtual_hosts\[0\]\.routes\[0\]\.route\.wieght: no such field/);
  assert.throws(() => Snapshot.build("v1", { clusters: [buildCluster(A.primary), buildCluster(A.primary)] }), /CDS a-primary: defined twice/);
  assert.throws(() => Snapshot.build("", {}), (e: Error) => e instanceof SnapshotError);
});

test("an inconsistent snapshot is not published, the problems are named, and the previous one stays", () => {
  const cache = new SnapshotCache();
  const good = Snapshot.build("v1", {
    routes: [buildRoute(A, { primary: 10000, shadow: 0 })],
    clusters: [buildCluster(A.primary), buildCluster(A.shadow)],
    endpoints: [buildLoadAssignment(A.primary), buildLoadAssignment(A.shadow)],
  });
  cache.setSnapshot("g", good);
  const noShadowCluster = Snapshot.build("v2", {
    routes: [buildRoute(A, { primary: 10000, shadow: 0 })],
    clusters: [buildCluster(A.primary)],
    endpoints: [buildLoadAssignment(A.primary)],
  });
  assert.throws(() => cache.setSnapshot("g", noShadowCluster),
    (e: Error) => e instanceof InconsistentSnapshotError && /RDS a-route: virtual host a routes to cluster a-shadow, which CDS does not define/.test(e.message));
  const noEndpoints = Snapshot.build("v3", {
    clusters: [buildCluster(A.primary), buildCluster(A.shadow)],
    endpoints: [buildLoadAssignment({ ...A.primary, endpoints: [] })],
  });
  assert.throws(() => cache.setSnapshot("g", noEndpoints), (e: InconsistentSnapshotError) =>
    e.problems.includes("EDS a-primary: no endpoints") && e.problems.includes("CDS a-shadow: EDS cluster without a ClusterLoadAssignment"));
  const danglingListener = Snapshot.build("v4", {
    listeners: [buildEnvoyListener({ name: "l", address: "0.0.0.0", port: 80, routeConfigName: "missing", filterName: "shadowmesh" })],
  });
  assert.throws(() => cache.setSnapshot("g", danglingListener), (e: InconsistentSnapshotError) =>
    e.problems.some((p) => /LDS l: uses route configuration missing/.test(p)) && e.problems.some((p) => /filter shadowmesh is discovered over ECDS, which does not define it/.test(p)));
  assert.is(cache.getSnapshot("g")!.version, "v1");
});

test("one serialization per version: identical subscriptions share the same bytes; versions follow content", () => {
  const s = Snapshot.build("v1", { clusters: [buildCluster(A.primary), buildCluster(A.shadow)] });
  const a = s.sotwBody(TYPE.cluster, "*"), b = s.sotwBody(TYPE.cluster, "*");
  assert.ok(a.bytes === b.bytes, "the same buffer object");
  assert.is(s.sotwBody(TYPE.cluster, new Set(["a-shadow", "a-primary"])).bytes, s.sotwBody(TYPE.cluster, new Set(["a-primary", "a-shadow"])).bytes);
  const s2 = Snapshot.build("v2", { clusters: [buildCluster(A.primary), buildCluster(A.shadow)] });
  assert.is(s2.typeVersion(TYPE.cluster), s.typeVersion(TYPE.cluster), "same content, same type version");
  const s3 = Snapshot.build("v3", { clusters: [buildCluster(A.primary), { ...buildCluster(A.shadow), lb_policy: "LEAST_REQUEST" }] });
  assert.is.not(s3.typeVersion(TYPE.cluster), s.typeVersion(TYPE.cluster));
  assert.is(s3.resources(TYPE.cluster).get("a-primary")!.version, s.resources(TYPE.cluster).get("a-primary")!.version);
});

test("the Wasm filter's ECDS resource carries the plugin configuration and fails open", () => {
  const ext = buildWasmFilterConfig("shadowmesh", '{"components":[]}', { filename: "/x.wasm" });
  const s = Snapshot.build("v1", { extensions: [ext] });
  const tec = s.resources(TYPE.extension).get("shadowmesh")!.object as { typed_config: { type_url: string; value: Uint8Array } };
  const wasm = unpack(tec.typed_config) as { config: { fail_open: boolean; root_id: string; configuration: { type_url: string; value: Uint8Array }; vm_config: { runtime: string } } };
  assert.ok(wasm.config.fail_open);
  assert.is(wasm.config.vm_config.runtime, "envoy.wasm.runtime.v8");
  assert.equal(unpack(wasm.config.configuration), { value: '{"components":[]}' });
});

test("the router refuses weights that do not sum to the total, or unknown components, and publishes nothing", async () => {
  const cp = await controlPlane([A]);
  try {
    const before = cp.cache.getSnapshot("default")!.version;
    assert.throws(() => cp.router.setWeights("a", { primary: 9000, shadow: 500 }), (e: Error) => e instanceof WeightsError && /a: weights must sum to 10000, got 9000 \+ 500 = 9500/.test(e.message));
    assert.throws(() => cp.router.setWeights("a", { primary: 10001, shadow: -1 }), /a: weights must be integers between 0 and 10000, got primary=10001 shadow=-1/);
    assert.throws(() => cp.router.setWeights("a", { primary: 9999.5, shadow: 0.5 }), (e: Error) => e instanceof WeightsError);
    assert.throws(() => cp.router.setWeights("nope", { primary: 10000, shadow: 0 }), (e: Error) => e instanceof UnknownComponentError && /unknown component "nope" \(known: a\)/.test(e.message));
    assert.throws(() => cp.router.setMirror("a", { fraction: 1.5 }), /mirror fraction must be between 0 and 1, got 1.5/);
    assert.is(cp.cache.getSnapshot("default")!.version, before, "nothing was published");
    assert.equal(cp.router.getWeights("a"), { primary: 10000, shadow: 0 });
    const v = cp.router.setWeights("a", { primary: 2500, shadow: 7500 });
    assert.is(cp.cache.getSnapshot("default")!.version, v);
    assert.equal(cp.router.getWeights("a"), { primary: 2500, shadow: 7500 });
    const empty = await cp.router.verify(v, 100);
    assert.ok(empty.ok, "no node connected: nothing to wait for");
  } finally { await cp.close(); }
});

test("the router's plugin configuration is one the filter accepts, and follows weights, mirror, write target, shadow fitness and held writes", async () => {
  const { PluginHost } = await import("../../host/index.js");
  const { filterModule } = await import("../support/filter.js");
  const cp = await controlPlane([A], { envoyListener: { name: "ingress", address: "0.0.0.0", port: 15001 }, telemetry: { cluster: "shadowmesh-telemetry", address: "127.0.0.1", port: 18000 }, filterSettings: { a: { sticky: { header: "x-user" }, floor: { consecutive_failures: 5 } } } });
  try {
    cp.router.setWeights("a", { primary: 7500, shadow: 2500 });
    cp.router.setMirror("a", { fraction: 0.05, maxInFlight: 4, removeHeaders: ["authorization"] });
    cp.router.setWriteTarget("a", "shadow");
    const cfg = JSON.parse(cp.router.pluginConfig());
    assert.equal(cfg.components[0], {
      name: "a", authorities: ["a.svc"], primary_cluster: "a-primary", shadow_cluster: "a-shadow", write_target: "shadow",
      mirror: { fraction: 0.05, max_in_flight: 4, remove_headers: ["authorization"] }, shadow_weight_bp: 2500, sticky: { header: "x-user" },
      floor: { consecutive_failures: 5, shadow_fit: false },
    });
    const host = await PluginHost.create({ wasm: filterModule(), pluginConfig: cp.router.pluginConfig() });
    assert.ok(host.logs.some((l) => /configuration accepted/.test(l.message)));
    // The migration engine's routes carry the shadow's fitness and, during a failover, held writes.
    cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "primary", shadowFit: true, holdWrites: "the primary is down" });
    const held = JSON.parse(cp.router.pluginConfig()).components[0];
    assert.equal([held.floor, held.hold_writes, held.shadow_weight_bp], [{ consecutive_failures: 5, shadow_fit: true }, "the primary is down", 10000]);
    assert.ok(host.reconfigure(cp.router.pluginConfig()), "the filter accepts it");
    cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "shadow", holdWrites: null });
    const after = JSON.parse(cp.router.pluginConfig()).components[0];
    assert.equal([after.floor.shadow_fit, after.hold_writes, after.write_target], [true, undefined, "shadow"], "fitness kept when not given; the hold lifted");
    assert.throws(() => cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "shadow", holdWrites: "" }), /holdWrites must be 1 to 256 characters/);
    // A planned switch: writes paused (pause_writes_ms), lifted by the publish that moves the write target.
    cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "primary", pauseWritesMs: 5000 });
    const pausing = JSON.parse(cp.router.pluginConfig()).components[0];
    assert.equal([pausing.pause_writes_ms, pausing.write_target, pausing.hold_writes], [5000, "primary", undefined]);
    assert.ok(host.reconfigure(cp.router.pluginConfig()), "the filter accepts it");
    cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "shadow" });
    assert.is(JSON.parse(cp.router.pluginConfig()).components[0].pause_writes_ms, 5000, "kept when not given");
    cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "shadow", pauseWritesMs: 0 });
    assert.is(JSON.parse(cp.router.pluginConfig()).components[0].pause_writes_ms, undefined, "0: no pause");
    for (const bad of [-1, 60_001, 1.5]) assert.throws(() => cp.router.setRoutes("a", { weights: { primary: 0, shadow: 10000 }, mirrorFraction: 0, writeTarget: "shadow", pauseWritesMs: bad }), /pauseWritesMs must be a whole number from 0 to 60000/);
    const snap = cp.cache.getSnapshot("default")!;
    assert.ok(snap.resources(TYPE.listener).has("ingress"));
    assert.ok(snap.resources(TYPE.extension).has("shadowmesh"));
    assert.ok(snap.resources(TYPE.cluster).has("shadowmesh-telemetry"));
    host.shutdown();
  } finally { await cp.close(); }
});

test("the fake router records calls and refuses bad weights like the real one", async () => {
  const f = new FakeTrafficRouter();
  const v = f.setWeights("x", { primary: 9500, shadow: 500 });
  assert.equal(f.calls[0], { op: "weights", component: "x", value: { primary: 9500, shadow: 500 }, version: v });
  assert.ok((await f.verify(v)).ok);
  assert.throws(() => f.setWeights("x", { primary: 1, shadow: 1 }), (e: Error) => e instanceof WeightsError);
});

test.run();
