// How one controller replica reaches another's TLS port (a follower passing a command to the leader's
// API, or forwarding proxy reports to the leader's telemetry port): as that port is served. Trusted
// roots: the replicas' shared certificate (self-signed, or with its chain) and the port's clientCa
// (the CA the certificates are usually signed by). The leader is dialled by its address while its
// certificate names the service, so the certificate is checked against the DNS name in it. With
// clientCa the port verifies clients too: the replica presents the shared certificate (it must then
// be signed by that CA; a bearer token works without).
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { TlsFiles } from "../config.js";

export function replicaCredentials(tls: TlsFiles | null | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const cert = readFileSync(tls.cert);
  const name = new X509Certificate(cert).subjectAltName?.split(/,\s*/).find((x) => x.startsWith("DNS:"))?.slice(4);
  const roots = tls.clientCa ? Buffer.concat([cert, Buffer.from("\n"), readFileSync(tls.clientCa)]) : cert;
  const verify = name ? { checkServerIdentity: (_host: string, peer: PeerCertificate) => checkServerIdentity(name, peer) } : {};
  return tls.clientCa ? grpc.credentials.createSsl(roots, readFileSync(tls.key), cert, verify) : grpc.credentials.createSsl(roots, null, null, verify);
}
