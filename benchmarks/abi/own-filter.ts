// ABI-layer comparison, own side: the same per-request core as sdk-filter.ts, on assembly/abi.ts
// (raw imports, arena allocator, header pairs read in place). Benchmark-only; never shipped.
import {
  MAP_REQUEST_HEADERS, MAP_RESPONSE_HEADERS, OK, PairReader, arenaAlloc, arenaReset, getHeaderPairs, getHeaderValue,
  getPropertyU64, proxy_replace_header_map_value, resultLen, resultPtr,
} from "../../assembly/abi";
import { Bytes } from "../../assembly/bytes";

const AUTHORITY = new Bytes(":authority"), METHOD = new Bytes(":method"), USER = new Bytes("x-user");
const ORDERS = new Bytes("orders.svc"), GET = new Bytes("GET"), STATUS = new Bytes(":status");
const ROUTE = new Bytes("x-shadowmesh-cluster"), PRIMARY = new Bytes("orders-primary"), SHADOW = new Bytes("orders-shadow");
const DURATION = new Bytes("request\0duration");
const reader = new PairReader();
let durations: u64 = 0;
let statuses: u64 = 0;

export function proxy_abi_version_0_2_1(): void {}
export function proxy_on_memory_allocate(size: usize): usize { return arenaAlloc(size); }
export function proxy_on_vm_start(root: u32, size: usize): bool { return true; }
export function proxy_on_configure(root: u32, size: usize): bool { return true; }

export function proxy_on_request_headers(ctx: u32, n: u32, eos: bool): i32 {
  arenaReset();
  if (getHeaderPairs(MAP_REQUEST_HEADERS) != OK || !reader.open(resultPtr, resultLen)) return 0;
  let matched = false, isRead = false, b: u32 = 0;
  while (reader.next()) {
    const kp = reader.keyPtr, kl = reader.keyLen, vp = reader.valPtr, vl = reader.valLen;
    if (AUTHORITY.equals(kp, kl)) matched = ORDERS.equals(vp, vl);
    else if (METHOD.equals(kp, kl)) isRead = GET.equals(vp, vl);
    else if (USER.equals(kp, kl)) {
      let h: u32 = 2166136261;
      for (let i: usize = 0; i < vl; i++) h = (h ^ <u32>load<u8>(vp + i)) * 16777619;
      b = h % 10000;
    }
  }
  if (matched) {
    const c = isRead && b < 500 ? SHADOW : PRIMARY;
    proxy_replace_header_map_value(MAP_REQUEST_HEADERS, ROUTE.ptr, ROUTE.len, c.ptr, c.len);
  }
  return 0;
}

export function proxy_on_response_headers(ctx: u32, n: u32, eos: bool): i32 {
  arenaReset();
  if (getHeaderValue(MAP_RESPONSE_HEADERS, STATUS.ptr, STATUS.len) == OK && resultLen == 3) {
    statuses += <u64>((load<u8>(resultPtr) - 48) * 100 + (load<u8>(resultPtr + 1) - 48) * 10 + load<u8>(resultPtr + 2) - 48);
  }
  return 0;
}

export function proxy_on_log(ctx: u32): void {
  arenaReset();
  const d = getPropertyU64(DURATION.ptr, DURATION.len);
  if (d >= 0) durations += <u64>d;
}
