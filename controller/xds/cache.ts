// The snapshot cache: what each node group should have, apart from how it is delivered (as in
// go-control-plane). A snapshot is published only if it is consistent; streams watch their group
// and are told when its snapshot changes.
import { Snapshot, SnapshotError } from "./snapshot.js";

export interface NodeInfo { id: string; cluster?: string; zone?: string; metadata?: Record<string, unknown> }

/** Maps a node to its group; by default every node shares one group. */
export type NodeGrouper = (node: NodeInfo) => string;
export const DEFAULT_GROUP = "default";

export class InconsistentSnapshotError extends SnapshotError {
  constructor(readonly group: string, readonly version: string, readonly problems: string[]) {
    super(`snapshot ${version} for group ${group} is inconsistent, not published: ${problems.join("; ")}`);
  }
}

export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Map<string, Set<(s: Snapshot) => void>>();

  constructor(readonly groupOf: NodeGrouper = () => DEFAULT_GROUP) {}

  /** Publishes after the consistency check; throws InconsistentSnapshotError and keeps the old one otherwise. */
  setSnapshot(group: string, snapshot: Snapshot): void {
    const problems = snapshot.consistencyErrors();
    if (problems.length > 0) throw new InconsistentSnapshotError(group, snapshot.version, problems);
    this.snapshots.set(group, snapshot);
    for (const w of this.watchers.get(group) ?? []) w(snapshot);
  }

  getSnapshot(group: string): Snapshot | undefined { return this.snapshots.get(group); }

  groups(): string[] { return [...this.snapshots.keys()]; }

  /** Calls fn on every later snapshot of the group; returns the unsubscribe function. */
  watch(group: string, fn: (s: Snapshot) => void): () => void {
    let set = this.watchers.get(group);
    if (!set) { set = new Set(); this.watchers.set(group, set); }
    set.add(fn);
    return () => { set!.delete(fn); };
  }
}
