// The plugin configuration: JSON schema, validation with field-path errors, and the immutable
// in-memory form the request path reads. Parsed in proxy_on_configure only.
import { JValue, JsonParser, J_ARR, J_OBJ, J_STR } from "./json";
import {
  Ctx, checkKeys, fieldPath, fmt, getBool, getNum, getObj, getStr, getStrList, headerName, isToken, isVisibleAscii, toBytes,
} from "./config-read";
import { Bytes, FNV_OFFSET, fnv1a, mix64 } from "./bytes";
import { serializePairs } from "./abi";
import { CallersConfig, parseCallers } from "./edges";

/** Weights are in basis points of this total (the controller's TOTAL_WEIGHT in controller/xds/resources.ts). */
export const TOTAL_WEIGHT: u32 = 10000;

export const MAX_COMPONENTS = 64;

export class ReadRule {
  methods: Array<Bytes> = [];
  pathPrefixes: Array<Bytes> = [];
  headerName: Bytes | null = null;
  headerValue: Bytes | null = null; // null: presence is enough
}

/** The failover floor (floor.ts): when to eject the primary for reads, for how long, how to probe. */
export class FloorConfig {
  enabled: bool = true;
  /** Set by the controller: the shadow may take the primary's reads. Without it the floor never diverts. */
  shadowFit: bool = false;
  consecutiveFailures: u32 = 3;
  /** Failure share over the window, in parts per million (0 < ppm <= 1e6). */
  failureSharePpm: u32 = 300000;
  minRequests: u32 = 20;
  /** Window length in whole seconds (window_ms rounded up). */
  windowSec: u32 = 5;
  baseEjectionMs: u32 = 10000;
  maxEjectionMs: u32 = 300000;
  /** Share of reads sent to the primary while probing, in parts per million. */
  probeFractionPpm: u32 = 100000;
  probeSuccesses: u32 = 3;
}

export class ComponentConfig {
  name: string = "";
  index: i32 = 0;
  authorities: Array<Bytes> = [];
  isDefault: bool = false;
  primaryCluster: Bytes = new Bytes("");
  shadowCluster: Bytes = new Bytes("");
  writeToShadow: bool = false;
  read: ReadRule = new ReadRule();
  mirrorFractionPpm: u32 = 0;
  mirrorMaxPerSecond: u32 = 10;
  mirrorMaxInFlight: u32 = 8;
  mirrorTimeoutMs: u32 = 1000;
  mirrorRemoveHeaders: Array<Bytes> = [];
  compareBodyMaxBytes: u32 = 1048576;
  shadowWeightBp: u32 = 0;
  stickyHeader: Bytes | null = null;
  stickyCookie: Bytes | null = null;
  routingHeader: Bytes = new Bytes("x-shadowmesh-cluster");
  /** Per-component salt so one client's placement is independent across components. */
  salt: u64 = 0;
  floor: FloorConfig = new FloorConfig();
  /** hold_writes: the local 503's JSON body, built (and escaped) here; null when writes are not held. */
  holdBody: Bytes | null = null;
  /** pause_writes_ms: while > 0 the writer is being switched (planned, or in a failover) and writes wait in the proxy up to this long (pause.ts). */
  pauseWritesMs: u32 = 0;
  /** The 503's JSON body for a write held past pauseWritesMs. */
  pauseBody: Bytes = new Bytes("");
  /** Observed, not protected: requests are counted (callers, sketches) and left where the route sends them. */
  observe: bool = false;
}

export class PluginConfig {
  components: Array<ComponentConfig> = [];
  defaultComponent: i32 = -1;
  telemetryCluster: Bytes | null = null;
  telemetryIntervalMs: u32 = 1000;
  telemetryTimeoutMs: u32 = 2000;
  /** Reports on one gRPC stream per worker (StreamReports) instead of a unary call each. */
  telemetryStream: bool = false;
  /** The cluster and token together: a stream opened with others is replaced. */
  telemetryKey: string = "";
  /** gRPC initial metadata for every report (`authorization: Bearer <telemetry.token>`), serialized once; null without a token. */
  telemetryMetadata: ArrayBuffer | null = null;
  markerHeader: Bytes = new Bytes("x-shadowmesh-mirror");
  nodeId: string = "";
  /** Who calls each component (edges.ts); null: callers are not recorded. */
  callers: CallersConfig | null = null;
}

/** Parses and validates; on failure returns null and sets `configError` to "<field>: <why>". */
export let configError: string = "";

