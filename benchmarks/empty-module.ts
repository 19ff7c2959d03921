// A hand-assembled proxy-wasm module whose callbacks do nothing: the host's own floor for the
// filter benchmark. Exports: memory, proxy_abi_version_0_2_1, proxy_on_memory_allocate, and the
// HTTP callbacks, each returning 0 (CONTINUE) or 1 (true) at once.
export function emptyFilterWasm(): Uint8Array {
  const enc = (s: string) => [s.length, ...Buffer.from(s)];
  // Types: 0 () -> (), 1 (i32) -> i32, 2 (i32 i32) -> (), 3 (i32 i32 i32) -> i32, 4 (i32) -> ()
  const types = [5, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 2, 0x7f, 0x7f, 0, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f, 0x60, 1, 0x7f, 0];
  const fns: [string, number, number[]][] = [
    ["proxy_abi_version_0_2_1", 0, []],
    ["proxy_on_memory_allocate", 1, [0x41, 0x80, 0x80, 0x04]], // i32.const 65536
    ["proxy_on_context_create", 2, []],
    ["proxy_on_vm_start", 3 - 1 + 0, [0x41, 1]], // placeholder replaced below
    ["proxy_on_request_headers", 3, [0x41, 0]],
    ["proxy_on_response_headers", 3, [0x41, 0]],
    ["proxy_on_done", 1, [0x41, 1]],
    ["proxy_on_log", 4, []],
    ["proxy_on_delete", 4, []],
  ];
  // proxy_on_vm_start and proxy_on_configure take (i32, i32) and return i32: add type 5.
  types[0] = 6;
  types.push(0x60, 2, 0x7f, 0x7f, 1, 0x7f);
  fns[3] = ["proxy_on_vm_start", 5, [0x41, 1]];
  fns.push(["proxy_on_configure", 5, [0x41, 1]]);
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const funcSec = [fns.length, ...fns.map((f) => f[1])];
  const memSec = [1, 0, 2]; // one memory, min 2 pages
  const exports: number[] = [fns.length + 1, ...enc("memory"), 2, 0];
  fns.forEach((f, i) => exports.push(...enc(f[0]), 0, i));
  const code: number[] = [fns.length];
  for (const f of fns) {
    const body = [0, ...f[2], 0x0b];
    code.push(...uleb(body.length), ...body);
  }
  return Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, types), ...section(3, funcSec), ...section(5, memSec), ...section(7, exports), ...section(10, code)]);
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return out;
}
