// State-of-the-world ADS (go-control-plane's sotw): a request settles the last response (ACK or
// NACK by nonce), sets the type's subscription (names, or wildcard: "*", or an empty first request
// for LDS/CDS), and a changed subscription is answered; a response carries the type's whole state
// for the subscription, assembled from the snapshot's pre-encoded resource bytes.
import protobuf from "protobufjs";
import type { Logger } from "pino";
import type { Snapshot } from "./snapshot.js";
import { TYPE_NAME, WILDCARD_TYPES, type TypeUrl } from "../../protocol/protos.js";
import type { DiscoveryRequest } from "../../protocol/ads.js";
import { sameSet, type Stream, type StreamHandlers, type TypeState } from "./stream.js";

export function onSotwRequest(h: StreamHandlers, s: Stream, req: DiscoveryRequest): void {
  if (!h.identify(s, req.node)) return;
  if (!h.knownType(s, req.type_url)) return;
  if (!h.checkNames(s, req.resource_names, "resource_names")) return;
  const type = req.type_url;
  const t = s.state(type);
  if (!h.settle(s, type, t, req.response_nonce, req.error_detail, req.version_info)) return;
  const names = new Set(req.resource_names);
  const wildcard = names.has("*") || (WILDCARD_TYPES.has(type) && names.size === 0 && (!t.active || t.wildcard));
  names.delete("*");
  const changed = !t.active || wildcard !== t.wildcard || !sameSet(names, t.names);
  t.active = true;
  t.wildcard = wildcard;
  t.names = names;
  // A first request, or a changed subscription, is answered; an ACK alone waits for the next change.
  if (changed) { t.sentVersion = undefined; h.push(s, type); }
}

/** The response the client lacks (undefined: it has the type's current state, or subscribes to nothing the snapshot has). */
export function sotwResponse(s: Stream, type: TypeUrl, t: TypeState, snap: Snapshot, controlPlane: Uint8Array, trace: Logger | null): Uint8Array | undefined {
  const version = snap.typeVersion(type);
  if (t.sentVersion === version) return undefined;
  if (!t.wildcard && t.names.size === 0) { t.confirmed = version; return undefined; } // unsubscribed
  const body = snap.sotwBody(type, t.wildcard ? "*" : t.names);
  // RDS/EDS/ECDS: names the snapshot lacks are simply not sent; the client keeps waiting for them.
  if (!t.wildcard && body.count === 0) { t.confirmed = version; return undefined; }
  const nonce = s.nextNonce();
  t.lastNonce = nonce;
  t.sentVersion = version;
  const w = protobuf.Writer.create();
  w.uint32(10).string(version).uint32(34).string(type).uint32(42).string(nonce);
  trace?.debug({ stream: s.id, node: s.node?.id, type: TYPE_NAME[type], version, nonce, resources: body.count }, "xds push");
  return Buffer.concat([w.finish(), body.bytes, controlPlane]);
}
