// Telemetry, once per tick: folds each component's live counters into pending, flushes the Envoy
// stats, encodes one FilterReport (proto/shadowmesh/telemetry/v1) and sends it: with proxy_grpc_call
// (Report), or with `telemetry.stream` on one long-lived stream per worker (StreamReports,
// proxy_grpc_stream + proxy_grpc_send, one ReportAck back per report). The gRPC callbacks settle it
// (a failed or unanswered report goes back into pending, so nothing is lost). A stream that closes
// is opened again on the next tick; one refused as UNIMPLEMENTED (a controller or host without it)
// turns this worker to unary calls until the next configuration. A new configuration with another
// cluster or token closes the stream gracefully once the report on it (if any) is settled, so the
// next stream carries them; the same cluster and token keep it. The stream belongs to the root
// context that opened it (Envoy gives a new configuration a new root context in the same VM):
// callbacks match on that context and token, and closing it acts in that context.
import {
  LOG_WARN, METRIC_COUNTER, OK, defineMetric, grpcCall, grpcCancel, grpcClose, grpcSend, grpcStream, logString, monotonicNs,
  proxy_set_effective_context, proxy_set_tick_period_milliseconds, wallNs,
} from "./abi";
import { Bytes } from "./bytes";
import { bump } from "./stats";
import { FLOOR_TICK_MS, anyFloor, pollFloors, tickFloors } from "./floor";
import { anyPause, releasePaused } from "./pause";
import { MULTIPLIER, RELATIVE_ACCURACY } from "./sketch";
import { ProtoWriter } from "./proto";
import { config, configGeneration, internalError, nodeId, statsList, takeErrors, workerId } from "./state";
import { PluginConfig } from "./config";

const TELEMETRY_SERVICE = new Bytes("shadowmesh.telemetry.v1.Telemetry");
const TELEMETRY_METHOD = new Bytes("Report");
/** FilterReport.features: the settings this build knows that a first-release filter would refuse. */
const FEATURE_PAUSE_WRITES = new Bytes("pause_writes");
const STREAM_METHOD = new Bytes("StreamReports");
/** gRPC's UNIMPLEMENTED, and the host's (proxy_grpc_stream returning it: -1 - 12). */
const GRPC_UNIMPLEMENTED: u32 = 12;
const HOST_UNIMPLEMENTED: i64 = -13;

let errorsPending: u64 = 0;
let errorsSent: u64 = 0;
let mFilterErrors: i32 = -1;
let mTelemetrySent: i32 = -1;
let mTelemetryFailed: i32 = -1;

const proto = new ProtoWriter();
let reportBuf: usize = memory.data(256 * 1024, 16);
let reportCap: usize = 256 * 1024;
let reportToken: u32 = 0;
let reportInFlight = false;
let reportSentNs: u64 = 0;
let reportSequence: u64 = 0;
let windowStartNs: u64 = 0;
let reportWindowEnd: u64 = 0;
let reportOnStream = false;
/** The root context a unary report was sent from (its callbacks arrive there). */
let reportCtx: u32 = 0;
let streamToken: u32 = 0;
/** The root context that opened the stream: its callbacks arrive there, and it is closed from there. */
let streamCtx: u32 = 0;
let streamOpen = false;
/** The cluster and token the stream was opened with (PluginConfig.telemetryKey). */
let streamKey: string = "";
/** A new configuration changed them: the stream is closed once the report on it is settled. */
let streamStale = false;
/** The stream was refused as unimplemented: unary calls until the next configuration. */
let streamRefused = false;
let mTelemetryStreams: i32 = -1;
/**
 * Ticks come faster than reports (a floor's): the report interval in ns (0: every tick reports), and
 * the grid the reports keep: its start and the last interval reported.
 */
let fastReportNs: u64 = 0;
let telemetryBaseNs: u64 = 0;
let telemetryIndex: u64 = 0;

/**
 * On a new configuration: the tick period, every FLOOR_TICK_MS while a component has a floor (its
 * shared ejection then reaches every worker within it), else the report interval. With fast ticks the
 * report intervals count from now; with ticks at the report interval every tick reports, as before (a
 * host that keeps its timer's phase across a new period would otherwise skip one).
 */
export function setTickPeriod(cfg: PluginConfig, now: u64): void {
  // interval_ms is at least 100, so FLOOR_TICK_MS is always shorter. Paused writes need the fast
  // tick too: their deadline is kept to within it.
  const fast = anyFloor(cfg) || anyPause(cfg);
  proxy_set_tick_period_milliseconds(fast ? FLOOR_TICK_MS : cfg.telemetryIntervalMs);
  fastReportNs = fast ? <u64>cfg.telemetryIntervalMs * 1000000 : 0;
  telemetryBaseNs = now;
  telemetryIndex = 0;
}

