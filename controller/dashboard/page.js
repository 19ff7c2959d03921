// The dashboard page: one card per component, kept current from the controller's /api/stream
// (Server-Sent Events, one snapshot a second; the browser reconnects by itself). Plain browser
// JavaScript with uPlot for the chart; no build step. Above the cards, a tile for the failure model in
// use (prior or trained, samples, positives, holdout Brier and ECE against the prior's, horizon).
(() => {
  const root = document.getElementById("components");
  const conn = document.getElementById("conn");
  const cards = new Map();
  const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
  const time = (ms) => new Date(ms).toLocaleTimeString();
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    for (const k of kids) e.append(k);
    return e;
  };

  function card(name) {
    const c = el("section", { class: "card", "data-component": name });
    c.innerHTML = `
      <h2><span class="name"></span><span class="phase"></span></h2>
      <div class="message"></div>
      <div class="row">
        <div>
          <div class="stats">
            <div class="stat" data-stat="risk"><b></b><span>risk</span></div>
            <div class="stat" data-stat="probability"><b></b><span>failure probability</span></div>
            <div class="stat" data-stat="shadowRisk"><b></b><span>shadow's own risk</span></div>
            <div class="stat" data-stat="lag"><b></b><span>replication lag</span></div>
            <div class="stat" data-stat="divergence"><b></b><span>mirrored reads diverging</span></div>
            <div class="stat" data-stat="writes"><b></b><span>writes go to</span></div>
            <div class="stat" data-stat="step"><b></b><span>step</span></div>
            <div class="stat" data-stat="cost"><b></b><span>the shadow's cost: mirror, replication, CPU shadow/primary</span></div>
          </div>
          <div class="weights"><div class="p"></div><div class="s"></div></div>
          <div class="chart"></div>
        </div>
        <div>
          <h3>Why: the risk explained</h3>
          <table class="explanation"><thead><tr><th>signal</th><th>state</th><th class="num">value</th><th class="num">expected</th><th>share</th><th>why</th></tr></thead><tbody></tbody></table>
          <h3>Migration timeline</h3>
          <ol class="timeline"></ol>
        </div>
      </div>`;
    c.querySelector(".name").textContent = name;
    root.append(c);
    const chartEl = c.querySelector(".chart");
    const plot = new uPlot({
      width: Math.max(420, chartEl.clientWidth || 600), height: 220,
      scales: { x: { time: true }, r: { range: [0, 1] }, w: { range: [0, 100] } },
      axes: [{}, { scale: "r", label: "risk" }, { scale: "w", side: 1, label: "shadow %", grid: { show: false } }],
      series: [{}, { label: "risk", scale: "r", stroke: "#eb3b5a", width: 2 }, { label: "enter", scale: "r", stroke: "#f7b731", dash: [6, 4] },
        { label: "shadow weight %", scale: "w", stroke: "#8854d0", width: 2 }, { label: "lag s", scale: "r", stroke: "#20bf6b" }],
    }, [[], [], [], [], []], chartEl);
    const entry = { el: c, plot };
    cards.set(name, entry);
    return entry;
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

  function render(state) {
    document.getElementById("clock").textContent = time(state.nowMs);
    renderModel(state.model);
    for (const comp of state.components) {
      const { el: c, plot } = cards.get(comp.name) ?? card(comp.name);
      const s = comp.status;
      const phase = c.querySelector(".phase");
      phase.textContent = s.phase;
      phase.className = `phase ${s.phase}`;
      c.querySelector(".message").textContent = s.blockedReason ?? s.message;
      const stat = (k, v) => { c.querySelector(`[data-stat="${k}"] b`).textContent = v; };
      stat("risk", comp.risk?.noData ? "no data" : fmt(comp.risk?.risk));
      stat("probability", fmt(comp.risk?.probability));
      stat("shadowRisk", comp.shadowRisk === null || comp.shadowRisk === undefined ? "no data" : fmt(comp.shadowRisk));
      const last = comp.history[comp.history.length - 1];
      stat("lag", last?.lagS === null || last === undefined ? "–" : `${fmt(last.lagS)} s`);
      stat("divergence", last?.divergence === null || last === undefined ? "–" : pct(last.divergence));
      stat("writes", s.writeTarget + (s.fenced ? ` (${s.fenced} fenced)` : ""));
      stat("step", s.stepIndex < 0 ? "–" : `${s.stepIndex + 1}/${s.steps.length}`);
      const k = comp.cost, bytes = (b) => (b === null || b === undefined ? "–" : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB/s` : `${(b / 1e3).toFixed(1)} kB/s`);
      stat("cost", k ? `${bytes(k.mirrorBytesPerS)} · ${bytes(k.replicationBytesPerS)} · ${k.shadowCpu === null ? "–" : pct(k.shadowCpu)}/${k.primaryCpu === null ? "–" : pct(k.primaryCpu)}` : "not measured");
      const p = c.querySelector(".weights .p"), sh = c.querySelector(".weights .s");
      p.style.width = `${100 - s.shadowPercent}%`; p.textContent = s.shadowPercent < 100 ? `primary ${100 - s.shadowPercent}%` : "";
      sh.style.width = `${s.shadowPercent}%`; sh.textContent = s.shadowPercent > 0 ? `shadow ${s.shadowPercent}%` : "";
      const h = comp.history;
      plot.setData([h.map((x) => x.t / 1000), h.map((x) => x.risk), h.map(() => comp.thresholds.enter), h.map((x) => x.shadowPercent), h.map((x) => x.lagS)]);
      const tbody = c.querySelector(".explanation tbody");
      tbody.replaceChildren(...(comp.risk?.contributions ?? []).map((x) => el("tr", { "data-signal": x.signal },
        el("td", {}, x.signal), el("td", {}, x.state), el("td", { class: "num" }, fmt(x.value)), el("td", { class: "num" }, fmt(x.expected)),
        el("td", {}, Object.assign(el("span", { class: "share" }), { style: `width:${Math.round(x.share * 80)}px` }), ` ${pct(x.share)}`),
        el("td", { class: "why" }, x.reason ?? ""))));
      const tl = c.querySelector(".timeline");
      tl.replaceChildren(...comp.events.slice().reverse().filter((e) => e.kind !== "blocked").map((e) =>
        el("li", { class: e.severity, "data-kind": e.kind }, el("time", {}, time(e.atMs)), `${e.message}`)));
    }
  }

  const es = new EventSource("/api/stream");
  es.onopen = () => { conn.textContent = "live"; conn.className = "live"; };
  es.onerror = () => { conn.textContent = "reconnecting…"; conn.className = ""; };
  es.onmessage = (m) => render(JSON.parse(m.data));
})();
