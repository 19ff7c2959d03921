// Durable migration state: every component's status and the history of decisions (events), on disk in
// an append-only journal that is fsync'ed before save() returns, so a status is durable before the
// traffic change it describes is made. Compaction writes a snapshot (temp file, fsync, rename; one
// record per line, still one JSON document) and starts a new journal. On load every record is checked
// like input (zod: phases, sides, weights in 0..10000 bp, fractions in 0..1, integer steps and epochs):
// a torn last line (a crash mid-append, never acknowledged) is dropped with a warning; any other bad
// line or record is an error naming FILE:LINE: field: reason, never silently skipped.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { PHASES } from "./status.js";
import type { MigrationEvent, MigrationStatus } from "./reconcile.js";
import { positionOf, zodProblem } from "../yaml-config.js";

export interface StoredState {
  statuses: Map<string, MigrationStatus>;
  events: MigrationEvent[];
  /** Policies set through the API (YAML documents), which override the policy file after a restart. */
  policies: Map<string, string>;
}

export interface StateStore {
  load(): StoredState;
  /**
   * Durable when it returns, or, for a store that writes over the network (ha/etcd-store.ts), when
   * the promise resolves; a rejected save was not made (the manager then stops: see manager.ts).
   */
  save(status: MigrationStatus, events: readonly MigrationEvent[]): void | Promise<void>;
  /** Durable when it returns (or its promise resolves). */
  savePolicy(component: string, yaml: string): void | Promise<void>;
  close(): void;
  /** What load() recovered from (a torn last journal line), for the operator's log. */
  readonly warnings?: readonly string[];
}

/** A record on disk that does not check: `FILE:LINE: field: reason` (file and line say what to fix). */
export class StateStoreError extends Error {}

// The record schemas: MigrationStatus and MigrationEvent (reconcile.ts) as zod, strict, so a typo, a
// phase that does not exist or a weight out of range is refused at load instead of driving traffic.
const ms = z.number().finite();
const side = z.enum(["primary", "shadow"]);
const phase = z.enum(PHASES);
const statusSchema = z.strictObject({
  component: z.string().min(1),
  phase,
  direction: z.enum(["forward", "reverse"]),
  stepIndex: z.number().int().min(-1),
  shadowWeightBp: z.number().int().min(0).max(10_000),
  mirrorFraction: z.number().min(0).max(1),
  writeTarget: side,
  fenced: side.nullable(),
  phaseSinceMs: ms,
  stepSinceMs: ms.nullable(),
  riskHighSinceMs: ms.nullable(),
  riskLowSinceMs: ms.nullable(),
  rollout: z.strictObject({ id: z.string().min(1), purpose: z.string() }).nullable(),
  promotion: z.strictObject({ stage: z.enum(["pause", "fence", "drain", "lease", "promote", "switch"]), sinceMs: ms, notBeforeMs: ms.optional(), stopped: z.boolean().optional() }).nullable(),
  pendingAction: z.strictObject({ id: z.string().min(1), kind: z.enum(["fence", "unfence", "promote"]), side, sinceMs: ms }).nullable(),
  baseline: z.strictObject({ requests: z.number().min(0), errorRate: z.number().min(0).max(1), latencyMs: z.number().min(0) }).nullable(),
  approvals: z.strictObject({ firstStep: z.boolean(), full: z.boolean() }),
  paused: z.strictObject({ from: phase, reason: z.string() }).nullable(),
  lastVerdict: z.strictObject({ outcome: z.string(), summary: z.string(), atMs: ms }).nullable(),
  blockedReason: z.string().nullable(),
  message: z.string(),
  revision: z.number().int().min(0),
  shadowFit: z.boolean().optional(),
  shadowFitSinceMs: ms.nullable().optional(),
  shadowUnfitSeen: z.boolean().optional(),
  shadowVerifiedMs: ms.nullable().optional(),
  holdWrites: z.string().nullable().optional(),
  pauseWritesMs: z.number().int().min(0).max(60_000).optional(),
  emergency: z.strictObject({ sinceMs: ms, reason: z.string() }).nullable().optional(),
  epoch: z.number().int().min(1).optional(),
  leaseHolder: side.optional(),
});
const eventSchema = z.strictObject({
  atMs: ms, component: z.string().min(1),
  kind: z.enum(["phase", "step", "blocked", "verification", "rollout", "action", "command", "risk"]),
  phase, message: z.string(), severity: z.enum(["info", "warning", "error"]),
});
const recordSchema = z.discriminatedUnion("t", [
  z.strictObject({ t: z.literal("status"), status: statusSchema }),
  z.strictObject({ t: z.literal("event"), event: eventSchema }),
  z.strictObject({ t: z.literal("policy"), component: z.string().min(1), yaml: z.string() }),
]);
const snapshotSchema = z.strictObject({ statuses: z.array(statusSchema), events: z.array(eventSchema), policies: z.record(z.string(), z.string()).optional() });
/** Checks one stored status / event / policy record like input (`where: field: reason` on a bad one). */
export function checkRecord(raw: unknown, where: string): Record_ {
  const p = recordSchema.safeParse(raw);
  if (!p.success) throw new StateStoreError(`${where}: ${zodProblem(p.error, raw).text}`);
  return p.data;
}
// Compile-time: what the schemas accept is what the reconciler reads.
const _status: (x: z.output<typeof statusSchema>) => MigrationStatus = (x) => x;
const _event: (x: z.output<typeof eventSchema>) => MigrationEvent = (x) => x;
void _status; void _event;

