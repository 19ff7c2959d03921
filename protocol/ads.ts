// The ADS wire protocol (envoy.service.discovery.v3.AggregatedDiscoveryService): the request shapes,
// the gRPC method definitions for both directions (the server writes pre-assembled response bytes;
// a client gets decoded objects) and a client. Imported by the server and by every client (the
// embedded data plane, benchmarks, tests): none of them needs the server to speak the protocol.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { lookupType } from "./protos.js";

export const ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService";

/** The protobuf types of the four messages. */
const adsTypes = () => ({
  req: lookupType("envoy.service.discovery.v3.DiscoveryRequest"),
  res: lookupType("envoy.service.discovery.v3.DiscoveryResponse"),
  dreq: lookupType("envoy.service.discovery.v3.DeltaDiscoveryRequest"),
  dres: lookupType("envoy.service.discovery.v3.DeltaDiscoveryResponse"),
});

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, arrays: true, objects: true };
const toBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export interface DiscoveryRequest {
  version_info: string;
  node?: { id?: string; cluster?: string; locality?: { zone?: string; region?: string }; metadata?: Record<string, unknown> } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface DeltaDiscoveryRequest {
  node?: DiscoveryRequest["node"];
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: DiscoveryRequest["error_detail"];
}

/**
 * gRPC method definitions for both directions. The server writes pre-assembled response bytes;
 * a client (tests, benchmarks) gets decoded objects.
 */
export function adsMethods(): grpc.ServiceDefinition {
  const t = adsTypes();
  const enc = (T: protobuf.Type) => (o: object) => toBuffer(T.encode(T.fromObject(o)).finish());
  const dec = (T: protobuf.Type) => (b: Buffer) => T.toObject(T.decode(b), TO_OBJECT);
  const raw = (b: Uint8Array | object) => (b instanceof Uint8Array ? toBuffer(b) : Buffer.alloc(0));
  return {
    StreamAggregatedResources: {
      path: `/${ADS_SERVICE}/StreamAggregatedResources`, requestStream: true, responseStream: true,
      requestSerialize: enc(t.req), requestDeserialize: dec(t.req),
      responseSerialize: raw, responseDeserialize: dec(t.res),
    },
    DeltaAggregatedResources: {
      path: `/${ADS_SERVICE}/DeltaAggregatedResources`, requestStream: true, responseStream: true,
      requestSerialize: enc(t.dreq), requestDeserialize: dec(t.dreq),
      responseSerialize: raw, responseDeserialize: dec(t.dres),
    },
  } as grpc.ServiceDefinition;
}

/** A gRPC client for ADS (tests, benchmarks, tooling). */
export function adsClient(address: string, creds = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
  const Ctor = grpc.makeGenericClientConstructor(adsMethods(), ADS_SERVICE);
  return new Ctor(address, creds, options) as unknown as grpc.Client & {
    StreamAggregatedResources(): grpc.ClientDuplexStream<Partial<DiscoveryRequest>, Record<string, any>>;
    DeltaAggregatedResources(): grpc.ClientDuplexStream<Partial<DeltaDiscoveryRequest>, Record<string, any>>;
  };
}

