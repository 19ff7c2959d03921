// Which proxies would refuse a setting of the filter that a first-release filter does not know (today
// pause_writes_ms): a filter refuses a configuration with a field it does not know and NACKs all of it,
// keeping its old routes, so the migration engine uses such a setting only while this list is empty.
// A proxy is listed when it takes the filter's configuration here (an ECDS subscriber of the group)
// and no report from it named the feature (FilterReport.features), or when any report of the last
// minute, from wherever it is connected (an HA leader merges every replica's reports), did not name
// it. With HA replicas, the leader also counts the subscribers each follower sent in the last minute
// (ReportBatch.subscribers), so a proxy connected to a follower counts before its first report.
// Computed at most once a second (the migration engine asks per component per tick).
import { wallMs, type Clock } from "../../host/clock.js";
import { TYPE } from "../../protocol/protos.js";
import type { AdsServer } from "./server.js";
import type { TelemetryStore } from "../telemetry/store.js";

/** The filter feature (FilterReport.features) that pause_writes_ms needs. */
export const PAUSE_WRITES_FEATURE = "pause_writes";
/** Reports older than this no longer say what a proxy runs (it may be gone, or upgraded and silent). */
export const FEATURE_REPORT_WINDOW_MS = 60_000;
/** At most this many nodes are named (the count says how many more). */
const MAX_NAMED = 20;

/** The proxies lacking a feature: at most MAX_NAMED named, `more` the rest. */
export interface FeatureGap { lacking: string[]; more: number }

export function featureGap(d: { ads: Pick<AdsServer, "subscribers">; store: Pick<TelemetryStore, "featuresOf" | "reportedWithout" | "replicaSubscribers">; group: string; clock: Clock }, feature: string): () => FeatureGap {
  let cached: FeatureGap = { lacking: [], more: 0 }, atMs = -Infinity;
  return () => {
    const now = wallMs(d.clock);
    if (now - atMs < 1000) return cached;
    atMs = now;
    const all = new Set<string>();
    for (const n of d.ads.subscribers(d.group, TYPE.extension)) if (!d.store.featuresOf(n)?.includes(feature)) all.add(n);
    for (const n of d.store.replicaSubscribers(FEATURE_REPORT_WINDOW_MS)) if (!d.store.featuresOf(n)?.includes(feature)) all.add(n);
    for (const n of d.store.reportedWithout(feature, FEATURE_REPORT_WINDOW_MS)) all.add(n);
    const sorted = [...all].sort();
    cached = { lacking: sorted.slice(0, MAX_NAMED), more: Math.max(0, sorted.length - MAX_NAMED) };
    return cached;
  };
}
