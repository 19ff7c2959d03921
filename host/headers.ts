// Header maps (HTTP headers, trailers, gRPC metadata) and the ABI's serialized map format:
// u32 count, count x (u32 keyLen, u32 valLen), then every key and value followed by NUL.

export type HeaderList = ReadonlyArray<readonly [string, string]>;

export class HeaderMap {
  private names: string[] = [];
  private values: string[] = [];
  /** Bumped on every change; lets callers cache derived data. */
  version = 0;

  constructor(pairs: HeaderList = [], private readonly lowerCase = true) {
    const names = this.names, values = this.values;
    for (let i = 0; i < pairs.length; i++) {
      const p = pairs[i]!;
      names.push(lowerCase ? p[0].toLowerCase() : p[0]);
      values.push(p[1]);
    }
  }

  /**
   * Builds a map from names the source already delivers in lower case (HTTP/2 frames, Node's
   * parsed `IncomingMessage.headers`), skipping the per-name toLowerCase.
   */
  static fromLowercase(pairs: HeaderList): HeaderMap {
    const m = new HeaderMap([], true);
    for (let i = 0; i < pairs.length; i++) { const p = pairs[i]!; m.names.push(p[0]); m.values.push(p[1]); }
    return m;
  }

  private norm(k: string): string { return this.lowerCase ? k.toLowerCase() : k; }

  get size(): number { return this.names.length; }

  /** Index of the first entry named k; tries k as given first (names are nearly always lower case already). */
  private find(k: string): number {
    const i = this.names.indexOf(k);
    if (i >= 0 || !this.lowerCase) return i;
    const n = k.toLowerCase();
    return n === k ? -1 : this.names.indexOf(n);
  }

  get(k: string): string | undefined {
    const i = this.find(k);
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
    const i = this.find(k);
    if (i < 0) { this.add(k, v); return; }
    const n = this.names[i]!;
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
    const n = this.serializeToScratch();
    return Uint8Array.prototype.slice.call(scratch, 0, n);
  }

  /** Size of the serialized form if every name and value is ASCII (the common case). */
  asciiSerializedSize(): number {
    const n = this.names.length;
    if (n === 0) return 0;
    let size = 4 + 10 * n;
    for (let i = 0; i < n; i++) size += this.names[i]!.length + this.values[i]!.length;
    return size;
  }

  /**
   * Writes the serialized map at `at`, assuming ASCII (room: asciiSerializedSize()). Returns false,
   * having written garbage, as soon as a character needs UTF-8: the caller then uses serializeInto
   * with serializedSize(). A plain loop beats a native encode call per string for short strings.
   */
  serializeAsciiInto(b: Uint8Array, at: number): boolean {
    const n = this.names.length;
    if (n === 0) return true;
    const names = this.names, values = this.values;
    b[at] = n; b[at + 1] = n >>> 8; b[at + 2] = n >>> 16; b[at + 3] = n >>> 24;
    let d = at + 4 + 8 * n;
    for (let i = 0; i < n; i++) {
      const k = names[i]!, v = values[i]!;
      const kl = k.length, vl = v.length;
      for (let j = 0; j < kl; j++) { const c = k.charCodeAt(j); if (c > 0x7f) return false; b[d + j] = c; }
      d += kl; b[d++] = 0;
      for (let j = 0; j < vl; j++) { const c = v.charCodeAt(j); if (c > 0x7f) return false; b[d + j] = c; }
      d += vl; b[d++] = 0;
      const t = at + 4 + 8 * i;
      b[t] = kl; b[t + 1] = kl >>> 8; b[t + 2] = kl >>> 16; b[t + 3] = kl >>> 24;
      b[t + 4] = vl; b[t + 5] = vl >>> 8; b[t + 6] = vl >>> 16; b[t + 7] = vl >>> 24;
    }
    return true;
  }

  serializeToScratch(): number {
    const size = this.serializedSize();
    if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
    this.serializeInto(scratch, 0);
    return size;
  }

  /** The scratch buffer serializeToScratch wrote into. */
  static get scratch(): Buffer { return scratch; }
}

let scratch: Buffer = Buffer.allocUnsafe(4096);

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
