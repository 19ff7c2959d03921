// Durable migration state: every component's status and the history of decisions (events), on disk in
// an append-only journal that is fsync'ed before save() returns, so a status is durable before the
// traffic change it describes is made. Compaction writes a snapshot (temp file, fsync, rename) and
// starts a new journal. On load, a torn last line (a crash mid-append, never acknowledged) is dropped
// with a warning; any other bad line is an error naming the file and line, never silently skipped.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import path from "node:path";
import type { MigrationEvent, MigrationStatus } from "./reconcile.js";

export interface StoredState {
  statuses: Map<string, MigrationStatus>;
  events: MigrationEvent[];
  /** Policies set through the API (YAML documents), which override the policy file after a restart. */
  policies: Map<string, string>;
}

export interface StateStore {
  load(): StoredState;
  /** Durable when it returns. */
  save(status: MigrationStatus, events: readonly MigrationEvent[]): void;
  /** Durable when it returns. */
  savePolicy(component: string, yaml: string): void;
  close(): void;
}

export class StateStoreError extends Error {}

const KEEP_EVENTS = 2000;

/** The fake for tests of the layers above, and the store of a controller run without a state dir. */
export class MemoryStateStore implements StateStore {
  readonly statuses = new Map<string, MigrationStatus>();
  readonly events: MigrationEvent[] = [];
  readonly policies = new Map<string, string>();
  load(): StoredState { return { statuses: new Map([...this.statuses].map(([k, v]) => [k, structuredClone(v)])), events: [...this.events], policies: new Map(this.policies) }; }
  savePolicy(component: string, yaml: string): void { this.policies.set(component, yaml); }
  save(status: MigrationStatus, events: readonly MigrationEvent[]): void {
    this.statuses.set(status.component, structuredClone(status));
    this.events.push(...events);
    if (this.events.length > KEEP_EVENTS) this.events.splice(0, this.events.length - KEEP_EVENTS);
  }
  close(): void {}
}

type Record_ = { t: "status"; status: MigrationStatus } | { t: "event"; event: MigrationEvent } | { t: "policy"; component: string; yaml: string };

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
    if (existsSync(this.snapshot)) {
      let snap: { statuses: MigrationStatus[]; events: MigrationEvent[]; policies?: Record<string, string> };
      try { snap = JSON.parse(readFileSync(this.snapshot, "utf8")); } catch (e) { throw new StateStoreError(`${this.snapshot}: not valid JSON: ${(e as Error).message}`); }
      if (!Array.isArray(snap.statuses) || !Array.isArray(snap.events)) throw new StateStoreError(`${this.snapshot}: expected {"statuses": [...], "events": [...]}`);
      for (const s of snap.statuses) st.statuses.set(s.component, s);
      st.events.push(...snap.events);
      for (const [k, v] of Object.entries(snap.policies ?? {})) st.policies.set(k, v);
    }
    if (existsSync(this.journal)) {
      const text = readFileSync(this.journal, "utf8");
      const lines = text.split("\n");
      const complete = text.endsWith("\n") ? lines.length - 1 : lines.length;
      for (let i = 0; i < complete; i++) {
        const line = lines[i]!;
        if (!line) continue;
        let r: Record_;
        try { r = JSON.parse(line); } catch (e) {
          if (i === complete - 1 && !text.endsWith("\n")) { this.warnings.push(`${this.journal}:${i + 1}: torn last record dropped (crash while appending)`); break; }
          throw new StateStoreError(`${this.journal}:${i + 1}: not valid JSON: ${(e as Error).message}`);
        }
        if (r.t === "status" && r.status?.component) st.statuses.set(r.status.component, r.status);
        else if (r.t === "event" && r.event) st.events.push(r.event);
        else if (r.t === "policy" && typeof r.component === "string" && typeof r.yaml === "string") st.policies.set(r.component, r.yaml);
        else throw new StateStoreError(`${this.journal}:${i + 1}: unknown record ${JSON.stringify(line.slice(0, 80))}`);
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
    writeSync(fd, JSON.stringify({ statuses: [...this.state.statuses.values()], events: this.state.events, policies: Object.fromEntries(this.state.policies) }));
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
