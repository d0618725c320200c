// DropoutContext: the per-device facade. It resolves the options and composes the runtime's parts:
//   pipelines.ts   shader modules and pipelines, the specialization budget
//   bindings.ts    explicit layouts, the bind-group cache, the write-once uniform arena
//   broadcast.ts   a 'broadcast' call's mask table and shape specialization
//   dispatch.ts    KernelCall -> chunk plan, Params packing, grids (the model kit's kernels too)
//   submission.ts  the batch, error scopes, naming a refused argument, the encoder check
//   transfers.ts   pooled buffers, temporaries, buffer checks, upload and readback
//   liveness.ts    device loss and destroy()
//   tracking.ts    what WebGPU does not tell: an encoder's device, finished encoders, destroyed buffers
// The class's members are the public surface and nothing else. The library's own modules (ops,
// the model kit, the tfjs entry) reach the parts through one door, `runtimeOf(ctx)`.

import { InvalidArgumentError } from '../errors.js';
import { PhiloxGenerator } from '../generator.js';
import { kernels } from '../kernels/elementwise.js';
import type { F16Path } from '../kernels/shaders.js';
import { Bindings } from './bindings.js';
import { Broadcasts } from './broadcast.js';
import { Dispatcher } from './dispatch.js';
import { Liveness } from './liveness.js';
import { type ContextOptions, type LaunchTuning, type MaskTablePolicy, resolveOptions } from './options.js';
import { Pipelines } from './pipelines.js';
import { BufferPool } from './pool.js';
import { Submission } from './submission.js';
import { trackObjects } from './tracking.js';
import { Transfers } from './transfers.js';

/** The parts of a context, for the library's own modules (ops, the model kit, the tfjs entry). */
export interface Runtime {
  readonly ctx: DropoutContext;
  readonly liveness: Liveness;
  readonly pipelines: Pipelines;
  readonly bindings: Bindings;
  readonly submission: Submission;
  readonly dispatcher: Dispatcher;
  readonly transfers: Transfers;
}

const runtimes = new WeakMap<DropoutContext, Runtime>();

/** The runtime behind `ctx` (internal: not exported from the package). */
export function runtimeOf(ctx: DropoutContext): Runtime {
  const rt = runtimes.get(ctx);
  if (!rt) throw new InvalidArgumentError('context', 'a DropoutContext', ctx);
  return rt;
}

/**
 * Per-device state for every op: the pipeline cache (compiled asynchronously, once per kernel,
 * dtype and constants), a bounded pool of buffers, batching of the ops recorded in one tick into one
 * submission, and the default generator. Make one per `GPUDevice` with {@link DropoutContext.create}.
 *
 * ```ts
 * const ctx = await DropoutContext.create(device, { seed: 42n });
 * const { output, state } = await dropout(ctx, ctx.upload(new Float32Array([1, 2, 3, 4])), { p: 0.5 });
 * ```
 */
export class DropoutContext {
  /** The device every op of this context records for; it stays the caller's (`destroy()` leaves it alone). */
  readonly device: GPUDevice;
  /** Invocations per workgroup of every kernel (ContextOptions.workgroupSize, default 256). */
  readonly workgroupSize: number;
  /** Most elements one dispatch binds, a multiple of 2048; larger tensors run in chunks with the same mask. */
  readonly maxChunkElements: number;
  /** The buffer pool behind `acquire`, `release`, `upload` and op outputs; `pool.allocations`
   * counts the buffers it has created (a steady loop adds none). */
  readonly pool: BufferPool;
  /** Whether submissions run inside error scopes that name a refused argument (ContextOptions.validate, default true). */
  readonly validate: boolean;
  /** Budget of compiled-in noise-shape tables (ContextOptions.specializedShapes, default 32). */
  readonly specializedShapes: number;
  /** When broadcast-mask calls go through a mask table (ContextOptions.maskTables, resolved; Infinity: never). */
  readonly maskTables: MaskTablePolicy;
  /** The launch tuning in use (ContextOptions.tuning, or the adapter's default). */
  readonly tuning: Readonly<Required<LaunchTuning>>;
  /** The path f16 data takes (ContextOptions.f16Path): 'native' (WGSL f16, `shader-f16`) or
   * 'packed' (u32 words, any device). */
  readonly f16Path: F16Path;
  /** Default generator for ops that are given neither a seed nor a generator. */
  readonly generator: PhiloxGenerator;

  private readonly rt: Runtime;

  /**
   * A context on `device`, with the f32 dropout forward's pipelines compiled before it resolves.
   * @throws {@link InvalidArgumentError} (rejects) for a bad device, an unknown option or a bad
   *   option value, naming it (`options.<name>`); {@link UnsupportedError} for `f16Path: 'native'`
   *   on a device without `shader-f16`.
   */
  static async create(device: GPUDevice, options: ContextOptions = {}): Promise<DropoutContext> {
    const ctx = new DropoutContext(device, options);
    // Compile the f32 forward's pipelines up front (asynchronously), as its calls will look them up.
    await ctx.rt.dispatcher.warm(kernels.dropoutForward, 'f32');
    return ctx;
  }

