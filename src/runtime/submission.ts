// How recorded work reaches the queue: the batch (ops recorded in one tick share one command
// buffer, submitted on the next microtask once their pipelines are compiled), error scopes, and
// turning a rejected submission into an error that names the unusable argument buffer.
import { Got, GpuValidationError, InvalidArgumentError } from '../errors.js';
import type { Bindings } from './bindings.js';
import type { Liveness } from './liveness.js';
import type { Pipelines } from './pipelines.js';
import { encoderDevice, isFinished } from './tracking.js';
import type { BoundBuffer } from './units.js';

/** Unfinished submissions of the library's own at which a completion wait starts, and past which
 * the next one waits for it (see noteSubmit). */
const WATCH_UNFINISHED_SUBMITS = 8;
const MAX_UNFINISHED_SUBMITS = 256;

/** What a buffer that WebGPU refused at submit should have been (the probe cannot tell which fault). */
const UNUSABLE_BUFFER = 'a live GPUBuffer of this device (it was destroyed, or belongs to another GPUDevice); nothing was written';

interface Batch {
  encoder: GPUCommandEncoder;
  arguments: BoundBuffer[];
  /** Error scopes of the objects created for its calls (checked at submit). */
  scopes: Promise<GPUError | null>[];
  submitted: Promise<void>;
}

/** Where `encode` records: the caller's encoder, or the batch (with the buffers to name in errors). */
export interface EncodeOptions {
  encoder?: GPUCommandEncoder;
  arguments?: BoundBuffer[];
  scopes?: Promise<GPUError | null>[];
}

export class Submission {
  private batch: Batch | null = null;
  /** Dispatches still compiling their pipelines; the batch is not submitted before they record,
   * so an op made of several dispatches lands in one submission (all of it runs, or none). */
  private compiling = 0;
  private readonly afterCompiles: (() => void)[] = [];
  /** The buffer that made a batch fail, by the error `explain` made for it (see rejectionFor). */
  private readonly culprits = new WeakMap<Error, GPUBuffer>();
  /** Submissions so far, those known to have completed, and the completion wait in flight (see noteSubmit). */
  private submits = 0;
  private completed = 0;
  private completion: Promise<void> | null = null;

  constructor(
    private readonly device: GPUDevice,
    readonly validate: boolean,
    private readonly liveness: Liveness,
    private readonly pipelines: Pipelines,
    private readonly bindings: Bindings,
  ) {}

  /** Holds the batch open until `release`: a dispatch compiling its pipelines calls it first. */
  hold(): void {
    this.compiling++;
  }

  release(): void {
    // Waiters run on a later microtask, after the held calls have recorded (synchronously).
    if (--this.compiling === 0) for (const f of this.afterCompiles.splice(0)) queueMicrotask(f);
  }

  /**
   * Records work: `record` gets the caller's encoder, or the batch encoder (submitted on the next
   * microtask together with everything else recorded in this tick). Resolves once recorded
   * (caller's encoder) or once the batch is submitted and accepted.
   */
  async encode(record: (encoder: GPUCommandEncoder) => void, opts: EncodeOptions = {}): Promise<void> {
    this.liveness.check();
    if (opts.encoder) {
      // Checked again right before recording: the caller may have finished it while the op waited.
      this.checkEncoder(opts.encoder);
      record(opts.encoder);
      return;
    }
    const batch = this.open();
    record(batch.encoder);
    batch.arguments.push(...(opts.arguments ?? []));
    if (opts.scopes) batch.scopes.push(...opts.scopes);
    try {
      await batch.submitted;
    } catch (e) {
      throw this.rejectionFor(e, opts.arguments);
    }
  }

  /**
   * Throws unless `encoder` is undefined or a command encoder this device can record into: not one
   * of another GPUDevice, not one already finished (see tracking.ts; an encoder created before
   * tracking began has no known device and is taken on trust).
   */
  checkEncoder(encoder: unknown, argument = 'encoder'): asserts encoder is GPUCommandEncoder | undefined {
    if (encoder === undefined) return;
    if (typeof encoder !== 'object' || encoder === null || typeof (encoder as GPUCommandEncoder).beginComputePass !== 'function') {
      throw new InvalidArgumentError(argument, 'a GPUCommandEncoder', encoder);
    }
    const device = encoderDevice(encoder as GPUCommandEncoder);
    if (device !== undefined && device !== this.device) {
      throw new InvalidArgumentError(argument, "a GPUCommandEncoder of this context's device", new Got('an encoder of another GPUDevice'));
    }
    if (isFinished(encoder as GPUCommandEncoder)) {
      throw new InvalidArgumentError(
        argument,
        'a GPUCommandEncoder still open for recording',
        new Got('one whose finish() was already called'),
      );
    }
  }

  /** Submits whatever is batched. */
  async flush(): Promise<void> {
    if (this.batch) await this.batch.submitted;
  }

  /**
   * Submits `commands`. With `validate`, in an error scope: a rejection (nothing from the command
   * buffer ran) becomes a specific error naming a destroyed argument among `args` if there is one,
   * and device loss while waiting rejects with DeviceLostError.
   */
  async submit(
    commands: GPUCommandBuffer | GPUCommandEncoder,
    args: BoundBuffer[] = [],
    scopes: readonly Promise<GPUError | null>[] = [],
  ): Promise<void> {
    this.liveness.check();
    // An encoder is finished inside the scope: finish() is where WebGPU reports what was recorded wrong.
    const finish = () => ('finish' in commands ? commands.finish() : commands);
    if (!this.validate) {
      this.device.queue.submit([finish()]);
      this.noteSubmit();
      return this.throttle();
    }
    this.device.pushErrorScope('validation');
    this.device.queue.submit([finish()]);
    this.noteSubmit();
    await this.checkScopes([...scopes, this.device.popErrorScope()], args);
    await this.throttle();
  }

