// The orders API: the HTTP service the mesh routes to in front of each PostgreSQL instance (one per
// zone), reading and writing only its local instance. Reads by id and by customer; writes create and
// update orders. A write the instance refuses (a hot standby, or a fenced primary:
// default_transaction_read_only) is answered 503 with PostgreSQL's reason, so the shadow's writes are
// refused by PostgreSQL itself until it is promoted.
//
//   GET  /orders/ID                 200 {order} | 404
//   GET  /orders?customer=C         200 {orders: [...]} (newest 50)
//   POST /orders    {customer, item, qty}     201 {order}      503 {error, code} when read-only
//   PUT  /orders/ID {status}        200 {order} | 404          503 likewise
//   GET  /healthz                   200 {recovery, readOnly} | 503 when the instance cannot be reached
import http from "node:http";
import pg from "pg";

export const ORDERS_SCHEMA = `CREATE TABLE IF NOT EXISTS orders (
  id bigserial PRIMARY KEY, customer text NOT NULL, item text NOT NULL, qty int NOT NULL CHECK (qty > 0),
  status text NOT NULL DEFAULT 'new', created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`;
const INDEX = "CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer, id DESC)";

/** Creates the orders table on a writable instance (idempotent). */
export async function createOrdersSchema(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { await c.query(ORDERS_SCHEMA); await c.query(INDEX); } finally { await c.end(); }
}

export interface OrdersApiOptions {
  /** The local instance: postgresql://USER@HOST:PORT/DB. */
  url: string;
  name?: string;
  /** Pool size (default 8). */
  poolSize?: number;
  /** Connections are replaced after this many seconds (default 15), as pools recycle them (HikariCP's maxLifetime, PgBouncer's server_lifetime). */
  maxLifetimeS?: number;
}

/** PostgreSQL error codes that mean "this instance does not take writes now". */
const READ_ONLY_CODES = new Set(["25006"]);
const STATUSES = new Set(["new", "paid", "shipped", "cancelled"]);

export class OrdersApi {
  private readonly pool: pg.Pool;
  private server: http.Server | null = null;
  url = "";
  readonly counters = { reads: 0, writes: 0, refusedWrites: 0, errors: 0 };

  constructor(readonly o: OrdersApiOptions) {
    this.pool = new pg.Pool({ connectionString: o.url, max: o.poolSize ?? 8, maxLifetimeSeconds: o.maxLifetimeS ?? 15, connectionTimeoutMillis: 2000, statement_timeout: 5000, query_timeout: 6000, application_name: `orders-api${o.name ? `-${o.name}` : ""}` });
    this.pool.on("error", () => undefined);
  }

  async start(port = 0, host = "127.0.0.1"): Promise<number> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    await new Promise<void>((r, j) => { this.server!.once("error", j); this.server!.listen(port, host, () => r()); });
    const p = (this.server.address() as { port: number }).port;
    this.url = `http://${host}:${p}`;
    return p;
  }

  async stop(): Promise<void> {
    if (this.server) { this.server.closeAllConnections(); await new Promise<void>((r) => this.server!.close(() => r())); this.server = null; }
    await this.pool.end().catch(() => undefined);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const json = (status: number, body: unknown) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
    const url = new URL(req.url ?? "/", "http://x");
    try {
      if (url.pathname === "/healthz") {
        const r = await this.pool.query<{ rec: boolean; ro: string }>("SELECT pg_is_in_recovery() AS rec, current_setting('transaction_read_only') AS ro");
        return json(200, { recovery: r.rows[0]!.rec, readOnly: r.rows[0]!.ro === "on" });
      }
      const m = /^\/orders(?:\/(\d{1,18}))?$/.exec(url.pathname);
      if (!m) return json(404, { error: `no route ${req.method} ${url.pathname}` });
      const id = m[1];
      if (req.method === "GET" && id) {
        this.counters.reads++;
        const r = await this.pool.query("SELECT * FROM orders WHERE id = $1", [id]);
        return r.rows[0] ? json(200, r.rows[0]) : json(404, { error: `order ${id} not found` });
      }
      if (req.method === "GET") {
        const customer = url.searchParams.get("customer");
        if (!customer) return json(400, { error: "customer: the query parameter is required (GET /orders?customer=C)" });
        this.counters.reads++;
        const r = await this.pool.query("SELECT * FROM orders WHERE customer = $1 ORDER BY id DESC LIMIT 50", [customer]);
        return json(200, { orders: r.rows });
      }
      const body = await readJson(req);
      if (typeof body === "string") return json(400, { error: body });
      if (req.method === "POST" && !id) {
        const { customer, item, qty } = body as { customer?: unknown; item?: unknown; qty?: unknown };
        if (typeof customer !== "string" || customer.length === 0 || customer.length > 200) return json(400, { error: "customer: a non-empty string of at most 200 characters is required" });
        if (typeof item !== "string" || item.length === 0 || item.length > 200) return json(400, { error: "item: a non-empty string of at most 200 characters is required" });
        if (!Number.isInteger(qty) || (qty as number) < 1 || (qty as number) > 1_000_000) return json(400, { error: `qty: an integer from 1 to 1000000 is required, got ${JSON.stringify(qty)}` });
        this.counters.writes++;
        const r = await this.pool.query("INSERT INTO orders (customer, item, qty) VALUES ($1, $2, $3) RETURNING *", [customer, item, qty]);
        return json(201, r.rows[0]);
      }
      if (req.method === "PUT" && id) {
        const { status } = body as { status?: unknown };
        if (typeof status !== "string" || !STATUSES.has(status)) return json(400, { error: `status: one of ${[...STATUSES].join(", ")} is required, got ${JSON.stringify(status)}` });
        this.counters.writes++;
        const r = await this.pool.query("UPDATE orders SET status = $2, updated_at = now() WHERE id = $1 RETURNING *", [id, status]);
        return r.rows[0] ? json(200, r.rows[0]) : json(404, { error: `order ${id} not found` });
      }
      json(405, { error: `${req.method} ${url.pathname}: not allowed` });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code && READ_ONLY_CODES.has(code)) { this.counters.refusedWrites++; return json(503, { error: `PostgreSQL refused the write: ${(e as Error).message}`, code }); }
      this.counters.errors++;
      json(503, { error: `PostgreSQL: ${(e as Error).message}`, ...(code ? { code } : {}) });
    }
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  let n = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) { n += (c as Buffer).length; if (n > 64 * 1024) return "body: larger than 64 KiB"; chunks.push(c as Buffer); }
  try { const v = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"); return typeof v === "object" && v !== null ? v : "body: expected a JSON object"; }
  catch { return "body: not JSON"; }
}
