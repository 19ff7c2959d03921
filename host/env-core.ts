// The env host functions for logging and time, the context lifecycle (proxy_done, the effective
// context), properties and foreign functions (proxy-wasm ABI v0.2.1). They act on the effective
// context through EnvHost (host/env.ts); every guest pointer is bounds-checked.
import { LogLevelValue, Status } from "./abi.js";
import { encodeProperty, propertyPathToKey } from "./properties.js";
import { EMPTY_PROPS } from "./context.js";
import type { EnvHost, Fn } from "./env.js";

export function coreImports(v: EnvHost): Record<string, Fn> {
  const S = Status;
  return {
    // ---- logging and time
    proxy_log(level: number, ptr: number, len: number): number {
      if (level < 0 || level > 5) return S.BadArgument;
      if (!v.mem.check(ptr, len)) return S.InvalidMemoryAccess;
      v.plugin.log(level as LogLevelValue, v.mem.readString(ptr, len), v.index);
      return S.Ok;
    },
    proxy_get_log_level(ret: number): number {
      if (!v.mem.check(ret, 4)) return S.InvalidMemoryAccess;
      v.mem.setU32(ret, v.plugin.logLevel);
      return S.Ok;
    },
    proxy_get_current_time_nanoseconds(ret: number): number {
      if (!v.mem.check(ret, 8)) return S.InvalidMemoryAccess;
      v.mem.setU64(ret, v.plugin.clock.realtimeNs());
      return S.Ok;
    },
    proxy_set_tick_period_milliseconds(period: number): number {
      // The timer belongs to the root context; Envoy applies a stream context's call to its root.
      const eff = v.effective;
      const ctx = eff && eff.rootId !== 0 ? v.contexts.get(eff.rootId) : eff;
      if (!ctx) return S.BadArgument;
      if (ctx.tickTimer) v.plugin.clock.clearTimer(ctx.tickTimer);
      ctx.tickTimer = undefined;
      ctx.tickMs = period >>> 0;
      if (ctx.tickMs > 0) v.scheduleTick(ctx);
      return S.Ok;
    },

    // ---- lifecycle
    proxy_done(): number {
      const ctx = v.effective;
      if (!ctx || !ctx.pendingFinalize) return S.NotFound;
      ctx.pendingFinalize = false;
      v.deliver(() => v.finalize(ctx));
      return S.Ok;
    },
    proxy_set_effective_context(id: number): number {
      const ctx = v.contexts.get(id >>> 0);
      if (!ctx) return S.BadArgument;
      v.effective = ctx;
      return S.Ok;
    },

    // ---- properties
    proxy_get_property(pp: number, pl: number, retPtr: number, retLen: number): number {
      if (!v.mem.check(pp, pl)) return S.InvalidMemoryAccess;
      const key = propertyPathToKey(v.mem.readKey(pp, pl));
      const val = v.property(key);
      if (val === undefined) return S.NotFound;
      if ((typeof val === "bigint" || typeof val === "number") && v.mem.check(retPtr, 4) && v.mem.check(retLen, 4)) {
        // Fast path for integers and durations: no intermediate buffer, no BigInt for numbers.
        const p = v.allocate(8);
        if (p === 0) return S.InvalidMemoryAccess;
        if (typeof val === "number") v.mem.setI64FromNumber(p, val); else v.mem.setU64(p, val);
        v.mem.setU32(retPtr, p);
        v.mem.setU32(retLen, 8);
        return S.Ok;
      }
      return v.returnBytes(val instanceof Uint8Array ? val : encodeProperty(val), retPtr, retLen);
    },
    proxy_set_property(pp: number, pl: number, vp: number, vl: number): number {
      if (!v.mem.check(pp, pl) || !v.mem.check(vp, vl)) return S.InvalidMemoryAccess;
      const key = propertyPathToKey(v.mem.readString(pp, pl));
      if (key.length === 0) return S.BadArgument;
      const ctx = v.effective ?? v.root;
      if (ctx.properties === EMPTY_PROPS) ctx.properties = new Map();
      ctx.properties.set(key, v.mem.readBytes(vp, vl));
      return S.Ok;
    },

    // ---- foreign functions
    proxy_call_foreign_function(np: number, nl: number, ap: number, al: number, retPtr: number, retLen: number): number {
      if (!v.mem.check(np, nl) || !v.mem.check(ap, al)) return S.InvalidMemoryAccess;
      const fn = v.plugin.foreignFunctions[v.mem.readString(np, nl)];
      if (!fn) return S.NotFound;
      const out = fn(v.mem.readBytes(ap, al));
      return v.returnBytes(out ?? new Uint8Array(0), retPtr, retLen);
    },
  };
}
