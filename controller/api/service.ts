// The controller's gRPC API (proto/shadowmesh/controller/v1/controller.proto): lists and describes
// components (risk with its explanation, migration state, weights, lag, consistency, last decisions),
// streams events, and takes the operator's commands and policies. Every call is authenticated first:
// a bearer token from the configured list, or a verified client certificate when mTLS is on. The
// author recorded with a command is that authenticated identity (the token's name, or the
// certificate's subject); the client's own `x-shadowmesh-user` header is kept only as an unverified
// "on behalf of". SetPolicy's document is bounded (size, keys and items, depth, aliases) before it is
// parsed: a refusal is RESOURCE_EXHAUSTED naming the limit. MarkIncident records an operator's failure
// for the failure model (authenticated like the commands; the author is recorded with it) and GetModel
// shows the model in use with its holdout calibration. GetImpact and PlanShadows answer the impact
// analysis (api/impact.ts): the service graph, the ranking, and the shadow plan within a budget.
import type { ImpactService } from "../impact/service.js";
import { impactMessage, planMessage } from "./impact.js";
import type { ShadowCost } from "../drivers/cost.js";
import { timingSafeEqual } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { StreamStatus } from "../xds/server.js";
import { proxyView } from "../xds/proxy-status.js";
import type { Logger } from "pino";
import { shadowKey, type Contribution, type RiskEngine } from "../risk/engine.js";
import { UnknownComponent, type MigrationManager } from "../migration/manager.js";
import { parsePolicy, PolicyError } from "../migration/policy.js";
import { sizeProblem, yamlLimit } from "../yaml-config.js";
import type { CommandKind, MigrationEvent } from "../migration/reconcile.js";
import type { ModelInfo } from "../risk/learner.js";

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../proto/shadowmesh/controller/v1/controller.proto");
export const CONTROLLER_SERVICE = "shadowmesh.controller.v1.Controller";

let ctor: grpc.ServiceClientConstructor | null = null;
/** The generated client constructor; its `.service` is the server-side definition. */
function controllerCtor(): grpc.ServiceClientConstructor {
  if (!ctor) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true }));
    ctor = (pkg.shadowmesh as { controller: { v1: { Controller: grpc.ServiceClientConstructor } } }).controller.v1.Controller;
  }
  return ctor;
}
export function controllerDefinition(): grpc.ServiceDefinition { return controllerCtor().service; }

/** A named bearer token: the name is who the token's holder is recorded as. */
export interface ApiToken { name: string; token: string }

export interface ApiAuth {
  /** Accepted bearer tokens; a plain string is named token-N (N its 1-based position). */
  tokens: (ApiToken | string)[];
  /** The server requires and verifies client certificates: a connection is its own credential. */
  mtls: boolean;
}

/** The failure model's side of the API: recording an operator's incident, and the model in use. */
export interface LearningApi {
  nowMs(): number;
  /** Records the failure (durable when it returns). */
  mark(component: string, atMs: number, note: string, by: string): void;
  model(): { info: ModelInfo; historySamples: number; nextRetrainMs: number };
}

/** stateWarnings: what the controller recovered from when it loaded its state (shown in GetComponent). */
/** cost: what a component's shadow costs (drivers/cost.ts); absent: not measured. */
/** The impact analysis (impact/service.ts) with the controller's clock. */
export interface ImpactApi { nowMs(): number; view: ImpactService["view"]; plan: ImpactService["plan"] }

export interface ApiDeps {
  impact?: ImpactApi;
  manager: MigrationManager; engine: RiskEngine; auth: ApiAuth; log: Logger; stateWarnings?: () => readonly string[]; learning?: LearningApi; cost?: (component: string) => ShadowCost | null; proxies?: () => StreamStatus[]; filterFeatures?: (node: string) => readonly string[] | null;
  /**
   * HA: on a follower, the leader's API (a client to it, null when no replica leads or this one
   * does): a command refused because this replica follows is passed on to it, with the caller's own
   * credentials, once (a forwarded call is never forwarded again).
   */
  leaderApi?: () => ControllerClient | null;
  /** This replica's name (HA), sent with a forwarded command. */
  replica?: string;
}

/** Marks a command a follower passed on to the leader (it is never passed on again). */
export const FORWARDED_BY = "x-shadowmesh-forwarded-by";


/** How far ahead of the controller's clock an incident time may be (the operator's clock may run a little ahead). */
export const INCIDENT_FUTURE_SLACK_MS = 5_000;
const MAX_NOTE = 500;

