// Test PKI made with the openssl CLI at test time: a CA, a server certificate for localhost and
// 127.0.0.1, and a client certificate.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface Pki { dir: string; ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string }

export function makePki(): Pki {
  const dir = mkdtempSync(path.join(tmpdir(), "shadowmesh-pki-"));
  const f = (n: string) => path.join(dir, n);
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run("req", "-x509", ...key, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-subj", "/CN=shadowmesh test CA", "-days", "2");
  for (const [name, cn, san] of [["server", "localhost", "DNS:localhost,IP:127.0.0.1"], ["client", "envoy-sidecar", "DNS:envoy-sidecar"]] as const) {
    writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\n`);
    run("req", ...key, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=${cn}`);
    run("x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f(`${name}.crt`), "-days", "2", "-extfile", f(`${name}.ext`));
  }
  return { dir, ca: f("ca.crt"), serverCert: f("server.crt"), serverKey: f("server.key"), clientCert: f("client.crt"), clientKey: f("client.key") };
}
