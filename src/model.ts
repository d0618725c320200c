// webgpu-dropout/model: a small MLP trained on the GPU with dropout (MLP), Monte Carlo dropout
// over it or over any forward function (mcDropout, mcSample), the sampled dropout behind them
// (sampleDropout: one mask per sample, stream after stream), and the Matrix helpers they take.

/**
 * A small model kit on the GPU and Monte Carlo dropout over it: the {@link MLP} (Linear -> ReLU ->
 * Dropout per hidden layer, Adam or SGD, nothing read back unless asked), {@link mcDropout} (T
 * stochastic passes with the predictive statistics accumulated on the GPU; sample t draws from
 * (seed, stream + t)), {@link mcSample} (one sample replayed), {@link sampleDropout} (dropout inside
 * a forward function of your own) and the row-major f32 {@link Matrix} helpers.
 *
 * ```ts
 * const mlp = new MLP(ctx, { sizes: [1, 64, 64, 1], dropout: 0.1, seed: 7 });
 * for (let i = 0; i < 400; i++) await mlp.trainStep(x, y, { loss: 'mse' });
 * const { mean, variance } = await mcDropout(ctx, mlp, grid, { samples: 64, seed: 5 });
 * ```
 * @module webgpu-dropout/model
 */
export { type Matrix, oneHot, readMatrix, uploadMatrix } from './model/matrix.js';
export { DropoutInactiveError, type McDropoutOptions, type McDropoutResult, mcDropout, mcSample } from './model/mc.js';
export { type ForwardFn, MLP } from './model/mlp.js';
export type { ForwardOptions, GradientOptions, LossKind, MLPOptions, TrainOptions } from './model/mlp-options.js';
export { type SampleRandom, SITE_OFFSET_STRIDE, sampleDropout, siteOffset } from './model/sample.js';
