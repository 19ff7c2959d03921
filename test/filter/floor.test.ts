// The failover floor: the filter ejects the primary for reads after consecutive failures or a high
// failure share, sends those reads to the shadow while the shadow is fit, probes, re-admits, backs
// off like Envoy's outlier detection; writes are never diverted; hold_writes answers writes itself.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { component, config, get, post, rig, roundTrip, stat, tickReports, type Rig } from "../support/filter.js";

const PRIMARY = "orders-primary", SHADOW = "orders-shadow";

function floorConfig(floor: Record<string, unknown> = {}, over: Record<string, unknown> = {}): string {
  return config([component({ floor: { shadow_fit: true, base_ejection_ms: 1000, max_ejection_ms: 10000, ...floor }, ...over })]);
}

/** One read answered with `status` (0: reset before any response); returns the cluster it was routed to. */
function read(r: Rig, status = 200, latencyMs = 5): string | undefined {
  if (status === 0) {
    const s = r.host.newHttpStream({ properties: { "response.flags": 0x10n } });
    s.sendRequestHeaders(get(), true);
    r.clock.advance(latencyMs);
    s.complete();
    return s.requestHeadersMap!.get("x-shadowmesh-cluster");
  }
  return roundTrip(r, get(), { status, latencyMs }).requestHeadersMap!.get("x-shadowmesh-cluster");
}

function write(r: Rig, status = 200): string | undefined {
  return roundTrip(r, post(), { status }).requestHeadersMap!.get("x-shadowmesh-cluster");
}

/** Ticks (acknowledging reports) so the Envoy stats are flushed, without moving the clock much. */
function flush(r: Rig): void { tickReports(r, { intervalMs: 0 }); r.clock.advance(1000); r.callouts.takeGrpc().forEach((c) => c.reply({ status: 0, message: new Uint8Array(0) })); }

test("three failed reads in a row eject the primary: reads go to the shadow", async () => {
  const r = await rig(floorConfig());
  assert.is(read(r, 503), PRIMARY);
  assert.is(read(r, 200), PRIMARY);
  assert.is(read(r, 503), PRIMARY);
  assert.is(read(r, 0), PRIMARY, "a reset counts as a failure");
  assert.is(read(r, 502), PRIMARY);
  for (let i = 0; i < 5; i++) assert.is(read(r, 200), SHADOW, `read ${i} diverted`);
  flush(r);
  assert.is(stat(r, "orders", "floor.ejections"), 1);
  assert.is(stat(r, "orders", "floor.reads_diverted"), 5);
  assert.is(stat(r, "orders", "floor.ejected"), 1);
});

test("a client that went away (no response, no upstream flag) is not a failure of the primary", async () => {
  const r = await rig(floorConfig());
  for (let i = 0; i < 5; i++) {
    const s = r.host.newHttpStream();
    s.sendRequestHeaders(get(), true);
    s.complete();
  }
  assert.is(read(r), PRIMARY);
});

test("gray failure: 35% 5xx, never three in a row, ejects on the window share once 20 reads are seen", async () => {
  const r = await rig(floorConfig({ consecutive_failures: 3, failure_share: 0.3, min_requests: 20, window_ms: 5000 }));
  const pattern = [true, false, false, true, false, true, false, false, true, false, false, true, false, true, false, false, true, false, false, true]; // 7 of 20
  let run = 0, firstDiverted = -1;
  for (let i = 0; i < 60; i++) {
    const fail = pattern[i % pattern.length]!;
    const to = read(r, fail ? 503 : 200, 50);
    if (to === SHADOW) { firstDiverted = i; break; }
    run = fail ? run + 1 : 0;
    assert.ok(run < 3, "never three failures in a row");
  }
  assert.ok(firstDiverted >= 20, `not before min_requests (first diverted read ${firstDiverted})`);
  assert.ok(firstDiverted <= 21, `right after the window holds 20 reads at >= 30% (first diverted read ${firstDiverted})`);
});

