// The CLI in the conventions users bring from kubectl, istioctl and Argo Rollouts, as a child process
// against a controller on loopback: --version; -o json|yaml|wide and a refused format named; lint
// over every file shipped in envoy/ and the demo policy (all pass), and over broken ones (each problem
// named by file and path; a compose file skipped, never passed); proxy-status with a real ADS stream
// that ACKed clusters and NACKed routes; wait --for phase=... (met, timed out, a bad phase);
// promote (one step from Healthy starts the migration), abort (Argo's: back to the primary);
// set-policy -f; a bash completion script.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import YAML from "yaml";
import { parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { silentLogger } from "../../controller/log.js";
import { adsClient } from "../../protocol/ads.js";
import { testControllerYaml } from "../support/controller-config.js";
import { NODE, RawAds, TYPE } from "../support/xds.js";

const TOKEN = "cli-token-0123456789abcdef";
const dir = mkdtempSync(path.join(tmpdir(), "sm-cli-"));
let ctl: RunningController;

function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["bin/shadowmesh.mjs", ...args], { env: { ...process.env, SHADOWMESH_TOKEN: TOKEN, ...env } }, (e, stdout, stderr) =>
      resolve({ status: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
const at = () => ["--address", `127.0.0.1:${ctl.ports.api}`];

test.before(async () => {
  writeFileSync(path.join(dir, "policy.yaml"), "defaults:\n  bake: 5s\ncomponents:\n  orders: {}\n");
  ctl = await startController(parseConfig(testControllerYaml({ token: TOKEN, policy: path.join(dir, "policy.yaml") }), path.join(dir, "controller.yaml")), { log: silentLogger() });
});
test.after(async () => { await ctl.stop(); rmSync(dir, { recursive: true }); });

test("--version prints package.json's version; completion bash names every command", async () => {
  // Independent invocations run at once (each is a process of its own).
  const [v, c, z] = await Promise.all([run(["--version"]), run(["completion", "bash"]), run(["completion", "tcsh"])]);
  const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
  assert.match(v.stdout, new RegExp(`^shadowmesh ${version.replace(/\./g, "\\.")} \\(revision `));
  assert.is(c.status, 0);
  for (const w of ["complete -F _shadowmesh shadowmesh", "proxy-status", "set-policy", "wait", "lint", "--output"]) assert.ok(c.stdout.includes(w), `completion has ${w}`);
  assert.is(z.status, 1);
  assert.match(z.stderr, /completion: "tcsh" is not supported \(bash\)/);
});

test("status -o json|yaml|wide: the API's message for scripts, more columns for people; a bad format is named", async () => {
  const [j, y, w, bad, m] = await Promise.all([
    run(["status", ...at(), "-o", "json"]), run(["status", "orders", ...at(), "-o", "yaml"]), run(["status", ...at(), "-o", "wide"]),
    run(["status", ...at(), "-o", "xml"]), run(["model", ...at(), "-o", "json"]),
  ]);
  assert.is(j.status, 0, j.stderr);
  const list = JSON.parse(j.stdout) as { components: { name: string; phase: string }[] };
  assert.equal(list.components.map((c) => [c.name, c.phase]), [["orders", "Healthy"]]);
  assert.is((YAML.parse(y.stdout) as { name: string }).name, "orders");
  assert.match(w.stdout.split("\n")[0]!, /COMPONENT\s+PHASE.*P\(FAIL\)\s+SHADOW-RISK\s+FIT\s+EPOCH\s+FENCED\s+HELD\s+STATUS/);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /-o\/--output: "xml" is not a format \(table, wide, json, yaml\)/);
  assert.is((JSON.parse(m.stdout) as { source: string }).source, "prior");
});

test("impact and plan --budget: nothing recorded yet is said so; the plan as a table or JSON; a bad budget is named", async () => {
  const budgets = ["abc", "-5", "1e3x"];
  const [i, j, p, pj, missing, ...bads] = await Promise.all([
    run(["impact", ...at()]), run(["impact", ...at(), "-o", "json"]), run(["plan", ...at(), "--budget", "250"]),
    run(["plan", ...at(), "--budget", "250", "-o", "json"]), run(["plan", ...at()]), ...budgets.map((b) => run(["plan", ...at(), "--budget", b])),
  ]);
  assert.is(i.status, 0, i.stderr);
  assert.match(i.stdout, /no callers recorded yet/);
  assert.equal((JSON.parse(j.stdout) as { ranking: unknown[] }).ranking, []);
  assert.is(p.status, 0, p.stderr);
  assert.match(p.stdout, /COMPONENT\s+VERDICT\s+COST\/MONTH/);
  assert.match(p.stdout, /0 of 0 shadows chosen for 0\.00\/month of 250\.00/);
  assert.is((JSON.parse(pj.stdout) as { budget: number }).budget, 250);
  budgets.forEach((b, k) => {
    const bad = bads[k]!;
    assert.is(bad.status, 1);
    assert.match(bad.stderr, new RegExp(`--budget: expected an amount a month \\(0 or more, e\\.g\\. 250\\), got "${b.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`));
  });
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /required option '--budget <amount>'/);
});

test("status --watch prints again every --interval until interrupted; a bad interval is named", async () => {
  const child = spawn(process.execPath, ["bin/shadowmesh.mjs", "status", ...at(), "--watch", "--interval", "300ms", "-o", "json"], { env: { ...process.env, SHADOWMESH_TOKEN: TOKEN } });
  let out = "";
  child.stdout.on("data", (d) => { out += d.toString(); });
  const t0 = Date.now();
  while ((out.match(/"components"/g) ?? []).length < 3 && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
  child.kill("SIGINT");
  assert.ok((out.match(/"components"/g) ?? []).length >= 3, `three snapshots printed: ${out.slice(0, 300)}`);
  const bad = await run(["status", ...at(), "--watch", "--interval", "often"]);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /--interval: expected a duration like 30s, 5m or 500ms, got "often"/);
});

test("lint: every file shipped in envoy/ and the demo policy pass; broken files are named by file and path", async () => {
  const shipped = [...readdirSync("envoy").filter((f) => /\.ya?ml$/.test(f)).map((f) => `envoy/${f}`), ...readdirSync("deploy/istio").filter((f) => f.endsWith(".yaml")).map((f) => `deploy/istio/${f}`), "deploy/istio/alternatives/wasmplugin.yaml", "world/demo/policy.yaml"];
  const ok = await run(["lint", ...shipped]);
  assert.is(ok.status, 0, ok.stdout + ok.stderr);
  for (const f of shipped) assert.match(ok.stdout, new RegExp(`^${f.replace(/\./g, "\\.")}: (ok|skipped)`, "m"));
  assert.match(ok.stdout, /envoy\/docker-compose\.yaml: skipped/, "a compose file is skipped, not passed");
  const bootstrap = path.join(dir, "bad-bootstrap.yaml");
  writeFileSync(bootstrap, readFileSync("envoy/bootstrap-static.yaml", "utf8").replace("static_resources:", "static_resources:\n  bogus_field: 1"));
  const routeTo = path.join(dir, "bad-route.yaml");
  const b = YAML.parse(readFileSync("envoy/bootstrap-static.yaml", "utf8"));
  JSON.stringify(b, (_k, v) => { if (v && typeof v === "object" && v.route && typeof v.route.cluster === "string") v.route.cluster = "nowhere"; return v; });
  writeFileSync(routeTo, YAML.stringify(b));
  const manifest = path.join(dir, "old.yaml");
  writeFileSync(manifest, "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: { name: orders }\nspec: { host: orders }\n");
  const policy = path.join(dir, "bad-policy.yaml");
  writeFileSync(policy, "defaults:\n  bake: soon\n");
  const r = await run(["lint", bootstrap, routeTo, manifest, policy]);
  assert.is(r.status, 1);
  assert.match(r.stdout, /bad-bootstrap\.yaml.*bogus_field/);
  assert.match(r.stdout, /bad-route\.yaml: .*route\.cluster: nowhere is not a static cluster/);
  assert.match(r.stdout, /old\.yaml\[0\] \(DestinationRule orders\): apiVersion networking\.istio\.io\/v1beta1 is deprecated/);
  assert.match(r.stdout, /bad-policy\.yaml:2:\d+: defaults\.bake/);
});

test("proxy-status: per proxy and resource type, sent, ACKed, NACKed with the error", async () => {
  const s = new RawAds(adsClient(`127.0.0.1:${ctl.ports.xds}`));
  try {
    s.send({ node: NODE("proxy-a"), type_url: TYPE.cluster });
    const c1 = await s.next();
    s.send({ type_url: TYPE.cluster, version_info: c1.version_info, response_nonce: c1.nonce });
    s.send({ type_url: TYPE.route, resource_names: ["orders-route"] });
    const r1 = await s.next();
    s.send({ type_url: TYPE.route, resource_names: ["orders-route"], response_nonce: r1.nonce, error_detail: { code: 3, message: "route rejected: test" } });
    let t = await run(["proxy-status", ...at()]);
    for (let i = 0; i < 20 && !/NACKED/.test(t.stdout); i++) { await new Promise((r) => setTimeout(r, 100)); t = await run(["proxy-status", ...at()]); }
    assert.is(t.status, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`proxy-a\\s+CDS\\s+${c1.version_info}\\s+${c1.version_info}\\s+SYNCED`));
    assert.match(t.stdout, new RegExp(`proxy-a\\s+RDS\\s+${r1.version_info}\\s+-\\s+NACKED\\s+route rejected: test`));
    const j = JSON.parse((await run(["proxy-status", ...at(), "-o", "json"])).stdout) as { proxies: { node: string; resources: { type: string; state: string; error: string }[] }[] };
    const rds = j.proxies.find((p) => p.node === "proxy-a")!.resources.find((x) => x.type === "RDS")!;
    assert.equal([rds.state, rds.error], ["nacked", "route rejected: test"]);
    // -o wide names what its filter reported knowing: "-" before any report from it.
    assert.match((await run(["proxy-status", ...at(), "-o", "wide"])).stdout, /PROXY\s+GROUP\s+PROTOCOL\s+FILTER FEATURES\s+TYPE[\s\S]*proxy-a\s+\S+\s+sotw\s+-\s+CDS/);
    const endNs = BigInt(Date.now()) * 1_000_000n;
    const report = { nodeId: "proxy-a", workerId: 1n, windowStartUnixNanos: endNs - 1_000_000_000n, windowEndUnixNanos: endNs, filterErrors: 0, configGeneration: 1, components: new Map() };
    ctl.telemetry.ingest({ ...report, sequence: 1 });
    assert.match((await run(["proxy-status", ...at(), "-o", "wide"])).stdout, /proxy-a\s+\S+\s+sotw\s+none\s+CDS/, "an older filter: none");
    ctl.telemetry.ingest({ ...report, sequence: 2, features: ["pause_writes"] });
    assert.match((await run(["proxy-status", ...at(), "-o", "wide"])).stdout, /proxy-a\s+\S+\s+sotw\s+pause_writes\s+CDS/);
    const a = (JSON.parse((await run(["proxy-status", ...at(), "-o", "json"])).stdout) as { proxies: { node: string; filterFeatures: string[]; filterReported: boolean }[] }).proxies.find((p) => p.node === "proxy-a")!;
    assert.equal([a.filterFeatures, a.filterReported], [["pause_writes"], true]);
  } finally { s.close(); }
});

