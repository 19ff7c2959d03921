// The dashboard page: the overview of every component, the failure model tile, one card per component
// and the proxies view, kept current from the controller's /api/stream (Server-Sent Events, one
// snapshot a second; the browser reconnects by itself). A card: phase, tiles (risk, failure probability
// within the model's horizon, lag, mirrored reads diverged, writes), the weights bar, the step plan, the
// chart (uPlot: risk and the enter threshold on 0-1, the shadow weight in %, the lag on its own axis in
// seconds; the coarse history then the fine), each side's rates, the risk explained and the timeline.
// Plain browser JavaScript (an ES module; views.js holds the tables and tiles); no build step.
import { cardId, changed, divergenceText, el, fmt, lagText, pct, probabilityLabel, renderOverview, renderPlan, renderProxies, renderSides, riskClass, riskText, share, stepText, time, writesText } from "./views.js";

const root = document.getElementById("components");
const conn = document.getElementById("conn");
const cards = new Map();
const COLORS = { risk: "#eb3b5a", enter: "#f7b731", weight: "#8854d0", lag: "#20bf6b" };

function chart(node) {
  const size = () => ({ width: Math.max(360, node.clientWidth || 600), height: 230 });
  const axis = (stroke) => ({ stroke, grid: { show: false }, ticks: { stroke: "#dde2e7" } });
  const plot = new uPlot({
    ...size(),
    // No drag-to-zoom: the data is replaced every second (the range buttons choose the window).
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, r: { range: [0, 1] }, w: { range: [0, 100] }, lag: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.15)] } },
    axes: [
      { grid: { stroke: "#eef1f4" } },
      { scale: "r", label: "risk", stroke: COLORS.risk, grid: { stroke: "#eef1f4" }, size: 44 },
      { ...axis(COLORS.weight), scale: "w", side: 1, label: "shadow %", size: 44 },
      { ...axis(COLORS.lag), scale: "lag", side: 1, label: "lag (s)", size: 48, values: (_u, vals) => vals.map((v) => (v >= 10 ? v.toFixed(0) : +v.toFixed(2))) },
    ],
    // Drawn in this order: the risk last, on top.
    series: [{},
      { label: "lag s", scale: "lag", stroke: COLORS.lag, width: 1.5 },
      { label: "shadow weight %", scale: "w", stroke: COLORS.weight, width: 2 },
      { label: "enter", scale: "r", stroke: COLORS.enter, dash: [6, 4] },
      { label: "risk", scale: "r", stroke: COLORS.risk, width: 2 }],
  }, [[], [], [], [], []], node);
  new ResizeObserver(() => { const s = size(); if (Math.abs(s.width - plot.width) > 4) plot.setSize(s); }).observe(node);
  return plot;
}

function card(name) {
  const c = el("section", { class: "card", "data-component": name, id: cardId(name) });
  c.innerHTML = `
    <h2><span class="name"></span><span class="phase"></span><a class="top" href="#overview">overview ↑</a></h2>
    <div class="message"></div>
    <div class="row">
      <div class="left">
        <div class="stats">
          <div class="stat" data-stat="risk"><b></b><span>risk</span></div>
          <div class="stat" data-stat="probability"><b></b><span class="label">failure probability</span></div>
          <div class="stat" data-stat="shadowRisk"><b></b><span>shadow's own risk</span></div>
          <div class="stat" data-stat="lag"><b></b><span>replication lag</span></div>
          <div class="stat" data-stat="divergence"><b></b><span>mirrored reads diverged (last min)</span></div>
          <div class="stat" data-stat="writes"><b></b><span>writes go to</span></div>
          <div class="stat" data-stat="step"><b></b><span>step</span></div>
          <div class="stat" data-stat="cost"><b></b><span>the shadow's cost: mirror, replication, CPU shadow/primary</span></div>
        </div>
        <div class="weights"><div class="p"></div><div class="s"></div></div>
        <div class="plan"></div>
        <div class="range"><button data-range="900">15 min</button><button data-range="3600">1 h</button><button data-range="0" class="on">all</button></div>
        <div class="chart"></div>
      </div>
      <div class="right">
        <table class="sides"><caption></caption><thead><tr><th></th><th class="num">primary</th><th class="num">shadow</th></tr></thead><tbody></tbody></table>
        <h3>Migration timeline</h3>
        <ol class="timeline"></ol>
      </div>
    </div>
    <h3>Why: the risk explained</h3>
    <table class="explanation"><thead><tr><th>signal</th><th>data</th><th class="num">score</th><th class="num">value</th><th class="num">expected</th><th>share</th><th>why</th></tr></thead><tbody></tbody></table>`;
  c.querySelector(".name").textContent = name;
  root.append(c);
  const entry = { el: c, plot: chart(c.querySelector(".chart")), rangeS: 0 };
  for (const b of c.querySelectorAll(".range button")) {
    b.addEventListener("click", () => {
      entry.rangeS = Number(b.dataset.range);
      for (const o of c.querySelectorAll(".range button")) o.classList.toggle("on", o === b);
      showRange(entry);
    });
  }
  cards.set(name, entry);
  return entry;
}

/** The chart's x window: the last rangeS seconds of the data (0: all of it, the coarse tier then the fine). */
function showRange(entry) {
  const t = entry.plot.data[0];
  if (!t.length) return;
  const last = t[t.length - 1];
  entry.plot.setScale("x", entry.rangeS ? { min: last - entry.rangeS, max: last } : { min: t[0], max: last });
}

