// The real proxyless client: @grpc/grpc-js-xds channels (xds:///NAME) resolve through our ADS
// server and follow its weights.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { WHO_METHODS, WHO_SERVICE, component, controlPlane, whoServer } from "../support/xds.js";

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
  const channels = [0, 1, 2].map(() => new Who("xds:///orders", grpc.credentials.createInsecure()) as grpc.Client & { Name: Function });
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

test.run();
