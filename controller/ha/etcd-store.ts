// The migration state in etcd, for controller replicas (the StateStore seam; the file journal stays
// the single-process default). Keys under the group's prefix: status/<component> (one JSON status),
// event/<component>/<ms>-<seq> (the decision history, trimmed to the newest KEEP_EVENTS per
// component) and policy/<component> (a policy set through the API). Every write is one transaction
// guarded twice: the leader key's create revision is still the writer's token (leader.ts), so a
// deposed leader's write is refused by etcd, and the status key's mod revision is the one this store
// last read or wrote (compare-and-swap), so two writers can never interleave a component's history.
// A refused or failed write rejects (NotLeaderError / StaleStateError / the etcd error): the save was
// not made, and the manager stops deciding. Records read back are checked like any stored input.
import type { Namespace } from "etcd3";
import type { MigrationEvent, MigrationStatus } from "../migration/reconcile.js";
import { checkRecord, type StateStore, type StoredState } from "../migration/store.js";
import { LEADER_KEY, type LeaderToken } from "./leader.js";

/** etcd refused the write: another replica leads now (the token is from an earlier term). */
export class NotLeaderError extends Error {}
/** etcd refused the write: the component's status changed since this store read it. */
export class StaleStateError extends Error {}

const KEEP_EVENTS = 2000;
/** Trim a component's events once this many were added since the last trim. */
const TRIM_EVERY = 500;

const pad = (n: number, w: number) => String(Math.max(0, Math.floor(n))).padStart(w, "0");

export class EtcdStateStore implements StateStore {
  private state: StoredState | null = null;
  /** The status key's mod revision as last read or written (0: no key). */
  private readonly modRev = new Map<string, number>();
  private readonly added = new Map<string, number>();
  private seq = 0;
  readonly warnings: string[] = [];

  /** token: the writer's, read at each write (null: not the leader, every write is refused). */
  constructor(private readonly ns: Namespace, private readonly token: () => LeaderToken | null) {}

  /** Reads everything (call before load()); every record is checked. */
  async open(): Promise<void> {
    const st: StoredState = { statuses: new Map(), events: [], policies: new Map() };
    const [statuses, events, policies] = await Promise.all([
      this.ns.getAll().prefix("status/").exec(),
      this.ns.getAll().prefix("event/").sort("Key", "Ascend").strings(),
      this.ns.getAll().prefix("policy/").strings(),
    ]);
    for (const kv of statuses.kvs) {
      const status = storedStatus(kv.key.toString(), kv.value.toString());
      st.statuses.set(status.component, status);
      this.modRev.set(status.component, Number(kv.mod_revision));
    }
    for (const [key, text] of Object.entries(events)) st.events.push(storedEvent(key, text));
    st.events.sort((a, b) => a.atMs - b.atMs);
    if (st.events.length > KEEP_EVENTS) st.events.splice(0, st.events.length - KEEP_EVENTS);
    for (const [key, yaml] of Object.entries(policies)) st.policies.set(key.slice("policy/".length), yaml);
    this.state = st;
  }

  /**
   * Confirms in etcd that the writer's term is still the current one (a read guarded like every
   * write: the leader key's create revision is the token). Rejects NotLeaderError when it is not, or
   * the etcd error when etcd cannot say: an action must not go out on a term etcd has not confirmed.
   */
  async confirmTerm(): Promise<void> {
    const token = this.guard();
    const r = await this.inTerm(token).commit();
    if (!r.succeeded) throw new NotLeaderError(`not the leader: term ${token.revision} ended in etcd`);
  }

  load(): StoredState {
    if (!this.state) throw new Error("EtcdStateStore: open() first (it reads the state from etcd)");
    const st = this.state;
    return { statuses: new Map([...st.statuses].map(([k, v]) => [k, structuredClone(v)])), events: [...st.events], policies: new Map(st.policies) };
  }

  /** A transaction guarded by the term: the leader key's create revision is still the token's. */
  private inTerm(token: LeaderToken) { return this.ns.if(LEADER_KEY, "Create", "==", token.revision); }

  private guard(): LeaderToken {
    const t = this.token();
    if (!t) throw new NotLeaderError("not the leader: this replica holds no leadership token");
    return t;
  }