test("the window forgets: the same failures spread over more than window_ms do not eject", async () => {
  const r = await rig(floorConfig({ consecutive_failures: 1000, failure_share: 0.3, min_requests: 20, window_ms: 2000 }));
  for (let i = 0; i < 60; i++) {
    assert.is(read(r, i % 3 === 0 ? 503 : 200, 5), PRIMARY);
    r.clock.advance(400); // ~5 reads per 2 s window: never 20
  }
});

test("backoff: the second ejection lasts twice the first; probing re-admits, a failed probe re-ejects", async () => {
  const r = await rig(floorConfig({ probe_fraction: 1, probe_successes: 2 }));
  for (let i = 0; i < 3; i++) read(r, 503, 0);
  const t0 = r.clock.monotonicNs();
  r.clock.advance(990);
  assert.is(read(r, 200, 0), SHADOW, "first ejection: 1000 ms");
  r.clock.advance(10);
  assert.is(read(r, 503, 0), PRIMARY, "after 1000 ms: a probe (probe_fraction 1), and it fails");
  assert.ok(r.clock.monotonicNs() - t0 >= 1000e6);
  r.clock.advance(1990);
  assert.is(read(r, 200, 0), SHADOW, "second ejection: still diverted after 1990 ms");
  r.clock.advance(10);
  assert.is(read(r, 200, 0), PRIMARY, "after 2000 ms: probe 1 succeeds");
  assert.is(read(r, 200, 0), PRIMARY, "probe 2 succeeds: re-admitted");
  for (let i = 0; i < 5; i++) assert.is(read(r, 200, 0), PRIMARY);
  flush(r);
  assert.is(stat(r, "orders", "floor.ejections"), 2);
  assert.is(stat(r, "orders", "floor.probes"), 3);
  assert.is(stat(r, "orders", "floor.probe_failures"), 1);
  assert.is(stat(r, "orders", "floor.readmissions"), 1);
  assert.is(stat(r, "orders", "floor.ejected"), 0);
});

/** Fails three reads, then measures how long reads stay diverted (10 ms steps); the last read is a successful probe. */
function ejectionMs(r: Rig): number {
  for (let i = 0; i < 3; i++) read(r, 503, 0);
  let ms = 0;
  while (read(r, 200, 0) === SHADOW) { r.clock.advance(10); ms += 10; }
  return ms;
}

test("the multiplier is capped so base x multiplier <= max_ejection_ms", async () => {
  const r = await rig(floorConfig({ probe_fraction: 1, probe_successes: 1, base_ejection_ms: 1000, max_ejection_ms: 2500 }));
  assert.equal([ejectionMs(r), ejectionMs(r), ejectionMs(r), ejectionMs(r)], [1000, 2000, 2000, 2000]);
});

test("the multiplier decays by one per base ejection time the primary stays admitted without failing", async () => {
  const r = await rig(floorConfig({ probe_fraction: 1, probe_successes: 1, base_ejection_ms: 1000, max_ejection_ms: 60000 }));
  assert.equal([ejectionMs(r), ejectionMs(r), ejectionMs(r)], [1000, 2000, 3000]);
  r.clock.advance(1000); // multiplier 3 -> 2
  assert.is(ejectionMs(r), 3000);
  r.clock.advance(2000); // 3 -> 1
  assert.is(ejectionMs(r), 2000);
  r.clock.advance(900);
  read(r, 503, 0); // a failure restarts the clean interval
  r.clock.advance(900);
  assert.is(ejectionMs(r), 3000, "no decay: never a whole base interval without a failure");
});

test("while probing, probe_fraction of the reads go to the primary, the rest to the shadow", async () => {
  const r = await rig(floorConfig({ probe_fraction: 0.25, probe_successes: 1000 }));
  for (let i = 0; i < 3; i++) read(r, 503, 0);
  r.clock.advance(1000);
  let probes = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) if (read(r, 200, 0) === PRIMARY) probes++;
  const sd = Math.sqrt(n * 0.25 * 0.75);
  assert.ok(Math.abs(probes - n * 0.25) < 4 * sd, `${probes} probes of ${n}`);
  flush(r);
  assert.is(stat(r, "orders", "floor.probes"), probes);
  assert.is(stat(r, "orders", "floor.reads_diverted"), n - probes);
});

