// A component driver that measures what it is told (health up, no signals, a set lag), taking
// `lagMs` of the clock to answer lag() as a slow PostgreSQL would; its actions do nothing.
import type { ComponentDriver, LagReading, SideHealth, SignalSample } from "../../controller/drivers/driver.js";
import type { ManualClock } from "../../host/clock.js";

export class FakeDriver implements ComponentDriver {
  readonly kind = "fake";
  readonly measures = true;
  readonly rejoins = false;
  lag_: LagReading = { seconds: 0, bytes: 0, drained: true };
  constructor(private readonly clock: ManualClock, public lagMs = 0) {}
  health(): Promise<SideHealth> { return Promise.resolve({ up: true, writable: null, replica: null, detail: "up" }); }
  signals(): Promise<SignalSample[]> { return Promise.resolve([]); }
  lag(): Promise<LagReading | null> { this.clock.advance(this.lagMs); return Promise.resolve(this.lag_); }
  fence(): Promise<void> { return Promise.resolve(); }
  unfence(): Promise<void> { return Promise.resolve(); }
  promote(): Promise<void> { return Promise.resolve(); }
  enforcesLease(): boolean { return false; }
  lease(): Promise<void> { return Promise.resolve(); }
  rejoin(): Promise<void> { return Promise.resolve(); }
  close(): Promise<void> { return Promise.resolve(); }
}