  /**
   * A context on `device`, synchronously: pipelines compile on first use. Prefer
   * {@link DropoutContext.create}. Throws as `create` rejects.
   */
  constructor(device: GPUDevice, options: ContextOptions = {}) {
    const o = resolveOptions(device, options);
    trackObjects(device);
    this.device = device;
    this.workgroupSize = o.workgroupSize;
    this.maxChunkElements = o.maxChunkElements;
    this.pool = new BufferPool(device, o.poolBytes);
    this.validate = o.validate;
    this.specializedShapes = o.specializedShapes;
    this.maskTables = o.maskTables;
    this.tuning = o.tuning;
    this.f16Path = o.f16Path;
    this.generator = new PhiloxGenerator(o.seed);
    // The pipeline constants that carry `workgroupSize` and `tuning` into every module declaring them.
    const launchConstants = Object.freeze({
      WG: o.workgroupSize,
      GROUPS_PER_INVOCATION: o.tuning.groupsPerInvocation,
      MASK_WORDS_IN_WORKGROUP: o.tuning.maskWords === 'workgroup' ? 1 : 0,
    });
    const liveness = new Liveness();
    const pipelines = new Pipelines(device, o.f16Path, launchConstants, o.specializedShapes);
    const bindings = new Bindings(device, o.validate);
    const submission = new Submission(device, o.validate, liveness, pipelines, bindings);
    const transfers = new Transfers(device, this.pool, liveness, submission);
    const broadcasts = new Broadcasts(device, o.maskTables, pipelines, transfers);
    const dispatcher = new Dispatcher(device, o, liveness, pipelines, bindings, submission, transfers, broadcasts);
    this.rt = { ctx: this, liveness, pipelines, bindings, submission, dispatcher, transfers };
    runtimes.set(this, this.rt);
    void device.lost.then((info) => {
      liveness.lose(`device lost (${info.reason}): ${info.message}`);
      pipelines.clear();
    });
  }

  /**
   * Whether ops take `dtype: 'f16'`: true on every device (since the packed path). Which path f16
   * data take is `f16Path`; whether the device has the feature, `device.features.has('shader-f16')`.
   */
  get supportsF16(): boolean {
    return true;
  }

  // ---- pipelines -------------------------------------------------------------------------------

  /** Resolves once every pipeline compile started so far has finished, including background
   * specializations (ContextOptions.specializedShapes): benchmarks call it after a warm-up. */
  settled(): Promise<void> {
    return this.rt.pipelines.settled();
  }

  /** Specialized pipelines compiled and ready to use (see ContextOptions.specializedShapes). */
  get specializedPipelines(): number {
    return this.rt.pipelines.specializedReady;
  }

  // ---- submission ------------------------------------------------------------------------------

  /** Submits whatever the context has batched (ops do this on their own on the next microtask). */
  flush(): Promise<void> {
    return this.rt.submission.flush();
  }

  // ---- buffers ---------------------------------------------------------------------------------

  /** A buffer from the pool for `bytes` bytes (STORAGE | COPY_SRC | COPY_DST), `label` naming it in
   * WebGPU's messages. Give it back with `release`. Throws {@link InvalidArgumentError} (argument
   * `bytes`) past the device's `maxBufferSize`. */
  acquire(bytes: number, label?: string): GPUBuffer {
    return this.rt.transfers.acquire(bytes, label);
  }

  /**
   * Returns a buffer from `acquire`, `upload` or an op's output to the pool. Work already recorded
   * on it still runs first, in queue order; with your own encoder, release only after submitting it.
   */
  release(buffer: GPUBuffer): void {
    this.rt.transfers.release(buffer);
  }

  /**
   * Tells the context that `encoder`'s command buffer has been submitted (or will never be): the
   * temporaries that ops recorded into it (mask tables, the bias gradient's partial sums, the
   * MLP's activations) go back to the pool for the next ops, instead of being allocated afresh.
   * Later work is queued after that submit, so reusing them is safe; calling this *before* the
   * submit is not (a later op could get a buffer the encoder's work then overwrites).
   */
  submitted(encoder: GPUCommandEncoder): void {
    this.rt.transfers.submitted(encoder);
  }

  /**
   * Uploads typed-array data into a new storage buffer (pooled: `release` recycles it). Always a
   * fresh buffer written at creation, so an upload never lands in a buffer that recorded work
   * not yet submitted still reads.
   */
  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    return this.rt.transfers.upload(data, label);
  }

  /**
   * Reads `bytes` bytes of `buffer` from `byteOffset` back to the CPU: the only readback path.
   * Submits pending work first; rejects with DeviceLostError if the device goes away meanwhile.
   * `bytes` must be a whole number >= 0, `byteOffset` a multiple of 4, and the range inside the
   * buffer (else InvalidArgumentError); `argument` is the name errors give the buffer.
   */
  readBytes(buffer: GPUBuffer, bytes: number, byteOffset = 0, argument = 'buffer'): Promise<ArrayBuffer> {
    return this.rt.transfers.readBytes(buffer, bytes, byteOffset, argument);
  }

  /** Destroys the pool's idle buffers and forgets cached pipelines; outputs the caller still holds
   * stay alive until released or the device is destroyed, and the device itself stays the caller's. */
  destroy(): void {
    this.rt.liveness.destroyed = true;
    this.rt.bindings.clear();
    this.pool.clear();
    this.rt.pipelines.clear();
  }
}
