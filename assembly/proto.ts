// A minimal protobuf writer into a caller-provided region of linear memory (no allocation).
// Nested messages reserve a 5-byte length, then are slid back to the canonical varint size.

export class ProtoWriter {
  base: usize = 0;
  pos: usize = 0;
  end: usize = 0;
  overflow: bool = false;
  stack: StaticArray<usize> = new StaticArray<usize>(8);
  depth: i32 = 0;

  reset(base: usize, cap: usize): void {
    this.base = base; this.pos = base; this.end = base + cap; this.overflow = false; this.depth = 0;
  }

  get length(): usize { return this.pos - this.base; }

  @inline private room(n: usize): bool {
    if (this.pos + n > this.end) { this.overflow = true; return false; }
    return true;
  }

  varint(v: u64): void {
    if (!this.room(10)) return;
    let p = this.pos;
    while (v >= 0x80) { store<u8>(p++, <u8>(v | 0x80)); v >>= 7; }
    store<u8>(p++, <u8>v);
    this.pos = p;
  }

  tag(field: u32, wire: u32): void { this.varint(<u64>((field << 3) | wire)); }

  uint(field: u32, v: u64): void { if (v != 0) { this.tag(field, 0); this.varint(v); } }

  sint32(field: u32, v: i32): void {
    if (v != 0) { this.tag(field, 0); this.varint(<u64>(<u32>((v << 1) ^ (v >> 31)))); }
  }

  double(field: u32, v: f64): void {
    if (v == 0) return;
    this.tag(field, 1);
    if (!this.room(8)) return;
    store<f64>(this.pos, v); this.pos += 8;
  }

  fixed64(field: u32, v: u64): void {
    if (v == 0) return;
    this.tag(field, 1);
    if (!this.room(8)) return;
    store<u64>(this.pos, v); this.pos += 8;
  }

  bytes(field: u32, p: usize, l: usize): void {
    if (l == 0) return;
    this.tag(field, 2);
    this.varint(<u64>l);
    if (!this.room(l)) return;
    memory.copy(this.pos, p, l); this.pos += l;
  }

  /** Opens a length-delimited field (nested message or packed repeated). */
  begin(field: u32): void {
    this.tag(field, 2);
    if (!this.room(5) || this.depth >= 8) { this.overflow = true; return; }
    unchecked(this.stack[this.depth++] = this.pos);
    this.pos += 5;
  }

  end_(): void {
    if (this.overflow) return;
    const lenAt = unchecked(this.stack[--this.depth]);
    const bodyStart = lenAt + 5;
    const len = this.pos - bodyStart;
    let n: usize = 1;
    let v = len;
    while (v >= 0x80) { n++; v >>= 7; }
    let p = lenAt;
    v = len;
    while (v >= 0x80) { store<u8>(p++, <u8>(v | 0x80)); v >>= 7; }
    store<u8>(p++, <u8>v);
    memory.copy(lenAt + n, bodyStart, len);
    this.pos = lenAt + n + len;
  }
}