/** At VM start: the plugin-wide Envoy stats and the first window's start. */
export function initTelemetry(): void {
  windowStartNs = wallNs();
  mFilterErrors = defineMetric(METRIC_COUNTER, "shadowmesh.filter_errors");
  mTelemetrySent = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.sent");
  mTelemetryFailed = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.failed");
  mTelemetryStreams = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.streams_opened");
}

/**
 * A new configuration (called from proxy_on_configure of root context `here`): a stream to another
 * cluster or with another token is closed, at once or, with a report on it, once that report is
 * settled (cancelling would count an acknowledgement in flight as a failure and send it twice).
 */
export function telemetryReconfigured(here: u32): void {
  streamRefused = false; // a controller may have learnt StreamReports since
  if (!streamOpen) return;
  const cfg = config;
  if (cfg !== null && cfg.telemetryStream && cfg.telemetryCluster !== null && cfg.telemetryKey == streamKey) return;
  if (reportInFlight && reportOnStream) { streamStale = true; return; }
  endStream(here, false);
}

/** Closes (gracefully) or cancels the stream from its own root context; `here` is the running callback's. */
function endStream(here: u32, cancel: bool): void {
  if (!streamOpen) return;
  const elsewhere = streamCtx != here;
  if (elsewhere) proxy_set_effective_context(streamCtx);
  if (cancel) grpcCancel(streamToken); else grpcClose(streamToken);
  if (elsewhere) proxy_set_effective_context(here);
  streamOpen = false;
  streamStale = false;
}

/** The root context's tick; true when it was a report tick (the others only poll the floors). */
export function onTick(root: u32): bool {
  const now = monotonicNs();
  releasePaused(root, now);
  // With a floor the tick comes every FLOOR_TICK_MS (another worker's ejection is adopted within it);
  // the rest keeps the telemetry interval's grid from the configuration on (a tick late by up to half
  // a floor tick still counts for its interval).
  if (fastReportNs > 0) {
    const k = (now - telemetryBaseNs + <u64>FLOOR_TICK_MS * 500000) / fastReportNs;
    if (k <= telemetryIndex) { pollFloors(now); return false; }
    telemetryIndex = k;
  }
  tickFloors(now); // before the stats flush: the floor.ejected gauge and the report's state
  reportTick(root, now);
  return true;
}

/** A report tick: the stats flushed into pending, then a report sent (or a stuck one given up). */
function reportTick(root: u32, now: u64): void {
  for (let i = 0, n = statsList.length; i < n; i++) {
    const s = unchecked(statsList[i]);
    // Nothing happened since the last tick (a quiet component, or a name no longer configured):
    // only a gauge may have changed; merging and clearing empty sketches is the tick's main cost.
    if (s.live.isEmpty()) { s.flushGauges(); continue; }
    s.flushMetrics(); // live holds exactly the delta since the previous tick
    s.pending.merge(s.live);
    s.live.clear();
  }
  const errors = takeErrors();
  bump(mFilterErrors, errors);
  errorsPending += errors;
  const cfg = config;
  if (cfg === null) return;
  if (reportInFlight && now - reportSentNs > <u64>cfg.telemetryTimeoutMs * 3000000) {
    // A stream that does not ack is given up and opened again. As with a unary call that times out,
    // the report goes back to pending: if the controller had merged it and only the ack was slow,
    // those counts are sent twice (at least once, never lost).
    if (reportOnStream) endStream(root, true);
    reportDone(false); // the host never answered: its data goes back to pending
  }
  if (reportInFlight) return;
  if (cfg.telemetryCluster === null) {
    for (let i = 0, n = statsList.length; i < n; i++) unchecked(statsList[i]).discard();
    errorsPending = 0;
    return;
  }
  // Sent even when empty: an empty report tells the controller this worker is alive.
  for (let i = 0, n = statsList.length; i < n; i++) unchecked(statsList[i]).beginSend();
  errorsSent = errorsPending;
  errorsPending = 0;
  const windowEnd = wallNs();
  const len = encodeReport(windowEnd);
  const tc = cfg.telemetryCluster!;
  const md = cfg.telemetryMetadata; // authorization: Bearer <telemetry.token>, when configured
  const mdPtr = md === null ? 0 : changetype<usize>(md);
  const mdLen = md === null ? 0 : <usize>md.byteLength;
  reportInFlight = true;
  reportSentNs = now;
  reportWindowEnd = windowEnd;
  if (len == 0) { internalError("telemetry report could not be encoded"); reportDone(false); return; }
  if (cfg.telemetryStream && !streamRefused) {
    if (!streamOpen) {
      const st = grpcStream(tc.ptr, tc.len, TELEMETRY_SERVICE.ptr, TELEMETRY_SERVICE.len, STREAM_METHOD.ptr, STREAM_METHOD.len, mdPtr, mdLen);
      if (st == HOST_UNIMPLEMENTED) refuseStreams("the host has no gRPC streams");
      else if (st < 0) { reportDone(false); return; }
      else { streamToken = <u32>st; streamCtx = root; streamKey = cfg.telemetryKey; streamOpen = true; streamStale = false; bump(mTelemetryStreams, 1); }
    }
    if (streamOpen) {
      reportOnStream = true;
      reportToken = streamToken;
      if (grpcSend(streamToken, reportBuf, len) != OK) { endStream(root, true); reportDone(false); }
      return;
    }
  }
  reportOnStream = false;
  reportCtx = root;
  const tok = grpcCall(tc.ptr, tc.len, TELEMETRY_SERVICE.ptr, TELEMETRY_SERVICE.len,
    TELEMETRY_METHOD.ptr, TELEMETRY_METHOD.len, mdPtr, mdLen, reportBuf, len, cfg.telemetryTimeoutMs);
  if (tok < 0) { reportDone(false); return; }
  reportToken = <u32>tok;
}

