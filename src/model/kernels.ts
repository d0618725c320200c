// Host side of the model kit's custom (non element-wise) kernels: records, uniforms, and a
// Recording that owns one command encoder per training step or MC pass, so a whole step is one
// submission and nothing is read back unless asked for.

import mcSource from '../../shaders/mc.wgsl?raw';
import modelSource from '../../shaders/model.wgsl?raw';
import { type KernelRecord, read, type UniformsOf, write } from '../kernels/record.js';
import { registerShader } from '../kernels/shaders.js';
import { type DropoutContext, type Runtime, runtimeOf } from '../runtime/context.js';
import type { BoundBuffer } from '../runtime/units.js';

// The model kit's WGSL, registered here so that a bundle without the model kit leaves it out.
const modelFiles = ['philox', registerShader('model', modelSource)] as const;
const mcFiles = [registerShader('mc', mcSource)] as const;
/** A model-kit kernel: one dispatch over whole buffers, its uniform (binding 0) its own. */
function custom<const R extends object>(name: string, shader: typeof modelFiles | typeof mcFiles, entry: string, rest: R) {
  return { name, shader, entry, dispatch: 'custom', mask: 'none', ...rest } as const;
}
const whole = (binding: number) => read(binding, 'whole');
const wholeRw = (binding: number) => write(binding, 'whole');

/** struct Dense of shaders/model.wgsl. */
const dense = { rows: 'u32', inputs: 'u32', outputs: 'u32', flags: 'u32', w_off: 'u32', b_off: 'u32' } as const;
/** struct Mc of shaders/mc.wgsl. */
const mc = { rows: 'u32', cols: 'u32', first: 'u32', samples: 'u32', total: 'u32' } as const;

export const modelKernels = {
  linearForward: custom('model.linear_forward', modelFiles, 'linear_forward', {
    bindings: { lhs: whole(1), theta: whole(2), result: wholeRw(3) },
    uniforms: dense,
  }),
  linearBackwardInput: custom('model.linear_backward_input', modelFiles, 'linear_backward_input', {
    bindings: { lhs: whole(1), theta: whole(2), result: wholeRw(3), rhs: whole(4) },
    uniforms: dense,
  }),
  linearBackwardParams: custom('model.linear_backward_params', modelFiles, 'linear_backward_params', {
    bindings: { lhs: whole(1), result: wholeRw(3), rhs: whole(4) },
    uniforms: dense,
  }),
  mseLoss: custom('model.mse_loss', modelFiles, 'mse_loss', {
    bindings: { lhs: whole(1), result: wholeRw(3), rhs: whole(4), row_loss: wholeRw(5) },
    uniforms: dense,
  }),
  xentLoss: custom('model.xent_loss', modelFiles, 'xent_loss', {
    bindings: { lhs: whole(1), result: wholeRw(3), rhs: whole(4), row_loss: wholeRw(5) },
    uniforms: dense,
  }),
  optimizerStep: custom('model.optimizer_step', modelFiles, 'optimizer_step', {
    bindings: { theta: wholeRw(2), rhs: whole(4), moment1: wholeRw(5), moment2: wholeRw(6) },
    uniforms: { count: 'u32', sgd: 'u32', lr: 'f32', beta1: 'f32', beta2: 'f32', eps: 'f32', c1: 'f32', c2: 'f32' },
  }),
  dropoutBlocks: {
    ...custom('model.dropout_blocks', modelFiles, 'dropout_blocks', { bindings: { result: wholeRw(3) } }),
    // Element i of block t takes the contract's word of mask index offset + i in stream stream + t.
    mask: 'elementwise',
    uniforms: { seed: 'u64', stream: 'u64', offset: 'u64', count: 'u32', per_block: 'u32', threshold: 'u32', scale: 'f32' },
  },
  accumulateRegression: custom('mc.accumulate_regression', mcFiles, 'accumulate_regression', {
    bindings: { outputs: whole(1), mean: wholeRw(2), m2: wholeRw(3) },
    uniforms: mc,
  }),
  accumulateClassification: custom('mc.accumulate_classification', mcFiles, 'accumulate_classification', {
    bindings: { outputs: whole(1), mean: wholeRw(2), m2: wholeRw(3), mean_entropy: wholeRw(4) },
    uniforms: mc,
  }),
  finalizeRegression: custom('mc.finalize_regression', mcFiles, 'finalize_regression', { bindings: { m2: wholeRw(3) }, uniforms: mc }),
  finalizeClassification: custom('mc.finalize_classification', mcFiles, 'finalize_classification', {
    bindings: { mean: wholeRw(2), m2: wholeRw(3), mean_entropy: wholeRw(4), row_stats: wholeRw(5) },
    uniforms: mc,
  }),
} as const satisfies Record<string, KernelRecord>;

/** The model kit's records (every one a 'custom' kernel). */
export type ModelKernel = (typeof modelKernels)[keyof typeof modelKernels];

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
    this.rt = runtimeOf(ctx);
    this.rt.liveness.check();
    this.rt.submission.checkEncoder(encoder, 'encoder');
    this.owned = encoder === undefined;
    this.encoder = encoder ?? this.rt.transfers.ownEncoder(label);
  }

  /**
   * Records the KernelCall of one dispatch of `invocations` invocations: `uniforms` by field and
   * `buffers` by binding name, exactly the record's, bound whole; `names` name the caller's
   * arguments in errors (unnamed ones are named by the kernel and binding).
   */
  kernel<K extends ModelKernel>(
    k: K,
    uniforms: NoInfer<UniformsOf<K>>,
    buffers: NoInfer<{ readonly [N in keyof K['bindings']]: GPUBuffer }>,
    invocations: number,
    names: NoInfer<{ readonly [N in keyof K['bindings']]?: string }> = {},
  ): Promise<void> {
    const given: Readonly<Record<string, GPUBuffer>> = buffers;
    const argumentNames: Readonly<Record<string, string | undefined>> = names;
    const bound: Record<string, BoundBuffer> = {};
    for (const name in given) bound[name] = { buffer: given[name]!, argument: argumentNames[name] ?? `${k.name} ${name}` };
    return this.rt.dispatcher.dispatch({ kernel: k, count: invocations, buffers: bound, uniforms, encoder: this.encoder });
  }

  /** Gives a pooled buffer back once this recording's work on it is submitted (Transfers.retire). */
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
