// webgpu-dropout/tfjs: the library's kernels as TensorFlow.js ops on the tfjs WebGPU backend.
//
// tfjs ops are synchronous: a kernel is recorded into the backend's open command encoder when the
// op is called, and the backend submits that encoder later (after a batch of dispatches, or on a
// read). The library's own ops record asynchronously (they await pipeline compiles), which would
// let tfjs submit the work that reads our output before our work is recorded. So this entry
// records the same kernel records (src/kernels/: no WGSL of its own) with the same Params words
// synchronously (src/tfjs/record.ts), into the backend's own encoder (src/tfjs/backend.ts), between
// the tfjs kernels that produce x and those that read y:
// - x's GPUBuffer is read in place (the backend's tensor storage), and y is a tensor the backend
//   allocated from its own pool, written in place: no copy, no readback, and tfjs frees y as usual;
// - the mask is never stored: the backward (tf.customGrad) regenerates it from (seed, stream, offset).

/**
 * The library's kernels as TensorFlow.js ops on the tfjs WebGPU backend (`@tensorflow/tfjs-core`
 * and `@tensorflow/tfjs-backend-webgpu` 4.x, optional peer dependencies). The ops take float32
 * tensors, run on the backend's own device and encoder (no copy, no readback), and are
 * differentiable to any order through `tf.customGrad`; the backward regenerates the mask from
 * (seed, stream, offset) instead of storing it. The mask is exactly the raw-buffer op's for the
 * same (seed, stream, offset). With another backend active the ops throw `UnsupportedError`.
 *
 * ```ts
 * import { dropout, useTfjsDevice } from 'webgpu-dropout/tfjs';
 * await useTfjsDevice(device); // Node; in a browser, await tf.setBackend('webgpu')
 * const y = dropout(tf.tensor([1, 2, 3, 4]), { p: 0.5, seed: 42 });
 * ```
 * @module webgpu-dropout/tfjs
 */
import * as tf from '@tensorflow/tfjs-core';
import { type KeepRule, keepRule, type RandomState } from './contract.js';
import { Got, InvalidArgumentError } from './errors.js';
import { beginOp, drawRandom, RANDOM_OPTION_NAMES, type RandomOptions } from './ops/common.js';
import { gaussianCall, gaussianSigma } from './ops/gaussian.js';
import { maskCall } from './ops/launch.js';
import { prepared } from './ops/prepare.js';
import { type ChannelLayout, dropPathNoiseShape, type NoiseShape, resolveNoiseShape, spatialNoiseShape } from './ops/shape.js';
import { checkOptionsObject, type OptionNames, optionNames } from './options.js';
import type { DropoutContext } from './runtime/context.js';
import type { KernelCall } from './runtime/dispatch.js';
import type { BoundBuffer } from './runtime/units.js';
import { tfjsContext } from './tfjs/backend.js';
import { checkTensor, runOp } from './tfjs/record.js';

export { setTfjsContext, tfjsContext, useTfjsDevice, type WebGPUBackendLike, webgpuBackend } from './tfjs/backend.js';

// ---------------------------------------------------------------------------------------------
// Ops

/** Where randomness comes from, as in the raw-buffer ops: `seed` (with `stream`, default 0), else
 * `generator` (its next stream), else the context's default generator; `offset` is the mask index of
 * element 0. */
export type TfRandomOptions = RandomOptions;

/** The options of the tfjs {@link dropout} (and, less `noiseShape`, of the other tfjs ops). */
export interface TfDropoutOptions extends RandomOptions {
  /** Drop probability in [0, 1]. */
  p: number;
  /** Mask shape: x's shape with some dimensions 1 (one decision per noise-shape element), as tf.dropout's. */
  noiseShape?: NoiseShape;
  /** false: the identity (a copy of x, no stream drawn). Default true. */
  training?: boolean;
  /** Called with the (seed, stream, offset) the call used, to replay its mask. */
  onState?: (state: RandomState) => void;
}

