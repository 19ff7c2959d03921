// Child process of ha-replica.ts: the telemetry side of one replica's simulated proxies. Each proxy
// sends one filter report a second to the replica's telemetry port on its own StreamReports stream
// (as the filter does with telemetry.stream, which the controller sets), 100 proxies per HTTP/2
// connection (as the ADS clients share theirs), and counts the acks. The reports are the filter's
// real report re-stamped per proxy and second (node id, sequence, window) and encoded before the
// clock starts: encoding is the filter's work, in the proxy, not the controller's. The frames go out
// on bare HTTP/2 connections (h2-wire.ts: the gRPC messages as DATA frames, nothing decoded but the
// message count), so the proxies' cost does not crowd out the replicas they measure on these shared
// 2 cores (node:http2 took ~1 core for the 10,000 writes a second). With unary,
// one unary Report call per report instead (the filter's default without telemetry.stream).
// Messages: {prepare: {port, name, proxies, seconds, template, endNs0, firstSequence, unary}} ->
// {prepared}; {go} -> {sent, failed}.
import { H2Connection } from "./h2-wire.js";
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

let conns: H2Connection[] = [];
let streams: number[] = [];
const conn = (i: number) => conns[Math.floor(i / PER_CONNECTION)]!;

/** The proxies' connections, and with streams each proxy's stream, open before the clock starts (as a running fleet's are). */
async function connect(): Promise<void> {
  const path = `/shadowmesh.telemetry.v1.Telemetry/${UNARY ? "Report" : "StreamReports"}`;
  conns = Array.from({ length: Math.ceil(proxies / PER_CONNECTION) }, () => new H2Connection(port, path));
  await Promise.all(conns.map((c) => c.ready));
  streams = UNARY ? [] : Array.from({ length: proxies }, (_, i) => conn(i).open());
}

async function go(): Promise<{ sent: number; failed: number }> {
  let sent = 0;
  for (const row of rounds) {
    const tick = Date.now();
    for (let i = 0; i < row.length; i++) {
      if (UNARY) conn(i).call(row[i]!);
      else conn(i).send(streams[i]!, row[i]!);
      sent++;
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
  }
  const answered = () => conns.reduce((a, c) => a + c.answered, 0);
  const failed = () => conns.reduce((a, c) => a + c.failed, 0);
  const deadline = Date.now() + 10_000;
  while (answered() < sent && failed() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const out = { sent, failed: sent - answered() };
  for (const c of conns) c.close();
  return out;
}

process.on("message", (m: { prepare?: Parameters<typeof prepare>[0]; go?: boolean; exit?: boolean }) => {
  if (m.exit) process.exit(0);
  if (m.prepare) { prepare(m.prepare); void connect().then(() => process.send!({ prepared: true })); }
  if (m.go) void go().then((r) => process.send!(r));
});
