// The follower's telemetry forwarder: reports wait (bounded) while no leader is known, for an
// election or a slow etcd, and reach the leader in order once one is; a replica that leads forwards
// nothing and drops what waited (it merged those itself). Before, a flush that found no leader
// dropped every queued report (the HA benchmark lost ~60 % of the forwarded reports under load).
// A follower also sends its filter subscribers, so the leader counts a proxy that has not reported.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { TelemetryForwarder } from "../../controller/ha/forward.js";
import { TelemetryStore } from "../../controller/telemetry/store.js";
import { addTelemetryService } from "../../controller/telemetry/service.js";
import { RiskEngine } from "../../controller/risk/engine.js";
import { FailurePredictor } from "../../controller/risk/predictor.js";
import { DEFAULT_SIGNALS } from "../../controller/config.js";
import { silentLogger } from "../../controller/log.js";
import { component, config, get, rig, roundTrip } from "../support/filter.js";
import { until } from "../support/until.js";

/** n consecutive real reports of one filter worker (sequences 1..n). */
async function reports(n: number) {
  const r = await rig(config([component()]));
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    roundTrip(r, get());
    r.clock.advance(999);
    const calls = r.callouts.takeGrpc();
    out.push(Buffer.from(calls[0]!.req.message!));
    calls[0]!.reply({ status: 0, message: new Uint8Array(0) });
  }
  return { out, clock: r.clock };
}

async function leaderPort(clock: import("../../host/clock.js").ManualClock) {
  const store = new TelemetryStore({ clock });
  const engine = new RiskEngine({ clock, predictor: new FailurePredictor() });
  engine.setComponent({ name: "orders", signals: DEFAULT_SIGNALS });
  const server = new grpc.Server();
  addTelemetryService(server, { store, engine, clock, log: silentLogger() });
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { store, port, close: () => server.forceShutdown() };
}

test("reports wait while no leader is known, then reach it in order: none dropped, none refused", async () => {
  const { out, clock } = await reports(30);
  const leader = await leaderPort(clock);
  let known = false;
  const f = new TelemetryForwarder({ leader: () => (known ? { replica: "r0", telemetry: `127.0.0.1:${leader.port}` } : null), leading: () => false, log: silentLogger() });
  try {
    for (const b of out) f.forward(b);
    await new Promise((r) => setTimeout(r, 300)); // a few flushes find no leader
    assert.is(f.stats.calls, 0);
    assert.is(f.stats.dropped, 0, "kept while the election runs");
    known = true;
    await until("the reports to be merged at the leader", () => f.stats.forwarded === out.length, 5000);
    assert.equal([f.stats.merged, f.stats.refused, f.stats.dropped], [30, 0, 0], JSON.stringify(f.stats));
    assert.is(leader.store.stats.reports, 30, "in order: every sequence taken (an overtaken one would be refused as a duplicate)");
  } finally { f.close(); leader.close(); }
});

test("a replica that leads forwards nothing; one that comes to lead drops what waited (merged here already)", async () => {
  const { out, clock } = await reports(3);
  const leader = await leaderPort(clock);
  const target = { replica: "r0", telemetry: `127.0.0.1:${leader.port}` };
  let leading = false, known = false;
  const f = new TelemetryForwarder({ leader: () => (known ? target : null), leading: () => leading, log: silentLogger() });
  try {
    f.forward(out[0]!); // waits: no leader known yet
    await new Promise((r) => setTimeout(r, 100));
    leading = true; known = true; // this replica won the election: a leader address is known, and it is this one
    await new Promise((r) => setTimeout(r, 400)); // past the retry: the wait ends by dropping, not sending
    f.forward(out[1]!); // merged here as the leader: not queued
    leading = false; // and if it follows again later, nothing old is left to send
    await new Promise((r) => setTimeout(r, 400));
    assert.equal([f.stats.calls, f.stats.forwarded, f.stats.dropped], [0, 0, 0], JSON.stringify(f.stats));
    assert.is(leader.store.stats.reports, 0, "nothing reached the other port");
  } finally { f.close(); leader.close(); }
});

test("a follower sends its filter subscribers to the leader with no report to carry them, then its newest list every few seconds", async () => {
  const { clock } = await reports(1);
  const leader = await leaderPort(clock);
  let known = false, nodes = ["sidecar-a", "sidecar-b"];
  const f = new TelemetryForwarder({ leader: () => (known ? { replica: "r0", telemetry: `127.0.0.1:${leader.port}` } : null), leading: () => false, log: silentLogger(), subscribers: { replica: "r1", nodes: () => nodes } });
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(leader.store.replicaSubscribers(60_000), [], "no leader known yet");
    known = true;
    await until("the list to reach the leader", () => leader.store.replicaSubscribers(60_000).length === 2, 5000);
    assert.equal(leader.store.replicaSubscribers(60_000), ["sidecar-a", "sidecar-b"]);
    assert.equal([f.stats.forwarded, f.stats.calls], [0, 1], "one call, no reports in it");
    nodes = ["sidecar-c"];
    await until("the next list (every SUBSCRIBERS_MS)", () => leader.store.replicaSubscribers(60_000)[0] === "sidecar-c", 8000);
  } finally { f.close(); leader.close(); }
});

test.run();
