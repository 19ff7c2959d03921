// A local process tree's resource use from /proc (Linux): CPU time, resident memory and storage
// bytes read and written, summed over a root process (a postmaster) and its children. Rates come
// from the difference between two readings. Reads only /proc; nothing is sampled per request.
import { readFileSync, readdirSync } from "node:fs";
import { cpus } from "node:os";

/** Clock ticks a second (USER_HZ): 100 on every Linux this runs on (getconf CLK_TCK). */
const CLK_TCK = 100;
const PAGE = 4096;

export interface ProcReading {
  tMs: number;
  /** utime + stime over the tree, in seconds. */
  cpuS: number;
  rssBytes: number;
  readBytes: number;
  writeBytes: number;
  processes: number;
}

export interface ProcRates { cpuRatio: number; rssBytes: number; readBytesPerS: number; writeBytesPerS: number }

/** Parses /proc/PID/stat: [ppid, utime + stime ticks, rss pages] (the command may hold spaces and parentheses). */
function stat(pid: number): [number, number, number] | null {
  let s: string;
  try { s = readFileSync(`/proc/${pid}/stat`, "utf8"); } catch { return null; }
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, rss 24.
  return [Number(f[1]), Number(f[11]) + Number(f[12]), Number(f[21])];
}

function io(pid: number): [number, number] {
  try {
    const s = readFileSync(`/proc/${pid}/io`, "utf8");
    const r = /read_bytes: (\d+)/.exec(s), w = /\nwrite_bytes: (\d+)/.exec(s);
    return [Number(r?.[1] ?? 0), Number(w?.[1] ?? 0)];
  } catch { return [0, 0]; }
}

/** The pids whose parent is `pid` (none where there is no /proc). */
export function childrenOf(pid: number): number[] {
  let names: string[];
  try { names = readdirSync("/proc"); } catch { return []; }
  const out: number[] = [];
  for (const n of names) {
    const child = Number(n);
    if (Number.isInteger(child) && child !== pid && stat(child)?.[0] === pid) out.push(child);
  }
  return out;
}

/** Reads the tree under `root` (the root and its direct children: a postmaster's backends and workers). null: no such process. */
export function readTree(root: number, tMs: number): ProcReading | null {
  const r = stat(root);
  if (!r) return null;
  const out: ProcReading = { tMs, cpuS: r[1] / CLK_TCK, rssBytes: r[2] * PAGE, readBytes: 0, writeBytes: 0, processes: 1 };
  [out.readBytes, out.writeBytes] = io(root);
  for (const pid of childrenOf(root)) {
    const c = stat(pid);
    if (!c) continue;
    const [rb, wb] = io(pid);
    out.cpuS += c[1] / CLK_TCK; out.rssBytes += c[2] * PAGE; out.readBytes += rb; out.writeBytes += wb; out.processes++;
  }
  return out;
}

/** Rates between two readings of one tree; CPU as a share of the machine's cores (capacity 1). Children that exited take their counts with them, so a negative difference counts as 0. */
export function rates(prev: ProcReading, cur: ProcReading, cores = cpus().length): ProcRates | null {
  const dt = (cur.tMs - prev.tMs) / 1000;
  if (!(dt > 0)) return null;
  const d = (a: number, b: number) => Math.max(0, b - a) / dt;
  return { cpuRatio: Math.min(1, d(prev.cpuS, cur.cpuS) / Math.max(1, cores)), rssBytes: cur.rssBytes, readBytesPerS: d(prev.readBytes, cur.readBytes), writeBytesPerS: d(prev.writeBytes, cur.writeBytes) };
}
