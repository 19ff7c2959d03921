// The conditions a sample node can be made to show (its latency, errors, resource gauges and extra
// replication delay) and what it shows when nothing says otherwise. The demo's scenarios play traces
// of these on the nodes (world/demo/scenario.ts re-exports them).
export const SIGNALS = ["latency_ms", "error_rate", "cpu", "memory", "disk_io", "queue_depth", "replication_lag_s"] as const;
export type SignalName = (typeof SIGNALS)[number];

/** What a side looks like when its scenario says nothing about a signal. */
export const HEALTHY: Record<SignalName, number> = {
  latency_ms: 3, error_rate: 0, cpu: 0.25, memory: 0.4, disk_io: 0.2, queue_depth: 2, replication_lag_s: 0,
};
