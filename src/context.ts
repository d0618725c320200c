// The context's names for the library's own modules, from src/runtime/.
export { DropoutContext, runtimeOf, type Runtime } from './runtime/context.js';
export { defaultTuning, isCpuAdapter, type ContextOptions, type LaunchTuning, type MaskTablePolicy } from './runtime/options.js';
export { CHUNK_ALIGN, Usage, bindingBytes, dtypeBytes, isGpuBuffer, type BoundBuffer } from './runtime/units.js';
export type { KernelCall } from './runtime/dispatch.js';
export type { PipelineLayout } from './runtime/bindings.js';
export type { Dtype, F16Path } from './kernels/shaders.js';