test("writes are never diverted, and failing writes do not eject", async () => {
  const r = await rig(floorConfig());
  for (let i = 0; i < 10; i++) assert.is(write(r, 503), PRIMARY);
  assert.is(read(r), PRIMARY, "write failures are not the floor's business");
  for (let i = 0; i < 3; i++) read(r, 503);
  assert.is(read(r), SHADOW);
  for (let i = 0; i < 5; i++) assert.is(write(r), PRIMARY, "ejected for reads, writes still go to the write target");
});

test("an unfit shadow is never used: nothing is diverted, unfit_skips counts what would have been", async () => {
  const r = await rig(floorConfig({ shadow_fit: false }));
  for (let i = 0; i < 10; i++) assert.is(read(r, 503), PRIMARY);
  for (let i = 0; i < 4; i++) assert.is(read(r, 200), PRIMARY);
  flush(r);
  assert.is(stat(r, "orders", "floor.ejections"), 0);
  assert.is(stat(r, "orders", "floor.reads_diverted"), 0);
  assert.ok(stat(r, "orders", "floor.unfit_skips") >= 7, `unfit_skips ${stat(r, "orders", "floor.unfit_skips")}`);
  assert.is(stat(r, "orders", "floor.ejected"), 0);
  // The controller marks the shadow fit: the next failure ejects.
  r.host.reconfigure(floorConfig({ shadow_fit: true }));
  for (let i = 0; i < 3; i++) read(r, 503);
  assert.is(read(r), SHADOW);
});

test("a republished configuration keeps an ejection; shadow_fit false ends the diversion at once and keeps counting", async () => {
  const r = await rig(floorConfig({ base_ejection_ms: 5000 }));
  for (let i = 0; i < 3; i++) read(r, 503);
  assert.is(read(r), SHADOW);
  r.host.reconfigure(floorConfig({ base_ejection_ms: 5000 }, { shadow_weight_bp: 100 }));
  assert.is(read(r), SHADOW, "same ejection after a republish");
  assert.is(r.host.reconfigure(floorConfig({ base_ejection_ms: 5000, shadow_fit: false })), true);
  for (let i = 0; i < 4; i++) assert.is(read(r), PRIMARY, "unfit: back to weight-based routing");
  flush(r);
  assert.is(stat(r, "orders", "floor.unfit_skips"), 4);
  assert.is(stat(r, "orders", "floor.ejected"), 0, "not diverting");
  r.host.reconfigure(floorConfig({ base_ejection_ms: 5000 }));
  assert.is(read(r), SHADOW, "fit again within the ejection time: diverted again");
});

test("floor.enabled false: failures never eject", async () => {
  const r = await rig(floorConfig({ enabled: false }));
  for (let i = 0; i < 10; i++) assert.is(read(r, 503), PRIMARY);
});

const cluster = (s: { requestHeadersMap?: { get(n: string): string | undefined } }) => s.requestHeadersMap!.get("x-shadowmesh-cluster");
/** One read on `worker` answered `status`: the cluster it went to. */
const readOn = (r: Rig, worker: number, status = 200): string | undefined => cluster(roundTrip(r, get(), { status, worker }));

test("workers count consecutive failures together, as Envoy's detector does: failures spread over two workers eject", async () => {
  const r = await rig(floorConfig(), { workers: 2 });
  readOn(r, 0, 503);
  readOn(r, 1, 503);
  assert.is(readOn(r, 0, 503), PRIMARY, "the third failure, on worker 0, ejects");
  assert.is(readOn(r, 0), SHADOW);
  assert.is(readOn(r, 1), SHADOW, "worker 1 had seen a failure: it adopts the ejection before its next read, without failing one");
  flush(r);
  assert.is(stat(r, "orders", "floor.ejections"), 1, "one ejection, adopted by the other worker");
});

