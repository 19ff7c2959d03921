// The incident benchmark's component: the sample KV pair (world/sample/kv.ts) as a model on a virtual
// clock, so a 90 s incident runs in about a second. It is the environment, not a decider: it keeps the
// KV node's rules (service time latency_ms x e^(0.25 N), injected 500s at error_rate, a dead node
// refuses connections, a follower serves reads from its lagging copy and forwards writes to the
// leader, a fenced leader holds writes until the switchover ends (5 s at most), promotion catches the
// follower up and makes it the leader) and answers /metrics with the same text the node exports.
//
// Opt-in, as on the node: the leader lease and epoch (option leaseRequired; see world/sample/kv.ts) and
// PAUSED sides (option pausedS or pause()): a side stopped for a while (SIGSTOP, a long GC pause)
// answers nothing; requests and actions sent to it wait and are handled when it resumes, in arrival
// order, by a node that still believes what it believed when it stopped. So a leader that was
// stopped while a failover promoted its follower wakes up as a leader of the old epoch, handles the
// writes that queued meanwhile (with a lease: refused, it expired), and only then learns from the new
// leader's demote that it follows. Lease deadlines are absolute wall-clock ms, compared with
// wallMs(clock). Without these options the model behaves exactly as before.
//
// historyPoints(): what the controller would have seen of a side during a scenario's history_s (one
// point a second: the /metrics gauges with their noise, and the request p99 and error rate of a
// second's traffic at the scenario's rate), for the benchmark to replay into the risk engine.
import { wallMs, type Clock } from "../../host/clock.js";
import { mulberry32, normal } from "../../host/random.js";
import type { Scenario, SignalName } from "../../world/demo/scenario.js";
import { epochMetricsText, sampleMetricsText } from "../../world/sample/kv-metrics.js";
import type { Side } from "../../controller/xds/resources.js";

export const SIDES: readonly Side[] = ["primary", "shadow"];

/** What the pair answered: an HTTP response, or no connection at all (the process is down). */
export type PairAnswer = { status: number; body: string } | { refused: true };

/** A side stopped (not dead) from fromS to toS, in seconds since the scenario started. */
export interface PauseS { side: Side; fromS: number; toS: number }

export interface PairOptions {
  /** The leader applies a write only while its lease (granted by act("lease")) is valid. Default false. */
  leaseRequired?: boolean;
  /** Sides stopped for a time range (see pause()). */
  pausedS?: PauseS | PauseS[];
  /**
   * Common random numbers: each side's requests and the /metrics noise draw from streams of their own,
   * so the n-th request to a side meets the same fate in every mode however much each mode scrapes or
   * mirrors (a fair comparison of modes, seed by seed). Default false: one stream, as before.
   */
  commonRandom?: boolean;
}

/** A promote's new epoch, a lease's epoch and absolute deadline (wall-clock ms). */
export interface PairActionDetail { epoch?: number; expiresAtMs?: number }
export type PairActionKind = "fence" | "unfence" | "promote" | "lease";

const FENCE_HOLD_MS = 5_000;
const other = (s: Side): Side => (s === "primary" ? "shadow" : "primary");

export class SimulatedPair {
  /** The newest leader (the side the last promotion chose). */
  leader: Side = "primary";
  /** What each side believes it is: they differ from `leader` only while a superseded leader is paused. */
  private readonly role: Record<Side, "leader" | "follower"> = { primary: "leader", shadow: "follower" };
  private readonly fenced: Record<Side, boolean> = { primary: false, shadow: false };
  private readonly epochs: Record<Side, number> = { primary: 1, shadow: 1 };
  private readonly lease: Record<Side, { untilMs: number; epoch: number }> = { primary: { untilMs: 0, epoch: 0 }, shadow: { untilMs: 0, epoch: 0 } };
  private readonly failAtMs: Record<Side, number>;
  private readonly pauses: { side: Side; fromMs: number; toMs: number }[] = [];
  private readonly leaseRequired: boolean;
  /** Acknowledgement time of every key written (keys are fresh per write, as the load generator's). */
  private readonly written = new Map<string, { atMs: number; seq: number }>();
  private seq = 0;
  private lastWriteAtMs = -Infinity;
  /** A follower's copy is complete up to this time (promotion catches it up). */
  private caughtUpAtMs = -Infinity;
  private readonly held: Record<Side, (() => void)[]> = { primary: [], shadow: [] };
  /** supersededWrites: writes applied by a side whose epoch is older than the newest leader's (split brain). */
  readonly counters = { reads: 0, writes: 0, forwarded: 0, held: 0, refused: 0, injected: 0, leaseRefused: 0, epochRefused: 0, supersededWrites: 0 };

