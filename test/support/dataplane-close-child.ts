// Child process of dataplane/close-race.test.ts: a data plane closed while a Wasm module is loading,
// once through a listener's inline filter and once through an ECDS update, then a callout after
// close(). The process must then exit by itself: a plugin loaded after close() must not keep
// ticking, a listener must not keep serving, and a callout must not open a connection.
import { EmbeddedDataPlane } from "../../dataplane/dataplane.js";
import { silentLogger } from "../../controller/log.js";
import { pack, TYPE } from "../../protocol/protos.js";
import { buildWasmFilterConfig } from "../../controller/xds/resources.js";
import { HeaderMap } from "../../host/headers.js";
import { config, WASM_PATH } from "./filter.js";
import { ordersCluster, wasmListener } from "./static-listener.js";

const filename = WASM_PATH.pathname;
const node = { id: "close-race", cluster: "t" };
const listener = wasmListener(filename, config());
const cluster = ordersCluster(9);

// 1. An inline filter: close() lands while the listener is opening (resolveWasm runs just before the load).
const a: EmbeddedDataPlane = new EmbeddedDataPlane({ staticResources: { listeners: [listener], clusters: [cluster] }, node, log: silentLogger(), resolveWasm: (f) => { void a.close(); return f; } });
a.start();

// 2. ECDS: an extension config arrives, and close() lands while its module loads.
const b = new EmbeddedDataPlane({ staticResources: { clusters: [cluster] }, node, log: silentLogger() });
const ecds = pack("envoy.config.core.v3.TypedExtensionConfig", buildWasmFilterConfig("shadowmesh", config(), { filename }));
const applied = (b as unknown as { apply(t: string, r: unknown[]): Promise<string | null> }).apply(TYPE.extension, [ecds]);
await b.close();
const nack = await applied;
if (nack !== null) throw new Error(`the ECDS update was refused: ${nack}`);

// 3. A plugin's callout after close() fails at once and opens nothing (cluster "orders" has an endpoint).
const status = await new Promise<string>((resolve) => b.upstreams.grpcCall({ worker: 0, contextId: 1, token: 1, upstream: "orders", service: "s", method: "m", initialMetadata: new HeaderMap([]), message: new Uint8Array(0), timeoutMs: 1000 }, (r) => resolve(`${r.status} ${r.statusMessage ?? ""}`)));
if (status !== "14 the data plane is closed") throw new Error(`a gRPC callout after close answered ${status}, not 14 (UNAVAILABLE) the data plane is closed`);

// What keeps the process alive, if anything does (unref'd: it never does itself).
setTimeout(() => console.log(`still alive, held by: ${process.getActiveResourcesInfo().join(", ")}`), 3000).unref();
console.log("closed both");
