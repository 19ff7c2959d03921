// A real etcd 3.4 cluster (Debian's /usr/bin/etcd) on loopback for tests: free ports, a temp dir
// per member, kill/stop/cont/restart of one member, health polling, and cleanup (also on exit).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const INSTALL = "apt-get install -y etcd-server";

function etcdBinary(): string | null {
  if (existsSync("/usr/bin/etcd")) return "/usr/bin/etcd";
  const r = spawnSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" });
  const path = r.status === 0 ? r.stdout.trim() : "";
  return path !== "" ? path : null;
}

/** null when an etcd binary is there, else why not (with the command that installs it). */
export function etcdAvailable(): string | null {
  return etcdBinary() !== null ? null : `etcd is not installed (Debian: ${INSTALL})`;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  /** Pid of the current process of this member (changes on restart). */
  pid: number;
}

export interface EtcdCluster {
  /** Client URLs, e.g. "http://127.0.0.1:P", one per member, in member order. */
  endpoints: string[];
  members: EtcdMember[];
  /** Sends `signal` (SIGKILL by default) to member i and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the member keeps its sockets but answers nothing. */
  stop(i: number): void;
  /** SIGCONT after stop(i). */
  cont(i: number): void;
  /** Starts a killed member again on the same data dir and ports (--initial-cluster-state existing). */
  restart(i: number): Promise<void>;
  /** Polls GET /health of member i until {"health":"true"}; throws with the tail of its log on timeout. */
  waitHealthy(i: number, timeoutMs?: number): Promise<void>;
  /** Index of the running member that says it leads (POST /v3/maintenance/status), null when none does. */
  leader(): Promise<number | null>;
  /** Tail of member i's log (stdout and stderr of every run of it). */
  logTail(i: number, lines?: number): string;
  /** Kills every member, waits for them to exit, removes the temp dirs. */
  close(): Promise<void>;
}

// --- ports ------------------------------------------------------------------------------------

const handedOut = new Set<number>();

async function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A loopback port that was free a moment ago and that this process never handed out before. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await ephemeralPort();
    if (port !== 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("etcd-cluster: no free loopback port after 100 tries");
}

// --- processes left behind --------------------------------------------------------------------

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

// --- the cluster ------------------------------------------------------------------------------

interface MemberState {
  name: string;
  dir: string;
  dataDir: string;
  logFile: string;
  clientPort: number;
  peerPort: number;
  child: ChildProcess | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: unknown };
    return res.ok && body.health === "true";
  } catch {
    return false;
  }
}

