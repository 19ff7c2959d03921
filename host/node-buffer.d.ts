// Node's Buffer has had utf8Slice/utf8Write since v0.x; @types/node leaves them out. They skip the
// argument normalisation of toString/write, which matters on the host's per-call path.
export {};
declare global {
  interface Buffer {
    utf8Slice(start: number, end: number): string;
    utf8Write(s: string, offset: number, length?: number): number;
  }
}