const BASE_NAMES = { ...RANDOM_OPTION_NAMES, p: true, training: true, onState: true } as const;
const DROPOUT_NAMES = optionNames<TfDropoutOptions>({ ...BASE_NAMES, noiseShape: true });

/** What the prologue settled. */
interface Begun {
  ctx: DropoutContext;
  training: boolean;
}

/** The tfjs ops' prologue: x a live float32 tensor, then the core ops' (the context alive, only
 * the op's option names, training a boolean), and `onState` a function. */
function beginTfOp(x: unknown, opts: TfDropoutOptions, names: OptionNames): Begun {
  checkTensor(x, 'x');
  const ctx = tfjsContext();
  const { training } = beginOp(ctx, opts, 'an object with at least p', names);
  if (opts.onState !== undefined && typeof opts.onState !== 'function')
    throw new InvalidArgumentError('onState', 'a function', opts.onState);
  return { ctx, training };
}

/**
 * The op for x after its checks: its stream drawn now (once; none in eval mode, where x is
 * copied), then `call` for the forward and, through the op itself, for the gradient (dy mapped
 * with the same mask, regenerated, never stored), so that it is differentiable to any order.
 */
function differentiable(
  begun: Begun,
  x: tf.Tensor,
  opts: TfDropoutOptions,
  rule: KeepRule,
  call: (x: BoundBuffer, out: BoundBuffer, rand: RandomState) => KernelCall,
): tf.Tensor {
  const { ctx, training } = begun;
  const rand = drawRandom(ctx, opts, training);
  if (!training) return tf.clone(x);
  opts.onState?.(rand);
  if (rule.kind === 'identity' || x.size === 0) return tf.clone(x);
  if (rule.kind === 'zeros') return tf.zerosLike(x);
  // y = c * x elementwise (c: the masked scale, or 1 + sigma z), so the gradient is the same map on
  // dy, whose own gradient is that map again. The gradient calls the op, not the map: tfjs puts on
  // its tape only what ran through an op (runKernelFunc), and the map's bare output would leave
  // tf.grad of a gradient with no path through it, silently dropping those terms.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: runOp(ctx, args[0] as tf.Tensor, (xb, out) => call(xb, out, rand)),
    gradFunc: (dy: tf.Tensor) => op(dy.dtype === 'float32' ? dy : tf.cast(dy, 'float32')),
  })) as (t: tf.Tensor) => tf.Tensor;
  return op(x);
}

/** y = keep ? x * scale : 0 under a (broadcast) noise shape, differentiable: the core ops' call. */
function maskedOp(begun: Begun, x: tf.Tensor, opts: TfDropoutOptions, rule: KeepRule, noiseShape: number[], scaleByKeep = true): tf.Tensor {
  const prep = prepared(x.shape, noiseShape, 'f32');
  const scale = rule.kind === 'mask' && scaleByKeep ? rule.scale : 1;
  return differentiable(begun, x, opts, rule, (xb, out, rand) => maskCall(prep, xb, out, rule, rand, scale, undefined));
}

/**
 * Inverted dropout of a float32 tensor on the tfjs WebGPU backend: y = x * keep / (1 - p), keep
 * decided by the contract's words for (seed, stream, offset + mask index), as `dropout()` on raw
 * buffers. Differentiable: the gradient is dy * keep / (1 - p), the mask regenerated.
 * A drop-in for `tf.dropout(x, rate, noiseShape, seed)`: `dropout(x, { p: rate, noiseShape })`.
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} (before a stream is
 *   drawn or anything recorded) for a tensor that is not float32 or a bad option;
 *   {@link "webgpu-dropout".UnsupportedError | UnsupportedError} when the active backend is not 'webgpu'.
 */
