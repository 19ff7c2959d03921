// The sample KV node's Prometheus text: its gauges (sample_*: replication lag, role, fence, resource
// use with the measurement noise a real exporter shows, request counters) and its epoch and lease
// gauges (kv_leader_*). Pure; shared by the node (kv.ts) and the incident benchmark's simulated pair.
import { normal } from "../../host/random.js";

export interface SampleGauges { lagS: number; leader: boolean; fenced: boolean; cpu: number; memory: number; diskIo: number; queueDepth: number; reads: number; writes: number }

/** The node's /metrics page (Prometheus text), with the measurement noise a real exporter shows; shared with the incident benchmark's simulated pair. */
export function sampleMetricsText(v: SampleGauges, rand: () => number): string {
  const g = (name: string, help: string, x: number, labels = "") => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name}${labels} ${x}\n`;
  const jitter = () => 1 + 0.03 * normal(rand);
  return [
    g("sample_replication_lag_seconds", "How far the pair's follower is behind the leader", v.lagS),
    g("sample_leader", "1 when this node takes writes", v.leader ? 1 : 0),
    g("sample_fenced", "1 while writes are fenced", v.fenced ? 1 : 0),
    g("sample_cpu_utilization", "CPU busy fraction", Math.max(0, v.cpu * jitter())),
    g("sample_memory_utilization", "Memory used fraction", Math.min(1, Math.max(0, v.memory * (1 + 0.005 * normal(rand))))),
    g("sample_disk_io_utilization", "Disk busy fraction", Math.max(0, v.diskIo * jitter())),
    g("sample_queue_depth", "Requests waiting", Math.max(0, Math.round(v.queueDepth * jitter()))),
    `# HELP sample_requests_total Requests served\n# TYPE sample_requests_total counter\nsample_requests_total{op="read"} ${v.reads}\nsample_requests_total{op="write"} ${v.writes}\n`,
  ].join("");
}

/** The node's epoch and lease as Prometheus gauges (kv_leader_epoch, kv_leader_lease_valid). */
export function epochMetricsText(epoch: number, leaseValid: boolean): string {
  return `# HELP kv_leader_epoch The latest leadership epoch this node knows of\n# TYPE kv_leader_epoch gauge\nkv_leader_epoch ${epoch}\n`
    + `# HELP kv_leader_lease_valid 1 while this node holds a valid leader lease for its epoch\n# TYPE kv_leader_lease_valid gauge\nkv_leader_lease_valid ${leaseValid ? 1 : 0}\n`;
}
