// Dropout inside a forward pass of the model kit: sampleDropout draws the masks of several MC
// samples folded into one batch (SampleRandom), each dropout site from its own range of mask
// indices (siteOffset).
import { keepRule, toU64 } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { type DropoutState, dropout } from '../ops/dropout.js';
import { checkOptionsObject, optionNames } from '../options.js';
import type { DropoutContext } from '../runtime/context.js';
import { modelKernels, Recording } from './kernels.js';
import { checkBoundWhole, checkMatrix, isPositiveInteger, type Matrix } from './matrix.js';

/**
 * The randomness of one forward pass over `samples` MC samples folded into the batch: rows
 * [t R, (t + 1) R) with R = rows / samples are sample t, whose dropout draws from stream
 * `stream + t`. A training step or a single sample is `samples: 1`.
 */
export interface SampleRandom {
  /** The 64-bit seed of every sample. */
  seed: bigint;
  /** The stream of sample 0; sample t uses stream + t. */
  stream: bigint;
  /** MC samples folded into the batch (at least 1, dividing the rows). */
  samples: number;
}

/** Mask indices of dropout site `site` (0 for the first hidden layer) start at site * 2^40,
 * so every site of one sample draws distinct words from the sample's single stream. */
export const SITE_OFFSET_STRIDE = 1n << 40n;

/** The first mask index of dropout site `site`: site * {@link SITE_OFFSET_STRIDE}. */
export function siteOffset(site: number): bigint {
  return BigInt(site) * SITE_OFFSET_STRIDE;
}

const SAMPLE_DROPOUT_OPTIONS = optionNames<Parameters<typeof sampleDropout>[2]>({ p: true, random: true, site: true, encoder: true });

/**
 * In-place inverted dropout with drop probability `p` in [0, 1) on `x`, whose rows are `random.samples`
 * MC samples: sample t draws the words of (seed, stream + t, offset + i) for its element i, i.e.
 * exactly the mask the library's `dropout` op gives that sample alone (which is what runs when
 * samples = 1). Use it between the layers of a forward function given to `mcDropout`; `site`
 * numbers the dropout sites of one pass (0, 1, ...) so that each draws its own words.
 * Returns the state for `dropoutBackward` when samples = 1, else null.
 *
 * @param x - The activations, overwritten in place.
 * @param opts.p - Drop probability in [0, 1).
 * @param opts.random - The pass's randomness: `random.samples` must divide `x.rows`.
 * @param opts.site - This dropout site's number, 0 to 2^24 - 1 (default 0).
 * @param opts.encoder - Record into this encoder (as the forward function's third argument) instead of submitting.
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} (rejects) for a bad matrix or option.
 */
export async function sampleDropout(
  ctx: DropoutContext,
  x: Matrix,
  opts: { p: number; random: SampleRandom; site?: number; encoder?: GPUCommandEncoder },
): Promise<DropoutState | null> {
  checkOptionsObject(opts, SAMPLE_DROPOUT_OPTIONS, 'options', 'an object with p and random', opts);
  checkMatrix(ctx, x, 'x');
  const rule = typeof opts.p === 'number' && opts.p < 1 ? keepRule(opts.p) : null;
  // p = 1 (or so close that round(p 2^32) = 2^32) would leave no sample any signal.
  if (rule === null || rule.kind === 'zeros') throw new InvalidArgumentError('p', 'a probability in [0, 1) below 1 - 2^-33', opts.p);
  const random = checkSampleRandom(opts.random, x.rows);
  const site = opts.site ?? 0;
  if (!Number.isSafeInteger(site) || site < 0 || site >= 1 << 24) throw new InvalidArgumentError('site', 'an integer in 0..2^24-1', site);
  // Several samples take the blocks kernel, which binds x whole; one takes dropout(), which chunks.
  if (random.samples > 1) checkBoundWhole(ctx, x, 'x');
  const count = x.rows * x.cols;
  const offset = siteOffset(site);
  if (random.samples === 1) {
    const { state } = await dropout(ctx, x.buffer, {
      p: opts.p,
      seed: random.seed,
      stream: random.stream,
      offset,
      count,
      out: x.buffer,
      encoder: opts.encoder,
    });
    return state;
  }
  if (rule.kind === 'identity') return null;
  const rec = new Recording(ctx, 'sampleDropout', opts.encoder);
  const uniforms = {
    seed: random.seed,
    stream: random.stream,
    offset,
    count,
    per_block: count / random.samples,
    threshold: rule.threshold,
    scale: rule.scale,
  };
  await rec.kernel(modelKernels.dropoutBlocks, uniforms, { result: x.buffer }, count);
  await rec.submit();
  return null;
}

export function checkSampleRandom(random: unknown, rows: number): SampleRandom {
  if (typeof random !== 'object' || random === null)
    throw new InvalidArgumentError('random', 'a SampleRandom { seed, stream, samples }', random);
  const r = random as SampleRandom;
  const seed = toU64(r.seed, 'random.seed');
  const stream = toU64(r.stream, 'random.stream');
  if (!isPositiveInteger(r.samples) || rows % r.samples !== 0) {
    throw new InvalidArgumentError('random.samples', `a positive divisor of the ${rows} rows`, r.samples);
  }
  return { seed, stream, samples: r.samples };
}
