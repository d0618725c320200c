// DropoutContext: the per-device facade. It resolves the options and composes the runtime's parts:
//   pipelines.ts   shader modules and pipelines, the specialization budget
//   bindings.ts    explicit layouts, the bind-group cache, the write-once uniform arena
//   dispatch.ts    chunk plan, Params packing, grids; the model kit's custom dispatches
//   submission.ts  the batch, error scopes, naming a refused argument
//   transfers.ts   pooled buffers, temporaries, upload and readback
//   liveness.ts    device loss and destroy()
//   tracking.ts    what WebGPU does not tell: an encoder's device, finished encoders, destroyed buffers
// Library modules that record kernels of their own reach those parts through `runtimeOf(ctx)`,
// never through private members; the methods below are the public surface.
import { PhiloxGenerator } from '../generator.js';
import { kernels, type KernelRecord } from '../kernels/elementwise.js';
import { BufferPool } from './pool.js';
import type { Dtype, F16Path } from '../kernels/shaders.js';
import { InvalidArgumentError } from '../errors.js';
import { Bindings } from './bindings.js';
import { Dispatcher, type DispatchCall } from './dispatch.js';
import { Liveness } from './liveness.js';
import { resolveOptions, type ContextOptions, type LaunchTuning, type MaskTablePolicy } from './options.js';
import { Pipelines } from './pipelines.js';
import { Submission } from './submission.js';
import { trackObjects } from './tracking.js';
import { Transfers } from './transfers.js';
import type { BoundBuffer } from './units.js';

/** The parts of a context, for the library's own modules (ops, the model kit, the tfjs entry). */
export interface Runtime {
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

export class DropoutContext {
  readonly device: GPUDevice;
  readonly workgroupSize: number;
  readonly maxChunkElements: number;
  readonly pool: BufferPool;
  readonly validate: boolean;
  readonly specializedShapes: number;
  readonly maskTables: MaskTablePolicy;
  /** The launch tuning in use (ContextOptions.tuning, or the adapter's default). */
  readonly tuning: Readonly<Required<LaunchTuning>>;
  /** The path f16 data takes (ContextOptions.f16Path): 'native' (WGSL f16, `shader-f16`) or
   * 'packed' (u32 words, any device). */
  readonly f16Path: F16Path;
  /** Default generator for ops that are given neither a seed nor a generator. */
  readonly generator: PhiloxGenerator;

  private readonly rt: Runtime;

  static async create(device: GPUDevice, options: ContextOptions = {}): Promise<DropoutContext> {
    const ctx = new DropoutContext(device, options);
    // Compile the f32 forward's pipelines up front (asynchronously), as its calls will look them up.
    await ctx.rt.dispatcher.warm(kernels.dropoutForward, 'f32');
    return ctx;
  }

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
    const dispatcher = new Dispatcher(device, o, liveness, pipelines, bindings, submission);
    this.rt = { liveness, pipelines, bindings, submission, dispatcher, transfers };
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

  /** Throws unless `dtype` is 'f32' or 'f16' (both run on every device, see f16Path). */
  checkDtype(dtype: unknown, argument = 'dtype'): asserts dtype is Dtype {
    if (dtype !== 'f32' && dtype !== 'f16') throw new InvalidArgumentError(argument, "'f32' or 'f16'", dtype);
  }

  /** Throws DeviceLostError once the device is gone. */
  checkAlive(): void {
    this.rt.liveness.check();
  }

  /** Throws unless `encoder` is undefined or an unfinished GPUCommandEncoder of this context's device. */
  checkEncoder(encoder: unknown, argument = 'encoder'): asserts encoder is GPUCommandEncoder | undefined {
    this.rt.submission.checkEncoder(encoder, argument);
  }

  /** Checks that `buffer` is a live GPUBuffer with STORAGE usage and at least `bytes` bytes. */
  checkStorage(buffer: unknown, argument: string, bytes: number): asserts buffer is GPUBuffer {
    this.rt.transfers.checkStorage(buffer, argument, bytes);
  }

