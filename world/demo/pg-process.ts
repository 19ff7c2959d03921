// Running the PostgreSQL 15 programs (in PG_BIN) as the `postgres` OS user (through `runuser` when we are
// root, inside a zone's network namespace when given one): runAsPostgres/mustRun with an argv array and
// a clean environment, freePort() (loopback ports never handed out twice), queryOnce(), the process
// helpers that stop what a pair leaves behind (resume a frozen postmaster, kill -9 leftovers, remove
// orphaned shared memory), and the live set: what a started pair owns, cleaned up synchronously if the
// process exits (or gets SIGINT/SIGTERM) before pair.stop().
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import { postmasterPid } from "../../controller/drivers/postgres.js";
import { childrenOf } from "../../controller/drivers/proc.js";
import { removeZones, type Zones } from "./pg-zones.js";

export const PG_BIN = "/usr/lib/postgresql/15/bin";

export interface RunResult { code: number | null; stdout: string; stderr: string }

export const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

export function runuserPath(): string | null {
  for (const p of ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]) if (existsSync(p)) return p;
  return null;
}

export function postgresIds(): { uid: number; gid: number } | null {
  const u = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const g = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  const uid = Number(u.stdout?.trim()), gid = Number(g.stdout?.trim());
  return u.status === 0 && g.status === 0 && Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
}

/** The environment for the PostgreSQL programs: ours without PG* variables (PGPORT, PGDATA, ... would leak in). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  return env;
}

function argvAsPostgres(program: string, args: string[], netns: string | null = null): string[] {
  const bin = path.join(PG_BIN, program);
  if (!isRoot()) return [bin, ...args];
  return [...(netns ? ["ip", "netns", "exec", netns] : []), runuserPath() ?? "runuser", "-u", "postgres", "--", bin, ...args];
}

/** Runs a PostgreSQL program as the postgres user (cwd: a folder that user can enter). */
export function runAsPostgres(program: string, args: string[], cwd: string, timeoutMs = 120_000, netns: string | null = null): Promise<RunResult> {
  const [cmd, ...rest] = argvAsPostgres(program, args, netns);
  return new Promise((resolve) => {
    let stdout = "", stderr = "";
    const child = spawn(cmd!, rest, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => { stderr += `\n(killed after ${timeoutMs} ms)`; child.kill("SIGKILL"); }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.on("error", (e) => { clearTimeout(timer); resolve({ code: null, stdout, stderr: stderr + String(e) }); });
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

export async function mustRun(program: string, args: string[], cwd: string, netns: string | null = null): Promise<RunResult> {
  const r = await runAsPostgres(program, args, cwd, 120_000, netns);
  if (r.code !== 0) throw new Error(`${program} ${args.join(" ")} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r;
}

const handedOut = new Set<number>();
/** A loopback port nothing listens on now (listen on 0, close); never the same one twice in this process. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.unref();
      s.on("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        const p = typeof a === "object" && a ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) { handedOut.add(port); return port; }
  }
  throw new Error("no free loopback port found");
}

/**
 * Whether pid is a live PostgreSQL process: its comm is "postgres" and it is not a zombie (pg_ctl
 * daemonizes the postmaster, so once it exits it waits as a zombie until PID 1 reaps it, and
 * kill(pid, 0) still succeeds on it). On systems without /proc: merely alive.
 */
export function isPostgresProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return comm === "postgres" && state !== "Z" && state !== "X";
  } catch {
    if (existsSync("/proc/self")) return false;
    try { process.kill(pid, 0); return true; } catch { return false; }
  }
}


/** SIGCONT to a postmaster and its children, so one a test froze (SIGSTOP) can act on pg_ctl stop. */
export function resume(pid: number): void {
  for (const p of [pid, ...childrenOf(pid)]) if (isPostgresProcess(p)) { try { process.kill(p, "SIGCONT"); } catch { /* gone */ } }
}

/** kill -9 a postmaster that outlived `pg_ctl stop -m immediate`, and its children. */
export function killLeftover(pid: number | null): void {
  if (pid === null || !isPostgresProcess(pid)) return;
  for (const c of childrenOf(pid)) if (isPostgresProcess(c)) { try { process.kill(c, "SIGKILL"); } catch { /* gone */ } }
  try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
}

/**
 * Removes the System V shared memory segment a postmaster leaves behind when it dies without shutting
 * down (kill -9, as tests of sudden death do): PostgreSQL keeps a small interlock segment (key from the
 * data directory's inode) that nothing else removes. Only segments nobody is attached to, created by
 * one of `pids` or keyed by one of the data directories' inodes (read before the folder is removed).
 */
export function removeOrphanSegments(pids: number[], inodes: number[]): void {
  let text: string;
  try { text = readFileSync("/proc/sysvipc/shm", "utf8"); } catch { return; }
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/).map(Number);
    const [key, shmid, , , cpid, , nattch] = f;
    if (shmid === undefined || nattch !== 0 || !(pids.includes(cpid!) || inodes.includes(key!))) continue;
    spawnSync("ipcrm", ["-m", String(shmid)], { stdio: "ignore" });
  }
}

export function inodeOf(p: string): number | null {
  try { return statSync(p).ino; } catch { return null; }
}

// ---- cleanup if the process ends without pair.stop() (a crash, uvu exiting, ^C) ----
export interface Live { dir: string; dataDirs: string[]; mounts: string[]; zones: Zones | null }
const live = new Set<Live>();
const onSignal = (sig: NodeJS.Signals): void => {
  cleanupAllSync();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.kill(process.pid, sig);
};
let hooked = false;

function cleanupAllSync(): void {
  for (const l of live) {
    const pids: number[] = [], inodes: number[] = [];
    for (const d of l.dataDirs) {
      const pid = postmasterPid(d), ino = inodeOf(d);
      if (ino !== null) inodes.push(ino);
      if (pid === null) continue;
      pids.push(pid);
      if (!isPostgresProcess(pid)) continue;
      resume(pid);
      const [cmd, ...rest] = argvAsPostgres("pg_ctl", ["-D", d, "stop", "-m", "immediate", "-w", "-t", "10"]);
      spawnSync(cmd!, rest, { cwd: l.dir, env: cleanEnv(), stdio: "ignore", timeout: 15_000 });
      killLeftover(pid);
    }
    removeOrphanSegments(pids, inodes);
    for (const m of l.mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
    if (l.zones) removeZones(l.zones);
    rmSync(l.dir, { recursive: true, force: true });
  }
  live.clear();
}

export function track(l: Live): void {
  live.add(l);
  if (!hooked) {
    hooked = true;
    process.on("exit", cleanupAllSync);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
}

export function untrack(l: Live): void {
  live.delete(l);
  if (live.size === 0 && hooked) {
    hooked = false;
    process.off("exit", cleanupAllSync);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** One statement on a fresh client, closed afterwards. */
export async function queryOnce(conninfo: string, sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: conninfo, connectionTimeoutMillis: 3000 });
  client.on("error", () => { /* the server went away: the pending query rejects */ });
  try {
    await client.connect();
    return await client.query(sql, params);
  } finally {
    await client.end().catch(() => {});
  }
}
