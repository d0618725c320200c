// A minimal model kit that exists to serve dropout: an MLP with ReLU and dropout between its layers,
// MSE and softmax cross-entropy losses, and Adam/SGD, all as GPU kernels (shaders/model.wgsl), over
// the matrices of matrix.ts and the sampled dropout of sample.ts. Not a framework: no autograd, no
// layers beyond dense.

import { DropoutError, InvalidArgumentError } from '../errors.js';
import { PhiloxGenerator } from '../generator.js';
import type { UniformsOf } from '../kernels/record.js';
import { type DropoutState, dropoutBackward } from '../ops/dropout.js';
import { referenceUniform } from '../reference/dropout.js';
import { type DropoutContext, runtimeOf } from '../runtime/context.js';
import { modelKernels, Recording } from './kernels.js';
import { checkBoundWhole, checkMatrix, checkRowsFit, type Matrix } from './matrix.js';
import {
  checkMethodOptions,
  checkMLPOptions,
  EVALUATE_OPTIONS,
  FORWARD_OPTIONS,
  type ForwardOptions,
  GRADIENT_OPTIONS,
  type GradientOptions,
  type LossKind,
  type MLPOptions,
  PREDICT_OPTIONS,
  TRAIN_OPTIONS,
  type TrainOptions,
} from './mlp-options.js';
import { checkSampleRandom, type SampleRandom, sampleDropout } from './sample.js';

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
  /** Layer widths [inputs, hidden..., outputs]. */
  readonly sizes: readonly number[];
  /** Drop probability after every hidden layer's ReLU, in [0, 1) (0: no dropout). */
  readonly p: number;
  /** Number of f32 parameters: every layer's W (inputs x outputs) and b (outputs). */
  readonly parameterCount: number;
  /** Source of the training steps' dropout streams. */
  readonly generator: PhiloxGenerator;
  /** The optimiser trainStep applies. */
  readonly optimizer: 'adam' | 'sgd';
  /** The step size; may be changed between steps (e.g. for a schedule). */
  learningRate: number;
  /** Adam's first-moment decay rate. */
  readonly beta1: number;
  /** Adam's second-moment decay rate. */
  readonly beta2: number;
  /** Adam's epsilon. */
  readonly epsilon: number;
  /** Optimiser steps taken. */
  steps = 0;

  private readonly layers: DenseLayer[] = [];
  private readonly params: GPUBuffer;
  private readonly grads: GPUBuffer;
  private readonly moment1: GPUBuffer;
  private readonly moment2: GPUBuffer;
  private destroyed = false;

  /**
   * Draws the weights (He-uniform, from the contract's words of (seed, stream 0); zero biases) and
   * uploads them with zeroed gradient and moment buffers.
   * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} for an unknown or bad
   *   option, or `sizes` whose parameters do not fit one storage binding (checked before any weight is drawn).
   */
  constructor(
    /** The context the network's buffers and kernels belong to. */
    readonly ctx: DropoutContext,
    options: MLPOptions,
  ) {
    runtimeOf(ctx).liveness.check();
    const { sizes, seed, ...settings } = checkMLPOptions(ctx, options);
    ({
      p: this.p,
      optimizer: this.optimizer,
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
    } = settings);
    this.sizes = sizes;
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

  /** Columns an input must have: `sizes[0]`. */
  get inputSize(): number {
    return this.sizes[0]!;
  }

  /** Columns of the output: the last entry of `sizes`. */
  get outputSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /**
   * Forward pass. With `random`, dropout is active and draws from it (MC sampling); without, it
   * is the deterministic eval-mode network. Returns a pooled Matrix (give it back with ctx.release).
   * Rejects with InvalidArgumentError for a bad matrix (x must have `inputSize` columns) or option,
   * or a batch whose widest activation does not fit one storage binding.
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
   * Rejects with InvalidArgumentError for a bad matrix (x: `inputSize` columns, y: `outputSize`,
   * the same rows) or option.
   */
  async trainStep(x: Matrix, y: Matrix, opts: TrainOptions): Promise<number | undefined> {
    this.checkBatch(x, y, opts?.loss);
    checkMethodOptions(opts, TRAIN_OPTIONS);
    if (opts.readLoss !== undefined && typeof opts.readLoss !== 'boolean')
      throw new InvalidArgumentError('readLoss', 'a boolean', opts.readLoss);
    if (opts.readLoss && opts.encoder)
      throw new InvalidArgumentError('readLoss', 'false when recording into your own encoder (submit it, then call evaluate)', true);
    const rec = new Recording(this.ctx, 'mlp.trainStep', opts.encoder);
    const random = this.p > 0 ? { seed: this.generator.seed, stream: this.generator.take(), samples: 1 } : null;
    const rowLoss = await this.backprop(rec, x, y, opts.loss, random);
    this.steps++;
    const b1t = 1 - this.beta1 ** this.steps;
    const b2t = 1 - this.beta2 ** this.steps;
    const uniforms = {
      count: this.parameterCount,
      sgd: this.optimizer === 'sgd' ? 1 : 0,
      lr: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.epsilon,
      c1: 1 / b1t,
      c2: 1 / b2t,
    };
    await rec.kernel(
      modelKernels.optimizerStep,
      uniforms,
      { theta: this.params, rhs: this.grads, moment1: this.moment1, moment2: this.moment2 },
      this.parameterCount,
    );
    await rec.submit();
    if (opts.readLoss) return this.meanLoss(rowLoss, x.rows);
    rec.release(rowLoss);
    return undefined;
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
  async gradients(
    x: Matrix,
    y: Matrix,
    opts: GradientOptions,
  ): Promise<{
    /** The batch's mean loss. */
    loss: number;
    /** d loss / d parameter for every parameter, in the {@link MLP.getParameters | getParameters} layout. */
    gradients: Float32Array;
  }> {
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

  /**
   * Overwrites every parameter (queued as a buffer write, before work submitted after it).
   * @param values - `parameterCount` values in the {@link MLP.getParameters | getParameters} layout.
   * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} for a wrong length or type;
   *   {@link "webgpu-dropout".DropoutError | DropoutError} after {@link MLP.destroy | destroy}.
   */
  setParameters(values: Float32Array): void {
    this.checkUsable();
    if (!(values instanceof Float32Array) || values.length !== this.parameterCount) {
      throw new InvalidArgumentError('values', `a Float32Array of ${this.parameterCount} parameters`, values);
    }
    this.ctx.device.queue.writeBuffer(this.params, 0, values as Float32Array<ArrayBuffer>);
  }

  /** Gives the parameter, gradient and optimiser buffers back to the pool; later calls on this MLP
   * fail with DropoutError (the async methods reject). Idempotent. */
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
    checkBoundWhole(this.ctx, y, 'y');
  }

  /** Every activation, gradient and loss buffer of a pass over `x` is bound whole, x itself too:
   * the widest must fit one storage binding. */
  private checkRows(x: Matrix, argument: string): void {
    const widest = Math.max(...this.sizes);
    checkRowsFit(this.ctx, x.rows, widest, argument, `a ${widest}-wide activation of f32`);
    checkBoundWhole(this.ctx, x, argument);
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
      await rec
        .kernel(
          modelKernels.linearForward,
          this.denseUniform(layer, x.rows, hidden),
          bound,
          x.rows * layer.outputs,
          l === 0 ? { lhs: 'x' } : {},
        )
        .catch((e: unknown) => {
          this.ctx.pool.refund(out);
          throw e;
        });
      let state: DropoutState | null = null;
      if (hidden && random && this.p > 0) {
        state = await sampleDropout(
          this.ctx,
          { buffer: out, rows: x.rows, cols: layer.outputs },
          { p: this.p, random, site: l, encoder: rec.encoder },
        );
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
    await rec.kernel(
      loss === 'mse' ? modelKernels.mseLoss : modelKernels.xentLoss,
      uniforms,
      { lhs: output.buffer, result: grad, rhs: y.buffer, row_loss: rowLoss },
      rows,
      { rhs: 'y' },
    );
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
      await rec.kernel(
        modelKernels.linearBackwardParams,
        this.denseUniform(layer, rows, false),
        { lhs: input, result: this.grads, rhs: dz },
        layer.inputs * layer.outputs + layer.outputs,
      );
      if (l > 0) {
        const dx = this.ctx.acquire(rows * layer.inputs * 4, 'mlp grad');
        await rec.kernel(
          modelKernels.linearBackwardInput,
          this.denseUniform(layer, rows, true),
          { lhs: dz, theta: this.params, result: dx, rhs: input },
          rows * layer.inputs,
        );
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
