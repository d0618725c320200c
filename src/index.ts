// The package's main entry. The reference directive below is kept in dist/index.d.ts, so a
// consumer's TypeScript sees the WebGPU types (GPUBuffer, GPUDevice...) without configuring them.
/// <reference types="@webgpu/types" preserve="true" />

export { dropoutArray, readArray } from './arrays.js';
export { type KeepRule, keepRule, thresholdFor, toU64, type U64, U64_MAX } from './contract.js';
export { type AcquiredDevice, type DeviceRequest, describeAdapter, NO_WEBGPU_MESSAGE, requestDropoutDevice } from './device.js';
export { DeviceLostError, DropoutError, Got, GpuValidationError, InvalidArgumentError, UnsupportedError } from './errors.js';
export { PhiloxGenerator } from './generator.js';
export { fromHalfArray, fromHalfBits, toHalfArray, toHalfBits } from './half.js';
export { type BindingUnit, type KernelRecord, kernels } from './kernels/elementwise.js';
export { composeShader, type Dtype, type F16Path, type ShaderName, shaderSources } from './kernels/shaders.js';
export { structuredKernels } from './kernels/structured.js';
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
export { checkMatrix, type Matrix, oneHot, readMatrix, uploadMatrix } from './model/matrix.js';
export { DropoutInactiveError, type McDropoutOptions, type McDropoutResult, mcDropout, mcSample } from './model/mc.js';
export { type ForwardFn, MLP } from './model/mlp.js';
export type { LossKind, MLPOptions } from './model/mlp-options.js';
export {
  type ReferenceMcStats,
  type ReferenceMlp,
  type ReferenceSample,
  referenceLoss,
  referenceMcStats,
  referenceMlpForward,
} from './model/reference.js';
export { type SampleRandom, SITE_OFFSET_STRIDE, sampleDropout, siteOffset } from './model/sample.js';
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
  broadcastTable,
  type ChannelLayout,
  type ChannelOptions,
  channelAxisFor,
  checkShape,
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
  dropPathNoiseShape,
  dropPathRates,
  gaussianDropout,
  gaussianDropoutBackward,
  gaussianSigma,
  type KeepMaskOptions,
  MAX_RANK,
  type NoiseShape,
  type RandomOpOptions,
  type RandomOptions,
  type RandomResult,
  type RandomState,
  randomNormal,
  randomUniform,
  randomWords,
  resolveNoiseShape,
  SELU_ALPHA,
  SELU_LAMBDA,
  type Shape,
  type SpatialDropoutOptions,
  type StructuredDropoutOptions,
  type StructuredOp,
  type StructuredOptions,
  type StructuredResult,
  type StructuredState,
  shapeSize,
  spatialDropout,
  spatialNoiseShape,
  structuredDropout,
  structuredDropoutBackward,
  structuredKeepMask,
  type VariationalDropoutOptions,
  variationalDropout,
  variationalNoiseShape,
} from './ops/index.js';
export * from './reference/dropout.js';
export { contractWords, mulhi32, philox4x32_10 } from './reference/philox.js';
export {
  type ReferenceStructured,
  referenceAlphaDropout,
  referenceAlphaDropoutBackward,
  referenceBiasDropoutResidual,
  referenceBiasDropoutResidualBackward,
  referenceDropPathAdd,
  referenceGaussianDropout,
  referenceGaussianDropoutBackward,
  referenceMaskIndices,
  referenceStructuredDropout,
  referenceStructuredDropoutBackward,
  referenceStructuredKeep,
} from './reference/structured.js';
export { DropoutContext } from './runtime/context.js';
export type { KernelCall } from './runtime/dispatch.js';
export { type ContextOptions, defaultTuning, isCpuAdapter, type LaunchTuning } from './runtime/options.js';
export { type BoundBuffer, CHUNK_ALIGN, dtypeBytes, Usage } from './runtime/units.js';
