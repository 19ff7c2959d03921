// A VM's contexts (the root context and one per HTTP stream) and the scope of the running callback:
// the types the VM core and its env host functions share.
import type { HeaderMap } from "./headers.js";
import type { Timer } from "./clock.js";
import type { HttpStream } from "./stream.js";

/** Which callback is running: decides which buffers and maps exist (spec "Buffers", "HTTP fields"). */
export interface CallbackScope {
  name: string;
  buffers?: Partial<Record<number, Uint8Array>>;
  maps?: Partial<Record<number, HeaderMap>>;
  status?: { code: number; message: string };
}

export interface Context {
  id: number;
  rootId: number; // 0 for a root context
  stream?: HttpStream;
  pendingFinalize: boolean;
  httpCalls: Map<number, () => void>;
  grpcCalls: Map<number, () => void>;
  tickTimer?: Timer;
  tickMs: number;
  properties: Map<string, Uint8Array>;
}

/** Shared by contexts that never made a callout (replaced on the first one). */
export const NO_CALLS: Map<number, () => void> = new Map();
/** Shared by contexts that never set a property (replaced on the first set). */
export const EMPTY_PROPS: Map<string, Uint8Array> = new Map();
