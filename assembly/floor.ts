// The failover floor (per component, per worker): watches the primary's answers to the live reads
// routed to it, ejects the primary for reads after `consecutive_failures` failed reads in a row or a
// failure share of at least `failure_share` over `min_requests` reads in the sliding window, sends
// those reads to the shadow while ejected (only while the controller marks the shadow fit), then
// probes the primary with `probe_fraction` of the reads and re-admits it after `probe_successes`
// successful probes in a row. Ejection time is base x multiplier as in Envoy's outlier detection:
// +1 per ejection, capped so it stays <= max, -1 per base ejection time admitted without a failure.
// State is kept by component name (index into state.statsList), so a republished configuration
// never resets an ejection. Nothing here allocates after configuration; the clock is read only
// when a failure is recorded, while ejected or probing, and on tick.
//
// Across workers: Envoy's outlier detector counts one host's consecutive failures over all worker
// threads; so does the floor, through proxy-wasm shared data (one key per component, shared by every
// VM of the vm_id): the consecutive count and the ejection's end and multiplier. A worker touches it
// only on a failure, on its first success after one ("dirty"), before routing a read while dirty, and
// on tick: a healthy primary costs no host call per request. A worker adopts an ejection another
// worker decided without failing a request of its own when it had seen failures, else on its tick,
// which comes every FLOOR_TICK_MS (10 ms) while a floor is configured, or at its first failure.
// Those 10 ms ticks read one proxy-wide key, not every component's record: every ejection rewrites
// it after its component's record, and every write of a key gets a new CAS (Envoy's
// SharedData::set), so a CAS unchanged since the last look means no ejection to adopt.
import { OK, getSharedData, monotonicNs, resultLen, resultPtr, setSharedData, sharedCas } from "./abi";
import { Bytes } from "./bytes";
import { ComponentConfig, FloorConfig, PluginConfig } from "./config";
import {
  ComponentStats, FL_EJECTIONS, FL_PROBES, FL_PROBE_FAILURES, FL_READMISSIONS, FL_READS_DIVERTED, FL_UNFIT_SKIPS,
} from "./stats";
import { rng, statsList } from "./state";

export const ADMITTED: i32 = 0;
export const EJECTED: i32 = 1;
export const PROBING: i32 = 2;

/**
 * The tick period while any component has a floor: a worker that has seen no failure itself adopts
 * another worker's ejection at its next tick, so this bounds how long it may still send a read to a
 * primary the proxy has ejected (Envoy's detector ejects for every worker through its main thread).
 */
export const FLOOR_TICK_MS: u32 = 10;

/** What routing does with a read the weights sent to the primary. */
export const TO_PRIMARY: i32 = 0;
export const DIVERT: i32 = 1;
export const PROBE: i32 = 2;

// One bucket per second; the window (at most 60 s) is the newest windowSec buckets.
const RING: i32 = 64;
const RING_MASK: i32 = RING - 1;
const NS_PER_MS: u64 = 1000000;

// The shared record: [u32 consecutive][u32 multiplier][u64 ejected-until (monotonic ns)].
const SHARED_LEN: usize = 16;
const SHARED_BUF: usize = memory.data(16, 8);
let shConsecutive: u32 = 0;
let shMultiplier: u32 = 0;
let shUntilNs: u64 = 0;

// The proxy-wide ejection announcement: its value is never read, its CAS (new on every write) is the signal.
// Outside the components' namespace ("shadowmesh.floor." + name), so no component name collides.
const EJECTIONS_KEY = new Bytes("shadowmesh.floor-ejections");
let ejectionsSeenCas: u32 = 0;

/** Whether any worker has announced an ejection since this worker last looked (one host call). */
function ejectionsMoved(): bool {
  if (getSharedData(EJECTIONS_KEY.ptr, EJECTIONS_KEY.len) != OK || sharedCas == ejectionsSeenCas) return false;
  ejectionsSeenCas = sharedCas;
  return true;
}

/** Announces an ejection (after its record is written, so whoever sees the new CAS finds the record). */
function announceEjection(): void {
  store<u32>(SHARED_BUF, 0);
  setSharedData(EJECTIONS_KEY.ptr, EJECTIONS_KEY.len, SHARED_BUF, 4, 0);
}

