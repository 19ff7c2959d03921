// Configuration checks that keep a controller from starting exposed or half-configured: a server
// (xds, api, telemetry) listening beyond loopback without TLS needs listen.allowInsecure; ports are
// 1..65535 (listen addresses may use 0: any free port); TLS files and stateDir are checked when the
// file is loaded, and the `shadowmesh` CLI prints every such error with the file and the reason.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { parseConfig, loadConfig, ConfigError, isLoopback } from "../../controller/config.js";
import { testControllerYaml } from "../support/controller-config.js";

const dir = mkdtempSync(path.join(tmpdir(), "sm-config-checks-"));
const TOKEN = "checks-token-0123456789";

function config(o: { listen?: string; api?: string; extra?: string; shadowEndpoint?: string } = {}): string {
  return `listen: ${o.listen ?? `{ xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }`}
api: ${o.api ?? `{ tokens: ["${TOKEN}"] }`}
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["${o.shadowEndpoint ?? "127.0.0.1:7002"}"] }
${o.extra ?? ""}`;
}
const listen = (xds: string, telemetry: string, api: string, more = "") => `{ xds: "${xds}", telemetry: "${telemetry}", api: "${api}", http: "0.0.0.0:0"${more} }`;
const refuses = (text: string, re: RegExp) =>
  assert.throws(() => parseConfig(text, "c.yaml"), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), re.source);

test.after(() => rmSync(dir, { recursive: true }));

test("ha: each bad field is refused with FILE:LINE:COL and its path; a good block resolves with its defaults", () => {
  const yaml = (ha: string) => testControllerYaml({ token: "t".repeat(32), extra: `${ha}\n` });
  const err = (ha: string, env: NodeJS.ProcessEnv = {}) => { try { parseConfig(yaml(ha), "c.yaml", env, { checkFiles: false }); return "accepted"; } catch (e) { return (e as Error).message; } };
  assert.match(err("ha: { etcd: { endpoints: [] } }"), /^c\.yaml:\d+:\d+: ha\.etcd\.endpoints: needs at least one etcd endpoint/);
  assert.match(err('ha: { etcd: { endpoints: ["not a url"] } }'), /ha\.etcd\.endpoints\[0\]: Invalid URL/);
  assert.match(err('ha: { etcd: { endpoints: ["http://a:2379"], prefix: nope } }'), /ha\.etcd\.prefix: must start and end with \//);
  assert.match(err('ha: { etcd: { endpoints: ["http://a:2379"] }, leaseTtl: 5 }'), /ha\.leaseTtl: unknown field/);
  assert.match(err('ha: { etcd: { endpoints: ["http://a:2379"] }, advertiseEnv: POD_IP }'), /ha\.advertiseEnv: environment variable POD_IP is not set/);
  assert.match(err('ha: { etcd: { endpoints: ["http://a:2379"] }, advertise: x, advertiseEnv: POD_IP }', { POD_IP: "10.0.0.1" }), /ha\.advertiseEnv: give advertise or advertiseEnv, not both/);
  const ok = parseConfig(yaml('ha: { etcd: { endpoints: ["http://a:2379"] }, replica: r0, advertiseEnv: POD_IP }'), "c.yaml", { POD_IP: "10.0.0.1" }, { checkFiles: false });
  assert.equal(ok.ha, { endpoints: ["http://a:2379"], prefix: "/shadowmesh/", callTimeoutMs: 3000, replica: "r0", leaseTtlS: 5, advertise: "10.0.0.1" });
});

test("observe and impact: each bad field is refused with FILE:LINE:COL and its path; defaults record callers from the proxy's workload", () => {
  const yaml = (extra: string) => testControllerYaml({ token: "t".repeat(32), extra: `${extra}\n` });
  const err = (extra: string) => { try { parseConfig(yaml(extra), "c.yaml", {}, { checkFiles: false }); return "accepted"; } catch (e) { return (e as Error).message; } };
  assert.match(err("impact: { callers: { from: [header] } }"), /^c\.yaml:\d+:\d+: impact\.callers\.header: is required when from lists header/);
  assert.match(err("impact: { callers: { from: [node, node] } }"), /impact\.callers\.from: lists a source twice/);
  assert.match(err("impact: { callers: { from: [cookie] } }"), /impact\.callers\.from\[0\]: Invalid option/);
  assert.match(err("impact: { callers: { from: [header], header: X-Caller } }"), /impact\.callers\.header: a lower-case HTTP header name/);
  assert.match(err("impact: { tiers: { web: -1 } }"), /impact\.tiers\.web: /);
  assert.match(err("impact: { expectedReduction: 1.5 }"), /impact\.expectedReduction: /);
  assert.match(err("impact: { resources: { web: { cores: 2 } } }"), /impact\.resources\.web\.cores: unknown field/);
  assert.match(err('observe: [{ name: orders, hostnames: [o2.svc], cluster: { name: o2, endpoints: ["127.0.0.1:1"] } }]'), /observe\[0\]\.name: orders is already a protected component/);
  assert.match(err('observe: [{ name: web, hostnames: [web.svc], cluster: { name: orders-primary, endpoints: ["127.0.0.1:1"] } }]'), /observe\[0\]\.cluster\.name: the cluster orders-primary is already used/);
  assert.match(err('observe: [{ name: web, hostnames: [], cluster: { name: web, endpoints: ["127.0.0.1:1"] } }]'), /observe\[0\]\.hostnames: /);
  const ok = parseConfig(yaml('observe: [{ name: web, hostnames: [web.svc], cluster: { name: web, endpoints: ["127.0.0.1:1"] } }]'), "c.yaml", {}, { checkFiles: false });
  assert.equal(ok.impact!.callers, { from: ["node"], topK: 16 });
  assert.is(ok.observe![0]!.cluster.endpoints[0]!.port, 1);
  assert.is(parseConfig(yaml("impact: { callers: { enabled: false } }"), "c.yaml", {}, { checkFiles: false }).impact!.callers, null);
});

test("loopback is 127.0.0.0/8, ::1 and localhost", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"]) assert.ok(isLoopback(h), h);
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "controller", "128.0.0.1", "localhost.example.com"]) assert.not.ok(isLoopback(h), h);
});

