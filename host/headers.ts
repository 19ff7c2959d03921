// Header maps (HTTP headers, trailers, gRPC metadata) and the ABI's serialized map format:
// u32 count, count x (u32 keyLen, u32 valLen), then every key and value followed by NUL.

export type HeaderList = ReadonlyArray<readonly [string, string]>;

export class HeaderMap {
  private names: string[] = [];
  private values: string[] = [];
  /** Bumped on every change; lets callers cache derived data. */
  version = 0;

  constructor(pairs: HeaderList = [], private readonly lowerCase = true) {
    for (const [k, v] of pairs) this.add(k, v);
  }

  private norm(k: string): string { return this.lowerCase ? k.toLowerCase() : k; }

  get size(): number { return this.names.length; }

  get(k: string): string | undefined {
    const n = this.norm(k);
    const i = this.names.indexOf(n);
    return i < 0 ? undefined : this.values[i];
  }

  getAll(k: string): string[] {
    const n = this.norm(k);
    const out: string[] = [];
    for (let i = 0; i < this.names.length; i++) if (this.names[i] === n) out.push(this.values[i]!);
    return out;
  }

  add(k: string, v: string): void { this.names.push(this.norm(k)); this.values.push(v); this.version++; }

  /** Replaces every value of k with one value (Envoy's setCopy), adding it when absent. */
  set(k: string, v: string): void {
    const n = this.norm(k);
    const i = this.names.indexOf(n);
    if (i < 0) { this.add(n, v); return; }
    this.values[i] = v;
    for (let j = this.names.length - 1; j > i; j--) {
      if (this.names[j] === n) { this.names.splice(j, 1); this.values.splice(j, 1); }
    }
    this.version++;
  }

  remove(k: string): void {
    const n = this.norm(k);
    for (let j = this.names.length - 1; j >= 0; j--) {
      if (this.names[j] === n) { this.names.splice(j, 1); this.values.splice(j, 1); }
    }
    this.version++;
  }

  replaceAll(pairs: HeaderList): void {
    this.names = []; this.values = [];
    for (const [k, v] of pairs) { this.names.push(this.norm(k)); this.values.push(v); }
    this.version++;
  }

  entries(): [string, string][] { return this.names.map((k, i) => [k, this.values[i]!]); }

  forEach(fn: (k: string, v: string) => void): void {
    for (let i = 0; i < this.names.length; i++) fn(this.names[i]!, this.values[i]!);
  }

  /** Exact size of the serialized form (0 for an empty map). */
  serializedSize(): number {
    const n = this.names.length;
    if (n === 0) return 0;
    let size = 4 + 8 * n;
    for (let i = 0; i < n; i++) size += Buffer.byteLength(this.names[i]!) + Buffer.byteLength(this.values[i]!) + 2;
    return size;
  }

  /** Serializes into `buf` at `at` (which must have serializedSize() bytes). */
  serializeInto(buf: Buffer, at: number): void {
    const n = this.names.length;
    if (n === 0) return;
    buf.writeUInt32LE(n, at);
    let data = at + 4 + 8 * n;
    for (let i = 0; i < n; i++) {
      const kl = buf.utf8Write(this.names[i]!, data); buf[data + kl] = 0; data += kl + 1;
      const vl = buf.utf8Write(this.values[i]!, data); buf[data + vl] = 0; data += vl + 1;
      buf.writeUInt32LE(kl, at + 4 + 8 * i);
      buf.writeUInt32LE(vl, at + 8 + 8 * i);
    }
  }

  serialize(): Uint8Array {
    const out = Buffer.alloc(this.serializedSize());
    this.serializeInto(out, 0);
    return out;
  }
}

export class MapParseError extends Error {}

/** Parses a serialized map; throws MapParseError when the layout is inconsistent. */
export function parsePairs(data: Uint8Array): [string, string][] {
  if (data.length <= 1) return []; // empty: size 0, or a single 0x00 byte
  if (data.length < 4) throw new MapParseError("map shorter than its count field");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = dv.getUint32(0, true);
  if (4 + n * 8 > data.length) throw new MapParseError(`map claims ${n} pairs, too many for ${data.length} bytes`);
  const out: [string, string][] = [];
  let pos = 4 + n * 8;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(4 + i * 8, true), vl = dv.getUint32(8 + i * 8, true);
    if (pos + kl + vl + 2 > data.length) throw new MapParseError(`pair ${i} runs past the end of the map`);
    if (buf[pos + kl] !== 0 || buf[pos + kl + 1 + vl] !== 0) throw new MapParseError(`pair ${i} is not NUL-terminated`);
    out.push([buf.toString("utf8", pos, pos + kl), buf.toString("utf8", pos + kl + 1, pos + kl + 1 + vl)]);
    pos += kl + vl + 2;
  }
  return out;
}

export function serializePairs(pairs: HeaderList): Uint8Array {
  return new HeaderMap(pairs, false).serialize();
}
