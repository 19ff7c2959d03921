// Bounds-checked access to a module's linear memory. Views are cached and rebuilt only when a
// memory.grow has detached the old buffer: the VM calls sync() on entry to every host function and
// after every call into the module's allocator (the only times memory can have grown), so the
// accessors below are plain field reads. Every guest pointer goes through check() first.

export class GuestMemory {
  private buf!: Buffer;
  private dv!: DataView;
  private internKeys = new Map<number, { s: string; b: Uint8Array }[]>();
  /** Times a grow was observed (views rebuilt); the benchmark reports memory growth with it. */
  growths = 0;

  constructor(private readonly memory: WebAssembly.Memory) { this.refresh(); }

  private refresh(): void {
    this.buf = Buffer.from(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
  }

  /** Rebuilds the views when a memory.grow detached the old buffer. */
  sync(): void {
    if (this.buf.byteLength === 0) { this.refresh(); this.growths++; }
  }

  get bytes(): Buffer { return this.buf; }

  get view(): DataView { return this.dv; }

  get size(): number { return this.bytes.byteLength; }

  /** True when [ptr, ptr+len) lies inside linear memory. Arguments arrive as signed i32. */
  check(ptr: number, len: number): boolean {
    return (ptr >>> 0) + (len >>> 0) <= this.buf.byteLength;
  }

  readBytes(ptr: number, len: number): Uint8Array {
    const p = ptr >>> 0;
    return Uint8Array.prototype.slice.call(this.bytes, p, p + (len >>> 0));
  }

  readString(ptr: number, len: number): string {
    const p = ptr >>> 0, l = len >>> 0;
    if (l === 0) return "";
    return this.bytes.utf8Slice(p, p + l);
  }

  /** Like readString, but reuses the string for byte sequences seen before (header names, property paths). */
  readKey(ptr: number, len: number): string {
    const p = ptr >>> 0, l = len >>> 0;
    if (l > 64) return this.readString(p, l);
    const b = this.bytes;
    let h = 0x811c9dc5 ^ l;
    for (let i = 0; i < l; i++) h = Math.imul(h ^ b[p + i]!, 0x01000193);
    const bucket = this.internKeys.get(h);
    if (bucket) {
      outer: for (const e of bucket) {
        if (e.b.length !== l) continue;
        for (let i = 0; i < l; i++) if (e.b[i] !== b[p + i]) continue outer;
        return e.s;
      }
    }
    const s = this.readString(p, l);
    if (this.internKeys.size < 4096) {
      const entry = { s, b: b.subarray(p, p + l).slice() };
      if (bucket) bucket.push(entry); else this.internKeys.set(h, [entry]);
    }
    return s;
  }

  u32(ptr: number): number { return this.view.getUint32(ptr >>> 0, true); }
  setU32(ptr: number, v: number): void { this.view.setUint32(ptr >>> 0, v >>> 0, true); }
  setU64(ptr: number, v: bigint): void { this.view.setBigUint64(ptr >>> 0, BigInt.asUintN(64, v), true); }
  /** Writes an integer-valued number as a little-endian int64 without going through BigInt. */
  setI64FromNumber(ptr: number, v: number): void {
    const x = Math.round(v);
    const lo = x % 4294967296;
    const hi = Math.floor(x / 4294967296);
    this.dv.setUint32(ptr >>> 0, lo < 0 ? lo + 4294967296 : lo, true);
    this.dv.setInt32((ptr >>> 0) + 4, hi, true);
  }
  setBytes(ptr: number, data: Uint8Array): void { this.bytes.set(data, ptr >>> 0); }
  /** Writes UTF-8 and returns the bytes written. */
  writeString(ptr: number, s: string): number { return this.bytes.utf8Write(s, ptr >>> 0); }
}
