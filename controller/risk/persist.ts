// The risk engine's state on disk (stateDir/risk.jsonl), so a restarted controller continues the risk
// instead of restarting it at 0 and re-learning every baseline: each component's smoothed risk and
// each signal's last keepPoints points, which restore() replays into fresh detectors.
//
// Written whole every few seconds (not per point): temp file, fsync, rename, fsync of the directory,
// so a crash leaves the previous file or the new one, never a mix. Size is bounded by the
// configuration: components x signals x keepPoints points (about 30 bytes each as JSON).
// Loaded like input: every line is checked (zod) and a bad one is an error naming FILE:LINE: field:
// reason; components or signals no longer configured are skipped with a warning.
//
// Format, one JSON record per line:
//   {"t":"risk","version":1,"savedAtMs":...,"keepPoints":N}
//   {"t":"component","name":...,"risk":0..1,"probability":0..1,"noData":bool,"updatedMs":...}
//   {"t":"signal","component":...,"name":...,"lastSeenMs":ms|null,"points":[[tMs,value],...],"profile"?:{...}}   (oldest first;
//   profile: the learnt seasonal profile of a signal with seasonS, so a restart keeps a day's shape that
//   the kept points do not cover; optional, so files written before it load unchanged)
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { replaceFileText } from "../durable-file.js";
import { z } from "zod";
import { zodProblem } from "../yaml-config.js";
import type { RiskSnapshot } from "./engine.js";

export class RiskStateError extends Error {}

/** Points a signal keeps for the next start, unless configured otherwise. */
export const DEFAULT_KEEP_POINTS = 1024;
/** A file claiming more points per signal than this is refused (a bound on what a start reads). */
const MAX_POINTS = 65_536;

const num = z.number().finite();
const unit = z.number().min(0).max(1);
/** A learnt seasonal profile (detectors/profile.ts): per slot, visits, periods, last period, level and spread. */
const MAX_BINS = 10_000;
const profileSchema = z.strictObject({
  periodMs: num.positive(), bins: z.number().int().min(2).max(MAX_BINS),
  visits: z.array(num.min(0)).max(MAX_BINS), periods: z.array(num.min(0)).max(MAX_BINS), lastPeriod: z.array(num).max(MAX_BINS),
  level: z.array(num).max(MAX_BINS), spread: z.array(num.min(0)).max(MAX_BINS),
}).refine((p) => [p.visits, p.periods, p.lastPeriod, p.level, p.spread].every((a) => a.length === p.bins), "every per-slot array must have `bins` entries");
const lineSchema = z.discriminatedUnion("t", [
  z.strictObject({ t: z.literal("risk"), version: z.literal(1), savedAtMs: num, keepPoints: z.number().int().min(1).max(MAX_POINTS) }),
  z.strictObject({ t: z.literal("component"), name: z.string().min(1), risk: unit, probability: unit, noData: z.boolean(), updatedMs: num.min(0) }),
  z.strictObject({
    t: z.literal("signal"), component: z.string().min(1), name: z.string().min(1), lastSeenMs: num.nullable(),
    points: z.array(z.tuple([num, num])).max(MAX_POINTS).refine((ps) => ps.every((p, i) => i === 0 || p[0] >= ps[i - 1]![0]), "timestamps must not go back"),
    profile: profileSchema.optional(),
  }),
]);

export class RiskStateFile {
  readonly file: string;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, "risk.jsonl");
  }

  /** The stored snapshot (null: none yet). Throws RiskStateError naming FILE:LINE: field: reason. */
  load(): RiskSnapshot | null {
    if (!existsSync(this.file)) return null;
    const lines = readFileSync(this.file, "utf8").split("\n");
    const snap: RiskSnapshot = { components: [] };
    const byName = new Map<string, RiskSnapshot["components"][number]>();
    let header = false;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line) continue;
      const where = `${this.file}:${i + 1}`;
      let raw: unknown;
      try { raw = JSON.parse(line); } catch (e) { throw new RiskStateError(`${where}: not valid JSON: ${(e as Error).message}`); }
      const r = lineSchema.safeParse(raw);
      if (!r.success) throw new RiskStateError(`${where}: ${zodProblem(r.error, raw).text}`);
      const x = r.data;
      if (!header && x.t !== "risk") throw new RiskStateError(`${where}: t: the first record must be the header {"t":"risk","version":1,...}`);
      if (x.t === "risk") { if (header) throw new RiskStateError(`${where}: t: a second header`); header = true; }
      else if (x.t === "component") {
        if (byName.has(x.name)) throw new RiskStateError(`${where}: name: component ${x.name} is listed twice`);
        const c = { name: x.name, risk: x.risk, probability: x.probability, noData: x.noData, updatedMs: x.updatedMs, signals: [] };
        byName.set(x.name, c); snap.components.push(c);
      } else {
        const c = byName.get(x.component);
        if (!c) throw new RiskStateError(`${where}: component: ${x.component} has no component record before it`);
        if (c.signals.some((s) => s.name === x.name)) throw new RiskStateError(`${where}: name: signal ${x.component}/${x.name} is listed twice`);
        c.signals.push({ name: x.name, lastSeenMs: x.lastSeenMs, points: x.points, ...(x.profile ? { profile: x.profile } : {}) });
      }
    }
    if (!header) throw new RiskStateError(`${this.file}:1: t: no header record (an empty file)`);
    return snap;
  }

  /** Replaces the file with `snap`, durably and atomically. */
  save(snap: RiskSnapshot, savedAtMs: number, keepPoints: number): void {
    let out = JSON.stringify({ t: "risk", version: 1, savedAtMs, keepPoints }) + "\n";
    for (const c of snap.components) {
      out += JSON.stringify({ t: "component", name: c.name, risk: c.risk, probability: c.probability, noData: c.noData, updatedMs: c.updatedMs }) + "\n";
      for (const s of c.signals) out += JSON.stringify({ t: "signal", component: c.name, name: s.name, lastSeenMs: s.lastSeenMs, points: s.points.slice(-keepPoints), ...(s.profile ? { profile: s.profile } : {}) }) + "\n";
    }
    replaceFileText(this.file, out);
  }
}
