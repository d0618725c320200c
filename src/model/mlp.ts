// A minimal model kit that exists to serve dropout: row-major f32 matrices on the GPU, an MLP with
// ReLU and dropout between its layers, MSE and softmax cross-entropy losses, and Adam/SGD, all as
// GPU kernels (shaders/model.wgsl). Not a framework: no autograd, no layers beyond dense.
import { keepRule, split64, toU64, type U64 } from '../contract.js';
import type { DropoutContext } from '../context.js';
import { DropoutError, Got, InvalidArgumentError } from '../errors.js';
import { PhiloxGenerator } from '../generator.js';
import { modelKernels, Recording } from './kernels.js';
import type { UniformsOf } from '../kernels/record.js';
import { dropout, dropoutBackward, type DropoutState } from '../ops/dropout.js';
import { checkOptionNames, optionNames, type OptionNames } from '../options.js';
import { contractWords } from '../reference/philox.js';
import { referenceUniform } from '../reference/dropout.js';

/** A row-major rows x cols f32 matrix in a GPU storage buffer. */
export interface Matrix {
  buffer: GPUBuffer;
  rows: number;
  cols: number;
}

/**
 * The randomness of one forward pass over `samples` MC samples folded into the batch: rows
 * [t R, (t + 1) R) with R = rows / samples are sample t, whose dropout draws from stream
 * `stream + t`. A training step or a single sample is `samples: 1`.
 */
export interface SampleRandom {
  seed: bigint;
  stream: bigint;
  samples: number;
}

/** Mask indices of dropout site `site` (0 for the first hidden layer) start at site * 2^40,
 * so every site of one sample draws distinct words from the sample's single stream. */
export const SITE_OFFSET_STRIDE = 1n << 40n;

export function siteOffset(site: number): bigint {
  return BigInt(site) * SITE_OFFSET_STRIDE;
}

export type LossKind = 'mse' | 'xent';

function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** Throws unless `m` is a Matrix whose buffer holds rows x cols f32 (and has `cols` columns when given). */
export function checkMatrix(ctx: DropoutContext, m: unknown, argument: string, cols?: number): asserts m is Matrix {
  if (typeof m !== 'object' || m === null) throw new InvalidArgumentError(argument, 'a Matrix { buffer, rows, cols }', m);
  const { rows, cols: c, buffer } = m as Matrix;
  if (!isPositiveInteger(rows) || !isPositiveInteger(c)) {
    throw new InvalidArgumentError(`${argument}.rows/cols`, 'positive integers', [rows, c]);
  }
  if (cols !== undefined && c !== cols) {
    throw new InvalidArgumentError(argument, `a matrix with ${cols} columns`, new Got(`${rows} x ${c}`));
  }
  ctx.checkStorage(buffer, `${argument}.buffer`, rows * c * 4);
}

/** Uploads row-major data as a rows x cols Matrix (a pooled buffer: give it back with ctx.release). */
export function uploadMatrix(ctx: DropoutContext, data: ArrayLike<number>, rows: number, cols: number): Matrix {
  if (!isPositiveInteger(rows) || !isPositiveInteger(cols)) throw new InvalidArgumentError('rows/cols', 'positive integers', [rows, cols]);
  if (data.length !== rows * cols) throw new InvalidArgumentError('data', `${rows * cols} values (${rows} x ${cols})`, new Got(`${data.length} values`));
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  return { buffer: ctx.upload(values, 'matrix'), rows, cols };
}

/** Reads a Matrix back to the CPU (submits pending work first). */
export async function readMatrix(ctx: DropoutContext, m: Matrix): Promise<Float32Array> {
  checkMatrix(ctx, m, 'm');
  return new Float32Array(await ctx.readBytes(m.buffer, m.rows * m.cols * 4));
}

/** One-hot rows for class labels in 0..classes-1 (targets of the 'xent' loss). */
export function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  if (!isPositiveInteger(classes)) throw new InvalidArgumentError('classes', 'a positive integer', classes);
  const out = new Float32Array(labels.length * classes);
  for (let r = 0; r < labels.length; r++) {
    const c = labels[r]!;
    if (!Number.isInteger(c) || c < 0 || c >= classes) throw new InvalidArgumentError(`labels[${r}]`, `a class in 0..${classes - 1}`, c);
    out[r * classes + c] = 1;
  }
  return out;
}

