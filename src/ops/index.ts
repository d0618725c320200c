// The functional ops, one file per concern: common.ts (the prologue and state every op shares),
// dropout.ts, random.ts, shape.ts (shapes, noise shapes, the broadcast table), prepare.ts and
// launch.ts (what the structured ops share before and at launch), structured.ts, gaussian.ts,
// alpha.ts, bias-residual.ts. This file is what the package re-exports.

export { alphaDropout, alphaDropoutBackward, alphaDropoutCoefficients, SELU_ALPHA, SELU_LAMBDA } from './alpha.js';
export {
  type BiasDropoutResidualGrads,
  type BiasDropoutResidualOptions,
  biasDropoutResidual,
  biasDropoutResidualBackward,
} from './bias-residual.js';
export type { OpOptions, OpState, RandomOptions, RandomState, RecordOptions } from './common.js';
export {
  type DropoutBackwardOptions,
  type DropoutOptions,
  type DropoutResult,
  type DropoutState,
  dropout,
  dropoutBackward,
} from './dropout.js';
export { gaussianDropout, gaussianDropoutBackward, gaussianSigma } from './gaussian.js';
export type { BackwardOptions, StructuredOp, StructuredOptions, StructuredResult, StructuredState } from './prepare.js';
export {
  type BernoulliOptions,
  bernoulliMask,
  type RandomOpOptions,
  type RandomResult,
  randomNormal,
  randomUniform,
  randomWords,
} from './random.js';
export {
  broadcastTable,
  type ChannelLayout,
  type ChannelOptions,
  channelAxisFor,
  checkShape,
  dropPathNoiseShape,
  MAX_RANK,
  type NoiseShape,
  resolveNoiseShape,
  type Shape,
  shapeSize,
  spatialNoiseShape,
  variationalNoiseShape,
} from './shape.js';
export {
  type DropConnectOptions,
  type DropPathAddGrads,
  type DropPathOptions,
  dropConnect,
  dropConnectBackward,
  dropPath,
  dropPathAdd,
  dropPathAddBackward,
  dropPathRates,
  type KeepMaskOptions,
  type SpatialDropoutOptions,
  type StructuredDropoutOptions,
  spatialDropout,
  structuredDropout,
  structuredDropoutBackward,
  structuredKeepMask,
  type VariationalDropoutOptions,
  variationalDropout,
} from './structured.js';