export class Floor {
  readonly st: ComponentStats;
  /** The component's configuration in force; null while the component is not configured. */
  comp: ComponentConfig | null = null;
  state: i32 = ADMITTED;
  /** Routing consults the floor only when this is set (ejected, probing, or tripped while the shadow was unfit). */
  hot: bool = false;
  /** Tripped while the shadow was unfit: would have ejected. */
  wouldEject: bool = false;
  consecutive: u32 = 0;
  probeOk: u32 = 0;
  multiplier: u32 = 0;
  untilNs: u64 = 0;
  /** Admitted without a failure since then (multiplier decay). */
  cleanSinceNs: u64 = 0;
  total: StaticArray<u32> = new StaticArray<u32>(RING);
  failed: StaticArray<u32> = new StaticArray<u32>(RING);
  curSec: u64 = 0;
  cur: i32 = 0;
  /** The shared record's key; this worker added to its count or saw it non-zero since its last reset. */
  readonly sharedKey: Bytes;
  dirty: bool = false;

  constructor(st: ComponentStats) { this.st = st; this.sharedKey = new Bytes("shadowmesh.floor." + st.name); }

  /** Reads the shared record into sh*; false (all zero) when there is none yet. */
  private readShared(): bool {
    shConsecutive = 0; shMultiplier = 0; shUntilNs = 0;
    if (getSharedData(this.sharedKey.ptr, this.sharedKey.len) != OK || resultLen != SHARED_LEN) return false;
    shConsecutive = load<u32>(resultPtr);
    shMultiplier = load<u32>(resultPtr + 4);
    shUntilNs = load<u64>(resultPtr + 8);
    return true;
  }

  private writeShared(consecutive: u32, multiplier: u32, untilNs: u64, cas: u32): bool {
    store<u32>(SHARED_BUF, consecutive);
    store<u32>(SHARED_BUF + 4, multiplier);
    store<u64>(SHARED_BUF + 8, untilNs);
    return setSharedData(this.sharedKey.ptr, this.sharedKey.len, SHARED_BUF, SHARED_LEN, cas) == OK;
  }

  /** Adopts an ejection another worker decided, if any; no host call while the shadow is unfit (nothing could be adopted). */
  private pollEjection(now: u64, cfg: FloorConfig): bool {
    return cfg.shadowFit && this.readShared() && this.adopt(now, cfg);
  }

  private adopt(now: u64, cfg: FloorConfig): bool {
    if (this.state != ADMITTED || shUntilNs <= now || !cfg.shadowFit) return false;
    if (shMultiplier > this.multiplier) this.multiplier = shMultiplier;
    this.enterEjected(shUntilNs);
    return true;
  }

  /** Reads go to the shadow until untilNs (then probes); the counts start over. */
  private enterEjected(untilNs: u64): void {
    this.state = EJECTED;
    this.untilNs = untilNs;
    this.hot = true;
    this.wouldEject = false;
    this.consecutive = 0;
    this.probeOk = 0;
    this.clearWindow();
    this.st.ejected = true;
  }

  /** Adds this failure to the shared count (CAS on the record configure created, one retry); returns the count, or adopts an ejection (0). */
  private sharedFailure(now: u64, cfg: FloorConfig): u32 {
    this.dirty = true;
    for (let attempt = 0; attempt < 2; attempt++) {
      const found = this.readShared();
      if (this.adopt(now, cfg)) return 0;
      const c = shConsecutive + 1;
      // Unconditional only if the record configure() created is gone (a host that dropped it).
      if (this.writeShared(c, shMultiplier, shUntilNs, found ? sharedCas : 0)) return c;
    }
    return shConsecutive + 1;
  }

  /** A success after failures: the shared count goes back to zero (unless another worker wrote meanwhile). */
  private sharedSuccess(): void {
    this.dirty = false;
    if (this.readShared() && shConsecutive != 0) this.writeShared(0, shMultiplier, shUntilNs, sharedCas);
  }

  /** The request path, for a live read the split sent to the primary, when `hot`. */
  route(): i32 {
    const comp = this.comp;
    if (comp === null) return TO_PRIMARY;
    const cfg = comp.floor;
    const c = this.st.live.floor;
    if (this.state == ADMITTED) {
      // Failures seen here lately: another worker may have ejected the primary since.
      if (this.dirty && cfg.enabled) this.pollEjection(monotonicNs(), cfg);
      if (this.state == ADMITTED) {
        if (this.wouldEject && !cfg.shadowFit) unchecked(c[FL_UNFIT_SKIPS]++); // tripped while unfit
        return TO_PRIMARY;
      }
    }
    this.advance(monotonicNs());
    let divert = true;
    if (this.state == PROBING && rng.below(1000000) < cfg.probeFractionPpm) divert = false;
    if (!cfg.shadowFit) {
      if (divert) unchecked(c[FL_UNFIT_SKIPS]++);
      return TO_PRIMARY;
    }
    if (!divert) { unchecked(c[FL_PROBES]++); return PROBE; }
    unchecked(c[FL_READS_DIVERTED]++);
    return DIVERT;
  }

