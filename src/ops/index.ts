// The functional ops, one file per concern: common.ts (the prologue and state every op shares),
// dropout.ts, random.ts, shape.ts (shapes, noise shapes, the broadcast table), prepare.ts and
// launch.ts (what the structured ops share before and at launch), structured.ts, gaussian.ts,
// alpha.ts, bias-residual.ts. This file is what the package re-exports.
export { type RandomOptions, type RandomState, type RecordOptions } from './common.js';
export { dropout, dropoutBackward, type DropoutOptions, type DropoutResult, type DropoutState, type DropoutBackwardOptions } from './dropout.js';
export { randomWords, randomUniform, randomNormal, bernoulliMask, type RandomOpOptions, type RandomResult, type BernoulliOptions } from './random.js';
export {
  MAX_RANK, checkShape, shapeSize, resolveNoiseShape, broadcastTable, channelAxisFor, spatialNoiseShape, dropPathNoiseShape, variationalNoiseShape,
  type Shape, type NoiseShape, type ChannelLayout, type ChannelOptions,
} from './shape.js';
export { type StructuredOptions, type StructuredOp, type StructuredState, type StructuredResult, type BackwardOptions } from './prepare.js';
export {
  structuredDropout, structuredDropoutBackward, structuredKeepMask, spatialDropout, dropPath, dropPathAdd, dropPathAddBackward, dropPathRates,
  variationalDropout, dropConnect, dropConnectBackward,
  type StructuredDropoutOptions, type SpatialDropoutOptions, type DropPathOptions, type VariationalDropoutOptions, type DropConnectOptions, type KeepMaskOptions,
} from './structured.js';
export { gaussianDropout, gaussianDropoutBackward, gaussianSigma } from './gaussian.js';
export { alphaDropout, alphaDropoutBackward, alphaDropoutCoefficients, SELU_LAMBDA, SELU_ALPHA } from './alpha.js';
export { biasDropoutResidual, biasDropoutResidualBackward, type BiasDropoutResidualOptions, type BiasDropoutResidualGrads } from './bias-residual.js';
