// The incident benchmark's data-plane callouts: what the filter's mirrors and telemetry reach inside the
// simulation (mirrored reads go to the simulated pair, telemetry reports to the controller's store).
import type { ManualClock } from "../../host/clock.js";
import type { Callouts, GrpcCallRequest, GrpcResult, HttpCallRequest, HttpCallResponse } from "../../host/callouts.js";
import { decodeReport, telemetryRoot } from "../../controller/telemetry/report.js";
import type { Upstreams } from "../../dataplane/upstreams.js";
import type { Endpoint } from "../../dataplane/resources.js";
import type { SimulatedPair } from "./pair.js";
import type { Side } from "../../controller/xds/resources.js";

/** The data plane's outbound calls inside the simulation: mirrors go to the pair, telemetry to the controller's store. */
export class SimCallouts implements Callouts {
  constructor(private readonly pair: SimulatedPair, private readonly upstreams: Upstreams, private readonly clock: ManualClock, private readonly store: { ingest(r: ReturnType<typeof decodeReport>): unknown }, private readonly sideOf: (ep: Endpoint) => Side) {}
  hasUpstream(name: string): boolean { return this.upstreams.cluster(name) !== undefined; }
  httpCall(req: HttpCallRequest, reply: (res: HttpCallResponse | null) => void): () => void {
    const ep = this.upstreams.pick(req.cluster);
    if (!ep) { this.clock.setTimer(0, () => reply(null)); return () => undefined; }
    let cancelled = false;
    const p = req.headers.get(":path") ?? "/";
    const write = (req.headers.get(":method") ?? "GET") !== "GET";
    this.pair.request(this.sideOf(ep), { write, key: decodeURIComponent(p.slice(4)) }, (a) => {
      if (cancelled) return;
      reply("refused" in a ? null : { headers: [[":status", String(a.status)], ["content-type", "application/json"]], body: a.body });
    });
    return () => { cancelled = true; };
  }
  grpcCall(req: GrpcCallRequest, reply: (res: GrpcResult) => void): () => void {
    let cancelled = false;
    this.clock.setTimer(1, () => {
      if (cancelled) return;
      try {
        const report = decodeReport(req.message ?? new Uint8Array(0));
        this.store.ingest(report);
        const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.ReportAck");
        reply({ status: 0, message: T.encode(T.fromObject({ sequence: report.sequence })).finish() });
      } catch (e) { reply({ status: 3, statusMessage: (e as Error).message }); }
    });
    return () => { cancelled = true; };
  }
}
