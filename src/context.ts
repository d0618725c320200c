// The context's public names, from src/runtime/ (kept so that imports of './context.js' stay short).
export { DropoutContext, runtimeOf, type Runtime } from './runtime/context.js';
export { defaultTuning, isCpuAdapter, type ContextOptions, type LaunchTuning, type MaskTablePolicy } from './runtime/options.js';
export { CHUNK_ALIGN, Usage, bindingBytes, dtypeBytes, isGpuBuffer, type BoundBuffer } from './runtime/units.js';
export type { DispatchCall } from './runtime/dispatch.js';
export type { PipelineLayout } from './runtime/bindings.js';
export type { Dtype, F16Path } from './kernels/shaders.js';
