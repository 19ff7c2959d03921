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
    const raw = line.slice(comma + 1).trim();
    // Number("") is 0: an empty value is missing data, not a zero.
    const v = raw === "" ? NaN : Number(raw);
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

/**
 * NAB's labels/combined_windows.json: {"CATEGORY/FILE.csv": [[start, end], ...], ...}, each bound a
 * timestamp as the rows write it. A file that cannot be read, is not JSON or has another shape is
 * refused with the file and what is wrong (the key and window where one is).
 */
export function readWindows(file: string): Record<string, [string, string][]> {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) { throw new Error(`${file}: cannot read the windows: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) { throw new Error(`${file}: not JSON: ${(e as Error).message}`); }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new Error(`${file}: expected an object of "CATEGORY/FILE.csv": [[start, end], ...], got ${Array.isArray(json) ? "an array" : JSON.stringify(json)}`);
  for (const [key, wins] of Object.entries(json)) {
    if (!Array.isArray(wins)) throw new Error(`${file}: ${key}: expected a list of [start, end] windows, got ${JSON.stringify(wins)}`);
    wins.forEach((w: unknown, i: number) => {
      if (!Array.isArray(w) || w.length !== 2 || typeof w[0] !== "string" || typeof w[1] !== "string") throw new Error(`${file}: ${key}[${i}]: expected [start, end] as two timestamps, got ${JSON.stringify(w)}`);
    });
  }
  return json as Record<string, [string, string][]>;
}
