// Host side of the model kit's custom (non element-wise) kernels: records, uniforms, and a
// Recording that owns one command encoder per training step or MC pass, so a whole step is one
// submission and nothing is read back unless asked for.
import { runtimeOf, type DropoutContext, type Runtime } from '../context.js';
import { InvalidArgumentError } from '../errors.js';
import type { CustomKernel } from '../runtime/dispatch.js';

export type { CustomKernel };

const modelFiles = ['philox', 'model'] as const;
const mcFiles = ['mc'] as const;
const R = 'read';
const RW = 'read_write';

export const modelKernels = {
  linearForward: { name: 'model.linear_forward', shader: modelFiles, entry: 'linear_forward', bindings: { 1: R, 2: R, 3: RW } },
  linearBackwardInput: { name: 'model.linear_backward_input', shader: modelFiles, entry: 'linear_backward_input', bindings: { 1: R, 2: R, 3: RW, 4: R } },
  linearBackwardParams: { name: 'model.linear_backward_params', shader: modelFiles, entry: 'linear_backward_params', bindings: { 1: R, 3: RW, 4: R } },
  mseLoss: { name: 'model.mse_loss', shader: modelFiles, entry: 'mse_loss', bindings: { 1: R, 3: RW, 4: R, 5: RW } },
  xentLoss: { name: 'model.xent_loss', shader: modelFiles, entry: 'xent_loss', bindings: { 1: R, 3: RW, 4: R, 5: RW } },
  optimizerStep: { name: 'model.optimizer_step', shader: modelFiles, entry: 'optimizer_step', bindings: { 2: RW, 4: R, 5: RW, 6: RW } },
  dropoutBlocks: { name: 'model.dropout_blocks', shader: modelFiles, entry: 'dropout_blocks', bindings: { 3: RW } },
  accumulateRegression: { name: 'mc.accumulate_regression', shader: mcFiles, entry: 'accumulate_regression', bindings: { 1: R, 2: RW, 3: RW } },
  accumulateClassification: { name: 'mc.accumulate_classification', shader: mcFiles, entry: 'accumulate_classification', bindings: { 1: R, 2: RW, 3: RW, 4: RW } },
  finalizeRegression: { name: 'mc.finalize_regression', shader: mcFiles, entry: 'finalize_regression', bindings: { 3: RW } },
  finalizeClassification: { name: 'mc.finalize_classification', shader: mcFiles, entry: 'finalize_classification', bindings: { 2: RW, 3: RW, 4: RW, 5: RW } },
} satisfies Record<string, CustomKernel>;

/** A uniform block of u32 and f32 fields in declaration order (f32 fields given as { f: value }). */
export function packUniform(fields: readonly (number | { f: number })[]): Uint32Array {
  const words = new Uint32Array(fields.length);
  const floats = new Float32Array(words.buffer);
  fields.forEach((v, i) => {
    if (typeof v === 'number') words[i] = v;
    else floats[i] = v.f;
  });
  return words;
}

/**
 * Work recorded into one command encoder: the caller's (it submits) or one of our own, submitted
 * by `submit`. Uniforms go into the context's write-once arena, as the core ops' do.
 */
export class Recording {
  readonly encoder: GPUCommandEncoder;
  readonly owned: boolean;
  private readonly rt: Runtime;

  constructor(
    readonly ctx: DropoutContext,
    label: string,
    encoder?: GPUCommandEncoder,
  ) {
    ctx.checkAlive();
    if (encoder !== undefined && (typeof encoder !== 'object' || encoder === null || typeof encoder.beginComputePass !== 'function')) {
      throw new InvalidArgumentError('encoder', 'a GPUCommandEncoder', encoder);
    }
    this.rt = runtimeOf(ctx);
    this.owned = encoder === undefined;
    this.encoder = encoder ?? this.rt.transfers.ownEncoder(label);
  }

  /**
   * Records one dispatch of `invocations` invocations; `buffers` are exactly the entry point's
   * storage bindings (`k.bindings`), bound whole (see Dispatcher.custom).
   */
  kernel(
    k: CustomKernel,
    uniform: Uint32Array,
    buffers: Readonly<Record<number, GPUBuffer>>,
    invocations: number,
    names: Readonly<Record<number, string>> = {},
  ): Promise<void> {
    return this.rt.dispatcher.custom(k, uniform, buffers, invocations, names, this.encoder);
  }

  /** Gives a pooled buffer back once this recording's work on it is submitted (`ctx.retire`). */
  release(buffer: GPUBuffer): void {
    this.rt.transfers.retire(buffer, this.encoder);
  }

  /** Submits our own encoder (after anything the context has batched) and reports a rejected submission. */
  async submit(): Promise<void> {
    if (!this.owned) return;
    try {
      await this.rt.submission.flush();
      await this.rt.submission.submit(this.encoder);
    } finally {
      this.rt.transfers.submitted(this.encoder);
    }
  }
}