const SAMPLE_DROPOUT_OPTIONS = optionNames<Parameters<typeof sampleDropout>[2]>({ p: true, random: true, site: true, encoder: true });

/**
 * In-place inverted dropout with drop probability `p` in [0, 1) on `x`, whose rows are `random.samples`
 * MC samples: sample t draws the words of (seed, stream + t, offset + i) for its element i, i.e.
 * exactly the mask the library's `dropout` op gives that sample alone (which is what runs when
 * samples = 1). Use it between the layers of a forward function given to `mcDropout`; `site`
 * numbers the dropout sites of one pass (0, 1, ...) so that each draws its own words.
 * Returns the state for `dropoutBackward` when samples = 1, else null.
 */
export async function sampleDropout(
  ctx: DropoutContext,
  x: Matrix,
  opts: { p: number; random: SampleRandom; site?: number; encoder?: GPUCommandEncoder },
): Promise<DropoutState | null> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object with p and random', opts);
  checkOptionNames(opts, SAMPLE_DROPOUT_OPTIONS);
  checkMatrix(ctx, x, 'x');
  const rule = typeof opts.p === 'number' && opts.p < 1 ? keepRule(opts.p) : null;
  // p = 1 (or so close that round(p 2^32) = 2^32) would leave no sample any signal.
  if (rule === null || rule.kind === 'zeros') throw new InvalidArgumentError('p', 'a probability in [0, 1) below 1 - 2^-33', opts.p);
  const random = checkSampleRandom(opts.random, x.rows);
  const site = opts.site ?? 0;
  if (!Number.isSafeInteger(site) || site < 0 || site >= 1 << 24) throw new InvalidArgumentError('site', 'an integer in 0..2^24-1', site);
  const count = x.rows * x.cols;
  const offset = siteOffset(site);
  if (random.samples === 1) {
    const { state } = await dropout(ctx, x.buffer, { p: opts.p, seed: random.seed, stream: random.stream, offset, count, out: x.buffer, encoder: opts.encoder });
    return state;
  }
  if (rule.kind === 'identity') return null;
  const rec = new Recording(ctx, 'sampleDropout', opts.encoder);
  const [k0, k1] = split64(random.seed);
  const [s0, s1] = split64(random.stream);
  const [o0, o1] = split64(offset);
  const uniforms = { seed_lo: k0, seed_hi: k1, stream_lo: s0, stream_hi: s1, offset_lo: o0, offset_hi: o1, count, per_block: count / random.samples, threshold: rule.threshold, scale: rule.scale };
  await rec.kernel(modelKernels.dropoutBlocks, uniforms, { result: x.buffer }, count);
  await rec.submit();
  return null;
}

export function checkSampleRandom(random: unknown, rows: number): SampleRandom {
  if (typeof random !== 'object' || random === null) throw new InvalidArgumentError('random', 'a SampleRandom { seed, stream, samples }', random);
  const r = random as SampleRandom;
  const seed = toU64(r.seed, 'random.seed');
  const stream = toU64(r.stream, 'random.stream');
  if (!isPositiveInteger(r.samples) || rows % r.samples !== 0) {
    throw new InvalidArgumentError('random.samples', `a positive divisor of the ${rows} rows`, r.samples);
  }
  return { seed, stream, samples: r.samples };
}

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
  /** Default 0.01. */
  learningRate?: number;
  /** Adam's decay rates and epsilon (defaults 0.9, 0.999, 1e-8). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** A forward function for `mcDropout`: the output for `input` under `random`, recorded into `encoder`. */
export type ForwardFn = ((input: Matrix, random: SampleRandom, encoder: GPUCommandEncoder) => Promise<Matrix>) & {
  /** Columns the input must have (checked before anything runs). */
  inputSize?: number;
  /** Widest matrix of one row's pass (sizes the batched schedule's passes). */
  widest?: number;
};

interface DenseLayer {
  inputs: number;
  outputs: number;
  /** Element offsets of W (inputs x outputs) and b in the parameter buffer. */
  w: number;
  b: number;
}