test("a success on a worker that failed resets the shared count; a worker that saw nothing adopts an ejection on its floor tick (10 ms)", async () => {
  const r = await rig(floorConfig(), { workers: 3 });
  readOn(r, 0, 503);
  readOn(r, 1, 503);
  readOn(r, 0, 200);
  readOn(r, 1, 503);
  assert.is(readOn(r, 1), PRIMARY, "1, 2, reset, 1: no ejection (and this success resets again)");
  readOn(r, 1, 503);
  readOn(r, 0, 503);
  readOn(r, 1, 503);
  assert.is(readOn(r, 0), SHADOW, "three in a row across workers");
  // A worker that has seen no failure reads the shared record on its tick, not per request: with a
  // floor the tick comes every 10 ms (not once per 1 s report), so within one it has adopted the
  // ejection, as Envoy's detector ejects for every worker at once.
  r.clock.advance(10);
  assert.is(readOn(r, 2), SHADOW, "worker 2 saw nothing: adopted within one floor tick");
  flush(r);
  assert.is(stat(r, "orders", "floor.ejections"), 1, "one ejection, adopted by the others");
});

test("the 10 ms tick only adopts ejections: a worker that saw no failure neither joins nor resets the shared count until a report tick", async () => {
  const r = await rig(floorConfig(), { workers: 3 });
  readOn(r, 0, 503);
  readOn(r, 1, 503);
  r.clock.advance(20); // two floor ticks on every worker
  assert.is(readOn(r, 2), PRIMARY, "2 of 3: not ejected yet; worker 2 reads the primary, successfully");
  assert.is(readOn(r, 0, 503), PRIMARY, "the third failure in a row among the workers that failed");
  assert.is(readOn(r, 0), SHADOW, "ejected: worker 2's success between them did not reset the count, as before the fast tick");
});

test("the 10 ms tick reads one proxy-wide key, not one record per component: eight floors cost one look a tick until an ejection is announced", async () => {
  const names = Array.from({ length: 8 }, (_, i) => `c${i}`);
  const cfg = config(names.map((n) => component({ name: n, authorities: [`${n}.svc`], primary_cluster: `${n}-primary`, shadow_cluster: `${n}-shadow`, floor: { shadow_fit: true, base_ejection_ms: 1000, max_ejection_ms: 10000 } })));
  const r = await rig(cfg, { workers: 2 });
  const on = (worker: number, n: string, status = 200) => cluster(roundTrip(r, get("/item/1", [], `${n}.svc`), { status, worker }));
  for (const n of names) assert.is(on(1, n), `${n}-primary`);
  r.clock.advance(1000); // past the first report
  const w1 = r.host.worker(1), c0 = w1.hostCalls;
  r.clock.advance(90); // nine floor ticks, no report
  const perTick = (w1.hostCalls - c0) / 9;
  assert.ok(perTick <= 2, `${perTick.toFixed(1)} host calls per floor tick for 8 floors (the clock and the announcement key; one record per floor was 9+)`);
  for (let i = 0; i < 3; i++) on(0, "c5", 503);
  assert.is(on(0, "c5"), "c5-shadow", "worker 0 ejected c5's primary");
  r.clock.advance(10);
  assert.is(on(1, "c5"), "c5-shadow", "worker 1 saw nothing and adopted the announced ejection within a floor tick");
  assert.is(on(1, "c4"), "c4-primary", "the other components are untouched");
});

test("a worker re-admitting the primary adopts an ejection another worker announced while it was probing, within a floor tick", async () => {
  const r = await rig(floorConfig({ base_ejection_ms: 300, probe_fraction: 1, probe_successes: 1 }), { workers: 2 });
  for (let i = 0; i < 3; i++) readOn(r, 0, 503);
  r.clock.advance(10);
  assert.is(readOn(r, 1), SHADOW, "worker 1 adopted the first ejection");
  r.clock.advance(320); // both past its end: the next reads probe
  assert.is(readOn(r, 0, 503), PRIMARY, "worker 0's probe fails: ejected again, announced");
  r.clock.advance(10); // a floor tick on worker 1 while it is still probing: it cannot adopt then
  assert.is(readOn(r, 1), PRIMARY, "worker 1's probe succeeds: re-admitted");
  r.clock.advance(10);
  assert.is(readOn(r, 1), SHADOW, "within a floor tick worker 1 adopts worker 0's new ejection");
});

