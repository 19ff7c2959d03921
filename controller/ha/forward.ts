// Telemetry across replicas: a follower forwards every proxy report it merged, as received (the same
// bytes, the proxy's own node id and sequence, so the leader's store de-duplicates a proxy that moved
// between replicas), to the leader's telemetry port, with the telemetry bearer token. The leader thus
// merges the whole fleet's sketches; a replica lost loses only the reports in flight to it. Reports
// are not merged per interval first (exact, one call per report: see the README's HA section).
// Bounded: at most maxInFlight calls at once, the rest dropped and counted.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { telemetryClient } from "../telemetry/service.js";

export interface ForwardTarget { replica: string; telemetry: string }

export class TelemetryForwarder {
  private client: ReturnType<typeof telemetryClient> | null = null;
  private address = "";
  private inFlight = 0;
  readonly stats = { forwarded: 0, failed: 0, dropped: 0 };

  constructor(private readonly o: { leader: () => ForwardTarget | null; token?: string; log: Logger; maxInFlight?: number; timeoutMs?: number }) {}

  forward(raw: Buffer): void {
    const to = this.o.leader();
    if (!to) return;
    if (this.inFlight >= (this.o.maxInFlight ?? 1000)) { this.stats.dropped++; return; }
    if (this.address !== to.telemetry) { this.client?.close(); this.client = telemetryClient(to.telemetry); this.address = to.telemetry; }
    const md = new grpc.Metadata();
    if (this.o.token) md.set("authorization", `Bearer ${this.o.token}`);
    this.inFlight++;
    const c = this.client! as unknown as { Report(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): void };
    c.Report(raw, md, { deadline: Date.now() + (this.o.timeoutMs ?? 2000) }, (e) => {
      this.inFlight--;
      if (!e) { this.stats.forwarded++; return; }
      if (++this.stats.failed <= 5 || this.stats.failed % 1000 === 0) this.o.log.warn({ leader: to.replica, err: e.message, failed: this.stats.failed }, "cannot forward a telemetry report to the leader");
    });
  }

  close(): void { this.client?.close(); this.client = null; }
}
