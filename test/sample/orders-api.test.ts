// The orders API on a real primary and hot standby: reads by id and by customer, create and update;
// every bad input answered 400 naming the field, and nothing written; the standby's writes refused by
// PostgreSQL itself (503 with its reason). Skips, saying so, without PostgreSQL 15.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createOrdersSchema, OrdersApi } from "../../world/sample/orders.js";
import { pgAvailable, startPair, type PgPair } from "../../world/demo/pg-pair.js";
import { whenAvailable } from "../support/real-servers.js";

const NAME = "orders API: reads and writes on the primary, bad inputs named and refused, the standby's writes refused by PostgreSQL";

whenAvailable("orders api", pgAvailable(), NAME, async () => {
  let pair: PgPair | undefined;
  const apis: OrdersApi[] = [];
  try {
    pair = await startPair({ name: "orders" });
    await createOrdersSchema(pair.primary.conninfo());
    const a = new OrdersApi({ url: pair.primary.conninfo() }), b = new OrdersApi({ url: pair.standby.conninfo() });
    apis.push(a, b);
    await a.start(); await b.start();
    const send = (api: OrdersApi, method: string, p: string, body?: unknown) => fetch(`${api.url}${p}`, { method, ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) }) });
    const created = await send(a, "POST", "/orders", { customer: "ada", item: "book", qty: 2 });
    assert.is(created.status, 201);
    const order = (await created.json()) as { id: string; customer: string };
    assert.is(order.customer, "ada");
    assert.is((await send(a, "GET", `/orders/${order.id}`)).status, 200);
    assert.is(((await (await send(a, "GET", "/orders?customer=ada")).json()) as { orders: unknown[] }).orders.length, 1);
    assert.is((await send(a, "PUT", `/orders/${order.id}`, { status: "paid" })).status, 200);
    const bad: [string, string, unknown, RegExp][] = [
      ["POST", "/orders", { item: "book", qty: 1 }, /^customer: /],
      ["POST", "/orders", { customer: "ada", item: "", qty: 1 }, /^item: /],
      ["POST", "/orders", { customer: "ada", item: "book", qty: 0 }, /^qty: .*got 0/],
      ["POST", "/orders", "{not json", /^body: not JSON/],
      ["PUT", `/orders/${order.id}`, { status: "lost" }, /^status: .*got "lost"/],
      ["GET", "/orders", undefined, /^customer: the query parameter is required/],
    ];
    for (const [m, p, body, re] of bad) {
      const r = await send(a, m, p, body);
      assert.is(r.status, 400, `${m} ${p} ${JSON.stringify(body)}`);
      assert.match(((await r.json()) as { error: string }).error, re);
    }
    assert.is(Number((await pair.primary.query("SELECT count(*) AS n FROM orders")).rows[0].n), 1, "nothing written by the refused requests");
    const refused = await send(b, "POST", "/orders", { customer: "bob", item: "pen", qty: 1 });
    assert.is(refused.status, 503);
    const e = (await refused.json()) as { error: string; code: string };
    assert.is(e.code, "25006");
    assert.match(e.error, /PostgreSQL refused the write: cannot execute INSERT in a read-only transaction/);
  } finally {
    for (const x of apis) await x.stop();
    await pair?.stop();
  }
});

test.run();
