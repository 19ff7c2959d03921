import { runDemo } from "./demo/run.ts";
import { silentLogger } from "./controller/log.ts";
import { loadScenario } from "./demo/scenario.ts";
let sys: any;
const s = loadScenario("benchmarks/scenarios/latency-creep.json");
const res = await runDemo({ scenario: s, durationS: 56, log: silentLogger(), onProgress: (p) => {
  if (Math.round(p.t) % 4 === 0 && p.t > 14) { const r = sys.controller.engine.get("orders"); console.log(p.t.toFixed(0), p.risk?.toFixed(3), r.probability.toFixed(3), r.contributions.filter((c: any) => c.contribution > 0 || c.signal.startsWith('request_lat')).map((c: any) => `${c.signal}:${c.state}:${c.value?.toFixed(2)}/${c.expected?.toFixed(2)} s=${c.score.toFixed(2)} x=${c.exhaustionS?.toFixed(0)} c=${c.contribution.toFixed(2)}`).join(" ")); }
}, onSystem: (x) => { sys = x; } });