export async function startEtcdCluster(o: { members?: number } = {}): Promise<EtcdCluster> {
  const binary = etcdBinary();
  if (binary === null) throw new Error(`etcd-cluster: etcd is not installed (Debian: ${INSTALL})`);
  const count = o.members ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`etcd-cluster: members must be a positive integer, got ${count}`);
  installExitHook();

  const token = `shadowmesh-${randomBytes(6).toString("hex")}`;
  const states: MemberState[] = [];
  for (let i = 0; i < count; i++) {
    const dir = mkdtempSync(join(tmpdir(), `shadowmesh-etcd-m${i}-`));
    tempDirs.add(dir);
    states.push({
      name: `m${i}`,
      dir,
      dataDir: join(dir, "data"),
      logFile: join(dir, "etcd.log"),
      clientPort: await freePort(),
      peerPort: await freePort(),
      child: null,
    });
  }
  const initialCluster = states.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(",");
  const clientUrl = (s: MemberState) => `http://127.0.0.1:${s.clientPort}`;
  // Only etcd's unsupported architectures (anything but amd64, arm64, ppc64le, s390x) need this.
  const env = { ...process.env };
  if (!["x64", "arm64", "ppc64", "s390x"].includes(process.arch)) env.ETCD_UNSUPPORTED_ARCH = process.arch === "ia32" ? "386" : process.arch;

  const members: EtcdMember[] = states.map((s) => ({ name: s.name, clientUrl: clientUrl(s), pid: 0 }));

  function spawnMember(i: number, clusterState: "new" | "existing"): void {
    const s = states[i]!;
    const peerUrl = `http://127.0.0.1:${s.peerPort}`;
    const args = [
      "--name", s.name,
      "--data-dir", s.dataDir,
      "--listen-client-urls", clientUrl(s),
      "--advertise-client-urls", clientUrl(s),
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", initialCluster,
      "--initial-cluster-state", clusterState,
      "--initial-cluster-token", token,
      "--heartbeat-interval", "50",
      "--election-timeout", "500",
      "--logger", "zap",
      "--log-outputs", "stderr",
    ];
    const fd = openSync(s.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(binary!, args, { env, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error(`etcd-cluster: could not spawn ${binary} for ${s.name}`);
    child.on("error", () => {}); // spawn failures surface as a missing pid above or an exit
    running.add(child);
    child.once("exit", () => running.delete(child));
    s.child = child;
    members[i]!.pid = child.pid;
  }

  function member(i: number): MemberState {
    const s = states[i];
    if (s === undefined) throw new Error(`etcd-cluster: no member ${i} (cluster of ${count})`);
    return s;
  }

  function logTail(i: number, lines = 20): string {
    return tail(member(i).logFile, lines);
  }

  async function waitHealthy(i: number, timeoutMs = 20_000): Promise<void> {
    const s = member(i);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await healthy(clientUrl(s))) return;
      const child = s.child;
      if (child === null || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`etcd-cluster: ${s.name} is not running (exit ${child?.exitCode ?? child?.signalCode ?? "never started"}); log:\n${logTail(i)}`);
      }
      if (Date.now() > deadline) throw new Error(`etcd-cluster: ${s.name} not healthy after ${timeoutMs} ms; log:\n${logTail(i)}`);
      await sleep(50);
    }
  }

  async function kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = member(i).child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited(child);
  }

  function signalRunning(i: number, signal: NodeJS.Signals): void {
    const s = member(i);
    if (s.child === null || s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`etcd-cluster: ${s.name} is not running`);
    s.child.kill(signal);
  }

  async function leader(): Promise<number | null> {
    const answers = await Promise.all(states.map(async (s, i) => {
      if (s.child === null || s.child.exitCode !== null || s.child.signalCode !== null) return null;
      try {
        const res = await fetch(`${clientUrl(s)}/v3/maintenance/status`, { method: "POST", body: "{}", signal: AbortSignal.timeout(1000) });
        // The JSON gateway writes uint64 ids as strings.
        const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
        return res.ok && body.leader !== undefined && body.leader !== "0" && body.header?.member_id === body.leader ? i : null;
      } catch {
        return null;
      }
    }));
    return answers.find((i) => i !== null) ?? null;
  }

  async function close(): Promise<void> {
    await Promise.all(states.map(async (s) => {
      const child = s.child;
      if (child !== null && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited(child);
      }
    }));
    for (const s of states) {
      rmSync(s.dir, { recursive: true, force: true });
      tempDirs.delete(s.dir);
    }
  }

  try {
    for (let i = 0; i < count; i++) spawnMember(i, "new");
    const deadline = Date.now() + 20_000;
    await Promise.all(states.map((_, i) => waitHealthy(i, Math.max(0, deadline - Date.now()))));
  } catch (e) {
    const logs = states.map((s, i) => `--- ${s.name} (${s.logFile}) ---\n${logTail(i)}`).join("\n");
    await close();
    throw new Error(`etcd-cluster: the cluster did not become healthy: ${(e as Error).message.split("\n")[0]}\n${logs}`);
  }

  return {
    endpoints: members.map((m) => m.clientUrl),
    members,
    kill,
    stop: (i) => signalRunning(i, "SIGSTOP"),
    cont: (i) => signalRunning(i, "SIGCONT"),
    async restart(i) {
      const s = member(i);
      if (s.child !== null && s.child.exitCode === null && s.child.signalCode === null) throw new Error(`etcd-cluster: ${s.name} is still running; kill it first`);
      spawnMember(i, "existing");
    },
    waitHealthy,
    leader,
    logTail,
    close,
  };
}
