// From KernelCalls to recorded dispatches: a 'broadcast' call's mask table and specialization
// (broadcast.ts), the chunk plan (tensors larger than one storage binding), the Params uniform of
// each chunk, bind groups, invocations under the launch tuning, and 2-D grids past the
// per-dimension workgroup limit; the model kit's 'custom' kernels take the same path as one
// dispatch over whole buffers with a uniform of their own. Everything per record (the storage
// bindings, the uniform layout, the layout) is derived once per record.
import { type RandomState, U64_MAX } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import {
  type BindingUnit,
  type BuffersOf,
  type KernelRecord,
  type PARAMS_HEADER,
  PARAMS_HEADER_LAYOUT,
  packUniforms,
  type UniformLayout,
  type UniformsOf,
  uniformLayout,
} from '../kernels/record.js';
import type { Dtype } from '../kernels/shaders.js';
import type { Bindings, PipelineLayout } from './bindings.js';
import type { Broadcasts } from './broadcast.js';
import type { Liveness } from './liveness.js';
import { type Constants, misaligned, NO_CONSTANTS, type Pipelines } from './pipelines.js';
import type { Submission } from './submission.js';
import type { Transfers } from './transfers.js';
import { type BoundBuffer, bindingBytes, unitBytes } from './units.js';

/**
 * One kernel call: the one shape in which every op, the model kit and the tfjs entry describe
 * the work they record. A 'broadcast' kernel's mask table and its specialization are the
 * runtime's business (src/runtime/broadcast.ts); the call gives its broadcast table.
 */
export interface KernelCall<K extends KernelRecord = KernelRecord> {
  kernel: K;
  /** Element type of the 'data' bindings (default 'f32'). */
  dtype?: Dtype;
  /** Elements, with mask indices offset .. offset + count - 1 ('custom' kernels: invocations). */
  count: number;
  /** A buffer for each of the record's storage bindings, by name (a 'broadcast' kernel's
   * `maskTable` is bound by the runtime). */
  buffers: Omit<BuffersOf<K, BoundBuffer>, 'maskTable'>;
  /** The randomness (seed, stream, mask index of element 0); none for kernels that draw none. */
  rand?: RandomState;
  threshold?: number;
  scale?: number;
  /** The record's own uniform fields, by name. */
  uniforms?: UniformsOf<K>;
  /** A 'broadcast' kernel's broadcast table (src/ops/shape.ts broadcastTable), bound at binding 4. */
  broadcast?: Uint32Array;
  /** Pipeline constants of the op, compiled in with a shape specialization (the fused bias's COLUMNS). */
  constants?: Constants;
  encoder?: GPUCommandEncoder;
}

/** A call as recorded: its pipeline constants and its 'broadcast' kernel's mask table settled. */
interface Resolved {
  call: KernelCall;
  buffers: Readonly<Record<string, BoundBuffer>>;
  /** Pipeline constants specializing it; the generic pipeline until they are compiled. */
  constants?: Constants;
  /** Pipeline constants it cannot run without (it waits for their compile). */
  variant: Constants;
  /** The kernel that writes its mask table first, over the mask's elements. */
  writer?: { kernel: KernelRecord; count: number };
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

/** Word of each PARAMS_HEADER field, by name (the packer below writes them positionally, on every
 * call's path, so it looks them up once). */
const H = Object.fromEntries(PARAMS_HEADER_LAYOUT.names.map((n, i) => [n, PARAMS_HEADER_LAYOUT.words[i]!])) as Record<
  keyof typeof PARAMS_HEADER,
  number
>;

/** Writes one chunk's Params header (PARAMS_HEADER) at word `w`: the call's randomness, the mask
 * index `start` of the chunk's element 0, its element count, threshold, scale and first element. */
function packHeader(
  u: Uint32Array,
  f: Float32Array,
  w: number,
  rand: RandomState | undefined,
  start: bigint,
  count: number,
  threshold: number,
  scale: number,
  first: number,
): void {
  const seed = rand?.seed ?? 0n;
  const stream = rand?.stream ?? 0n;
  const offset = rand?.offset ?? 0n;
  const group0 = start >> 2n;
  u[w + H.seed] = Number(seed & 0xffffffffn);
  u[w + H.seed + 1] = Number(seed >> 32n);
  u[w + H.stream] = Number(stream & 0xffffffffn);
  u[w + H.stream + 1] = Number(stream >> 32n);
  u[w + H.group0] = Number(group0 & 0xffffffffn);
  u[w + H.group0 + 1] = Number(group0 >> 32n);
  u[w + H.offset] = Number(offset & 0xffffffffn);
  u[w + H.offset + 1] = Number(offset >> 32n);
  u[w + H.lane0] = Number(start & 3n);
  u[w + H.count] = count;
  u[w + H.threshold] = threshold;
  f[w + H.scale] = scale;
  u[w + H.first] = first;
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
    private readonly transfers: Transfers,
    private readonly broadcasts: Broadcasts,
  ) {}

