// MC-Dropout (Gal & Ghahramani, 2016) as a GPU op: T stochastic forward passes, sample t on its
// own stream (seed, stream + t) so any sample can be replayed alone, with the predictive
// statistics accumulated on the GPU (shaders/mc.wgsl) and only the final statistics read back.
import { toU64, type U64 } from '../contract.js';
import { DropoutError, InvalidArgumentError } from '../errors.js';
import { checkOptionsObject, optionNames } from '../options.js';
import { type DropoutContext, runtimeOf } from '../runtime/context.js';
import { modelKernels, Recording } from './kernels.js';
import { checkBoundWhole, checkMatrix, checkRowsFit, type Matrix, readMatrix, wholeBindingLimit } from './matrix.js';
import { type ForwardFn, MLP } from './mlp.js';
import type { SampleRandom } from './sample.js';

/** Every MC sample came out identical: dropout never acted in the forward function (eval mode,
 * p = 0, or no dropout site), so a zero variance would be a false claim of certainty. */
export class DropoutInactiveError extends DropoutError {
  override name = 'DropoutInactiveError';
}

/** The options of {@link mcDropout}. */
export interface McDropoutOptions {
  /** T, the number of stochastic passes (at least 2). */
  samples: number;
  /** 'sequential' (default): T passes, memory constant in T. 'batched': the samples are folded
   * into the batch dimension, `samplesPerPass` at a time (all T when they fit). Same results. */
  schedule?: 'sequential' | 'batched';
  /** Batched schedule: samples per pass (default: as many as the device's storage binding limit allows, up to T). */
  samplesPerPass?: number;
  /** 'regression' (default): statistics of the outputs. 'classification': outputs are logits,
   * statistics of their softmax plus predictive entropy and mutual information. */
  task?: 'regression' | 'classification';
  /** Seed of every sample (sample t uses (seed, stream + t)). Default: the context generator's
   * seed, with T fresh streams taken from it. */
  seed?: U64;
  /** The first stream, with `seed` (default 0); refused without `seed`. stream + T - 1 must stay below 2^64. */
  stream?: U64;
  /** Called after every pass has finished on the GPU with (samples done, total). */
  onProgress?: (done: number, total: number) => void;
}

const MC_DROPOUT_OPTIONS = optionNames<McDropoutOptions>({
  samples: true,
  schedule: true,
  samplesPerPass: true,
  task: true,
  seed: true,
  stream: true,
  onProgress: true,
});
const MC_SAMPLE_OPTIONS = optionNames<{ seed: U64; stream: U64; sample: number }>({ seed: true, stream: true, sample: true });

/** What {@link mcDropout} returns: the statistics, read back, and the streams that produced them. */
export interface McDropoutResult {
  /** T, the number of passes. */
  samples: number;
  /** Sample t was drawn with (seed, stream + t): replay it with `mcSample`. */
  seed: bigint;
  /** The stream of sample 0. */
  stream: bigint;
  /** Rows of the input (and of every statistic). */
  rows: number;
  /** Columns of the model's output. */
  cols: number;
  /** Predictive mean per output (rows x cols); for classification the mean softmax probabilities. */
  mean: Float32Array;
  /** Population variance across the T samples per output (of the probabilities, for classification). */
  variance: Float32Array;
  /** Classification only, per row: the predictive entropy H[mean p], in nats. */
  predictiveEntropy?: Float32Array;
  /** Classification only, per row: the expected entropy E_t[H[p_t]], in nats. */
  expectedEntropy?: Float32Array;
  /** Classification only, per row: the mutual information (BALD) H[mean p] - E_t[H[p_t]], in nats (clamped at 0). */
  mutualInformation?: Float32Array;
}

/** An MLP stands for its `sampler()`. */
function forwardFunction(forward: unknown): ForwardFn {
  if (forward instanceof MLP) return forward.sampler();
  if (typeof forward !== 'function')
    throw new InvalidArgumentError('model', 'an MLP or a function (input, random, encoder) => Promise<Matrix>', forward);
  return forward as ForwardFn;
}