test("a component named like the announcement key keeps its own record: its ejection is adopted by the other worker", async () => {
  const r = await rig(floorConfig({ base_ejection_ms: 5000 }, { name: "ejections" }), { workers: 2 });
  for (let i = 0; i < 3; i++) readOn(r, 0, 503);
  r.clock.advance(10);
  assert.is(readOn(r, 1), SHADOW);
});

test("the shared record exists from configuration on (every failure is a CAS on it), and a new configuration never resets it", async () => {
  const r = await rig(floorConfig(), { workers: 2 });
  const rec = () => r.host.sharedData.get("shadowmesh.floor.orders");
  assert.ok(rec(), "created at configuration, before any failure");
  assert.equal([...rec()!.value], new Array(16).fill(0));
  for (let i = 0; i < 3; i++) readOn(r, 0, 503);
  const ejected = rec()!.cas;
  r.host.reconfigure(floorConfig());
  assert.is(rec()!.cas, ejected, "a republished configuration leaves the ejection's record as it was");
  r.clock.advance(10);
  assert.is(readOn(r, 1), SHADOW, "and the other worker adopts the ejection");
});

test("with a floor the tick comes every 10 ms, and reports keep their interval: one a second, not one a tick", async () => {
  const r = await rig(floorConfig(), { workers: 2 });
  read(r);
  assert.is(tickReports(r, { intervalMs: 990 }).length, 0, "no report before the interval is up, for all the floor's ticks");
  const reports = tickReports(r, { intervalMs: 10 });
  assert.is(reports.length, 2, "then one per worker");
  assert.is(tickReports(r, { intervalMs: 500 }).length, 0);
  assert.is(tickReports(r, { intervalMs: 500 }).length, 2, "and again a second later");
});

test("a write's connection failure is evidence (writes still never diverted); a 5xx answer to a write is not", async () => {
  const r = await rig(floorConfig());
  const failedWrite = () => {
    const s = r.host.newHttpStream({ properties: { "response.flags": 0x20n } }); // upstream connection failure
    s.sendRequestHeaders(post(), true);
    r.clock.advance(1);
    s.sendResponseHeaders([[":status", "503"]], true);
    s.complete();
    return cluster(s);
  };
  assert.is(failedWrite(), PRIMARY);
  assert.is(read(r, 503), PRIMARY);
  assert.is(failedWrite(), PRIMARY, "writes are never diverted");
  assert.is(read(r), SHADOW, "two connection failures of writes and a failed read in a row eject");
  const q = await rig(floorConfig());
  for (let i = 0; i < 5; i++) roundTrip(q, post(), { status: 503 });
  assert.is(cluster(roundTrip(q, get())), PRIMARY, "a write refused with a 5xx is not evidence");
});

test("5xx answers to writes extend a run of failures a read began (as Envoy's consecutive_5xx counts them), and never start one", async () => {
  const r = await rig(floorConfig());
  assert.is(read(r, 503), PRIMARY);
  assert.is(write(r, 503), PRIMARY, "writes are never diverted");
  assert.is(write(r, 500), PRIMARY);
  assert.is(read(r), SHADOW, "a failed read and two 5xx writes after it eject");
  const q = await rig(floorConfig());
  assert.is(read(q, 503), PRIMARY);
  assert.is(read(q, 200), PRIMARY, "a success ends the run");
  assert.is(write(q, 503), PRIMARY);
  assert.is(write(q, 503), PRIMARY);
  assert.is(read(q, 503), PRIMARY);
  assert.is(read(q, 503), PRIMARY, "refused writes after a success start nothing: two failed reads are a run of two");
  assert.is(write(q, 502), PRIMARY);
  assert.is(read(q), SHADOW, "then a 5xx write extends it: three");
  const w = await rig(floorConfig(), { workers: 2 });
  assert.is(read(w, 503), PRIMARY);
  assert.is(write(w, 503), PRIMARY, "on the other worker: the run is proxy-wide");
  assert.is(write(w, 503), PRIMARY);
  assert.is(read(w), SHADOW);
});