  /**
   * Throws unless a buffer of `bytes` bytes fits this device's `maxBufferSize`: `argument` names
   * what set the size (with its `value`), `what` says which buffer it is. Ops call it before any
   * work for the buffers they create (outputs, tables, staging), so that WebGPU never sees one too large.
   */
  checkBufferSize(bytes: number, argument: string, value: unknown, what = 'the output buffer'): void {
    this.rt.transfers.checkBufferSize(bytes, argument, value, what);
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

  /** Whether a pipeline specialized for `key` may be used (granted now if the budget allows). */
  claimSpecialization(key: string): boolean {
    return this.rt.pipelines.claimSpecialization(key);
  }

  // ---- dispatch --------------------------------------------------------------------------------

  /**
   * Records one kernel call: split into chunks that fit a storage binding (chunk starts aligned so
   * the mask indices, and hence the mask, are those of the unchunked call), each chunk a vec4 body
   * dispatch plus a scalar tail for count % 4, folded into 2-D grids past 65,535 workgroups.
   * Without `call.encoder` the work joins the context's batch, submitted on the next microtask.
   * Resolves once recorded (with an encoder) or submitted and accepted (without).
   */
  dispatch<K extends KernelRecord>(call: DispatchCall<K>): Promise<void> {
    return this.rt.dispatcher.dispatchAll([call as DispatchCall]);
  }

  /**
   * Records kernel calls back to back, in this order and with nothing else between them (all
   * pipelines are compiled first), into one encoder: the first call's (all must name the same one)
   * or the context's batch. For a call that reads what the one before it wrote.
   */
  dispatchAll(all: readonly DispatchCall[]): Promise<void> {
    return this.rt.dispatcher.dispatchAll(all);
  }

  /**
   * Records `call` into `encoder` now, synchronously, for callers that cannot wait (the tfjs entry
   * records between TensorFlow.js's own kernels, which run synchronously): the same Params words,
   * chunks and bind groups as `dispatch`, with the generic pipelines (no specialization), compiled
   * synchronously on first use. No error scope: the caller's own WebGPU error handling applies.
   */
  recordNow(call: DispatchCall, encoder: GPUCommandEncoder): void {
    this.rt.dispatcher.recordNow(call, encoder);
  }

  /** Invocations of `kernel`'s body entry point over n elements under this context's tuning. */
  invocations(kernel: KernelRecord, n: number): number {
    return this.rt.dispatcher.invocations(kernel, n);
  }

  /** Workgroup grid for `groups` workgroups: x up to the per-dimension limit, the rest in y. */
  grid(groups: number): [number, number] {
    return this.rt.dispatcher.grid(groups);
  }

  // ---- submission ------------------------------------------------------------------------------

  /**
   * Records work: `record` gets the caller's encoder, or the context's batch encoder (submitted on
   * the next microtask together with everything else recorded in this tick). Resolves once
   * recorded (caller's encoder) or once the batch is submitted and accepted. `arguments` name the
   * buffers for error messages.
   */
  encode(
    record: (encoder: GPUCommandEncoder) => void,
    opts: { encoder?: GPUCommandEncoder; arguments?: BoundBuffer[]; scopes?: Promise<GPUError | null>[] } = {},
  ): Promise<void> {
    return this.rt.submission.encode(record, opts);
  }

  /**
   * Submits `commands`. With `validate`, in an error scope: a rejection (nothing from the command
   * buffer ran) becomes a specific error naming a destroyed argument among `args` if there is one,
   * and device loss while waiting rejects with DeviceLostError.
   */
  submit(commands: GPUCommandBuffer | GPUCommandEncoder, args: BoundBuffer[] = [], scopes: readonly Promise<GPUError | null>[] = []): Promise<void> {
    return this.rt.submission.submit(commands, args, scopes);
  }

  /** Submits whatever the context has batched (ops do this on their own on the next microtask). */
  flush(): Promise<void> {
    return this.rt.submission.flush();
  }

  // ---- buffers ---------------------------------------------------------------------------------

  /** A buffer from the pool for `bytes` bytes (STORAGE | COPY_SRC | COPY_DST). Give it back with `release`. */
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
   * Gives back a temporary of the library's own whose last use was recorded into `encoder`, once
   * that work is submitted: a later op gets the buffer from the pool, and recorded-but-unsubmitted
   * work on it would otherwise overwrite that op's result when it finally runs.
   * - No encoder: the work went into the context's batch, which the caller awaited (so it was
   *   submitted): back to the pool now.
   * - Any encoder: back to the pool when `submitted(encoder)` is called. Until then a caller's
   *   encoder's temporaries are out of the pool (not counted, never handed out, not destroyed,
   *   which would break that submit); if `submitted` never comes, WebGPU frees them once they are
   *   unreferenced, when JavaScript collects the encoder.
   */
  retire(buffer: GPUBuffer, encoder?: GPUCommandEncoder): void {
    this.rt.transfers.retire(buffer, encoder);
  }

  /** An encoder the library records into and submits itself (see `retire`). */
  ownEncoder(label: string): GPUCommandEncoder {
    return this.rt.transfers.ownEncoder(label);
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
