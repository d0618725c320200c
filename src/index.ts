// The package's main entry: what a user of the ops and layers needs (the context, device helpers,
// the ops, the layers, the generator, errors, readback helpers and the types their signatures
// use). The CPU reference is `webgpu-dropout/reference`, the MLP kit and MC-Dropout sampling
// `webgpu-dropout/model`. The WebGPU types (GPUBuffer, GPUDevice...) come from the consumer's
// TypeScript (lib.dom from 6.0, or @types/web); for TypeScript 5, each entry's declarations have a
// `types@<6.0` twin that references @webgpu/types (scripts/legacy-types.mjs).

/**
 * Dropout for WebGPU whose masks are a pure function of (seed, stream, element index), through
 * Philox4x32-10: the {@link DropoutContext}, device helpers, the ops on `GPUBuffer`s and their
 * backward passes, the layer classes, the {@link PhiloxGenerator}, errors, readback and f16
 * helpers. Every op takes the context first and an options object last, and resolves to its output
 * and the state its backward needs; bad arguments reject with an {@link InvalidArgumentError}
 * naming them, before anything is recorded.
 *
 * ```ts
 * import { DropoutContext, dropout, dropoutBackward, requestDropoutDevice } from 'webgpu-dropout';
 *
 * const { device } = await requestDropoutDevice();
 * const ctx = await DropoutContext.create(device);
 * const x = ctx.upload(new Float32Array([1, 2, 3, 4, 5]));
 * const { output, state } = await dropout(ctx, x, { p: 0.1, seed: 42n });
 * const dy = ctx.upload(new Float32Array([1, 1, 1, 1, 1]));
 * const dx = await dropoutBackward(ctx, dy, state); // the same mask, regenerated
 * ```
 * @module webgpu-dropout
 */

export type { ArrayDropoutOptions } from './arrays.js';
export { dropoutArray, readArray } from './arrays.js';
export { type RandomState, thresholdFor, type U64 } from './contract.js';
export { type AcquiredDevice, type DeviceRequest, describeAdapter, requestDropoutDevice } from './device.js';
export { DeviceLostError, DropoutError, GpuValidationError, InvalidArgumentError, UnsupportedError } from './errors.js';
export { PhiloxGenerator } from './generator.js';
export { fromHalfArray, fromHalfBits, toHalfArray, toHalfBits } from './half.js';
export type { Dtype, F16Path } from './kernels/shaders.js';
export { Dropout, type DropoutCall, type DropoutLayerOptions, Layer } from './layers/dropout.js';
export {
  AlphaDropout,
  DropConnect,
  Dropout1d,
  Dropout2d,
  Dropout3d,
  DropPath,
  GaussianDropout,
  type LayerCall,
  type RandomLayer,
  SpatialDropout1D,
  SpatialDropout2D,
  SpatialDropout3D,
  type SpatialDropoutLayer,
  type SpatialDropoutLayerOptions,
  type StructuredLayerOptions,
  VariationalDropout,
} from './layers/structured.js';
export {
  alphaDropout,
  alphaDropoutBackward,
  alphaDropoutCoefficients,
  type BackwardOptions,
  type BernoulliOptions,
  type BiasDropoutResidualGrads,
  type BiasDropoutResidualOptions,
  bernoulliMask,
  biasDropoutResidual,
  biasDropoutResidualBackward,
  type ChannelLayout,
  type ChannelOptions,
  type DropConnectOptions,
  type DropoutBackwardOptions,
  type DropoutOptions,
  type DropoutResult,
  type DropoutState,
  type DropPathAddGrads,
  type DropPathOptions,
  dropConnect,
  dropConnectBackward,
  dropout,
  dropoutBackward,
  dropPath,
  dropPathAdd,
  dropPathAddBackward,
  dropPathRates,
  gaussianDropout,
  gaussianDropoutBackward,
  gaussianSigma,
  type KeepMaskOptions,
  type NoiseShape,
  type OpOptions,
  type OpState,
  type RandomOpOptions,
  type RandomOptions,
  type RandomResult,
  type RecordOptions,
  randomNormal,
  randomUniform,
  randomWords,
  SELU_ALPHA,
  SELU_LAMBDA,
  type Shape,
  type SpatialDropoutOptions,
  type StructuredDropoutOptions,
  type StructuredOp,
  type StructuredOptions,
  type StructuredResult,
  type StructuredState,
  spatialDropout,
  structuredDropout,
  structuredDropoutBackward,
  structuredKeepMask,
  type VariationalDropoutOptions,
  variationalDropout,
} from './ops/index.js';
export { DropoutContext } from './runtime/context.js';
export type { ContextOptions, LaunchTuning, MaskTablePolicy } from './runtime/options.js';
export type { BufferPool } from './runtime/pool.js';
