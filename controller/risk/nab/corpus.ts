// Reading a NAB-layout corpus: DATA_DIR/CATEGORY/FILE.csv ("timestamp,value") and, for scoring,
// labels/combined_windows.json. Bad input is refused with the file, line and reason.
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

export interface Series { key: string; timestamps: string[]; timesMs: Float64Array; values: Float64Array }

/** "YYYY-MM-DD HH:MM:SS[.ffffff]" (NAB's format, UTC) or ISO 8601 to Unix ms; NaN if neither. */
export function parseTimestamp(t: string): number {
  const iso = /^\d{4}-\d\d-\d\d \d/.test(t) ? t.replace(" ", "T") : t;
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
}

export function readSeries(file: string, key: string): Series {
  const lines = readFileSync(file, "utf8").split(/\r?\n/);
  const header = lines[0]?.trim().toLowerCase();
  if (header !== "timestamp,value") throw new Error(`${file}:1: expected the header "timestamp,value", got ${JSON.stringify(lines[0])}`);
  const timestamps: string[] = [];
  const values: number[] = [];
  const times: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const comma = line.indexOf(",");
    if (comma < 0) throw new Error(`${file}:${i + 1}: expected "timestamp,value", got ${JSON.stringify(line)}`);
    const v = Number(line.slice(comma + 1));
    if (!Number.isFinite(v)) throw new Error(`${file}:${i + 1}: value ${JSON.stringify(line.slice(comma + 1))} is not a number`);
    const ts = line.slice(0, comma);
    const t = parseTimestamp(ts);
    if (Number.isNaN(t)) throw new Error(`${file}:${i + 1}: timestamp ${JSON.stringify(ts)} is not a date ("YYYY-MM-DD HH:MM:SS" or ISO 8601)`);
    timestamps.push(ts);
    times.push(t);
    values.push(v);
  }
  return { key, timestamps, timesMs: Float64Array.from(times), values: Float64Array.from(values) };
}

/** Every CATEGORY/FILE.csv under dataDir, sorted by key. */
export function listCorpus(dataDir: string): { key: string; file: string }[] {
  const out: { key: string; file: string }[] = [];
  for (const cat of readdirSync(dataDir).sort()) {
    const dir = path.join(dataDir, cat);
    if (!statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir).sort()) if (f.endsWith(".csv")) out.push({ key: `${cat}/${f}`, file: path.join(dir, f) });
  }
  return out;
}

export function readWindows(file: string): Record<string, [string, string][]> {
  return JSON.parse(readFileSync(file, "utf8"));
}