function parseComponent(c: Ctx, v: JValue, path: string, index: i32): ComponentConfig {
  const cc = new ComponentConfig();
  cc.index = index;
  checkKeys(c, v, path, ["name", "authorities", "default", "primary_cluster", "shadow_cluster", "write_target",
    "read_rule", "mirror", "shadow_weight_bp", "sticky", "routing_header", "floor", "hold_writes", "pause_writes_ms", "observe"]);
  cc.name = getStr(c, v, path, "name", true, "");
  cc.salt = mix64(fnv1a(FNV_OFFSET, changetype<usize>(String.UTF8.encode(cc.name)), <usize>String.UTF8.byteLength(cc.name)));
  const auth = getStrList(c, v, path, "authorities", false);
  if (auth !== null) cc.authorities = toBytes(auth);
  cc.isDefault = getBool(c, v, path, "default", false);
  if (c.ok() && cc.authorities.length == 0 && !cc.isDefault) c.fail(fieldPath(path, "authorities"), "is required unless \"default\" is true");
  cc.primaryCluster = new Bytes(getStr(c, v, path, "primary_cluster", true, ""));
  cc.observe = getBool(c, v, path, "observe", false);
  cc.shadowCluster = new Bytes(getStr(c, v, path, "shadow_cluster", !cc.observe, ""));
  const wt = getStr(c, v, path, "write_target", false, "primary");
  if (wt == "shadow") cc.writeToShadow = true;
  else if (wt != "primary") c.fail(fieldPath(path, "write_target"), "must be \"primary\" or \"shadow\", got \"" + wt + "\"");

  const rr = getObj(c, v, path, "read_rule", false);
  if (rr !== null) {
    const rp = fieldPath(path, "read_rule");
    checkKeys(c, rr, rp, ["methods", "path_prefixes", "header"]);
    const methods = getStrList(c, rr, rp, "methods", false);
    if (methods !== null) {
      for (let i = 0; i < methods.length; i++) {
        if (!isToken(methods[i], false) || methods[i].toUpperCase() != methods[i]) {
          c.fail(rp + ".methods[" + i.toString() + "]", "must be an upper-case HTTP method, got \"" + methods[i] + "\"");
        }
      }
      if (methods.length == 0) c.fail(rp + ".methods", "must list at least one method");
      cc.read.methods = toBytes(methods);
    }
    const prefixes = getStrList(c, rr, rp, "path_prefixes", false);
    if (prefixes !== null) {
      for (let i = 0; i < prefixes.length; i++) {
        if (prefixes[i].charCodeAt(0) != 0x2f) c.fail(rp + ".path_prefixes[" + i.toString() + "]", "must start with '/'");
      }
      cc.read.pathPrefixes = toBytes(prefixes);
    }
    const hm = getObj(c, rr, rp, "header", false);
    if (hm !== null) {
      const hp = rp + ".header";
      checkKeys(c, hm, hp, ["name", "value"]);
      const hn = getStr(c, hm, hp, "name", true, "");
      if (c.ok() && !isToken(hn, true)) c.fail(hp + ".name", "must be a lower-case HTTP header name, got \"" + hn + "\"");
      cc.read.headerName = new Bytes(hn);
      const hv = hm.get("value");
      if (hv !== null) {
        if (hv.kind != J_STR) c.fail(hp + ".value", "must be a string, got " + hv.kindName());
        else cc.read.headerValue = new Bytes(hv.s);
      }
    }
  }
  if (cc.read.methods.length == 0) cc.read.methods = [new Bytes("GET"), new Bytes("HEAD")];

  const m = getObj(c, v, path, "mirror", false);
  if (m !== null) {
    const mp = fieldPath(path, "mirror");
    checkKeys(c, m, mp, ["fraction", "max_per_second", "max_in_flight", "timeout_ms", "remove_headers", "compare_body_max_bytes"]);
    cc.mirrorFractionPpm = <u32>Math.round(getNum(c, m, mp, "fraction", 0, 1, false, 0) * 1e6);
    cc.mirrorMaxPerSecond = <u32>getNum(c, m, mp, "max_per_second", 0, 1e6, true, 10);
    cc.mirrorMaxInFlight = <u32>getNum(c, m, mp, "max_in_flight", 0, 1024, true, 8);
    cc.mirrorTimeoutMs = <u32>getNum(c, m, mp, "timeout_ms", 1, 600000, true, 1000);
    const rm = getStrList(c, m, mp, "remove_headers", false);
    if (rm !== null) {
      for (let i = 0; i < rm.length; i++) {
        const ip = mp + ".remove_headers[" + i.toString() + "]";
        if (rm[i].charCodeAt(0) == 0x3a) c.fail(ip, "pseudo-headers cannot be removed");
        else if (!isToken(rm[i], true)) c.fail(ip, "must be a lower-case HTTP header name, got \"" + rm[i] + "\"");
      }
      cc.mirrorRemoveHeaders = toBytes(rm);
    }
    cc.compareBodyMaxBytes = <u32>getNum(c, m, mp, "compare_body_max_bytes", 0, 1073741824.0, true, 1048576);
  }
  cc.shadowWeightBp = <u32>getNum(c, v, path, "shadow_weight_bp", 0, TOTAL_WEIGHT, true, 0);

  const st = getObj(c, v, path, "sticky", false);
  if (st !== null) {
    const sp = fieldPath(path, "sticky");
    checkKeys(c, st, sp, ["header", "cookie"]);
    const hasH = st.get("header") !== null, hasC = st.get("cookie") !== null;
    if (hasH == hasC) c.fail(sp, "must set exactly one of \"header\" or \"cookie\"");
    else if (hasH) cc.stickyHeader = new Bytes(headerName(c, st, sp, "header", ""));
    else cc.stickyCookie = new Bytes(getStr(c, st, sp, "cookie", true, ""));
  }
  cc.routingHeader = new Bytes(headerName(c, v, path, "routing_header", "x-shadowmesh-cluster"));

  const fl = getObj(c, v, path, "floor", false);
  if (fl !== null) parseFloor(c, fl, fieldPath(path, "floor"), cc.floor);
  if (v.get("hold_writes") !== null) {
    const reason = getStr(c, v, path, "hold_writes", true, "");
    if (c.ok()) cc.holdBody = new Bytes("{\"error\":\"shadowmesh: writes held: " + jsonEscape(reason) + "\"}");
  }
  cc.pauseWritesMs = <u32>getNum(c, v, path, "pause_writes_ms", 0, 60000, true, 0);
  if (cc.pauseWritesMs > 0) {
    cc.pauseBody = new Bytes("{\"error\":\"shadowmesh: writes held: " + jsonEscape(cc.name) + " is switching its writer and this write waited " +
      cc.pauseWritesMs.toString() + " ms (pause_writes_ms)\"}");
  }
  if (cc.observe && c.ok()) {
    // Observed only: nothing is split, mirrored, held or diverted.
    const moving = ["shadow_cluster", "shadow_weight_bp", "mirror", "hold_writes", "pause_writes_ms", "sticky", "write_target"];
    for (let i = 0; i < moving.length; i++) {
      if (v.get(moving[i]) !== null) { c.fail(fieldPath(path, moving[i]), "must not be set on an observed component (\"observe\": true records callers and latency only)"); break; }
    }
    cc.floor.enabled = false;
  }
  return cc;
}