function encodeReport(windowEnd: u64): usize {
  for (let attempt = 0; attempt < 2; attempt++) {
    const w = proto;
    w.reset(reportBuf, reportCap);
    w.bytes(1, nodeId.ptr, nodeId.len);
    w.fixed64(2, workerId);
    w.uint(3, reportSequence + 1);
    w.uint(4, windowStartNs);
    w.uint(5, windowEnd);
    for (let i = 0, n = statsList.length; i < n; i++) {
      const s = unchecked(statsList[i]);
      if (s.mustReport()) s.encode(w, MULTIPLIER, RELATIVE_ACCURACY);
    }
    w.uint(7, errorsSent);
    w.uint(8, <u64>configGeneration);
    w.bytes(9, FEATURE_PAUSE_WRITES.ptr, FEATURE_PAUSE_WRITES.len);
    if (!w.overflow) { reportSequence++; return w.length; }
    // Grow once to a bound that always fits: at tick time, never on the request path.
    reportCap = reportCap * 8;
    reportBuf = heap.alloc(reportCap);
  }
  return 0;
}

function reportDone(ok: bool): void {
  reportInFlight = false;
  for (let i = 0, n = statsList.length; i < n; i++) unchecked(statsList[i]).endSend(ok);
  if (ok) {
    errorsSent = 0;
    windowStartNs = reportWindowEnd;
    bump(mTelemetrySent, 1);
  } else {
    errorsPending += errorsSent;
    errorsSent = 0;
    bump(mTelemetryFailed, 1);
  }
}

function refuseStreams(why: string): void {
  if (!streamRefused) logString(LOG_WARN, "shadowmesh: telemetry reports go as unary Report calls: " + why);
  streamRefused = true;
}

export function onGrpcReceive(ctx: u32, token: u32): void {
  if (!reportInFlight || token != reportToken) return;
  if (reportOnStream) {
    // On a stream, one ack per report, in order: one report is in flight at a time, so this is its ack.
    if (!streamOpen || ctx != streamCtx) return;
    reportDone(true);
    if (streamStale) endStream(ctx, false);
  } else if (ctx == reportCtx) reportDone(true);
}

export function onGrpcClose(ctx: u32, token: u32, status: u32): void {
  if (streamOpen && ctx == streamCtx && token == streamToken) {
    // The stream ended (the controller refused a report, restarted, or has no StreamReports): a report
    // on it was not acknowledged, so it counts failed; the next tick opens a stream, or calls Report.
    streamOpen = false;
    streamStale = false;
    if (status == GRPC_UNIMPLEMENTED) refuseStreams("the controller has no StreamReports (UNIMPLEMENTED)");
    if (reportInFlight && reportOnStream) reportDone(false);
    return;
  }
  if (reportInFlight && !reportOnStream && ctx == reportCtx && token == reportToken) reportDone(status == 0);
}
