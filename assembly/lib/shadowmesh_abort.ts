// Replaces AssemblyScript's default `env.abort` import (which Envoy does not provide) with a
// proxy_log at CRITICAL followed by a trap. Compiled as a library file (--lib) so that
// `--use abort=shadowmesh_abort` can name it. Only reached on a bug: a trap in Envoy fails the
// VM, and the plugin's own fail_open setting decides what happens to traffic.

// @ts-ignore: decorator
@external("env", "proxy_log")
declare function __sm_proxy_log(level: i32, ptr: usize, len: usize): i32;

// @ts-ignore: decorator
@global
export function shadowmesh_abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "shadowmesh: abort";
  if (message !== null) text += ": " + message;
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const buf = String.UTF8.encode(text);
  __sm_proxy_log(5, changetype<usize>(buf), <usize>buf.byteLength);
  unreachable();
}