function parseFloor(c: Ctx, v: JValue, p: string, f: FloorConfig): void {
  checkKeys(c, v, p, ["enabled", "shadow_fit", "consecutive_failures", "failure_share", "min_requests", "window_ms",
    "base_ejection_ms", "max_ejection_ms", "probe_fraction", "probe_successes"]);
  f.enabled = getBool(c, v, p, "enabled", true);
  f.shadowFit = getBool(c, v, p, "shadow_fit", false);
  f.consecutiveFailures = <u32>getNum(c, v, p, "consecutive_failures", 1, 1000, true, 3);
  f.failureSharePpm = <u32>Math.round(getFraction(c, v, p, "failure_share", 0.3) * 1e6);
  f.minRequests = <u32>getNum(c, v, p, "min_requests", 1, 100000, true, 20);
  f.windowSec = <u32>Math.ceil(getNum(c, v, p, "window_ms", 1000, 60000, true, 5000) / 1000);
  f.baseEjectionMs = <u32>getNum(c, v, p, "base_ejection_ms", 100, 3600000, true, 10000);
  f.maxEjectionMs = <u32>getNum(c, v, p, "max_ejection_ms", 100, 3600000, true, 300000);
  if (c.ok() && f.maxEjectionMs < f.baseEjectionMs) {
    c.fail(fieldPath(p, "max_ejection_ms"), "must be at least base_ejection_ms (" + f.baseEjectionMs.toString() + "), got " + f.maxEjectionMs.toString());
  }
  f.probeFractionPpm = <u32>Math.round(getFraction(c, v, p, "probe_fraction", 0.1) * 1e6);
  f.probeSuccesses = <u32>getNum(c, v, p, "probe_successes", 1, 1000, true, 3);
}

/** A share in (0, 1]. */
function getFraction(c: Ctx, v: JValue, path: string, key: string, def: f64): f64 {
  const x = getNum(c, v, path, key, 0, 1, false, def);
  if (c.ok() && !(x > 0)) c.fail(fieldPath(path, key), "must be greater than 0 (and at most 1), got " + fmt(x));
  return x > 0 ? x : def;
}

