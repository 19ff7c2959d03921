// The incident benchmark's component: the sample KV pair (sample/kv.ts) as a model on a virtual
// clock, so a 90 s incident runs in about a second. It is the environment, not a decider: it keeps the
// KV node's rules (service time latency_ms x e^(0.25 N), injected 500s at error_rate, a dead node
// refuses connections, a follower serves reads from its lagging copy and forwards writes to the
// leader, a fenced leader holds writes until the switchover ends (5 s at most), promotion catches the
// follower up and makes it the leader) and answers /metrics with the same text the node exports.
import type { Clock } from "../../host/clock.js";
import { normal } from "../../host/random.js";
import type { Scenario, SignalName } from "../../demo/scenario.js";
import { sampleMetricsText } from "../../sample/kv.js";

export type Side = "primary" | "shadow";
export const SIDES: readonly Side[] = ["primary", "shadow"];

/** What the pair answered: an HTTP response, or no connection at all (the process is down). */
export type PairAnswer = { status: number; body: string } | { refused: true };

const FENCE_HOLD_MS = 5_000;

export class SimulatedPair {
  leader: Side = "primary";
  private fenced = false;
  private readonly failAtMs: Record<Side, number>;
  /** Acknowledgement time of every key written (keys are fresh per write, as the load generator's). */
  private readonly written = new Map<string, { atMs: number; seq: number }>();
  private seq = 0;
  private lastWriteAtMs = -Infinity;
  /** A follower's copy is complete up to this time (promotion catches it up). */
  private caughtUpAtMs = -Infinity;
  private readonly held: (() => void)[] = [];
  readonly counters = { reads: 0, writes: 0, forwarded: 0, held: 0, refused: 0, injected: 0 };

  constructor(private readonly scenario: Scenario, private readonly clock: Clock, private readonly startMs: number, private readonly rand: () => number) {
    const at = (s: Side) => { const f = scenario[s].failAtS; return f === null ? Infinity : startMs + f * 1000; };
    this.failAtMs = { primary: at("primary"), shadow: at("shadow") };
  }

  private now(): number { return this.clock.monotonicNs() / 1e6; }
  /** Seconds since the scenario started. */
  t(): number { return (this.now() - this.startMs) / 1000; }
  cond(side: Side, s: SignalName): number { return this.scenario[side].trace(s).at(this.t()); }
  isDown(side: Side): boolean { return this.now() >= this.failAtMs[side]; }
  failedAtS(side: Side): number | null { return Number.isFinite(this.failAtMs[side]) ? (this.failAtMs[side] - this.startMs) / 1000 : null; }

  /** One request to a node; `answer` is called when its response would arrive. */
  request(side: Side, op: { write: boolean; key: string }, answer: (a: PairAnswer) => void): void {
    if (this.isDown(side)) { this.counters.refused++; this.clock.setTimer(0.2, () => answer({ refused: true })); return; }
    const latency = this.cond(side, "latency_ms") * Math.exp(0.25 * normal(this.rand));
    const injected = this.rand() < this.cond(side, "error_rate");
    this.clock.setTimer(latency, () => {
      if (this.isDown(side)) { answer({ refused: true }); return; } // died mid-request: a reset
      if (injected) { this.counters.injected++; answer({ status: 500, body: '{"error":"internal error (injected)"}' }); return; }
      if (!op.write) { answer(this.read(side, op.key)); return; }
      this.write(side, op.key, false, answer);
    });
  }

  private read(side: Side, key: string): { status: number; body: string } {
    this.counters.reads++;
    const w = this.written.get(key);
    const visible = w && (side === this.leader || w.atMs <= Math.max(this.caughtUpAtMs, this.now() - this.lagMs()));
    return visible ? { status: 200, body: `{"key":"${key}","value":"value-${w.seq}","seq":${w.seq}}` } : { status: 404, body: `{"error":"no key ${key}"}` };
  }

  private write(side: Side, key: string, forwarded: boolean, answer: (a: PairAnswer) => void): void {
    if (side !== this.leader) {
      if (forwarded) { answer({ status: 503, body: '{"error":"read-only follower"}' }); return; }
      // A follower forwards writes to its leader (the write target may still be moving).
      this.counters.forwarded++;
      const to = this.leader;
      if (this.isDown(to)) { this.clock.setTimer(1, () => answer({ status: 503, body: '{"error":"the leader is unreachable"}' })); return; }
      const latency = this.cond(to, "latency_ms") * Math.exp(0.25 * normal(this.rand));
      this.clock.setTimer(latency, () => this.write(to, key, true, answer));
      return;
    }
    if (this.fenced) {
      // A fenced leader holds the write until the fence lifts or it is demoted, then applies or forwards it.
      this.counters.held++;
      let done = false;
      const release = () => { if (done) return; done = true; this.fenced ? answer({ status: 503, body: '{"error":"fenced"}' }) : this.write(this.leader, key, true, answer); };
      this.held.push(release);
      this.clock.setTimer(FENCE_HOLD_MS, release);
      return;
    }
    this.counters.writes++;
    this.written.set(key, { atMs: this.now(), seq: ++this.seq });
    this.lastWriteAtMs = this.now();
    answer({ status: 200, body: `{"seq":${this.seq}}` });
  }

  private lagMs(): number { return this.cond(this.leader === "primary" ? "shadow" : "primary", "replication_lag_s") * 1000; }

  /**
   * The follower's lag as the node reports it: how long the oldest write it has not applied has waited
   * (0 once it has everything, e.g. behind a fence), or the silence since its leader died.
   */
  replicationLagS(): number {
    const follower: Side = this.leader === "primary" ? "shadow" : "primary";
    if (this.isDown(follower)) return 0;
    if (this.isDown(this.leader)) return (this.now() - this.failAtMs[this.leader]) / 1000;
    const now = this.now(), lag = this.lagMs();
    return this.lastWriteAtMs > Math.max(this.caughtUpAtMs, now - lag) ? lag / 1000 : 0;
  }

  /** The controller's fence / unfence / promote webhook (idempotent, like the node's /admin/actions). */
  act(kind: "fence" | "unfence" | "promote", side: Side): void {
    if (this.isDown(side)) throw new Error(`${side} is down: connection refused`);
    if (kind === "fence") { if (side === this.leader) this.fenced = true; return; }
    if (kind === "unfence") { if (side === this.leader) { this.fenced = false; this.release(); } return; }
    if (side === this.leader) { this.fenced = false; return; }
    this.caughtUpAtMs = this.now();
    this.leader = side;
    this.fenced = false;
    this.release();
  }

  private release(): void { for (const r of this.held.splice(0)) r(); }

  metricsText(side: Side): string {
    return sampleMetricsText({
      lagS: side === "shadow" || this.leader === "shadow" ? this.replicationLagS() : 0, leader: this.leader === side, fenced: this.fenced && this.leader === side,
      cpu: this.cond(side, "cpu"), memory: this.cond(side, "memory"), diskIo: this.cond(side, "disk_io"), queueDepth: this.cond(side, "queue_depth"),
      reads: this.counters.reads, writes: this.counters.writes,
    }, this.rand);
  }
}
