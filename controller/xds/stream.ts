// One ADS stream's state (go-control-plane's stream subscriptions): the node and its snapshot group,
// per resource type what the client subscribed to (names or wildcard), what was sent with which
// nonce, what it confirmed or NACKed, for delta the resource versions it holds, and the write
// back-pressure (responses not yet flushed; changes coalesced while blocked). Plus the bounds every
// request is checked against.
import type * as grpc from "@grpc/grpc-js";
import type { NodeInfo } from "./cache.js";
import type { TypeUrl } from "../../protocol/protos.js";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "../../protocol/ads.js";

export const MAX_NAMES = 100_000;
/**
 * Responses written to a stream but not yet flushed to its HTTP/2 stream. Beyond this the stream is
 * "blocked": changes are coalesced (per type, only the latest is sent once writes complete), so a
 * client that stops reading holds at most this many responses in the server's memory.
 */
export const MAX_UNFLUSHED = 2;
export const MAX_NAME_BYTES = 4096;

/** Per type, what one stream subscribed to, sent, and had confirmed. */
export interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  /** A first request arrived (before it, nothing is sent for the type). */
  active: boolean;
  lastNonce: string;
  /** Type version sent with lastNonce. */
  sentVersion?: string;
  /** Type version the client is known to hold (ACKed, or nothing needed to be sent). */
  confirmed?: string;
  nack?: { version: string; error: string; at: number };
  /** Delta: the resource versions the client holds. */
  known: Map<string, string>;
  /** Something changed while the stream could not be written. */
  dirty: boolean;
}

export type Call = grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, Uint8Array>;

export class Stream {
  node?: NodeInfo;
  group = "";
  readonly types = new Map<TypeUrl, TypeState>();
  blocked = false;
  unflushed = 0;
  closed = false;
  unwatch?: () => void;
  nonce = 0;
  readonly warnedTypes = new Set<string>();
  constructor(readonly id: number, readonly call: Call, readonly delta: boolean) {}

  nextNonce(): string { return String(++this.nonce); }

  state(type: TypeUrl): TypeState {
    let t = this.types.get(type);
    if (!t) {
      t = { wildcard: false, names: new Set(), active: false, lastNonce: "", known: new Map(), dirty: false };
      this.types.set(type, t);
    }
    return t;
  }
}


/** What the SotW and delta handlers need from the server: the shared request checks, the ACK/NACK bookkeeping and the push. */
export interface StreamHandlers {
  /** The node (first request) and its group; false when the stream was closed for lacking one. */
  identify(s: Stream, node: DiscoveryRequest["node"]): boolean;
  knownType(s: Stream, typeUrl: string): typeUrl is TypeUrl;
  checkNames(s: Stream, names: string[], field: string): boolean;
  /** ACK or NACK of the latest response; false when the nonce is stale (the request is ignored). */
  settle(s: Stream, type: TypeUrl, t: TypeState, nonce: string, error: DiscoveryRequest["error_detail"], sotwVersion?: string): boolean;
  /** Sends the type's current state if the client lacks it. */
  push(s: Stream, type: TypeUrl): void;
}

export function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
