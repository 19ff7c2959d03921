// The TrafficRouter seam's fake for tests of the layers above (the migration manager): records every
// call; verify() answers as told (default: every node ACKed).
import { TOTAL_WEIGHT, checkWeights, type Weights } from "../../controller/xds/resources.js";
import type { MirrorSettings, Routes, TrafficRouter } from "../../controller/xds/router.js";
import type { VerifyResult } from "../../controller/xds/server.js";

/** In-memory router for tests of the layers above: records calls; verify answers as told. */
export class FakeTrafficRouter implements TrafficRouter {
  readonly calls: { op: "weights" | "mirror" | "routes"; component: string; value: unknown; version: string }[] = [];
  private readonly weights = new Map<string, Weights>();
  private seq = 0;
  /** What verify() answers next (default: every node ACKed). */
  nextVerify: (version: string) => VerifyResult = (version) => ({ version, ok: true, acked: ["fake-node"], nacked: [], pending: [], superseded: false });

  setWeights(component: string, weights: Weights): string {
    checkWeights(component, weights);
    this.weights.set(component, { ...weights });
    const version = `fake-${++this.seq}`;
    this.calls.push({ op: "weights", component, value: { ...weights }, version });
    return version;
  }
  getWeights(component: string): Weights { return { ...(this.weights.get(component) ?? { primary: TOTAL_WEIGHT, shadow: 0 }) }; }
  setMirror(component: string, mirror: MirrorSettings): string {
    const version = `fake-${++this.seq}`;
    this.calls.push({ op: "mirror", component, value: { ...mirror }, version });
    return version;
  }
  setRoutes(component: string, routes: Routes): string {
    checkWeights(component, routes.weights);
    this.weights.set(component, { ...routes.weights });
    const version = `fake-${++this.seq}`;
    this.calls.push({ op: "routes", component, value: structuredClone(routes), version });
    return version;
  }
  async verify(version: string): Promise<VerifyResult> { return this.nextVerify(version); }
}
