// Version skew between the controller and the filter: pause_writes_ms goes out only while every proxy
// taking the filter's configuration (an ECDS subscriber) has reported knowing it (FilterReport.features),
// wired as controller/main.ts wires it. An older filter refuses a field it does not know and NACKs the
// whole configuration (shown here with the current filter on a misspelt field), so without the check a
// controller upgraded before the filter would leave every proxy on its old routes through a failover.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { decodeReport, type DecodedReport } from "../../controller/telemetry/report.js";
import { TYPE } from "../../protocol/protos.js";
import { controlPlane, component, adsClient, RawAds, NODE } from "../support/xds.js";
import { config, component as filterComponent, filterModule, get, rig } from "../support/filter.js";
import { PluginHost } from "../../host/index.js";

const PAUSE = { weights: { primary: 0, shadow: 10_000 }, mirrorFraction: 0, writeTarget: "primary" as const, pauseWritesMs: 5000 };

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

test("the filter reports the features it knows; pause_writes_ms is left out while a proxy on ECDS lacks pause_writes", async () => {
  const { report, clock } = await filterReport();
  assert.equal(report.features, ["pause_writes"], "this build names pause_writes in every report");
  const store = new TelemetryStore({ clock });
  let seq = report.sequence;
  const ingest = (node: string, features: string[] | undefined) => store.ingest({ ...report, nodeId: node, sequence: ++seq, ...(features ? { features } : { features: undefined }) });
  let server: Awaited<ReturnType<typeof controlPlane>>["server"] | null = null;
  const cp = await controlPlane([component("a", 1, 2)], {
    wasm: { filename: "shadowmesh.wasm" },
    lackingFeature: (group, feature) => store.lackingFeature(server!.subscribers(group, TYPE.extension), feature),
  });
  server = cp.server;
  const client = adsClient(`127.0.0.1:${cp.port}`);
  const streams: RawAds[] = [];
  const open = async (node: string, typeUrl: string, names: string[]) => {
    const s = new RawAds(client);
    streams.push(s);
    s.send({ node: NODE(node), type_url: typeUrl, resource_names: names });
    await s.next();
  };
  const paused = () => JSON.parse(cp.router.pluginConfig()).components[0].pause_writes_ms;
  try {
    // A proxyless client (listeners only) does not take the filter: it does not count.
    await open("proxyless", TYPE.listener, []);
    cp.router.setRoutes("a", PAUSE);
    assert.is(paused(), 5000, "no proxy takes the filter's configuration: nothing to hold it back");
    await open("sidecar-1", TYPE.extension, ["shadowmesh"]);
    assert.equal(cp.server.subscribers("default", TYPE.extension), ["sidecar-1"]);
    assert.is(paused(), undefined, "a proxy on ECDS that has not reported yet is not known to have the feature");
    ingest("sidecar-1", undefined);
    assert.is(paused(), undefined, "an older filter's report (no features) keeps the pause out");
    ingest("sidecar-1", ["pause_writes"]);
    assert.is(paused(), 5000, "every proxy on ECDS knows it: the pause goes out");
    await open("sidecar-2", TYPE.extension, ["shadowmesh"]);
    assert.is(paused(), undefined, "a new proxy joins: out again until it reports");
    ingest("sidecar-2", ["pause_writes"]);
    assert.is(paused(), 5000);
    // The rest of the routes are published either way.
    const c = JSON.parse(cp.router.pluginConfig()).components[0];
    assert.equal([c.write_target, c.shadow_weight_bp], ["primary", 10_000]);
    // Bad feature lists are refused by name.
    assert.throws(() => store.ingest({ ...report, nodeId: "x", sequence: ++seq, features: ["Pause-Writes"] }), /features\[0\]: "Pause-Writes" is not a feature name/);
    assert.throws(() => store.ingest({ ...report, nodeId: "x", sequence: ++seq, features: Array.from({ length: 33 }, (_, i) => `f${i}`) }), /features: 33 entries, at most 32/);
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
