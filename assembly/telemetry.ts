// Telemetry, once per tick: folds each component's live counters into pending, flushes the Envoy
// stats, encodes one FilterReport (proto/shadowmesh/telemetry/v1) and sends it: with proxy_grpc_call
// (Report), or with `telemetry.stream` on one long-lived stream per worker (StreamReports,
// proxy_grpc_stream + proxy_grpc_send, one ReportAck back per report). The gRPC callbacks settle it
// (a failed or unanswered report goes back into pending, so nothing is lost). A stream that closes
// is opened again on the next tick; one refused as UNIMPLEMENTED (a controller or host without it)
// turns this worker to unary calls for the VM's life. A new configuration closes the stream, so the
// next one carries the new cluster and token.
import {
  METRIC_COUNTER, OK, defineMetric, grpcCall, grpcCancel, grpcSend, grpcStream, monotonicNs, wallNs,
} from "./abi";
import { Bytes } from "./bytes";
import { bump } from "./stats";
import { tickFloors } from "./floor";
import { MULTIPLIER, RELATIVE_ACCURACY } from "./sketch";
import { ProtoWriter } from "./proto";
import { config, configGeneration, internalError, nodeId, statsList, takeErrors, workerId } from "./state";

const TELEMETRY_SERVICE = new Bytes("shadowmesh.telemetry.v1.Telemetry");
const TELEMETRY_METHOD = new Bytes("Report");
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
let streamToken: u32 = 0;
let streamOpen = false;
/** The stream was refused as unimplemented: unary calls from now on. */
let streamRefused = false;
let mTelemetryStreams: i32 = -1;

/** At VM start: the plugin-wide Envoy stats and the first window's start. */
export function initTelemetry(): void {
  windowStartNs = wallNs();
  mFilterErrors = defineMetric(METRIC_COUNTER, "shadowmesh.filter_errors");
  mTelemetrySent = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.sent");
  mTelemetryFailed = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.failed");
  mTelemetryStreams = defineMetric(METRIC_COUNTER, "shadowmesh.telemetry.streams_opened");
}

/** A new configuration: the open stream (old cluster, old token) is cancelled; a report on it counts failed. */
export function telemetryReconfigured(): void {
  if (!streamOpen) return;
  dropStream();
  if (reportInFlight && reportOnStream) reportDone(false);
}

function dropStream(): void {
  if (streamOpen) grpcCancel(streamToken);
  streamOpen = false;
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
    if (reportOnStream) dropStream(); // a stream that does not ack is given up and opened again
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
      if (st == HOST_UNIMPLEMENTED) streamRefused = true;
      else if (st < 0) { reportDone(false); return; }
      else { streamToken = <u32>st; streamOpen = true; bump(mTelemetryStreams, 1); }
    }
    if (streamOpen) {
      reportOnStream = true;
      reportToken = streamToken;
      if (grpcSend(streamToken, reportBuf, len) != OK) { dropStream(); reportDone(false); }
      return;
    }
  }
  reportOnStream = false;
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
  // On a stream, one ack per report, in order: one report is in flight at a time, so this is its ack.
  if (reportInFlight && token == reportToken) reportDone(true);
}

export function onGrpcClose(token: u32, status: u32): void {
  if (streamOpen && token == streamToken) {
    // The stream ended (the controller refused a report, restarted, or has no StreamReports): a report
    // on it was not acknowledged, so it counts failed; the next tick opens a stream, or calls Report.
    streamOpen = false;
    if (status == GRPC_UNIMPLEMENTED) streamRefused = true;
    if (reportInFlight && reportOnStream) reportDone(false);
    return;
  }
  if (reportInFlight && !reportOnStream && token == reportToken) reportDone(status == 0);
}

