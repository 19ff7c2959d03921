// The `shadowmesh` command: `controller --config FILE` runs the controller (one line on stdout when it
// is ready); `lint FILE...` checks configurations, policies, bootstraps and manifests offline; status
// (--watch), wait, proxy-status, watch, pause, resume, approve, promote (one step, as Argo Rollouts';
// --full skips to the end), abort and rollback, set-policy, `incident mark`, model, impact and
// `plan --budget` talk to its API.
// Tables for people, `-o json|yaml` for scripts, `-o wide` for more columns. The API address and token
// come from --address/--token or SHADOWMESH_ADDRESS and SHADOWMESH_TOKEN; a TLS API takes --ca (and
// --cert/--key for mTLS) or SHADOWMESH_CA, _CERT, _KEY. Errors go to stderr with the reason and exit
// non-zero; a file error names the file. `--version`; `completion bash` prints a completion script.
import { readFileSync } from "node:fs";
import { Command } from "commander";
import * as grpc from "@grpc/grpc-js";
import { loadConfig, ConfigError, fsReason } from "./config.js";
import { authMetadata, controllerClient, type ControllerClient } from "./api/service.js";
import { durationMs, PolicyError } from "./migration/policy.js";
import { BUILD } from "./build-info.js";
import { PHASES } from "./migration/status.js";
import { formatComponent, formatComponents, formatImpact, formatModel, formatPlan, formatProxies, parseOutput, structured, time, type Output } from "./cli-format.js";

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "90s", "5m", "500ms", "1h" in ms, or an error naming the option. */
export function parseDuration(option: string, v: string): number {
  const ms = durationMs(v);
  if (ms === null) throw new Error(`${option}: expected a duration like 30s, 5m or 500ms, got ${JSON.stringify(v)}`);
  return Math.round(ms);
}

/** `--for phase=Migrated` (or phase=A|B): the phases that end the wait. */
export function parseWaitFor(v: string): Set<string> {
  const m = /^phase=([A-Za-z|]+)$/.exec(v.trim());
  if (!m) throw new Error(`--for: expected phase=PHASE (e.g. phase=Migrated, phase=Healthy|Migrated), got ${JSON.stringify(v)}`);
  const phases = m[1]!.split("|");
  const known: readonly string[] = PHASES;
  for (const p of phases) if (!known.includes(p)) throw new Error(`--for: ${p} is not a phase (${known.join(", ")})`);
  return new Set(phases);
}

/** A bash completion script for the program's commands and their options. */
export function bashCompletion(program: Command): string {
  const cmds = program.commands.map((c) => c.name());
  const cases = program.commands.map((c) => {
    const words = [...c.commands.map((s) => s.name()), ...c.options.map((o) => o.long ?? o.short ?? "")].filter(Boolean);
    return `    ${c.name()}) opts="${words.join(" ")}" ;;`;
  });
  return `# shadowmesh bash completion: source <(shadowmesh completion bash)
_shadowmesh() {
  local cur=\${COMP_WORDS[COMP_CWORD]} opts
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=( $(compgen -W "${cmds.join(" ")} --version --help" -- "$cur") ); return; fi
  case "\${COMP_WORDS[1]}" in
${cases.join("\n")}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* || "\${COMP_WORDS[1]}" == lint || "\${COMP_WORDS[1]}" == set-policy ]]; then COMPREPLY=( $(compgen -W "$opts" -- "$cur") $(compgen -f -- "$cur") ); else COMPREPLY=( $(compgen -W "$opts" -- "$cur") ); fi
}
complete -F _shadowmesh shadowmesh
`;
}