test("beyond loopback without TLS is refused naming the field; TLS or listen.allowInsecure lets it start", () => {
  const tls = "{ cert: s.crt, key: s.key, clientCa: ca.crt }";
  refuses(config({ listen: listen("0.0.0.0:18000", "127.0.0.1:0", "127.0.0.1:0") }),
    /^c\.yaml:1:\d+: listen\.xds: 0\.0\.0\.0:18000 is reachable beyond loopback without TLS: set xds\.tls \{cert, key, clientCa\}, or acknowledge plaintext with listen\.allowInsecure: \[xds\]$/);
  refuses(config({ listen: listen("127.0.0.1:0", "127.0.0.1:0", "[::]:18002") }), /listen\.api: \[::\]:18002 is reachable beyond loopback without TLS: set api\.tls/);
  refuses(config({ listen: listen("127.0.0.1:0", "controller:18001", "127.0.0.1:0") }), /listen\.telemetry: controller:18001 is reachable beyond loopback without TLS: .*acknowledge plaintext with listen\.allowInsecure: \[telemetry\]/);
  // TLS on the server, or the acknowledgement, each for its own server only.
  parseConfig(config({ listen: listen("0.0.0.0:18000", "127.0.0.1:0", "127.0.0.1:0"), extra: `xds: { tls: ${tls} }` }), "c.yaml");
  parseConfig(config({ listen: listen("127.0.0.1:0", "127.0.0.1:0", "0.0.0.0:18002"), api: `{ tokens: ["${TOKEN}"], tls: ${tls} }` }), "c.yaml");
  parseConfig(config({ listen: listen("0.0.0.0:18000", "0.0.0.0:18001", "0.0.0.0:18002", ", allowInsecure: [xds, telemetry, api]") }), "c.yaml");
  refuses(config({ listen: listen("0.0.0.0:18000", "0.0.0.0:18001", "127.0.0.1:0", ", allowInsecure: [xds]") }), /listen\.telemetry: 0\.0\.0\.0:18001 is reachable beyond loopback/);
  refuses(config({ listen: listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ", allowInsecure: [xds]"), extra: `xds: { tls: ${tls} }` }), /listen\.allowInsecure: xds has TLS \(xds\.tls\): remove it from the list/);
  refuses(config({ listen: listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ", allowInsecure: [http]") }), /listen\.allowInsecure\[0\]/);
  // Loopback needs neither, in any spelling; the HTTP endpoint (/metrics, dashboard) is not covered by the rule.
  parseConfig(config({ listen: listen("localhost:0", "[::1]:0", "127.0.0.2:0") }), "c.yaml");
});

test("ports: 99999 is refused naming the field; 0 only where a listener binds any free port", () => {
  refuses(config({ shadowEndpoint: "127.0.0.1:99999" }), /^c\.yaml:7:\d+: components\[0\]\.shadow\.endpoints\[0\]: port must be 1\.\.65535, got 99999$/);
  refuses(config({ shadowEndpoint: "127.0.0.1:0" }), /components\[0\]\.shadow\.endpoints\[0\]: port must be 1\.\.65535, got 0/);
  refuses(config({ listen: listen("127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:0") }), /^c\.yaml:1:\d+: listen\.xds: port must be 0\.\.65535 \(0: any free port\), got 99999$/);
  // The data plane's listener is bound too (the demo uses port 0).
  refuses(config({ extra: "dataplane: { listener: 0.0.0.0:70000, wasm: f.wasm }" }), /dataplane\.listener: port must be 0\.\.65535 \(0: any free port\), got 70000/);
  assert.is(parseConfig(config({ shadowEndpoint: "127.0.0.1:65535" }), "c.yaml").components[0]!.route.shadow.endpoints[0]!.port, 65535);
});

