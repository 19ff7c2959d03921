// Bugs the fuzzer found in the controller's input handling, each pinned by a test.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { ControllerFuzzer } from "../../scripts/fuzz/controller.js";
import { MAX_ACK_LOG_NODES } from "../../controller/xds/acks.js";
import { parsePolicy, PolicyError } from "../../controller/migration/policy.js";
import { ConfigError, parseConfig } from "../../controller/config.js";

const CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/** A stream that asks for clusters as `node` and ACKs what it got, then ends. */
const ackingStream = (node: string) => ({ delta: false, end: "end" as const, messages: [
  { raw: false, req: { node: { id: node }, type_url: CDS, resource_names: [], response_nonce: "", version_info: "" } },
  { raw: false, req: { node: { id: node }, type_url: CDS, resource_names: [], response_nonce: "@last", version_info: "@last" } },
] });

test("ADS: the per-node ACK log is bounded (every node id a client ever sent used to stay in memory after its stream closed)", async () => {
  const f = await ControllerFuzzer.create();
  try {
    const n = MAX_ACK_LOG_NODES + 50;
    for (let i = 0; i < n; i++) {
      const call = f.xdsExchange(ackingStream(`node-${i}`));
      assert.equal(call.statuses, [], `stream ${i} closed with an error`);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.is(f.ackLogNodes(), MAX_ACK_LOG_NODES);
    assert.is(f.openStreams(), 0);
    assert.is(f.xdsAcks("node-0").length, 0, "the least recently recorded node was dropped");
    assert.is(f.xdsAcks(`node-${n - 1}`).length, 1, "the latest node's ACK is kept");
    // A node that ACKs again becomes the most recent and survives the next evictions.
    f.xdsExchange(ackingStream("node-60"));
    for (let i = 0; i < 100; i++) f.xdsExchange(ackingStream(`later-${i}`));
    assert.ok(f.xdsAcks("node-60").length >= 2, "re-recorded node kept");
    assert.is(f.xdsAcks("node-61").length, 0, "older node dropped");
  } finally { f.close(); }
});

test("ADS: a node.id over 4096 bytes is refused with INVALID_ARGUMENT (it was kept as a key of the ACK log)", async () => {
  const f = await ControllerFuzzer.create();
  try {
    const call = f.xdsExchange(ackingStream("n".repeat(4097)));
    assert.is(call.statuses[0]?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(call.statuses[0]!.details, /node\.id: longer than 4096 bytes/);
    assert.equal(f.xdsExchange(ackingStream("n".repeat(4096))).statuses, [], "4096 bytes is accepted");
    assert.is(f.openStreams(), 0);
  } finally { f.close(); }
});

test("YAML: a collection or an alias as a mapping key is refused at FILE:LINE:COL (converting it made the yaml library emit a process warning per document)", async () => {
  let warnings = 0;
  const onWarning = () => { warnings++; };
  process.on("warning", onWarning);
  try {
    const cases: [string, number, number][] = [["? [a]\n: b\n", 1, 3], ["defaults:\n  {x: 1}: 2\n", 2, 3], ["a: &k [1]\n*k : 3\n", 2, 1], ["!!binary aGVsbG8= : 1\n", 1, 10], ["defaults:\n  !!binary aGVsbG8=: 1\n", 2, 12]];
    for (const [doc, line, col] of cases) {
      const where = (file: string) => new RegExp(`^${file.replace(".", "\\.")}:${line}:${col}: \\(document\\): YAML syntax: a mapping key must be a plain scalar`);
      assert.throws(() => parsePolicy(doc, "p.yaml"), (e: Error) => e instanceof PolicyError && where("p.yaml").test(e.message), doc);
      assert.throws(() => parseConfig(doc, "c.yaml", {}, { checkFiles: false }), (e: Error) => e instanceof ConfigError && where("c.yaml").test(e.message), doc);
    }
    await new Promise((r) => setTimeout(r, 10)); // process warnings are emitted on the next tick
    assert.is(warnings, 0);
  } finally { process.off("warning", onWarning); }
});

test.run();
