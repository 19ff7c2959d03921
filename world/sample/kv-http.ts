// The sample KV node's HTTP plumbing: the epoch header (x-shadowmesh-epoch) and its parsing, the
// error a refused epoch is answered with (EpochError: status and message), and reading a request
// body (at most 1 MiB). Used by the node's server (kv.ts) and its state machine (kv-replica.ts).
import type http from "node:http";

/** The header that carries the sender's epoch on writes, pulls and answers. */
export const EPOCH_HEADER = "x-shadowmesh-epoch";

/** A request body or header whose epoch is refused: status and error. */
export class EpochError extends Error { constructor(readonly status: number, message: string) { super(message); } }

export function isEpoch(x: unknown): x is number { return typeof x === "number" && Number.isInteger(x) && x >= 1; }

/** The x-shadowmesh-epoch header of a request, if any (400 when it is not a positive integer). */
export function requestEpoch(req: http.IncomingMessage): number | undefined {
  const h = req.headers[EPOCH_HEADER];
  if (h === undefined) return undefined;
  const n = Number(Array.isArray(h) ? h[0] : h);
  if (!isEpoch(n)) throw new EpochError(400, `${EPOCH_HEADER}: must be a positive integer, got ${JSON.stringify(h)}`);
  return n;
}

export function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => { size += c.length; if (size > 1 << 20) { reject(new Error("body over 1 MiB")); req.destroy(); } else chunks.push(c); });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
