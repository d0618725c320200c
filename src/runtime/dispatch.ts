// From a kernel record and a call to recorded dispatches: the chunk plan (tensors larger than one
// storage binding), the Params uniform of each chunk, bind groups, invocations under the launch
// tuning, and 2-D grids past the per-dimension workgroup limit. Also the model kit's custom
// kernels (one dispatch, whole buffers, a uniform of their own). Everything per record (the
// storage bindings, the uniform layout, the layout) is derived once per record.
import { split64, U64_MAX } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { packUniforms, uniformLayout, type BindingUnit, type BuffersOf, type KernelRecord, type UniformLayout, type UniformsOf } from '../kernels/record.js';
import type { Dtype } from '../kernels/shaders.js';
import type { Bindings, PipelineLayout } from './bindings.js';
import type { Liveness } from './liveness.js';
import { misaligned, NO_CONSTANTS, type Constants, type Pipelines } from './pipelines.js';
import type { Submission } from './submission.js';
import { bindingBytes, unitBytes, type BoundBuffer } from './units.js';

/** One kernel call over `count` elements whose mask indices start at `offset`. */
export interface DispatchCall<K extends KernelRecord = KernelRecord> {
  kernel: K;
  dtype: Dtype;
  count: number;
  /** A buffer for each of the record's bindings, by name. */
  buffers: BuffersOf<K, BoundBuffer>;
  seed?: bigint;
  stream?: bigint;
  offset?: bigint;
  threshold?: number;
  scale?: number;
  /** The record's own uniform fields (Params.op), by name. */
  uniforms?: UniformsOf<K>;
  /** The broadcast table of a 'broadcast' kernel (shapes, strides), bound at binding 4 for every chunk. */
  aux?: Uint32Array;
  /** Pipeline constants that specialize this call's kernel (besides WG and MISALIGNED, which the
   * context sets); used once compiled, the generic pipeline until then. */
  constants?: Constants;
  /** Pipeline constants the call cannot run without (it waits for their compile). */
  variant?: Constants;
  encoder?: GPUCommandEncoder;
}

/** What every call of one kernel record shares (see plan). */
interface KernelPlan extends PipelineLayout {
  /** Storage bindings: name, number and what each holds, in the record's order. */
  storage: readonly (readonly [string, number, BindingUnit])[];
  /** The record's uniform fields and the bytes of its whole uniform. */
  uniforms: UniformLayout;
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
  private readonly plans = new WeakMap<KernelRecord, KernelPlan>();
  /** Staging for Params words (see paramsStaging). */
  private params = paramsViews(new ArrayBuffer(256));

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

  /** Compiles `kernel`'s body and tail pipelines (aligned, unspecialized) under the keys its calls
   * look up, so that the first call finds them compiled. */
  warm(kernel: KernelRecord, dtype: Dtype): Promise<unknown> {
    const plan = this.plan(kernel);
    return Promise.all([this.pipelines.get(kernel, dtype, NO_CONSTANTS, plan), plan.tailKernel && this.pipelines.get(plan.tailKernel, dtype, NO_CONSTANTS, plan)]);
  }

  /** See DropoutContext.recordNow. */
  recordNow(call: DispatchCall, encoder: GPUCommandEncoder): void {
    const { kernel, dtype, count } = call;
    const plan = this.plan(kernel);
    const variant = call.variant ?? NO_CONSTANTS;
    const body = this.pipelines.now(kernel, dtype, (call.offset ?? 0n) % 4n ? misaligned(variant) : variant, plan);
    const tail = kernel.tail && count % 4 ? this.pipelines.now(plan.tailKernel!, dtype, variant, plan) : undefined;
    this.recorder(call, plan, body, tail)(encoder);
  }