  /** Draws for requests to each side and for the /metrics noise (one stream, unless commonRandom). */
  private readonly draws: Record<Side | "metrics", () => number>;

  constructor(private readonly scenario: Scenario, private readonly clock: Clock, private readonly startMs: number, private readonly rand: () => number, options: PairOptions = {}) {
    if (options.commonRandom) {
      const sub = () => mulberry32(Math.floor(rand() * 2 ** 32));
      this.draws = { primary: sub(), shadow: sub(), metrics: sub() };
    } else this.draws = { primary: rand, shadow: rand, metrics: rand };
    const at = (s: Side) => { const f = scenario[s].failAtS; return f === null ? Infinity : startMs + f * 1000; };
    this.failAtMs = { primary: at("primary"), shadow: at("shadow") };
    this.leaseRequired = options.leaseRequired ?? false;
    const p = options.pausedS;
    for (const x of p === undefined ? [] : Array.isArray(p) ? p : [p]) this.pause(x.side, x.fromS, x.toS);
  }

  private now(): number { return this.clock.monotonicNs() / 1e6; }
  /** Seconds since the scenario started. */
  t(): number { return (this.now() - this.startMs) / 1000; }
  cond(side: Side, s: SignalName): number { return this.scenario[side].trace(s).at(this.t()); }
  isDown(side: Side): boolean { return this.now() >= this.failAtMs[side]; }
  failedAtS(side: Side): number | null { return Number.isFinite(this.failAtMs[side]) ? (this.failAtMs[side] - this.startMs) / 1000 : null; }

  /** Stops a side (not dead: it keeps its state) from fromS to toS, seconds since the scenario started. */
  pause(side: Side, fromS: number, toS: number): void {
    if (!(toS > fromS)) throw new Error(`pause ${side}: toS (${toS}) must be after fromS (${fromS})`);
    this.pauses.push({ side, fromMs: this.startMs + fromS * 1000, toMs: this.startMs + toS * 1000 });
  }
  /** The moment the side's current pause ends, or null when it is running. */
  private resumesAtMs(side: Side): number | null {
    const now = this.now();
    let end: number | null = null;
    for (const p of this.pauses) if (p.side === side && now >= p.fromMs && now < p.toMs) end = Math.max(end ?? 0, p.toMs);
    return end;
  }
  isPaused(side: Side): boolean { return this.resumesAtMs(side) !== null; }
  /** Runs fn now, or when the side resumes (a stopped process handles what queued, in order, once it runs again). */
  private whenRunning(side: Side, fn: () => void): void {
    const end = this.resumesAtMs(side);
    if (end === null) { fn(); return; }
    this.clock.setTimer(end - this.now(), () => this.whenRunning(side, fn));
  }

  /** The latest epoch the side knows of (1 at start). */
  epoch(side: Side): number { return this.epochs[side]; }
  /** The side's lease deadline (wall-clock ms) at its current epoch, 0 when it holds none. */
  leaseUntilMs(side: Side): number { return this.lease[side].epoch === this.epochs[side] ? this.lease[side].untilMs : 0; }
  private leaseValid(side: Side): boolean { return wallMs(this.clock) < this.leaseUntilMs(side); }
  /** True when that side would apply a write arriving right now: running, a leader, not fenced, its lease valid when required. */
  writable(side: Side): boolean {
    return !this.isDown(side) && !this.isPaused(side) && this.role[side] === "leader" && !this.fenced[side] && (!this.leaseRequired || this.leaseValid(side));
  }

