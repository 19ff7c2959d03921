// Bounded policy YAML: the API's SetPolicy and policy files refuse documents over the size, keys and
// items, nesting and alias limits before parsing gets expensive, with the limit named (the API:
// RESOURCE_EXHAUSTED), and policy files name FILE:LINE:COLUMN. The documents that used to block the
// event loop (a 150k-key flow map of 2.3 MB, an alias bomb) are refused in well under a second.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { parseConfig } from "../../controller/config.js";
import { startController, type RunningController } from "../../controller/main.js";
import { controllerClient, authMetadata, type ControllerClient } from "../../controller/api/service.js";
import { loadPolicyFile, parsePolicy, PolicyError } from "../../controller/migration/policy.js";
import { YAML_LIMITS, yamlLimit } from "../../controller/yaml-config.js";
import { silentLogger } from "../../controller/log.js";
import { testControllerYaml } from "../support/controller-config.js";

const TOKEN = "limits-token-0123456789";
const dir = mkdtempSync(path.join(tmpdir(), "sm-limits-"));
let ctl: RunningController;
let c: ControllerClient;

/** A flow map of `n` keys under components (each about 16 bytes: 150k keys are 2.3 MB). */
const flowMap = (n: number, pad = "comp-") => `components: {${Array.from({ length: n }, (_, i) => `${pad}${i}: 1`).join(", ")}}\n`;
/** The billion laughs: 9 aliases per level, 9^7 strings once expanded. */
const aliasBomb = (() => {
  let s = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  const names = "abcdefgh";
  for (let i = 1; i < names.length; i++) s += `${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(",")}]\n`;
  return s;
})();
/** Few aliases in the text, many nodes once expanded: caught by the expansion cap. */
const expansionBomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";

function call<T>(method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) => c[method]!(req, authMetadata(c), (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));
}
/** The refusal and how long it took. */
async function refused(policyYaml: string): Promise<{ e: grpc.ServiceError; ms: number }> {
  const t = performance.now();
  try { await call("setPolicy", { component: "orders", policyYaml }); } catch (e) { return { e: e as grpc.ServiceError, ms: performance.now() - t }; }
  throw new Error("expected SetPolicy to refuse");
}

test.before(async () => {
  const cfg = testControllerYaml({ token: TOKEN });
  ctl = await startController(parseConfig(cfg, path.join(dir, "c.yaml")), { log: silentLogger() });
  c = controllerClient(`127.0.0.1:${ctl.ports.api}`, TOKEN);
});

test.after(async () => {
  c.close();
  await ctl.stop();
  rmSync(dir, { recursive: true });
});

test("SetPolicy: a 2.3 MB flow map of 150k keys is refused by its size, in well under a second", async () => {
  const doc = flowMap(150_000);
  assert.ok(doc.length > 2_200_000, `${doc.length} bytes`);
  const { e, ms } = await refused(doc);
  assert.is(e.code, grpc.status.RESOURCE_EXHAUSTED, e.details);
  assert.match(e.details, /^policy_yaml: 2,\d{3},\d{3} bytes is over the limit of 262,144$/);
  assert.ok(ms < 2000, `refused in ${ms.toFixed(0)} ms`);
  console.log(`  150k-key flow map (${doc.length} bytes): refused in ${ms.toFixed(1)} ms`);
});

test("SetPolicy: under the size limit, too many keys, too deep, too many aliases and an alias bomb are refused by name, fast", async () => {
  const small = flowMap(24_000, "k");
  assert.ok(small.length < YAML_LIMITS.maxBytes, `${small.length} bytes`);
  const cases: [string, string, RegExp][] = [
    ["24k-key flow map under 256 KiB", small, /^policy_yaml:1:\d+: \(document\): more than 5,000 keys and items \(the limit\)$/],
    ["6k-key block map", `components:\n${Array.from({ length: 6_000 }, (_, i) => `  k${i}: {}`).join("\n")}\n`, /more than 5,000 keys and items/],
    ["100k-deep flow nesting", `components: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`, /^policy_yaml:1:\d+: \(document\): nested deeper than the limit of 32$/],
    ["40-deep block nesting", Array.from({ length: 40 }, (_, i) => `${"  ".repeat(i)}k${i}:`).join("\n") + " 1\n", /nested deeper than the limit of 32/],
    ["alias bomb", aliasBomb, /^policy_yaml:\d+:\d+: \(document\): more than 32 aliases \(the limit\)$/],
    ["expansion bomb", expansionBomb, /aliases expand to too many nodes \(over the limit of 100 expansions/],
  ];
  for (const [what, doc, re] of cases) {
    const { e, ms } = await refused(doc);
    assert.is(e.code, grpc.status.RESOURCE_EXHAUSTED, `${what}: ${e.details}`);
    assert.match(e.details, re, what);
    assert.ok(ms < 2000, `${what}: refused in ${ms.toFixed(0)} ms`);
    console.log(`  ${what} (${doc.length} bytes): refused in ${ms.toFixed(1)} ms`);
  }
});

test("SetPolicy: a duplicate key is INVALID_ARGUMENT; a policy within the limits is still taken", async () => {
  const { e } = await refused("components:\n  orders: {}\n  orders: {}\n");
  assert.is(e.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e.details, /policy_yaml:3:3: \(document\): YAML syntax: Map keys must be unique/);
  // Many components, well inside the limits, parse in reasonable time (the keys are checked in linear time).
  const many = `components:\n${Array.from({ length: 1000 }, (_, i) => `  c${i}: {}`).join("\n")}\n  orders: { steps: [10, 100], bake: 5s }\n`;
  const t = performance.now();
  const ok = await call<{ message: string }>("setPolicy", { component: "orders", policyYaml: many });
  assert.is(ok.message, "policy of orders replaced");
  assert.ok(performance.now() - t < 2000);
});

test("policy files get the same limits with FILE:LINE:COLUMN", () => {
  const big = path.join(dir, "big.yaml");
  writeFileSync(big, flowMap(150_000));
  assert.throws(() => loadPolicyFile(big), (e: unknown) => e instanceof PolicyError && /big\.yaml:1:1: \(document\): 2,\d{3},\d{3} bytes is over the limit of 262,144/.test((e as Error).message));
  const deep = path.join(dir, "deep.yaml");
  writeFileSync(deep, `defaults:\n  steps: [1, 100]\ncomponents: ${"{a: ".repeat(50)}1${"}".repeat(50)}\n`);
  assert.throws(() => loadPolicyFile(deep), (e: unknown) => e instanceof PolicyError && /deep\.yaml:3:\d+: \(document\): nested deeper than the limit of 32/.test((e as Error).message));
  assert.throws(() => parsePolicy(aliasBomb, "bomb.yaml"), (e: unknown) => e instanceof PolicyError && yamlLimit(e) === "maxAliases" && /^bomb\.yaml:\d+:\d+: /.test((e as Error).message));
  assert.throws(() => parsePolicy(expansionBomb, "x.yaml"), (e: unknown) => e instanceof PolicyError && yamlLimit(e) === "aliasExpansion");
  assert.throws(() => parsePolicy(flowMap(24_000, "k"), "p.yaml"), (e: unknown) => yamlLimit(e) === "maxEntries" && /^p\.yaml:1:\d+:/.test((e as Error).message));
  // Anchors and a few aliases in an ordinary policy still work.
  const p = parsePolicy("defaults:\n  risk: &r { enter: 0.8, leave: 0.3 }\ncomponents:\n  orders: { risk: *r }\n", "ok.yaml");
  assert.is(p.components.get("orders")!.risk.enter, 0.8);
});

test.run();
