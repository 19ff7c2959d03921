// Version skew between the controller and the filter: which proxies would refuse pause_writes_ms
// (xds/features.ts, as controller/main.ts wires it for the migration engine): an ECDS subscriber that
// has not reported knowing it (FilterReport.features), and any node whose report of the last minute
// did not name it (an HA leader merges every replica's reports), and an HA follower's ECDS subscribers
// that have not reported (the follower sends its list). An older filter refuses a field it does
// not know and NACKs the whole configuration (shown here with the current filter on a misspelt field),
// so without this a controller upgraded before the filter would leave every proxy on its old routes
// through a failover.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { decodeReport, type DecodedReport } from "../../controller/telemetry/report.js";
import { FEATURE_REPORT_WINDOW_MS, PAUSE_WRITES_FEATURE, featureGap } from "../../controller/xds/features.js";
import { TYPE } from "../../protocol/protos.js";
import { controlPlane, component, adsClient, RawAds, NODE } from "../support/xds.js";
import { config, component as filterComponent, filterModule, get, rig } from "../support/filter.js";
import { PluginHost } from "../../host/index.js";

/** One report from the real filter (node "sidecar-1"), decoded as the telemetry service decodes it. */
async function filterReport(): Promise<{ report: DecodedReport; clock: Awaited<ReturnType<typeof rig>>["clock"] }> {
  const r = await rig(config([filterComponent()]));
  const s = r.host.newHttpStream();
  s.sendRequestHeaders(get("/"), true);
  s.sendResponseHeaders([[":status", "200"]], true);
  s.complete();
  r.clock.advance(1000);
  const [call] = r.callouts.takeGrpc();
  assert.ok(call, "the filter reported");
  return { report: decodeReport(call!.req.message!), clock: r.clock };
}

test("the filter reports the features it knows; a proxy on ECDS that has not said it knows pause_writes, or a recent report without it, is listed", async () => {
  const { report, clock } = await filterReport();
  assert.equal(report.features, [PAUSE_WRITES_FEATURE], "this build names pause_writes in every report");
  const store = new TelemetryStore({ clock });
  let seq = report.sequence;
  const ingest = (node: string, features: string[] | undefined) => {
    const end = clock.realtimeNs();
    store.ingest({ ...report, nodeId: node, sequence: ++seq, windowStartUnixNanos: end - 1_000_000_000n, windowEndUnixNanos: end, features });
  };
  const cp = await controlPlane([component("a", 1, 2)], { wasm: { filename: "shadowmesh.wasm" } });
  const gap = featureGap({ ads: cp.server, store, group: "default", clock }, PAUSE_WRITES_FEATURE);
  const lacking = () => { clock.advance(1000); return gap().lacking; }; // computed at most once a second
  const client = adsClient(`127.0.0.1:${cp.port}`);
  const streams: RawAds[] = [];
  const open = async (node: string, typeUrl: string, names: string[]) => {
    const s = new RawAds(client);
    streams.push(s);
    s.send({ node: NODE(node), type_url: typeUrl, resource_names: names });
    await s.next();
  };
  try {
    // A proxyless client (listeners only) does not take the filter: it does not count.
    await open("proxyless", TYPE.listener, []);
    assert.equal(lacking(), [], "no proxy takes the filter's configuration");
    await open("sidecar-1", TYPE.extension, ["shadowmesh"]);
    assert.equal(cp.server.subscribers("default", TYPE.extension), ["sidecar-1"]);
    assert.equal(lacking(), ["sidecar-1"], "on ECDS, no report yet: not known to have it");
    ingest("sidecar-1", undefined);
    assert.equal(lacking(), ["sidecar-1"], "an older filter's report (no features)");
    ingest("sidecar-1", [PAUSE_WRITES_FEATURE]);
    assert.equal(lacking(), [], "every proxy on ECDS knows it");
    await open("sidecar-2", TYPE.extension, ["shadowmesh"]);
    assert.equal(lacking(), ["sidecar-2"], "a new proxy joins: listed until it reports");
    ingest("sidecar-2", [PAUSE_WRITES_FEATURE]);
    assert.equal(lacking(), []);
    // A node connected elsewhere (another HA replica's proxy, its reports forwarded here) with an older filter.
    ingest("elsewhere", []);
    assert.equal(lacking(), ["elsewhere"]);
    clock.advance(FEATURE_REPORT_WINDOW_MS);
    ingest("sidecar-1", [PAUSE_WRITES_FEATURE]);
    ingest("sidecar-2", [PAUSE_WRITES_FEATURE]);
    assert.equal(lacking(), [], "a report over a minute old no longer counts (the node is gone, or upgraded)");
    // A proxy on another HA replica's ECDS that has not reported anywhere: that replica's list names it.
    store.setReplicaSubscribers("replica-b", ["on-b", "sidecar-1"]);
    assert.equal(lacking(), ["on-b"], "listed by its replica, no report yet");
    ingest("on-b", [PAUSE_WRITES_FEATURE]);
    assert.equal(lacking(), [], "its forwarded report names the feature");
    store.setReplicaSubscribers("replica-b", ["on-b", "new-on-b"]);
    assert.equal(lacking(), ["new-on-b"], "the replica's newest list replaces the last");
    clock.advance(FEATURE_REPORT_WINDOW_MS);
    ingest("sidecar-1", [PAUSE_WRITES_FEATURE]);
    ingest("sidecar-2", [PAUSE_WRITES_FEATURE]);
    assert.equal(lacking(), [], "a replica silent for a minute no longer counts");
    // Bad feature lists are refused by name.
    assert.throws(() => ingest("x", ["Pause-Writes"]), /features\[0\]: "Pause-Writes" is not a feature name/);
    assert.throws(() => ingest("x", Array.from({ length: 33 }, (_, i) => `f${i}`)), /features: 33 entries, at most 32/);
  } finally {
    for (const s of streams) s.close();
    client.close();
    await cp.close();
  }
});

test("why it matters: a filter NACKs a configuration carrying a field it does not know", async () => {
  // The current filter on a field it does not know stands for an older one on pause_writes_ms.
  const host = await PluginHost.create({ wasm: filterModule(), pluginConfig: config([filterComponent()]) });
  try {
    assert.not.ok(host.reconfigure(config([filterComponent({ pause_writes_msx: 5000 } as Record<string, unknown>)])), "refused");
    assert.ok(host.logs.some((l) => /pause_writes_msx/.test(l.message)), "the refusal names the field");
  } finally { host.shutdown(); }
});

test.run();
