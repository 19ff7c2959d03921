// What a component's shadow costs, from what the controller already sees: the mirror's bytes on the
// wire (the filters count them), the replication stream (the writer's WAL bytes a second, as its
// driver reads them) and each side's own resource use (CPU share and resident memory, from /proc).
// Null fields: nobody measured them (no driver that measures, no mirror running).
import type { MirrorCost } from "../migration/status.js";
import type { DriverStatus } from "./poller.js";
import type { Side } from "../xds/resources.js";

export interface ShadowCost {
  mirrorBytesPerS: number | null;
  replicationBytesPerS: number | null;
  primaryCpu: number | null;
  shadowCpu: number | null;
  primaryRssBytes: number | null;
  shadowRssBytes: number | null;
}

export function shadowCost(mirror: MirrorCost | null | undefined, driver: DriverStatus | undefined, writer: Side): ShadowCost {
  const v = (side: Side, k: string): number | null => { const x = driver?.signals[side][k]; return x === undefined || !Number.isFinite(x) ? null : x; };
  return {
    mirrorBytesPerS: mirror ? mirror.bytesPerS : null,
    replicationBytesPerS: v(writer, "pg_wal_bytes_per_s"),
    primaryCpu: v("primary", "process_cpu_ratio"), shadowCpu: v("shadow", "process_cpu_ratio"),
    primaryRssBytes: v("primary", "process_rss_bytes"), shadowRssBytes: v("shadow", "process_rss_bytes"),
  };
}
