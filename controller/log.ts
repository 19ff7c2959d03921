// The controller's one logger (pino, JSON lines). Level from SHADOWMESH_LOG_LEVEL (default info);
// tests use silentLogger().
import pino, { type Logger } from "pino";

export function createLogger(name = "shadowmesh", level = process.env.SHADOWMESH_LOG_LEVEL ?? "info", fd: 1 | 2 = 1): Logger {
  return pino({ name, level }, pino.destination(fd));
}

export function silentLogger(): Logger { return pino({ level: "silent" }); }

export type { Logger };
