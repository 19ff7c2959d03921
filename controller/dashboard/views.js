// Parts of the dashboard page that page.js composes: number and text formatting, the overview table of
// every component (each row links to its card), the proxies view (per proxy and xDS resource type the
// version sent, ACKed and NACKed with the error), a component's step plan as chips, and its per-side
// tile (requests a second, error rate and p99 of the primary and the shadow over the last minute).
// Plain browser JavaScript (an ES module served as /assets/views.js); no build step.

export const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
export const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
/** A small share with the precision it needs: 0%, 0.25%, 3.1%, 42%. */
export const share = (v) => (v === null || v === undefined ? "–" : v === 0 ? "0%" : v < 0.01 ? `${(v * 100).toFixed(2)}%` : v < 0.1 ? `${(v * 100).toFixed(1)}%` : `${Math.round(v * 100)}%`);
export const time = (ms) => new Date(ms).toLocaleTimeString();
export const cardId = (name) => `component-${name}`;

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

/** True (and remembers it) when `key` differs from what the node last showed: tables are rebuilt only on change. */
const shown = new WeakMap();
export function changed(node, value) {
  const key = JSON.stringify(value);
  if (shown.get(node) === key) return false;
  shown.set(node, key);
  return true;
}

export function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s >= 7200 && s % 3600 === 0) return `${s / 3600} h`;
  if (s >= 60) return `${Math.round(s / 60)} min`;
  return `${Math.round(s)} s`;
}
const ms = (v) => (v >= 60_000 ? duration(v / 1000) : `${+(v / 1000).toFixed(1)}s`);

/** "failure probability within 15 min", from the failure model's horizon. */
export const probabilityLabel = (horizonS) => (horizonS ? `failure probability within ${duration(horizonS)}` : "failure probability");

/** "0 of 41 (0%)" from the mirrored reads compared over the last minute. */
export const divergenceText = (c) => (!c || !c.compared ? "no mirrored reads yet" : `${c.diverged} of ${c.compared} (${share(c.diverged / c.compared)})`);

export const lagText = (v) => (v === null || v === undefined ? "–" : `${fmt(v, v < 10 ? 2 : 0)} s`);

/** risk against the policy's thresholds: at or over enter is alarming, over leave a warning. */
export const riskClass = (v, t) => (v === null || v === undefined ? "" : v >= t.enter ? "hot" : v > t.leave ? "warm" : "");

/** The write target, and which side is fenced. */
/** Where writes go, and while the writer is switched whether they wait in the proxies (pause) or are refused (hold). */
export const writesText = (s) => s.writeTarget + (s.fenced ? ` (${s.fenced} fenced)` : "")
  + (s.pauseWritesMs > 0 ? ` · waiting in the proxies (up to ${s.pauseWritesMs / 1000} s)` : s.holdWrites ? " · held (503)" : "");
/** A risk value, or that there is no data for it. */
export const riskText = (r) => (r?.noData ? "no data" : fmt(r?.risk));
export function stepText(s) { return s.stepIndex < 0 ? "–" : `${s.stepIndex + 1}/${s.steps.length}`; }

/** The overview: one row per component, linking to its card (rebuilt only when what it shows changed). */
export function renderOverview(section, state) {
  section.querySelector("th[data-col=probability]").textContent = probabilityLabel(state.horizonS);
  const rows = state.components.map((c) => {
    const s = c.status, r = c.risk;
    return { name: c.name, phase: s.phase, step: stepText(s), shadow: `${s.shadowPercent}%`, riskClass: riskClass(r?.risk, c.thresholds),
      risk: riskText(r), probability: r?.noData ? "–" : pct(r?.probability), lag: lagText(c.lagS),
      writes: writesText(s) };
  });
  const tbody = section.querySelector("tbody");
  if (!changed(tbody, rows)) return;
  tbody.replaceChildren(...rows.map((x) => el("tr", { "data-row": x.name },
    el("td", {}, el("a", { href: `#${encodeURIComponent(cardId(x.name))}` }, x.name)),
    el("td", {}, el("span", { class: `phase ${x.phase}` }, x.phase)),
    el("td", { class: "num" }, x.step),
    el("td", { class: "num" }, x.shadow),
    el("td", { class: `num ${x.riskClass}` }, x.risk),
    el("td", { class: "num" }, x.probability),
    el("td", { class: "num" }, x.lag),
    el("td", {}, x.writes))));
}

