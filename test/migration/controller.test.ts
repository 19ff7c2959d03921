// The controller process end to end on loopback: configuration errors name line and field; the API
// refuses calls without credentials (UNAUTHENTICATED) and bad requests (INVALID_ARGUMENT, NOT_FOUND,
// FAILED_PRECONDITION) with the reason; a promote is streamed to watchers, shows in /metrics, reaches
// the event webhook through its retries, and the `shadowmesh` CLI prints it as a table.
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import { parseConfig, ConfigError } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { controllerClient, authMetadata, type ControllerClient } from "../../controller/api/service.js";
import { silentLogger } from "../../controller/log.js";

const TOKEN = "test-token-0123456789";
const dir = mkdtempSync(path.join(tmpdir(), "sm-controller-"));
let ctl: RunningController;
let hook: http.Server;
const hookBodies: { message: string }[] = [];
let hookCalls = 0;

function config(hookPort: number): string {
  return `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["${TOKEN}"] }
stateDir: ${dir}/state
policy: policy.yaml
tickMs: 50
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
webhooks:
  - url: http://127.0.0.1:${hookPort}/events
`;
}

function call<T>(c: ControllerClient, method: string, req: object, md = authMetadata(c)): Promise<T> {
  return new Promise((resolve, reject) => c[method]!(req, md, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));
}
async function rejects(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try { await p; } catch (e) { return e as grpc.ServiceError; }
  throw new Error("expected the call to fail");
}