  /** The outcome of a live read the primary answered (proxy_on_log). */
  observe(probe: bool, failed: bool): void {
    const comp = this.comp;
    if (comp === null) return;
    const cfg = comp.floor;
    if (!cfg.enabled) return;
    if (probe) {
      if (this.state != PROBING) return; // settled meanwhile (another probe failed, or enough succeeded)
      if (!failed) {
        if (++this.probeOk >= cfg.probeSuccesses) this.readmit(monotonicNs());
        return;
      }
      unchecked(this.st.live.floor[FL_PROBE_FAILURES]++);
      if (cfg.shadowFit) this.eject(monotonicNs(), cfg);
      else this.probeOk = 0;
      return;
    }
    if (!failed) {
      this.consecutive = 0;
      unchecked(this.total[this.cur]++);
      if (this.dirty && this.state == ADMITTED) this.sharedSuccess();
      if (this.wouldEject && !this.tripped(cfg)) this.wouldEject = false;
      this.hot = this.state != ADMITTED || this.wouldEject || this.dirty;
      return;
    }
    const now = monotonicNs();
    this.rotate(now);
    this.consecutive++;
    unchecked(this.total[this.cur]++);
    unchecked(this.failed[this.cur]++);
    if (this.state != ADMITTED) return;
    this.decay(now, cfg);
    this.cleanSinceNs = now;
    // The proxy-wide count (all workers), as Envoy's detector keeps it.
    const shared = this.sharedFailure(now, cfg);
    if (this.state != ADMITTED) return; // adopted another worker's ejection
    this.hot = true; // dirty: routing checks the shared record until a success
    if (shared > 0) this.consecutive = shared; // a success on any worker resets it
    if (!this.tripped(cfg)) return;
    if (cfg.shadowFit) this.eject(now, cfg);
    else { this.wouldEject = true; this.hot = true; }
  }

  /**
   * A 5xx answer to a write. Alone it may be the component refusing that write (fenced, no lease), so
   * it never starts a run of failures; but after a failed read (or a connection failure), with no
   * success since on any worker, it is the same trouble, and counts as Envoy's consecutive_5xx counts
   * every 5xx. Without it, writes failing between failed reads left the floor behind Envoy's
   * detector: a crash-looping primary (flapping-primary, seed 8) cost one read more than reactive.
   * Host calls only on a write's 5xx.
   */
  corroborate(): void {
    const comp = this.comp;
    if (comp === null || !comp.floor.enabled || this.state != ADMITTED) return;
    if (!this.readShared() || shConsecutive == 0) return;
    this.observe(false, true);
  }

  /**
   * Between reports (every FLOOR_TICK_MS): only an ejection another worker decided is adopted, so a
   * worker that saw no failure stops sending reads to the ejected primary within a floor tick.
   * Counting is left as it was: a worker joins the shared count (and resets it on a success) only
   * once it has seen a failure itself, or from a report tick on.
   */
  poll(now: u64): void {
    const c = this.comp;
    if (c !== null && c.floor.enabled && this.state == ADMITTED) this.pollEjection(now, c.floor);
  }

  /** On a report tick: window rotation, multiplier decay, the end of an ejection, the reported state. */
  tick(now: u64): void {
    this.rotate(now);
    const comp = this.comp;
    if (comp === null || !comp.floor.enabled) { this.st.ejected = false; return; }
    if (this.state == ADMITTED) {
      this.decay(now, comp.floor);
      // Another worker's ejection, or failures it counted (then routing checks before each read).
      if (this.readShared() && !this.adopt(now, comp.floor) && shConsecutive > 0) { this.dirty = true; this.hot = true; }
    } else this.advance(now);
    this.st.ejected = this.state != ADMITTED && comp.floor.shadowFit;
  }

  /** A new configuration for this component (null: no longer configured). */
  configure(comp: ComponentConfig | null): void {
    this.comp = comp;
    if (comp === null) { this.st.ejected = false; return; }
    const cfg = comp.floor;
    if (!cfg.enabled) {
      this.state = ADMITTED; this.wouldEject = false; this.hot = false; this.consecutive = 0; this.probeOk = 0;
      this.clearWindow();
      this.st.ejected = false;
      return;
    }
    // The shared record exists from configuration on, so every later write is a CAS on it: a first
    // failure written with no record to compare against (CAS 0, unconditional) could overwrite an
    // ejection another worker wrote between the read and the write. Created only where absent.
    if (!this.readShared()) this.writeShared(0, 0, 0, 0);
    this.hot = this.state != ADMITTED || this.wouldEject;
    this.st.ejected = this.state != ADMITTED && cfg.shadowFit;
  }

  private advance(now: u64): void {
    if (this.state == EJECTED && now >= this.untilNs) { this.state = PROBING; this.probeOk = 0; }
  }

