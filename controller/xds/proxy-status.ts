// One xDS stream as operators read it (the API's Proxy message, `shadowmesh proxy-status`, the
// dashboard's proxies view, /metrics' stream states): per resource type the version sent, the one
// ACKed, and whether the stream is synced (ACKed what was sent), pending or nacked (with the error).
import type { StreamStatus, TypeStatus } from "./server.js";

export type ResourceState = "synced" | "pending" | "nacked";

/** Where one type of one stream stands against the version it was last sent. */
export function resourceState(t: TypeStatus): ResourceState {
  if (t.nack && t.nack.version === t.sent) return "nacked";
  return t.sent !== undefined && t.confirmed === t.sent ? "synced" : "pending";
}

export function proxyView(st: StreamStatus) {
  return {
    node: st.node, group: st.group, delta: st.delta, blocked: st.blocked,
    resources: Object.entries(st.types).flatMap(([type, t]) => (t ? [{
      type, sent: t.sent ?? "", acked: t.confirmed ?? "", state: resourceState(t),
      nackedVersion: t.nack?.version ?? "", error: t.nack?.error ?? "",
    }] : [])),
  };
}

export type ProxyView = ReturnType<typeof proxyView>;
