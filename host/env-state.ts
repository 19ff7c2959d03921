// The env host functions for state shared across a plugin's VMs (shared data with CAS, shared
// queues) and for metrics (ids are per VM, names per plugin). proxy-wasm ABI v0.2.1, through
// EnvHost (host/env.ts).
import { MetricType, Status } from "./abi.js";
import type { EnvHost, Fn } from "./env.js";

export function stateImports(v: EnvHost): Record<string, Fn> {
  const S = Status;
  /** This VM's metric ids (proxy_define_metric) and the names they stand for. */
  const metricIds = new Map<number, string>();
  let nextMetricId = 1;
  return {
    // ---- shared data and queues
    proxy_get_shared_data(kp: number, kl: number, retPtr: number, retLen: number, retCas: number): number {
      const m = v.mem;
      if (!m.check(kp, kl) || !m.check(retCas, 4)) return S.InvalidMemoryAccess;
      const e = v.plugin.sharedData.get(m.readString(kp, kl));
      if (!e) return S.NotFound;
      const st = v.returnBytes(e.value, retPtr, retLen);
      if (st === S.Ok) m.setU32(retCas, e.cas);
      return st;
    },
    proxy_set_shared_data(kp: number, kl: number, vp: number, vl: number, cas: number): number {
      const m = v.mem;
      if (!m.check(kp, kl) || !m.check(vp, vl)) return S.InvalidMemoryAccess;
      return v.plugin.setSharedData(m.readString(kp, kl), m.readBytes(vp, vl), cas >>> 0) ? S.Ok : S.CasMismatch;
    },
    proxy_register_shared_queue(np: number, nl: number, retId: number): number {
      const m = v.mem;
      if (!m.check(np, nl) || !m.check(retId, 4)) return S.InvalidMemoryAccess;
      const ctx = v.effective ?? v.root;
      m.setU32(retId, v.plugin.registerQueue(m.readString(np, nl), v.index, ctx.rootId === 0 ? ctx.id : ctx.rootId));
      return S.Ok;
    },
    proxy_resolve_shared_queue(vp: number, vl: number, np: number, nl: number, retId: number): number {
      const m = v.mem;
      if (!m.check(vp, vl) || !m.check(np, nl) || !m.check(retId, 4)) return S.InvalidMemoryAccess;
      const id = v.plugin.resolveQueue(m.readString(vp, vl), m.readString(np, nl));
      if (id === undefined) return S.NotFound;
      m.setU32(retId, id);
      return S.Ok;
    },
    proxy_enqueue_shared_queue(id: number, p: number, l: number): number {
      if (!v.mem.check(p, l)) return S.InvalidMemoryAccess;
      return v.plugin.enqueue(id >>> 0, v.mem.readBytes(p, l)) ? S.Ok : S.NotFound;
    },
    proxy_dequeue_shared_queue(id: number, retPtr: number, retLen: number): number {
      const r = v.plugin.dequeue(id >>> 0);
      if (r === "missing") return S.NotFound;
      if (r === "empty") return S.Empty;
      return v.returnBytes(r, retPtr, retLen);
    },

    // ---- metrics
    proxy_define_metric(type: number, np: number, nl: number, retId: number): number {
      if (type < MetricType.Counter || type > MetricType.Histogram) return S.BadArgument;
      const m = v.mem;
      if (!m.check(np, nl) || !m.check(retId, 4)) return S.InvalidMemoryAccess;
      const name = m.readString(np, nl);
      if (!v.plugin.defineMetric(name, type)) return S.BadArgument;
      const id = nextMetricId++;
      metricIds.set(id, name);
      m.setU32(retId, id);
      return S.Ok;
    },
    proxy_increment_metric(id: number, delta: bigint | number): number {
      const name = metricIds.get(id >>> 0);
      if (name === undefined) return S.NotFound;
      return v.plugin.incrementMetric(name, Number(BigInt.asIntN(64, BigInt(delta)))) ? S.Ok : S.BadArgument;
    },
    proxy_record_metric(id: number, value: bigint | number): number {
      const name = metricIds.get(id >>> 0);
      if (name === undefined) return S.NotFound;
      return v.plugin.recordMetric(name, Number(BigInt.asUintN(64, BigInt(value)))) ? S.Ok : S.BadArgument;
    },
    proxy_get_metric(id: number, ret: number): number {
      const name = metricIds.get(id >>> 0);
      if (name === undefined) return S.NotFound;
      if (!v.mem.check(ret, 8)) return S.InvalidMemoryAccess;
      const val = v.plugin.metricValue(name);
      if (val === undefined) return S.BadArgument; // histograms have no single value
      v.mem.setU64(ret, BigInt(val));
      return S.Ok;
    },
  };
}