/**
 * Runs T stochastic passes of `model` (an MLP, or a forward function) on `input` and returns the
 * predictive statistics. A forward function must apply its dropout with `sampleDropout` (an MLP
 * does): rows block t of its input is sample t, with stream `random.stream + t`. Its output is
 * given back to the context's pool after each pass. Only the final statistics are read back.
 *
 * @param model - An {@link MLP} (its `sampler()`), or a forward function `(input, random, encoder) =>
 *   Promise<Matrix>` that returns a fresh pooled Matrix of `input.rows * random.samples` rows.
 * @param input - The inputs, rows x the model's input width.
 * @throws {@link DropoutInactiveError} (rejects) when all T samples are identical (dropout never
 *   acted); {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} for a bad model,
 *   input, option or forward output, or an input too large for one storage binding.
 */
export async function mcDropout(
  ctx: DropoutContext,
  model: ForwardFn | MLP,
  input: Matrix,
  opts: McDropoutOptions,
): Promise<McDropoutResult> {
  runtimeOf(ctx).liveness.check();
  const forward = forwardFunction(model);
  checkOptionsObject(opts, MC_DROPOUT_OPTIONS, 'options', 'an object with at least samples', opts);
  const T = opts.samples;
  if (!Number.isSafeInteger(T) || T < 2 || T > 0xffffffff) {
    throw new InvalidArgumentError('samples', 'an integer T >= 2 (the spread of fewer than two samples is undefined)', T);
  }
  checkMatrix(ctx, input, 'input', forward.inputSize);
  const schedule = opts.schedule ?? 'sequential';
  if (schedule !== 'sequential' && schedule !== 'batched')
    throw new InvalidArgumentError('schedule', "'sequential' or 'batched'", schedule);
  const task = opts.task ?? 'regression';
  if (task !== 'regression' && task !== 'classification') throw new InvalidArgumentError('task', "'regression' or 'classification'", task);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function')
    throw new InvalidArgumentError('onProgress', 'a function (done, total)', opts.onProgress);
  checkInputFits(ctx, model, input, task === 'classification');
  const perPass = schedule === 'sequential' ? 1 : samplesPerPass(ctx, input, forward, T, opts.samplesPerPass);
  const { seed, stream } = resolveStreams(ctx, opts, T);

  const rows = input.rows;
  let cols = 0;
  let state: { mean: GPUBuffer; m2: GPUBuffer; entropy: GPUBuffer } | null = null;
  const classification = task === 'classification';
  try {
    for (let done = 0; done < T; ) {
      const count = Math.min(perPass, T - done);
      const rec = new Recording(ctx, 'mcDropout pass');
      const x = count === 1 ? input : tile(ctx, rec.encoder, input, count);
      const output = await forward(x, { seed, stream: stream + BigInt(done), samples: count }, rec.encoder);
      if (x !== input) rec.release(x.buffer);
      checkMatrix(ctx, output, 'forward output');
      checkBoundWhole(ctx, output, 'forward output');
      if (output.rows !== rows * count)
        throw new InvalidArgumentError('forward output', `${rows * count} rows (${count} samples of ${rows})`, output.rows);
      if (state === null) {
        cols = output.cols;
        if (classification && cols < 2)
          throw new InvalidArgumentError('forward output', 'at least 2 columns (class logits) for classification', cols);
        // The statistics take cols (and 3 for classification) f32 a row: known only now for a forward function.
        const perRow = Math.max(cols, classification ? 3 : 1);
        checkRowsFit(ctx, rows, perRow, 'input', `the statistics, ${perRow} f32 per row,`);
        const elements = rows * cols;
        state = {
          mean: ctx.acquire(elements * 4, 'mc mean'),
          m2: ctx.acquire(elements * 4, 'mc m2'),
          entropy: ctx.acquire(rows * 4, 'mc entropy'),
        };
      } else if (output.cols !== cols) {
        throw new InvalidArgumentError('forward output', `${cols} columns in every pass`, output.cols);
      }
      const uniforms = { rows, cols, first: done, samples: count, total: T };
      if (classification) {
        await rec.kernel(
          modelKernels.accumulateClassification,
          uniforms,
          { outputs: output.buffer, mean: state.mean, m2: state.m2, mean_entropy: state.entropy },
          rows,
        );
      } else {
        await rec.kernel(
          modelKernels.accumulateRegression,
          uniforms,
          { outputs: output.buffer, mean: state.mean, m2: state.m2 },
          rows * cols,
        );
      }
      if (output.buffer !== input.buffer) rec.release(output.buffer);
      await rec.submit();
      done += count;
      if (opts.onProgress) {
        await ctx.device.queue.onSubmittedWorkDone();
        opts.onProgress(done, T);
      }
    }
    return await finalize(ctx, state!, { rows, cols, T, seed, stream, classification });
  } finally {
    if (state) for (const b of Object.values(state)) ctx.release(b);
  }
}

