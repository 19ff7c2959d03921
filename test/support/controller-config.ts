// The smallest controller configuration the tests start: loopback listeners on free ports, one API
// token, one component "orders" (primary 127.0.0.1:7001, shadow :7002), and what a test adds.
export interface TestConfigOptions {
  token: string;
  stateDir?: string;
  policy?: string;
  tickMs?: number;
  /** Lines under the component (indented by the caller, e.g. "    signals: [...]"). */
  component?: string;
  /** Top-level YAML appended at the end. */
  extra?: string;
}

export function testControllerYaml(o: TestConfigOptions): string {
  return `
listen: { xds: "127.0.0.1:0", telemetry: "127.0.0.1:0", api: "127.0.0.1:0", http: "127.0.0.1:0" }
api: { tokens: ["${o.token}"] }
${o.stateDir ? `stateDir: ${o.stateDir}\n` : ""}${o.policy ? `policy: ${o.policy}\n` : ""}tickMs: ${o.tickMs ?? 50}
components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: a, endpoints: ["127.0.0.1:7001"] }
    shadow: { name: orders-shadow, zone: b, endpoints: ["127.0.0.1:7002"] }
${o.component ? `${o.component}\n` : ""}${o.extra ?? ""}`;
}

/**
 * The sample KV pair as a controller process sees it (crash test, HA replicas): the component with
 * its webhook actions (through `actionsUrl`, which forwards to the nodes) and the shadow's lag scrape.
 */
export function kvPairYaml(o: { primaryPort: number; shadowPort: number; shadowUrl: string; actionsUrl: string; adminToken: string }): string {
  return `components:
  - name: orders
    hostnames: [orders.svc]
    primary: { name: orders-primary, zone: zone-a, endpoints: ["127.0.0.1:${o.primaryPort}"] }
    shadow: { name: orders-shadow, zone: zone-b, endpoints: ["127.0.0.1:${o.shadowPort}"] }
    filter: { sticky: { header: x-user } }
    actions: { webhook: "${o.actionsUrl}/admin/actions", headers: { authorization: "Bearer ${o.adminToken}" } }
    signals:
      - { name: request_latency_p99_ms, kind: latency }
      - { name: request_error_rate, kind: error_rate }
      - { name: replication_lag_s, kind: replication_lag }
scrape:
  - { component: orders, url: "${o.shadowUrl}/metrics", side: shadow, intervalS: 1, signals: [{ signal: replication_lag_s, metric: sample_replication_lag_seconds }] }
`;
}