export function dropout(x: tf.Tensor, opts: TfDropoutOptions): tf.Tensor {
  const begun = beginTfOp(x, opts, DROPOUT_NAMES);
  return maskedOp(begun, x, opts, keepRule(opts.p), resolveNoiseShape(x.shape, opts.noiseShape));
}

/** The options of the tfjs {@link spatialDropout}. */
export interface TfSpatialDropoutOptions extends Omit<TfDropoutOptions, 'noiseShape'> {
  /** Default 'channels-last' (N, ..., C), tfjs' and Keras' default; 'channels-first' is (N, C, ...). */
  layout?: ChannelLayout;
  /** Or the channel axis itself (negative counts from the end; axis 0 is the batch). */
  channelAxis?: number;
}

const SPATIAL_NAMES = optionNames<TfSpatialDropoutOptions>({ ...BASE_NAMES, layout: true, channelAxis: true });

/** SpatialDropout1D/2D/3D: whole channels dropped, one decision per (sample, channel); x of rank
 * >= 2. Differentiable. Throws as {@link dropout} does. */
export function spatialDropout(x: tf.Tensor, opts: TfSpatialDropoutOptions): tf.Tensor {
  const begun = beginTfOp(x, opts, SPATIAL_NAMES);
  const rule = keepRule(opts.p);
  if (x.rank < 2)
    throw new InvalidArgumentError('x', 'a tensor of rank >= 2 (N, ..., C) or (N, C, ...)', new Got(`shape [${x.shape.join(', ')}]`));
  const layout = opts.layout ?? (opts.channelAxis === undefined ? 'channels-last' : undefined);
  return maskedOp(begun, x, opts, rule, spatialNoiseShape(x.shape, { layout, channelAxis: opts.channelAxis }));
}

/** The options of the tfjs {@link dropPath}. */
export interface TfDropPathOptions extends Omit<TfDropoutOptions, 'noiseShape'> {
  /** Divide kept samples by 1 - p (timm's scale_by_keep, default true). */
  scaleByKeep?: boolean;
}

const DROP_PATH_NAMES = optionNames<TfDropPathOptions>({ ...BASE_NAMES, scaleByKeep: true });

/** DropPath / stochastic depth: each sample (axis 0) kept or zeroed whole; x of rank >= 1.
 * Differentiable. Throws as {@link dropout} does. */
export function dropPath(x: tf.Tensor, opts: TfDropPathOptions): tf.Tensor {
  const begun = beginTfOp(x, opts, DROP_PATH_NAMES);
  const rule = keepRule(opts.p);
  if (opts.scaleByKeep !== undefined && typeof opts.scaleByKeep !== 'boolean')
    throw new InvalidArgumentError('scaleByKeep', 'a boolean', opts.scaleByKeep);
  if (x.rank < 1) throw new InvalidArgumentError('x', 'a tensor of rank >= 1 (the batch first)', new Got('a scalar'));
  return maskedOp(begun, x, opts, rule, dropPathNoiseShape(x.shape), opts.scaleByKeep ?? true);
}

/**
 * Gaussian dropout (Keras GaussianDropout): y = x * (1 + sigma z), sigma = sqrt(p / (1 - p)), z
 * the contract's standard normal of the element's mask index. p in [0, 1). Differentiable:
 * dx = dy * (1 + sigma z), z regenerated. Throws as {@link dropout} does (p = 1 included).
 */
export function gaussianDropout(x: tf.Tensor, opts: TfDropoutOptions): tf.Tensor {
  const begun = beginTfOp(x, opts, DROPOUT_NAMES);
  gaussianSigma(opts.p); // p in [0, 1)
  const prep = prepared(x.shape, resolveNoiseShape(x.shape, opts.noiseShape), 'f32');
  // The kernel's threshold is unused; a p of 0 is the identity.
  const rule: KeepRule = opts.p === 0 ? { kind: 'identity' } : { kind: 'mask', threshold: 0, scale: 1 };
  return differentiable(begun, x, opts, rule, (xb, out, rand) => gaussianCall(prep, xb, out, opts.p, rand));
}