  /**
   * One request to a node; `answer` is called when its response would arrive. A write may carry the
   * client's epoch (the node's x-shadowmesh-epoch header): older than the side's is refused with 409
   * when it is handled; newer makes a leader step down (superseded) and the write goes to the leader.
   */
  request(side: Side, op: { write: boolean; key: string; epoch?: number }, answer: (a: PairAnswer) => void): void {
    if (this.isDown(side)) { this.counters.refused++; this.clock.setTimer(0.2, () => answer({ refused: true })); return; }
    if (this.isPaused(side)) { this.whenRunning(side, () => this.request(side, op, answer)); return; }
    const latency = this.cond(side, "latency_ms") * Math.exp(0.25 * normal(this.draws[side]));
    const injected = this.draws[side]() < this.cond(side, "error_rate");
    this.clock.setTimer(latency, () => this.whenRunning(side, () => {
      if (this.isDown(side)) { answer({ refused: true }); return; } // died mid-request: a reset
      if (injected) { this.counters.injected++; answer({ status: 500, body: '{"error":"internal error (injected)"}' }); return; }
      if (!op.write) { answer(this.read(side, op.key)); return; }
      if (op.epoch !== undefined) {
        if (op.epoch < this.epochs[side]) { this.counters.epochRefused++; answer({ status: 409, body: `{"error":"the write carries epoch ${op.epoch}, older than the ${side}'s epoch ${this.epochs[side]}"}` }); return; }
        if (op.epoch > this.epochs[side]) { this.adopt(side, op.epoch); if (this.role[side] === "leader") this.stepDown(side); }
      }
      this.write(side, op.key, false, answer);
    }));
  }

  private read(side: Side, key: string): { status: number; body: string } {
    this.counters.reads++;
    const w = this.written.get(key);
    const visible = w && (this.role[side] === "leader" || w.atMs <= Math.max(this.caughtUpAtMs, this.now() - this.lagMs()));
    return visible ? { status: 200, body: `{"key":"${key}","value":"value-${w.seq}","seq":${w.seq}}` } : { status: 404, body: `{"error":"no key ${key}"}` };
  }

  private write(side: Side, key: string, forwarded: boolean, answer: (a: PairAnswer) => void): void {
    if (this.role[side] !== "leader") {
      if (forwarded) { answer({ status: 503, body: '{"error":"read-only follower"}' }); return; }
      // A follower forwards writes to its leader (the write target may still be moving).
      this.counters.forwarded++;
      const to = this.leader === side ? other(side) : this.leader;
      if (this.isDown(to)) { this.clock.setTimer(1, () => answer({ status: 503, body: '{"error":"the leader is unreachable"}' })); return; }
      const latency = this.cond(to, "latency_ms") * Math.exp(0.25 * normal(this.draws[to]));
      // A forwarded write enters the leader's API like any other: its injected errors apply (as world/sample/kv.ts).
      const injected = this.draws[to]() < this.cond(to, "error_rate");
      this.clock.setTimer(latency, () => this.whenRunning(to, () => {
        if (injected) { this.counters.injected++; answer({ status: 500, body: '{"error":"internal error (injected)"}' }); return; }
        this.write(to, key, true, answer);
      }));
      return;
    }
    if (this.fenced[side]) {
      // A fenced leader holds the write until the fence lifts or it is demoted, then applies or forwards it.
      this.counters.held++;
      let done = false;
      const release = () => {
        if (done) return;
        done = true;
        if (this.fenced[side] && this.role[side] === "leader") answer({ status: 503, body: '{"error":"fenced"}' });
        else this.write(this.role[side] === "leader" ? side : this.leader, key, true, answer);
      };
      this.held[side].push(release);
      this.clock.setTimer(FENCE_HOLD_MS, release);
      return;
    }
    // Checked when the write is applied: a write that waited while the side was stopped sees the time it is applied at.
    if (this.leaseRequired && !this.leaseValid(side)) {
      this.counters.leaseRefused++;
      answer({ status: 503, body: `{"error":"leader lease expired (epoch ${this.epochs[side]})"}` });
      return;
    }
    this.counters.writes++;
    if (this.epochs[side] < this.epochs[this.leader]) this.counters.supersededWrites++;
    this.written.set(key, { atMs: this.now(), seq: ++this.seq });
    this.lastWriteAtMs = this.now();
    answer({ status: 200, body: `{"seq":${this.seq}}` });
  }

