// The `shadowmesh` command: `controller --config FILE` runs the controller (one line on stdout when it
// is ready); status, watch, pause, resume, approve, promote and rollback talk to its API and print
// what a person can read; `incident mark COMPONENT --at TIME` records a failure an operator saw (for the
// failure model) and `model` shows the failure model in use with its calibration. The API address and token come from --address/--token or SHADOWMESH_ADDRESS
// and SHADOWMESH_TOKEN; a TLS API takes --ca (and --cert/--key for mTLS) or SHADOWMESH_CA, _CERT,
// _KEY. Errors go to stderr with the reason and exit non-zero; a file error names the file.
import { readFileSync } from "node:fs";
import { Command } from "commander";
import * as grpc from "@grpc/grpc-js";
import { loadConfig, ConfigError, fsReason } from "./config.js";
import { startController } from "./main.js";
import { authMetadata, controllerClient, type ControllerClient } from "./api/service.js";
import { PolicyError } from "./migration/policy.js";

type Opts = { address: string; token?: string; ca?: string; cert?: string; key?: string };

function readOption(option: string, file: string): Buffer {
  try { return readFileSync(file); } catch (e) { throw new Error(`${option} ${file}: cannot read: ${fsReason(e)}`); }
}

/** Channel credentials: TLS when a CA (or a client certificate) is given, else plaintext. */
export function channelCredentials(o: Pick<Opts, "ca" | "cert" | "key">, env: NodeJS.ProcessEnv = process.env): grpc.ChannelCredentials {
  const ca = o.ca ?? env.SHADOWMESH_CA, cert = o.cert ?? env.SHADOWMESH_CERT, key = o.key ?? env.SHADOWMESH_KEY;
  if (!ca && !cert && !key) return grpc.credentials.createInsecure();
  if (!cert !== !key) throw new Error("--cert and --key go together (the client certificate and its private key)");
  return grpc.credentials.createSsl(ca ? readOption("--ca", ca) : null, key ? readOption("--key", key) : null, cert ? readOption("--cert", cert) : null);
}

function client(o: Opts): ControllerClient {
  const token = o.token ?? process.env.SHADOWMESH_TOKEN ?? null;
  return controllerClient(o.address, token, channelCredentials(o));
}

/** "stat /x/y: no such file or directory (ENOENT)" for a file-system error; the message otherwise. */
export function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException | null;
  if (err && typeof err.code === "string" && /^E[A-Z]+$/.test(err.code) && err.path) return `${err.syscall ? `${err.syscall} ` : ""}${err.path}: ${fsReason(err)}`;
  if (err instanceof Error) return err.message || err.name;
  return String(e);
}

function unary<T>(c: ControllerClient, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) => c[method]!(req, authMetadata(c), { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));
}

function die(e: unknown): never {
  const se = e as grpc.ServiceError | null;
  // Only a gRPC error has a numeric code and details; a file-system error's code is a string (ENOENT).
  const msg = typeof se?.code === "number" && grpc.status[se.code] !== undefined ? `${grpc.status[se.code]}: ${se.details ?? se.message}` : describeError(e);
  process.stderr.write(`shadowmesh: ${msg}\n`);
  process.exit(1);
}

const pct = (x: number | undefined) => (x === undefined ? "-" : `${(x * 100).toFixed(0)}%`);
const time = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);

/** Left-aligned columns, widths from the content. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? "").padEnd(w[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

export function formatComponents(list: any[]): string {
  return table(["COMPONENT", "PHASE", "STEP", "SHADOW", "WRITES", "RISK", "LAG", "DIVERGED", "STATUS"], list.map((c) => [
    c.name, c.phase, c.stepIndex >= 0 ? `${c.stepIndex + 1}/${c.stepCount}` : "-", `${c.shadowWeightPercent}%`, c.writeTarget,
    c.risk === undefined || c.risk === null ? "no data" : c.risk.toFixed(2), c.replicationLagS === undefined || c.replicationLagS === null ? "-" : `${c.replicationLagS.toFixed(1)}s`,
    `${c.mirroredDiverged}/${c.mirroredCompared}`, c.pausedReason || c.blockedReason || c.message,
  ]));
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

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An incident time: "now", a relative "-15m" (ms, s, m, h or d before now: sent as is, so the
 * controller's clock decides) or an RFC 3339 time with its offset. A future time is an error.
 */
