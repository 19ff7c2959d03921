// The `observe:` and `impact:` sections of the controller configuration: services the filter only
// observes (callers and latency, no split), where a caller's identity comes from, how identities
// map to service names, criticality tiers, prices and known resources for the shadow plan. Absent
// `impact:`, callers are still recorded with the default (the proxy's own workload) so the service
// graph builds itself from traffic.
import { z } from "zod";
import { DEFAULT_GRAPH_OPTIONS } from "./graph.js";
import { DEFAULT_RANK } from "./rank.js";
import { DEFAULT_PLAN, DEFAULT_PRICES } from "./plan.js";

export const CALLER_SOURCES = ["peer", "header", "address", "node"] as const;
export type CallerSource = (typeof CALLER_SOURCES)[number];

const weight = z.number().positive().max(1_000_000);

export const impactSchema = z.object({
  /**
   * Where the filter finds a request's caller, in order: the peer certificate's URI SAN (mTLS), a
   * header, the source address, or the proxy's own workload (Istio's node metadata, else its node id);
   * `enabled: false` records no callers.
   */
  callers: z.object({
    enabled: z.boolean().optional(),
    from: z.array(z.enum(CALLER_SOURCES)).min(1).optional(),
    header: z.string().regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, "a lower-case HTTP header name").optional(),
    topK: z.number().int().min(1).max(64).optional(),
  }).strict().optional(),
  /** A caller's identity as recorded (e.g. spiffe://cluster.local/ns/shop/sa/web, web-v1.shop) -> the service's name. */
  identities: z.record(z.string().min(1), z.string().min(1)).optional(),
  /** Criticality: a failed request from this caller (or to this service) counts this much; default 1. */
  tiers: z.record(z.string().min(1), weight).optional(),
  defaultWeight: weight.optional(),
  /** The graph's rates are averaged over this half-life (default 900 s). */
  halfLifeS: z.number().min(10).max(30 * 86_400).optional(),
  /** How often the graph is saved to stateDir/graph.json (default 60 s). */
  saveEveryS: z.number().min(1).max(86_400).optional(),
  /** The share of a failure's failed requests a shadow avoids (default 0.9). */
  expectedReduction: z.number().gt(0).max(1).optional(),
  /** Mean length of an outage when no history says otherwise (default 600 s). */
  outageS: z.number().positive().optional(),
  /** Currency per unit (defaults: 0.04 a core-hour, 0.005 a GiB-hour, 0.02 a GiB moved across zones). */
  prices: z.object({ cpuCoreHour: z.number().nonnegative(), memoryGiBHour: z.number().nonnegative(), transferGiB: z.number().nonnegative() }).partial().strict().optional(),
  /** What each service's primary runs on (the shadow plan sizes and prices its shadow from it). */
  resources: z.record(z.string().min(1), z.object({ cpuCores: z.number().positive(), memoryGiB: z.number().positive() }).partial().strict()).optional(),
}).strict();

export interface CallersSetting { from: CallerSource[]; header?: string; topK: number }

export interface ImpactConfig {
  /** null: the filter records no callers. */
  callers: CallersSetting | null;
  identities: Record<string, string>;
  tiers: Record<string, number>;
  defaultWeight: number;
  halfLifeS: number;
  saveEveryS: number;
  expectedReduction: number;
  outageS: number;
  prices: { cpuCoreHour: number; memoryGiBHour: number; transferGiB: number };
  resources: Record<string, { cpuCores?: number; memoryGiB?: number }>;
}

/**
 * The filter runs on the callers' sidecars (SIDECAR_OUTBOUND, deploy/istio): there the caller is the
 * proxy's own workload, known at configuration, so recording costs no host call per request. A filter
 * on a gateway or an inbound listener sets from: [peer, ...] (one property read per request).
 */
export const DEFAULT_CALLERS: CallersSetting = { from: ["node"], topK: 16 };

/** The settings with their defaults; `problem(path, why)` reports a setting that contradicts itself. */
export function resolveImpact(i: z.output<typeof impactSchema> | undefined, problem: (path: (string | number)[], why: string) => never): ImpactConfig {
  const c = i?.callers;
  let callers: CallersSetting | null = { ...DEFAULT_CALLERS };
  if (c?.enabled === false) callers = null;
  else if (c) {
    const from = c.from ?? DEFAULT_CALLERS.from;
    if (new Set(from).size !== from.length) problem(["impact", "callers", "from"], "lists a source twice");
    if (from.includes("header") && !c.header) problem(["impact", "callers", "header"], "is required when from lists header");
    callers = { from, topK: c.topK ?? DEFAULT_CALLERS.topK, ...(c.header ? { header: c.header } : {}) };
  }
  return {
    callers,
    identities: i?.identities ?? {},
    tiers: i?.tiers ?? {},
    defaultWeight: i?.defaultWeight ?? DEFAULT_RANK.defaultWeight,
    halfLifeS: i?.halfLifeS ?? DEFAULT_GRAPH_OPTIONS.halfLifeMs / 1000,
    saveEveryS: i?.saveEveryS ?? 60,
    expectedReduction: i?.expectedReduction ?? DEFAULT_PLAN.expectedReduction,
    outageS: i?.outageS ?? DEFAULT_RANK.defaultOutageS,
    prices: { ...DEFAULT_PRICES, ...(i?.prices ?? {}) },
    resources: i?.resources ?? {},
  };
}

/** The filter's `callers` setting (edges.ts) from the resolved one. */
export function filterCallers(c: CallersSetting): Record<string, unknown> {
  return { from: c.from, top_k: c.topK, ...(c.header ? { header: c.header } : {}) };
}