test("wait --for phase=...: met at once, timed out with the phase it is in, a bad phase named", async () => {
  const t0 = Date.now();
  const [met, late, bad] = await Promise.all([
    run(["wait", "orders", ...at(), "--for", "phase=Healthy|Migrated", "--timeout", "5s"]),
    run(["wait", "orders", ...at(), "--for", "phase=Migrated", "--timeout", "1s"]),
    run(["wait", "orders", ...at(), "--for", "phase=Done"]),
  ]);
  assert.is(met.status, 0, met.stderr);
  assert.match(met.stdout, /orders: phase Healthy/);
  assert.is(late.status, 1);
  assert.match(late.stderr, /timed out after 1s waiting for orders to reach phase=Migrated: phase Healthy/);
  assert.ok(Date.now() - t0 < 10_000);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /--for: Done is not a phase/);
});

test("set-policy -f replaces the policy; promote (one step) starts a migration from Healthy; abort returns to the primary", async () => {
  const pol = path.join(dir, "orders-policy.yaml");
  writeFileSync(pol, "defaults:\n  bake: 7s\ncomponents:\n  orders: {}\n");
  const sp = await run(["set-policy", "orders", ...at(), "-f", pol]);
  assert.is(sp.status, 0, sp.stderr);
  const missing = await run(["set-policy", "orders", ...at(), "-f", path.join(dir, "nope.yaml")]);
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /--file .*nope\.yaml: cannot read/);
  const p = await run(["promote", "orders", ...at(), "--reason", "drill"]);
  assert.is(p.status, 0, p.stderr);
  assert.match(p.stdout, /orders: migration started \(preflight checks still apply\) \(phase Preflight\)/);
  const a = await run(["abort", "orders", ...at()]);
  assert.is(a.status, 0, a.stderr);
  assert.match(a.stdout, /orders: rolling back \(phase RollingBack\)/);
});

test.run();
