// The controller for Istio sidecars (dataplane without a listener): it publishes only the filter's
// ECDS configuration, whose module is fetched from the controller's own HTTP port (remote code with
// the module's sha256, through the cluster a sidecar knows: outbound|PORT||HOST) and whose telemetry
// cluster is the sidecar's name for the controller's telemetry port; it serves the module bytes with
// that digest; no LDS listener of its own. A configuration that leaves the sidecars without a module
// is refused by field. Readiness: /readyz and grpc.health.v1 on the API and telemetry ports (SERVING; an unknown service NOT_FOUND).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { ConfigError, parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { silentLogger } from "../../controller/log.js";
import { healthClient } from "../../controller/api/health.js";
import { unpack } from "../../protocol/protos.js";
import { NODE, RawAds, TYPE, adsClient, resourcesOf } from "../support/xds.js";
import { testControllerYaml } from "../support/controller-config.js";

const CTL = "shadowmesh-controller.shadowmesh-system.svc.cluster.local";
const WASM_URL = `http://${CTL}:18080/wasm/shadowmesh.wasm`;
const dataplane = (fields: string) => testControllerYaml({ token: "istio-token-0123456789", extra: `dataplane: { wasm: build/shadowmesh.wasm${fields} }\n` });
const ISTIO = `, wasmUrl: "${WASM_URL}", wasmCluster: "outbound|18080||${CTL}", telemetryCluster: "outbound|18001||${CTL}"`;

test("configuration: without a listener the sidecars need wasmUrl and wasmCluster, together, at the path the controller serves", () => {
  const bad = (fields: string, re: RegExp) => assert.throws(() => parseConfig(dataplane(fields), "c.yaml"), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), fields);
  bad("", /c\.yaml:\d+:\d+: dataplane\.wasmUrl: without a listener .* give wasmUrl and wasmCluster/);
  bad(`, wasmUrl: "${WASM_URL}"`, /dataplane\.wasmCluster: wasmUrl and wasmCluster go together/);
  bad(`, wasmUrl: "http://${CTL}:18080/filter.wasm", wasmCluster: x`, /dataplane\.wasmUrl: the controller serves the module at \/wasm\/shadowmesh\.wasm/);
  const ok = parseConfig(dataplane(ISTIO), "c.yaml");
  assert.is(ok.dataplane?.listener, null);
  assert.is(ok.dataplane?.telemetryCluster, `outbound|18001||${CTL}`);
});

test("Istio mode: ECDS only, remote code from the controller checked by sha256, the sidecar's cluster names; ready", async () => {
  const ctl: RunningController = await startController(parseConfig(dataplane(ISTIO), `${process.cwd()}/c.yaml`), { log: silentLogger() });
  const client = adsClient(`127.0.0.1:${ctl.ports.xds}`);
  const s = new RawAds(client);
  try {
    const bytes = readFileSync("build/shadowmesh.wasm");
    const sha = createHash("sha256").update(bytes).digest("hex");
    const served = await fetch(`http://127.0.0.1:${ctl.ports.http}/wasm/shadowmesh.wasm`);
    assert.is(served.status, 200);
    assert.is(served.headers.get("content-type"), "application/wasm");
    assert.is(createHash("sha256").update(Buffer.from(await served.arrayBuffer())).digest("hex"), sha, "the bytes served are the module");

    s.send({ node: NODE("sidecar-1"), type_url: TYPE.extension, resource_names: ["shadowmesh"] });
    const [ext] = resourcesOf(await s.next());
    const wasm = unpack((ext as any).typed_config) as any;
    const remote = wasm.config.vm_config.code.remote;
    assert.equal([remote.http_uri.uri, remote.http_uri.cluster, remote.sha256], [WASM_URL, `outbound|18080||${CTL}`, sha]);
    assert.is(wasm.config.fail_open, true);
    const plugin = JSON.parse((unpack(wasm.config.configuration) as { value: string }).value);
    assert.is(plugin.telemetry.cluster, `outbound|18001||${CTL}`);
    s.send({ type_url: TYPE.listener, resource_names: [] });
    const lds = resourcesOf(await s.next()) as { name: string }[];
    assert.not.ok(lds.some((l) => l.name === "shadowmesh-ingress"), `no Envoy listener of the controller's own: ${lds.map((l) => l.name).join(", ")}`);

    const ready = await fetch(`http://127.0.0.1:${ctl.ports.http}/readyz`);
    assert.is(ready.status, 200);
    assert.ok(((await ready.json()) as { xdsSnapshot: string | null }).xdsSnapshot, "ready with a snapshot to serve");
    const h = healthClient(`127.0.0.1:${ctl.ports.api}`);
    const check = (service: string) => new Promise<{ status?: string; code?: number }>((resolve) => h.check({ service }, (e: grpc.ServiceError | null, r: { status: string }) => resolve(e ? { code: e.code } : { status: r.status })));
    assert.equal(await check(""), { status: "SERVING" });
    assert.equal(await check("shadowmesh.controller.v1.Controller"), { status: "SERVING" });
    assert.equal(await check("nope"), { code: grpc.status.NOT_FOUND });
    h.close();
    // The same on the telemetry port: plaintext where the API has TLS, for Kubernetes' grpc probes.
    const t = healthClient(`127.0.0.1:${ctl.ports.telemetry}`);
    const tr = await new Promise<string>((resolve, reject) => t.check({ service: "" }, (e: grpc.ServiceError | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))));
    assert.is(tr, "SERVING");
    t.close();
  } finally {
    s.close();
    client.close();
    await ctl.stop();
  }
});

test.run();
