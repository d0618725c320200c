// From a kernel record and a call to recorded dispatches: the chunk plan (tensors larger than one
// storage binding), the Params uniform of each chunk, bind groups, invocations under the launch
// tuning, and 2-D grids past the per-dimension workgroup limit. Also the model kit's custom
// kernels (one dispatch, whole buffers, a uniform of their own).
import { split64 } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import type { BindingUnit, KernelRecord } from '../kernels/elementwise.js';
import type { Dtype } from '../kernels/shaders.js';
import type { Bindings, PipelineLayout } from './bindings.js';
import type { Liveness } from './liveness.js';
import { misaligned, NO_CONSTANTS, type Constants, type Pipelines } from './pipelines.js';
import type { Submission } from './submission.js';
import { bindingBytes, unitBytes, type BoundBuffer } from './units.js';

/** Bytes of one Params uniform (shaders/elementwise.wgsl); each chunk gets its own 256-byte slot. */
const PARAMS_BYTES = 80;
const NO_EXTRA: readonly number[] = Object.freeze([]);

/** One element-wise kernel call over `count` elements whose mask indices start at `offset`. */
export interface DispatchCall {
  kernel: KernelRecord;
  dtype: Dtype;
  count: number;
  buffers: Readonly<Record<number, BoundBuffer>>;
  seed?: bigint;
  stream?: bigint;
  offset?: bigint;
  threshold?: number;
  scale?: number;
  /** Params.extra_u and Params.extra: op-specific constants. */
  extraU?: number;
  extra?: readonly number[];
  /** Op-specific uniform data (shapes, strides) bound at binding 4 for every chunk, as u32 words. */
  aux?: Uint32Array;
  /** Pipeline constants that specialize this call's kernel (besides WG and MISALIGNED, which the
   * context sets); used once compiled, the generic pipeline until then. */
  constants?: Constants;
  /** Pipeline constants the call cannot run without (it waits for their compile). */
  variant?: Constants;
  encoder?: GPUCommandEncoder;
}

/** A kernel of the model kit: one dispatch over whole buffers, with a uniform of its own at binding 0. */
export interface CustomKernel {
  readonly name: string;
  readonly shader: KernelRecord['shader'];
  readonly entry: string;
  /** The entry point's storage bindings and their WGSL access mode (binding 0 is its uniform). */
  readonly bindings: Readonly<Record<number, 'read' | 'read_write'>>;
}

/** What every call of one kernel record shares (see plan). */
interface KernelPlan extends PipelineLayout {
  /** Storage bindings and what each holds, in binding order. */
  storage: readonly (readonly [number, BindingUnit])[];
  /** The record with the tail entry point, for kernels that have one. */
  tailKernel?: KernelRecord;
}

/** The context settings a dispatcher reads. */
export interface DispatchSettings {
  readonly workgroupSize: number;
  readonly maxChunkElements: number;
  readonly tuning: { readonly groupsPerInvocation: number; readonly maskWords: 'workgroup' | 'invocation' };
}

/** The same bytes as u32 and f32 words. */
function paramsViews(buffer: ArrayBuffer): { u32: Uint32Array<ArrayBuffer>; f32: Float32Array<ArrayBuffer> } {
  return { u32: new Uint32Array(buffer), f32: new Float32Array(buffer) };
}

export class Dispatcher {
  private readonly plans = new WeakMap<KernelRecord, KernelPlan[]>();
  private readonly customStorage = new WeakMap<CustomKernel, readonly (readonly [number, boolean])[]>();
  /** Staging for Params words (see paramsStaging). */
  private params = paramsViews(new ArrayBuffer(PARAMS_BYTES));

  constructor(
    private readonly device: GPUDevice,
    private readonly settings: DispatchSettings,
    private readonly liveness: Liveness,
    private readonly pipelines: Pipelines,
    private readonly bindings: Bindings,
    private readonly submission: Submission,
  ) {}

  /** See DropoutContext.dispatchAll. */
  async dispatchAll(all: readonly DispatchCall[]): Promise<void> {
    this.liveness.check();
    const encoder = all[0]?.encoder;
    if (all.some((c) => c.encoder !== encoder)) throw new InvalidArgumentError('encoder', 'the same encoder (or none) in every call of dispatchAll');
    const calls = all.filter((c) => c.count > 0);
    if (calls.length === 0) return;
    this.submission.hold();
    let records: ((encoder: GPUCommandEncoder) => void)[];
    const scopes: Promise<GPUError | null>[] = [];
    const args = calls.flatMap((c) => Object.values(c.buffers));
    try {
      records = await Promise.all(calls.map((c) => this.prepare(c, scopes)));
      // A bind group WebGPU refused (a buffer of another device): named now, before anything is
      // recorded into a caller's encoder. The batch checks its scopes when it submits instead, so
      // that ops recorded in one tick stay in call order.
      if (encoder && scopes.length) await this.submission.checkScopes(scopes, args);
    } finally {
      this.submission.release();
    }
    this.liveness.check();
    // The arguments name buffers in the batch's error messages.
    await this.submission.encode((e) => records.forEach((record) => record(e)), { encoder, arguments: encoder ? undefined : args, scopes: encoder ? undefined : scopes });
  }