  private lagMs(): number { return this.cond(this.leader === "primary" ? "shadow" : "primary", "replication_lag_s") * 1000; }

  /**
   * The follower's lag as the node reports it: how long the oldest write it has not applied has waited
   * (0 once it has everything, e.g. behind a fence), or the silence since its leader died (or stopped).
   */
  replicationLagS(): number {
    const follower: Side = this.leader === "primary" ? "shadow" : "primary";
    if (this.isDown(follower)) return 0;
    if (this.isDown(this.leader)) return (this.now() - this.failAtMs[this.leader]) / 1000;
    const now = this.now();
    if (this.pauses.length > 0 && this.isPaused(this.leader)) {
      const since = Math.min(...this.pauses.filter((p) => p.side === this.leader && now >= p.fromMs && now < p.toMs).map((p) => p.fromMs));
      return (now - since) / 1000;
    }
    const lag = this.lagMs();
    return this.lastWriteAtMs > Math.max(this.caughtUpAtMs, now - lag) ? lag / 1000 : 0;
  }

  /**
   * The controller's fence / unfence / promote / lease webhook (idempotent, like the node's
   * /admin/actions). Throws when the side is down (connection refused) and, like the node's 4xx
   * answers, when the action is refused: an epoch older than the side's, a lease to a follower, a
   * lease without epoch and expiresAtMs. An action to a paused side is queued and applied when it
   * resumes (act returns at once; actWhenRunning resolves once it was applied).
   */
  act(kind: PairActionKind, side: Side, detail?: PairActionDetail): void {
    if (this.isDown(side)) throw new Error(`${side} is down: connection refused`);
    if (this.isPaused(side)) { this.whenRunning(side, () => { try { this.apply(kind, side, detail); } catch { /* the answer goes nowhere */ } }); return; }
    this.apply(kind, side, detail);
  }

  /** act(), resolved when the action was applied: it hangs while the side is paused, as the webhook would. */
  actWhenRunning(kind: PairActionKind, side: Side, detail?: PairActionDetail): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.isDown(side)) { reject(new Error(`${side} is down: connection refused`)); return; }
      this.whenRunning(side, () => {
        if (this.isDown(side)) { reject(new Error(`${side} is down: connection refused`)); return; }
        try { this.apply(kind, side, detail); resolve(); } catch (e) { reject(e as Error); }
      });
    });
  }

  private apply(kind: PairActionKind, side: Side, detail?: PairActionDetail): void {
    const e = detail?.epoch;
    if (e !== undefined && e < this.epochs[side]) throw new Error(`409: ${kind} at epoch ${e} refused: the ${side} is at epoch ${this.epochs[side]}`);
    if (kind === "fence") { if (this.role[side] === "leader") this.fenced[side] = true; return; }
    if (kind === "unfence") { if (this.role[side] === "leader") { this.fenced[side] = false; this.release(side); } return; }
    if (kind === "lease") {
      if (e === undefined || detail?.expiresAtMs === undefined) throw new Error(`400: lease ${side}: epoch and expiresAtMs are required`);
      if (this.role[side] !== "leader") throw new Error(`409: lease refused: the ${side} is not the leader`);
      // A newer epoch is adopted (the old lease is void) but not extended: a lease is granted only at the epoch the side had.
      if (e > this.epochs[side]) { this.adopt(side, e); return; }
      const l = this.lease[side];
      this.lease[side] = { untilMs: l.epoch === e ? Math.max(l.untilMs, detail.expiresAtMs) : detail.expiresAtMs, epoch: e };
      return;
    }
    if (this.role[side] === "leader") {
      if (e !== undefined) this.adopt(side, e);
      this.fenced[side] = false;
      return;
    }
    // Promotion: catch up, lead at the new epoch (no lease until the controller's first one), demote the old leader.
    const old = other(side);
    this.caughtUpAtMs = this.now();
    this.leader = side;
    this.role[side] = "leader";
    this.adopt(side, e ?? this.epochs[side] + 1);
    // The promote may carry the new leader's first lease.
    this.lease[side] = detail?.expiresAtMs !== undefined ? { untilMs: detail.expiresAtMs, epoch: this.epochs[side] } : { untilMs: 0, epoch: 0 };
    this.fenced[side] = false;
    const epoch = this.epochs[side];
    const demote = () => {
      if (epoch < this.epochs[old]) return;
      this.adopt(old, epoch);
      if (this.role[old] === "leader") this.stepDown(old);
    };
    if (this.isDown(old)) demote(); else this.whenRunning(old, demote);
  }

  private stepDown(side: Side): void {
    this.role[side] = "follower";
    this.fenced[side] = false;
    this.lease[side] = { untilMs: 0, epoch: 0 };
    this.release(side);
  }

  private adopt(side: Side, e: number): void {
    if (e <= this.epochs[side]) return;
    this.epochs[side] = e;
    this.lease[side] = { untilMs: 0, epoch: 0 };
  }

  private release(side: Side): void { for (const r of this.held[side].splice(0)) r(); }

  metricsText(side: Side): string {
    return sampleMetricsText({
      lagS: side === "shadow" || this.leader === "shadow" ? this.replicationLagS() : 0, leader: this.role[side] === "leader", fenced: this.fenced[side] && this.role[side] === "leader",
      cpu: this.cond(side, "cpu"), memory: this.cond(side, "memory"), diskIo: this.cond(side, "disk_io"), queueDepth: this.cond(side, "queue_depth"),
      reads: this.counters.reads, writes: this.counters.writes,
    }, this.draws.metrics) + (this.leaseRequired ? epochMetricsText(this.epochs[side], this.leaseValid(side)) : "");
  }
}

