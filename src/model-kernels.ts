// Host side of the model kit's custom (non element-wise) kernels: records, uniforms, and a
// Recording that owns one command encoder per training step or MC pass, so a whole step is one
// submission and nothing is read back unless asked for.
import type { DropoutContext } from './context.js';
import { InvalidArgumentError } from './errors.js';
import type { ShaderName } from './shaders.js';

export interface CustomKernel {
  readonly name: string;
  readonly shader: readonly ShaderName[];
  readonly entry: string;
  /** The entry point's storage bindings and their WGSL access mode (binding 0 is its uniform). */
  readonly bindings: Readonly<Record<number, 'read' | 'read_write'>>;
}

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

/** Each record's storage bindings in binding order, with `true` where the entry writes (see explicitLayout). */
const storageBindings = new WeakMap<CustomKernel, readonly (readonly [number, boolean])[]>();
function storageOf(k: CustomKernel): readonly (readonly [number, boolean])[] {
  let storage = storageBindings.get(k);
  if (!storage) storageBindings.set(k, (storage = Object.entries(k.bindings).map(([b, access]) => [Number(b), access === RW] as const)));
  return storage;
}

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

  constructor(
    readonly ctx: DropoutContext,
    label: string,
    encoder?: GPUCommandEncoder,
  ) {
    ctx.checkAlive();
    if (encoder !== undefined && (typeof encoder !== 'object' || encoder === null || typeof encoder.beginComputePass !== 'function')) {
      throw new InvalidArgumentError('encoder', 'a GPUCommandEncoder', encoder);
    }
    this.owned = encoder === undefined;
    this.encoder = encoder ?? ctx.ownEncoder(label);
  }

  /**
   * Records one dispatch of `invocations` invocations; `buffers` are exactly the entry point's
   * storage bindings (`k.bindings`), bound whole. Like the element-wise kernels, it uses an explicit
   * layout with the uniform at a dynamic offset, so a step that repeats binds cached bind groups.
   */
  async kernel(
    k: CustomKernel,
    uniform: Uint32Array,
    buffers: Readonly<Record<number, GPUBuffer>>,
    invocations: number,
    names: Readonly<Record<number, string>> = {},
  ): Promise<void> {
    const storage = storageOf(k);
    const layout = this.ctx.explicitLayout(storage);
    const pipeline = await this.ctx.pipeline(k, 'f32', {}, layout);
    if (invocations === 0) return;
    const params = this.ctx.uniformSlots(uniform);
    const bound = storage.map(([binding]) => {
      const buffer = buffers[binding];
      if (!buffer) throw new Error(`${k.name}: no buffer for binding ${binding}`); // a bug in the caller, not user input
      return [binding, buffer, 0, buffer.size] as const;
    });
    // A new bind group is made inside an error scope, checked before anything is recorded: a
    // buffer of another device is refused here (named by `names`, the caller's argument names).
    const scopes: Promise<GPUError | null>[] = [];
    const group = this.ctx.bindGroup(layout, params, undefined, bound, scopes);
    if (scopes.length) await this.ctx.checkScopes(scopes, bound.map(([b, buffer]) => ({ buffer, argument: names[b] ?? `${k.name} binding ${b}` })));
    await this.ctx.encode(
      (encoder) => {
        const pass = encoder.beginComputePass({ label: k.name });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group, [params.offset]);
        const [x, y] = this.ctx.grid(Math.ceil(invocations / this.ctx.workgroupSize));
        pass.dispatchWorkgroups(x, y);
        pass.end();
      },
      { encoder: this.encoder },
    );
  }

  /** Gives a pooled buffer back once this recording's work on it is submitted (`ctx.retire`). */
  release(buffer: GPUBuffer): void {
    this.ctx.retire(buffer, this.encoder);
  }

  /** Submits our own encoder (after anything the context has batched) and reports a rejected submission. */
  async submit(): Promise<void> {
    if (!this.owned) return;
    try {
      await this.ctx.flush();
      await this.ctx.submit(this.encoder);
    } finally {
      this.ctx.submitted(this.encoder);
    }
  }
}
