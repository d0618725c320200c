// The package's main entry: what a user of the ops and layers needs (the context, device helpers,
// the ops, the layers, the generator, errors, readback helpers and the types their signatures
// use). The CPU reference is `webgpu-dropout/reference`, the MLP kit and MC-Dropout sampling
// `webgpu-dropout/model`. The WebGPU types (GPUBuffer, GPUDevice...) come from the consumer's
// TypeScript (lib.dom from 6.0, or @types/web); for TypeScript 5, each entry's declarations have a
// `types@<6.0` twin that references @webgpu/types (scripts/legacy-types.mjs).

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
  SpatialDropout1D,
  SpatialDropout2D,
  SpatialDropout3D,
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
  type OpState,
  type RandomOpOptions,
  type RandomOptions,
  type RandomResult,
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
