// The package's main entry. The reference directive below is kept in dist/index.d.ts, so a
// consumer's TypeScript sees the WebGPU types (GPUBuffer, GPUDevice...) without configuring them.
/// <reference types="@webgpu/types" preserve="true" />
export { DropoutContext } from './runtime/context.js';
export type { KernelCall } from './runtime/dispatch.js';
export { defaultTuning, isCpuAdapter, type ContextOptions, type LaunchTuning } from './runtime/options.js';
export { Usage, CHUNK_ALIGN, dtypeBytes, type BoundBuffer } from './runtime/units.js';
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
} from './ops/index.js';
export { Layer, Dropout, type DropoutLayerOptions, type DropoutCall } from './layers/dropout.js';
export { requestDropoutDevice, describeAdapter, NO_WEBGPU_MESSAGE, type DeviceRequest, type AcquiredDevice } from './device.js';
export { keepRule, thresholdFor, toU64, U64_MAX, type U64, type KeepRule } from './contract.js';
export { philox4x32_10, mulhi32, contractWords } from './reference/philox.js';
export * from './reference/dropout.js';
export { toHalfBits, fromHalfBits, toHalfArray, fromHalfArray } from './half.js';
export { DropoutError, Got, InvalidArgumentError, UnsupportedError, DeviceLostError, GpuValidationError } from './errors.js';
export { kernels, type KernelRecord, type BindingUnit } from './kernels/elementwise.js';
export { shaderSources, composeShader, type Dtype, type F16Path, type ShaderName } from './kernels/shaders.js';
export { readArray, dropoutArray } from './arrays.js';
export { MLP, type ForwardFn } from './model/mlp.js';
export { type MLPOptions, type LossKind } from './model/mlp-options.js';
export { uploadMatrix, readMatrix, oneHot, checkMatrix, type Matrix } from './model/matrix.js';
export { sampleDropout, siteOffset, SITE_OFFSET_STRIDE, type SampleRandom } from './model/sample.js';
export { referenceMlpForward, referenceLoss, referenceMcStats, type ReferenceMlp, type ReferenceSample, type ReferenceMcStats } from './model/reference.js';
export { mcDropout, mcSample, DropoutInactiveError, type McDropoutOptions, type McDropoutResult } from './model/mc.js';
export {
  structuredDropout, structuredDropoutBackward, structuredKeepMask, spatialDropout, dropPath, dropPathAdd, dropPathAddBackward, dropPathRates,
  variationalDropout, dropConnect, dropConnectBackward, gaussianDropout, gaussianDropoutBackward, gaussianSigma, alphaDropout, alphaDropoutBackward,
  alphaDropoutCoefficients, biasDropoutResidual, biasDropoutResidualBackward, spatialNoiseShape, dropPathNoiseShape, variationalNoiseShape,
  channelAxisFor, resolveNoiseShape, broadcastTable, checkShape, shapeSize, MAX_RANK, SELU_LAMBDA, SELU_ALPHA,
  type Shape, type NoiseShape, type ChannelLayout, type ChannelOptions, type StructuredOptions, type StructuredDropoutOptions, type StructuredState,
  type StructuredResult, type StructuredOp, type BackwardOptions, type SpatialDropoutOptions, type DropPathOptions, type VariationalDropoutOptions,
  type DropConnectOptions, type KeepMaskOptions, type BiasDropoutResidualOptions, type BiasDropoutResidualGrads,
} from './ops/index.js';
export { structuredKernels } from './kernels/structured.js';
export {
  SpatialDropout1D, SpatialDropout2D, SpatialDropout3D, Dropout1d, Dropout2d, Dropout3d, DropPath, VariationalDropout, GaussianDropout, AlphaDropout, DropConnect,
  type StructuredLayerOptions, type SpatialDropoutLayerOptions, type LayerCall,
} from './layers/structured.js';
export {
  referenceMaskIndices, referenceStructuredKeep, referenceStructuredDropout, referenceStructuredDropoutBackward, referenceDropPathAdd, referenceGaussianDropout,
  referenceGaussianDropoutBackward, referenceAlphaDropout, referenceAlphaDropoutBackward, referenceBiasDropoutResidual, referenceBiasDropoutResidualBackward,
  type ReferenceStructured,
} from './reference/structured.js';