  /**
   * Records kernel calls back to back, in this order and with nothing else between them (all
   * pipelines are compiled first), into one encoder: the calls' own (all must name the same one)
   * or the context's batch, submitted on the next microtask. Each call is split into chunks that
   * fit a storage binding (chunk starts aligned so the mask indices, and hence the mask, are
   * those of the unchunked call), each a vec4 body dispatch plus a scalar tail for count % 4,
   * folded into 2-D grids past 65,535 workgroups. A 'broadcast' call whose mask table pays gets
   * it written first, from the pool, given back once submitted. Resolves once recorded (with an
   * encoder) or submitted and accepted (without); refused, nothing of it was recorded and the
   * temporaries it took are back in the pool.
   */
  async dispatch(all: KernelCall | readonly KernelCall[]): Promise<void> {
    this.liveness.check();
    const given = Array.isArray(all) ? (all as readonly KernelCall[]) : [all as KernelCall];
    const encoder = given[0]?.encoder;
    if (given.some((c) => c.encoder !== encoder))
      throw new InvalidArgumentError('encoder', 'the same encoder (or none) in every call of dispatch');
    const temporaries: GPUBuffer[] = [];
    const calls = this.resolveAll(given, temporaries);
    if (calls.length === 0) return;
    try {
      this.submission.hold();
      let records: ((encoder: GPUCommandEncoder) => void)[];
      const scopes: Promise<GPUError | null>[] = [];
      const args = calls.flatMap((c) => Object.values(c.buffers));
      try {
        records = await Promise.all(calls.map((c) => this.prepare(c, scopes)));
        // A bind group WebGPU refused (a buffer of another device): named now, before anything
        // is recorded into a caller's encoder. The batch checks its scopes when it submits
        // instead, so that ops recorded in one tick stay in call order.
        if (encoder && scopes.length) await this.submission.checkScopes(scopes, args);
      } finally {
        this.submission.release();
      }
      this.liveness.check();
      // The arguments name buffers in the batch's error messages.
      await this.submission.encode((e) => records.forEach((record) => record(e)), {
        encoder,
        arguments: encoder ? undefined : args,
        scopes: encoder ? undefined : scopes,
      });
    } catch (e) {
      for (const t of temporaries) this.transfers.refund(t);
      throw e;
    }
    for (const t of temporaries) this.transfers.retire(t, encoder);
  }

  /** Compiles `kernel`'s body and tail pipelines (aligned, unspecialized) under the keys its calls
   * look up, so that the first call finds them compiled. */
  warm(kernel: KernelRecord, dtype: Dtype): Promise<unknown> {
    const plan = this.plan(kernel);
    return Promise.all([
      this.pipelines.get(kernel, dtype, NO_CONSTANTS, plan),
      plan.tailKernel && this.pipelines.get(plan.tailKernel, dtype, NO_CONSTANTS, plan),
    ]);
  }

