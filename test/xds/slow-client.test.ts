// A client that stops reading must not slow the others, and must not make the server queue every
// version for it: while it is blocked changes are coalesced, and it gets the latest on drain.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { NODE, RawAds, TYPE, adsClient, component } from "../support/xds.js";
import { AdsServer } from "../../controller/xds/server.js";
import { SnapshotCache } from "../../controller/xds/cache.js";
import { Snapshot } from "../../controller/xds/snapshot.js";
import { buildCluster, buildLoadAssignment } from "../../controller/xds/resources.js";
import { silentLogger } from "../../controller/log.js";
import { lookupType } from "../../protocol/protos.js";
import http2 from "node:http2";

/**
 * A gRPC ADS stream over a bare HTTP/2 session that stops reading when told: unlike a paused
 * grpc-js call (which keeps draining the connection into its own buffer), this lets HTTP/2 flow
 * control close the window, as a stuck proxy would.
 */
function stuckClient(port: number, request: Record<string, unknown>) {
  const Req = lookupType("envoy.service.discovery.v3.DiscoveryRequest"), Res = lookupType("envoy.service.discovery.v3.DiscoveryResponse");
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const stream = session.request({
    ":method": "POST", ":path": "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
    "content-type": "application/grpc", te: "trailers",
  });
  const body = Req.encode(Req.fromObject(request)).finish();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  stream.write(frame);
  let buf = Buffer.alloc(0);
  const versions: string[] = [];
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const len = buf.readUInt32BE(1);
      versions.push(String((Res.decode(buf.subarray(5, 5 + len)) as unknown as { version_info: string }).version_info));
      buf = buf.subarray(5 + len);
    }
  };
  return {
    versions,
    read() { stream.on("data", onData); stream.resume(); },
    stop() { stream.removeListener("data", onData); stream.pause(); },
    close() { stream.close(); session.close(); },
  };
}

test("a stuck client is coalesced; a fast client on the same server keeps getting every version promptly", async () => {
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, logger: silentLogger() });
  const port = await server.listen("127.0.0.1:0");
  const A = component("big", 1, 2);
  const publish = (i: number) => {
    // ~100 KB per response: 4,000 endpoints, one of them changing each version.
    const endpoints = Array.from({ length: 4000 }, (_, k) => ({ address: `10.${(k >> 8) & 255}.${k & 255}.${i & 255}`, port: 8000 + (k % 1000) }));
    cache.setSnapshot("default", Snapshot.build(`v${i}`, {
      clusters: [buildCluster(A.primary)],
      endpoints: [buildLoadAssignment({ ...A.primary, endpoints })],
    }));
    return cache.getSnapshot("default")!.typeVersion(TYPE.endpoint);
  };
  publish(0);
  const fastClient = adsClient(`127.0.0.1:${port}`);
  const fast = new RawAds(fastClient);
  const slow = stuckClient(port, { node: NODE("slow"), type_url: TYPE.endpoint, resource_names: ["big-primary"] });
  try {
    slow.read();
    fast.send({ node: NODE("fast"), type_url: TYPE.endpoint, resource_names: ["big-primary"] });
    let r = await fast.next();
    while (slow.versions.length === 0) await new Promise((res) => setTimeout(res, 5));
    slow.stop(); // stops reading: the HTTP/2 window closes on the server
    const latencies: number[] = [];
    let last = "";
    for (let i = 1; i <= 40; i++) {
      fast.send({ type_url: TYPE.endpoint, resource_names: ["big-primary"], version_info: r.version_info, response_nonce: r.nonce });
      const t0 = Date.now();
      last = publish(i);
      r = await fast.next(2000);
      latencies.push(Date.now() - t0);
      assert.is(r.version_info, last, `fast client got version ${i}`);
    }
    latencies.sort((a, b) => a - b);
    assert.ok(latencies[Math.floor(latencies.length * 0.9)]! < 250, `fast client p90 ${latencies[Math.floor(latencies.length * 0.9)]} ms`);
    const st = server.status().find((s) => s.node === "slow")!;
    assert.ok(st.blocked, "the stuck stream is marked blocked");
    const before = slow.versions.length;
    slow.read();
    const t0 = Date.now();
    while (slow.versions.at(-1) !== last && Date.now() - t0 < 3000) await new Promise((res) => setTimeout(res, 10));
    assert.is(slow.versions.at(-1), last, "after draining, the slow client holds the latest version");
    const sent = slow.versions.length - before;
    assert.ok(sent <= 5, `while stuck it was sent ${sent} responses for 40 versions, not one per version`);
  } finally {
    slow.close(); fast.close(); fastClient.close();
    await server.close();
  }
});

test.run();
