// One xDS stream as operators read it (the API's Proxy message, `shadowmesh proxy-status`, the
// dashboard's proxies view, /metrics' stream states): per resource type the version sent, the one
// ACKed, and whether the stream is synced (ACKed what was sent), pending or nacked (with the error);
// and the features its filter reported knowing, which settings an older filter would refuse depend on.
import type { StreamStatus, TypeStatus } from "./server.js";

export type ResourceState = "synced" | "pending" | "nacked";

/** Where one type of one stream stands against the version it was last sent. */
export function resourceState(t: TypeStatus): ResourceState {
  if (t.nack && t.nack.version === t.sent) return "nacked";
  return t.sent !== undefined && t.confirmed === t.sent ? "synced" : "pending";
}

/** `features`: what the node's filter reported knowing (FilterReport.features), null when no report from it arrived. */
export function proxyView(st: StreamStatus, features: readonly string[] | null = null) {
  return {
    node: st.node, group: st.group, delta: st.delta, blocked: st.blocked,
    filterFeatures: [...(features ?? [])], filterReported: features !== null,
    resources: Object.entries(st.types).flatMap(([type, t]) => (t ? [{
      type, sent: t.sent ?? "", acked: t.confirmed ?? "", state: resourceState(t),
      nackedVersion: t.nack?.version ?? "", error: t.nack?.error ?? "",
    }] : [])),
  };
}

export type ProxyView = ReturnType<typeof proxyView>;
