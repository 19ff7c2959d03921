// Incremental (delta) ADS (go-control-plane's delta): a request settles the last response, then
// subscribes and unsubscribes names (initial_resource_versions on a new stream say what the client
// still holds); a response carries only the resources whose version the client lacks and the names
// removed from its scope, from the snapshot's pre-encoded delta entries.
import protobuf from "protobufjs";
import type { Logger } from "pino";
import type { Snapshot } from "./snapshot.js";
import { TYPE_NAME, WILDCARD_TYPES, type TypeUrl } from "../../protocol/protos.js";
import type { DeltaDiscoveryRequest } from "../../protocol/ads.js";
import type { Stream, StreamHandlers, TypeState } from "./stream.js";

export function onDeltaRequest(h: StreamHandlers, s: Stream, req: DeltaDiscoveryRequest): void {
  if (!h.identify(s, req.node)) return;
  if (!h.knownType(s, req.type_url)) return;
  if (!h.checkNames(s, req.resource_names_subscribe, "resource_names_subscribe")) return;
  if (!h.checkNames(s, req.resource_names_unsubscribe, "resource_names_unsubscribe")) return;
  const type = req.type_url;
  const t = s.state(type);
  if (!h.settle(s, type, t, req.response_nonce, req.error_detail)) return;
  let changed = false;
  const first = !t.active;
  if (first) {
    t.active = true;
    t.wildcard = WILDCARD_TYPES.has(type) && req.resource_names_subscribe.length === 0;
    // What the client still holds from an earlier stream: only newer versions need sending.
    for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) t.known.set(name, version);
    changed = true;
  }
  for (const n of req.resource_names_subscribe) {
    if (n === "*") { if (!t.wildcard) { t.wildcard = true; changed = true; } continue; }
    if (!t.names.has(n)) { t.names.add(n); changed = true; }
    // A later (re-)subscription asks for the resource again even if it was sent before.
    if (!first) t.known.delete(n);
  }
  for (const n of req.resource_names_unsubscribe) {
    if (n === "*") { if (t.wildcard) { t.wildcard = false; changed = true; } continue; }
    if (t.names.delete(n)) changed = true;
    t.known.delete(n);
  }
  if (changed) h.push(s, type);
}

/** The changes the client lacks (undefined: none). */
export function deltaResponse(s: Stream, type: TypeUrl, t: TypeState, snap: Snapshot, controlPlane: Uint8Array, trace: Logger | null): Uint8Array | undefined {
  const version = snap.typeVersion(type);
  const resources = snap.resources(type);
  const parts: Uint8Array[] = [];
  const removed: string[] = [];
  const inScope = (n: string) => t.wildcard || t.names.has(n);
  // Plain loops, no copies: this runs for every stream on every push.
  const send = (r: { name: string; version: string; deltaEntry: Uint8Array }) => {
    if (t.known.get(r.name) !== r.version) { parts.push(r.deltaEntry); t.known.set(r.name, r.version); }
  };
  if (t.wildcard) for (const r of resources.values()) send(r);
  else for (const n of t.names) { const r = resources.get(n); if (r) send(r); }
  // Deleting the entry being visited is safe while iterating a Map.
  for (const name of t.known.keys()) {
    if (!resources.has(name) && inScope(name)) { removed.push(name); t.known.delete(name); }
    else if (!inScope(name)) t.known.delete(name);
  }
  if (parts.length === 0 && removed.length === 0) {
    if (t.sentVersion === undefined || t.confirmed === t.sentVersion) t.confirmed = version;
    return undefined;
  }
  const nonce = s.nextNonce();
  t.lastNonce = nonce;
  t.sentVersion = version;
  const w = protobuf.Writer.create();
  w.uint32(10).string(version).uint32(34).string(type).uint32(42).string(nonce);
  for (const n of removed) w.uint32(50).string(n);
  trace?.debug({ stream: s.id, node: s.node?.id, type: TYPE_NAME[type], version, nonce, resources: parts.length, removed: removed.length }, "xds delta push");
  return Buffer.concat([w.finish(), ...parts, controlPlane]);
}
