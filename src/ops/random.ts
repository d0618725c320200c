// The contract's random numbers as ops of their own: raw words, uniforms, normals and the Bernoulli
// keep-mask dropout would use.
import { checkCount, keepRule } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { type KernelRecord, kernels } from '../kernels/elementwise.js';
import { optionNames } from '../options.js';
import type { DropoutContext, Runtime } from '../runtime/context.js';
import { bindingBytes } from '../runtime/units.js';
import {
  beginOp,
  RANDOM_OPTION_NAMES,
  type RandomOptions,
  type RandomState,
  type RecordOptions,
  resolveRandom,
  withOutput,
} from './common.js';

/** The options of {@link randomWords}, {@link randomUniform} and {@link randomNormal}. */
export interface RandomOpOptions extends RandomOptions, RecordOptions {
  /** Number of values to generate, at most 2^32 - 1 (and the output must fit the device's `maxBufferSize`). */
  count: number;
  /** Output buffer (default: a new pooled buffer), 4 bytes per value (or per 32 values, packed). */
  out?: GPUBuffer;
}

const RANDOM_OP_OPTIONS = optionNames<RandomOpOptions>({ count: true, out: true, ...RANDOM_OPTION_NAMES, encoder: true });

/** What the random-number ops return. */
export interface RandomResult {
  /** The values, one u32 or f32 per element (or 32 packed decisions per u32): `out` when given, else a pooled buffer. */
  output: GPUBuffer;
  /** The (seed, stream, offset) the call used: the same values again from the same state. */
  state: RandomState;
}

/** A random-number op after the prologue: `kernel` writes `opts.count` values (`unit` each). */
async function randomOp(
  ctx: DropoutContext,
  rt: Runtime,
  kernel: KernelRecord,
  opts: RandomOpOptions,
  threshold = 0,
  unit: 'word' | 'bit' = 'word',
): Promise<RandomResult> {
  const count = checkCount(opts.count);
  const bytes = bindingBytes(unit, 'f32', count);
  if (opts.out !== undefined) rt.transfers.checkStorage(opts.out, 'out', bytes);
  else rt.transfers.checkBufferSize(bytes, 'count', count);
  const state = resolveRandom(ctx, opts);
  const output = await withOutput(rt, opts.out, bytes, kernel.name, (out) =>
    rt.dispatcher.dispatch({
      kernel,
      count,
      buffers: { out: { buffer: out, argument: 'out' } },
      rand: state,
      threshold,
      encoder: opts.encoder,
    }),
  );
  return { output, state };
}

/** The prologue of the ops that take only a count, then their values. */
async function randomValues(ctx: DropoutContext, kernel: KernelRecord, opts: RandomOpOptions): Promise<RandomResult> {
  const { rt } = beginOp(ctx, opts, 'an object with at least count', RANDOM_OP_OPTIONS, false);
  return randomOp(ctx, rt, kernel, opts);
}

/**
 * The contract's raw 32-bit words (u32), the ones every mask is decided from: element i gets the
 * word of mask index offset + i. Read them with `readArray(ctx, output, 'u32', count)`.
 * @throws {@link InvalidArgumentError} (rejects) for a bad option, naming it.
 */
export function randomWords(ctx: DropoutContext, opts: RandomOpOptions): Promise<RandomResult> {
  return randomValues(ctx, kernels.words, opts);
}

/** Uniform f32 in [0, 1): (word >> 8) * 2^-24, exact in f32. Rejects as {@link randomWords} does. */
export function randomUniform(ctx: DropoutContext, opts: RandomOpOptions): Promise<RandomResult> {
  return randomValues(ctx, kernels.uniform, opts);
}

/** Standard normal f32, Box-Muller on word pairs (see `referenceNormal` for the exact formula).
 * Rejects as {@link randomWords} does. */
export function randomNormal(ctx: DropoutContext, opts: RandomOpOptions): Promise<RandomResult> {
  return randomValues(ctx, kernels.normal, opts);
}

/** The options of {@link bernoulliMask}. */
export interface BernoulliOptions extends RandomOpOptions {
  /** Drop probability: an element is 1 (kept) with probability 1 - p. */
  p: number;
  /** Pack 32 decisions per u32 (bit b of word k = element 32k + b) instead of one u32 each. */
  packed?: boolean;
}

const BERNOULLI_OPTIONS = optionNames<BernoulliOptions>({
  count: true,
  p: true,
  packed: true,
  out: true,
  ...RANDOM_OPTION_NAMES,
  encoder: true,
});

/**
 * The keep-mask dropout with the same (p, seed, stream, offset) would use: 1 = keep, as one u32
 * per element, or packed 32 to a u32 (bit b of word k = element 32k + b) with `packed: true`.
 * @throws {@link InvalidArgumentError} (rejects) for a bad option, naming it.
 */
export async function bernoulliMask(ctx: DropoutContext, opts: BernoulliOptions): Promise<RandomResult> {
  const { rt } = beginOp(ctx, opts, 'an object with count and p', BERNOULLI_OPTIONS, false);
  const rule = keepRule(opts.p);
  if (opts.packed !== undefined && typeof opts.packed !== 'boolean') throw new InvalidArgumentError('packed', 'a boolean', opts.packed);
  const random = rule.kind === 'mask';
  const threshold = random ? rule.threshold : rule.kind === 'identity' ? 0 : 1;
  if (opts.packed) return randomOp(ctx, rt, random ? kernels.bernoulliPacked : kernels.bernoulliPackedFill, opts, threshold, 'bit');
  return randomOp(ctx, rt, random ? kernels.bernoulli : kernels.bernoulliFill, opts, threshold);
}
