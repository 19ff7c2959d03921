// A short run of `npm run fuzz` (scripts/fuzz/): ~2.5 s on the filter (the compiled module in the
// host) and ~2.5 s on the controller's inputs, with a fixed seed; nothing may trap, crash or hang, and
// the ADS server must not keep the fuzzed streams.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runFuzz } from "../../scripts/fuzz/run.js";

const SEED = 20261130;

test("fuzz the filter for ~2.5 s: no trap, no crash", async () => {
  const s = await runFuzz({ seconds: 2.5, seed: SEED, target: "filter", progressMs: 0, maxShrink: 1, log: (l) => console.log(`  ${l}`) });
  const f = s.filter!;
  console.log(`  filter: ${f.inputs} inputs (${f.perSecond}/s), wasm pages ${f.wasmPagesEnd.join("/")}`);
  assert.ok(f.inputs > 200, `${f.inputs} inputs`);
  assert.is(f.traps, 0, JSON.stringify(s.failures).slice(0, 2000));
  assert.is(f.crashes, 0, JSON.stringify(s.failures).slice(0, 2000));
});

test("fuzz the controller's inputs for ~2.5 s: no crash, no hang, no stream left open", async () => {
  const s = await runFuzz({ seconds: 2.5, seed: SEED, target: "controller", progressMs: 0, maxShrink: 1, log: (l) => console.log(`  ${l}`) });
  const c = s.controller!;
  console.log(`  controller: ${c.inputs} inputs (${c.perSecond}/s): ${Object.entries(c.byKind).map(([k, v]) => `${k} ${v.inputs}`).join(", ")}`);
  assert.ok(c.inputs > 200, `${c.inputs} inputs`);
  for (const [k, v] of Object.entries(c.byKind)) assert.ok(v.inputs > 0, `${k} was fuzzed`);
  assert.is(c.crashes, 0, JSON.stringify(s.failures).slice(0, 2000));
  assert.is(c.hangs, 0, JSON.stringify(s.failures).slice(0, 2000));
  assert.is(c.xdsOpenStreamsEnd, 0);
});

test.run();
