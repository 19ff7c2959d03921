// Waiting in system tests: poll a condition until it holds or the time is up (naming what was
// awaited and, when given, why it is still false), and loopback ports free right now.
import net from "node:net";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, cond: () => boolean | Promise<boolean>, ms: number, why: () => string = () => ""): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}${why() ? `: ${why()}` : ""}`);
    await sleep(50);
  }
}

/** Ports picked up front (listen on 0, close): a restarted process must listen where its clients reconnect. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => r(s)); })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
