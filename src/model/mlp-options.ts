// The MLP's options and their checks: the constructor's (sizes, dropout, optimiser, seed) and
// the option names of its methods.
import { toU64, type U64 } from '../contract.js';
import { Got, InvalidArgumentError } from '../errors.js';
import type { PhiloxGenerator } from '../generator.js';
import { checkOptionsObject, type OptionNames, optionNames } from '../options.js';
import { contractWords } from '../reference/philox.js';
import type { DropoutContext } from '../runtime/context.js';
import { isPositiveInteger, wholeBindingLimit } from './matrix.js';
import type { SampleRandom } from './sample.js';

/** The training loss: 'mse' (mean squared error) or 'xent' (softmax cross-entropy against target
 * distributions, e.g. one-hot rows from `oneHot`). */
export type LossKind = 'mse' | 'xent';

/** The options of the {@link MLP} constructor. */
export interface MLPOptions {
  /** Layer widths [inputs, hidden..., outputs], at least two entries. */
  sizes: readonly number[];
  /** Drop probability after every hidden layer's ReLU, in [0, 1) (default 0: no dropout). */
  dropout?: number;
  /** Seed of the weight initialisation (stream 0) and of training's dropout masks (streams 1, 2, ...).
   * Default: drawn from the context's generator (it takes one stream), so each MLP gets its own,
   * and a context created with a seed makes the same MLPs in the same order. */
  seed?: U64;
  /** 'adam' (default) or 'sgd'. */
  optimizer?: 'adam' | 'sgd';
  /** The step size, a positive finite number (default 0.01). */
  learningRate?: number;
  /** Adam's first-moment decay rate, in [0, 1) (default 0.9). */
  beta1?: number;
  /** Adam's second-moment decay rate, in [0, 1) (default 0.999). */
  beta2?: number;
  /** Adam's epsilon, a positive finite number (default 1e-8). */
  epsilon?: number;
}

const MLP_OPTIONS = optionNames<MLPOptions>({
  sizes: true,
  dropout: true,
  seed: true,
  optimizer: true,
  learningRate: true,
  beta1: true,
  beta2: true,
  epsilon: true,
});

/** The options of {@link MLP.forward}. */
export type ForwardOptions = {
  /** Dropout active, drawn from this (MC sampling); absent: the eval-mode network. */
  random?: SampleRandom;
  /** Record into this encoder instead of submitting (then `ctx.submitted(encoder)` after your submit). */
  encoder?: GPUCommandEncoder;
};
/** The options of {@link MLP.trainStep}. */
export type TrainOptions = {
  /** The loss to minimise. */
  loss: LossKind;
  /** Read back and return the batch's mean training loss (default false: nothing is read back). Not with `encoder`. */
  readLoss?: boolean;
  /** Record the step into this encoder instead of submitting it (then `ctx.submitted(encoder)` after your submit). */
  encoder?: GPUCommandEncoder;
};
/** The options of {@link MLP.gradients}. */
export type GradientOptions = {
  /** The loss to differentiate. */
  loss: LossKind;
  /** Dropout drawn from this (with `samples: 1`); absent: no dropout. */
  random?: SampleRandom;
};
export const FORWARD_OPTIONS = optionNames<ForwardOptions>({ random: true, encoder: true });
export const PREDICT_OPTIONS = optionNames<{ encoder?: GPUCommandEncoder }>({ encoder: true });
export const TRAIN_OPTIONS = optionNames<TrainOptions>({ loss: true, readLoss: true, encoder: true });
export const EVALUATE_OPTIONS = optionNames<{ loss: LossKind }>({ loss: true });
export const GRADIENT_OPTIONS = optionNames<GradientOptions>({ loss: true, random: true });

/** A method's options object, with only the names it takes. */
export function checkMethodOptions(opts: unknown, names: OptionNames): void {
  checkOptionsObject(opts, names, 'options', `an object of options (${[...names].join(', ')})`, opts);
}

/** The MLP's settings, checked (the seed drawn from the context's generator when not given). */
export interface MLPSettings {
  sizes: number[];
  p: number;
  optimizer: 'adam' | 'sgd';
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  seed: bigint;
}

/** Checks the MLP constructor's options; draws a seed from the context's generator only once all pass. */
export function checkMLPOptions(ctx: DropoutContext, options: MLPOptions): MLPSettings {
  checkOptionsObject(options, MLP_OPTIONS, 'options', 'an object with sizes', options);
  const sizes = options.sizes;
  if (!Array.isArray(sizes) || sizes.length < 2 || !sizes.every(isPositiveInteger)) {
    throw new InvalidArgumentError('sizes', 'an array of at least two positive integer widths', sizes);
  }
  checkParameterCount(ctx, sizes);
  const p = options.dropout ?? 0;
  if (!(typeof p === 'number' && p >= 0 && p < 1)) throw new InvalidArgumentError('dropout', 'a probability in [0, 1)', options.dropout);
  const optimizer = options.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new InvalidArgumentError('optimizer', "'adam' or 'sgd'", options.optimizer);
  const learningRate = checkPositive(options.learningRate ?? 0.01, 'learningRate');
  const beta1 = checkDecay(options.beta1 ?? 0.9, 'beta1');
  const beta2 = checkDecay(options.beta2 ?? 0.999, 'beta2');
  const epsilon = checkPositive(options.epsilon ?? 1e-8, 'epsilon');
  const seed = options.seed === undefined ? drawSeed(ctx.generator) : toU64(options.seed, 'seed');
  return { sizes: [...sizes], p, optimizer, learningRate, beta1, beta2, epsilon, seed };
}

/**
 * The parameters, their gradients and Adam's two moments are each one flat f32 buffer that the
 * kernels bind whole: refused here, before the weights are drawn (seconds of CPU for a large
 * network) or anything is allocated, rather than by WebGPU at the first submit. Every activation
 * is at most as wide as the parameters are many, so one row of a batch always fits too.
 */
function checkParameterCount(ctx: DropoutContext, sizes: readonly number[]): void {
  let count = 0;
  for (let l = 1; l < sizes.length; l++) count += sizes[l - 1]! * sizes[l]! + sizes[l]!;
  const limit = wholeBindingLimit(ctx);
  if (count * 4 > limit.bytes) {
    throw new InvalidArgumentError(
      'sizes',
      `widths whose parameters fit one storage binding (${count} f32 parameters take ${count * 4} bytes, over this device's ${limit.name} of ${limit.bytes} bytes)`,
      new Got(`[${sizes.join(', ')}]`),
    );
  }
}

/** Adam's decay rates: in [0, 1) (1 would divide by zero in the bias correction). */
function checkDecay(v: unknown, argument: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new InvalidArgumentError(argument, 'a number in [0, 1)', v);
  return v;
}

/** A 64-bit seed from the generator's next stream (its first two contract words). */
function drawSeed(generator: PhiloxGenerator): bigint {
  const [lo, hi] = contractWords(generator.seed, generator.take(), 2);
  return (BigInt(hi!) << 32n) | BigInt(lo!);
}

function checkPositive(v: unknown, argument: string): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new InvalidArgumentError(argument, 'a positive finite number', v);
  return v;
}