/**
 * The output of sample t alone, `(seed, stream + t)`, read back (rows x cols, row-major): a replay
 * of one MC sample of {@link mcDropout}.
 * @param opts.seed - The run's seed ({@link McDropoutResult.seed}).
 * @param opts.stream - The run's first stream ({@link McDropoutResult.stream}).
 * @param opts.sample - t, a non-negative integer.
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} (rejects) for a bad model, input or option.
 */
export async function mcSample(
  ctx: DropoutContext,
  model: ForwardFn | MLP,
  input: Matrix,
  opts: { seed: U64; stream: U64; sample: number },
): Promise<Float32Array> {
  const forward = forwardFunction(model);
  checkMatrix(ctx, input, 'input', forward.inputSize);
  checkInputFits(ctx, model, input, false);
  checkOptionsObject(opts, MC_SAMPLE_OPTIONS, 'options', 'an object with seed, stream and sample', opts);
  if (!Number.isSafeInteger(opts.sample) || opts.sample < 0)
    throw new InvalidArgumentError('sample', 'a non-negative integer', opts.sample);
  const random: SampleRandom = { seed: toU64(opts.seed, 'seed'), stream: toU64(opts.stream, 'stream') + BigInt(opts.sample), samples: 1 };
  toU64(random.stream, 'stream + sample');
  const rec = new Recording(ctx, 'mcSample');
  const output = await forward(input, random, rec.encoder);
  await rec.submit();
  const values = await readMatrix(ctx, output);
  if (output.buffer !== input.buffer) ctx.release(output.buffer);
  return values;
}

function resolveStreams(ctx: DropoutContext, opts: McDropoutOptions, T: number): { seed: bigint; stream: bigint } {
  if (opts.seed !== undefined) {
    const seed = toU64(opts.seed, 'seed');
    const stream = toU64(opts.stream ?? 0n, 'stream');
    toU64(stream + BigInt(T - 1), 'stream + samples - 1');
    return { seed, stream };
  }
  if (opts.stream !== undefined) throw new InvalidArgumentError('stream', 'to come with a seed', opts.stream);
  const first = ctx.generator.take();
  for (let t = 1; t < T; t++) ctx.generator.take();
  return { seed: ctx.generator.seed, stream: first };
}

/**
 * What the passes over `input` bind whole, checked before the first and refused as `input` (the
 * MLP's own checks would name its `x`, which the caller never passed): an MLP binds the input and
 * rows x its widest layer in a pass of one sample; classification's statistics take 3 f32 a row.
 */
