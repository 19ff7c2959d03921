// The etcd client the controller replicas share (npm etcd3): every unary call has a deadline, so a
// write to a cluster that lost its quorum fails after callTimeoutMs instead of waiting forever (the
// manager then stops deciding); watch and keep-alive streams have none. (etcd3 1.1.2 ignores its
// dialTimeout option: the per-call deadline is the only bound.)
import { Etcd3 } from "etcd3";

export interface EtcdClientOptions { endpoints: string[]; callTimeoutMs?: number }

export function etcdClient(o: EtcdClientOptions): Etcd3 {
  const ms = o.callTimeoutMs ?? 3000;
  return new Etcd3({
    hosts: o.endpoints,
    // The deadline is I/O configuration, read when a call starts (not a decision input).
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + ms }),
  });
}