/** The proxies: one row per proxy and resource type, the proxy named on its first row. */
export function renderProxies(section, proxies) {
  section.hidden = !proxies;
  if (!proxies || !changed(section, proxies)) return;
  section.querySelector(".summary").textContent =
    `${proxies.total} connected · ${proxies.synced} in sync, ${proxies.unsynced} not yet, ${proxies.nacked} with a NACK`;
  section.querySelector(".more").textContent = proxies.more ? `and ${proxies.more} more not listed (the view lists ${proxies.list.length}: those with a problem first, then by name)` : "";
  const tbody = section.querySelector("tbody");
  tbody.replaceChildren(...proxies.list.flatMap((p) => {
    const res = p.resources.length ? p.resources : [{ type: "–", sent: "", acked: "", state: "none", nackedVersion: "", error: "" }];
    return res.map((r, i) => el("tr", { "data-node": p.node, "data-type": r.type, class: i === 0 ? "first" : "" },
      i === 0 ? el("td", { rowspan: String(res.length), class: "node" }, p.node, el("div", { class: "sub" }, `${p.group || "default"} · ${p.delta ? "delta" : "sotw"}${p.blocked ? " · not reading" : ""}`)) : null,
      el("td", {}, r.type),
      el("td", { class: "ver" }, r.sent || "–"),
      el("td", { class: "ver" }, r.acked || "–"),
      el("td", {}, el("span", { class: `state ${r.state}`, "data-state": r.state }, r.state === "none" ? "no subscription" : r.state.toUpperCase())),
      el("td", { class: "err" }, r.error ? `NACK of ${r.nackedVersion || "?"}: ${r.error}` : "")));
  }));
}

/** The step plan: a chip per step (the current one highlighted), then the promotion (fence, drain, promote). */
export function renderPlan(node, comp) {
  const p = comp.plan, phase = comp.status.phase;
  if (!changed(node, [p, phase])) return;
  const reverse = p.direction === "reverse";
  const target = reverse ? "primary" : "shadow";
  const migrated = phase === "Migrated" && !reverse;
  const stepping = ["Shifting", "Restoring", "Failover", "RollingBack"].includes(phase) || (phase === "Paused" && p.stepIndex >= 0);
  const chips = p.steps.map((s, i) => {
    const cls = migrated || (stepping && i < p.stepIndex) || (p.promotion && i <= p.stepIndex) ? "done" : stepping && i === p.stepIndex && !p.promotion ? "current" : "";
    return el("span", { class: `chip ${cls}`, "data-step": String(i), title: `step ${i + 1}: the ${target} gets ${s.weightPercent}% of reads, bake ${ms(s.bakeMs)}` },
      el("b", {}, `${i + 1}`), ` ${target} ${s.weightPercent}%`, el("small", {}, ` bake ${ms(s.bakeMs)}`));
  });
  const stage = p.promotion?.stage;
  const promote = el("span", { class: `chip promote ${p.promotion ? "current" : migrated ? "done" : ""}`, "data-step": "promote",
    title: `fence the ${reverse ? "shadow" : "primary"}, drain (lag to 0), promote the ${target}, switch writes` },
    el("b", {}, "promote"), ` fence → drain → promote${stage ? ` · now: ${stage}` : ""}`);
  node.replaceChildren(el("span", { class: "dir" }, reverse ? "reverse: shadow → primary" : "forward: primary → shadow"), ...chips, promote);
}

/** Each side over the last minute: requests a second, error rate, p99 latency. */
export function renderSides(node, sides) {
  const cell = (s, f) => (s ? f(s) : "no traffic");
  const rows = [
    ["requests/s", (s) => fmt(s.requestsPerS, s.requestsPerS < 10 ? 1 : 0)],
    ["errors", (s) => share(s.errorRate)],
    ["p99", (s) => `${fmt(s.p99Ms, s.p99Ms < 10 ? 1 : 0)} ms`],
  ];
  node.querySelector("caption").textContent = `each side, last ${duration(sides.windowS)}`;
  node.querySelector("tbody").replaceChildren(...rows.map(([label, f]) => el("tr", { "data-metric": label },
    el("th", {}, label), el("td", { class: "num", "data-side": "primary" }, cell(sides.primary, f)), el("td", { class: "num", "data-side": "shadow" }, cell(sides.shadow, f)))));
}
