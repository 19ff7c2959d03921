// A proxy-wasm plugin as Envoy runs it: one compiled module, one VM per worker, and the state
// the VMs share (shared data with CAS, shared queues, stats, logs, callouts, clock, properties).
// Creating a plugin validates the module's contract (ABI marker, imports Envoy provides) and
// runs vm_start and configure on every worker, as Envoy does when a listener loads the filter.
import { ENVOY_ENV_IMPORTS, ENVOY_WASI_IMPORTS, LOG_LEVEL_NAMES, LogLevel, LogLevelValue, MetricType } from "./abi.js";
import { SystemClock, type Clock } from "./clock.js";
import { RecordingCallouts, type Callouts } from "./callouts.js";
import { HeaderMap } from "./headers.js";
import { type PropertyValue } from "./properties.js";
import { WasmVm } from "./vm.js";
import { HttpStream, type StreamOptions } from "./stream.js";

export interface LogRecord { level: LogLevelValue; message: string; worker: number }

export interface PluginOptions {
  /** The module bytes (or a compiled module). */
  wasm: Uint8Array | WebAssembly.Module;
  /** Number of worker VMs (Envoy: one per worker thread). Default 1. */
  workers?: number;
  pluginConfig?: string | Uint8Array;
  vmConfig?: string | Uint8Array;
  pluginName?: string;
  rootId?: string;
  vmId?: string;
  clock?: Clock;
  /** Fills WASI random_get (default: the OS's CSPRNG); a seeded source makes runs repeat exactly. */
  random?: (buf: Uint8Array) => void;
  callouts?: Callouts;
  /** Receives every log line; default: kept in `logs` only. */
  logger?: (r: LogRecord) => void;
  logLevel?: LogLevelValue;
  /** Plugin-wide properties, e.g. {"node.id": "proxy-1"}. */
  properties?: Record<string, PropertyValue>;
  /** Environment variables exposed through WASI (Envoy: the VM's environment_variables). */
  env?: Record<string, string>;
  /** Envoy's fail_open: what a stream sees once its VM has failed. Default false (HTTP 503). */
  failOpen?: boolean;
  foreignFunctions?: Record<string, (args: Uint8Array) => Uint8Array | null>;
}

export class ModuleContractError extends Error {}

interface Metric { type: number; value: number; samples: number[] }

const toBytes = (v: string | Uint8Array | undefined) => typeof v === "string" ? Buffer.from(v, "utf8") : (v ?? new Uint8Array(0));

/** Checks what Envoy checks before it runs a module; throws ModuleContractError naming the problem. */
export function checkModuleContract(module: WebAssembly.Module): void {
  const env = new Set<string>(ENVOY_ENV_IMPORTS);
  const wasi = new Set<string>(ENVOY_WASI_IMPORTS);
  const bad = WebAssembly.Module.imports(module).filter((i) =>
    !(i.kind === "function" && ((i.module === "env" && env.has(i.name)) || (i.module === "wasi_snapshot_preview1" && wasi.has(i.name)))));
  if (bad.length > 0) {
    throw new ModuleContractError(`module imports what Envoy does not provide: ${bad.map((i) => `${i.module}.${i.name} (${i.kind})`).join(", ")}`);
  }
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  if (!exports.has("proxy_abi_version_0_2_1")) throw new ModuleContractError("module does not export proxy_abi_version_0_2_1");
  if (!exports.has("memory")) throw new ModuleContractError("module does not export memory");
  if (!exports.has("proxy_on_memory_allocate") && !exports.has("malloc")) {
    throw new ModuleContractError("module exports neither proxy_on_memory_allocate nor malloc");
  }
}

export class PluginHost {
  readonly clock: Clock;
  readonly random: ((buf: Uint8Array) => void) | undefined;
  readonly callouts: Callouts;
  readonly env: Record<string, string>;
  readonly logs: LogRecord[] = [];
  readonly sharedData = new Map<string, { value: Uint8Array; cas: number }>();
  readonly foreignFunctions: Record<string, (args: Uint8Array) => Uint8Array | null>;
  readonly vms: WasmVm[] = [];
  readonly failOpen: boolean;
  /** Host functions forced to return a status (fault injection for fail-open tests). */
  readonly faults = new Map<string, number>();
  logLevel: LogLevelValue;
  pluginConfig: Uint8Array;
  readonly vmConfig: Uint8Array;
  readonly vmId: string;
  private readonly logger?: (r: LogRecord) => void;
  private readonly metrics = new Map<string, Metric>();
  private readonly queues = new Map<number, { key: string; items: Uint8Array[]; worker: number; rootId: number }>();
  private readonly queueIds = new Map<string, number>();
  private nextQueueId = 1;
  private casCounter = 0;
  private nextWorker = 0;
  private readonly properties: Map<string, PropertyValue>;

  private constructor(opts: PluginOptions, module: WebAssembly.Module) {
    this.clock = opts.clock ?? new SystemClock();
    this.random = opts.random;
    this.callouts = opts.callouts ?? new RecordingCallouts();
    this.env = opts.env ?? {};
    this.logger = opts.logger;
    this.logLevel = opts.logLevel ?? LogLevel.Info;
    this.pluginConfig = toBytes(opts.pluginConfig);
    this.vmConfig = toBytes(opts.vmConfig);
    this.vmId = opts.vmId ?? "";
    this.failOpen = opts.failOpen ?? false;
    this.foreignFunctions = opts.foreignFunctions ?? {};
    this.properties = new Map(Object.entries({
      plugin_name: opts.pluginName ?? "shadowmesh",
      plugin_root_id: opts.rootId ?? "",
      plugin_vm_id: this.vmId,
      ...(opts.properties ?? {}),
    }));
    const workers = opts.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
    for (let i = 0; i < workers; i++) this.vms.push(new WasmVm(this, i, module));
  }