/** The body of a JSON string literal (without quotes). */
function jsonEscape(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch == 0x22) out += "\\\"";
    else if (ch == 0x5c) out += "\\\\";
    else if (ch == 0x0a) out += "\\n";
    else if (ch == 0x0d) out += "\\r";
    else if (ch == 0x09) out += "\\t";
    else if (ch < 0x20 || ch == 0x2028 || ch == 0x2029) {
      const hex = ch.toString(16);
      out += "\\u" + "0000".substring(hex.length) + hex;
    } else out += String.fromCharCode(ch);
  }
  return out;
}

export function parseConfig(ptr: usize, len: usize): PluginConfig | null {
  configError = "";
  const parser = new JsonParser();
  const root = parser.parse(ptr, len);
  if (root === null) { configError = "configuration: invalid JSON: " + parser.error; return null; }
  const c = new Ctx();
  if (root.kind != J_OBJ) { configError = "configuration: must be a JSON object, got " + root.kindName(); return null; }
  const cfg = new PluginConfig();
  checkKeys(c, root, "", ["components", "telemetry", "mirror_marker_header", "node_id", "callers"]);
  const callers = getObj(c, root, "", "callers", false);
  if (callers !== null) cfg.callers = parseCallers(c, callers, "callers");
  cfg.markerHeader = new Bytes(headerName(c, root, "", "mirror_marker_header", "x-shadowmesh-mirror"));
  const nid = root.get("node_id");
  if (nid !== null) cfg.nodeId = getStr(c, root, "", "node_id", false, "");

  const tel = getObj(c, root, "", "telemetry", false);
  if (tel !== null) {
    checkKeys(c, tel, "telemetry", ["cluster", "interval_ms", "timeout_ms", "token", "stream"]);
    const telCluster = getStr(c, tel, "telemetry", "cluster", true, "");
    cfg.telemetryCluster = new Bytes(telCluster);
    cfg.telemetryIntervalMs = <u32>getNum(c, tel, "telemetry", "interval_ms", 100, 3600000, true, 1000);
    cfg.telemetryTimeoutMs = <u32>getNum(c, tel, "telemetry", "timeout_ms", 10, 600000, true, 2000);
    cfg.telemetryStream = getBool(c, tel, "telemetry", "stream", false);
    const tok = tel.get("token");
    if (tok !== null) {
      // A secret: no error message ever includes its value.
      if (tok.kind != J_STR) c.fail("telemetry.token", "must be a string, got " + tok.kindName());
      else if (tok.s.length < 16 || tok.s.length > 4096) c.fail("telemetry.token", "must be 16 to 4096 characters long (the value is not shown)");
      else if (!isVisibleAscii(tok.s)) c.fail("telemetry.token", "must be visible ASCII characters only, no spaces or control characters (the value is not shown)");
      else cfg.telemetryMetadata = serializePairs(["authorization"], ["Bearer " + tok.s]);
    }
    cfg.telemetryKey = telCluster + "\n" + (tok !== null && tok.kind == J_STR ? tok.s : "");
  }

  const comps = root.get("components");
  if (comps === null) c.fail("components", "is required");
  else if (comps.kind != J_ARR) c.fail("components", "must be an array, got " + comps.kindName());
  else if (comps.items.length == 0) c.fail("components", "must list at least one component");
  else if (comps.items.length > MAX_COMPONENTS) c.fail("components", "has more than " + MAX_COMPONENTS.toString() + " entries");
  else {
    for (let i = 0; i < comps.items.length && c.ok(); i++) {
      const p = "components[" + i.toString() + "]";
      const item = comps.items[i];
      if (item.kind != J_OBJ) { c.fail(p, "must be an object, got " + item.kindName()); break; }
      const cc = parseComponent(c, item, p, i);
      if (!c.ok()) break;
      for (let j = 0; j < cfg.components.length; j++) {
        const other = cfg.components[j];
        if (other.name == cc.name) c.fail(p + ".name", "duplicates components[" + j.toString() + "].name \"" + cc.name + "\"");
        for (let a = 0; a < cc.authorities.length; a++) {
          for (let b = 0; b < other.authorities.length; b++) {
            if (other.authorities[b].equals(cc.authorities[a].ptr, cc.authorities[a].len)) {
              c.fail(p + ".authorities[" + a.toString() + "]", "is already claimed by components[" + j.toString() + "]");
            }
          }
        }
      }
      if (cc.isDefault) {
        if (cfg.defaultComponent >= 0) c.fail(p + ".default", "only one component can be the default (components[" + cfg.defaultComponent.toString() + "] is)");
        cfg.defaultComponent = i;
      }
      cfg.components.push(cc);
    }
  }
  if (!c.ok()) { configError = c.err; return null; }
  return cfg;
}
