// One downstream HTTP/1.1 request through the data plane, in Envoy's order: request headers through
// the HTTP filter chain (the Wasm filters, in order), route selection (virtual host by :authority,
// first matching route; the route cache is consulted after the filters so a routing header set by a
// filter is honoured, as Envoy clears the route cache on a header change), the upstream request on a
// keep-alive pool with the body streamed through the filters (a filter may pause the request headers
// and continue or answer them later), the response back through the filters in reverse, the route
// timeout, and Envoy's local replies and response flags for what went wrong.
import http from "node:http";
import { randomUUID } from "node:crypto";
import { HeaderMap } from "../host/headers.js";
import { StreamType } from "../host/abi.js";
import type { HttpStream } from "../host/stream.js";
import type { PluginHost } from "../host/plugin.js";
import { routeCluster, selectRoute, selectVirtualHost, type RouteConfigModel } from "./resources.js";
import { HOP_BY_HOP, toNodeHeaders, type Upstreams } from "./upstreams.js";

/** Envoy's response flags (StreamInfo::ResponseFlag bit values), reported as `response.flags`. */
export const RESPONSE_FLAGS = {
  NoHealthyUpstream: 0x2, UpstreamRequestTimeout: 0x4, LocalReset: 0x8, UpstreamRemoteReset: 0x10,
  UpstreamConnectionFailure: 0x20, UpstreamConnectionTermination: 0x40, NoRouteFound: 0x100,
  DownstreamConnectionTermination: 0x4000, NoFilterConfigFound: 0x200000, NoClusterFound: 0x1000000,
} as const;

export interface ProxyContext {
  routes(name: string): RouteConfigModel | undefined;
  plugin(filterName: string): PluginHost | undefined;
  upstreams: Upstreams;
  /** Counters the data plane reports. */
  stats: ProxyStats;
  /** Picks a weighted cluster: a uniform number in [0, 1). */
  random(): number;
}

export interface ProxyStats { requests: number; localReplies: Record<string, number>; upstreamRequests: number; responses: Record<string, number> }

export interface ListenerRuntime { routeConfigName: string; wasmFilters: string[] }

const CLIENT_HEADER_BLOCKLIST = new Set(["host", ...HOP_BY_HOP]);