export function buildCli(): Command {
  const program = new Command("shadowmesh").description("moves traffic off a critical component before it fails")
    .version(`shadowmesh ${BUILD.version} (revision ${BUILD.revision}, node ${process.version})`, "--version", "print the version");
  const api = (cmd: Command) => cmd.option("--address <host:port>", "controller API address", process.env.SHADOWMESH_ADDRESS ?? "127.0.0.1:18002")
    .option("--token <token>", "bearer token (default $SHADOWMESH_TOKEN)")
    .option("--ca <file>", "CA certificate of a TLS API (default $SHADOWMESH_CA)")
    .option("--cert <file>", "client certificate for mTLS (default $SHADOWMESH_CERT)")
    .option("--key <file>", "client certificate's key (default $SHADOWMESH_KEY)");
  const output = (cmd: Command) => cmd.option("-o, --output <format>", "table, wide, json or yaml", "table");
  /** Runs fn with a client, prints errors and closes the client. */
  const withClient = async (o: Opts, fn: (c: ControllerClient) => Promise<void>) => {
    let c: ControllerClient;
    try { c = client(o); } catch (e) { die(e); }
    try { await fn(c); } catch (e) { die(e); } finally { c.close(); }
  };
  const outputOf = (o: { output: string }): Output => { try { return parseOutput(o.output); } catch (e) { die(e); } };

  program.command("controller").description("run the controller").requiredOption("--config <file>", "controller configuration (YAML)")
    .action(async (o: { config: string }) => {
      try {
        const cfg = loadConfig(o.config);
        // Loaded here, not at the top: the controller's modules take most of a second or two to load,
        // which every client command (status, wait, lint) would otherwise pay.
        const { startController } = await import("./main.js");
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

  program.command("lint <files...>").description("check controller configurations, policies, Envoy bootstraps and Kubernetes/Istio manifests offline")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (files: string[], o: { output: string }) => {
      const { lintFile } = await import("./lint.js"); // its validators (Kubernetes, Envoy) load only for lint
      const results = files.map((f) => lintFile(f));
      if (o.output === "json") console.log(JSON.stringify(results, null, 2));
      else for (const r of results) {
        if (r.skipped) console.log(`${r.file}: skipped (${r.skipped})`);
        else if (r.problems.length === 0) console.log(`${r.file}: ok (${r.kind})${r.notes?.length ? `; ${r.notes.join("; ")}` : ""}`);
        else for (const p of r.problems) console.log(p.startsWith(r.file) ? p : `${r.file}: ${p}`);
      }
      if (results.some((r) => r.problems.length > 0)) process.exit(1);
    });

  output(api(program.command("status [component]").description("components: phase, step, weights, risk, lag; one component in detail")))
    .option("-w, --watch", "print again every --interval until interrupted")
    .option("--interval <duration>", "with --watch: how often", "2s")
    .action(async (name: string | undefined, o: Opts & { output: string; watch?: boolean; interval: string }) => {
      const out = outputOf(o);
      let every = 0;
      try { every = parseDuration("--interval", o.interval); } catch (e) { die(e); }
      await withClient(o, async (c) => {
        for (;;) {
          const msg = name ? await unary(c, "getComponent", { name }) : await unary<{ components: unknown[] }>(c, "listComponents", {});
          const text = structured(out, msg) ?? (name ? formatComponent(msg) : formatComponents((msg as { components: unknown[] }).components, out === "wide"));
          if (o.watch && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
          console.log(text);
          if (!o.watch) return;
          await sleep(every);
        }
      });
    });

  api(program.command("wait <component>").description("wait until the component reaches a phase (exit 0), or time out (exit 1)"))
    .requiredOption("--for <condition>", "phase=PHASE, or phase=A|B")
    .option("--timeout <duration>", "give up after this long", "5m")
    .action(async (component: string, o: Opts & { for: string; timeout: string }) => {
      let want: Set<string>, timeoutMs: number;
      try { want = parseWaitFor(o.for); timeoutMs = parseDuration("--timeout", o.timeout); } catch (e) { die(e); }
      await withClient(o, async (c) => {
        const until = Date.now() + timeoutMs;
        let last: { phase: string; message: string } | null = null;
        for (;;) {
          last = await unary<{ phase: string; message: string; blockedReason: string }>(c, "getComponent", { name: component });
          if (want.has(last.phase)) { console.log(`${component}: phase ${last.phase}`); return; }
          if (Date.now() >= until) break;
          await sleep(Math.min(500, Math.max(0, until - Date.now())));
        }
        process.stderr.write(`shadowmesh: timed out after ${o.timeout} waiting for ${component} to reach ${o.for}: phase ${last.phase}: ${last.message}\n`);
        c.close();
        process.exit(1);
      });
    });

  output(api(program.command("proxy-status").description("every proxy connected over xDS: per resource type the version sent, the one ACKed, NACKs with their error")))
    .action(async (o: Opts & { output: string }) => {
      const out = outputOf(o);
      await withClient(o, async (c) => {
        const r = await unary<{ proxies: unknown[] }>(c, "listProxies", {});
        console.log(structured(out, r) ?? (r.proxies.length ? formatProxies(r.proxies, out === "wide") : "no proxy is connected"));
      });
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

  // Verbs as Argo Rollouts means them: promote = the next step (--full: all of them), abort = back to the primary.
  for (const [verb, method, what] of [
    ["pause", "pause", "stop the migration where it is"], ["resume", "resume", "continue a paused migration"],
    ["approve", "approve", "approve the next gate (first step, or 100% and promotion)"],
    ["promote", "promote", "start a migration now, or advance to the next step (--full: skip to the final step)"],
    ["abort", "rollback", "return traffic to the primary (Argo Rollouts' abort; same as rollback)"],
    ["rollback", "rollback", "return traffic to the primary"],
  ] as const) {
    const cmd = api(program.command(`${verb} <component>`).description(what).option("--reason <text>", "recorded with the decision"));
    if (verb === "promote") cmd.option("--full", "skip every remaining step to the final one (its bake and verification still apply)");
    cmd.action(async (component: string, o: Opts & { reason?: string; full?: boolean }) => {
      await withClient(o, async (c) => {
        const r = await unary<{ message: string; phase: string }>(c, method, { component, reason: o.reason ?? "", ...(verb === "promote" && !o.full ? { nextStep: true } : {}) });
        console.log(`${component}: ${r.message} (phase ${r.phase})`);
      });
    });
  }

  api(program.command("set-policy <component>").description("replace the component's migration policy with the one a policy file (its format: defaults, components) gives it"))
    .requiredOption("-f, --file <file>", "the policy document (YAML)")
    .action(async (component: string, o: Opts & { file: string }) => {
      let text = "";
      try { text = readOption("--file", o.file).toString("utf8"); } catch (e) { die(e); }
      await withClient(o, async (c) => { console.log((await unary<{ message: string }>(c, "setPolicy", { component, policyYaml: text })).message); });
    });

  const incident = program.command("incident").description("failures an operator saw, for the failure model");
  api(incident.command("mark <component>").description("record that COMPONENT failed at TIME (labels the failure model's history; it retrains at once)")
    .requiredOption("--at <time>", "when it failed: RFC 3339 (2026-11-30T14:05:00Z), relative (-15m, -2h) or now")
    .option("--note <text>", "what happened (recorded with the incident)"))
    .action(async (component: string, o: Opts & { at: string; note?: string }) => {
      let when: { atUnixMs: number } | { agoMs: number };
      try { when = parseIncidentTime(o.at, Date.now()); } catch (e) { die(e); }
      await withClient(o, async (c) => { console.log((await unary<{ message: string }>(c, "markIncident", { component, ...when, note: o.note ?? "" })).message); });
    });

  output(api(program.command("model").description("the failure model in use: prior or trained, its holdout Brier score and calibration error, its weights")))
    .action(async (o: Opts & { output: string }) => {
      const out = outputOf(o);
      await withClient(o, async (c) => { const m = await unary(c, "getModel", {}); console.log(structured(out, m) ?? formatModel(m)); });
    });

  output(api(program.command("impact").description("the service graph from the proxies' traffic: each component ranked by what its failure would cost, with the reasons (-o wide: the edges)")))
    .action(async (o: Opts & { output: string }) => {
      const out = outputOf(o);
      await withClient(o, async (c) => { const m = await unary(c, "getImpact", {}); console.log(structured(out, m) ?? formatImpact(m, out === "wide")); });
    });

  output(api(program.command("plan").description("which components to shadow within a monthly budget: each one's sized shadow, its cost and the failed requests it avoids")
    .requiredOption("--budget <amount>", "currency a month (prices: the controller's impact.prices)")))
    .action(async (o: Opts & { output: string; budget: string }) => {
      const out = outputOf(o);
      const budget = Number(o.budget);
      if (!/^\d+(\.\d+)?$/.test(o.budget) || !Number.isFinite(budget)) die(new Error(`--budget: expected an amount a month (0 or more, e.g. 250), got ${JSON.stringify(o.budget)}`));
      await withClient(o, async (c) => { const p = await unary(c, "planShadows", { budget }); console.log(structured(out, p) ?? formatPlan(p, out === "wide")); });
    });

  program.command("completion <shell>").description("print a shell completion script (bash): source <(shadowmesh completion bash)")
    .action((shell: string) => {
      if (shell !== "bash") die(new Error(`completion: ${JSON.stringify(shell)} is not supported (bash)`));
      process.stdout.write(bashCompletion(program));
    });
  return program;
}
