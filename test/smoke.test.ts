import { test } from "uvu";
import * as assert from "uvu/assert";
import { rig, roundTrip, get } from "./support/filter.js";

test("smoke: a read goes to the primary", async () => {
  const r = await rig();
  const s = roundTrip(r, get());
  assert.is(s.requestHeadersMap!.get("x-shadowmesh-cluster"), "orders-primary");
  console.log(r.host.logs);
});

test.run();
