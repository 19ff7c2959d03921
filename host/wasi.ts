// The WASI (snapshot preview1) subset Envoy provides to proxy-wasm modules, with Envoy's
// semantics: stdout/stderr become log lines (INFO/ERROR), there are no files, no arguments, only
// the realtime and monotonic clocks, and proc_exit ends the VM.
import { GuestMemory } from "./memory.js";
import { LogLevel, LogLevelValue, WasiClock, WasiErrno } from "./abi.js";
import type { Clock } from "./clock.js";
import { randomFillSync } from "node:crypto";

export class ProcExit extends Error {
  constructor(readonly code: number) { super(`proc_exit(${code})`); }
}

export interface WasiEnv {
  mem(): GuestMemory;
  clock: Clock;
  env: Record<string, string>;
  log(level: LogLevelValue, message: string): void;
  random?: (buf: Uint8Array) => void;
}

export function wasiImports(w: WasiEnv): Record<string, (...args: number[]) => number | void> {
  const pendingLine: Record<number, string> = { 1: "", 2: "" };
  const envEntries = () => Object.entries(w.env).map(([k, v]) => Buffer.from(`${k}=${v}\0`, "utf8"));
  const fill = w.random ?? ((b: Uint8Array) => randomFillSync(b));
  return {
    fd_write(fd: number, iovs: number, iovsLen: number, retWritten: number): number {
      const m = w.mem();
      if (fd !== 1 && fd !== 2) return WasiErrno.Badf;
      if (!m.check(iovs, iovsLen * 8) || !m.check(retWritten, 4)) return WasiErrno.Fault;
      let text = "", total = 0;
      for (let i = 0; i < iovsLen >>> 0; i++) {
        const p = m.u32(iovs + i * 8), l = m.u32(iovs + i * 8 + 4);
        if (!m.check(p, l)) return WasiErrno.Fault;
        text += m.readString(p, l);
        total += l;
      }
      const lines = (pendingLine[fd] + text).split("\n");
      pendingLine[fd] = lines.pop() ?? "";
      for (const line of lines) w.log(fd === 1 ? LogLevel.Info : LogLevel.Error, line);
      m.setU32(retWritten, total);
      return WasiErrno.Success;
    },
    fd_read(): number { return WasiErrno.Badf; },
    fd_close(): number { return WasiErrno.Badf; },
    fd_seek(): number { return WasiErrno.Badf; },
    fd_fdstat_get(fd: number, retStat: number): number {
      const m = w.mem();
      if (fd !== 1 && fd !== 2) return WasiErrno.Badf;
      if (!m.check(retStat, 24)) return WasiErrno.Fault;
      m.bytes.fill(0, retStat >>> 0, (retStat >>> 0) + 24);
      m.bytes[retStat >>> 0] = 2; // character device
      m.setU64(retStat + 8, 0x40n); // rights: fd_write
      return WasiErrno.Success;
    },
    fd_prestat_get(): number { return WasiErrno.Badf; }, // no preopened directories
    fd_prestat_dir_name(): number { return WasiErrno.Notsup; },
    environ_sizes_get(retCount: number, retSize: number): number {
      const m = w.mem();
      if (!m.check(retCount, 4) || !m.check(retSize, 4)) return WasiErrno.Fault;
      const e = envEntries();
      m.setU32(retCount, e.length);
      m.setU32(retSize, e.reduce((s, b) => s + b.length, 0));
      return WasiErrno.Success;
    },
    environ_get(retArray: number, retBuf: number): number {
      const m = w.mem();
      const e = envEntries();
      const total = e.reduce((s, b) => s + b.length, 0);
      if (!m.check(retArray, e.length * 4) || !m.check(retBuf, total)) return WasiErrno.Fault;
      let p = retBuf >>> 0;
      e.forEach((b, i) => { m.setU32(retArray + i * 4, p); m.setBytes(p, b); p += b.length; });
      return WasiErrno.Success;
    },
    args_sizes_get(retArgc: number, retSize: number): number {
      const m = w.mem();
      if (!m.check(retArgc, 4) || !m.check(retSize, 4)) return WasiErrno.Fault;
      m.setU32(retArgc, 0); m.setU32(retSize, 0);
      return WasiErrno.Success;
    },
    args_get(): number { return WasiErrno.Success; },
    clock_time_get(id: number, _precision: number, retTime: number): number {
      const m = w.mem();
      if (!m.check(retTime, 8)) return WasiErrno.Fault;
      if (id === WasiClock.Realtime) m.setU64(retTime, w.clock.realtimeNs());
      else if (id === WasiClock.Monotonic) m.setU64(retTime, BigInt(Math.round(w.clock.monotonicNs())));
      else return WasiErrno.Notsup;
      return WasiErrno.Success;
    },
    random_get(ptr: number, len: number): number {
      const m = w.mem();
      if ((len >>> 0) > 65536) return WasiErrno.Inval;
      if (!m.check(ptr, len)) return WasiErrno.Fault;
      fill(m.bytes.subarray(ptr >>> 0, (ptr >>> 0) + (len >>> 0)));
      return WasiErrno.Success;
    },
    proc_exit(code: number): void { throw new ProcExit(code); },
    poll_oneoff(): number { return WasiErrno.Notsup; },
    sched_yield(): number { return WasiErrno.Success; },
  };
}
