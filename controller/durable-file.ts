// Replacing a file so that a crash leaves either the old or the new one, whole: written to FILE.tmp,
// fsync'ed, renamed over FILE, then the directory fsync'ed so the rename itself is durable.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import path from "node:path";

/**
 * write: writes the body to the descriptor (in as many pieces as it likes). dirFsync "best-effort":
 * the rename is done either way; a directory that cannot be fsync'ed is not an error.
 */
export function replaceFileDurably(file: string, write: (fd: number) => void, o: { dirFsync?: "required" | "best-effort" } = {}): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try { write(fd); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, file);
  try {
    const dfd = openSync(path.dirname(file), "r");
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch (e) { if (o.dirFsync !== "best-effort") throw e; }
}

/** replaceFileDurably with a string body. */
export function replaceFileText(file: string, body: string, o: { dirFsync?: "required" | "best-effort" } = {}): void {
  replaceFileDurably(file, (fd) => { writeSync(fd, body); }, o);
}