type Path = readonly PropertyKey[];
/** The line of `path` inside a JSON document. Only used on an error. */
function lineOf(text: string, p: Path): number { return positionOf(text, p).line; }
/** JSON.parse's error position (V8 says "at position N" or "(line L column C)") as a line of `text`. */
function syntaxLine(text: string, e: Error): number {
  const lc = e.message.match(/line (\d+) column/);
  if (lc) return Number(lc[1]);
  const pos = e.message.match(/position (\d+)/);
  return pos ? text.slice(0, Number(pos[1])).split("\n").length : 1;
}

const KEEP_EVENTS = 2000;

/** The fake for tests of the layers above, and the store of a controller run without a state dir. */
export class MemoryStateStore implements StateStore {
  readonly statuses = new Map<string, MigrationStatus>();
  readonly events: MigrationEvent[] = [];
  readonly policies = new Map<string, string>();
  readonly warnings: readonly string[] = [];
  load(): StoredState { return { statuses: new Map([...this.statuses].map(([k, v]) => [k, structuredClone(v)])), events: [...this.events], policies: new Map(this.policies) }; }
  savePolicy(component: string, yaml: string): void { this.policies.set(component, yaml); }
  save(status: MigrationStatus, events: readonly MigrationEvent[]): void {
    this.statuses.set(status.component, structuredClone(status));
    this.events.push(...events);
    if (this.events.length > KEEP_EVENTS) this.events.splice(0, this.events.length - KEEP_EVENTS);
  }
  close(): void {}
}

export type Record_ = { t: "status"; status: MigrationStatus } | { t: "event"; event: MigrationEvent } | { t: "policy"; component: string; yaml: string };

export class FileStateStore implements StateStore {
  private fd: number | null = null;
  private readonly journal: string;
  private readonly snapshot: string;
  private appended = 0;
  private state: StoredState = { statuses: new Map(), events: [], policies: new Map() };
  warnings: string[] = [];

  constructor(readonly dir: string, private readonly compactEvery = 5000) {
    mkdirSync(dir, { recursive: true });
    this.journal = path.join(dir, "journal.jsonl");
    this.snapshot = path.join(dir, "state.json");
  }