  /**
   * Records `call` into `encoder` now, synchronously, for callers that cannot wait (the tfjs entry
   * records between TensorFlow.js's own kernels, which run synchronously): the same Params words,
   * chunks and bind groups as `dispatch`, with the generic pipelines (no specialization, no mask
   * table), compiled synchronously on first use. No error scope: the caller's own WebGPU error
   * handling applies.
   */
  recordNow(call: KernelCall, encoder: GPUCommandEncoder): void {
    if (call.count === 0) return;
    const r = this.resolve(call, undefined);
    const { kernel, count } = call;
    const dtype = call.dtype ?? 'f32';
    const plan = this.plan(kernel);
    const body = this.pipelines.now(kernel, dtype, (call.rand?.offset ?? 0n) % 4n ? misaligned(r.variant) : r.variant, plan);
    const tail = kernel.tail && count % 4 ? this.pipelines.now(plan.tailKernel!, dtype, r.variant, plan) : undefined;
    this.recorder(r, plan, body, tail)(encoder);
  }

  /** The calls with something to do, each resolved (a 'broadcast' one after its table's writer,
   * the table in `temporaries`). */
  private resolveAll(given: readonly KernelCall[], temporaries: GPUBuffer[]): Resolved[] {
    const calls: Resolved[] = [];
    try {
      for (const c of given) {
        if (c.count === 0) continue;
        const r = this.resolve(c, temporaries);
        if (r.writer) {
          // The table's writer first, recorded back to back with the call that reads it.
          const out = { out: r.buffers.maskTable! };
          calls.push({
            call: { kernel: r.writer.kernel, count: r.writer.count, buffers: out, rand: c.rand, encoder: c.encoder },
            buffers: out,
            variant: NO_CONSTANTS,
          });
        }
        calls.push(r);
      }
    } catch (e) {
      for (const t of temporaries) this.transfers.refund(t);
      throw e;
    }
    return calls;
  }

  /** `call`'s bindings and pipeline constants; with `temporaries` (not when recording
   * synchronously) a 'broadcast' call may take a mask table and a specialization. */
  private resolve(call: KernelCall, temporaries: GPUBuffer[] | undefined): Resolved {
    const { kernel } = call;
    const buffers: Readonly<Record<string, BoundBuffer>> = call.buffers;
    if ((kernel.mask === 'broadcast') !== (call.broadcast !== undefined))
      throw new Error(`${kernel.name}: a broadcast table goes with 'broadcast' kernels only`); // a bug in the caller
    if (kernel.mask !== 'broadcast') return { call, buffers, variant: NO_CONSTANTS };
    const b = this.broadcasts.plan(
      kernel,
      call.count,
      call.broadcast!,
      call.rand !== undefined,
      call.threshold ?? 0,
      call.constants,
      temporaries !== undefined,
    );
    if (b.writer) temporaries!.push(b.maskTable.buffer);
    return {
      call,
      buffers: { ...buffers, maskTable: b.maskTable },
      constants: b.constants,
      variant: b.variant ?? NO_CONSTANTS,
      writer: b.writer,
    };
  }