test("loadConfig: a missing TLS file, a stateDir that is a file, a missing or oversized configuration name the file and the reason", () => {
  const write = (name: string, text: string) => { const f = path.join(dir, name); writeFileSync(f, text); return f; };
  const loads = (f: string, re: RegExp) => assert.throws(() => loadConfig(f), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), re.source);
  writeFileSync(path.join(dir, "server.crt"), "x");
  loads(write("tls.yaml", config({ api: `{ tokens: ["${TOKEN}"], tls: { cert: server.crt, key: missing.key } }` })),
    new RegExp(`tls\\.yaml:2:\\d+: api\\.tls\\.key: cannot read ${path.join(dir, "missing.key").replace(/[.]/g, "\\.")}: no such file or directory \\(ENOENT\\)`));
  loads(write("xtls.yaml", config({ extra: "xds: { tls: { cert: server.crt, key: server.crt, clientCa: nowhere/ca.crt } }" })), /xtls\.yaml:8:\d+: xds\.tls\.clientCa: cannot read .*nowhere\/ca\.crt: no such file or directory \(ENOENT\)/);
  mkdirSync(path.join(dir, "a-dir"), { recursive: true });
  loads(write("dirtls.yaml", config({ extra: "xds: { tls: { cert: a-dir, key: server.crt } }" })), /xds\.tls\.cert: .*a-dir is not a file/);
  writeFileSync(path.join(dir, "state-file"), "");
  loads(write("state.yaml", config({ extra: "stateDir: state-file" })), /state\.yaml:8:1: stateDir: .*state-file is not a directory/);
  loads(write("state2.yaml", config({ extra: "stateDir: state-file/sub" })), /stateDir: cannot use .*state-file\/sub: not a directory \(ENOTDIR\)/);
  loads(path.join(dir, "absent.yaml"), /absent\.yaml:0:0: \(document\): cannot read: no such file or directory \(ENOENT\)/);
  loads(write("big.yaml", config() + `# ${"x".repeat(300_000)}\n`), /big\.yaml:1:1: \(document\): 300,\d{3} bytes is over the limit of 262,144/);
  // All present: it loads (stateDir that does not exist yet is created by the store).
  const ok = loadConfig(write("ok.yaml", config({ extra: "stateDir: new-state\nxds: { tls: { cert: server.crt, key: server.crt } }" })));
  assert.is(ok.stateDir, path.join(dir, "new-state"));
});

/** The CLI as a child process. */
function run(args: string[]): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["bin/shadowmesh.mjs", ...args], { env: { ...process.env, SHADOWMESH_TOKEN: TOKEN } }, (e, _stdout, stderr) =>
      resolve({ status: e ? Number((e as { code?: number }).code ?? 1) : 0, stderr }));
  });
}

test("the CLI prints each file error with the file and the reason (never 'undefined: undefined')", async () => {
  const write = (name: string, text: string) => { const f = path.join(dir, name); writeFileSync(f, text); return f; };
  writeFileSync(path.join(dir, "state-file2"), "");
  const [tls, state, port, ca] = await Promise.all([
    run(["controller", "--config", write("cli-tls.yaml", config({ api: `{ tokens: ["${TOKEN}"], tls: { cert: gone.crt, key: gone.key } }` }))]),
    run(["controller", "--config", write("cli-state.yaml", config({ extra: "stateDir: state-file2" }))]),
    run(["controller", "--config", write("cli-port.yaml", config({ shadowEndpoint: "127.0.0.1:99999" }))]),
    run(["status", "--address", "127.0.0.1:1", "--ca", path.join(dir, "no-ca.crt")]),
  ]);
  for (const r of [tls, state, port, ca]) {
    assert.is.not(r.status, 0);
    assert.not.match(r.stderr, /undefined/);
  }
  assert.match(tls.stderr, new RegExp(`^shadowmesh: .*cli-tls\\.yaml:2:\\d+: api\\.tls\\.cert: cannot read .*gone\\.crt: no such file or directory \\(ENOENT\\)\\n$`));
  assert.match(state.stderr, /^shadowmesh: .*cli-state\.yaml:8:1: stateDir: .*state-file2 is not a directory\n$/);
  assert.match(port.stderr, /^shadowmesh: .*cli-port\.yaml:7:\d+: components\[0\]\.shadow\.endpoints\[0\]: port must be 1\.\.65535, got 99999\n$/);
  assert.match(ca.stderr, /^shadowmesh: --ca .*no-ca\.crt: cannot read: no such file or directory \(ENOENT\)\n$/);
});

test.run();