  /** See DropoutContext.recordNow. */
  recordNow(call: DispatchCall, encoder: GPUCommandEncoder): void {
    const { kernel, dtype, count } = call;
    const plan = this.plan(kernel, call.aux !== undefined);
    const variant = call.variant ?? NO_CONSTANTS;
    const body = this.pipelines.now(kernel, dtype, (call.offset ?? 0n) % 4n ? misaligned(variant) : variant, plan);
    const tail = kernel.tail && count % 4 ? this.pipelines.now(plan.tailKernel!, dtype, variant, plan) : undefined;
    this.recorder(call, plan, body, tail)(encoder);
  }

  /**
   * Records one dispatch of a model-kit kernel with `invocations` invocations into `encoder`;
   * `buffers` are exactly the entry point's storage bindings (`k.bindings`), bound whole, named in
   * errors by `names`. An explicit layout with the uniform at a dynamic offset, so a step that
   * repeats binds cached bind groups.
   */
  async custom(
    k: CustomKernel,
    uniform: Uint32Array,
    buffers: Readonly<Record<number, GPUBuffer>>,
    invocations: number,
    names: Readonly<Record<number, string>>,
    encoder: GPUCommandEncoder,
  ): Promise<void> {
    let storage = this.customStorage.get(k);
    if (!storage) this.customStorage.set(k, (storage = Object.entries(k.bindings).map(([b, access]) => [Number(b), access === 'read_write'] as const)));
    const layout = this.bindings.layout(storage);
    const pipeline = await this.pipelines.get(k, 'f32', NO_CONSTANTS, layout);
    if (invocations === 0) return;
    const params = this.bindings.uniformSlots(uniform);
    const bound = storage.map(([binding]) => {
      const buffer = buffers[binding];
      if (!buffer) throw new Error(`${k.name}: no buffer for binding ${binding}`); // a bug in the caller, not user input
      return [binding, buffer, 0, buffer.size] as const;
    });
    // A new bind group is made inside an error scope, checked before anything is recorded: a
    // buffer of another device is refused here (named by `names`, the caller's argument names).
    const scopes: Promise<GPUError | null>[] = [];
    const group = this.bindings.group(layout, params, undefined, bound, scopes);
    if (scopes.length) await this.submission.checkScopes(scopes, bound.map(([b, buffer]) => ({ buffer, argument: names[b] ?? `${k.name} binding ${b}` })));
    await this.submission.encode(
      (e) => {
        const pass = e.beginComputePass({ label: k.name });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group, [params.offset]);
        const [x, y] = this.grid(Math.ceil(invocations / this.settings.workgroupSize));
        pass.dispatchWorkgroups(x, y);
        pass.end();
      },
      { encoder },
    );
  }

  /** Invocations of `kernel`'s body entry point over n elements under the tuning. With a tail
   * entry the body covers whole vec4 groups only (the tail takes count % 4). */
  invocations(kernel: KernelRecord, n: number): number {
    const { tuning } = this.settings;
    const per =
      kernel.perInvocation === 'strided' ? 4 * tuning.groupsPerInvocation
      : kernel.perInvocation === 'maskWord' ? (tuning.maskWords === 'workgroup' ? 4 : 32)
      : kernel.perInvocation;
    return kernel.tail ? Math.ceil(Math.floor(n / 4) / (per / 4)) : Math.ceil(n / per);
  }

  /** Workgroup grid for `groups` workgroups: x up to the per-dimension limit, the rest in y
   * (kernels fold it back with linear_id in shaders/elementwise.wgsl). */
  grid(groups: number): [number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y];
  }

  /** Compiles (or finds) a call's pipelines and returns the function that records it. */
  private async prepare(call: DispatchCall, scopes: Promise<GPUError | null>[]): Promise<(encoder: GPUCommandEncoder) => void> {
    const { kernel, dtype, count } = call;
    // Chunks start on multiples of 4 elements, so every chunk shares the call's alignment.
    const plan = this.plan(kernel, call.aux !== undefined);
    const variant = call.variant ?? NO_CONSTANTS;
    const body = this.pipelines.specializedOr(kernel, dtype, call.constants, (call.offset ?? 0n) % 4n ? misaligned(variant) : variant, plan);
    const tail = kernel.tail && count % 4 ? this.pipelines.specializedOr(plan.tailKernel!, dtype, call.constants, variant, plan) : undefined;
    const bodyPipeline = await body;
    const tailPipeline = tail && (await tail);
    return this.recorder(call, plan, bodyPipeline, tailPipeline, scopes);
  }

  /** Writes a call's Params and creates its bind groups (inside `scopes` when given), and returns
   * the function that records its dispatches. */
  private recorder(
    call: DispatchCall,
    plan: KernelPlan,
    bodyPipeline: GPUComputePipeline,
    tailPipeline: GPUComputePipeline | undefined,
    scopes?: Promise<GPUError | null>[],
  ): (encoder: GPUCommandEncoder) => void {
    const { kernel, dtype, count } = call;
    const offset = call.offset ?? 0n;
    const chunk = this.settings.maxChunkElements;
    const chunks = Math.ceil(count / chunk);
    const slot = Math.max(PARAMS_BYTES, this.device.limits.minUniformBufferOffsetAlignment);
    const params = this.paramsStaging((chunks - 1) * slot + PARAMS_BYTES);
    const [k0, k1] = split64(call.seed ?? 0n);
    const [s0, s1] = split64(call.stream ?? 0n);
    const [o0, o1] = split64(offset);
    const extra = call.extra ?? NO_EXTRA;
    const { u32: u, f32: f } = params;
    for (let c = 0; c < chunks; c++) {
      const start = offset + BigInt(c * chunk);
      const [g0, g1] = split64(start >> 2n);
      // Params (shaders/elementwise.wgsl) as u32 words, f32 where the struct has f32.
      const w = (c * slot) / 4;
      u[w] = k0;
      u[w + 1] = k1;
      u[w + 2] = s0;
      u[w + 3] = s1;
      u[w + 4] = g0;
      u[w + 5] = g1;
      u[w + 6] = o0;
      u[w + 7] = o1;
      u[w + 8] = Number(start & 3n);
      u[w + 9] = Math.min(chunk, count - c * chunk);
      u[w + 10] = call.threshold ?? 0;
      f[w + 11] = call.scale ?? 1;
      u[w + 12] = c * chunk;
      u[w + 13] = call.extraU ?? 0;
      u[w + 14] = 0;
      u[w + 15] = 0;
      for (let i = 0; i < 4; i++) f[w + 16 + i] = extra[i] ?? 0;
    }
    const uniforms = this.bindings.uniformSlots(params.bytes);
    const aux = call.aux ? this.bindings.uniformSlots(call.aux) : undefined;
    // Created here, before anything is recorded: a new bind group is made inside an error scope
    // (`scopes`), which dispatchAll checks, so a buffer WebGPU refuses is named before recording.
    const groups: GPUBindGroup[] = [];
    for (let c = 0; c < chunks; c++) {
      const first = c * chunk;
      const n = Math.min(chunk, count - first);
      const storage: [number, GPUBuffer, number, number][] = plan.storage.map(([binding, unit]) => {
        const { buffer } = call.buffers[binding]!;
        return unit === 'whole' ? [binding, buffer, 0, buffer.size] : [binding, buffer, first * unitBytes(unit, dtype), bindingBytes(unit, dtype, n)];
      });
      groups.push(this.bindings.group(plan, { buffer: uniforms.buffer, size: PARAMS_BYTES }, aux, storage, scopes));
    }

    return (encoder) => {
      const pass = encoder.beginComputePass({ label: kernel.name });
      for (let c = 0; c < chunks; c++) {
        const n = Math.min(chunk, count - c * chunk);
        const group = groups[c]!;
        const dynamicOffsets = aux ? [uniforms.offset + c * slot, aux.offset] : [uniforms.offset + c * slot];
        const run = (pipeline: GPUComputePipeline, invocations: number) => {
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, group, dynamicOffsets);
          const [x, y] = this.grid(Math.ceil(invocations / this.settings.workgroupSize));
          pass.dispatchWorkgroups(x, y);
        };
        const bodyInvocations = this.invocations(kernel, n);
        if (bodyInvocations > 0) run(bodyPipeline, bodyInvocations);
        if (tailPipeline && n % 4) run(tailPipeline, n % 4);
      }
      pass.end();
    };
  }

  /**
   * Staging for one call's Params words, reused by every call: `writeBuffer` copies its data at
   * once, so the next call may overwrite it.
   */
  private paramsStaging(bytes: number): { bytes: Uint8Array<ArrayBuffer>; u32: Uint32Array<ArrayBuffer>; f32: Float32Array<ArrayBuffer> } {
    if (this.params.u32.byteLength < bytes) this.params = paramsViews(new ArrayBuffer(bytes));
    const { u32, f32 } = this.params;
    return { bytes: new Uint8Array(u32.buffer, 0, bytes), u32, f32 };
  }

  /**
   * What every call of `kernel` shares, derived once: its storage bindings, the kernel record of its
   * tail entry, and its explicit layout. Params (binding 0) and aux (binding 4) are uniforms with
   * dynamic offsets into the arena, so a bind group depends only on the storage buffers and can be
   * reused across calls (createBindGroup is the largest per-call host cost).
   */
  private plan(kernel: KernelRecord, withAux: boolean): KernelPlan {
    let plans = this.plans.get(kernel);
    if (!plans) this.plans.set(kernel, (plans = []));
    const index = withAux ? 1 : 0;
    const known = plans[index];
    if (known) return known;
    const writes = kernel.writes ?? [2];
    const storage = Object.entries(kernel.bindings).map(([b, unit]) => [Number(b), unit] as const);
    const layout = this.bindings.layout(storage.map(([b]) => [b, writes.includes(b)]), withAux);
    const tailKernel = kernel.tail ? { ...kernel, entry: kernel.tail } : undefined;
    return (plans[index] = { ...layout, storage, tailKernel });
  }
}
