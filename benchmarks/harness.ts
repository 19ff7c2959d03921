// Shared benchmark plumbing: median-of-runs timing and the results file format
// {"benchmark": NAME, "metrics": {KEY: NUMBER}, ...}.
import { writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";

export function medianNs(runs: number, body: () => number): number {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(body());
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

/** Times `fn` once over `n` iterations and returns ns per iteration. */
export function perOp(n: number, fn: (n: number) => void): number {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / n;
}

export function writeResult(name: string, metrics: Record<string, number>, extra: Record<string, unknown> = {}): void {
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const out = {
    benchmark: name,
    metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
    ...extra,
    environment: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? "unknown", date: new Date().toISOString() },
  };
  writeFileSync(new URL(`./results/${name}.json`, import.meta.url), JSON.stringify(out, null, 2) + "\n");
  console.log(JSON.stringify(out, null, 2));
}
