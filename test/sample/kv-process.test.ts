// Two sample KV nodes as real processes (world/sample/main.ts --require-lease, on 127.0.0.1): the leader
// is stopped with SIGSTOP while the test plays the controller (a 1.5 s lease renewed every 300 ms).
// Renewals stop, the last granted deadline passes, the follower is promoted at epoch 2 and leased,
// and then the old leader is resumed with SIGCONT. Every write that queued in its sockets while it
// was stopped, and every write it gets afterwards carrying the epoch the client knew (1), is refused;
// writes without an epoch are refused or forwarded to the new leader (and are on it); the new leader
// takes writes. A checker reads both /status pages every 100 ms for the whole test and fails if both
// ever say they are writable (leader, not fenced, lease valid) in the same sample.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const LEASE_MS = 1500, RENEW_MS = 300, SKEW_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface Node { name: string; url: string; child: ChildProcess; stderr: string[] }
const ADMIN_TOKEN = "kv-process-test-admin-token";

function startNode(name: string, side: string, role: string, port: number, peerPort: number): Node {
  const child = spawn(process.execPath, ["--import", "tsx", "world/sample/main.ts", "--name", name, "--side", side, "--role", role, "--port", String(port),
    "--peer", `http://127.0.0.1:${peerPort}`, "--require-lease"], { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, SAMPLE_KV_ADMIN_TOKEN: ADMIN_TOKEN } });
  const n: Node = { name, url: `http://127.0.0.1:${port}`, child, stderr: [] };
  child.stderr!.on("data", (d: Buffer) => { n.stderr.push(d.toString()); if (n.stderr.length > 200) n.stderr.shift(); });
  return n;
}