  load(): StoredState {
    const st: StoredState = { statuses: new Map(), events: [], policies: new Map() };
    this.warnings = [];
    if (existsSync(this.snapshot)) {
      const text = readFileSync(this.snapshot, "utf8");
      let raw: unknown;
      try { raw = JSON.parse(text); } catch (e) { throw new StateStoreError(`${this.snapshot}:${syntaxLine(text, e as Error)}: not valid JSON: ${(e as Error).message}`); }
      const r = snapshotSchema.safeParse(raw);
      if (!r.success) { const x = zodProblem(r.error, raw); throw new StateStoreError(`${this.snapshot}:${lineOf(text, x.path)}: ${x.text}`); }
      for (const s of r.data.statuses) st.statuses.set(s.component, s);
      st.events.push(...r.data.events);
      for (const [k, v] of Object.entries(r.data.policies ?? {})) st.policies.set(k, v);
    }
    if (existsSync(this.journal)) {
      const text = readFileSync(this.journal, "utf8");
      const lines = text.split("\n");
      const complete = text.endsWith("\n") ? lines.length - 1 : lines.length;
      for (let i = 0; i < complete; i++) {
        const line = lines[i]!;
        if (!line) continue;
        let raw: unknown;
        try { raw = JSON.parse(line); } catch (e) {
          if (i === complete - 1 && !text.endsWith("\n")) { this.warnings.push(`${this.journal}:${i + 1}: torn last record dropped (${line.length} bytes without a newline: a crash while appending; that save was never acknowledged)`); break; }
          throw new StateStoreError(`${this.journal}:${i + 1}: not valid JSON: ${(e as Error).message}`);
        }
        const p = recordSchema.safeParse(raw);
        if (!p.success) { const x = zodProblem(p.error, raw); throw new StateStoreError(`${this.journal}:${i + 1}: ${x.text}`); }
        const r = p.data;
        if (r.t === "status") st.statuses.set(r.status.component, r.status);
        else if (r.t === "event") st.events.push(r.event);
        else st.policies.set(r.component, r.yaml);
        this.appended++;
      }
    }
    if (st.events.length > KEEP_EVENTS) st.events.splice(0, st.events.length - KEEP_EVENTS);
    this.state = st;
    // Start from a compact snapshot: the journal is rewritten, a torn tail disappears with it.
    this.compact();
    return { statuses: new Map([...st.statuses].map(([k, v]) => [k, structuredClone(v)])), events: [...st.events], policies: new Map(st.policies) };
  }

  savePolicy(component: string, yaml: string): void {
    this.append(JSON.stringify({ t: "policy", component, yaml }) + "\n", 1);
    this.state.policies.set(component, yaml);
  }

  private append(text: string, records: number): void {
    if (this.fd === null) this.fd = openSync(this.journal, "a");
    writeSync(this.fd, text);
    fsyncSync(this.fd);
    this.appended += records;
  }

  save(status: MigrationStatus, events: readonly MigrationEvent[]): void {
    let out = "";
    for (const e of events) out += JSON.stringify({ t: "event", event: e }) + "\n";
    out += JSON.stringify({ t: "status", status }) + "\n";
    this.append(out, events.length + 1);
    this.state.statuses.set(status.component, structuredClone(status));
    this.state.events.push(...events);
    if (this.state.events.length > KEEP_EVENTS) this.state.events.splice(0, this.state.events.length - KEEP_EVENTS);
    if (this.appended >= this.compactEvery) this.compact();
  }

  private compact(): void {
    const tmp = `${this.snapshot}.tmp`;
    const fd = openSync(tmp, "w");
    // One JSON document, one record per line: an error on load names the record's line.
    const list = (xs: readonly unknown[]) => (xs.length ? `[\n${xs.map((x) => JSON.stringify(x)).join(",\n")}\n]` : "[]");
    writeSync(fd, `{"statuses":${list([...this.state.statuses.values()])},\n"events":${list(this.state.events)},\n"policies":${JSON.stringify(Object.fromEntries(this.state.policies))}}\n`);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.snapshot);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = openSync(this.journal, "w");
    fsyncSync(this.fd);
    const dfd = openSync(this.dir, "r");
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
    this.appended = 0;
  }

  close(): void {
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
  }
}