/** The failure model as the API's Model message. */
export function modelMessage(m: { info: ModelInfo; historySamples: number; nextRetrainMs: number }) {
  const i = m.info;
  const opt = (v: number | null) => (v === null ? undefined : v);
  return {
    source: i.source, reason: i.reason, bias: i.bias, weights: Object.entries(i.weights).map(([kind, weight]) => ({ kind, weight })), horizonS: i.horizonS,
    trainedAtUnixMs: opt(i.trainedAtMs), samples: i.samples, positives: i.positives, failures: i.failures, holdoutSamples: i.holdoutSamples, holdoutPositives: i.holdoutPositives,
    brier: opt(i.brier), ece: opt(i.ece), priorBrier: opt(i.priorBrier), priorEce: opt(i.priorEce), trainedBrier: opt(i.trainedBrier), trainedEce: opt(i.trainedEce),
    historySamples: m.historySamples, nextRetrainUnixMs: m.nextRetrainMs,
  };
}

type Call = grpc.ServerUnaryCall<any, any> | grpc.ServerWritableStream<any, any>;

/** A certificate subject as "CN=alice, O=ops" (attributes in the certificate's order). */
export function subjectName(subject: Record<string, string | string[]> | undefined): string {
  if (!subject) return "";
  return Object.entries(subject).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${x}`)).join(", ");
}

/** Who made the call, as authenticated: the token's name or "cert CN=..., O=..."; or the refusal. */
function authenticate(call: Call, auth: ApiAuth): { identity: string } | { error: grpc.ServiceError } {
  if (auth.mtls) {
    const ctx = (call as unknown as { getAuthContext?: () => { sslPeerCertificate?: { subject?: Record<string, string | string[]> } } | null }).getAuthContext?.();
    const cert = ctx?.sslPeerCertificate;
    if (cert) return { identity: `cert ${subjectName(cert.subject) || "(no subject)"}` };
  }
  const header = call.metadata.get("authorization")[0];
  const token = typeof header === "string" && /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, "") : null;
  if (token !== null) {
    const given = Buffer.from(token);
    let found: string | null = null;
    // Every configured token is compared (in constant time each), so the match's position does not show.
    auth.tokens.forEach((t, i) => {
      const { name, token: want } = typeof t === "string" ? { name: `token-${i + 1}`, token: t } : t;
      const w = Buffer.from(want);
      if (w.length === given.length && timingSafeEqual(w, given) && found === null) found = name;
    });
    if (found !== null) return { identity: found };
  }
  const why = header === undefined ? "no credentials: send `authorization: Bearer <token>`" + (auth.mtls ? " or a client certificate" : "") : token === null ? "the authorization metadata is not a bearer token" : "the bearer token is not accepted";
  return { error: Object.assign(new Error(why), { code: grpc.status.UNAUTHENTICATED, details: why, metadata: new grpc.Metadata() }) as grpc.ServiceError };
}

/** The author recorded with a command: the authenticated identity, plus the client's claim labelled unverified. */
export function actorOf(identity: string, metadata: grpc.Metadata): string {
  const claimed = metadata.get("x-shadowmesh-user")[0];
  if (typeof claimed !== "string") return identity;
  const clean = claimed.replace(/[\x00-\x1f\x7f]/g, "").trim().slice(0, 64);
  return clean && clean !== identity ? `${identity} on behalf of ${JSON.stringify(clean)} (unverified)` : identity;
}

function fail(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}

function eventMessage(e: MigrationEvent) {
  return { atUnixMs: e.atMs, component: e.component, kind: e.kind, phase: e.phase, message: e.message, severity: e.severity };
}

const opt = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? undefined : v);

function contribution(x: Contribution) {
  return {
    signal: x.signal, kind: x.kind, state: x.state, value: opt(x.value), expected: opt(x.expected), score: x.score, share: x.share, view: x.view ?? "", exhaustionS: opt(x.exhaustionS),
    reason: x.reason, utilisation: opt(x.utilisation), ...(x.burn ? { burn: x.burn } : {}),
  };
}

function costMessage(c: ShadowCost | null) {
  if (!c) return {};
  return { cost: { mirrorBytesPerS: opt(c.mirrorBytesPerS), replicationBytesPerS: opt(c.replicationBytesPerS), primaryCpu: opt(c.primaryCpu), shadowCpu: opt(c.shadowCpu), primaryRssBytes: opt(c.primaryRssBytes), shadowRssBytes: opt(c.shadowRssBytes) } };
}

export function describeComponent(deps: ApiDeps, name: string) {
  const { status: s, policy, observed } = deps.manager.get(name);
  const risk = deps.engine.get(name);
  const shadow = deps.engine.get(shadowKey(name));
  const c = observed?.window?.consistency;
  return {
    name, phase: s.phase, stepIndex: s.stepIndex, stepCount: policy.steps.length, shadowWeightPercent: s.shadowWeightBp / 100, mirrorFraction: s.mirrorFraction,
    writeTarget: s.writeTarget, fenced: s.fenced ?? "", direction: s.direction,
    risk: risk && !risk.noData ? risk.risk : undefined, failureProbability: risk && !risk.noData ? risk.probability : undefined,
    contributions: (risk?.contributions ?? []).map(contribution),
    shadowRisk: shadow && !shadow.noData ? shadow.risk : undefined,
    shadowContributions: (shadow?.contributions ?? []).map(contribution),
    replicationLagS: opt(observed?.replicaLagS), mirroredCompared: c?.compared ?? 0, mirroredDiverged: c?.diverged ?? 0,
    message: s.message, blockedReason: s.blockedReason ?? "", pausedReason: s.paused?.reason ?? "", lastVerdict: s.lastVerdict?.summary ?? "",
    lastDecisions: deps.manager.events(name, 10).map(eventMessage),
    shadowFit: s.shadowFit ?? false, writesHeld: s.holdWrites ?? "", writesPausedMs: s.pauseWritesMs ?? 0, epoch: s.epoch ?? 1, emergency: s.emergency?.reason ?? "",
    stateWarnings: [...(deps.stateWarnings?.() ?? [])],
    ...costMessage(deps.cost?.(name) ?? null),
  };
}

export function controllerHandlers(deps: ApiDeps): grpc.UntypedServiceImplementation {
  const guard = <Req, Res>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>, identity: string) => Res) =>
    (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      const who = authenticate(call, deps.auth);
      if ("error" in who) return cb(who.error);
      try { cb(null, fn(call.request, call, who.identity)); } catch (e) {
        if ((e as grpc.ServiceError).code !== undefined) return cb(e as grpc.ServiceError);
        if (e instanceof UnknownComponent) return cb(fail(grpc.status.NOT_FOUND, e.message));
        deps.log.error({ err: e }, "controller API call failed");
        cb(fail(grpc.status.INTERNAL, (e as Error).message));
      }
    };
  const needComponent = (name: unknown): string => {
    if (typeof name !== "string" || name === "") throw fail(grpc.status.INVALID_ARGUMENT, "component: required (the component's name)");
    return name;
  };
  const needImpact = (): ImpactApi => {
    if (!deps.impact) throw fail(grpc.status.UNIMPLEMENTED, "this controller runs no impact analysis");
    return deps.impact;
  };
  const needLearning = (): LearningApi => {
    if (!deps.learning) throw fail(grpc.status.UNIMPLEMENTED, "this controller keeps no failure history");
    return deps.learning;
  };
  type CommandReq = { component: string; reason: string; nextStep?: boolean };
  type CommandRes = { message: string; phase: string };
  /**
   * HA: passes a call this follower should not answer itself on to the leader, once (the forwarded-by
   * header stops a second hop), with the caller's own credentials. False: not passed on (it leads, or
   * no leader is known, or the call was already passed on).
   */
  const toLeader = <Q, R>(method: string, req: Q, metadata: grpc.Metadata, cb: grpc.sendUnaryData<R>): boolean => {
    if (!deps.manager.isFollowing || metadata.get(FORWARDED_BY).length > 0) return false;
    const leader = deps.leaderApi?.();
    if (!leader) return false;
    const md = metadata.clone();
    md.set(FORWARDED_BY, deps.replica ?? "a follower");
    (leader[method] as unknown as (q: Q, m: grpc.Metadata, o: grpc.CallOptions, c: (e: grpc.ServiceError | null, r: R) => void) => void)(
      req, md, { deadline: Date.now() + 10_000 }, (e, r) => (e ? cb(e) : cb(null, r)));
    return true;
  };
  /** A guarded call whose handler may pass it on to the leader (toLeader) instead of answering (returns null then). */
  const guardOrForward = <Q, R>(method: string, fn: (req: Q, call: grpc.ServerUnaryCall<Q, R>, identity: string, forward: () => boolean) => R | null) =>
    (call: grpc.ServerUnaryCall<Q, R>, cb: grpc.sendUnaryData<R>) => {
      let forwarded = false;
      const forward = () => (forwarded = toLeader(method, call.request, call.metadata, cb));
      guard<Q, R | null>((req, c, identity) => fn(req, c as unknown as grpc.ServerUnaryCall<Q, R>, identity, forward))(
        call as unknown as grpc.ServerUnaryCall<Q, R | null>, (e, r) => { if (!forwarded) (e ? cb(e) : cb(null, r!)); });
    };
  /**
   * HA: the impact analysis is the leader's (every replica forwards its proxies' reports there; a
   * follower's own graph holds only its own proxies): a follower passes the call on.
   */
  const fromLeader = <Q, R>(method: "getImpact" | "planShadows", local: (req: Q) => R) => guardOrForward<Q, R>(method, (req, _c, _id, forward) => (forward() ? null : local(req)));
  const command = (kind: CommandKind) => guardOrForward<CommandReq, CommandRes>(kind, (req, c, identity, forward) => {
    const name = needComponent(req.component);
    const by = actorOf(identity, c.metadata);
    if (req.nextStep && kind !== "promote") throw fail(grpc.status.INVALID_ARGUMENT, `next_step: only Promote takes it, not ${kind}`);
    const r = deps.manager.command(name, { kind, by, ...(req.reason ? { reason: req.reason } : {}), ...(req.nextStep ? { nextStep: true } : {}) });
    if (!r.accepted && forward()) return null;
    if (!r.accepted) throw fail(grpc.status.FAILED_PRECONDITION, `${kind} ${name}: ${r.reason}`);
    return { message: r.reason, phase: deps.manager.get(name).status.phase };
  });
  return {
    ListComponents: guard(() => ({ components: deps.manager.components().map((n) => describeComponent(deps, n)) })),
    GetComponent: guard<{ name: string }, unknown>((req) => describeComponent(deps, needComponent(req.name))),
    WatchEvents: (call: grpc.ServerWritableStream<{ component: string; replay: number }, unknown>) => {
      const who = authenticate(call, deps.auth);
      if ("error" in who) { call.emit("error", who.error); return; }
      const want = call.request.component;
      if (want && !deps.manager.components().includes(want)) { call.emit("error", fail(grpc.status.NOT_FOUND, `unknown component ${JSON.stringify(want)}`)); return; }
      if (call.request.replay) for (const e of deps.manager.events(want || undefined, call.request.replay)) call.write(eventMessage(e));
      const on = (e: MigrationEvent) => { if (!want || e.component === want) call.write(eventMessage(e)); };
      deps.manager.on("event", on);
      const stop = () => deps.manager.off("event", on);
      call.on("cancelled", stop);
      call.on("close", stop);
      call.on("error", stop);
    },
    Pause: command("pause"),
    Resume: command("resume"),
    Approve: command("approve"),
    Promote: command("promote"),
    Rollback: command("rollback"),
    SetPolicy: guard<{ component: string; policyYaml: string }, { message: string }>((req, call, identity) => {
      if (typeof req.policyYaml === "string") {
        // Before anything else reads it: the size alone decides the cheapest refusal.
        const big = sizeProblem(req.policyYaml);
        if (big) throw fail(grpc.status.RESOURCE_EXHAUSTED, `policy_yaml: ${big}`);
      }
      const name = needComponent(req.component);
      deps.manager.get(name);
      if (!req.policyYaml) throw fail(grpc.status.INVALID_ARGUMENT, "policy_yaml: required (a policy document with this component under `components:`)");
      let set;
      try { set = parsePolicy(req.policyYaml, "policy_yaml"); } catch (e) {
        if (yamlLimit(e)) throw fail(grpc.status.RESOURCE_EXHAUSTED, (e as Error).message);
        if (e instanceof PolicyError) throw fail(grpc.status.INVALID_ARGUMENT, e.message);
        // Whatever else parsing a client's document throws is still the document's problem, not ours.
        deps.log.warn({ err: e }, "policy_yaml could not be parsed");
        throw fail(grpc.status.INVALID_ARGUMENT, `policy_yaml: cannot be parsed: ${(e as Error).message}`);
      }
      const p = set.components.get(name);
      if (!p) throw fail(grpc.status.INVALID_ARGUMENT, `policy_yaml: defines ${[...set.components.keys()].join(", ") || "no component"}, not ${name}`);
      deps.manager.setPolicy(name, p, req.policyYaml);
      deps.log.info({ component: name, by: actorOf(identity, call.metadata) }, "policy replaced over the API");
      return { message: `policy of ${name} replaced` };
    }),
    MarkIncident: guard<{ component: string; atUnixMs?: number | null; agoMs?: number | null; note: string }, { message: string; atUnixMs: number }>((req, call, identity) => {
      const learning = needLearning();
      const name = needComponent(req.component);
      deps.manager.get(name);
      const has = (v: number | null | undefined): v is number => v !== null && v !== undefined;
      if (has(req.atUnixMs) && has(req.agoMs)) throw fail(grpc.status.INVALID_ARGUMENT, "at_unix_ms and ago_ms: give one of them, not both");
      if (!has(req.atUnixMs) && !has(req.agoMs)) throw fail(grpc.status.INVALID_ARGUMENT, "at_unix_ms: required (when the component failed), or ago_ms (how long ago)");
      const now = learning.nowMs();
      const at = has(req.atUnixMs) ? req.atUnixMs : now - req.agoMs!;
      if (!Number.isFinite(at) || at <= 0) throw fail(grpc.status.INVALID_ARGUMENT, `at_unix_ms: not a time: ${at}`);
      if (at > now + INCIDENT_FUTURE_SLACK_MS) throw fail(grpc.status.INVALID_ARGUMENT, `at: ${new Date(at).toISOString()} is in the future (the controller's time is ${new Date(now).toISOString()}): an incident is marked after it happened`);
      const note = req.note ?? "";
      if (note.length > MAX_NOTE) throw fail(grpc.status.INVALID_ARGUMENT, `note: at most ${MAX_NOTE} characters, got ${note.length}`);
      const by = actorOf(identity, call.metadata);
      learning.mark(name, Math.min(at, now), note, by);
      deps.log.info({ component: name, atMs: at, by }, "incident marked over the API");
      return { message: `incident of ${name} at ${new Date(Math.min(at, now)).toISOString()} recorded by ${by}; the failure model retrains at the next tick`, atUnixMs: Math.min(at, now) };
    }),
    GetModel: guard(() => modelMessage(needLearning().model())),
    ListProxies: guard(() => {
      if (!deps.proxies) throw fail(grpc.status.UNIMPLEMENTED, "this controller serves no xDS");
      return { proxies: deps.proxies().sort((a, b) => a.node.localeCompare(b.node) || a.id - b.id).map((st) => proxyView(st, deps.filterFeatures?.(st.node) ?? null)) };
    }),
    GetImpact: fromLeader("getImpact", () => impactMessage(needImpact().view(needImpact().nowMs()))),
    PlanShadows: fromLeader<{ budget?: number | null }, ReturnType<typeof planMessage>>("planShadows", (req) => {
      const im = needImpact();
      const b = req.budget ?? 0;
      if (!Number.isFinite(b) || b < 0) throw fail(grpc.status.INVALID_ARGUMENT, `budget: must be a number of currency units a month, 0 or more, got ${b}`);
      return planMessage(im.plan(im.nowMs(), b));
    }),
  };
}

