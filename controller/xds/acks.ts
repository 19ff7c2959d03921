// The ACK tracker (fed by the server's settle callback): the last 100 ACK/NACK records per node,
// for at most MAX_ACK_LOG_NODES nodes, the least recently recorded dropped beyond.
export interface NodeAckRecord { type: string; version: string; error?: string; at: number }

/**
 * Nodes whose ACK/NACK history is kept (acks(node)); the least recently recorded is dropped beyond.
 * Without a bound every node id a client ever sent stayed in memory after its stream closed (found by
 * `npm run fuzz`: short-lived streams with new 1 KB node ids kept 27.5 MB per 20,000, linearly).
 */
export const MAX_ACK_LOG_NODES = 10_000;

export class AckLog {
  private readonly byNode = new Map<string, NodeAckRecord[]>();

  record(node: string, r: NodeAckRecord): void {
    let list = this.byNode.get(node);
    if (list) this.byNode.delete(node); // re-inserted below: the Map's order is least recently recorded first
    else {
      list = [];
      if (this.byNode.size >= MAX_ACK_LOG_NODES) this.byNode.delete(this.byNode.keys().next().value!);
    }
    this.byNode.set(node, list);
    list.push(r);
    if (list.length > 100) list.shift();
  }

  /** The last records of a node (newest last). */
  of(node: string): NodeAckRecord[] { return this.byNode.get(node) ?? []; }

  get size(): number { return this.byNode.size; }
}