  /**
   * One write at a time, in call order: each compares the mod revision the previous one wrote (two
   * in flight would both compare the same revision, and the second be refused as stale).
   */
  save(status: MigrationStatus, events: readonly MigrationEvent[]): Promise<void> {
    const p = this.queue.then(() => this.write(status, events));
    this.queue = p.catch(() => undefined);
    return p;
  }
  private queue: Promise<void> = Promise.resolve();

  private async write(status: MigrationStatus, events: readonly MigrationEvent[]): Promise<void> {
    const token = this.guard();
    const c = status.component;
    const key = `status/${c}`;
    const expect = this.modRev.get(c) ?? 0;
    const puts = [this.ns.put(key).value(JSON.stringify(status))];
    for (const e of events) puts.push(this.ns.put(`event/${c}/${pad(e.atMs, 15)}-${pad(++this.seq, 9)}`).value(JSON.stringify(e)));
    const r = await this.inTerm(token).and(key, "Mod", "==", expect).then(...puts).else(this.ns.get(LEADER_KEY), this.ns.get(key)).commit();
    if (!r.succeeded) throw await this.refusal(r.responses, token, key, expect);
    this.modRev.set(c, Number(r.header.revision));
    if (this.state) {
      this.state.statuses.set(c, structuredClone(status));
      this.state.events.push(...events);
      if (this.state.events.length > KEEP_EVENTS) this.state.events.splice(0, this.state.events.length - KEEP_EVENTS);
    }
    const n = (this.added.get(c) ?? 0) + events.length;
    this.added.set(c, n);
    if (n >= TRIM_EVERY) { this.added.set(c, 0); await this.trim(c, token); }
  }

  async savePolicy(component: string, yaml: string): Promise<void> {
    const token = this.guard();
    const r = await this.inTerm(token).then(this.ns.put(`policy/${component}`).value(yaml)).commit();
    if (!r.succeeded) throw new NotLeaderError(`not the leader: the policy of ${component} was not stored (term ${token.revision} ended)`);
    this.state?.policies.set(component, yaml);
  }

  /** Why a guarded write was refused: the leader key (term) or the status key (revision) moved. */
  private async refusal(responses: { response_range?: { kvs?: { create_revision: string; mod_revision: string; value: Buffer }[] } | null }[], token: LeaderToken, key: string, expect: number): Promise<Error> {
    const leader = responses[0]?.response_range?.kvs?.[0];
    if (!leader || Number(leader.create_revision) !== token.revision) {
      return new NotLeaderError(`not the leader: etcd refused the write of ${key} with the token of term ${token.revision} (${leader ? `${leader.value.toString()} leads since revision ${leader.create_revision}` : "no leader now"})`);
    }
    const cur = responses[1]?.response_range?.kvs?.[0];
    return new StaleStateError(`${key} changed since it was read (mod revision ${cur?.mod_revision ?? "none"}, expected ${expect}): refusing to overwrite it`);
  }

  /** Deletes a component's oldest events beyond KEEP_EVENTS (guarded by the token too). */
  private async trim(component: string, token: LeaderToken): Promise<void> {
    const keys = await this.ns.getAll().prefix(`event/${component}/`).sort("Key", "Ascend").keys();
    const drop = keys.length - KEEP_EVENTS;
    if (drop <= 0) return;
    const last = keys[drop - 1]!;
    await this.inTerm(token)
      .then(this.ns.delete().inRange({ start: `event/${component}/`, end: `${last}\0` }))
      .commit();
  }

  close(): void {}
}

function parse(text: string, key: string): unknown {
  try { return JSON.parse(text); } catch (e) { throw new Error(`etcd ${key}: not valid JSON: ${(e as Error).message}`); }
}

/** A stored status (status/...) read back and checked like any stored input; throws naming the key. */
export function storedStatus(key: string, text: string): MigrationStatus {
  const r = checkRecord({ t: "status", status: parse(text, key) }, `etcd ${key}`);
  if (r.t !== "status") throw new Error(`etcd ${key}: not a status`);
  return r.status;
}
/** A stored event (event/...) read back and checked; throws naming the key. */
export function storedEvent(key: string, text: string): MigrationEvent {
  const r = checkRecord({ t: "event", event: parse(text, key) }, `etcd ${key}`);
  if (r.t !== "event") throw new Error(`etcd ${key}: not an event`);
  return r.event;
}
