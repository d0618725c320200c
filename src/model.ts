// webgpu-dropout/model: a small MLP trained on the GPU with dropout (MLP), Monte Carlo dropout
// over it or over any forward function (mcDropout, mcSample), the sampled dropout behind them
// (sampleDropout: one mask per sample, stream after stream), and the Matrix helpers they take.
export { type Matrix, oneHot, readMatrix, uploadMatrix } from './model/matrix.js';
export { DropoutInactiveError, type McDropoutOptions, type McDropoutResult, mcDropout, mcSample } from './model/mc.js';
export { type ForwardFn, MLP } from './model/mlp.js';
export type { ForwardOptions, GradientOptions, LossKind, MLPOptions, TrainOptions } from './model/mlp-options.js';
export { type SampleRandom, SITE_OFFSET_STRIDE, sampleDropout, siteOffset } from './model/sample.js';
