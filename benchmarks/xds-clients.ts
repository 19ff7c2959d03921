// Child process of xds.bench.ts: opens N raw SotW ADS streams to the server (PER_CONNECTION per
// TCP connection, like many proxies), subscribes each to one route, and ACKs every response at
// once. Tells the parent "ready" when every stream holds the initial version.
import * as grpc from "@grpc/grpc-js";
import { adsClient } from "../protocol/ads.js";
import { TYPE } from "../protocol/protos.js";

const [port, total, perConnection] = process.argv.slice(2).map(Number) as [number, number, number];
const clients: ReturnType<typeof adsClient>[] = [];
let ready = 0;
for (let i = 0; i < total; i++) {
  if (i % perConnection === 0) clients.push(adsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  const call = clients.at(-1)!.StreamAggregatedResources();
  let first = true;
  call.on("data", (res: Record<string, any>) => {
    call.write({ type_url: res.type_url, resource_names: ["orders-route"], version_info: res.version_info, response_nonce: res.nonce });
    if (first) { first = false; if (++ready === total) process.send!({ ready: true }); }
  });
  call.on("error", (e: Error) => process.send!({ error: e.message }));
  call.write({ node: { id: `bench-${i}`, locality: { zone: "z" } }, type_url: TYPE.route, resource_names: ["orders-route"] });
}
process.on("message", (m: { exit?: boolean }) => { if (m.exit) process.exit(0); });