  private tripped(cfg: FloorConfig): bool {
    if (this.consecutive >= cfg.consecutiveFailures) return true;
    let tot: u64 = 0, bad: u64 = 0;
    for (let i = 0, n = <i32>cfg.windowSec; i < n; i++) {
      const b = (this.cur - i) & RING_MASK;
      tot += <u64>unchecked(this.total[b]);
      bad += <u64>unchecked(this.failed[b]);
    }
    return tot >= <u64>cfg.minRequests && bad * 1000000 >= <u64>cfg.failureSharePpm * tot;
  }

  private eject(now: u64, cfg: FloorConfig): void {
    let cap = cfg.maxEjectionMs / cfg.baseEjectionMs;
    if (cap < 1) cap = 1;
    this.multiplier = this.multiplier < cap ? this.multiplier + 1 : cap;
    const until = now + <u64>cfg.baseEjectionMs * <u64>this.multiplier * NS_PER_MS;
    // Every worker sees the ejection (unconditional: the newest decision wins).
    this.writeShared(0, this.multiplier, until, 0);
    announceEjection();
    this.dirty = false;
    this.enterEjected(until);
    unchecked(this.st.live.floor[FL_EJECTIONS]++);
  }

  private readmit(now: u64): void {
    // An ejection announced while this floor was ejected or probing was not adopted then (only an
    // admitted floor adopts): look at every record again at the next tick.
    ejectionsSeenCas = 0;
    this.state = ADMITTED;
    this.hot = false;
    this.dirty = false;
    this.wouldEject = false;
    this.consecutive = 0;
    this.cleanSinceNs = now;
    this.clearWindow();
    this.st.ejected = false;
    unchecked(this.st.live.floor[FL_READMISSIONS]++);
  }

  /** -1 on the multiplier per base ejection time admitted without a failure. */
  private decay(now: u64, cfg: FloorConfig): void {
    if (this.multiplier == 0) return;
    const base = <u64>cfg.baseEjectionMs * NS_PER_MS;
    if (now <= this.cleanSinceNs) return;
    const k = (now - this.cleanSinceNs) / base;
    if (k == 0) return;
    this.multiplier = k >= <u64>this.multiplier ? 0 : this.multiplier - <u32>k;
    this.cleanSinceNs += k * base;
  }

  private rotate(now: u64): void {
    const sec = now / 1000000000;
    if (sec <= this.curSec) return;
    const steps = sec - this.curSec;
    if (steps >= <u64>RING) this.clearWindow();
    else {
      for (let i: u64 = 1; i <= steps; i++) {
        const b = <i32>((this.curSec + i) & <u64>RING_MASK);
        unchecked(this.total[b] = 0);
        unchecked(this.failed[b] = 0);
      }
    }
    this.curSec = sec;
    this.cur = <i32>(sec & <u64>RING_MASK);
  }

  private clearWindow(): void {
    for (let i = 0; i < RING; i++) { unchecked(this.total[i] = 0); unchecked(this.failed[i] = 0); }
  }
}

/** floors[i] is the floor of statsList[i]. */
export const floors = new Array<Floor>();

/** After a configuration is accepted: every floor learns its component's configuration (or none). */
export function configureFloors(cfg: PluginConfig, statsIndexFor: Array<i32>): void {
  // Look again at the next tick: an ejection announced while this worker's shadow was unfit could
  // not be adopted then, and the new configuration may make it fit.
  ejectionsSeenCas = 0;
  while (floors.length < statsList.length) floors.push(new Floor(statsList[floors.length]));
  const seen = new StaticArray<bool>(floors.length);
  for (let i = 0; i < cfg.components.length; i++) {
    const si = statsIndexFor[i];
    floors[si].configure(cfg.components[i]);
    seen[si] = true;
  }
  for (let i = 0; i < floors.length; i++) if (!seen[i]) floors[i].configure(null);
}

/** Whether any configured component has its floor on (then the tick comes every FLOOR_TICK_MS). */
export function anyFloor(cfg: PluginConfig): bool {
  for (let i = 0, n = cfg.components.length; i < n; i++) if (unchecked(cfg.components[i]).floor.enabled) return true;
  return false;
}

/** Every floor's report tick. */
export function tickFloors(now: u64): void {
  for (let i = 0, n = floors.length; i < n; i++) unchecked(floors[i]).tick(now);
}

/**
 * Between report ticks: other workers' ejections are adopted, and only after one was announced (one
 * host call a tick, however many components have a floor).
 */
export function pollFloors(now: u64): void {
  if (!ejectionsMoved()) return;
  for (let i = 0, n = floors.length; i < n; i++) unchecked(floors[i]).poll(now);
}
