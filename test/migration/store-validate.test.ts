// The state journal is loaded like input: every journal line and snapshot record is checked (zod)
// and a bad one is an error naming FILE:LINE: field: reason; a torn last line is dropped with a
// warning, which the controller logs at startup.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Writable } from "node:stream";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { FileStateStore, StateStoreError } from "../../controller/migration/store.js";
import { initialStatus, type MigrationStatus } from "../../controller/migration/reconcile.js";
import { parseConfig } from "../../controller/config.js";
import { startController } from "../../controller/main.js";
import { controllerClient, authMetadata } from "../../controller/api/service.js";
import { testControllerYaml } from "../support/controller-config.js";

function inDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "sm-store-"));
  return Promise.resolve(fn(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}
const status = (over: Partial<MigrationStatus> = {}): MigrationStatus => ({ ...initialStatus("orders", 1000), ...over });
const line = (s: object) => JSON.stringify({ t: "status", status: s }) + "\n";
function loadError(dir: string): string {
  try { new FileStateStore(dir).load(); } catch (e) { assert.ok(e instanceof StateStoreError, String(e)); return (e as Error).message; }
  throw new Error("expected load() to fail");
}

test("a phase that does not exist is refused with file, line and field", () => inDir((dir) => {
  writeFileSync(path.join(dir, "journal.jsonl"), line(status()) + line({ ...status(), phase: "Migrxted" }));
  const m = loadError(dir);
  assert.match(m, `${path.join(dir, "journal.jsonl")}:2: status.phase: `);
  assert.match(m, /"Migrxted"/);
}));

test("every promotion stage the reconciler writes loads back: a pause for the switch, a fence that stopped the primary; a bad pause is refused", () => inDir((dir) => {
  const j = path.join(dir, "journal.jsonl");
  writeFileSync(j, line(status({ phase: "Shifting", promotion: { stage: "pause", sinceMs: 2000 }, pauseWritesMs: 5000 }))
    + line(status({ phase: "Failover", promotion: { stage: "drain", sinceMs: 3000, stopped: true }, pauseWritesMs: 0 })));
  const st = new FileStateStore(dir).load().statuses.get("orders")!;
  assert.equal(st.promotion, { stage: "drain", sinceMs: 3000, stopped: true });
  writeFileSync(j, line(status({ pauseWritesMs: 61_000 })));
  assert.match(loadError(dir), /journal.jsonl:1: status.pauseWritesMs: /);
}));

test("a weight out of 0..10000 bp, a mirror fraction over 1, a step under -1 and a zero epoch are refused", () => inDir((dir) => {
  const j = path.join(dir, "journal.jsonl");
  writeFileSync(j, line({ ...status(), shadowWeightBp: 99999 }));
  assert.match(loadError(dir), /journal.jsonl:1: status.shadowWeightBp: .*\(got 99999\)/);
  writeFileSync(j, line(status()) + line(status()) + line({ ...status(), mirrorFraction: 1.5 }));
  assert.match(loadError(dir), /journal.jsonl:3: status.mirrorFraction: .*\(got 1.5\)/);
  writeFileSync(j, line({ ...status(), stepIndex: -2 }));
  assert.match(loadError(dir), /journal.jsonl:1: status.stepIndex: /);
  writeFileSync(j, line({ ...status(), stepIndex: 1.5 }));
  assert.match(loadError(dir), /journal.jsonl:1: status.stepIndex: /);
  writeFileSync(j, line({ ...status(), epoch: 0 }));
  assert.match(loadError(dir), /journal.jsonl:1: status.epoch: /);
  writeFileSync(j, line({ ...status(), writeTarget: "both" }));
  assert.match(loadError(dir), /journal.jsonl:1: status.writeTarget: .*"both"/);
  writeFileSync(j, line({ ...status(), leaseHolder: "tertiary" }));
  assert.match(loadError(dir), /journal.jsonl:1: status.leaseHolder: /);
  writeFileSync(j, line({ ...status(), pendingAction: { id: "a", kind: "reboot", side: "primary", sinceMs: 1 } }));
  assert.match(loadError(dir), /journal.jsonl:1: status.pendingAction.kind: /);
  writeFileSync(j, line({ ...status(), shadowWeigthBp: 5000 }));
  assert.match(loadError(dir), /journal.jsonl:1: status.shadowWeigthBp: unknown field/);
  const { phase: _p, ...noPhase } = status();
  writeFileSync(j, line(noPhase));
  assert.match(loadError(dir), /journal.jsonl:1: status.phase: /);
  writeFileSync(j, line({ ...noPhase, phsae: "Healthy" }));
  assert.match(loadError(dir), /journal.jsonl:1: status.phsae: unknown field/, "a misspelt field is named as itself, not as the missing one");
  writeFileSync(j, JSON.stringify({ t: "stauts", status: status() }) + "\n");
  assert.match(loadError(dir), /journal.jsonl:1: t: /);
  // Every optional field of MigrationStatus may be absent (journals written before they existed).
  const { shadowFit: _a, shadowFitSinceMs: _b, holdWrites: _c, emergency: _d, epoch: _e, leaseHolder: _f, ...old } = status({ phase: "Failover" });
  writeFileSync(j, line(old));
  assert.is(new FileStateStore(dir).load().statuses.get("orders")!.phase, "Failover");
}));

test("bad JSON in the middle of the journal is an error with file:line, not a torn tail", () => inDir((dir) => {
  writeFileSync(path.join(dir, "journal.jsonl"), line(status()) + '{"t":"status","status":{"compo\n' + line(status({ phase: "AtRisk" })));
  assert.match(loadError(dir), `${path.join(dir, "journal.jsonl")}:2: not valid JSON`);
}));

test("a bad record in the snapshot names state.json and the record's line", () => inDir((dir) => {
  const s = new FileStateStore(dir);
  s.load();
  s.save(status(), []);
  s.save({ ...status(), component: "payments" }, [{ atMs: 1, component: "payments", kind: "phase", phase: "Healthy", message: "x", severity: "info" }]);
  s.close();
  new FileStateStore(dir).load(); // compacts into state.json: one record per line
  const snap = path.join(dir, "state.json");
  const text = readFileSync(snap, "utf8");
  assert.ok(JSON.parse(text).statuses.length === 2, "still one JSON document");
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.includes('"component":"payments","phase"'));
  assert.ok(at > 0);
  lines[at] = lines[at]!.replace('"shadowWeightBp":0', '"shadowWeightBp":-5');
  writeFileSync(snap, lines.join("\n"));
  assert.match(loadError(dir), `${snap}:${at + 1}: statuses[1].shadowWeightBp: `);
  writeFileSync(snap, text.replace('"severity":"info"', '"severity":"fatal"'));
  assert.match(loadError(dir), /state.json:\d+: events\[0\].severity: .*"fatal"/);
  writeFileSync(snap, text.slice(0, 40));
  assert.match(loadError(dir), /state.json:\d+: not valid JSON/);
}));