  /** Invocations of `kernel`'s body entry point over n elements under the tuning (its dispatch
   * shape). With a tail entry the body covers whole vec4 groups only (the tail takes count % 4). */
  invocations(kernel: KernelRecord, n: number): number {
    const { tuning } = this.settings;
    const per =
      kernel.dispatch === 'grid'
        ? 4 * tuning.groupsPerInvocation
        : kernel.dispatch === 'maskWord'
          ? tuning.maskWords === 'workgroup'
            ? 4
            : 32
          : kernel.dispatch === 'word'
            ? 32
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
  private async prepare(r: Resolved, scopes: Promise<GPUError | null>[]): Promise<(encoder: GPUCommandEncoder) => void> {
    const { kernel, count } = r.call;
    const dtype = r.call.dtype ?? 'f32';
    // Chunks start on multiples of 4 elements, so every chunk shares the call's alignment.
    const plan = this.plan(kernel);
    const body = this.pipelines.specializedOr(
      kernel,
      dtype,
      r.constants,
      (r.call.rand?.offset ?? 0n) % 4n ? misaligned(r.variant) : r.variant,
      plan,
    );
    const tail = kernel.tail && count % 4 ? this.pipelines.specializedOr(plan.tailKernel!, dtype, r.constants, r.variant, plan) : undefined;
    const bodyPipeline = await body;
    const tailPipeline = tail && (await tail);
    return this.recorder(r, plan, bodyPipeline, tailPipeline, scopes);
  }

  /** Writes a call's uniforms and creates its bind groups (inside `scopes` when given), and returns
   * the function that records its dispatches. */
  private recorder(
    r: Resolved,
    plan: KernelPlan,
    bodyPipeline: GPUComputePipeline,
    tailPipeline: GPUComputePipeline | undefined,
    scopes?: Promise<GPUError | null>[],
  ): (encoder: GPUCommandEncoder) => void {
    const { call, buffers } = r;
    const { kernel, count } = call;
    const dtype = call.dtype ?? 'f32';
    const custom = kernel.dispatch === 'custom';
    // A 'custom' kernel is one dispatch over whole buffers.
    const chunk = custom ? count : this.settings.maxChunkElements;
    const chunks = Math.ceil(count / chunk);
    const paramsBytes = plan.uniforms.bytes;
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    const slot = Math.ceil(paramsBytes / align) * align;
    const params = this.paramsStaging((chunks - 1) * slot + paramsBytes);
    const { u32: u, f32: f } = params;
    const rand = call.rand;
    const offset = rand?.offset ?? 0n;
    for (let c = 0; c < chunks; c++) {
      const w = (c * slot) / 4;
      if (!custom) {
        const start = (offset + BigInt(c * chunk)) & U64_MAX; // mask indices count mod 2^64
        packHeader(u, f, w, rand, start, Math.min(chunk, count - c * chunk), call.threshold ?? 0, call.scale ?? 1, c * chunk);
      }
      packUniforms(plan.uniforms, call.uniforms, u, f, w);
    }
    // A call without an encoder is recorded into the batch (see Bindings.uniformSlots).
    const batched = scopes !== undefined && call.encoder === undefined;
    const uniforms = this.bindings.uniformSlots(params.bytes, batched);
    const broadcast = call.broadcast ? this.bindings.uniformSlots(call.broadcast, batched) : undefined;
    // Created here, before anything is recorded: a new bind group is made inside an error scope
    // (`scopes`), which dispatch checks, so a buffer WebGPU refuses is named before recording.
    const groups: GPUBindGroup[] = [];
    for (let c = 0; c < chunks; c++) {
      const first = c * chunk;
      const n = Math.min(chunk, count - first);
      const storage: [number, GPUBuffer, number, number][] = plan.storage.map(([name, binding, unit]) => {
        const bound = buffers[name];
        if (!bound) throw new Error(`${kernel.name}: no buffer for ${name}`); // a bug in the caller, not user input
        const { buffer } = bound;
        return unit === 'whole'
          ? [binding, buffer, 0, buffer.size]
          : [binding, buffer, first * unitBytes(unit, dtype), bindingBytes(unit, dtype, n)];
      });
      groups.push(this.bindings.group(plan, { buffer: uniforms.buffer, size: paramsBytes }, broadcast, storage, scopes));
    }

    return (encoder) => {
      const pass = encoder.beginComputePass({ label: kernel.name });
      for (let c = 0; c < chunks; c++) {
        const n = Math.min(chunk, count - c * chunk);
        const group = groups[c]!;
        const dynamicOffsets = broadcast ? [uniforms.offset + c * slot, broadcast.offset] : [uniforms.offset + c * slot];
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
