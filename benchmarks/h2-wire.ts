// A bare HTTP/2 client connection for the HA benchmark's simulated proxies (report-clients.ts): it
// writes gRPC requests as raw frames on one TCP socket (RFC 9113: preface, SETTINGS, HEADERS with a
// fixed HPACK block of literals, DATA) and counts the gRPC messages that come back per stream,
// honouring the server's flow-control windows and answering SETTINGS and PING. It decodes no
// response header (the HPACK state is not needed to count messages): a stream ended by RST_STREAM or
// a GOAWAY counts as failed, and one ended by an error status in its trailers counts as a message
// that never came (the caller sees it as unanswered). Why not node:http2: at 10,000 proxies, each writing one message a
// second, node:http2's per-stream writes took ~1 core of the 2 these benchmarks share with the
// replicas they measure (top, 2026-12-01); Envoy's own client costs the controller's machine
// nothing. Benchmark-only; nothing in production uses it.
import net from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8;
const END_STREAM = 1, ACK = 1, END_HEADERS = 4;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const BIG_WINDOW = 0x7fffffff;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const f = Buffer.alloc(9 + payload.length);
  f.writeUIntBE(payload.length, 0, 3);
  f[3] = type; f[4] = flags;
  f.writeUInt32BE(stream & 0x7fffffff, 5);
  payload.copy(f, 9);
  return f;
}

/** HPACK string literal, not Huffman-coded (lengths below 127). */
const str = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, "latin1")]);

/** The request's header block: static-table names, literal values without indexing (RFC 7541 6.2.2). */
function headerBlock(authority: string, path: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static 3 and 6)
    Buffer.from([0x04]), str(path), // :path (static name 4)
    Buffer.from([0x01]), str(authority), // :authority (static name 1)
    Buffer.from([0x0f, 0x10]), str("application/grpc"), // content-type (static name 31)
    Buffer.from([0x00]), str("te"), str("trailers"),
  ]);
}

interface Stream { window: number; queued: Buffer[]; carry: Buffer | null; ended: boolean }

export class H2Connection {
  private readonly socket: net.Socket;
  private nextId = 1;
  private readonly streams = new Map<number, Stream>();
  private connWindow = 65_535;
  private initialWindow = 65_535;
  private inbox: Buffer = Buffer.alloc(0);
  private readonly block: Buffer;
  /** gRPC messages received, and streams that failed (RST_STREAM, GOAWAY, socket error). */
  answered = 0;
  failed = 0;
  readonly ready: Promise<void>;

  constructor(port: number, path: string) {
    this.block = headerBlock(`127.0.0.1:${port}`, path);
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    // Our receive windows as large as allowed: the acks never wait for a WINDOW_UPDATE from us.
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0); settings.writeUInt32BE(BIG_WINDOW, 2);
    const inc = Buffer.alloc(4); inc.writeUInt32BE(BIG_WINDOW - 65_535, 0);
    this.socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings), frame(WINDOW_UPDATE, 0, 0, inc)]));
    this.socket.on("data", (b: Buffer) => this.read(b));
    this.socket.on("error", () => { this.fail(); });
    this.socket.on("close", () => { this.fail(); });
    this.ready = new Promise((resolve, reject) => { this.socket.once("connect", () => resolve()); this.socket.once("error", reject); });
  }

  /** Opens a stream (HEADERS); its id. */
  open(): number {
    const id = this.nextId;
    this.nextId += 2;
    this.streams.set(id, { window: this.initialWindow, queued: [], carry: null, ended: false });
    this.socket.write(frame(HEADERS, END_HEADERS, id, this.block));
    return id;
  }

  /** One gRPC message (already length-prefixed) on a stream; end: the last (a unary call). */
  send(id: number, message: Buffer, end = false): void {
    // One DATA frame per message: within the default SETTINGS_MAX_FRAME_SIZE (these reports are ~120 bytes).
    if (message.length > 16_384) throw new Error(`h2-wire: a ${message.length}-byte message needs splitting into frames of at most 16,384 bytes, which this client does not do`);
    const s = this.streams.get(id);
    if (!s || s.ended) return;
    const f = frame(DATA, end ? END_STREAM : 0, id, message);
    if (s.queued.length > 0 || message.length > s.window || message.length > this.connWindow) { s.queued.push(f); return; }
    s.window -= message.length; this.connWindow -= message.length;
    this.socket.write(f);
  }

  /** A unary call: HEADERS and one DATA frame ending the stream. */
  call(message: Buffer): void { this.send(this.open(), message, true); }

  /** Ends every stream (an empty DATA frame with END_STREAM) and the connection. */
  close(): void {
    for (const [id, s] of this.streams) if (!s.ended) this.socket.write(frame(DATA, END_STREAM, id, Buffer.alloc(0)));
    this.socket.end();
  }

  private fail(): void {
    for (const s of this.streams.values()) if (!s.ended) { s.ended = true; this.failed++; }
  }

  /** Frames still waiting for window, sent as far as the windows allow. */
  private drain(): void {
    for (const s of this.streams.values()) {
      while (s.queued.length > 0) {
        const f = s.queued[0]!, n = f.length - 9;
        if (n > s.window || n > this.connWindow) break;
        s.window -= n; this.connWindow -= n;
        this.socket.write(s.queued.shift()!);
      }
    }
  }

  private read(b: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, b]) : b;
    while (this.inbox.length >= 9) {
      const len = this.inbox.readUIntBE(0, 3);
      if (this.inbox.length < 9 + len) break;
      const type = this.inbox[3]!, flags = this.inbox[4]!, id = this.inbox.readUInt32BE(5) & 0x7fffffff;
      const payload = this.inbox.subarray(9, 9 + len);
      this.inbox = this.inbox.subarray(9 + len);
      this.frame(type, flags, id, payload);
    }
  }

  private frame(type: number, flags: number, id: number, p: Buffer): void {
    switch (type) {
      case DATA: {
        const s = this.streams.get(id);
        if (!s) return;
        let buf = s.carry ? Buffer.concat([s.carry, p]) : p;
        while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) { buf = buf.subarray(5 + buf.readUInt32BE(1)); this.answered++; }
        s.carry = buf.length ? Buffer.from(buf) : null;
        if (flags & END_STREAM) s.ended = true;
        return;
      }
      case HEADERS: { const s = this.streams.get(id); if (s && flags & END_STREAM) { s.ended = true; this.streams.delete(id); } return; }
      case RST_STREAM: { const s = this.streams.get(id); if (s && !s.ended) { s.ended = true; this.failed++; } this.streams.delete(id); return; }
      case SETTINGS: {
        if (flags & ACK) return;
        for (let i = 0; i + 6 <= p.length; i += 6) {
          if (p.readUInt16BE(i) !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
          const v = p.readUInt32BE(i + 2), delta = v - this.initialWindow;
          this.initialWindow = v;
          for (const s of this.streams.values()) s.window += delta;
        }
        this.socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        this.drain();
        return;
      }
      case PING: if (!(flags & ACK)) this.socket.write(frame(PING, ACK, 0, p)); return;
      case WINDOW_UPDATE: {
        const inc = p.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) this.connWindow += inc; else { const s = this.streams.get(id); if (s) s.window += inc; }
        this.drain();
        return;
      }
      case GOAWAY: this.fail(); return;
      default: return;
    }
  }
}
