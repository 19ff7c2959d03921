// The `ha:` section of the controller configuration: controller replicas on etcd (absent: one process
// with its file journal, the default). Its schema and the resolved settings.
import os from "node:os";
import { z } from "zod";

export const haSchema = z.object({
  /** The etcd cluster's client URLs, and the key prefix this controller group uses (default /shadowmesh/). */
  etcd: z.object({
    endpoints: z.array(z.string().url()).min(1, "needs at least one etcd endpoint"),
    prefix: z.string().regex(/^\/.*\/$/, "must start and end with /").optional(),
    callTimeoutMs: z.number().int().min(100).max(60_000).optional(),
  }).strict(),
  /** This replica's name (default: the host name, as a StatefulSet or Deployment pod is named). */
  replica: z.string().regex(/^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$/, "letters, digits, - _ . (at most 63)").optional(),
  /**
   * The host the other replicas reach this one at (its telemetry port: followers forward proxy reports
   * to the leader). Default: the telemetry listen address, or the host name when that is a wildcard.
   */
  advertise: z.string().min(1).optional(),
  /** The same from an environment variable (e.g. POD_IP from the downward API). */
  advertiseEnv: z.string().min(1).optional(),
  /** The leader's lease: a dead leader is replaced within it (plus a campaign); default 5 s. */
  leaseTtlS: z.number().int().min(1).max(60).optional(),
}).strict();

export interface HaConfig { endpoints: string[]; prefix: string; callTimeoutMs: number; replica: string; leaseTtlS: number; advertise?: string }

export function resolveHa(h: z.output<typeof haSchema>, env: NodeJS.ProcessEnv = {}): HaConfig {
  const advertise = h.advertise ?? (h.advertiseEnv ? env[h.advertiseEnv] : undefined);
  return { endpoints: h.etcd.endpoints, prefix: h.etcd.prefix ?? "/shadowmesh/", callTimeoutMs: h.etcd.callTimeoutMs ?? 3000, replica: h.replica ?? os.hostname(), leaseTtlS: h.leaseTtlS ?? 5, ...(advertise ? { advertise } : {}) };
}