/** Per controller signal, [second into the scenario, value] points: what the history looked like. */
export type HistoryPoints = Record<"cpu" | "memory" | "disk_io" | "queue_depth" | "request_latency_p99_ms" | "request_error_rate", [number, number][]>;

/**
 * What the controller would have seen of `side` from second 0 to `toS` (exclusive), one point a
 * second: the scraped gauges as the node exports them (sampleMetricsText, its noise included) and, from
 * a second's requests at the scenario's rate (the node's service-time and injected-error rules), the
 * p99 latency and the error rate. Seeded: the same scenario, side and rand give the same points.
 */
export function historyPoints(scenario: Scenario, side: Side, toS: number, rand: () => number): HistoryPoints {
  const out: HistoryPoints = { cpu: [], memory: [], disk_io: [], queue_depth: [], request_latency_p99_ms: [], request_error_rate: [] };
  const tr = scenario[side];
  const n = Math.max(1, Math.round(scenario.rateRps));
  const lat = new Float64Array(n);
  const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)![1]);
  for (let t = 0; t < toS; t++) {
    const text = sampleMetricsText({
      lagS: 0, leader: side === "primary", fenced: false,
      cpu: tr.trace("cpu").at(t), memory: tr.trace("memory").at(t), diskIo: tr.trace("disk_io").at(t), queueDepth: tr.trace("queue_depth").at(t), reads: 0, writes: 0,
    }, rand);
    out.cpu.push([t, gauge(text, "sample_cpu_utilization")]);
    out.memory.push([t, gauge(text, "sample_memory_utilization")]);
    out.disk_io.push([t, gauge(text, "sample_disk_io_utilization")]);
    out.queue_depth.push([t, gauge(text, "sample_queue_depth")]);
    const l = tr.trace("latency_ms").at(t), e = tr.trace("error_rate").at(t);
    let errors = 0;
    for (let i = 0; i < n; i++) { lat[i] = l * Math.exp(0.25 * normal(rand)); if (rand() < e) errors++; }
    lat.sort();
    out.request_latency_p99_ms.push([t, lat[Math.min(n - 1, Math.floor(n * 0.99))]!]);
    out.request_error_rate.push([t, errors / n]);
  }
  return out;
}
