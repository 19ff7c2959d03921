// The impact page (impact.html): draws the service graph in layers (callers left of what they call),
// the ranking with its explanations, and the plan for the budget in the form. Polls /api/impact every
// 5 s; /api/plan?budget=N on submit.
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const n1 = (x) => (x === null || x === undefined ? "-" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(x >= 10 ? 1 : 2));

/** Layer of each node: 0 for those nobody calls, else one more than its deepest caller (cycles cut). */
function layers(nodes, edges) {
  const callers = new Map(nodes.map((n) => [n.name, []]));
  for (const e of edges) if (e.caller !== "other" && callers.has(e.callee)) callers.get(e.callee).push(e.caller);
  const depth = new Map();
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0;
    seen.add(name);
    let d = 0;
    for (const c of callers.get(name) ?? []) d = Math.max(d, visit(c, seen) + 1);
    seen.delete(name);
    depth.set(name, d);
    return d;
  };
  for (const n of nodes) visit(n.name, new Set());
  return depth;
}

function drawGraph(v) {
  const svg = $("#g");
  const nodes = v.nodes, edges = v.edges.filter((e) => e.caller !== "other");
  const depth = layers(nodes, edges);
  const cols = new Map();
  for (const n of nodes) { const d = depth.get(n.name) ?? 0; if (!cols.has(d)) cols.set(d, []); cols.get(d).push(n); }
  const W = Math.max(svg.clientWidth || 900, 400), colW = W / Math.max(1, cols.size), rowH = 54;
  const H = Math.max(120, 30 + rowH * Math.max(...[...cols.values()].map((c) => c.length)));
  svg.setAttribute("height", H);
  const pos = new Map();
  for (const [d, list] of cols) list.forEach((n, i) => pos.set(n.name, { x: colW * d + colW / 2, y: 30 + i * rowH + rowH / 2 }));
  const maxRps = Math.max(1e-9, ...edges.map((e) => e.rps));
  const byName = new Map(v.nodes.map((n) => [n.name, n]));
  const parts = [];
  for (const e of edges) {
    const a = pos.get(e.caller), b = pos.get(e.callee);
    if (!a || !b) continue;
    const w = 1 + 6 * Math.sqrt(e.rps / maxRps), mx = (a.x + b.x) / 2;
    const bad = (byName.get(e.callee)?.errorRatio ?? 0) > 0.01;
    parts.push(`<path class="edge${bad ? " errors" : ""}" data-edge="${esc(e.caller)}>${esc(e.callee)}" stroke-width="${w.toFixed(1)}" d="M${a.x + 55},${a.y} C${mx},${a.y} ${mx},${b.y} ${b.x - 55},${b.y}"><title>${esc(e.caller)} → ${esc(e.callee)}: ${n1(e.rps)} req/s, ${(100 * e.errorRatio).toFixed(2)}% errors${e.propagation === null ? "" : `, propagation ${e.propagation.toFixed(2)}`}</title></path>`);
    parts.push(`<text class="label" x="${mx}" y="${(a.y + b.y) / 2 - 4}">${n1(e.rps)}/s</text>`);
  }
  const prot = new Set(v.protected);
  for (const n of nodes) {
    const p = pos.get(n.name);
    const cls = `node${prot.has(n.name) ? " protected" : ""}${n.isCallee ? "" : " entry"}`;
    parts.push(`<g class="${cls}" data-node="${esc(n.name)}"><rect x="${p.x - 55}" y="${p.y - 15}" width="110" height="30"></rect><text x="${p.x}" y="${p.y}">${esc(n.name.length > 16 ? n.name.slice(0, 15) + "…" : n.name)}</text><title>${esc(n.name)}: ${n1(n.inboundRps)} req/s in, ${(100 * n.errorRatio).toFixed(2)}% errors</title></g>`);
  }
  svg.innerHTML = parts.join("");
}

function drawRanking(v) {
  const prot = new Set(v.protected);
  $("#ranking tbody").innerHTML = v.ranking.map((r) => `<tr data-row="${esc(r.component)}"><td>${esc(r.component)}</td><td>${prot.has(r.component) ? "yes" : "no"}</td>` +
    `<td class="num">${n1(r.failedRps)}</td><td class="num">${n1(r.weightedFailedRps)}</td><td class="num">${n1(r.hazardPerHour * 2160)}</td>` +
    `<td class="num">${n1(r.expectedFailedPerMonth)}</td><td class="why">${esc(r.text)}</td></tr>`).join("") ||
    `<tr><td colspan="7" class="muted">no callers recorded yet: the filters report who calls each component once traffic flows</td></tr>`;
}

async function refresh() {
  try {
    const v = await (await fetch("/api/impact")).json();
    $("#at").textContent = v.graph.atMs ? `as of ${new Date(v.graph.atMs).toLocaleTimeString()}` : "no traffic seen yet";
    drawGraph({ ...v.graph, protected: v.protected });
    drawRanking(v);
  } catch (e) { $("#at").textContent = `cannot load: ${e.message}`; }
}

async function plan(ev) {
  ev?.preventDefault();
  const b = $("#b").value;
  const r = await fetch(`/api/plan?budget=${encodeURIComponent(b)}`);
  const p = await r.json();
  if (!r.ok) { $("#summary").textContent = p.error; return; }
  $("#plan tbody").innerHTML = p.candidates.map((c) => `<tr data-row="${esc(c.component)}"><td>${esc(c.component)}</td><td><span class="verdict ${c.verdict.replace(/ /g, "-")}">${esc(c.verdict)}</span></td>` +
    `<td class="num">${c.monthlyCost === null ? "unknown" : c.monthlyCost.toFixed(2)}</td><td class="num">${n1(c.benefitPerMonth)}</td>` +
    `<td>${c.sizing.cores === null ? "?" : `${c.sizing.cores} cores`}, ${c.sizing.memoryGiB === null ? "?" : `${c.sizing.memoryGiB} GiB`} (scale ${c.sizing.scale}, ${esc(c.sizing.scaleSource)})</td><td class="why">${esc(c.reason)}</td></tr>`).join("");
  $("#summary").textContent = p.summary + (p.protected.length ? `. Already shadowed: ${p.protected.join(", ")}.` : "");
}

$("#budget").addEventListener("submit", plan);
refresh().then(() => plan());
setInterval(refresh, 5000);