export function addControllerApi(server: grpc.Server, deps: ApiDeps): void {
  server.addService(controllerDefinition(), controllerHandlers(deps));
}

export type ControllerClient = grpc.Client & Record<string, any>;

/** A client that sends the bearer token with every call. */
export function controllerClient(address: string, token: string | null, creds = grpc.credentials.createInsecure()): ControllerClient {
  const Ctor = controllerCtor();
  // Call credentials need a secure channel in gRPC; on an insecure one the token goes per call instead.
  if (token && creds._isSecure()) {
    const callCreds = grpc.credentials.createFromMetadataGenerator((_p, cb) => { const m = new grpc.Metadata(); m.set("authorization", `Bearer ${token}`); cb(null, m); });
    return new Ctor(address, grpc.credentials.combineChannelCredentials(creds, callCreds)) as ControllerClient;
  }
  const client = new Ctor(address, creds) as ControllerClient;
  if (token) (client as { token?: string }).token = token;
  return client;
}

/** Metadata carrying the client's token (for insecure channels, where call credentials are not sent). */
export function authMetadata(client: ControllerClient): grpc.Metadata {
  const m = new grpc.Metadata();
  const t = (client as { token?: string }).token;
  if (t) m.set("authorization", `Bearer ${t}`);
  return m;
}
