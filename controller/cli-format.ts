// How the CLI prints what the API answers: tables for people (`-o wide` adds columns), the API's own
// messages as JSON or YAML for scripts (`-o json|yaml`, the fields as the API names them).
import YAML from "yaml";

export const OUTPUTS = ["table", "wide", "json", "yaml"] as const;
export type Output = (typeof OUTPUTS)[number];

/** The value of -o/--output, or an error naming the choices. */
export function parseOutput(v: string): Output {
  if ((OUTPUTS as readonly string[]).includes(v)) return v as Output;
  throw new Error(`-o/--output: ${JSON.stringify(v)} is not a format (${OUTPUTS.join(", ")})`);
}

/** The API message as JSON or YAML (table and wide: null, the caller formats). */
export function structured(o: Output, msg: unknown): string | null {
  if (o === "json") return JSON.stringify(msg, null, 2);
  if (o === "yaml") return YAML.stringify(msg).trimEnd();
  return null;
}

const pct = (x: number | undefined) => (x === undefined ? "-" : `${(x * 100).toFixed(0)}%`);
export const time = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);

/** Left-aligned columns, widths from the content. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? "").padEnd(w[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

export function formatComponents(list: any[], wide = false): string {
  const head = ["COMPONENT", "PHASE", "STEP", "SHADOW", "WRITES", "RISK", "LAG", "DIVERGED", "STATUS"];
  const extra = ["P(FAIL)", "SHADOW-RISK", "FIT", "EPOCH", "FENCED", "HELD"];
  const opt = (v: number | undefined | null) => (v === undefined || v === null ? "-" : v.toFixed(2));
  return table(wide ? [...head.slice(0, -1), ...extra, head.at(-1)!] : head, list.map((c) => [
    c.name, c.phase, c.stepIndex >= 0 ? `${c.stepIndex + 1}/${c.stepCount}` : "-", `${c.shadowWeightPercent}%`, c.writeTarget,
    c.risk === undefined || c.risk === null ? "no data" : c.risk.toFixed(2), c.replicationLagS === undefined || c.replicationLagS === null ? "-" : `${c.replicationLagS.toFixed(1)}s`,
    `${c.mirroredDiverged}/${c.mirroredCompared}`,
    ...(wide ? [opt(c.failureProbability), opt(c.shadowRisk), c.shadowFit ? "yes" : "no", String(c.epoch ?? 1), c.fenced || "-", c.writesHeld ? "yes" : "no"] : []),
    c.pausedReason || c.blockedReason || c.message,
  ]));
}

/** proxy-status: one row per proxy and resource type (wide: with the snapshot group and the NACKed version). */
/** A proxy's filter features: "-" with no report from it (or from a controller before the field), "none" from an older filter. */
const filterFeatures = (p: any): string => (!p.filterReported ? "-" : (p.filterFeatures ?? []).join(",") || "none");

export function formatProxies(list: any[], wide = false): string {
  const rows = list.flatMap((p) => (p.resources.length ? p.resources : [{ type: "-", sent: "", acked: "", state: "no subscription", nackedVersion: "", error: "" }]).map((r: any) => [
    p.node, ...(wide ? [p.group, p.delta ? "delta" : "sotw", filterFeatures(p)] : []), r.type, r.sent || "-", r.acked || "-", r.state.toUpperCase(), ...(wide ? [r.nackedVersion || "-"] : []), r.error || "",
  ]));
  return table(["PROXY", ...(wide ? ["GROUP", "PROTOCOL", "FILTER FEATURES"] : []), "TYPE", "SENT", "ACKED", "STATE", ...(wide ? ["NACKED"] : []), "LAST ERROR"], rows);
}

export function formatComponent(c: any): string {
  const out = [formatComponents([c]), "", "Risk explanation:"];
  const explain = (list: any[]) => table(["SIGNAL", "KIND", "STATE", "VALUE", "EXPECTED", "SCORE", "SHARE", "VIEW", "WHY"], (list ?? []).map((x: any) => [
    x.signal, x.kind, x.state, x.value === undefined || x.value === null ? "-" : String(+x.value.toFixed(3)), x.expected === undefined || x.expected === null ? "-" : String(+x.expected.toFixed(3)),
    x.score.toFixed(2), pct(x.share), x.view, x.reason ?? "",
  ]));
  out.push(explain(c.contributions));
  if (c.shadowContributions?.length) {
    out.push("", `Shadow's own risk: ${c.shadowRisk === undefined || c.shadowRisk === null ? "no data" : c.shadowRisk.toFixed(2)}`);
    out.push(explain(c.shadowContributions));
  }
  if (c.lastVerdict) out.push("", `Last verification: ${c.lastVerdict}`);
  out.push("", "Last decisions:");
  out.push(table(["TIME", "PHASE", "KIND", "MESSAGE"], (c.lastDecisions ?? []).map((e: any) => [time(e.atUnixMs), e.phase, e.kind, e.message])));
  return out.join("\n");
}

