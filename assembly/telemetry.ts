// Telemetry, once per tick: folds each component's live counters into pending, flushes the Envoy
// stats, encodes one FilterReport (proto/shadowmesh/telemetry/v1) and sends it with
// proxy_grpc_call; the gRPC callbacks settle it (a failed or unanswered report goes back into
// pending, so nothing is lost).
import {
  METRIC_COUNTER, defineMetric, grpcCall, monotonicNs, wallNs,
} from "./abi";
import { Bytes } from "./bytes";
import { bump } from "./stats";
import { tickFloors } from "./floor";
import { MULTIPLIER, RELATIVE_ACCURACY } from "./sketch";
import { ProtoWriter } from "./proto";
import { config, configGeneration, internalError, nodeId, statsList, takeErrors, workerId } from "./state";

const TELEMETRY_SERVICE = new Bytes("shadowmesh.telemetry.v1.Telemetry");
const TELEMETRY_METHOD = new Bytes("Report");

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

/** At VM start: the plugin-wide Envoy stats and the first window's start. */
export function initTelemetry(): void {
  windowStartNs = wallNs();
  mFilterErrors = defineMetric(METRIC_COUNTER, "shadowmesh.filter_errors");
  mTelemetrySent = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.sent");
  mTelemetryFailed = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.failed");
}

export function onTick(): void {
  const now = monotonicNs();
  tickFloors(now); // before the stats flush: the floor.ejected gauge and the report's state
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
  const tok = len == 0 ? -1 : grpcCall(tc.ptr, tc.len, TELEMETRY_SERVICE.ptr, TELEMETRY_SERVICE.len,
    TELEMETRY_METHOD.ptr, TELEMETRY_METHOD.len, mdPtr, mdLen, reportBuf, len, cfg.telemetryTimeoutMs);
  if (len == 0) internalError("telemetry report could not be encoded");
  reportInFlight = true;
  reportSentNs = now;
  reportWindowEnd = windowEnd;
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

export function onGrpcReceive(token: u32): void {
  if (reportInFlight && token == reportToken) reportDone(true);
}

export function onGrpcClose(token: u32, status: u32): void {
  if (reportInFlight && token == reportToken) reportDone(status == 0);
}

