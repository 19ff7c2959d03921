// grpc.health.v1 on the controller's API port, for Kubernetes' grpc probes and grpc_health_probe:
// SERVING for "" (the server) and the controller's service once it is ready (xDS serving, state
// loaded), NOT_SERVING while it stops; any other service name is NOT_FOUND (Check) or
// SERVICE_UNKNOWN (Watch), as the protocol says. No credentials: probes carry none, and the answer
// says nothing but up or down.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../proto/grpc/health/v1/health.proto");
type Status = "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

function healthCtor(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: false, enums: String, defaults: true }));
  return (pkg.grpc as { health: { v1: { Health: grpc.ServiceClientConstructor } } }).health.v1.Health;
}

/** The health service's state: `ready()` says whether the controller serves; watchers hear changes. */
export class HealthService {
  private readonly watchers = new Set<{ service: string; call: grpc.ServerWritableStream<{ service: string }, { status: Status }> }>();
  private last: boolean | null = null;
  constructor(private readonly services: readonly string[], private readonly ready: () => boolean) {}

  private statusOf(service: string): Status | null {
    if (service !== "" && !this.services.includes(service)) return null;
    return this.ready() ? "SERVING" : "NOT_SERVING";
  }

  /** Tells watchers when readiness changed (call on the controller's tick and when it stops). */
  refresh(): void {
    const now = this.ready();
    if (now === this.last) return;
    this.last = now;
    for (const w of this.watchers) w.call.write({ status: this.statusOf(w.service) ?? "SERVICE_UNKNOWN" });
  }

  add(server: grpc.Server): void {
    server.addService(healthCtor().service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, { status: Status }>, cb: grpc.sendUnaryData<{ status: Status }>) => {
        const s = this.statusOf(call.request.service);
        if (s === null) cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)} (known: "", ${this.services.join(", ")})` } as grpc.ServiceError);
        else cb(null, { status: s });
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, { status: Status }>) => {
        const w = { service: call.request.service, call };
        this.watchers.add(w);
        call.write({ status: this.statusOf(w.service) ?? "SERVICE_UNKNOWN" });
        const done = () => this.watchers.delete(w);
        call.on("cancelled", done);
        call.on("close", done);
      },
    });
  }

  /** Ends every Watch (at stop). */
  close(): void { for (const w of this.watchers) w.call.end(); this.watchers.clear(); }
}

/** A client for tests and tools: Check(service). */
export function healthClient(address: string, creds = grpc.credentials.createInsecure()): grpc.Client & Record<string, any> {
  const Ctor = healthCtor();
  return new Ctor(address, creds) as grpc.Client & Record<string, any>;
}