/** The CLI as a child process (asynchronously: the controller answering it runs in this process). */
function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["bin/shadowmesh.mjs", ...args], { env: { ...process.env, ...env } }, (e, stdout, stderr) =>
      resolve({ status: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

test.before(async () => {
  hook = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      hookCalls++;
      if (hookCalls <= 2) { res.writeHead(503); res.end("busy"); return; } // the first two fail: retried
      hookBodies.push(JSON.parse(body));
      res.writeHead(204); res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  writeFileSync(path.join(dir, "policy.yaml"), "defaults:\n  bake: 5s\ncomponents:\n  orders: {}\n");
  const file = path.join(dir, "controller.yaml");
  writeFileSync(file, config((hook.address() as { port: number }).port));
  ctl = await startController(parseConfig(config((hook.address() as { port: number }).port), file), { log: silentLogger() });
});

test.after(async () => {
  await ctl.stop();
  hook.close();
  rmSync(dir, { recursive: true });
});

test("configuration errors name the file, line and field", () => {
  const bad = config(1).replace('endpoints: ["127.0.0.1:7002"]', 'endpoints: ["localhost"]');
  assert.throws(() => parseConfig(bad, "c.yaml"), (e: unknown) => e instanceof ConfigError && /^c\.yaml:11:\d+: components\[0\]\.shadow\.endpoints\[0\]: must be "host:port"/.test((e as Error).message));
  const noAuth = config(1).replace(`api: { tokens: ["${TOKEN}"] }`, "api: {}");
  assert.throws(() => parseConfig(noAuth, "c.yaml"), (e: unknown) => /c\.yaml:3:\d+: api: the API needs credentials/.test((e as Error).message));
  assert.throws(() => parseConfig(config(1) + "extra: 1\n", "c.yaml"), (e: unknown) => /extra: unknown field \(allowed: listen, api, stateDir/.test((e as Error).message));
  // The failover floor's limits: each checked, and max against base (the filter's default base 10 s when not given).
  const floor = (f: string) => config(1).replace('shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }', `shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }\n    filter: { floor: ${f} }`);
  assert.throws(() => parseConfig(floor("{ max_ejection_ms: 5000 }"), "c.yaml"), (e: unknown) => /components\[0\]\.filter\.floor\.max_ejection_ms: must be at least base_ejection_ms \(10000\), got 5000/.test((e as Error).message));
  assert.throws(() => parseConfig(floor("{ failure_share: 1.5 }"), "c.yaml"), (e: unknown) => /components\[0\]\.filter\.floor\.failure_share/.test((e as Error).message));
  assert.throws(() => parseConfig(floor("{ shadow_fit: true }"), "c.yaml"), (e: unknown) => /shadow_fit: unknown field/.test((e as Error).message), "fitness is the engine's call");
  assert.equal(parseConfig(floor("{ consecutive_failures: 5, base_ejection_ms: 2000 }"), "c.yaml").components[0]!.filter, { floor: { consecutive_failures: 5, base_ejection_ms: 2000 } });
  // Proxy-side telemetry TLS needs a TLS telemetry server, and a client certificate needs its key.
  const dp = (extra: string) => config(1) + `dataplane: { listener: 127.0.0.1:0, wasm: x.wasm, telemetryTls: ${extra} }\n`;
  assert.throws(() => parseConfig(dp("{ ca: /etc/ca.crt }"), "c.yaml"), (e: unknown) => /dataplane\.telemetryTls: the proxies would speak TLS to a plaintext telemetry server/.test((e as Error).message));
  assert.throws(() => parseConfig(dp("{ ca: /etc/ca.crt, cert: /etc/c.crt }"), "c.yaml"), (e: unknown) => /dataplane\.telemetryTls/.test((e as Error).message));
  // The component's admin token for the webhook, from the environment (never in the file).
  const hook = (a: string) => config(1).replace('shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }', `shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }\n    actions: ${a}`);
  assert.throws(() => parseConfig(hook('{ webhook: "http://127.0.0.1:7002/admin/actions", tokenEnv: KV_TOKEN }'), "c.yaml", { SHADOWMESH_TOKEN: TOKEN }), (e: unknown) => /components\[0\]\.actions\.tokenEnv: environment variable KV_TOKEN is not set/.test((e as Error).message));
  const withToken = parseConfig(hook('{ webhook: "http://127.0.0.1:7002/admin/actions", headers: { x-a: b }, tokenEnv: KV_TOKEN }'), "c.yaml", { SHADOWMESH_TOKEN: TOKEN, KV_TOKEN: "kv-admin-token-123456" });
  assert.equal(withToken.components[0]!.actions, { webhook: "http://127.0.0.1:7002/admin/actions", headers: { "x-a": "b", authorization: "Bearer kv-admin-token-123456" } });
});

test("the API refuses calls without valid credentials: UNAUTHENTICATED", async () => {
  const anon = controllerClient(`127.0.0.1:${ctl.ports.api}`, null);
  let e = await rejects(call(anon, "listComponents", {}, new grpc.Metadata()));
  assert.is(e.code, grpc.status.UNAUTHENTICATED);
  assert.match(e.details, /no credentials/);
  const wrong = controllerClient(`127.0.0.1:${ctl.ports.api}`, "not-the-token-at-all");
  e = await rejects(call(wrong, "pause", { component: "orders" }));
  assert.is(e.code, grpc.status.UNAUTHENTICATED);
  assert.match(e.details, /not accepted/);
  anon.close(); wrong.close();
});

test("bad requests: INVALID_ARGUMENT, NOT_FOUND and FAILED_PRECONDITION with the reason", async () => {
  const c = controllerClient(`127.0.0.1:${ctl.ports.api}`, TOKEN);
  let e = await rejects(call(c, "getComponent", { name: "" }));
  assert.is(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /component: required/);
  e = await rejects(call(c, "getComponent", { name: "billing" }));
  assert.is(e.code, grpc.status.NOT_FOUND);
  assert.match(e.details, /unknown component "billing" \(known: orders\)/);
  e = await rejects(call(c, "resume", { component: "orders" }));
  assert.is(e.code, grpc.status.FAILED_PRECONDITION);
  assert.match(e.details, /resume orders: not paused \(phase Healthy\)/);
  e = await rejects(call(c, "setPolicy", { component: "orders", policyYaml: "components:\n  orders:\n    steps: [5, 1, 100]\n" }));
  assert.is(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /policy_yaml:3:\d+: components\.orders\.steps\[1\]: weights must increase/);
  const ok = await call<{ message: string }>(c, "setPolicy", { component: "orders", policyYaml: "components:\n  orders:\n    steps: [10, 100]\n    bake: 5s\n" });
  assert.is(ok.message, "policy of orders replaced");
  assert.is((await call<{ stepCount: number }>(c, "getComponent", { name: "orders" })).stepCount, 2);
  c.close();
});

test("a promote is streamed to watchers, counted in /metrics, delivered to the webhook after retries, and shown by the CLI", async () => {
  const c = controllerClient(`127.0.0.1:${ctl.ports.api}`, TOKEN);
  const seen: { message: string; phase: string }[] = [];
  const stream = c.watchEvents({ component: "orders", replay: 0 }, authMetadata(c));
  stream.on("data", (e: { message: string; phase: string }) => seen.push(e));
  stream.on("error", () => {});
  await new Promise((r) => setTimeout(r, 100));
  const r = await call<{ message: string; phase: string }>(c, "promote", { component: "orders", reason: "drill" });
  assert.is(r.phase, "Preflight");
  for (let i = 0; i < 100 && !seen.some((e) => /Healthy -> Preflight: manual promote/.test(e.message)); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(seen.some((e) => /Healthy -> Preflight: manual promote by token-1/.test(e.message)), JSON.stringify(seen));
  stream.cancel();

  const metrics = await (await fetch(`http://127.0.0.1:${ctl.ports.http}/metrics`)).text();
  assert.match(metrics, /shadowmesh_migration_phase\{component="orders",phase="Preflight"\} 1/);
  assert.match(metrics, /shadowmesh_xds_publishes_total [1-9]/);
  // The failover state: no data yet, so the shadow is not fit, nothing is held, epoch 1, no proxy reporting.
  assert.match(metrics, /shadowmesh_shadow_fit\{component="orders"\} 0/);
  assert.match(metrics, /shadowmesh_writes_held\{component="orders"\} 0/);
  assert.match(metrics, /shadowmesh_writer_epoch\{component="orders"\} 1/);
  assert.match(metrics, /shadowmesh_floor_proxies\{component="orders",state="ejecting"\} 0/);
  assert.match(metrics, /shadowmesh_migration_phase\{component="orders",phase="Failover"\} 0/);

  for (let i = 0; i < 300 && !hookBodies.some((b) => /manual promote/.test(b.message)); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(hookBodies.some((b) => /manual promote/.test(b.message)), "the webhook got the event");
  assert.ok(hookCalls >= 3, "after two refusals");

  const cli = await run(["status", "--address", `127.0.0.1:${ctl.ports.api}`, "--token", TOKEN]);
  assert.is(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^COMPONENT\s+PHASE\s+STEP\s+SHADOW\s+WRITES\s+RISK/);
  assert.match(cli.stdout, /\norders\s+Preflight\s+-\s+0%\s+primary\s+no data/);
  const denied = await run(["pause", "orders", "--address", `127.0.0.1:${ctl.ports.api}`], { SHADOWMESH_TOKEN: "" });
  assert.is(denied.status, 1);
  assert.match(denied.stderr, /shadowmesh: UNAUTHENTICATED: no credentials/);
  c.close();
});

test.run();
