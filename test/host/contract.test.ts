// The module contract Envoy enforces, checked by the host before running anything.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkModuleContract, ENVOY_ENV_IMPORTS, ENVOY_WASI_IMPORTS, ModuleContractError, PluginHost } from "../../host/index.js";
import { filterModule, DEBUG_WASM_PATH } from "../support/filter.js";
import { readFileSync } from "node:fs";

/** A minimal module importing env.abort (what AssemblyScript emits by default). */
function moduleImportingAbort(): WebAssembly.Module {
  const name = (s: string) => [s.length, ...Buffer.from(s)];
  const imp = [1, ...name("env"), ...name("abort"), 0, 0];
  return new WebAssembly.Module(Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    1, 4, 1, 0x60, 0, 0,
    2, imp.length, ...imp,
  ]));
}

test("the filter imports only functions Envoy provides", () => {
  const env = new Set<string>(ENVOY_ENV_IMPORTS), wasi = new Set<string>(ENVOY_WASI_IMPORTS);
  for (const m of [filterModule(), new WebAssembly.Module(readFileSync(DEBUG_WASM_PATH))]) {
    const imports = WebAssembly.Module.imports(m);
    assert.ok(imports.length > 5, "the filter has host imports");
    for (const i of imports) {
      assert.is(i.kind, "function", `${i.module}.${i.name} is a function`);
      assert.ok((i.module === "env" && env.has(i.name)) || (i.module === "wasi_snapshot_preview1" && wasi.has(i.name)),
        `${i.module}.${i.name} is provided by Envoy`);
    }
  }
});

test("the filter exports the ABI marker, memory, the allocator and a reactor entry", () => {
  const names = new Set(WebAssembly.Module.exports(filterModule()).map((e) => e.name));
  for (const n of ["proxy_abi_version_0_2_1", "memory", "proxy_on_memory_allocate", "_initialize",
    "proxy_on_configure", "proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_log", "proxy_on_tick",
    "proxy_on_http_call_response", "proxy_on_grpc_receive", "proxy_on_grpc_close"]) {
    assert.ok(names.has(n), `exports ${n}`);
  }
  checkModuleContract(filterModule());
});

test("a module importing env.abort is refused with the import named", async () => {
  const m = moduleImportingAbort();
  assert.throws(() => checkModuleContract(m), (e: Error) => e instanceof ModuleContractError && /env\.abort/.test(e.message));
  try {
    await PluginHost.create({ wasm: m });
    assert.unreachable("create must refuse the module");
  } catch (e) {
    assert.match((e as Error).message, /env\.abort \(function\)/);
  }
});

test("a module without the ABI marker is refused", () => {
  const m = new WebAssembly.Module(Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  assert.throws(() => checkModuleContract(m), /proxy_abi_version_0_2_1/);
});

test.run();