// ---------------------------------------------------------------------------------------------
// MC-Dropout

/** The options of the tfjs {@link mcDropout}. */
export interface TfMcDropoutOptions {
  /** T, the number of stochastic passes (at least 2). */
  samples: number;
  /** 'regression' (default): statistics of the outputs. 'classification': outputs are logits
   * (..., K), statistics of their softmax plus the entropies and BALD. */
  task?: 'regression' | 'classification';
}

const MC_NAMES = optionNames<TfMcDropoutOptions>({ samples: true, task: true });

/** What the tfjs {@link mcDropout} returns: tensors, which the caller disposes. */
export interface TfMcDropoutResult {
  /** Mean over the T passes (of the softmax probabilities, for classification). */
  mean: tf.Tensor;
  /** Population variance over the T passes, per output. */
  variance: tf.Tensor;
  /** Classification only, per row (the outputs' last axis summed out), in nats: the predictive entropy H[mean p]. */
  predictiveEntropy?: tf.Tensor;
  /** Classification only, per row, in nats: the expected entropy E_t[H[p_t]]. */
  expectedEntropy?: tf.Tensor;
  /** Classification only, per row, in nats: BALD, the mutual information H[mean p] - E_t[H[p_t]] (clamped at 0). */
  mutualInformation?: tf.Tensor;
}

/** -sum p log p over the last axis, with 0 log 0 = 0. */
function entropy(p: tf.Tensor): tf.Tensor {
  return tf.neg(tf.sum(tf.where(tf.greater(p, 0), tf.mul(p, tf.log(p)), tf.zerosLike(p)), -1));
}

/**
 * MC-Dropout (Gal & Ghahramani 2016) for a tfjs model: `forward` is called T times with dropout
 * active, e.g. `(x) => model.apply(x, { training: true }) as tf.Tensor` for a model holding
 * WebGPUDropout layers (each call takes new streams), and the predictive statistics are computed as
 * tensors, with no readback. The intermediate tensors are disposed; the result's are the caller's.
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} for a bad `forward`,
 *   `x` or option (samples < 2 included), or a `forward` that returns no tensor.
 */
export function mcDropout(forward: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, opts: TfMcDropoutOptions): TfMcDropoutResult {
  if (typeof forward !== 'function') throw new InvalidArgumentError('forward', 'a function (x: tf.Tensor) => tf.Tensor', forward);
  if (!(x instanceof tf.Tensor)) throw new InvalidArgumentError('x', 'a tf.Tensor', x);
  checkOptionsObject(opts, MC_NAMES, 'options', 'an object with samples', opts);
  if (!Number.isSafeInteger(opts.samples) || opts.samples < 2) throw new InvalidArgumentError('samples', 'an integer >= 2', opts.samples);
  const task = opts.task ?? 'regression';
  if (task !== 'regression' && task !== 'classification') throw new InvalidArgumentError('task', "'regression' or 'classification'", task);
  return tf.tidy(() => {
    const outputs: tf.Tensor[] = [];
    for (let t = 0; t < opts.samples; t++) {
      const y = forward(x);
      if (!(y instanceof tf.Tensor)) throw new InvalidArgumentError('forward', 'a function returning a tf.Tensor', y);
      outputs.push(task === 'classification' ? tf.softmax(y) : y);
    }
    const stacked = tf.stack(outputs);
    const { mean, variance } = tf.moments(stacked, 0);
    if (task === 'regression') return { mean, variance };
    const predictiveEntropy = entropy(mean);
    const expectedEntropy = tf.mean(entropy(stacked), 0);
    const mutualInformation = tf.relu(tf.sub(predictiveEntropy, expectedEntropy));
    return { mean, variance, predictiveEntropy, expectedEntropy, mutualInformation };
  }) as TfMcDropoutResult;
}