interface Pass {
  /** acts[0] is the input; acts[l] the output of layer l (after ReLU and dropout for hidden ones). */
  acts: GPUBuffer[];
  states: (DropoutState | null)[];
  output: Matrix;
}

const MLP_OPTIONS = optionNames<MLPOptions>({
  sizes: true, dropout: true, seed: true, optimizer: true, learningRate: true, beta1: true, beta2: true, epsilon: true,
});

type ForwardOptions = { random?: SampleRandom; encoder?: GPUCommandEncoder };
type TrainOptions = { loss: LossKind; readLoss?: boolean; encoder?: GPUCommandEncoder };
type GradientOptions = { loss: LossKind; random?: SampleRandom };
const FORWARD_OPTIONS = optionNames<ForwardOptions>({ random: true, encoder: true });
const PREDICT_OPTIONS = optionNames<{ encoder?: GPUCommandEncoder }>({ encoder: true });
const TRAIN_OPTIONS = optionNames<TrainOptions>({ loss: true, readLoss: true, encoder: true });
const EVALUATE_OPTIONS = optionNames<{ loss: LossKind }>({ loss: true });
const GRADIENT_OPTIONS = optionNames<GradientOptions>({ loss: true, random: true });

/** A method's options object, with only the names it takes. */
function checkMethodOptions(opts: unknown, names: OptionNames): void {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', `an object of options (${[...names].join(', ')})`, opts);
  checkOptionNames(opts, names);
}

/**
 * A multilayer perceptron: Linear -> ReLU -> Dropout(p) for each hidden layer, then Linear.
 * Parameters, gradients and Adam's moments are single flat GPU buffers; training reads nothing
 * back unless asked for the loss.
 *
 * ```ts
 * const mlp = new MLP(ctx, { sizes: [1, 64, 64, 1], dropout: 0.1, seed: 7 });
 * for (let i = 0; i < 300; i++) await mlp.trainStep(x, y, { loss: 'mse' });
 * const stats = await mcDropout(ctx, mlp.sampler(), xTest, { samples: 50 });
 * ```
 */
export class MLP {
  readonly sizes: readonly number[];
  readonly p: number;
  readonly parameterCount: number;
  /** Source of the training steps' dropout streams. */
  readonly generator: PhiloxGenerator;
  readonly optimizer: 'adam' | 'sgd';
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Optimiser steps taken. */
  steps = 0;

  private readonly layers: DenseLayer[] = [];
  private readonly params: GPUBuffer;
  private readonly grads: GPUBuffer;
  private readonly moment1: GPUBuffer;
  private readonly moment2: GPUBuffer;
  private destroyed = false;

  constructor(
    readonly ctx: DropoutContext,
    options: MLPOptions,
  ) {
    ctx.checkAlive();
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'an object with sizes', options);
    checkOptionNames(options, MLP_OPTIONS);
    const sizes = options.sizes;
    if (!Array.isArray(sizes) || sizes.length < 2 || !sizes.every(isPositiveInteger)) {
      throw new InvalidArgumentError('sizes', 'an array of at least two positive integer widths', sizes);
    }
    this.sizes = [...sizes];
    this.p = options.dropout ?? 0;
    if (!(typeof this.p === 'number' && this.p >= 0 && this.p < 1)) throw new InvalidArgumentError('dropout', 'a probability in [0, 1)', options.dropout);
    this.optimizer = options.optimizer ?? 'adam';
    if (this.optimizer !== 'adam' && this.optimizer !== 'sgd') throw new InvalidArgumentError('optimizer', "'adam' or 'sgd'", options.optimizer);
    this.learningRate = checkPositive(options.learningRate ?? 0.01, 'learningRate');
    this.beta1 = checkDecay(options.beta1 ?? 0.9, 'beta1');
    this.beta2 = checkDecay(options.beta2 ?? 0.999, 'beta2');
    this.epsilon = checkPositive(options.epsilon ?? 1e-8, 'epsilon');
    const seed = options.seed === undefined ? drawSeed(ctx.generator) : toU64(options.seed, 'seed');
    this.generator = new PhiloxGenerator(seed, 1n);

