// Child process of ha-replica.ts: the telemetry side of one replica's simulated proxies. Each proxy
// sends one filter report a second to the replica's telemetry port on its own StreamReports stream
// (as the filter does with telemetry.stream, which the controller sets), 100 proxies per HTTP/2
// connection (as the ADS clients share theirs), and counts the acks. The reports are the filter's
// real report re-stamped per proxy and second (node id, sequence, window) and encoded before the
// clock starts: encoding is the filter's work, in the proxy, not the controller's. The streams are
// raw node:http2 streams (a 5-byte gRPC frame per message), as cheap as Envoy's own client, so the
// proxies' cost does not crowd out the replica they measure on these shared 2 cores. With unary,
// one unary Report call per report instead (the filter's default without telemetry.stream).
// Messages: {prepare: {port, name, proxies, seconds, template, endNs0, firstSequence, unary}} ->
// {prepared}; {go} -> {sent, failed}.
import http2 from "node:http2";
import { telemetryRoot } from "../controller/telemetry/report.js";

const PER_CONNECTION = 100;
let rounds: Buffer[][] = [];
let port = 0, proxies = 0, UNARY = false;

function prepare(p: { port: number; name: string; proxies: number; seconds: number; template: string; endNs0: string; firstSequence: number; unary: boolean }): void {
  UNARY = p.unary;
  const T = telemetryRoot().lookupType("shadowmesh.telemetry.v1.FilterReport");
  const base = T.toObject(T.decode(Buffer.from(p.template, "base64")), { longs: String });
  port = p.port; proxies = p.proxies;
  rounds = [];
  for (let s = 0; s < p.seconds; s++) {
    const endNs = BigInt(p.endNs0) + BigInt(s) * 1_000_000_000n;
    const row: Buffer[] = [];
    for (let i = 0; i < p.proxies; i++) {
      const msg = T.encode(T.fromObject({ ...base, nodeId: `${p.name}-proxy-${i}`, sequence: String(p.firstSequence + s), windowStartUnixNanos: String(endNs - 1_000_000_000n), windowEndUnixNanos: String(endNs) })).finish();
      const frame = Buffer.alloc(5 + msg.length);
      frame.writeUInt32BE(msg.length, 1);
      frame.set(msg, 5);
      row.push(frame);
    }
    rounds.push(row);
  }
}

async function go(): Promise<{ sent: number; failed: number }> {
  const sessions = Array.from({ length: Math.ceil(proxies / PER_CONNECTION) }, () => http2.connect(`http://127.0.0.1:${port}`));
  const headers = { ":method": "POST", ":path": `/shadowmesh.telemetry.v1.Telemetry/${UNARY ? "Report" : "StreamReports"}`, "content-type": "application/grpc", te: "trailers" };
  let sent = 0, failed = 0, answered = 0;
  const open = (i: number) => {
    const st = sessions[Math.floor(i / PER_CONNECTION)]!.request(headers);
    st.on("trailers", (t) => { if (t["grpc-status"] !== "0") failed++; });
    st.on("error", () => { failed++; });
    // One answer per report: count the gRPC frames (5-byte prefix: flag, u32 length) as they arrive.
    let pending: Buffer = Buffer.alloc(0);
    st.on("data", (b: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, b]) : Buffer.from(b);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) { pending = pending.subarray(5 + pending.readUInt32BE(1)); answered++; }
    });
    return st;
  };
  const streams = UNARY ? [] : Array.from({ length: proxies }, (_, i) => open(i));
  for (const row of rounds) {
    const tick = Date.now();
    for (let i = 0; i < row.length; i++) {
      if (UNARY) open(i).end(row[i]);
      else streams[i]!.write(row[i]);
      sent++;
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
  }
  const deadline = Date.now() + 10_000;
  while (answered + failed < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const st of streams) st.end();
  for (const s of sessions) s.close();
  return { sent, failed: sent - answered };
}

process.on("message", (m: { prepare?: Parameters<typeof prepare>[0]; go?: boolean; exit?: boolean }) => {
  if (m.exit) process.exit(0);
  if (m.prepare) { prepare(m.prepare); process.send!({ prepared: true }); }
  if (m.go) void go().then((r) => process.send!(r));
});