const num4 = (v: number | undefined | null) => (v === undefined || v === null ? "-" : v.toFixed(4));

/** The failure model as text: what is in use and why, its calibration against the prior's, and its weights. */
export function formatModel(m: any): string {
  const out = [
    `Failure model: ${m.source}`, `  ${m.reason}`,
    `Horizon:        ${m.horizonS} s`,
    `Last retrain:   ${m.trainedAtUnixMs === undefined || m.trainedAtUnixMs === null ? "never" : time(m.trainedAtUnixMs)} (next ${time(m.nextRetrainUnixMs)})`,
    `Samples:        ${m.samples} labelled, ${m.positives} positive, ${m.failures} failures recorded (history holds ${m.historySamples})`,
    `Holdout:        ${m.holdoutSamples} samples, ${m.holdoutPositives} positive`,
    table(["", "BRIER", "ECE"], [
      ["in use", num4(m.brier), num4(m.ece)], ["prior", num4(m.priorBrier), num4(m.priorEce)], ["trained", num4(m.trainedBrier), num4(m.trainedEce)],
    ]),
    "",
    table(["KIND", "WEIGHT"], [...(m.weights ?? []).map((w: any) => [w.kind, w.weight.toFixed(2)]), ["(bias)", m.bias.toFixed(2)]]),
  ];
  return out.join("\n");
}


const n1 = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(x >= 10 ? 1 : 2));
const money = (x: number | null | undefined) => (x === null || x === undefined ? "unknown" : x.toFixed(2));

/** `shadowmesh impact`: components by expected failed requests a month, then the graph's edges (wide). */
export function formatImpact(m: any, wide: boolean): string {
  const ranking: any[] = m.ranking ?? [];
  if (!ranking.length) return "no callers recorded yet (the filters report who calls each component once traffic flows)";
  const prot = new Set((m.nodes ?? []).filter((x: any) => x.protected).map((x: any) => x.name));
  const out = [table(["COMPONENT", "SHADOW", "FAILED/S IF DOWN", "WEIGHTED/S", "FAILURES/90D", "EXPECTED FAILED/MONTH"], ranking.map((r) => [
    r.component, prot.has(r.component) ? "yes" : "no", n1(r.failedRps), n1(r.weightedFailedRps), n1(r.hazardPerHour * 2160), n1(r.expectedFailedPerMonth),
  ])), "", ...ranking.map((r) => `${r.explanation}`)];
  if (wide) out.push("", table(["CALLER", "CALLEE", "REQ/S", "ERRORS", "LATENCY MS", "PROPAGATION"], (m.edges ?? []).map((e: any) => [
    e.caller, e.callee, n1(e.rps), `${(100 * e.errorRatio).toFixed(2)}%`, n1(e.meanLatencyMs), e.propagation === null || e.propagation === undefined ? "-" : e.propagation.toFixed(2),
  ])));
  return out.join("\n");
}

/** `shadowmesh plan --budget N`: the verdict per candidate with its sized shadow, cost and benefit. */
export function formatPlan(p: any, wide: boolean): string {
  const rows = (p.candidates ?? []).map((c: any) => [
    c.component, c.verdict, money(c.monthlyCost), n1(c.benefitPerMonth), c.cores === null || c.cores === undefined ? "?" : `${c.cores} cores`, c.memoryGib === null || c.memoryGib === undefined ? "?" : `${c.memoryGib} GiB`,
    ...(wide ? [`${c.scale} (${c.scaleSource})`, c.reason] : []),
  ]);
  const out = [
    table(["COMPONENT", "VERDICT", "COST/MONTH", "FAILED AVOIDED/MONTH", "CPU", "MEMORY", ...(wide ? ["SCALE", "WHY"] : [])], rows),
    "", p.summary,
  ];
  if (p.protected?.length) out.push(`already shadowed: ${p.protected.join(", ")}`);
  const notes = (p.candidates ?? []).flatMap((c: any) => (c.notes ?? []).map((x: string) => `  ${c.component}: ${x}`));
  if (wide && notes.length) out.push("", "sizing notes:", ...notes);
  return out.join("\n");
}