type Status = { role: string; fenced: boolean; leaseValid: boolean; writable: boolean; epoch: number; seq: number };
const status = async (n: Node, timeoutMs = 2000): Promise<Status> => (await (await fetch(`${n.url}/status`, { signal: AbortSignal.timeout(timeoutMs) })).json()) as Status;
const action = async (n: Node, body: Record<string, unknown>, timeoutMs = 20_000) => {
  const r = await fetch(`${n.url}/admin/actions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ component: "orders", ...body }), signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
type WriteResult = { key: string; status: number; body: { error?: string; seq?: number } };
const put = async (n: Node, key: string, epoch?: number, timeoutMs = 30_000): Promise<WriteResult> => {
  const r = await fetch(`${n.url}/kv/${key}`, { method: "PUT", body: `v-${key}`, headers: epoch ? { "x-shadowmesh-epoch": String(epoch) } : {}, signal: AbortSignal.timeout(timeoutMs) });
  return { key, status: r.status, body: (await r.json()) as WriteResult["body"] };
};
const valueOn = async (n: Node, key: string) => { const r = await fetch(`${n.url}/kv/${key}`, { signal: AbortSignal.timeout(5000) }); return r.status === 200 ? ((await r.json()) as { value: string }).value : null; };

test("SIGSTOP past the lease, promote at epoch 2, SIGCONT: the old leader refuses its queued and later writes; never two writable", async () => {
  const [pa, pb] = await freePorts(2);
  const a = startNode("kv-a", "primary", "leader", pa!, pb!);
  const b = startNode("kv-b", "shadow", "follower", pb!, pa!);
  const timers: NodeJS.Timeout[] = [];
  let checking = true;
  try {
    // Both up (bounded).
    for (const n of [a, b]) {
      const until = Date.now() + 20_000;
      for (;;) {
        try { await status(n, 500); break; } catch { if (Date.now() > until) throw new Error(`${n.name} did not start: ${n.stderr.join("")}`); await sleep(100); }
      }
    }
    // The checker: both /status pages every 100 ms; an answer from a stopped node arrives late or never.
    let samples = 0, answered = 0;
    const violations: string[] = [];
    const sample = async () => {
      const [sa, sb] = await Promise.allSettled([status(a), status(b)]);
      samples++;
      if (sa.status !== "fulfilled" || sb.status !== "fulfilled") return;
      answered++;
      const w = (s: Status) => s.role === "leader" && !s.fenced && s.leaseValid;
      if (w(sa.value) && w(sb.value)) violations.push(`${new Date().toISOString()} a=${JSON.stringify(sa.value)} b=${JSON.stringify(sb.value)}`);
    };
    const pending: Promise<void>[] = [];
    timers.push(setInterval(() => { if (checking) pending.push(sample()); }, 100));

    // The controller's lease: an absolute deadline, counted as granted when sent.
    let grantedUntil = 0;
    const grant = (n: Node, side: string, epoch: number) => {
      const T = Date.now() + LEASE_MS;
      grantedUntil = Math.max(grantedUntil, T);
      return action(n, { action: "lease", side, epoch, expiresAtMs: T }, 1000).catch(() => null);
    };
    const g = await grant(a, "primary", 1);
    assert.is(g?.status, 200);
    assert.is(g?.body.writable, true);
    const renewA = setInterval(() => void grant(a, "primary", 1), RENEW_MS);
    timers.push(renewA);
    for (let i = 0; i < 5; i++) assert.is((await put(a, `pre${i}`, 1)).status, 200);
    assert.is((await put(b, "pre-fwd")).status, 200, "the follower forwards to the leased leader");
    for (let i = 0; i < 50 && (await status(b)).seq < 6; i++) await sleep(50);
    assert.is((await status(b)).seq, 6, "replicated before the stop");
    await sleep(700); // a few renewals

    // Writes right before SIGSTOP: they reach the stopped process's sockets and wait there.
    const queued = [...[0, 1, 2].map((i) => put(a, `queued-e1-${i}`, 1)), ...[0, 1].map((i) => put(a, `queued-noepoch-${i}`))];
    a.child.kill("SIGSTOP");
    clearInterval(renewA);
    const stoppedAt = Date.now();
    // Wait out everything granted (+ the skew margin), as the controller would.
    while (Date.now() < grantedUntil + SKEW_MS) await sleep(50);
    assert.ok(Date.now() - stoppedAt < 3000, "the last lease ran out within a lease of the stop");
    const pr = await action(b, { action: "promote", side: "shadow", epoch: 2 }, 30_000);
    assert.is(pr.status, 200, JSON.stringify(pr.body));
    assert.is(pr.body.epoch, 2);
    assert.is(pr.body.role, "leader");
    assert.is(pr.body.writable, false, "no lease yet");
    const gb = await grant(b, "shadow", 2);
    assert.is(gb?.status, 200);
    assert.is(gb?.body.writable, true);
    timers.push(setInterval(() => void grant(b, "shadow", 2), RENEW_MS));
    const nb = [await put(b, "new-1", 2), await put(b, "new-2")];
    for (const w of nb) assert.is(w.status, 200, JSON.stringify(w));

    a.child.kill("SIGCONT");
    const after = [...[0, 1, 2].map((i) => put(a, `after-e1-${i}`, 1)), ...[0, 1].map((i) => put(a, `after-noepoch-${i}`))];
    const results = await Promise.all([...queued, ...after]);
    for (const w of results) {
      if (w.key.includes("-e1-")) {
        assert.ok(w.status === 503 || w.status === 409, `${w.key} must be refused: ${JSON.stringify(w)}`);
        assert.is(await valueOn(b, w.key), null);
      } else if (w.status === 200) {
        assert.is(await valueOn(b, w.key), `v-${w.key}`, `${w.key} was acknowledged: it must be on the new leader (forwarded), not only on the old one`);
      } else assert.ok(w.status === 503 || w.status === 409, `${w.key}: ${JSON.stringify(w)}`);
    }
    const refusedQueued = results.filter((w) => w.key.startsWith("queued") && w.status !== 200);
    assert.ok(refusedQueued.some((w) => /leader lease expired|older than/.test(w.body.error ?? "")), JSON.stringify(results));

    // The new leader's background demote reaches the resumed node: it follows at epoch 2.
    let sa = await status(a);
    for (let i = 0; i < 60 && sa.role !== "follower"; i++) { await sleep(100); sa = await status(a); }
    assert.is(sa.role, "follower");
    assert.is(sa.epoch, 2);
    assert.is(sa.writable, false);
    assert.is((await put(b, "new-3", 2)).status, 200);
    assert.is((await put(a, "via-a")).status, 200, "the old leader now forwards to the new one");
    assert.is(await valueOn(b, "via-a"), "v-via-a");
    await sleep(500);
    checking = false;
    await Promise.all(pending);
    assert.equal(violations, [], "both writable at one sample");
    assert.ok(samples >= 60, `samples: ${samples}`);
    assert.ok(answered >= 30, `answered samples: ${answered}`);
  } finally {
    checking = false;
    for (const t of timers) clearInterval(t);
    for (const n of [a, b]) { if (n.child.exitCode === null) { n.child.kill("SIGCONT"); n.child.kill("SIGKILL"); } }
    await Promise.all([a, b].map((n) => n.child.exitCode !== null || n.child.signalCode !== null ? null : new Promise((r) => n.child.once("exit", r))));
  }
});

test.run();
