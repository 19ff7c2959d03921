// Event webhooks: every migration event at or above a target's severity is POSTed as JSON, in order,
// with retries (exponential backoff from 500 ms, up to 6 attempts) so a brief outage of the receiver
// loses nothing. The queue per target is bounded (1000); overflow drops the oldest and counts it, so a
// dead receiver cannot grow the controller's memory. Timers come from the Clock (tests drive them).
import type { Logger } from "pino";
import type { Clock } from "../../host/clock.js";
import type { WebhookTarget } from "../config.js";
import type { MigrationEvent } from "../migration/reconcile.js";

const RANK = { info: 0, warning: 1, error: 2 } as const;

export interface WebhookStats { delivered: number; retries: number; dropped: number; failed: number }

export class EventWebhooks {
  readonly stats: WebhookStats = { delivered: 0, retries: 0, dropped: 0, failed: 0 };
  private readonly queues: { target: WebhookTarget; queue: MigrationEvent[]; busy: boolean }[];

  constructor(targets: WebhookTarget[], private readonly clock: Clock, private readonly log: Logger, private readonly fetchFn: typeof fetch = fetch,
    private readonly opts = { attempts: 6, baseDelayMs: 500, maxQueue: 1000, timeoutMs: 5000 }) {
    this.queues = targets.map((target) => ({ target, queue: [], busy: false }));
  }

  publish(e: MigrationEvent): void {
    for (const q of this.queues) {
      if (RANK[e.severity] < RANK[q.target.minSeverity]) continue;
      q.queue.push(e);
      if (q.queue.length > this.opts.maxQueue) { q.queue.shift(); this.stats.dropped++; }
      if (!q.busy) void this.drain(q);
    }
  }

  private async drain(q: (typeof this.queues)[number]): Promise<void> {
    q.busy = true;
    while (q.queue.length) {
      const e = q.queue[0]!;
      let ok = false;
      for (let attempt = 0; attempt < this.opts.attempts && !ok; attempt++) {
        if (attempt > 0) { this.stats.retries++; await this.sleep(this.opts.baseDelayMs * 2 ** (attempt - 1)); }
        try {
          const res = await this.fetchFn(q.target.url, {
            method: "POST", headers: { "content-type": "application/json", ...q.target.headers }, body: JSON.stringify(e),
            signal: AbortSignal.timeout(this.opts.timeoutMs),
          });
          ok = res.ok;
          if (!ok) this.log.warn({ url: q.target.url, status: res.status, attempt }, "event webhook refused");
        } catch (err) {
          this.log.warn({ url: q.target.url, err: (err as Error).message, attempt }, "event webhook failed");
        }
      }
      if (ok) this.stats.delivered++;
      else { this.stats.failed++; this.log.error({ url: q.target.url, event: e.message }, "event webhook gave up after retries"); }
      if (q.queue[0] === e) q.queue.shift();
    }
    q.busy = false;
  }

  private sleep(ms: number): Promise<void> { return new Promise((res) => this.clock.setTimer(ms, res)); }
}
