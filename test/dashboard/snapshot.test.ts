// The dashboard snapshot's proxies view (controller/dashboard/snapshot.ts): at most MAX_PROXIES
// proxies with a count of the rest, those with a NACK or out of sync first so the bound never hides
// one, and the counts of each kind over every proxy.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MAX_PROXIES, snapshot, type DashboardDeps } from "../../controller/dashboard/snapshot.js";
import { DashboardHistory } from "../../controller/dashboard/history.js";
import type { StreamStatus } from "../../controller/xds/server.js";

function stream(id: number, node: string, state: "synced" | "pending" | "nacked"): StreamStatus {
  return {
    id, node, group: "default", delta: false, blocked: false,
    types: {
      LDS: { subscribed: "*", sent: "v2", confirmed: state === "pending" ? "v1" : "v2", ...(state === "nacked" ? { nack: { version: "v2", error: "bad listener", at: 0 } } : {}) },
      CDS: { subscribed: "*", sent: "v2", confirmed: "v2" },
    },
  };
}

test("at most 200 proxies, the problems first, with counts of every kind", () => {
  const streams: StreamStatus[] = [];
  for (let i = 0; i < 300; i++) streams.push(stream(i, `proxy-${String(i).padStart(3, "0")}`, "synced"));
  streams.push(stream(300, "zz-nacked", "nacked"), stream(301, "zz-pending", "pending"));
  const deps = { manager: { components: () => [] }, history: new DashboardHistory(), nowMs: () => 0, proxies: () => streams } as unknown as DashboardDeps;
  const p = snapshot(deps).proxies!;
  assert.is(p.total, 302);
  assert.is(p.list.length, MAX_PROXIES);
  assert.is(p.more, 102);
  assert.equal([p.nacked, p.unsynced, p.synced], [1, 1, 300]);
  assert.equal(p.list.slice(0, 3).map((x) => x.node), ["zz-nacked", "zz-pending", "proxy-000"], "named last, listed first");
  const lds = p.list[0]!.resources.find((r) => r.type === "LDS")!;
  assert.equal([lds.sent, lds.acked, lds.state, lds.nackedVersion, lds.error], ["v2", "v2", "nacked", "v2", "bad listener"]);
  assert.is(snapshot({ ...deps, proxies: undefined } as DashboardDeps).proxies, null, "no xDS: no proxies view");
});

test("the writes tile says where writes go and, while the writer is switched, whether they wait in the proxies or are refused", async () => {
  // views.js is the page's own module (plain browser JavaScript, no DOM needed for its text helpers).
  const views = "../../controller/dashboard/views.js";
  const { writesText } = (await import(views)) as { writesText: (s: Record<string, unknown>) => string };
  assert.is(writesText({ writeTarget: "primary", fenced: null, holdWrites: null, pauseWritesMs: 0 }), "primary");
  assert.is(writesText({ writeTarget: "primary", fenced: "primary", holdWrites: null, pauseWritesMs: 5000 }), "primary (primary fenced) · waiting in the proxies (up to 5 s)");
  assert.is(writesText({ writeTarget: "primary", fenced: null, holdWrites: "the primary is down", pauseWritesMs: 0 }), "primary · held (503)");
  assert.is(writesText({ writeTarget: "primary", fenced: null, holdWrites: "the primary is down", pauseWritesMs: 2500 }), "primary · waiting in the proxies (up to 2.5 s)", "a failover with the pause: they wait first");
  assert.is(writesText({ writeTarget: "shadow", fenced: null }), "shadow", "a status from an older controller (no fields) reads as before");
});

test.run();
