// A controller replica in its own process for the HA tests (so the test can SIGKILL or SIGSTOP it):
// campaigns for leadership on the etcd cluster given in argv, and answers commands on stdin, one JSON
// line each on stdout: "save STEP" (a guarded save of a Shifting status at that step, with the
// current token), "save-stale STEP" (the same with the token of its first term, skipping the local
// step-down check: what a leader that woke up late would send), "token". Prints {"elected":REV},
// {"deposed":REASON}, {"saved":STEP} or {"refused":{name,message}}.
import readline from "node:readline";
import { silentLogger } from "../../controller/log.js";
import { etcdClient } from "../../controller/ha/client.js";
import { Leadership, type LeaderToken } from "../../controller/ha/leader.js";
import { EtcdStateStore } from "../../controller/ha/etcd-store.js";
import { initialStatus } from "../../controller/migration/reconcile.js";

const [endpoints, replica, ttl, prefix] = process.argv.slice(2);
const client = etcdClient({ endpoints: endpoints!.split(","), callTimeoutMs: 2000 });
const out = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
const leadership = new Leadership({ client, replica: replica!, ttlS: Number(ttl), log: silentLogger(), nowMs: () => Date.now(), prefix: prefix! });
let first: LeaderToken | null = null;
leadership.on("elected", (t: LeaderToken) => { first ??= t; out({ elected: t.revision }); });
leadership.on("deposed", (reason: string) => out({ deposed: reason }));
await leadership.start();
const store = new EtcdStateStore(leadership.ns, () => leadership.token);
const stale = new EtcdStateStore(leadership.ns, () => first);
await store.open();
await stale.open();

const status = (step: number) => ({ ...initialStatus("orders", Date.now()), phase: "Shifting" as const, stepIndex: step, shadowWeightBp: 2000 * (step + 1), revision: step + 1 });
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, arg] = line.trim().split(" ");
  const step = Number(arg ?? 0);
  const s = cmd === "save" ? store : cmd === "save-stale" ? stale : null;
  if (cmd === "token") { out({ token: leadership.token?.revision ?? null }); return; }
  if (!s) { out({ error: `unknown command ${line}` }); return; }
  s.save(status(step), []).then(() => out({ saved: step }), (e: Error) => out({ refused: { name: e.constructor.name, message: e.message } }));
});