test("a torn last line is dropped with a warning, and the controller logs that warning at startup", () => inDir(async (dir) => {
  const stateDir = path.join(dir, "state");
  const s = new FileStateStore(stateDir);
  s.load();
  s.save(status({ phase: "AtRisk", riskHighSinceMs: 900 }), []);
  s.close();
  appendFileSync(path.join(stateDir, "journal.jsonl"), '{"t":"status","status":{"component":"orders","phase":"Shif');
  const logged: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split("\n")) if (l) logged.push(JSON.parse(l)); cb(); } });
  const cfgText = testControllerYaml({ token: "store-test-token-0123", stateDir });
  const file = path.join(dir, "controller.yaml");
  writeFileSync(file, cfgText);
  const ctl = await startController(parseConfig(cfgText, file), { log: pino({ level: "info" }, sink) });
  try {
    assert.is(ctl.manager.get("orders").status.phase, "AtRisk", "the last whole record is in force");
    const w = logged.find((l) => /torn last record dropped/.test(l.msg));
    assert.ok(w, `no warning among ${logged.map((l) => l.msg).join(" | ")}`);
    assert.is(w!.level, 40, "logged at warn");
    assert.match(w!.msg, "journal.jsonl:2:");
    // And in the API's GetComponent.
    const c = controllerClient(`127.0.0.1:${ctl.ports.api}`, "store-test-token-0123");
    try {
      const got = await new Promise<{ stateWarnings: string[] }>((resolve, reject) => c.getComponent!({ name: "orders" }, authMetadata(c), (e: Error | null, r: { stateWarnings: string[] }) => (e ? reject(e) : resolve(r))));
      assert.is(got.stateWarnings.length, 1);
      assert.match(got.stateWarnings[0]!, /journal.jsonl:2: torn last record dropped/);
    } finally { c.close(); }
  } finally { await ctl.stop(); }
  // The journal was compacted at load: the torn tail is gone, the next start has nothing to warn about.
  const again = new FileStateStore(stateDir);
  assert.is(again.load().statuses.get("orders")!.phase, "AtRisk");
  assert.equal(again.warnings, []);
  again.close();
}));

test("the controller refuses to start on a bad record and says which file and line to fix", () => inDir(async (dir) => {
  const stateDir = path.join(dir, "state");
  const s = new FileStateStore(stateDir);
  s.load(); s.close();
  writeFileSync(path.join(stateDir, "journal.jsonl"), line({ ...status(), phase: "Migrxted" }));
  const cfgText = `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["store-test-token-0123"] }
stateDir: ${stateDir}
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
`;
  const file = path.join(dir, "controller.yaml");
  writeFileSync(file, cfgText);
  const { execFile } = await import("node:child_process");
  const r = await new Promise<{ code: number; stderr: string; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, ["bin/shadowmesh.mjs", "controller", "--config", file], { env: { ...process.env }, timeout: 20_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    void child;
  });
  assert.is.not(r.code, 0);
  assert.is(r.stdout, "", "no ready line");
  assert.match(r.stderr, `${path.join(stateDir, "journal.jsonl")}:1: status.phase: `);
}));

test.run();