/** Runs one request to completion (or abandonment); the streams complete when the downstream response ends or closes. */
export function proxyRequest(ctx: ProxyContext, l: ListenerRuntime, req: http.IncomingMessage, res: http.ServerResponse): void {
  ctx.stats.requests++;
  const pairs: [string, string][] = [
    [":authority", req.headers.host ?? ""], [":path", req.url ?? "/"], [":method", req.method ?? "GET"], [":scheme", "http"],
  ];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i]!.toLowerCase();
    if (!CLIENT_HEADER_BLOCKLIST.has(k)) pairs.push([k, req.rawHeaders[i + 1]!]);
  }
  const headers = new HeaderMap(pairs);
  if (!headers.get("x-request-id")) headers.set("x-request-id", randomUUID());
  headers.set("x-forwarded-proto", "http");
  const te = req.headers["transfer-encoding"];
  const requestHasBody = te !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");

  const streams: HttpStream[] = [];
  let flags = 0;
  let finished = false;
  let responseStarted = false;
  let upstream: http.ClientRequest | undefined;
  let timer: NodeJS.Timeout | undefined;

  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    for (const s of streams) { if (flags) s.setProperty("response.flags", BigInt(flags)); s.complete(); }
  };
  res.on("close", () => {
    if (!res.writableFinished) { flags |= RESPONSE_FLAGS.DownstreamConnectionTermination; upstream?.destroy(); }
    finish();
  });

  /** Drains what a direction released (the host keeps forwarded chunks; the proxy takes them). */
  const released = (chunks: Uint8Array[]): Buffer | null => {
    if (chunks.length === 0) return null;
    const out = chunks.length === 1 ? Buffer.from(chunks[0]!.buffer, chunks[0]!.byteOffset, chunks[0]!.byteLength) : Buffer.concat(chunks);
    chunks.length = 0;
    return out;
  };

  /** The response through the filters that saw the request (last first), then to the client. */
  const respond = (status: number, hdrs: [string, string][], body: Buffer | null, through: HttpStream[]) => {
    if (responseStarted || finished) return;
    responseStarted = true;
    const map = new HeaderMap([[":status", String(status)], ...hdrs]);
    for (let i = through.length - 1; i >= 0; i--) {
      through[i]!.sendResponseHeaders(map, body === null || body.length === 0);
    }
    let out = body;
    if (body && body.length > 0) {
      for (let i = through.length - 1; i >= 0; i--) {
        const s = through[i]!;
        s.sendResponseBody(out ?? new Uint8Array(0), true);
        out = released(s.forwardedResponseBody) ?? Buffer.alloc(0);
      }
    }
    writeHead(map);
    res.end(out ?? undefined);
  };
  const writeHead = (map: HeaderMap) => { res.writeHead(Number(map.get(":status") ?? 502), toNodeHeaders(map)); };
  const localReply = (status: number, details: string, flag: number, bodyText: string) => {
    flags |= flag;
    ctx.stats.localReplies[details] = (ctx.stats.localReplies[details] ?? 0) + 1;
    respond(status, [["content-type", "text/plain"]], Buffer.from(bodyText), streams);
  };

  /** A filter's local response, through the filters before it (the newest stream is the one that answered). */
  const answerLocally = (s: HttpStream) => {
    const lr = s.localResponse!;
    const hdrs: [string, string][] = [];
    lr.headers.forEach((k, v) => hdrs.push([k, v]));
    respond(lr.status, hdrs, Buffer.from(lr.body), streams.slice(0, streams.indexOf(s)));
    finish();
  };

  // ---- request headers through the filter chain, from filter `from` on. A filter that pauses them
  // (returns Pause) holds the request, and its body, until it continues the stream (the chain goes
  // on from the next filter) or answers it with a local response, as Envoy's decodeHeaders
  // StopIteration does. Both are deferred: they arrive inside the module's own host call.
  const runFilters = (from: number): void => {
    for (let i = from; i < l.wasmFilters.length; i++) {
      const name = l.wasmFilters[i]!;
      const plugin = ctx.plugin(name);
      if (!plugin) {
        localReply(500, "filter_config_not_found", RESPONSE_FLAGS.NoFilterConfigFound, `filter config ${name} not found`);
        return;
      }
      const s = plugin.newHttpStream();
      streams.push(s);
      // Envoy's source.address attribute: the downstream peer as ip:port (IPv6 in brackets).
      const ra = req.socket.remoteAddress;
      if (ra) s.setProperty("source.address", ra.includes(":") ? `[${ra}]:${req.socket.remotePort}` : `${ra}:${req.socket.remotePort}`);
      s.sendRequestHeaders(headers, !requestHasBody);
      if (s.localResponse) { answerLocally(s); return; }
      if (s.requestPaused) {
        // The first of a continue and a local response settles the request; later ones change nothing.
        const settle = (then: () => void) => {
          s.onResume = undefined; s.onLocalResponse = undefined;
          queueMicrotask(() => { if (!finished && !responseStarted) then(); });
        };
        s.onResume = (type) => { if (type === StreamType.HttpRequest) settle(() => runFilters(i + 1)); };
        s.onLocalResponse = () => settle(() => answerLocally(s));
        return;
      }
    }
    forward();
  };

  // ---- route (after the filters: they may have set the routing header)
  const forward = (): void => {
    const rc = ctx.routes(l.routeConfigName);
    const vh = rc && selectVirtualHost(rc, headers.get(":authority") ?? "");
    const route = vh && selectRoute(vh, headers.get(":path") ?? "/", (n) => headers.get(n));
    if (!route) { localReply(404, "route_not_found", RESPONSE_FLAGS.NoRouteFound, ""); return; }
    const clusterName = routeCluster(route.action, (n) => headers.get(n), ctx.random);
    if (!clusterName || !ctx.upstreams.cluster(clusterName)) {
      localReply(503, "cluster_not_found", RESPONSE_FLAGS.NoClusterFound, "");
      return;
    }
    const ep = ctx.upstreams.pick(clusterName);
    if (!ep) { localReply(503, "no_healthy_upstream", RESPONSE_FLAGS.NoHealthyUpstream, "no healthy upstream"); return; }
    for (const s of streams) s.setProperty("xds.cluster_name", clusterName);

    // ---- upstream request
    ctx.stats.upstreamRequests++;
    const out = toNodeHeaders(headers);
    out.host = headers.get(":authority") ?? "";
    if (route.timeoutMs > 0) {
      timer = setTimeout(() => {
        flags |= RESPONSE_FLAGS.UpstreamRequestTimeout;
        if (!responseStarted) ctx.upstreams.report(clusterName!, ep, "local_origin_error");
        upstream?.destroy();
        if (!responseStarted) localReply(504, "upstream_response_timeout", 0, "upstream request timeout");
        else res.destroy();
      }, route.timeoutMs);
    }
    upstream = http.request({ host: ep.address, port: ep.port, agent: ctx.upstreams.agent(ep), method: headers.get(":method"), path: headers.get(":path"), headers: out });
    upstream.on("error", (e: NodeJS.ErrnoException) => {
      if (finished || flags & RESPONSE_FLAGS.UpstreamRequestTimeout) return;
      if (!responseStarted) {
        ctx.upstreams.report(clusterName!, ep, "local_origin_error");
        const refused = e.code === "ECONNREFUSED" || e.code === "EHOSTUNREACH" || e.code === "ENETUNREACH";
        localReply(503, refused ? "upstream_reset_before_response_started{connection_failure}" : "upstream_reset_before_response_started{remote_reset}",
          refused ? RESPONSE_FLAGS.UpstreamConnectionFailure : RESPONSE_FLAGS.UpstreamRemoteReset,
          `upstream connect error or disconnect/reset before headers. reset reason: ${refused ? "connection failure" : "remote reset"}`);
      } else {
        flags |= RESPONSE_FLAGS.UpstreamRemoteReset;
        res.destroy();
      }
    });
    upstream.on("response", (ur) => {
      if (finished || responseStarted) { ur.resume(); return; }
      responseStarted = true;
      ctx.upstreams.report(clusterName!, ep, ur.statusCode ?? 502);
      ctx.stats.responses[String(ur.statusCode)] = (ctx.stats.responses[String(ur.statusCode)] ?? 0) + 1;
      const map = new HeaderMap([[":status", String(ur.statusCode ?? 502)]]);
      for (let i = 0; i < ur.rawHeaders.length; i += 2) {
        const k = ur.rawHeaders[i]!.toLowerCase();
        if (!HOP_BY_HOP.has(k)) map.set(k, ur.rawHeaders[i + 1]!);
      }
      const noBody = req.method === "HEAD" || ur.statusCode === 204 || ur.statusCode === 304 || ur.headers["content-length"] === "0";
      for (let i = streams.length - 1; i >= 0; i--) streams[i]!.sendResponseHeaders(map, noBody);
      // The filters may change the body length: the client gets it chunked unless nothing can change it.
      if (streams.length > 0) map.remove("content-length");
      writeHead(map);
      if (noBody) { ur.resume(); res.end(); return; }
      const pass = (chunk: Buffer, eos: boolean): Buffer | null => {
        let data: Buffer | null = chunk;
        for (let i = streams.length - 1; i >= 0; i--) {
          const s = streams[i]!;
          s.sendResponseBody(data ?? Buffer.alloc(0), eos);
          data = released(s.forwardedResponseBody);
        }
        return data;
      };
      ur.on("data", (c: Buffer) => { const d = pass(c, false); if (d && d.length) res.write(d); });
      ur.on("end", () => { const d = pass(Buffer.alloc(0), true); res.end(d && d.length ? d : undefined); });
      ur.on("aborted", () => { flags |= RESPONSE_FLAGS.UpstreamConnectionTermination; res.destroy(); });
    });

    // ---- request body, streamed through the filters while the upstream has not answered
    if (!requestHasBody) { upstream.end(); return; }
    const passRequest = (chunk: Buffer, eos: boolean): Buffer | null => {
      if (responseStarted) return chunk; // the upstream answered early: the filters are past the request
      let data: Buffer | null = chunk;
      for (const s of streams) {
        s.sendRequestBody(data ?? Buffer.alloc(0), eos);
        data = released(s.forwardedRequestBody);
      }
      return data;
    };
    req.on("data", (c: Buffer) => { const d = passRequest(c, false); if (d && d.length) upstream!.write(d); });
    req.on("end", () => { const d = passRequest(Buffer.alloc(0), true); upstream!.end(d && d.length ? d : undefined); });
  };

  runFilters(0);
}