test("hold_writes: writes are answered with a local 503 naming the reason, never forwarded; reads pass", async () => {
  const r = await rig(floorConfig({}, { hold_writes: "failover in progress \"orders\"" }));
  const s = r.host.newHttpStream();
  const action = s.sendRequestHeaders(post(), true);
  assert.is(action, 1, "Pause: the request goes no further");
  assert.ok(s.requestPaused);
  assert.is(s.localResponse!.status, 503);
  assert.equal(JSON.parse(Buffer.from(s.localResponse!.body).toString()), { error: "shadowmesh: writes held: failover in progress \"orders\"" });
  assert.is(s.localResponse!.headers.get("x-shadowmesh-held"), "writes");
  assert.is(s.localResponse!.headers.get("content-type"), "application/json");
  assert.is(s.requestHeadersMap!.get("x-shadowmesh-cluster"), undefined, "no routing header: not routed");
  s.complete();
  const forged = r.host.newHttpStream();
  forged.sendRequestHeaders(post("/", [["x-shadowmesh-mirror", "1"]]), true);
  assert.is(forged.localResponse?.status, 503, "a forged mirror marker does not get a write through");
  forged.complete();
  assert.is(read(r), PRIMARY);
  assert.is(roundTrip(r, get("/", [["x-shadowmesh-mirror", "1"]])).localResponse, undefined, "mirrored reads pass");
  flush(r);
  assert.is(stat(r, "orders", "writes_held"), 2);
  assert.is(stat(r, "orders", "writes"), 2);
  r.host.reconfigure(floorConfig());
  assert.is(write(r), PRIMARY, "released: writes flow again");
});

test("property: over random answers, writes never go to the shadow, an unfit shadow gets no read, diversion only after a trigger", async () => {
  const step = fc.record({
    write: fc.boolean(),
    status: fc.constantFrom(200, 200, 200, 404, 500, 503, 0),
    advanceMs: fc.constantFrom(0, 1, 50, 400, 1500),
    refit: fc.option(fc.boolean(), { freq: 10 }),
  });
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 120 }), fc.boolean(), fc.integer({ min: 1, max: 5 }),
    async (steps, fit0, n) => {
      const floor = { consecutive_failures: n, min_requests: 5, failure_share: 0.5, probe_fraction: 0.5, probe_successes: 2 };
      const r = await rig(floorConfig({ ...floor, shadow_fit: fit0 }), { seed: steps.length });
      // Failures that may count: failed reads, and 5xx answers to writes while a run a failed read began is unbroken.
      let fit = fit0, failuresSeen = 0, run = false;
      for (const st of steps) {
        if (st.refit !== null) { fit = st.refit; r.host.reconfigure(floorConfig({ ...floor, shadow_fit: fit })); }
        const to = st.write ? write(r, st.status || 503) : read(r, st.status, 1);
        const failed = st.status === 0 || st.status >= 500;
        if (st.write) {
          assert.is(to, PRIMARY, "a write is never diverted");
          if (failed && run) failuresSeen++;
          if (!failed) run = false;
        } else {
          if (!fit) assert.is(to, PRIMARY, "no read diverted while the shadow is unfit");
          if (to === SHADOW) assert.ok(failuresSeen >= Math.min(n, 3), `diverted after ${failuresSeen} failures (a trigger needs ${n} in a row, or 3 of 5 requests)`);
          if (failed) failuresSeen++;
          run = failed;
        }
        r.clock.advance(st.advanceMs);
      }
    }), { seed: 20261130, numRuns: Number(process.env.FC_RUNS ?? 100) });
});

test.run();