export function parseIncidentTime(text: string, nowMs: number): { atUnixMs: number } | { agoMs: number } {
  const t = text.trim();
  if (t === "now") return { agoMs: 0 };
  const rel = /^([+-]?)(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(t);
  if (rel) {
    if (rel[1] !== "-" && Number(rel[2]) > 0) throw new Error(`--at ${t}: in the future; an incident is marked after it happened (write -${rel[2]}${rel[3]} for the past)`);
    return { agoMs: Math.round(Number(rel[2]) * UNITS[rel[3]!]!) };
  }
  const ms = RFC3339.test(t) ? Date.parse(t) : NaN;
  if (!Number.isFinite(ms)) throw new Error(`--at ${JSON.stringify(t)}: expected an RFC 3339 time with its offset (2026-11-30T14:05:00Z) or a relative one (-15m, -2h, now)`);
  if (ms > nowMs + 5_000) throw new Error(`--at ${t}: in the future (now is ${new Date(nowMs).toISOString()}); an incident is marked after it happened`);
  return { atUnixMs: ms };
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

export function buildCli(): Command {
  const program = new Command("shadowmesh").description("moves traffic off a critical component before it fails");
  const api = (cmd: Command) => cmd.option("--address <host:port>", "controller API address", process.env.SHADOWMESH_ADDRESS ?? "127.0.0.1:18002")
    .option("--token <token>", "bearer token (default $SHADOWMESH_TOKEN)")
    .option("--ca <file>", "CA certificate of a TLS API (default $SHADOWMESH_CA)")
    .option("--cert <file>", "client certificate for mTLS (default $SHADOWMESH_CERT)")
    .option("--key <file>", "client certificate's key (default $SHADOWMESH_KEY)");

  program.command("controller").description("run the controller").requiredOption("--config <file>", "controller configuration (YAML)")
    .action(async (o: { config: string }) => {
      try {
        const cfg = loadConfig(o.config);
        const c = await startController(cfg);
        process.stdout.write(`shadowmesh controller ready: xds ${cfg.listen.xds.replace(/:\d+$/, `:${c.ports.xds}`)}, telemetry :${c.ports.telemetry}, api :${c.ports.api}, http :${c.ports.http} (/metrics), components ${c.manager.components().join(", ")}\n`);
        const bye = () => { c.stop().then(() => process.exit(0)); };
        process.once("SIGINT", bye);
        process.once("SIGTERM", bye);
      } catch (e) {
        if (e instanceof ConfigError || e instanceof PolicyError) { process.stderr.write(`shadowmesh: ${e.message}\n`); process.exit(2); }
        die(e);
      }
    });

  api(program.command("status [component]").description("components: phase, step, weights, risk, lag; one component in detail"))
    .action(async (name: string | undefined, o: Opts) => {
      let c: ControllerClient;
      try { c = client(o); } catch (e) { die(e); }
      try {
        if (name) console.log(formatComponent(await unary(c, "getComponent", { name })));
        else console.log(formatComponents((await unary<{ components: unknown[] }>(c, "listComponents", {})).components));
      } catch (e) { die(e); } finally { c.close(); }
    });

  api(program.command("watch [component]").description("stream migration events").option("--replay <n>", "past events to show first", "20"))
    .action((name: string | undefined, o: Opts & { replay: string }) => {
      if (!/^\d+$/.test(o.replay)) die(new Error(`--replay: expected a count of events (0 or more), got ${JSON.stringify(o.replay)}`));
      let c: ControllerClient;
      try { c = client(o); } catch (e) { die(e); }
      const s = c.watchEvents({ component: name ?? "", replay: Number(o.replay) }, authMetadata(c));
      s.on("data", (e: any) => console.log(`${time(e.atUnixMs)}  ${e.component.padEnd(16)} ${e.phase.padEnd(11)} ${e.severity === "info" ? "" : `${e.severity.toUpperCase()} `}${e.message}`));
      s.on("error", (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) die(e); });
      process.once("SIGINT", () => { s.cancel(); c.close(); process.exit(0); });
    });

  for (const [verb, method, what] of [
    ["pause", "pause", "stop the migration where it is"], ["resume", "resume", "continue a paused migration"],
    ["approve", "approve", "approve the next gate (first step, or 100% and promotion)"], ["promote", "promote", "start a migration now, or skip to the final step"],
    ["rollback", "rollback", "return traffic to the primary"],
  ] as const) {
    api(program.command(`${verb} <component>`).description(what).option("--reason <text>", "recorded with the decision"))
      .action(async (component: string, o: Opts & { reason?: string }) => {
        let c: ControllerClient;
        try { c = client(o); } catch (e) { die(e); }
        try {
          const r = await unary<{ message: string; phase: string }>(c, method, { component, reason: o.reason ?? "" });
          console.log(`${component}: ${r.message} (phase ${r.phase})`);
        } catch (e) { die(e); } finally { c.close(); }
      });
  }
  const incident = program.command("incident").description("failures an operator saw, for the failure model");
  api(incident.command("mark <component>").description("record that COMPONENT failed at TIME (labels the failure model's history; it retrains at once)")
    .requiredOption("--at <time>", "when it failed: RFC 3339 (2026-11-30T14:05:00Z), relative (-15m, -2h) or now")
    .option("--note <text>", "what happened (recorded with the incident)"))
    .action(async (component: string, o: Opts & { at: string; note?: string }) => {
      let when: { atUnixMs: number } | { agoMs: number };
      try { when = parseIncidentTime(o.at, Date.now()); } catch (e) { die(e); }
      let c: ControllerClient;
      try { c = client(o); } catch (e) { die(e); }
      try {
        const r = await unary<{ message: string }>(c, "markIncident", { component, ...when, note: o.note ?? "" });
        console.log(r.message);
      } catch (e) { die(e); } finally { c.close(); }
    });

  api(program.command("model").description("the failure model in use: prior or trained, its holdout Brier score and calibration error, its weights"))
    .action(async (o: Opts) => {
      let c: ControllerClient;
      try { c = client(o); } catch (e) { die(e); }
      try { console.log(formatModel(await unary(c, "getModel", {}))); } catch (e) { die(e); } finally { c.close(); }
    });
  return program;
}