  /**
   * Notes a submission of the library's own. Dawn frees what a submission holds (its commands, the
   * staging of writeBuffer, objects released meanwhile) only once it has seen the work complete,
   * and it looks only while a wait is pending and JavaScript yields to the event loop; a caller that
   * never reads back and awaits only our promises would otherwise grow without bound (and, past some
   * 60,000 submissions on lavapipe, crash). So once WATCH_UNFINISHED_SUBMITS are unfinished, one
   * `onSubmittedWorkDone` is kept in flight (not one per submission: each costs a Dawn event), and
   * `throttle` holds a submitting op back while more than MAX_UNFINISHED_SUBMITS are.
   */
  noteSubmit(): void {
    this.submits++;
    this.watchCompletion();
  }

  /** Waits (yielding to the event loop) while more than MAX_UNFINISHED_SUBMITS submissions are
   * unfinished; undefined, and no promise made, when they are not (a caller that waits for its
   * work anyway never waits here). */
  throttle(): Promise<void> | undefined {
    return this.submits - this.completed > MAX_UNFINISHED_SUBMITS ? this.waitForCompletions() : undefined;
  }

  private async waitForCompletions(): Promise<void> {
    while (this.completion && this.submits - this.completed > MAX_UNFINISHED_SUBMITS) await this.liveness.guard(this.completion);
  }

  private watchCompletion(): void {
    if (this.completion || this.liveness.lost !== null || this.submits - this.completed < WATCH_UNFINISHED_SUBMITS) return;
    const through = this.submits;
    const done = () => {
      this.completion = null;
      this.completed = Math.max(this.completed, through);
      this.watchCompletion();
    };
    this.completion = this.device.queue.onSubmittedWorkDone().then(done, done);
  }

  /** Rejects with the error `explain` makes (naming an unusable buffer among `args`) if any of
   * these error scopes caught one; the bind-group cache is emptied then (it may hold the refused group). */
  async checkScopes(scopes: readonly Promise<GPUError | null>[], args: readonly BoundBuffer[]): Promise<void> {
    const error = (await this.liveness.guard(Promise.all(scopes))).find((e) => e !== null);
    if (!error) return;
    this.bindings.forgetGroups();
    throw await this.explain(error, [...args]);
  }

  /** Turns a rejected submission into a specific error, naming a destroyed argument if one is. */
  async explain(error: GPUError, args: BoundBuffer[]): Promise<Error> {
    const probe = await this.pipelines.get({ name: 'probe', shader: ['probe'], entry: 'probe' }, 'f32');
    for (const arg of new Set(args)) {
      this.device.pushErrorScope('validation');
      const encoder = this.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(probe);
      pass.setBindGroup(
        0,
        this.device.createBindGroup({
          layout: probe.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: arg.buffer, size: 4 } }],
        }),
      );
      pass.dispatchWorkgroups(1);
      pass.end();
      this.device.queue.submit([encoder.finish()]);
      if (await this.device.popErrorScope()) {
        const error = new InvalidArgumentError(arg.argument, UNUSABLE_BUFFER);
        this.culprits.set(error, arg.buffer);
        return error;
      }
    }
    return new GpuValidationError(`WebGPU rejected the submission; nothing from it ran: ${error.message}`);
  }

  private open(): Batch {
    if (this.batch) return this.batch;
    const encoder = this.device.createCommandEncoder({ label: 'webgpu-dropout batch' });
    const batch: Batch = { encoder, arguments: [], scopes: [], submitted: Promise.resolve() };
    batch.submitted = new Promise<void>((resolve, reject) => {
      const submitWhenCompiled = () => {
        if (this.compiling > 0) {
          this.afterCompiles.push(submitWhenCompiled);
          return;
        }
        if (this.batch === batch) this.batch = null;
        this.submit(batch.encoder, batch.arguments, batch.scopes).then(resolve, reject);
        // Submitted (or refused) by now: the ring's slots it read may be written again.
        this.bindings.batchSubmitted();
      };
      queueMicrotask(submitWhenCompiled);
    });
    batch.submitted.catch(() => undefined); // rejections reach the ops that await it
    this.batch = batch;
    return batch;
  }

  /**
   * The error one op of a rejected batch gets: naming its own argument when it was given the
   * unusable buffer, else saying that another op of the batch was (its work was lost with it).
   */
  private rejectionFor(e: unknown, args: readonly BoundBuffer[] | undefined): unknown {
    const culprit = e instanceof Error ? this.culprits.get(e) : undefined;
    if (!culprit) return e;
    const own = args?.find((a) => a.buffer === culprit);
    if (own) return own.argument === (e as InvalidArgumentError).argument ? e : new InvalidArgumentError(own.argument, UNUSABLE_BUFFER);
    return new GpuValidationError(
      `another op recorded in the same batch (same tick, no encoder) was rejected, so this op's work did not run either; nothing was written: ${(e as Error).message}`,
    );
  }
}
