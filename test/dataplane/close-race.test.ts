// A data plane closed while a Wasm module is still loading (a listener opening its inline filter, or
// an ECDS update in flight) leaves nothing running: the module loaded after close() is shut down at
// once, so no proxy_on_tick timer and no listener keep the process alive. Seen once in `npm test`: a
// lane that passed every test stayed up, held by one plugin's tick timer. The child process
// (test/support/dataplane-close-child.ts) must exit by itself.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("../support/dataplane-close-child.ts", import.meta.url));

test("closed while a Wasm module loads (inline filter, ECDS): nothing keeps ticking, no callout opens a connection, the process exits by itself", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { out += d; });
  const code = await new Promise<number | null | "alive">((resolve) => {
    const t = setTimeout(() => { child.kill("SIGKILL"); resolve("alive"); }, 20_000);
    child.on("exit", (c) => { clearTimeout(t); resolve(c); });
  });
  assert.ok(/closed both/.test(out), `the child did not get through its checks:\n${out}`);
  assert.is(code, 0, `the child ${code === "alive" ? "was still alive 20 s after closing both data planes" : `exited with ${code}`}:\n${out}`);
});

test.run();
