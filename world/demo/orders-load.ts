// The orders API's workload for the load generator (world/demo/load.ts): writes create orders (POST
// /orders) and, now and then, update one (PUT /orders/ID); reads fetch an acknowledged order by id or
// a customer's orders. Every acknowledged order is remembered (id -> customer) so a run can check that
// the promoted database holds each one.
import type { WorkRequest, Workload } from "./load.js";

const ITEMS = ["book", "lamp", "pen", "mug", "chair", "desk"];

export class OrdersWorkload implements Workload {
  private readonly acked = new Map<string, string>();
  private readonly ids: string[] = [];
  canRead(): boolean { return this.ids.length > 0; }
  next(read: boolean, user: string, rand: () => number): WorkRequest {
    if (read) {
      if (rand() < 0.25) return { read, method: "GET", path: `/orders?customer=${encodeURIComponent(user)}`, key: user };
      const id = this.ids[Math.floor(rand() * this.ids.length)]!;
      return { read, method: "GET", path: `/orders/${id}`, key: id };
    }
    if (this.ids.length > 0 && rand() < 0.2) {
      const id = this.ids[Math.floor(rand() * this.ids.length)]!;
      return { read, method: "PUT", path: `/orders/${id}`, key: id, body: JSON.stringify({ status: rand() < 0.5 ? "paid" : "shipped" }) };
    }
    return { read, method: "POST", path: "/orders", key: "", body: JSON.stringify({ customer: user, item: ITEMS[Math.floor(rand() * ITEMS.length)], qty: 1 + Math.floor(rand() * 5) }) };
  }
  acknowledge(r: WorkRequest, status: number, body: string): void {
    if (r.method !== "POST" || status !== 201) return;
    try {
      const o = JSON.parse(body) as { id?: unknown; customer?: unknown };
      if ((typeof o.id === "string" || typeof o.id === "number") && typeof o.customer === "string") { this.acked.set(String(o.id), o.customer); this.ids.push(String(o.id)); }
    } catch { /* an answer that is not an order is not an acknowledgement */ }
  }
  acknowledged(): ReadonlyMap<string, string> { return this.acked; }
}