/** HA mode: which replica this page talks to, whether it leads, who does, and a missing quorum. */
function renderHa(h) {
  const el = document.getElementById("ha");
  if (!h) { el.hidden = true; return; }
  el.hidden = false;
  el.className = h.quorum ? h.role : "no-quorum";
  el.textContent = !h.quorum ? `replica ${h.replica}: no etcd quorum: nobody decides, the last routes are served`
    : h.role === "leader" ? `replica ${h.replica}: leader` : `replica ${h.replica}: follower (${h.leader ?? "no"} leader)`;
}

function renderModel(m) {
  const tile = document.getElementById("model");
  if (!m) { tile.hidden = true; return; }
  tile.hidden = false;
  const set = (k, v) => { tile.querySelector(`[data-model="${k}"] b`).textContent = v; };
  set("source", m.source);
  tile.querySelector('[data-model="source"] b').className = m.source === "trained" ? "trained" : "";
  set("samples", String(m.samples ?? 0));
  set("positives", String(m.positives ?? 0));
  const vs = (v, prior) => (v === null || v === undefined ? "–" : `${fmt(v, 4)}${m.source === "trained" && prior !== undefined && prior !== null ? ` (prior ${fmt(prior, 4)})` : ""}`);
  set("brier", vs(m.brier, m.priorBrier));
  set("ece", vs(m.ece, m.priorEce));
  set("horizon", `${Math.round(m.horizonS)} s`);
  tile.querySelector(".why").textContent = m.reason;
}

function renderCard(comp, horizonS) {
  const entry = cards.get(comp.name) ?? card(comp.name);
  const { el: c, plot } = entry;
  const s = comp.status;
  const phase = c.querySelector(".phase");
  phase.textContent = s.phase;
  phase.className = `phase ${s.phase}`;
  c.querySelector(".message").textContent = s.blockedReason ?? s.message;
  const stat = (k, v, cls = "") => { const b = c.querySelector(`[data-stat="${k}"] b`); b.textContent = v; b.className = cls; };
  stat("risk", riskText(comp.risk), riskClass(comp.risk?.risk, comp.thresholds));
  stat("probability", comp.risk?.noData ? "no data" : pct(comp.risk?.probability));
  c.querySelector('[data-stat="probability"] .label').textContent = probabilityLabel(horizonS);
  stat("shadowRisk", comp.shadowRisk === null || comp.shadowRisk === undefined ? "no data" : fmt(comp.shadowRisk), riskClass(comp.shadowRisk, comp.thresholds));
  stat("lag", lagText(comp.lagS));
  stat("divergence", divergenceText(comp.consistency), !comp.consistency ? "none" : comp.consistency.diverged ? "warm" : "");
  stat("writes", writesText(s));
  stat("step", stepText(s));
  const k = comp.cost, bytes = (b) => (b === null || b === undefined ? "–" : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB/s` : `${(b / 1e3).toFixed(1)} kB/s`);
  stat("cost", k ? `${bytes(k.mirrorBytesPerS)} · ${bytes(k.replicationBytesPerS)} · ${k.shadowCpu === null ? "–" : pct(k.shadowCpu)}/${k.primaryCpu === null ? "–" : pct(k.primaryCpu)}` : "not measured");
  const p = c.querySelector(".weights .p"), sh = c.querySelector(".weights .s");
  p.style.width = `${100 - s.shadowPercent}%`; p.textContent = s.shadowPercent < 100 ? `primary ${100 - s.shadowPercent}%` : "";
  sh.style.width = `${s.shadowPercent}%`; sh.textContent = s.shadowPercent > 0 ? `shadow ${s.shadowPercent}%` : "";
  renderPlan(c.querySelector(".plan"), comp);
  renderSides(c.querySelector(".sides"), comp.sides);

  const h = comp.history;
  plot.setData([h.t.map((t) => t / 1000), h.lagS, h.shadowPercent, h.t.map(() => comp.thresholds.enter), h.risk]);
  if (entry.rangeS) showRange(entry);

  const tbody = c.querySelector(".explanation tbody");
  const contributions = comp.risk?.contributions ?? [];
  if (changed(tbody, contributions)) {
    tbody.replaceChildren(...contributions.map((x) => el("tr", { "data-signal": x.signal },
      el("td", {}, x.signal), el("td", { class: `data ${x.data}` }, x.data),
      el("td", { class: `num score ${x.score >= 0.5 ? "hot" : x.score >= 0.2 ? "warm" : ""}` }, fmt(x.score)),
      el("td", { class: "num" }, fmt(x.value)), el("td", { class: "num" }, fmt(x.expected)),
      el("td", { class: "nowrap" }, Object.assign(el("span", { class: "share" }), { style: `width:${Math.round(x.share * 60)}px` }), ` ${share(x.share)}`),
      el("td", { class: "why" }, x.reason ?? ""))));
  }
  const tl = c.querySelector(".timeline");
  const events = comp.events.filter((e) => e.kind !== "blocked");
  if (changed(tl, events)) {
    tl.replaceChildren(...events.slice().reverse().map((e) =>
      el("li", { class: e.severity, "data-kind": e.kind }, el("time", {}, time(e.atMs)), `${e.message}`)));
  }
}

function render(state) {
  document.getElementById("clock").textContent = time(state.nowMs);
  renderOverview(document.getElementById("overview"), state);
  renderModel(state.model);
  renderHa(state.ha);
  for (const comp of state.components) renderCard(comp, state.horizonS);
  renderProxies(document.getElementById("proxies"), state.proxies);
}

const es = new EventSource("/api/stream");
es.onopen = () => { conn.textContent = "live"; conn.className = "live"; };
es.onerror = () => { conn.textContent = "reconnecting…"; conn.className = ""; };
es.onmessage = (m) => render(JSON.parse(m.data));
