// The webhook/command actions of the configuration (`actions:`), as the migration engine's
// ActionRunner: each component's WebhookDriver (drivers/webhook.ts) behind DriverActions. Kept for
// the configurations and callers that name actions rather than a driver.
import { DriverActions } from "../drivers/driver.js";
import { WebhookDriver, type ActionConfig } from "../drivers/webhook.js";
export type { ActionConfig } from "../drivers/webhook.js";
export type { LeaseDetail } from "./manager.js";

export class ConfiguredActions extends DriverActions {
  constructor(byComponent: Map<string, ActionConfig>, timeoutMs = 30_000, fetchFn: typeof fetch = fetch) {
    super(new Map([...byComponent].map(([c, cfg]) => [c, new WebhookDriver(c, cfg, timeoutMs, fetchFn)])));
  }
}
