// Failures for the failure model, end to end on loopback: `shadowmesh incident mark COMPONENT --at TIME`
// records an operator's incident through the API (authenticated, the author recorded), refuses an
// unknown component, a future time and a malformed one with the reason; entering Failover records the
// controller's own failure (and Healthy its end); `shadowmesh model` and GetModel show the model in use,
// /metrics its gauges and the incidents counted by source; the history survives a restart.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import { parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { controllerClient, authMetadata, type ControllerClient } from "../../controller/api/service.js";
import { parseIncidentTime } from "../../controller/cli.js";
import { silentLogger } from "../../controller/log.js";

const TOKEN = "incident-token-0123456789";
const dir = mkdtempSync(path.join(tmpdir(), "sm-incident-"));
const file = path.join(dir, "controller.yaml");
const CONFIG = `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: [{ name: oncall, token: ${TOKEN} }] }
stateDir: ${dir}/state
tickMs: 50
learning: { sampleEveryS: 1, retrainEveryS: 3600 }
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
`;
let ctl: RunningController;

function call<T>(c: ControllerClient, method: string, req: object, md = authMetadata(c)): Promise<T> {
  return new Promise((resolve, reject) => c[method]!(req, md, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));
}
async function rejects(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try { await p; } catch (e) { return e as grpc.ServiceError; }
  throw new Error("expected the call to fail");
}
function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["bin/shadowmesh.mjs", ...args, "--address", `127.0.0.1:${ctl.ports.api}`, "--token", TOKEN], (e, stdout, stderr) =>
      resolve({ status: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${ctl.ports.http}/metrics`)).text();
}

test.before(async () => {
  writeFileSync(file, CONFIG);
  ctl = await startController(parseConfig(CONFIG, file), { log: silentLogger() });
});
test.after(async () => {
  await ctl.stop();
  rmSync(dir, { recursive: true });
});

test("incident times: RFC 3339 with an offset, relative, now; the future and anything else refused with the reason", () => {
  const now = Date.parse("2026-11-30T14:00:00Z");
  assert.equal(parseIncidentTime("-15m", now), { agoMs: 900_000 });
  assert.equal(parseIncidentTime("-1.5h", now), { agoMs: 5_400_000 });
  assert.equal(parseIncidentTime("now", now), { agoMs: 0 });
  assert.equal(parseIncidentTime("2026-11-30T13:05:00Z", now), { atUnixMs: Date.parse("2026-11-30T13:05:00Z") });
  assert.equal(parseIncidentTime("2026-11-30T15:05:00+02:00", now), { atUnixMs: Date.parse("2026-11-30T13:05:00Z") });
  assert.throws(() => parseIncidentTime("15m", now), /--at 15m: in the future; .*write -15m/);
  assert.throws(() => parseIncidentTime("2026-11-30T15:00:00Z", now), /in the future \(now is 2026-11-30T14:00:00\.000Z\)/);
  assert.throws(() => parseIncidentTime("2026-11-30 13:05", now), /expected an RFC 3339 time with its offset/);
  assert.throws(() => parseIncidentTime("yesterday", now), /expected an RFC 3339 time/);
});

test("`incident mark` records the operator's failure with its author; unknown components and future times are refused", async () => {
  const ok = await run(["incident", "mark", "orders", "--at", "-15m", "--note", "disk full on the primary"]);
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^incident of orders at \d{4}-\d\d-\d\dT[\d:.]+Z recorded by oncall; the failure model retrains at the next tick/);
  const f = ctl.history.failures().at(-1)!;
  assert.is(f.source, "operator");
  assert.is(f.note, "disk full on the primary");
  assert.is(f.by, "oncall");
  assert.ok(Math.abs(Date.now() - 900_000 - f.atMs) < 10_000, "15 minutes before the controller's now");

  const unknown = await run(["incident", "mark", "billing", "--at", "-5m"]);
  assert.is(unknown.status, 1);
  assert.match(unknown.stderr, /shadowmesh: NOT_FOUND: unknown component "billing" \(known: orders\)/);
  const future = await run(["incident", "mark", "orders", "--at", new Date(Date.now() + 3_600_000).toISOString()]);
  assert.is(future.status, 1);
  assert.match(future.stderr, /in the future/);
  const bad = await run(["incident", "mark", "orders", "--at", "last tuesday"]);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /--at "last tuesday": expected an RFC 3339 time/);
  assert.is(ctl.history.failures().length, 1, "nothing recorded by the refused marks");

  // The API checks too (a client other than the CLI): the future, both forms, neither, credentials.
  const c = controllerClient(`127.0.0.1:${ctl.ports.api}`, TOKEN);
  let e = await rejects(call(c, "markIncident", { component: "orders", atUnixMs: Date.now() + 3_600_000 }));
  assert.is(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /^at: .* is in the future \(the controller's time is /);
  e = await rejects(call(c, "markIncident", { component: "orders", atUnixMs: Date.now() - 1000, agoMs: 1000 }));
  assert.match(e.details, /give one of them, not both/);
  e = await rejects(call(c, "markIncident", { component: "orders" }));
  assert.match(e.details, /at_unix_ms: required/);
  const anon = controllerClient(`127.0.0.1:${ctl.ports.api}`, "wrong-token-0123456789");
  e = await rejects(call(anon, "markIncident", { component: "orders", agoMs: 0 }));
  assert.is(e.code, grpc.status.UNAUTHENTICATED);
  const at = Date.now() - 60_000;
  const r = await call<{ atUnixMs: number }>(c, "markIncident", { component: "orders", atUnixMs: at, note: "" });
  assert.is(r.atUnixMs, at);
  c.close(); anon.close();
  assert.match(await metrics(), /shadowmesh_incidents_marked_total\{source="operator"\} 2/);
});

test("entering Failover records the controller's failure, Healthy its end", async () => {
  // The operators' marks retrain the model at the next tick: let that happen first, so the model
  // below counts the two marks and not this failover (a race between the tick and this test otherwise).
  for (let i = 0; i < 100 && ctl.learner.model.failures !== 2; i++) await new Promise((r) => setTimeout(r, 50));
  assert.is(ctl.learner.model.failures, 2, "the retrain after the operators' marks");
  const now = Date.now();
  ctl.manager.emit("event", { atMs: now, component: "orders", kind: "phase", phase: "Failover", message: "Shifting -> Failover: the primary is down: 9 of 10 proxies eject it", severity: "error" });
  const f = ctl.history.failures().at(-1)!;
  assert.equal({ ...f }, { component: "orders", atMs: now, source: "controller", note: "Shifting -> Failover: the primary is down: 9 of 10 proxies eject it" });
  assert.ok(ctl.history.isDown("orders"));
  // Failover again before the recovery (a rollback that found the primary still down): the same outage.
  ctl.manager.emit("event", { atMs: now + 1000, component: "orders", kind: "phase", phase: "Failover", message: "RollingBack -> Failover: the primary is down", severity: "error" });
  assert.is(ctl.history.failures().filter((f) => f.source === "controller").length, 1);
  ctl.manager.emit("event", { atMs: now + 5000, component: "orders", kind: "phase", phase: "Healthy", message: "Restoring -> Healthy", severity: "info" });
  assert.not.ok(ctl.history.isDown("orders"));
  assert.is(ctl.history.failures().at(-1)!.recoveredMs, now + 5000);
  assert.match(await metrics(), /shadowmesh_incidents_marked_total\{source="controller"\} 1/);
});

test("`shadowmesh model`, GetModel and /metrics show the model in use (the prior, with the reason)", async () => {
  // The operators' marks made the learner retrain (waited for above); the failover's retrain waits a minute.
  const c = controllerClient(`127.0.0.1:${ctl.ports.api}`, TOKEN);
  const m = await call<{ source: string; reason: string; horizonS: number; failures: number; nextRetrainUnixMs: number; weights: { kind: string; weight: number }[] }>(c, "getModel", {});
  c.close();
  assert.is(m.source, "prior");
  assert.match(m.reason, /^the prior: too few data: 2 failures recorded \(needs 3\); 0 positive samples \(needs 30\)/);
  assert.is(m.failures, 2);
  assert.ok(m.nextRetrainUnixMs - Date.now() > 50_000 && m.nextRetrainUnixMs - Date.now() <= 60_000, `retrain a minute after the failover: in ${m.nextRetrainUnixMs - Date.now()} ms`);
  assert.is(m.horizonS, 900);
  assert.is(m.weights.find((w) => w.kind === "error_rate")!.weight, 5);
  const cli = await run(["model"]);
  assert.is(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^Failure model: prior\n  the prior: too few data/);
  assert.match(cli.stdout, /Horizon:\s+900 s/);
  assert.match(cli.stdout, /\nerror_rate\s+5\.00\n/);
  const text = await metrics();
  assert.match(text, /\nshadowmesh_predictor_trained 0\n/);
  assert.match(text, /\nshadowmesh_predictor_samples \d+\n/);
  assert.match(text, /\nshadowmesh_predictor_positives \d+\n/);
  assert.match(text, /\nshadowmesh_predictor_trained_timestamp_seconds \d+(\.\d+)?\n/);
  assert.match(text, /# HELP shadowmesh_predictor_brier /);
  assert.match(text, /# HELP shadowmesh_predictor_ece /);
  const state = await (await fetch(`http://127.0.0.1:${ctl.ports.http}/api/state`)).json() as { model: { source: string; horizonS: number } };
  assert.is(state.model.source, "prior");
  assert.is(state.model.horizonS, 900);
});

test("the failures survive a restart", async () => {
  await ctl.stop();
  ctl = await startController(parseConfig(CONFIG, file), { log: silentLogger() });
  assert.equal(ctl.history.failures().map((f) => f.source), ["operator", "operator", "controller"]);
  assert.is(ctl.history.failures()[0]!.by, "oncall");
  assert.equal(ctl.learner.model.failures, 2, "model.json loaded (saved by the retrain after the marks)");
});

test.run();
