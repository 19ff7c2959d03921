// The embedded data plane's ADS client (state of the world), behaving as Envoy does: CDS and LDS are
// wildcard subscriptions opened first; EDS, RDS and ECDS names follow from what the accepted clusters
// and listeners reference. Every response is handed to the applier; its verdict becomes an ACK (the
// response's version and nonce) or a NACK (the last accepted version, the nonce, and error_detail with
// the reason). A broken stream reconnects with capped exponential backoff and re-sends the accepted
// versions, so the server can skip what the client already has.
import type * as grpc from "@grpc/grpc-js";
import { adsClient } from "../protocol/ads.js";
import { TYPE, type TypeUrl } from "../protocol/protos.js";

/** metadata: Envoy's node.metadata (string values), e.g. Istio's WORKLOAD_NAME and NAMESPACE. */
export interface NodeIdentity { id: string; cluster: string; zone?: string; region?: string; metadata?: Record<string, string> }

export interface AnyResource { type_url: string; value: Uint8Array }

/** Applies one response's resources; returns null to ACK, or the reason to NACK. */
export type Applier = (type: TypeUrl, resources: AnyResource[], version: string) => Promise<string | null>;

export interface AdsClientOptions {
  address: string;
  node: NodeIdentity;
  apply: Applier;
  /** Reconnect backoff bounds (ms). */
  backoffMs?: { min: number; max: number };
  onStatus?: (s: { connected: boolean; error?: string }) => void;
}

interface TypeState { version: string; nonce: string; names: string[]; subscribed: boolean }

type Stream = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, any>>;

export class EnvoyLikeAdsClient {
  private readonly client: ReturnType<typeof adsClient>;
  private stream?: Stream;
  private readonly state = new Map<TypeUrl, TypeState>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private backoff: number;
  private retryTimer?: NodeJS.Timeout;
  /** Counts for status and tests. */
  readonly stats = { acks: 0, nacks: 0, responses: 0, reconnects: 0 };
  lastNack: { type: TypeUrl; message: string } | null = null;

  constructor(private readonly o: AdsClientOptions) {
    this.backoff = o.backoffMs?.min ?? 250;
    // The channel's own reconnect backoff follows ours: grpc-js's default (1 s, growing to 120 s)
    // kept a proxy refused for up to 13 s after a restarted controller was back.
    this.client = adsClient(o.address, undefined, {
      "grpc.initial_reconnect_backoff_ms": this.backoff, "grpc.max_reconnect_backoff_ms": o.backoffMs?.max ?? 10_000,
    });
    for (const t of [TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route, TYPE.extension] as TypeUrl[]) {
      this.state.set(t, { version: "", nonce: "", names: [], subscribed: false });
    }
  }

  start(): void { this.connect(); }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.client.close();
  }

  /**
   * Sets the names of a non-wildcard type (EDS, RDS, ECDS). A change is sent at once, carrying the
   * type's accepted version and last nonce, as Envoy's subscription updates do.
   */
  subscribe(type: TypeUrl, names: string[]): void {
    const s = this.state.get(type)!;
    const sorted = [...new Set(names)].sort();
    if (s.subscribed && sorted.join("\0") === s.names.join("\0")) return;
    if (!s.subscribed && sorted.length === 0) return;
    s.names = sorted;
    s.subscribed = true;
    this.send(type, {});
  }

  private node() {
    const n = this.o.node;
    return {
      id: n.id, cluster: n.cluster, user_agent_name: "shadowmesh-embedded-dataplane",
      locality: { ...(n.region ? { region: n.region } : {}), ...(n.zone ? { zone: n.zone } : {}) },
    };
  }

  private send(type: TypeUrl, extra: Record<string, unknown>): void {
    const s = this.state.get(type)!;
    this.stream?.write({
      node: this.node(), type_url: type, version_info: s.version, response_nonce: s.nonce, resource_names: s.names, ...extra,
    });
  }

  private connect(): void {
    if (this.closed) return;
    const stream = this.client.StreamAggregatedResources() as unknown as Stream;
    this.stream = stream;
    let healthy = false;
    stream.on("data", (res: Record<string, any>) => {
      if (!healthy) { healthy = true; this.backoff = this.o.backoffMs?.min ?? 250; this.o.onStatus?.({ connected: true }); }
      // Responses are applied one at a time, in order (the applier may load Wasm: async).
      this.queue = this.queue.then(() => this.onResponse(stream, res)).catch(() => undefined);
    });
    stream.on("error", (e: grpc.ServiceError) => this.retry(stream, e.message));
    stream.on("end", () => this.retry(stream, "stream ended"));
    // Envoy's order: clusters first (they may be needed by listeners' routes), then listeners; a
    // reconnect re-subscribes everything with the versions already accepted.
    for (const t of [TYPE.cluster, TYPE.listener] as TypeUrl[]) this.state.get(t)!.subscribed = true;
    for (const [t, s] of this.state) if (s.subscribed) { s.nonce = ""; this.send(t, {}); }
  }

  private retry(stream: Stream, why: string): void {
    if (this.stream !== stream || this.closed) return;
    this.stream = undefined;
    this.o.onStatus?.({ connected: false, error: why });
    this.stats.reconnects++;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.o.backoffMs?.max ?? 10_000);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private async onResponse(stream: Stream, res: Record<string, any>): Promise<void> {
    if (stream !== this.stream) return;
    const type = res.type_url as TypeUrl;
    const s = this.state.get(type);
    if (!s) return; // a type this client never asked for: ignored, as Envoy does
    this.stats.responses++;
    let verdict: string | null;
    try {
      verdict = await this.o.apply(type, (res.resources ?? []) as AnyResource[], res.version_info as string);
    } catch (e) {
      verdict = `internal error applying ${type}: ${(e as Error).message}`;
    }
    if (stream !== this.stream) return;
    s.nonce = res.nonce as string;
    if (verdict === null) {
      s.version = res.version_info as string;
      this.stats.acks++;
      this.send(type, {});
    } else {
      this.stats.nacks++;
      this.lastNack = { type, message: verdict };
      // INVALID_ARGUMENT, as Envoy reports a rejected update.
      this.send(type, { error_detail: { code: 3, message: verdict } });
    }
  }
}
