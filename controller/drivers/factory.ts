// The drivers of a controller configuration: each component's driver from its `driver:` block (kv,
// postgres) or, for `actions:`, the generic webhook/command driver; and the poll targets of those
// that measure (health, signals, lag).
import type { Clock } from "../../host/clock.js";
import { wallMs } from "../../host/clock.js";
import type { ComponentDriver } from "./driver.js";
import { KvDriver } from "./kv.js";
import { PostgresDriver, type PostgresSide } from "./postgres.js";
import { WebhookDriver, type ActionConfig } from "./webhook.js";
import type { DriverTarget } from "./poller.js";

interface Polled { intervalS: number; lagSignal?: string }
export type DriverConfig =
  | ({ kind: "postgres"; primary: PostgresSide; shadow: PostgresSide; fenceVerifyMs?: number } & Polled)
  | ({ kind: "kv"; primary: string; shadow: string; adminToken?: string } & Polled);

export interface ComponentDrivers { drivers: Map<string, ComponentDriver>; targets: DriverTarget[] }

export function buildDrivers(components: { route: { name: string }; actions: ActionConfig | null; driver: DriverConfig | null }[], clock: Clock): ComponentDrivers {
  const drivers = new Map<string, ComponentDriver>();
  const targets: DriverTarget[] = [];
  for (const c of components) {
    const name = c.route.name, d = c.driver;
    if (d) {
      const driver: ComponentDriver = d.kind === "postgres"
        ? new PostgresDriver({ primary: d.primary, shadow: d.shadow, nowMs: () => wallMs(clock), ...(d.fenceVerifyMs ? { fenceVerifyMs: d.fenceVerifyMs } : {}) })
        : new KvDriver({ component: name, primary: d.primary, shadow: d.shadow, ...(d.adminToken ? { adminToken: d.adminToken } : {}) });
      drivers.set(name, driver);
      targets.push({ component: name, driver, intervalS: d.intervalS, ...(d.lagSignal ? { lagSignal: d.lagSignal } : {}) });
    } else if (c.actions) drivers.set(name, new WebhookDriver(name, c.actions));
  }
  return { drivers, targets };
}