    let offset = 0;
    for (let l = 1; l < sizes.length; l++) {
      const layer = { inputs: sizes[l - 1]!, outputs: sizes[l]!, w: offset, b: offset + sizes[l - 1]! * sizes[l]! };
      this.layers.push(layer);
      offset = layer.b + layer.outputs;
    }
    this.parameterCount = offset;
    this.params = ctx.upload(this.initialParameters(seed), 'mlp parameters');
    const zeros = new Float32Array(offset);
    this.grads = ctx.upload(zeros, 'mlp gradients');
    this.moment1 = ctx.upload(zeros, 'mlp adam m');
    this.moment2 = ctx.upload(zeros, 'mlp adam v');
  }

  /** He-uniform weights (U(-a, a), a = sqrt(6 / fan_in)) from the contract's words of (seed, stream 0); zero biases. */
  private initialParameters(seed: bigint): Float32Array {
    const u = referenceUniform(this.parameterCount, { seed, stream: 0n });
    const out = new Float32Array(this.parameterCount);
    for (const layer of this.layers) {
      const a = Math.sqrt(6 / layer.inputs);
      for (let i = layer.w; i < layer.b; i++) out[i] = (2 * u[i]! - 1) * a;
    }
    return out;
  }

  get inputSize(): number {
    return this.sizes[0]!;
  }

  get outputSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /**
   * Forward pass. With `random`, dropout is active and draws from it (MC sampling); without, it
   * is the deterministic eval-mode network. Returns a pooled Matrix (give it back with ctx.release).
   */
  async forward(x: Matrix, opts: ForwardOptions = {}): Promise<Matrix> {
    this.checkUsable();
    checkMethodOptions(opts, FORWARD_OPTIONS);
    checkMatrix(this.ctx, x, 'x', this.inputSize);
    this.checkRows(x, 'x');
    const random = opts.random === undefined ? null : checkSampleRandom(opts.random, x.rows);
    const rec = new Recording(this.ctx, 'mlp.forward', opts.encoder);
    const pass = await this.run(rec, x, random, false);
    await rec.submit();
    return pass.output;
  }

  /** Eval-mode prediction (no dropout). */
  async predict(x: Matrix, opts: { encoder?: GPUCommandEncoder } = {}): Promise<Matrix> {
    checkMethodOptions(opts, PREDICT_OPTIONS); // a `random` here would turn dropout on
    return this.forward(x, { encoder: opts.encoder });
  }

  /** This network as a forward function for `mcDropout` (dropout active, streams from the sampler). */
  sampler(): ForwardFn {
    const fn: ForwardFn = (input, random, encoder) => this.forward(input, { random, encoder });
    fn.inputSize = this.inputSize;
    fn.widest = Math.max(...this.sizes);
    return fn;
  }

  /**
   * One optimiser step on the batch (x, y): forward with dropout (a fresh stream from
   * `generator`), loss, backward, Adam/SGD, recorded into one submission. With `readLoss` it
   * reads back and returns the batch's mean training loss, else nothing is read back.
   */
  async trainStep(x: Matrix, y: Matrix, opts: TrainOptions): Promise<number | undefined> {
    this.checkBatch(x, y, opts?.loss);
    checkMethodOptions(opts, TRAIN_OPTIONS);
    if (opts.readLoss !== undefined && typeof opts.readLoss !== 'boolean') throw new InvalidArgumentError('readLoss', 'a boolean', opts.readLoss);
    if (opts.readLoss && opts.encoder) throw new InvalidArgumentError('readLoss', 'false when recording into your own encoder (submit it, then call evaluate)', true);
    const rec = new Recording(this.ctx, 'mlp.trainStep', opts.encoder);
    const random = this.p > 0 ? { seed: this.generator.seed, stream: this.generator.take(), samples: 1 } : null;
    const rowLoss = await this.backprop(rec, x, y, opts.loss, random);
    this.steps++;
    const b1t = 1 - this.beta1 ** this.steps;
    const b2t = 1 - this.beta2 ** this.steps;
    const uniforms = { count: this.parameterCount, sgd: this.optimizer === 'sgd' ? 1 : 0, lr: this.learningRate, beta1: this.beta1, beta2: this.beta2, eps: this.epsilon, c1: 1 / b1t, c2: 1 / b2t };
    await rec.kernel(modelKernels.optimizerStep, uniforms, { theta: this.params, rhs: this.grads, moment1: this.moment1, moment2: this.moment2 }, this.parameterCount);
    await rec.submit();
    return opts.readLoss ? this.meanLoss(rowLoss, x.rows) : (rec.release(rowLoss), undefined);
  }

  /** Mean loss of (x, y) in eval mode (no dropout), read back. */
  async evaluate(x: Matrix, y: Matrix, opts: { loss: LossKind }): Promise<number> {
    this.checkBatch(x, y, opts?.loss);
    checkMethodOptions(opts, EVALUATE_OPTIONS);
    const rec = new Recording(this.ctx, 'mlp.evaluate');
    const pass = await this.run(rec, x, null, false);
    const { rowLoss, grad } = await this.recordLoss(rec, pass.output, y, opts.loss);
    rec.release(pass.output.buffer);
    rec.release(grad);
    await rec.submit();
    return this.meanLoss(rowLoss, x.rows);
  }

  /**
   * The loss and the gradient of the loss with respect to every parameter (flat, in the
   * parameter layout) for one batch, without an optimiser step; dropout from `random` if given
   * (replayable), none otherwise. For gradient checks and inspection.
   */
  async gradients(x: Matrix, y: Matrix, opts: GradientOptions): Promise<{ loss: number; gradients: Float32Array }> {
    this.checkBatch(x, y, opts?.loss);
    checkMethodOptions(opts, GRADIENT_OPTIONS);
    const random = opts.random === undefined ? null : checkSampleRandom(opts.random, x.rows);
    if (random && random.samples !== 1) throw new InvalidArgumentError('random.samples', '1 for a gradient', random.samples);
    const rec = new Recording(this.ctx, 'mlp.gradients');
    const rowLoss = await this.backprop(rec, x, y, opts.loss, random);
    await rec.submit();
    const loss = await this.meanLoss(rowLoss, x.rows);
    return { loss, gradients: new Float32Array(await this.ctx.readBytes(this.grads, this.parameterCount * 4)) };
  }

  /** The flat parameters: layer l's W (inputs x outputs, row-major) then its b, for l = 1, 2, ... */
  async getParameters(): Promise<Float32Array> {
    this.checkUsable();
    return new Float32Array(await this.ctx.readBytes(this.params, this.parameterCount * 4));
  }

  setParameters(values: Float32Array): void {
    this.checkUsable();
    if (!(values instanceof Float32Array) || values.length !== this.parameterCount) {
      throw new InvalidArgumentError('values', `a Float32Array of ${this.parameterCount} parameters`, values);
    }
    this.ctx.device.queue.writeBuffer(this.params, 0, values as Float32Array<ArrayBuffer>);
  }

  /** Frees the parameter, gradient and optimiser buffers; later calls on this MLP throw. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of [this.params, this.grads, this.moment1, this.moment2]) this.ctx.release(b);
  }

  /** Its buffers may belong to someone else after destroy(): refuse rather than write into them. */
  private checkUsable(): void {
    if (this.destroyed) throw new DropoutError('this MLP was destroyed (mlp.destroy()); its buffers are back in the pool');
  }

  private checkBatch(x: Matrix, y: Matrix, loss: unknown): void {
    this.checkUsable();
    if (loss !== 'mse' && loss !== 'xent') throw new InvalidArgumentError('loss', "'mse' or 'xent'", loss);
    checkMatrix(this.ctx, x, 'x', this.inputSize);
    checkMatrix(this.ctx, y, 'y', this.outputSize);
    if (y.rows !== x.rows) throw new InvalidArgumentError('y', `${x.rows} rows, as x`, y.rows);
    this.checkRows(x, 'x');
  }

  /** Every activation of a pass over `x` is bound whole: its widest must fit one storage binding. */
  private checkRows(x: Matrix, argument: string): void {
    const limit = this.ctx.device.limits.maxStorageBufferBindingSize;
    const widest = Math.max(...this.sizes);
    if (x.rows * widest * 4 > limit) {
      throw new InvalidArgumentError(argument, `at most ${Math.floor(limit / (widest * 4))} rows (a ${widest}-wide activation of f32 must fit this device's maxStorageBufferBindingSize of ${limit} bytes)`, x.rows);
    }
  }

  /** Records the forward pass; `keep` keeps every activation for the backward pass. */
  private async run(rec: Recording, x: Matrix, random: SampleRandom | null, keep: boolean): Promise<Pass> {
    const acts = [x.buffer];
    const states: (DropoutState | null)[] = [];
    const last = this.layers.length - 1;
    for (const [l, layer] of this.layers.entries()) {
      const out = this.ctx.acquire(x.rows * layer.outputs * 4, `mlp layer ${l + 1}`);
      const hidden = l < last;
      const bound = { lhs: acts[l]!, theta: this.params, result: out };
      // Refused (x a buffer WebGPU cannot use here), nothing was recorded: `out` goes back as if never taken.
      await rec.kernel(modelKernels.linearForward, this.denseUniform(layer, x.rows, hidden), bound, x.rows * layer.outputs, l === 0 ? { lhs: 'x' } : {}).catch((e: unknown) => {
        this.ctx.pool.refund(out);
        throw e;
      });
      let state: DropoutState | null = null;
      if (hidden && random && this.p > 0) {
        state = await sampleDropout(this.ctx, { buffer: out, rows: x.rows, cols: layer.outputs }, { p: this.p, random, site: l, encoder: rec.encoder });
      }
      states.push(state);
      if (!keep && l > 0) rec.release(acts[l]!);
      acts.push(out);
    }
    return { acts, states, output: { buffer: acts[acts.length - 1]!, rows: x.rows, cols: this.outputSize } };
  }

  private denseUniform(layer: DenseLayer, rows: number, relu: boolean): UniformsOf<typeof modelKernels.linearForward> {
    return { rows, inputs: layer.inputs, outputs: layer.outputs, flags: relu ? 1 : 0, w_off: layer.w, b_off: layer.b };
  }

  private async recordLoss(rec: Recording, output: Matrix, y: Matrix, loss: LossKind): Promise<{ rowLoss: GPUBuffer; grad: GPUBuffer }> {
    const rows = output.rows;
    const grad = this.ctx.acquire(rows * output.cols * 4, 'mlp loss grad');
    const rowLoss = this.ctx.acquire(rows * 4, 'mlp row loss');
    const uniforms = { rows, inputs: 0, outputs: output.cols, flags: 0, w_off: 0, b_off: 0 };
    await rec.kernel(loss === 'mse' ? modelKernels.mseLoss : modelKernels.xentLoss, uniforms, { lhs: output.buffer, result: grad, rhs: y.buffer, row_loss: rowLoss }, rows, { rhs: 'y' });
    return { rowLoss, grad };
  }

  /** Forward, loss and backward into `grads`; returns the per-row loss buffer. */
  private async backprop(rec: Recording, x: Matrix, y: Matrix, loss: LossKind, random: SampleRandom | null): Promise<GPUBuffer> {
    const rows = x.rows;
    const pass = await this.run(rec, x, random, true);
    const { rowLoss, grad } = await this.recordLoss(rec, pass.output, y, loss);
    let dz = grad;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const layer = this.layers[l]!;
      const input = pass.acts[l]!;
      await rec.kernel(modelKernels.linearBackwardParams, this.denseUniform(layer, rows, false), { lhs: input, result: this.grads, rhs: dz }, layer.inputs * layer.outputs + layer.outputs);
      if (l > 0) {
        const dx = this.ctx.acquire(rows * layer.inputs * 4, 'mlp grad');
        await rec.kernel(modelKernels.linearBackwardInput, this.denseUniform(layer, rows, true), { lhs: dz, theta: this.params, result: dx, rhs: input }, rows * layer.inputs);
        const state = pass.states[l - 1];
        if (state) await dropoutBackward(this.ctx, dx, state, { out: dx, encoder: rec.encoder });
        rec.release(dz);
        dz = dx;
      }
    }
    rec.release(dz);
    for (const b of pass.acts.slice(1)) rec.release(b);
    return rowLoss;
  }

  private async meanLoss(rowLoss: GPUBuffer, rows: number): Promise<number> {
    const values = new Float32Array(await this.ctx.readBytes(rowLoss, rows * 4));
    this.ctx.release(rowLoss);
    let sum = 0;
    for (const v of values) sum += v;
    return sum / rows;
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
