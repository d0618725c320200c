export { DropoutContext, Usage, CHUNK_ALIGN, type ContextOptions, type DispatchCall, type BoundBuffer } from './context.js';
export { PhiloxGenerator } from './generator.js';
export {
  dropout,
  dropoutBackward,
  randomWords,
  randomUniform,
  randomNormal,
  bernoulliMask,
  type DropoutOptions,
  type DropoutResult,
  type DropoutState,
  type DropoutBackwardOptions,
  type RandomOptions,
  type RandomOpOptions,
  type RandomResult,
  type RandomState,
  type BernoulliOptions,
} from './ops.js';
export { Layer, Dropout, type DropoutLayerOptions } from './layers.js';
export { requestDropoutDevice, describeAdapter, NO_WEBGPU_MESSAGE, type DeviceRequest, type AcquiredDevice } from './device.js';
export { keepRule, thresholdFor, toU64, U64_MAX, type U64, type KeepRule } from './contract.js';
export { philox4x32_10, mulhi32, contractWords } from './philox.js';
export * from './reference.js';
export { toHalfBits, fromHalfBits, toHalfArray, fromHalfArray } from './half.js';
export { DropoutError, InvalidArgumentError, UnsupportedError, DeviceLostError, GpuValidationError } from './errors.js';
export { kernels, type KernelRecord, type BindingUnit } from './kernels.js';
export { shaderSources, composeShader, type Dtype, type ShaderName } from './shaders.js';
export { readArray, dropoutArray } from './arrays.js';