  /**
   * Records one dispatch of a 'custom' (model-kit) kernel with `invocations` invocations into
   * `encoder`: `uniforms` by field, `buffers` by binding name, exactly the record's, bound whole
   * and named in errors by `names`. An explicit layout with the uniform at a dynamic offset, so a
   * step that repeats binds cached bind groups.
   */
  async custom<K extends KernelRecord>(
    k: K,
    uniforms: UniformsOf<K>,
    buffers: BuffersOf<K, GPUBuffer>,
    invocations: number,
    names: { readonly [N in keyof K['bindings']]?: string },
    encoder: GPUCommandEncoder,
  ): Promise<void> {
    const plan = this.plan(k);
    const pipeline = await this.pipelines.get(k, 'f32', NO_CONSTANTS, plan);
    if (invocations === 0) return;
    const words = new Uint32Array(plan.uniforms.bytes / 4);
    packUniforms(plan.uniforms, uniforms, words, new Float32Array(words.buffer), 0);
    const params = this.bindings.uniformSlots(words);
    const given: Readonly<Record<string, GPUBuffer | undefined>> = buffers;
    const argumentNames: Readonly<Record<string, string | undefined>> = names;
    const bound = plan.storage.map(([name, binding]) => {
      const buffer = given[name];
      if (!buffer) throw new Error(`${k.name}: no buffer for ${name}`); // a bug in the caller, not user input
      return [binding, buffer, 0, buffer.size] as const;
    });
    // A new bind group is made inside an error scope, checked before anything is recorded: a
    // buffer of another device is refused here (named by `names`, the caller's argument names).
    const scopes: Promise<GPUError | null>[] = [];
    const group = this.bindings.group(plan, params, undefined, bound, scopes);
    if (scopes.length) await this.submission.checkScopes(scopes, plan.storage.map(([name], i) => ({ buffer: bound[i]![1], argument: argumentNames[name] ?? `${k.name} ${name}` })));
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

  /** Invocations of `kernel`'s body entry point over n elements under the tuning (its dispatch
   * shape). With a tail entry the body covers whole vec4 groups only (the tail takes count % 4). */
  invocations(kernel: KernelRecord, n: number): number {
    const { tuning } = this.settings;
    const per =
      kernel.dispatch === 'grid' ? 4 * tuning.groupsPerInvocation
      : kernel.dispatch === 'maskWord' ? (tuning.maskWords === 'workgroup' ? 4 : 32)
      : kernel.dispatch === 'word' ? 32
      : 1;
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
    const plan = this.plan(kernel);
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
    const paramsBytes = plan.uniforms.bytes;
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    const slot = Math.ceil(paramsBytes / align) * align;
    const params = this.paramsStaging((chunks - 1) * slot + paramsBytes);
    const [k0, k1] = split64(call.seed ?? 0n);
    const [s0, s1] = split64(call.stream ?? 0n);
    const [o0, o1] = split64(offset);
    const { u32: u, f32: f } = params;
    for (let c = 0; c < chunks; c++) {
      const start = (offset + BigInt(c * chunk)) & U64_MAX; // mask indices count mod 2^64
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
      packUniforms(plan.uniforms, call.uniforms, u, f, w);
    }
    // A call of dispatchAll without an encoder is recorded into the batch (see Bindings.uniformSlots).
    const batched = scopes !== undefined && call.encoder === undefined;
    const uniforms = this.bindings.uniformSlots(params.bytes, batched);
    if ((kernel.mask === 'broadcast') !== (call.aux !== undefined)) throw new Error(`${kernel.name}: the broadcast table goes with 'broadcast' kernels only`); // a bug in the caller
    const aux = call.aux ? this.bindings.uniformSlots(call.aux, batched) : undefined;
    const buffers: Readonly<Record<string, BoundBuffer>> = call.buffers;
    // Created here, before anything is recorded: a new bind group is made inside an error scope
    // (`scopes`), which dispatchAll checks, so a buffer WebGPU refuses is named before recording.
    const groups: GPUBindGroup[] = [];
    for (let c = 0; c < chunks; c++) {
      const first = c * chunk;
      const n = Math.min(chunk, count - first);
      const storage: [number, GPUBuffer, number, number][] = plan.storage.map(([name, binding, unit]) => {
        const bound = buffers[name];
        if (!bound) throw new Error(`${kernel.name}: no buffer for ${name}`); // a bug in the caller, not user input
        const { buffer } = bound;
        return unit === 'whole' ? [binding, buffer, 0, buffer.size] : [binding, buffer, first * unitBytes(unit, dtype), bindingBytes(unit, dtype, n)];
      });
      groups.push(this.bindings.group(plan, { buffer: uniforms.buffer, size: paramsBytes }, aux, storage, scopes));
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
   * What every call of `kernel` shares, derived once: its storage bindings, its uniform layout,
   * the kernel record of its tail entry, and its explicit layout. Params (binding 0) and, for
   * 'broadcast' kernels, aux (binding 4) are uniforms with dynamic offsets into the arena, so a
   * bind group depends only on the storage buffers and can be reused across calls
   * (createBindGroup is the largest per-call host cost).
   */
  private plan(kernel: KernelRecord): KernelPlan {
    const known = this.plans.get(kernel);
    if (known) return known;
    const storage = Object.entries(kernel.bindings).map(([name, b]) => [name, b.binding, b.unit] as const);
    const layout = this.bindings.layout(
      Object.values(kernel.bindings).map((b) => [b.binding, b.access === 'read_write']),
      kernel.mask === 'broadcast',
    );
    const tailKernel = kernel.tail ? { ...kernel, entry: kernel.tail } : undefined;
    const plan = { ...layout, storage, uniforms: uniformLayout(kernel), tailKernel };
    this.plans.set(kernel, plan);
    return plan;
  }
}
