// Public surface of the TypeScript proxy-wasm host (ABI v0.2.1): the filter's test host and the
// embedded data plane's Wasm runtime.
export * from "./abi.js";
export * from "./clock.js";
export * from "./callouts.js";
export * from "./headers.js";
export * from "./properties.js";
export { PluginHost, checkModuleContract, ModuleContractError, type PluginOptions, type LogRecord } from "./plugin.js";
export { WasmVm } from "./vm.js";
export { HttpStream, type StreamOptions, type LocalResponse } from "./stream.js";
