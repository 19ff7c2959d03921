// The real proxyless client: @grpc/grpc-js-xds channels (xds:///NAME) resolve through our ADS
// server and follow its weights.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { TYPE, WHO_METHODS, WHO_SERVICE, component, controlPlane, whoServer } from "../support/xds.js";
import { Snapshot } from "../../controller/xds/snapshot.js";

type Env = Awaited<ReturnType<typeof setup>>;
let env: Env;

async function setup() {
  const primary = await whoServer("primary");
  const shadow = await whoServer("shadow");
  const cp = await controlPlane([component("orders", primary.port, shadow.port)]);
  // The bootstrap is read once per process, when the first xds channel is made.
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${cp.port}`, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] }],
    node: { id: "grpc-client-1", locality: { region: "eu-west", zone: "eu-west-1a" } },
  });
  const xds = await import("@grpc/grpc-js-xds");
  xds.register();
  const Who = grpc.makeGenericClientConstructor(WHO_METHODS, WHO_SERVICE);
  const channels = [0, 1, 2].map(() => new Who("xds:///orders", grpc.credentials.createInsecure()) as unknown as grpc.Client & { Name: Function });
  return { primary, shadow, cp, channels };
}

function call(c: grpc.Client & { Name: Function }): Promise<string> {
  return new Promise((resolve, reject) => {
    c.Name(Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err: Error | null, res: Buffer) => (err ? reject(err) : resolve(res.toString())));
  });
}

async function share(n: number): Promise<{ primary: number; shadow: number }> {
  const out = { primary: 0, shadow: 0 };
  const per = Math.ceil(n / env.channels.length);
  await Promise.all(env.channels.map(async (c) => {
    for (let i = 0; i < per; i++) out[(await call(c)) as "primary" | "shadow"]++;
  }));
  return out;
}

test.before(async () => { env = await setup(); });
test.after(() => {
  for (const c of env.channels) c.close();
  env.primary.close(); env.shadow.close();
  return env.cp.close();
});

test("three grpc-js-xds channels follow a 90/10 split within 3 sigma", async () => {
  const v = env.cp.router.setWeights("orders", { primary: 9000, shadow: 1000 });
  const verified = await env.cp.router.verify(v, 5000);
  const first = await share(30); // resolve and warm up
  assert.ok(first.primary + first.shadow === 30);
  const r = await share(1500);
  const n = r.primary + r.shadow;
  const sigma = Math.sqrt(n * 0.1 * 0.9);
  assert.ok(Math.abs(r.shadow - n * 0.1) <= 3 * sigma, `shadow got ${r.shadow} of ${n} (expected ${n * 0.1} +- ${(3 * sigma).toFixed(0)})`);
  assert.ok(verified.ok || verified.pending.length === 0, JSON.stringify(verified));
  assert.ok(env.cp.server.connectedNodes().includes("grpc-client-1"));
});

test("a pushed 0/100 is followed within 1 s, and verify() reports the client's ACK", async () => {
  const t0 = Date.now();
  const v = env.cp.router.setWeights("orders", { primary: 0, shadow: 10000 });
  let followedAt = 0;
  while (Date.now() - t0 < 3000) {
    const r = await Promise.all(env.channels.map((c) => call(c)));
    if (r.every((x) => x === "shadow")) { followedAt = Date.now() - t0; break; }
  }
  assert.ok(followedAt > 0 && followedAt <= 1000, `followed after ${followedAt} ms`);
  const verified = await env.cp.router.verify(v, 2000);
  assert.ok(verified.ok, JSON.stringify(verified));
  assert.ok(verified.acked.includes("grpc-client-1"));
  const r = await share(300);
  assert.equal(r, { primary: 0, shadow: 300 });
});

test("an invalid route is NACKed by the real client, verify() names it, and traffic stays on the last good version", async () => {
  const good = env.cp.cache.getSnapshot("default")!;
  const all = (t: (typeof TYPE)[keyof typeof TYPE]) => [...good.resources(t).values()].map((r) => structuredClone(r.object) as Record<string, any>);
  const routes = all(TYPE.route);
  for (const c of routes.find((r) => r.name === "orders-route")!.virtual_hosts[0].routes[0].route.weighted_clusters.clusters) c.weight = { value: 0 };
  const bad = Snapshot.build("bad-1", { listeners: all(TYPE.listener), routes, clusters: all(TYPE.cluster), endpoints: all(TYPE.endpoint), extensions: all(TYPE.extension) });
  env.cp.cache.setSnapshot("default", bad);
  const verified = await env.cp.server.verify("default", "bad-1", 3000);
  assert.not.ok(verified.ok);
  assert.is(verified.nacked[0]?.node, "grpc-client-1");
  assert.is(verified.nacked[0]?.type, "RDS");
  assert.ok(verified.nacked[0]!.error.length > 0, "the client's reason is kept");
  const r = await share(300);
  assert.equal(r, { primary: 0, shadow: 300 }, "still the last accepted 0/100");
  const recovered = env.cp.router.setWeights("orders", { primary: 10000, shadow: 0 });
  assert.ok((await env.cp.router.verify(recovered, 3000)).ok);
  const after = await share(60);
  assert.ok(after.primary >= 57, JSON.stringify(after));
});

test.run();
