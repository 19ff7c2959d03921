// Time for the host: monotonic and wall clocks plus timers, behind one interface so tests drive
// time by hand (ManualClock) and the embedded data plane uses the real one (SystemClock).

export interface Timer { readonly id: number }

export interface Clock {
  /** Monotonic nanoseconds from an arbitrary origin, as a double (exact to the ns for 104 days). */
  monotonicNs(): number;
  /** Wall-clock nanoseconds since the Unix epoch (a bigint: too large for a double's precision). */
  realtimeNs(): bigint;
  setTimer(delayMs: number, fn: () => void): Timer;
  clearTimer(t: Timer): void;
}

/** Wall-clock milliseconds since the Unix epoch, for code that stamps points and buckets. */
export function wallMs(c: Clock): number { return Number(c.realtimeNs() / 1_000_000n); }

export class SystemClock implements Clock {
  private next = 1;
  private readonly handles = new Map<number, NodeJS.Timeout>();
  monotonicNs(): number { return performance.now() * 1e6; }
  realtimeNs(): bigint { return BigInt(Date.now()) * 1_000_000n; }
  setTimer(delayMs: number, fn: () => void): Timer {
    const id = this.next++;
    const h = setTimeout(() => { this.handles.delete(id); fn(); }, delayMs);
    h.unref();
    this.handles.set(id, h);
    return { id };
  }
  clearTimer(t: Timer): void {
    const h = this.handles.get(t.id);
    if (h) { clearTimeout(h); this.handles.delete(t.id); }
  }
}

interface Pending { id: number; at: number; seq: number; fn: () => void }

/** Deterministic clock: time moves only through advance(); due timers fire in time order. */
export class ManualClock implements Clock {
  private mono: number;
  private readonly wallOffset: bigint;
  private next = 1;
  private seq = 0;
  private timers: Pending[] = [];

  constructor(startWallMs = 1_700_000_000_000) {
    this.mono = 1_000_000_000;
    this.wallOffset = BigInt(startWallMs) * 1_000_000n - BigInt(this.mono);
  }
  monotonicNs(): number { return this.mono; }
  realtimeNs(): bigint { return BigInt(Math.round(this.mono)) + this.wallOffset; }
  setTimer(delayMs: number, fn: () => void): Timer {
    const id = this.next++;
    this.timers.push({ id, at: this.mono + Math.max(0, Math.round(delayMs * 1e6)), seq: this.seq++, fn });
    return { id };
  }
  clearTimer(t: Timer): void { this.timers = this.timers.filter((p) => p.id !== t.id); }
  get pendingTimers(): number { return this.timers.length; }

  /** Moves time forward by ms, firing every timer that falls due (timers may add timers). */
  advance(ms: number): void {
    const target = this.mono + Math.round(ms * 1e6);
    for (;;) {
      let best: Pending | undefined;
      for (const p of this.timers) {
        if (p.at <= target && (!best || p.at < best.at || (p.at === best.at && p.seq < best.seq))) best = p;
      }
      if (!best) break;
      this.timers = this.timers.filter((p) => p !== best);
      if (best.at > this.mono) this.mono = best.at;
      best.fn();
    }
    this.mono = target;
  }
}

/**
 * Runs `task` now and again `intervalMs` after each run settles (never two at once), on `clock`, until
 * the returned stop() is called: the loop of a poller or a scraper.
 */
export function repeatAfter(clock: Clock, intervalMs: number, task: () => Promise<unknown>): { stop(): void } {
  let stopped = false, timer: Timer | null = null;
  const loop = (): void => {
    if (stopped) return;
    void task().catch(() => undefined).finally(() => { if (!stopped) timer = clock.setTimer(intervalMs, loop); });
  };
  loop();
  return { stop: () => { stopped = true; if (timer) clock.clearTimer(timer); } };
}