  /**
   * Loads the module on every worker: start, vm_start, configure. Throws when the module breaks the
   * contract, a VM fails, or the first configuration is rejected (Envoy refuses the listener then).
   */
  static async create(opts: PluginOptions): Promise<PluginHost> {
    const module = opts.wasm instanceof WebAssembly.Module ? opts.wasm : await WebAssembly.compile(opts.wasm as Uint8Array<ArrayBuffer>);
    checkModuleContract(module);
    const host = new PluginHost(opts, module);
    for (const vm of host.vms) {
      if (vm.failed) throw new Error(`worker ${vm.index}: VM failed while starting: ${vm.failure?.message}`);
      if (!vm.startVm(host.vmConfig)) throw new Error(`worker ${vm.index}: proxy_on_vm_start returned false${host.lastErrors()}`);
      if (!vm.configure(host.pluginConfig)) throw new Error(`worker ${vm.index}: proxy_on_configure rejected the configuration${host.lastErrors()}`);
    }
    return host;
  }

  private lastErrors(): string {
    const errs = this.logs.filter((l) => l.level >= LogLevel.Error).map((l) => l.message);
    return errs.length ? `: ${errs.slice(-3).join(" | ")}` : "";
  }

  /** Pushes a new plugin configuration to every worker; false when any worker rejected it (it keeps its previous one). */
  reconfigure(config: string | Uint8Array): boolean {
    const bytes = toBytes(config);
    let ok = true;
    for (const vm of this.vms) ok = vm.configure(bytes) && ok;
    if (ok) this.pluginConfig = bytes;
    return ok;
  }

  worker(i: number): WasmVm {
    const vm = this.vms[i];
    if (!vm) throw new RangeError(`no worker ${i} (there are ${this.vms.length})`);
    return vm;
  }

  /** Starts an HTTP stream on a worker (round-robin unless `worker` is given). */
  newHttpStream(opts: StreamOptions & { worker?: number } = {}): HttpStream {
    const w = opts.worker ?? (this.nextWorker++ % this.vms.length);
    return new HttpStream(this.worker(w), opts);
  }

  /** Makes host function `name` return `status` without running (undefined clears it). */
  injectFault(name: string, status: number | undefined): void {
    if (status === undefined) this.faults.delete(name); else this.faults.set(name, status);
  }

  /** Stops tick timers so a process can exit. */
  shutdown(): void { for (const vm of this.vms) vm.stopTicks(); }

  // ---- logs
  log(level: LogLevelValue, message: string, worker: number): void {
    if (level < this.logLevel) return;
    const r = { level, message, worker };
    this.logs.push(r);
    if (this.logs.length > 10000) this.logs.splice(0, this.logs.length - 10000);
    this.logger?.(r);
  }

  logsAt(level: LogLevelValue): string[] { return this.logs.filter((l) => l.level === level).map((l) => l.message); }

  static levelName(l: LogLevelValue): string { return LOG_LEVEL_NAMES[l]; }

  // ---- properties
  property(key: string, _worker: number): PropertyValue | undefined { return this.properties.get(key); }
  setProperty(key: string, value: PropertyValue): void { this.properties.set(key, value); }

  // ---- shared data (CAS: a non-zero cas must equal the stored one)
  setSharedData(key: string, value: Uint8Array, cas: number): boolean {
    const cur = this.sharedData.get(key);
    if (cas !== 0 && (!cur || cur.cas !== cas)) return false;
    this.sharedData.set(key, { value, cas: ++this.casCounter });
    return true;
  }

  // ---- shared queues (named per vm_id; the first registrant's root context is notified)
  registerQueue(name: string, worker: number, rootId: number): number {
    const key = `${this.vmId}\0${name}`;
    const existing = this.queueIds.get(key);
    if (existing !== undefined) return existing;
    const id = this.nextQueueId++;
    this.queueIds.set(key, id);
    this.queues.set(id, { key, items: [], worker, rootId });
    return id;
  }
  resolveQueue(vmId: string, name: string): number | undefined { return this.queueIds.get(`${vmId}\0${name}`); }
  enqueue(id: number, value: Uint8Array): boolean {
    const q = this.queues.get(id);
    if (!q) return false;
    q.items.push(value);
    this.vms[q.worker]?.queueReady(q.rootId, id);
    return true;
  }
  dequeue(id: number): Uint8Array | "missing" | "empty" {
    const q = this.queues.get(id);
    if (!q) return "missing";
    return q.items.shift() ?? "empty";
  }

  // ---- metrics (Envoy stats are global and named; ids are per VM)
  defineMetric(name: string, type: number): boolean {
    const m = this.metrics.get(name);
    if (m) return m.type === type;
    this.metrics.set(name, { type, value: 0, samples: [] });
    return true;
  }
  incrementMetric(name: string, delta: number): boolean {
    const m = this.metrics.get(name)!;
    if (m.type === MetricType.Histogram || (m.type === MetricType.Counter && delta < 0)) return false;
    m.value += delta;
    return true;
  }
  recordMetric(name: string, value: number): boolean {
    const m = this.metrics.get(name)!;
    if (m.type === MetricType.Histogram) { m.samples.push(value); if (m.samples.length > 100000) m.samples.shift(); return true; }
    m.value = value;
    return true;
  }
  metricValue(name: string): number | undefined {
    const m = this.metrics.get(name);
    return !m || m.type === MetricType.Histogram ? undefined : m.value;
  }
  metricSamples(name: string): number[] { return this.metrics.get(name)?.samples ?? []; }
  metricNames(): string[] { return [...this.metrics.keys()]; }
}

export { HeaderMap };
