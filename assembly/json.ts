// A small, strict JSON parser for the plugin configuration (runs in proxy_on_configure only, so it
// may allocate). Errors carry the byte offset; nesting depth is bounded so hostile input cannot
// exhaust the stack.

export const J_NULL: i32 = 0;
export const J_BOOL: i32 = 1;
export const J_NUM: i32 = 2;
export const J_STR: i32 = 3;
export const J_ARR: i32 = 4;
export const J_OBJ: i32 = 5;

const MAX_DEPTH = 32;

export class JValue {
  kind: i32 = J_NULL;
  b: bool = false;
  n: f64 = 0;
  s: string = "";
  items: Array<JValue> = [];
  keys: Array<string> = [];

  get(key: string): JValue | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  kindName(): string {
    switch (this.kind) {
      case J_NULL: return "null";
      case J_BOOL: return "a boolean";
      case J_NUM: return "a number";
      case J_STR: return "a string";
      case J_ARR: return "an array";
      default: return "an object";
    }
  }
}

export class JsonParser {
  p: usize = 0;
  end: usize = 0;
  start: usize = 0;
  error: string = "";

  parse(ptr: usize, len: usize): JValue | null {
    this.p = ptr; this.start = ptr; this.end = ptr + len; this.error = "";
    const v = this.value(0);
    if (v === null) return null;
    this.ws();
    if (this.p != this.end) return this.fail("unexpected data after the JSON value");
    return v;
  }

  private fail(msg: string): JValue | null {
    if (this.error.length == 0) this.error = msg + " at byte " + (this.p - this.start).toString();
    return null;
  }

  private ws(): void {
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) this.p++; else break;
    }
  }

  private lit(word: string): bool {
    const n = word.length;
    if (this.end - this.p < <usize>n) return false;
    for (let i = 0; i < n; i++) if (<i32>load<u8>(this.p + <usize>i) != word.charCodeAt(i)) return false;
    this.p += <usize>n;
    return true;
  }

  private value(depth: i32): JValue | null {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString());
    this.ws();
    if (this.p >= this.end) return this.fail("unexpected end of input");
    const c = load<u8>(this.p);
    const v = new JValue();
    if (c == 0x7b) { // {
      v.kind = J_OBJ;
      this.p++;
      this.ws();
      if (this.p < this.end && load<u8>(this.p) == 0x7d) { this.p++; return v; }
      while (true) {
        this.ws();
        if (this.p >= this.end || load<u8>(this.p) != 0x22) return this.fail("expected a string key");
        const k = this.str();
        if (k === null) return null;
        for (let i = 0; i < v.keys.length; i++) if (v.keys[i] == k) return this.fail("duplicate key \"" + k + "\"");
        this.ws();
        if (this.p >= this.end || load<u8>(this.p) != 0x3a) return this.fail("expected ':'");
        this.p++;
        const item = this.value(depth + 1);
        if (item === null) return null;
        v.keys.push(k);
        v.items.push(item);
        this.ws();
        if (this.p >= this.end) return this.fail("unterminated object");
        const d = load<u8>(this.p);
        this.p++;
        if (d == 0x7d) return v;
        if (d != 0x2c) { this.p--; return this.fail("expected ',' or '}'"); }
      }
    }
    if (c == 0x5b) { // [
      v.kind = J_ARR;
      this.p++;
      this.ws();
      if (this.p < this.end && load<u8>(this.p) == 0x5d) { this.p++; return v; }
      while (true) {
        const item = this.value(depth + 1);
        if (item === null) return null;
        v.items.push(item);
        this.ws();
        if (this.p >= this.end) return this.fail("unterminated array");
        const d = load<u8>(this.p);
        this.p++;
        if (d == 0x5d) return v;
        if (d != 0x2c) { this.p--; return this.fail("expected ',' or ']'"); }
      }
    }
    if (c == 0x22) {
      const s = this.str();
      if (s === null) return null;
      v.kind = J_STR; v.s = s;
      return v;
    }
    if (c == 0x74) { if (!this.lit("true")) return this.fail("invalid literal"); v.kind = J_BOOL; v.b = true; return v; }
    if (c == 0x66) { if (!this.lit("false")) return this.fail("invalid literal"); v.kind = J_BOOL; return v; }
    if (c == 0x6e) { if (!this.lit("null")) return this.fail("invalid literal"); return v; }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.num(v);
    return this.fail("unexpected character");
  }

  private num(v: JValue): JValue | null {
    const s = this.p;
    if (load<u8>(this.p) == 0x2d) this.p++;
    let digits = 0;
    while (this.p < this.end && load<u8>(this.p) >= 0x30 && load<u8>(this.p) <= 0x39) { this.p++; digits++; }
    if (digits == 0) return this.fail("invalid number");
    if (this.p < this.end && load<u8>(this.p) == 0x2e) {
      this.p++;
      let frac = 0;
      while (this.p < this.end && load<u8>(this.p) >= 0x30 && load<u8>(this.p) <= 0x39) { this.p++; frac++; }
      if (frac == 0) return this.fail("invalid number");
    }
    if (this.p < this.end && (load<u8>(this.p) | 0x20) == 0x65) {
      this.p++;
      if (this.p < this.end && (load<u8>(this.p) == 0x2b || load<u8>(this.p) == 0x2d)) this.p++;
      let exp = 0;
      while (this.p < this.end && load<u8>(this.p) >= 0x30 && load<u8>(this.p) <= 0x39) { this.p++; exp++; }
      if (exp == 0) return this.fail("invalid number");
    }
    v.kind = J_NUM;
    v.n = parseFloat(String.UTF8.decodeUnsafe(s, this.p - s));
    return v;
  }

  private hex4(): i32 {
    if (this.end - this.p < 4) return -1;
    let r = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.p + <usize>i);
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
      if (d < 0) return -1;
      r = (r << 4) | d;
    }
    this.p += 4;
    return r;
  }

  private str(): string | null {
    this.p++; // opening quote
    let out = "";
    let run = this.p;
    while (true) {
      if (this.p >= this.end) { this.fail("unterminated string"); return null; }
      const c = load<u8>(this.p);
      if (c == 0x22) {
        out += String.UTF8.decodeUnsafe(run, this.p - run);
        this.p++;
        return out;
      }
      if (c < 0x20) { this.fail("control character in string"); return null; }
      if (c == 0x5c) {
        out += String.UTF8.decodeUnsafe(run, this.p - run);
        this.p++;
        if (this.p >= this.end) { this.fail("unterminated string"); return null; }
        const e = load<u8>(this.p);
        this.p++;
        if (e == 0x22) out += "\"";
        else if (e == 0x5c) out += "\\";
        else if (e == 0x2f) out += "/";
        else if (e == 0x62) out += "\b";
        else if (e == 0x66) out += "\f";
        else if (e == 0x6e) out += "\n";
        else if (e == 0x72) out += "\r";
        else if (e == 0x74) out += "\t";
        else if (e == 0x75) {
          const u = this.hex4();
          if (u < 0) { this.fail("invalid \\u escape"); return null; }
          out += String.fromCharCode(u);
        } else { this.p--; this.fail("invalid escape"); return null; }
        run = this.p;
        continue;
      }
      this.p++;
    }
  }
}
