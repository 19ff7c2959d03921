// The reactive baseline's database failover, by a stated, safe rule (Patroni's): a live writer renews
// its lease every third of the lease; once the lease has run out (plus the clock-skew margin) the
// replica is promoted with the next epoch, the promotion taking the same action latency as
// shadowmesh's. A loop on the benchmark's virtual clock.
import { wallMs, type ManualClock } from "../../host/clock.js";
import type { SimulatedPair } from "./pair.js";
import type { Side } from "../../controller/xds/resources.js";

export interface PatroniOptions { leaseMs: number; skewMs: number; actionMs: number; loopMs: number }

export function startPatroniFailover(pair: SimulatedPair, clock: ManualClock, o: PatroniOptions, decided: (what: string) => void): void {
  let epoch = 1, grantedUntil = wallMs(clock) + o.leaseMs, renewedAt = wallMs(clock), promoting = false;
  const ha = () => {
    const now = wallMs(clock), writer = pair.leader;
    if (!pair.isDown(writer) && !pair.isPaused(writer) && now - renewedAt >= o.leaseMs / 3) {
      pair.act("lease", writer, { epoch, expiresAtMs: now + o.leaseMs });
      grantedUntil = now + o.leaseMs;
      renewedAt = now;
    }
    const replica: Side = writer === "primary" ? "shadow" : "primary";
    if (!promoting && now >= grantedUntil + o.skewMs && !pair.isDown(replica) && !pair.isPaused(replica)) {
      promoting = true;
      const e = ++epoch;
      clock.setTimer(o.actionMs, () => {
        const at = wallMs(clock);
        pair.act("promote", replica, { epoch: e, expiresAtMs: at + o.leaseMs });
        grantedUntil = at + o.leaseMs;
        renewedAt = at;
        promoting = false;
        decided(`database failover: the ${writer}'s lease expired; ${replica} promoted (epoch ${e})`);
      });
    }
    clock.setTimer(o.loopMs, ha);
  };
  clock.setTimer(o.loopMs, ha);
}