function checkInputFits(ctx: DropoutContext, model: unknown, input: Matrix, classification: boolean): void {
  if (model instanceof MLP) {
    const widest = Math.max(...model.sizes);
    checkRowsFit(ctx, input.rows, widest, 'input', `a ${widest}-wide activation of f32`);
    checkBoundWhole(ctx, input, 'input');
  }
  if (classification) checkRowsFit(ctx, input.rows, 3, 'input', "classification's 3 f32 statistics per row");
}

function samplesPerPass(ctx: DropoutContext, input: Matrix, forward: ForwardFn, T: number, requested: number | undefined): number {
  const widest = Math.max(forward.widest ?? input.cols, input.cols);
  const limit = wholeBindingLimit(ctx);
  const fits = Math.floor(limit.bytes / (input.rows * widest * 4));
  if (requested !== undefined) {
    if (!Number.isSafeInteger(requested) || requested < 1)
      throw new InvalidArgumentError('samplesPerPass', 'a positive integer', requested);
    // The tiled input and every activation of a pass are bound whole: checked before any work.
    if (Math.min(requested, T) > Math.max(1, fits)) {
      throw new InvalidArgumentError(
        'samplesPerPass',
        `at most ${Math.max(1, fits)} (${widest}-wide passes of ${input.rows} rows each must fit this device's ${limit.name} of ${limit.bytes} bytes)`,
        requested,
      );
    }
    return Math.min(requested, T);
  }
  return Math.max(1, Math.min(T, fits));
}

/** `copies` copies of the input's rows stacked: the batched schedule's input. */
function tile(ctx: DropoutContext, encoder: GPUCommandEncoder, input: Matrix, copies: number): Matrix {
  const bytes = input.rows * input.cols * 4;
  const buffer = ctx.acquire(bytes * copies, 'mc tiled input');
  for (let t = 0; t < copies; t++) encoder.copyBufferToBuffer(input.buffer, 0, buffer, t * bytes, bytes);
  return { buffer, rows: input.rows * copies, cols: input.cols };
}

async function finalize(
  ctx: DropoutContext,
  state: { mean: GPUBuffer; m2: GPUBuffer; entropy: GPUBuffer },
  run: { rows: number; cols: number; T: number; seed: bigint; stream: bigint; classification: boolean },
): Promise<McDropoutResult> {
  const { rows, cols, T, classification } = run;
  const rec = new Recording(ctx, 'mcDropout finalize');
  const uniforms = { rows, cols, first: 0, samples: 0, total: T };
  const rowStats = classification ? ctx.acquire(rows * 3 * 4, 'mc row stats') : null;
  if (rowStats) {
    await rec.kernel(
      modelKernels.finalizeClassification,
      uniforms,
      { mean: state.mean, m2: state.m2, mean_entropy: state.entropy, row_stats: rowStats },
      rows,
    );
  } else {
    await rec.kernel(modelKernels.finalizeRegression, uniforms, { m2: state.m2 }, rows * cols);
  }
  await rec.submit();
  const elements = rows * cols;
  const mean = new Float32Array(await ctx.readBytes(state.mean, elements * 4));
  const variance = new Float32Array(await ctx.readBytes(state.m2, elements * 4));
  // Welford leaves M2 exactly 0 for as long as every sample equals the first.
  if (variance.every((v) => v === 0)) {
    if (rowStats) ctx.release(rowStats);
    throw new DropoutInactiveError(
      `all ${T} MC samples were identical: dropout never acted in the forward function (eval mode, p = 0, ` +
        `or no sampleDropout site), so there is no uncertainty estimate to report`,
    );
  }
  const result: McDropoutResult = { samples: T, seed: run.seed, stream: run.stream, rows, cols, mean, variance };
  if (rowStats) {
    const stats = new Float32Array(await ctx.readBytes(rowStats, rows * 3 * 4));
    ctx.release(rowStats);
    result.predictiveEntropy = stats.filter((_, i) => i % 3 === 0);
    result.expectedEntropy = stats.filter((_, i) => i % 3 === 1);
    result.mutualInformation = stats.filter((_, i) => i % 3 === 2);
  }
  return result;
}
