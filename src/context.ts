// The per-device host layer: pipeline cache, buffer pool, batched submission, chunked dispatch,
// explicit readback, and device-loss handling. Every op in ops.ts goes through `dispatch`.
import { split64, toU64, type U64 } from './contract.js';
import { DeviceLostError, GpuValidationError, Got, InvalidArgumentError, UnsupportedError } from './errors.js';
import { PhiloxGenerator } from './generator.js';
import { kernels, type BindingUnit, type KernelRecord } from './kernels.js';
import { checkOptionNames, optionNames } from './options.js';
import { BufferPool } from './pool.js';
import { composeShader, shaderSources, type Dtype, type F16Path, type ShaderName } from './shaders.js';

export type { Dtype, F16Path };

// GPUBufferUsage / GPUMapMode values, spelled out so the library does not need the globals.
export const Usage = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;
const MAP_MODE_READ = 0x1;

/** Bytes of one Params uniform (shaders/elementwise.wgsl); each dispatch gets its own 256-byte slot. */
const PARAMS_BYTES = 80;
const COMPUTE_STAGE = 0x4; // GPUShaderStage.COMPUTE
/** What a buffer that WebGPU refused at submit should have been (the probe cannot tell which fault). */
const UNUSABLE_BUFFER = 'a live GPUBuffer of this device (it was destroyed, or belongs to another GPUDevice); nothing was written';
/** Bind groups kept for reuse (each keeps its buffers alive until evicted; the cache is also
 * emptied whenever the uniform arena it binds is replaced, i.e. every 256 dispatches or so). */
const BIND_GROUP_CACHE = 64;
/** Size of each write-once uniform arena (256 dispatch slots at the usual 256-byte alignment). */
const UNIFORM_ARENA_BYTES = 64 * 1024;
/** Chunks start on multiples of this many elements, so every binding offset (data in f16 or f32,
 * and the packed mask at 1/8 byte per element) is a multiple of 256 bytes. */
export const CHUNK_ALIGN = 2048;

export interface ContextOptions {
  /** Invocations per workgroup for every kernel (default 256). */
  workgroupSize?: number;
  /** Largest number of elements one dispatch binds; larger tensors are processed in chunks.
   * Default: what the device's maxStorageBufferBindingSize allows. Rounded down to a multiple of 2048. */
  maxChunkElements?: number;
  /** Byte budget of idle buffers the pool keeps for reuse (default 256 MiB). */
  poolBytes?: number;
  /** Seed of the context's default generator, used by ops given no seed (default: random). */
  seed?: U64;
  /** Wrap every submission the context makes in an error scope and name a destroyed argument
   * buffer when WebGPU rejects it (default true; costs one error-scope round trip per submit). */
  validate?: boolean;
  /** How many distinct noise-shape tables (the inner extents and mask strides of a broadcast op)
   * get pipelines of their own with the table compiled in, which turns the per-element index
   * divisions into multiply-shifts; later tables use the generic pipeline, which reads the table
   * from a uniform. A specialization compiles in the background on first use (the generic
   * pipeline runs until it is ready). The fused bias op's column count (COLUMNS) draws on the
   * same budget. Default 32; 0: none. */
  specializedShapes?: number;
  /**
   * When a broadcast mask (SpatialDropout, DropPath, any noise shape) goes through a mask table:
   * the mask's words are first written into a temporary table by the element-wise RNG kernel
   * (one Philox call per 4 mask elements), and each element reads its word there instead of
   * running Philox again for every 4 elements. The same words either way. Used for calls of at
   * least `minElements` elements (default 65536: on lavapipe the extra dispatch costs more than
   * it saves below about 2^15) whose mask elements each serve at least `minReuse` elements on
   * average (default 16: the table's own traffic is then at most 1/16 of the data's). `false`:
   * never.
   */
  maskTables?: false | { minElements?: number; minReuse?: number };
  /** The launch shape of the element-wise kernels (see LaunchTuning); default: chosen from the
   * adapter (defaultTuning). Never changes which word an element gets. */
  tuning?: LaunchTuning;
  /**
   * How f16 data (`dtype: 'f16'`) reaches the kernels. 'native': as WGSL `f16`, which needs the
   * device feature `shader-f16`. 'packed': as u32 words holding two halves, widened and rounded
   * (to nearest even) in integer arithmetic, on any device. Both give the CPU reference's bits.
   * Default: 'native' where the device has `shader-f16`, else 'packed'.
   */
  f16Path?: F16Path;
}

/**
 * How the element-wise kernels are launched: a per-adapter choice of speed, never of results (the
 * tests check every setting bit for bit against the reference).
 */
export interface LaunchTuning {
  /** Vec4 groups each invocation of the grid-stride kernels handles: 1, 2, 4 or 8. */
  groupsPerInvocation?: 1 | 2 | 4 | 8;
  /** How the forward that also writes the packed 1-bit mask builds each 32-bit mask word:
   * 'workgroup' (one vec4 group per invocation, 8 neighbours' bits combined in workgroup memory,
   * so neighbouring invocations read neighbouring memory; needs a workgroupSize divisible by 8) or
   * 'invocation' (one invocation reads the word's 8 groups in turn). */
  maskWords?: 'workgroup' | 'invocation';
}

/** Whether an adapter computes on the CPU (lavapipe/llvmpipe, SwiftShader): the tuning defaults differ. */
export function isCpuAdapter(info: GPUAdapterInfo | undefined): boolean {
  if (!info) return false;
  return info.isFallbackAdapter === true || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`);
}

/**
 * The tuning a context uses when not told: on a CPU adapter 4 groups per invocation (fewer, longer
 * invocations amortise per-invocation cost: lavapipe's forward went from 0.51-0.58 to 0.66 of the
 * copy kernel) and mask words per invocation (no barrier); on a GPU one group per invocation and
 * mask words in workgroup memory (coalesced; on an NVIDIA H200 one group per invocation took the
 * f32 forward from 80% to 85% of the copy kernel at 2^24). Unknown adapters count as GPUs.
 */
export function defaultTuning(info: GPUAdapterInfo | undefined, workgroupSize = 256): Required<LaunchTuning> {
  const cpu = isCpuAdapter(info);
  return { groupsPerInvocation: cpu ? 4 : 1, maskWords: cpu || workgroupSize % 8 !== 0 ? 'invocation' : 'workgroup' };
}

const TUNING_OPTIONS = optionNames<LaunchTuning>({ groupsPerInvocation: true, maskWords: true });

function launchTuning(option: unknown, device: GPUDevice, workgroupSize: number): Required<LaunchTuning> {
  const auto = defaultTuning((device as { adapterInfo?: GPUAdapterInfo }).adapterInfo, workgroupSize);
  if (option === undefined) return auto;
  if (typeof option !== 'object' || option === null) throw new InvalidArgumentError('options.tuning', '{ groupsPerInvocation?, maskWords? }', option);
  checkOptionNames(option, TUNING_OPTIONS, 'options.tuning');
  const { groupsPerInvocation = auto.groupsPerInvocation, maskWords = auto.maskWords } = option as LaunchTuning;
  if (![1, 2, 4, 8].includes(groupsPerInvocation)) throw new InvalidArgumentError('options.tuning.groupsPerInvocation', '1, 2, 4 or 8', groupsPerInvocation);
  if (maskWords !== 'workgroup' && maskWords !== 'invocation') throw new InvalidArgumentError('options.tuning.maskWords', "'workgroup' or 'invocation'", maskWords);
  if (maskWords === 'workgroup' && workgroupSize % 8 !== 0) {
    throw new InvalidArgumentError('options.tuning.maskWords', `'invocation' with a workgroupSize that is not a multiple of 8 (it is ${workgroupSize})`, maskWords);
  }
  return { groupsPerInvocation, maskWords };
}

const CONTEXT_OPTIONS = optionNames<ContextOptions>({
  workgroupSize: true, maxChunkElements: true, poolBytes: true, seed: true, validate: true, specializedShapes: true, maskTables: true, tuning: true, f16Path: true,
});
const MASK_TABLE_OPTIONS = optionNames<Exclude<ContextOptions['maskTables'], false | undefined>>({ minElements: true, minReuse: true });

/** ContextOptions.maskTables, resolved: Infinity where tables are off. */
export interface MaskTablePolicy {
  readonly minElements: number;
  readonly minReuse: number;
}

/** A storage buffer bound to one binding of a call; `argument` names it in errors. */
export interface BoundBuffer {
  buffer: GPUBuffer;
  argument: string;
}

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
  constants?: Readonly<Record<string, number>>;
  /** Pipeline constants the call cannot run without (it waits for their compile). */
  variant?: Readonly<Record<string, number>>;
  encoder?: GPUCommandEncoder;
}

/** An explicit pipeline layout (see explicitLayout); `key` names it in cache keys. */
export interface PipelineLayout {
  layout: GPUPipelineLayout;
  group: GPUBindGroupLayout;
  key: string;
}

/** What every call of one kernel record shares (see kernelPlan). */
interface KernelPlan extends PipelineLayout {
  /** Storage bindings and what each holds, in binding order. */
  storage: readonly (readonly [number, BindingUnit])[];
  /** The record with the tail entry point, for kernels that have one. */
  tailKernel?: KernelRecord;
}

const NO_CONSTANTS: Readonly<Record<string, number>> = Object.freeze({});
const NO_EXTRA: readonly number[] = Object.freeze([]);

/** Constant sets with MISALIGNED added, one per variant object (see prepare). */
const misalignedVariants = new WeakMap<object, Readonly<Record<string, number>>>();
function misaligned(variant: Readonly<Record<string, number>>): Readonly<Record<string, number>> {
  let v = misalignedVariants.get(variant);
  if (!v) misalignedVariants.set(variant, (v = Object.freeze({ ...variant, MISALIGNED: 1 })));
  return v;
}

/** Cache-key text of kernel records and of frozen constant sets, built once each: pipeline
 * lookups happen on every call (a new object, like the model kit's `{}`, is simply keyed anew). */
const recordKeys = new WeakMap<object, string>();
const constantKeys = new WeakMap<object, string>();
function constantsKey(constants: Readonly<Record<string, number>>): string {
  let key = constantKeys.get(constants);
  if (key === undefined) {
    key = Object.keys(constants).length ? JSON.stringify(constants) : '';
    if (Object.isFrozen(constants)) constantKeys.set(constants, key);
  }
  return key;
}

/** A context's pipeline-cache key (its workgroup size is fixed, so it is left out). */
function pipelineKey(k: { shader: readonly ShaderName[]; entry: string }, dtype: Dtype, constants: Readonly<Record<string, number>>, layout?: { key: string }): string {
  let record = recordKeys.get(k);
  if (record === undefined) recordKeys.set(k, (record = `${k.shader.join('+')}:${k.entry}`));
  return `${record}:${dtype}:${constantsKey(constants)}:${layout?.key ?? 'auto'}`;
}

interface Batch {
  encoder: GPUCommandEncoder;
  arguments: BoundBuffer[];
  /** Error scopes of the objects created for its calls (checked at submit). */
  scopes: Promise<GPUError | null>[];
  submitted: Promise<void>;
}

export function dtypeBytes(dtype: Dtype): number {
  if (dtype === 'f32') return 4;
  if (dtype === 'f16') return 2;
  throw new InvalidArgumentError('dtype', "'f32' or 'f16'", dtype);
}

function unitBytes(unit: BindingUnit, dtype: Dtype): number {
  return unit === 'data' ? dtypeBytes(dtype) : unit === 'word' ? 4 : 1 / 8;
}

/** Bytes a binding of `count` elements needs: storage bindings are whole 4-byte words. */
export function bindingBytes(unit: BindingUnit, dtype: Dtype, count: number): number {
  return Math.ceil((count * unitBytes(unit, dtype)) / 4) * 4;
}

function maskTablePolicy(option: ContextOptions['maskTables']): MaskTablePolicy {
  if (option === false) return { minElements: Infinity, minReuse: Infinity };
  if (option !== undefined && (typeof option !== 'object' || option === null)) {
    throw new InvalidArgumentError('options.maskTables', 'false or { minElements?, minReuse? }', option);
  }
  if (option) checkOptionNames(option, MASK_TABLE_OPTIONS, 'options.maskTables');
  const { minElements = 65536, minReuse = 16 } = option ?? {};
  if (typeof minElements !== 'number' || !(minElements >= 0)) throw new InvalidArgumentError('options.maskTables.minElements', 'a number >= 0', minElements);
  if (typeof minReuse !== 'number' || !(minReuse >= 1)) throw new InvalidArgumentError('options.maskTables.minReuse', 'a number >= 1', minReuse);
  return { minElements, minReuse };
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
  /** The pipeline constants that carry `workgroupSize` and `tuning` into every module declaring them. */
  private readonly launchConstants: Readonly<Record<string, number>>;
  /** The path f16 data takes (ContextOptions.f16Path): 'native' (WGSL f16, `shader-f16`) or
   * 'packed' (u32 words, any device). */
  readonly f16Path: F16Path;
  /** Default generator for ops that are given neither a seed nor a generator. */
  readonly generator: PhiloxGenerator;

  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private batch: Batch | null = null;
  private arena: { buffer: GPUBuffer; next: number } | null = null;
  private readonly layouts = new Map<string, PipelineLayout>();
  private readonly plans = new WeakMap<KernelRecord, KernelPlan[]>();
  /** Staging for Params words (see paramsStaging). */
  private params = paramsViews(new ArrayBuffer(PARAMS_BYTES));
  /** Recently used bind groups, oldest first (a Map keeps insertion order). */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  /** The buffer that made a batch fail, by the error `explain` made for it (see rejectionFor). */
  private readonly culprits = new WeakMap<Error, GPUBuffer>();
  /** Encoders of the library's own (ownEncoder) and the temporaries retired into each until it is submitted. */
  private readonly ownEncoders = new WeakMap<GPUCommandEncoder, GPUBuffer[]>();
  /** Callers' encoders and the temporaries retired into each, out of the pool until `submitted` (else left to GC). */
  private readonly callerEncoders = new WeakMap<GPUCommandEncoder, GPUBuffer[]>();
  /** Keys of the specializations granted so far (at most specializedShapes). */
  private readonly specializations = new Set<string>();
  /** Keys of the specialized pipelines asked for so far. */
  private readonly specializedKeys = new Set<string>();
  /** Pipelines whose compile has finished (or that recordNow made), by key. */
  private readonly compiledPipelines = new Map<string, GPUComputePipeline>();
  /** Keys of the pipelines whose compile has finished, and of those whose compile failed. */
  private readonly readyPipelines = new Set<string>();
  private readonly failedPipelines = new Set<string>();
  /** Pipeline compiles in flight (each settles, never rejects). */
  private readonly compiles = new Set<Promise<void>>();
  private nextBufferId = 1;
  /** Dispatches still compiling their pipelines; the batch is not submitted before they record,
   * so an op made of several dispatches lands in one submission (all of it runs, or none). */
  private compiling = 0;
  private readonly afterCompiles: (() => void)[] = [];
  private lostReason: string | null = null;
  private readonly lostWaiters = new Set<(e: Error) => void>();
  private destroyed = false;

  static async create(device: GPUDevice, options: ContextOptions = {}): Promise<DropoutContext> {
    const ctx = new DropoutContext(device, options);
    // Compile the core pipelines up front, in parallel and asynchronously.
    const forward = kernels.dropoutForward;
    await Promise.all([ctx.pipeline(forward, 'f32'), ctx.pipeline({ ...forward, entry: 'forward_tail' }, 'f32')]);
    return ctx;
  }

  constructor(device: GPUDevice, options: ContextOptions = {}) {
    if (typeof device !== 'object' || device === null || typeof device.createBuffer !== 'function') {
      throw new InvalidArgumentError('device', 'a GPUDevice', device);
    }
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'an object of context options', options);
    checkOptionNames(options, CONTEXT_OPTIONS);
    this.device = device;
    const limits = device.limits;
    const wg = options.workgroupSize ?? 256;
    if (!Number.isInteger(wg) || wg < 1 || wg > limits.maxComputeInvocationsPerWorkgroup || wg > limits.maxComputeWorkgroupSizeX) {
      throw new InvalidArgumentError(
        'options.workgroupSize',
        `an integer in 1..${Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX)}`,
        wg,
      );
    }
    this.workgroupSize = wg;
    // Four bytes per element is the widest binding unit; keep chunks within one binding.
    const byLimit = Math.floor(limits.maxStorageBufferBindingSize / 4 / CHUNK_ALIGN) * CHUNK_ALIGN;
    const requested = options.maxChunkElements ?? byLimit;
    if (!Number.isInteger(requested) || requested < CHUNK_ALIGN) {
      throw new InvalidArgumentError('options.maxChunkElements', `an integer >= ${CHUNK_ALIGN}`, requested);
    }
    this.maxChunkElements = Math.min(byLimit, Math.floor(requested / CHUNK_ALIGN) * CHUNK_ALIGN);
    const poolBytes = options.poolBytes ?? 256 * 1024 * 1024;
    if (typeof poolBytes !== 'number' || !(poolBytes >= 0)) throw new InvalidArgumentError('options.poolBytes', 'a byte count >= 0', poolBytes);
    this.pool = new BufferPool(device, poolBytes);
    const validate = options.validate ?? true;
    if (typeof validate !== 'boolean') throw new InvalidArgumentError('options.validate', 'true or false', validate);
    this.validate = validate;
    const specialized = options.specializedShapes ?? 32;
    if (!Number.isInteger(specialized) || specialized < 0) throw new InvalidArgumentError('options.specializedShapes', 'a non-negative integer', specialized);
    this.specializedShapes = specialized;
    this.maskTables = maskTablePolicy(options.maskTables);
    this.tuning = Object.freeze(launchTuning(options.tuning, device, wg));
    this.launchConstants = Object.freeze({
      WG: wg,
      GROUPS_PER_INVOCATION: this.tuning.groupsPerInvocation,
      MASK_WORDS_IN_WORKGROUP: this.tuning.maskWords === 'workgroup' ? 1 : 0,
    });
    const hasF16 = device.features.has('shader-f16');
    const f16Path = options.f16Path ?? (hasF16 ? 'native' : 'packed');
    if (f16Path !== 'native' && f16Path !== 'packed') throw new InvalidArgumentError('options.f16Path', "'native' or 'packed'", f16Path);
    if (f16Path === 'native' && !hasF16) {
      throw new UnsupportedError("options.f16Path: 'native' needs the device feature 'shader-f16', which this device lacks (use 'packed' or leave it unset)");
    }
    this.f16Path = f16Path;
    this.generator = new PhiloxGenerator(options.seed === undefined ? randomSeed() : toU64(options.seed, 'options.seed'));
    void device.lost.then((info) => this.onLost(`device lost (${info.reason}): ${info.message}`));
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
    if (this.lostReason !== null) throw new DeviceLostError(this.lostReason);
    if (this.destroyed) throw new DeviceLostError('the DropoutContext was destroyed');
  }

  /**
   * The cached pipeline of one entry point for one dtype and set of pipeline constants (besides WG,
   * which is the context's), compiled asynchronously once per device.
   */
  pipeline(
    k: { shader: readonly ShaderName[]; entry: string; name: string },
    dtype: Dtype,
    constants: Readonly<Record<string, number>> = NO_CONSTANTS,
    layout?: { layout: GPUPipelineLayout; key: string },
  ): Promise<GPUComputePipeline> {
    const key = pipelineKey(k, dtype, constants, layout);
    return this.pipelines.get(key) ?? this.compile(key, k, dtype, constants, layout);
  }

  /** What a pipeline of `k` for `dtype` and these constants is made from (the module cached per files and dtype). */
  private pipelineDescriptor(
    k: { shader: readonly ShaderName[]; entry: string; name: string },
    dtype: Dtype,
    constants: Readonly<Record<string, number>>,
    layout?: { layout: GPUPipelineLayout; key: string },
  ): GPUComputePipelineDescriptor {
    const moduleKey = `${k.shader.join('+')}:${dtype}`;
    let module = this.modules.get(moduleKey);
    if (!module) {
      module = this.device.createShaderModule({ label: moduleKey, code: composeShader(k.shader, dtype, this.f16Path) });
      this.modules.set(moduleKey, module);
    }
    return {
      label: `${k.name}:${k.entry}:${dtype}`,
      layout: layout?.layout ?? 'auto',
      // The launch constants only where a file declares them: WebGPU rejects constants a module lacks (e.g. probe.wgsl).
      compute: { module, entryPoint: k.entry, constants: { ...constants, ...this.launchConstantsFor(k.shader) } },
    };
  }

  private compile(
    key: string,
    k: { shader: readonly ShaderName[]; entry: string; name: string },
    dtype: Dtype,
    constants: Readonly<Record<string, number>>,
    layout?: { layout: GPUPipelineLayout; key: string },
  ): Promise<GPUComputePipeline> {
    const p = this.device.createComputePipelineAsync(this.pipelineDescriptor(k, dtype, constants, layout));
    // A failed compile must not poison the cache forever.
    const settled = p.then(
      (pipeline) => {
        this.readyPipelines.add(key);
        this.compiledPipelines.set(key, pipeline);
      },
      () => {
        this.pipelines.delete(key);
        this.failedPipelines.add(key);
      },
    );
    this.compiles.add(settled);
    void settled.finally(() => this.compiles.delete(settled));
    this.pipelines.set(key, p);
    return p;
  }

  /**
   * The pipeline with `specialized` constants compiled in (on top of `base`) if it is ready;
   * otherwise the generic one (`base` only), while the specialized one compiles in the background
   * for later calls. So a new shape never waits for a compile of its own (on lavapipe one takes
   * about 0.4 s), and repeated shapes get the faster kernel.
   */
  private specializedOr(
    k: KernelRecord,
    dtype: Dtype,
    specialized: Readonly<Record<string, number>> | undefined,
    base: Readonly<Record<string, number>>,
    layout: { layout: GPUPipelineLayout; key: string },
  ): Promise<GPUComputePipeline> {
    const baseKey = pipelineKey(k, dtype, base, layout);
    const generic = () => this.pipelines.get(baseKey) ?? this.compile(baseKey, k, dtype, base, layout);
    if (specialized === undefined) return generic();
    const key = `${baseKey}+${constantsKey(specialized)}`;
    // A specialization that failed to compile is not tried again: the generic pipeline serves.
    if (this.failedPipelines.has(key)) return generic();
    this.specializedKeys.add(key);
    const p = this.pipelines.get(key) ?? this.compile(key, k, dtype, { ...specialized, ...base }, layout);
    return this.readyPipelines.has(key) ? p : generic();
  }

  /** Resolves once every pipeline compile started so far has finished, including background
   * specializations (ContextOptions.specializedShapes): benchmarks call it after a warm-up. */
  async settled(): Promise<void> {
    while (this.compiles.size) await Promise.all([...this.compiles]);
  }

  /** Specialized pipelines compiled and ready to use (see ContextOptions.specializedShapes). */
  get specializedPipelines(): number {
    let n = 0;
    for (const key of this.specializedKeys) if (this.readyPipelines.has(key)) n++;
    return n;
  }

  /**
   * Whether a pipeline specialized for `key` may be used: yes if it was granted before, or if
   * fewer than `specializedShapes` were (then it is granted now). Bounds the pipelines a stream
   * of ever-new shapes could compile.
   */
  claimSpecialization(key: string): boolean {
    if (this.specializations.has(key)) return true;
    if (this.specializations.size >= this.specializedShapes) return false;
    this.specializations.add(key);
    return true;
  }

  /** Checks that `buffer` is a GPUBuffer with STORAGE usage and at least `bytes` bytes. */
  checkStorage(buffer: unknown, argument: string, bytes: number): asserts buffer is GPUBuffer {
    if (!isGpuBuffer(buffer)) throw new InvalidArgumentError(argument, 'a GPUBuffer', buffer);
    if (!(buffer.usage & Usage.STORAGE)) {
      throw new InvalidArgumentError(argument, 'a GPUBuffer with STORAGE usage', new Got(`usage 0x${buffer.usage.toString(16)}`));
    }
    if (buffer.size < bytes) {
      throw new InvalidArgumentError(argument, `a GPUBuffer of at least ${bytes} bytes`, new Got(`${buffer.size} bytes`));
    }
    // A mapped buffer (or one being mapped) cannot be used by GPU work: say so before recording.
    const mapState = buffer.mapState; // a native getter: read once
    if (mapState !== undefined && mapState !== 'unmapped') {
      throw new InvalidArgumentError(argument, 'an unmapped GPUBuffer (call unmap() first)', new Got(`a buffer whose mapState is '${mapState}'`));
    }
  }

  /**
   * Records one kernel call: split into chunks that fit a storage binding (chunk starts aligned so
   * the mask indices, and hence the mask, are those of the unchunked call), each chunk a vec4 body
   * dispatch plus a scalar tail for count % 4, folded into 2-D grids past 65,535 workgroups.
   * Without `call.encoder` the work joins the context's batch, submitted on the next microtask.
   * Resolves once recorded (with an encoder) or submitted and accepted (without).
   */
  dispatch(call: DispatchCall): Promise<void> {
    return this.dispatchAll([call]);
  }

  /**
   * Records kernel calls back to back, in this order and with nothing else between them (all
   * pipelines are compiled first), into one encoder: the first call's (all must name the same one)
   * or the context's batch. For a call that reads what the one before it wrote.
   */
  async dispatchAll(all: readonly DispatchCall[]): Promise<void> {
    this.checkAlive();
    const encoder = all[0]?.encoder;
    if (all.some((c) => c.encoder !== encoder)) throw new InvalidArgumentError('encoder', 'the same encoder (or none) in every call of dispatchAll');
    const calls = all.filter((c) => c.count > 0);
    if (calls.length === 0) return;
    this.compiling++;
    let records: ((encoder: GPUCommandEncoder) => void)[];
    const scopes: Promise<GPUError | null>[] = [];
    const args = calls.flatMap((c) => Object.values(c.buffers));
    try {
      records = await Promise.all(calls.map((c) => this.prepare(c, scopes)));
      // A bind group WebGPU refused (a buffer of another device): named now, before anything is
      // recorded into a caller's encoder. The batch checks its scopes when it submits instead, so
      // that ops recorded in one tick stay in call order.
      if (encoder && scopes.length) await this.checkScopes(scopes, args);
    } finally {
      // Waiters run on a later microtask, after these calls have recorded (synchronously, below).
      if (--this.compiling === 0) for (const f of this.afterCompiles.splice(0)) queueMicrotask(f);
    }
    this.checkAlive();
    // The arguments name buffers in the batch's error messages.
    await this.encode((e) => records.forEach((record) => record(e)), { encoder, arguments: encoder ? undefined : args, scopes: encoder ? undefined : scopes });
  }

  /** Rejects with the error `explain` makes (naming an unusable buffer among `args`) if any of
   * these error scopes caught one; the bind-group cache is emptied then (it may hold the refused group). */
  async checkScopes(scopes: readonly Promise<GPUError | null>[], args: readonly BoundBuffer[]): Promise<void> {
    const error = (await this.guard(Promise.all(scopes))).find((e) => e !== null);
    if (!error) return;
    this.bindGroups.clear();
    throw await this.explain(error, [...args]);
  }

  /** Compiles (or finds) a call's pipelines and returns the function that records it. */
  private async prepare(call: DispatchCall, scopes: Promise<GPUError | null>[]): Promise<(encoder: GPUCommandEncoder) => void> {
    const { kernel, dtype, count } = call;
    // Chunks start on multiples of 4 elements, so every chunk shares the call's alignment.
    const plan = this.kernelPlan(kernel, call.aux !== undefined);
    const variant = call.variant ?? NO_CONSTANTS;
    const body = this.specializedOr(kernel, dtype, call.constants, (call.offset ?? 0n) % 4n ? misaligned(variant) : variant, plan);
    const tail = kernel.tail && count % 4 ? this.specializedOr(plan.tailKernel!, dtype, call.constants, variant, plan) : undefined;
    const bodyPipeline = await body;
    const tailPipeline = tail && (await tail);
    return this.recorder(call, plan, bodyPipeline, tailPipeline, scopes);
  }

  /**
   * Records `call` into `encoder` now, synchronously, for callers that cannot wait (the tfjs entry
   * records between TensorFlow.js's own kernels, which run synchronously): the same Params words,
   * chunks and bind groups as `dispatch`, with the generic pipelines (no specialization), compiled
   * synchronously on first use. No error scope: the caller's own WebGPU error handling applies.
   */
  recordNow(call: DispatchCall, encoder: GPUCommandEncoder): void {
    const { kernel, dtype, count } = call;
    const plan = this.kernelPlan(kernel, call.aux !== undefined);
    const variant = call.variant ?? NO_CONSTANTS;
    const body = this.pipelineNow(kernel, dtype, (call.offset ?? 0n) % 4n ? misaligned(variant) : variant, plan);
    const tail = kernel.tail && count % 4 ? this.pipelineNow(plan.tailKernel!, dtype, variant, plan) : undefined;
    this.recorder(call, plan, body, tail)(encoder);
  }

  /** The pipeline `pipeline()` would give, made synchronously if no compile has finished yet. */
  private pipelineNow(k: KernelRecord, dtype: Dtype, constants: Readonly<Record<string, number>>, layout: PipelineLayout): GPUComputePipeline {
    const key = pipelineKey(k, dtype, constants, layout);
    let pipeline = this.compiledPipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline(this.pipelineDescriptor(k, dtype, constants, layout));
      this.compiledPipelines.set(key, pipeline);
    }
    return pipeline;
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
    const chunk = this.maxChunkElements;
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
    const uniforms = this.uniformSlots(params.bytes);
    const aux = call.aux ? this.uniformSlots(call.aux) : undefined;
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
      groups.push(this.bindGroup(plan, { buffer: uniforms.buffer, size: PARAMS_BYTES }, aux, storage, scopes));
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
          const [x, y] = this.grid(Math.ceil(invocations / this.workgroupSize));
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
   * Records work: `record` gets the caller's encoder, or the context's batch encoder (submitted on
   * the next microtask together with everything else recorded in this tick). Resolves once
   * recorded (caller's encoder) or once the batch is submitted and accepted. `arguments` name the
   * buffers for error messages.
   */
  async encode(
    record: (encoder: GPUCommandEncoder) => void,
    opts: { encoder?: GPUCommandEncoder; arguments?: BoundBuffer[]; scopes?: Promise<GPUError | null>[] } = {},
  ): Promise<void> {
    this.checkAlive();
    if (opts.encoder) {
      record(opts.encoder);
      return;
    }
    const batch = this.openBatch();
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

  /**
   * What every call of `kernel` shares, derived once: its storage bindings, the kernel record of its
   * tail entry, and its explicit layout. Params (binding 0) and aux (binding 4) are uniforms with
   * dynamic offsets into the arena, so a bind group depends only on the storage buffers and can be
   * reused across calls (createBindGroup is the largest per-call host cost).
   */
  private kernelPlan(kernel: KernelRecord, withAux: boolean): KernelPlan {
    let plans = this.plans.get(kernel);
    if (!plans) this.plans.set(kernel, (plans = []));
    const index = withAux ? 1 : 0;
    const known = plans[index];
    if (known) return known;
    const writes = kernel.writes ?? [2];
    const storage = Object.entries(kernel.bindings).map(([b, unit]) => [Number(b), unit] as const);
    const layout = this.explicitLayout(storage.map(([b]) => [b, writes.includes(b)]), withAux);
    const tailKernel = kernel.tail ? { ...kernel, entry: kernel.tail } : undefined;
    return (plans[index] = { ...layout, storage, tailKernel });
  }

  /**
   * The explicit layout (cached by shape) of a kernel with a uniform at binding 0, and at binding 4
   * when `withAux`, both with dynamic offsets into the uniform arena, and these storage bindings
   * (`true`: read_write). Pipelines compiled against it share bind groups from `bindGroup`.
   */
  explicitLayout(storage: readonly (readonly [binding: number, writes: boolean])[], withAux = false): PipelineLayout {
    const key = `p${storage.map(([b, w]) => `${b}${w ? 'w' : 'r'}`).join('')}${withAux ? 'a' : ''}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      const uniform = (binding: number): GPUBindGroupLayoutEntry => ({ binding, visibility: COMPUTE_STAGE, buffer: { type: 'uniform', hasDynamicOffset: true } });
      const entries: GPUBindGroupLayoutEntry[] = [uniform(0), ...(withAux ? [uniform(4)] : [])];
      for (const [b, w] of storage) entries.push({ binding: b, visibility: COMPUTE_STAGE, buffer: { type: w ? 'storage' : 'read-only-storage' } });
      const group = this.device.createBindGroupLayout({ label: `webgpu-dropout ${key}`, entries });
      layout = { layout: this.device.createPipelineLayout({ label: `webgpu-dropout ${key}`, bindGroupLayouts: [group] }), group, key };
      this.layouts.set(key, layout);
    }
    return layout;
  }

  /**
   * A bind group for these buffers and ranges under `layout`, from a bounded LRU cache: `params`
   * (binding 0) and `aux` (binding 4) are bound at offset 0 and placed by dynamic offsets.
   */
  bindGroup(
    layout: PipelineLayout,
    params: { buffer: GPUBuffer; size: number },
    aux: { buffer: GPUBuffer; size: number } | undefined,
    storage: readonly (readonly [binding: number, buffer: GPUBuffer, offset: number, size: number])[],
    scopes?: Promise<GPUError | null>[],
  ): GPUBindGroup {
    let key = `${layout.key}|${this.bufferId(params.buffer)}:${params.size}|${aux ? `${this.bufferId(aux.buffer)}:${aux.size}` : ''}`;
    for (const [b, buffer, offset, size] of storage) key += `|${b}:${this.bufferId(buffer)}:${offset}:${size}`;
    let group = this.bindGroups.get(key);
    if (group) {
      this.bindGroups.delete(key);
    } else {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params.buffer, offset: 0, size: params.size } }];
      if (aux) entries.push({ binding: 4, resource: { buffer: aux.buffer, offset: 0, size: aux.size } });
      for (const [binding, buffer, offset, size] of storage) entries.push({ binding, resource: { buffer, offset, size } });
      // A new group is made inside an error scope the caller checks (`checkScopes`) when it
      // passes `scopes` and the context validates: a buffer of another device fails here.
      const scoped = scopes !== undefined && this.validate;
      if (scoped) this.device.pushErrorScope('validation');
      group = this.device.createBindGroup({ layout: layout.group, entries });
      if (scoped) scopes.push(this.device.popErrorScope());
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.delete(this.bindGroups.keys().next().value!);
    }
    this.bindGroups.set(key, group);
    return group;
  }

  /** A small number naming `buffer` in bind-group cache keys. */
  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
    return id;
  }

  /**
   * Fresh slots of the uniform arena holding `data`. Slots are written once and never reused, so
   * no later write can race with recorded work not yet submitted (the caller's encoder included);
   * a full arena is dropped to the garbage collector, and WebGPU keeps it alive while work uses it.
   */
  uniformSlots(data: ArrayBuffer | ArrayBufferView): { buffer: GPUBuffer; offset: number; size: number } {
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const span = Math.ceil(size / align) * align;
    if (!this.arena || this.arena.next + span > this.arena.buffer.size) {
      const bytes = Math.max(UNIFORM_ARENA_BYTES, span);
      // Every cached bind group binds the old arena: drop them rather than keep their buffers alive.
      this.bindGroups.clear();
      this.arena = { buffer: this.device.createBuffer({ label: 'webgpu-dropout uniforms', size: bytes, usage: Usage.UNIFORM | Usage.COPY_DST }), next: 0 };
    }
    const offset = this.arena.next;
    this.arena.next += span;
    const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    this.device.queue.writeBuffer(this.arena.buffer, offset, bytes.byteLength % 4 ? padTo4(bytes) : (bytes as Uint8Array<ArrayBuffer>));
    return { buffer: this.arena.buffer, offset, size };
  }

  /** Workgroup grid for `groups` workgroups: x up to the per-dimension limit, the rest in y
   * (kernels fold it back with linear_id in shaders/elementwise.wgsl). */
  /** The launch constants (WG and the tuning's) that a module of these files declares. */
  private launchConstantsFor(files: readonly ShaderName[]): Record<string, number> {
    return declaredOf(files, this.launchConstants);
  }

  /** Invocations of `kernel`'s body entry point over n elements under this context's tuning. With a
   * tail entry the body covers whole vec4 groups only (the tail takes count % 4). */
  invocations(kernel: KernelRecord, n: number): number {
    const per =
      kernel.perInvocation === 'strided' ? 4 * this.tuning.groupsPerInvocation
      : kernel.perInvocation === 'maskWord' ? (this.tuning.maskWords === 'workgroup' ? 4 : 32)
      : kernel.perInvocation;
    return kernel.tail ? Math.ceil(Math.floor(n / 4) / (per / 4)) : Math.ceil(n / per);
  }

  grid(groups: number): [number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y];
  }

  private openBatch(): Batch {
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
      };
      queueMicrotask(submitWhenCompiled);
    });
    batch.submitted.catch(() => undefined); // rejections reach the ops that await it
    this.batch = batch;
    return batch;
  }

  /**
   * Submits `commands`. With `validate`, in an error scope: a rejection (nothing from the command
   * buffer ran) becomes a specific error naming a destroyed argument among `args` if there is one,
   * and device loss while waiting rejects with DeviceLostError.
   */
  async submit(commands: GPUCommandBuffer | GPUCommandEncoder, args: BoundBuffer[] = [], scopes: readonly Promise<GPUError | null>[] = []): Promise<void> {
    this.checkAlive();
    // An encoder is finished inside the scope: finish() is where WebGPU reports what was recorded wrong.
    const finish = () => ('finish' in commands ? commands.finish() : commands);
    if (!this.validate) {
      this.device.queue.submit([finish()]);
      return;
    }
    this.device.pushErrorScope('validation');
    this.device.queue.submit([finish()]);
    await this.checkScopes([...scopes, this.device.popErrorScope()], args);
  }


  /** Turns a rejected submission into a specific error, naming a destroyed argument if one is. */
  private async explain(error: GPUError, args: BoundBuffer[]): Promise<Error> {
    const probe = await this.pipeline({ name: 'probe', shader: ['probe'], entry: 'probe' }, 'f32');
    for (const arg of new Set(args)) {
      this.device.pushErrorScope('validation');
      const encoder = this.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(probe);
      pass.setBindGroup(0, this.device.createBindGroup({ layout: probe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: arg.buffer, size: 4 } }] }));
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

  /** Submits whatever the context has batched (ops do this on their own on the next microtask). */
  async flush(): Promise<void> {
    if (this.batch) await this.batch.submitted;
  }

  /** Rejects with DeviceLostError if the device is lost before `work` settles. */
  private guard<T>(work: Promise<T>): Promise<T> {
    if (this.lostReason !== null) return Promise.reject(new DeviceLostError(this.lostReason));
    return new Promise<T>((resolve, reject) => {
      const onLost = (e: Error) => reject(e);
      this.lostWaiters.add(onLost);
      work.then(resolve, reject).finally(() => this.lostWaiters.delete(onLost));
    });
  }

  private onLost(reason: string): void {
    this.lostReason ??= reason;
    const error = new DeviceLostError(reason);
    for (const w of this.lostWaiters) w(error);
    this.lostWaiters.clear();
    this.pipelines.clear();
    this.readyPipelines.clear();
    this.compiledPipelines.clear();
    this.modules.clear();
  }

  /**
   * Throws unless a buffer of `bytes` bytes fits this device's `maxBufferSize`: `argument` names
   * what set the size (with its `value`), `what` says which buffer it is. Ops call it before any
   * work for the buffers they create (outputs, tables, staging), so that WebGPU never sees one too large.
   */
  checkBufferSize(bytes: number, argument: string, value: unknown, what = 'the output buffer'): void {
    const max = this.device.limits.maxBufferSize;
    if (bytes > max) {
      throw new InvalidArgumentError(argument, `a size for which ${what} fits this device's maxBufferSize of ${max} bytes (it would take ${bytes} bytes)`, value);
    }
  }

  /** A buffer from the pool for `bytes` bytes (STORAGE | COPY_SRC | COPY_DST). Give it back with `release`. */
  acquire(bytes: number, label?: string): GPUBuffer {
    this.checkAlive();
    if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) throw new InvalidArgumentError('bytes', 'a finite byte count >= 0', bytes);
    const max = this.device.limits.maxBufferSize;
    if (Math.ceil(bytes / 4) * 4 > max) throw new InvalidArgumentError('bytes', `a byte count up to this device's maxBufferSize (${max})`, bytes);
    return this.pool.acquire(Math.max(4, Math.ceil(bytes / 4) * 4), Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, label);
  }

  /**
   * Returns a buffer from `acquire`, `upload` or an op's output to the pool. Work already recorded
   * on it still runs first, in queue order; with your own encoder, release only after submitting it.
   */
  release(buffer: GPUBuffer): void {
    this.pool.release(buffer);
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
    if (encoder === undefined) return this.pool.release(buffer);
    const own = this.ownEncoders.get(encoder);
    if (own) return void own.push(buffer);
    if (!this.pool.disown(buffer)) return;
    const list = this.callerEncoders.get(encoder);
    if (list) list.push(buffer);
    else this.callerEncoders.set(encoder, [buffer]);
  }

  /** An encoder the library records into and submits itself (see `retire`). */
  ownEncoder(label: string): GPUCommandEncoder {
    const encoder = this.device.createCommandEncoder({ label });
    this.ownEncoders.set(encoder, []);
    return encoder;
  }

  /**
   * Tells the context that `encoder`'s command buffer has been submitted (or will never be): the
   * temporaries that ops recorded into it (mask tables, the bias gradient's partial sums, the
   * MLP's activations) go back to the pool for the next ops, instead of being allocated afresh.
   * Later work is queued after that submit, so reusing them is safe; calling this *before* the
   * submit is not (a later op could get a buffer the encoder's work then overwrites).
   */
  submitted(encoder: GPUCommandEncoder): void {
    const own = this.ownEncoders.get(encoder);
    const theirs = this.callerEncoders.get(encoder);
    this.ownEncoders.delete(encoder);
    this.callerEncoders.delete(encoder);
    if (this.destroyed) return;
    for (const b of own ?? []) this.pool.release(b);
    for (const b of theirs ?? []) {
      this.pool.adopt(b);
      this.pool.release(b);
    }
  }

  /**
   * Uploads typed-array data into a new storage buffer (pooled: `release` recycles it). Always a
   * fresh buffer written at creation, so an upload never lands in a buffer that recorded work
   * not yet submitted still reads.
   */
  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    this.checkAlive();
    if (!ArrayBuffer.isView(data)) throw new InvalidArgumentError('data', 'a typed array or DataView', data);
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    this.checkBufferSize(size, 'data', new Got(`${data.byteLength} bytes`), 'its buffer');
    const buffer = this.pool.acquire(size, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, label, true);
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  /**
   * Reads `bytes` bytes of `buffer` from `byteOffset` back to the CPU: the only readback path.
   * Submits pending work first; rejects with DeviceLostError if the device goes away meanwhile.
   */
  async readBytes(buffer: GPUBuffer, bytes: number, byteOffset = 0, argument = 'buffer'): Promise<ArrayBuffer> {
    this.checkAlive();
    if (!isGpuBuffer(buffer)) throw new InvalidArgumentError(argument, 'a GPUBuffer', buffer);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InvalidArgumentError('bytes', 'a whole byte count >= 0', bytes);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % 4) {
      throw new InvalidArgumentError('byteOffset', 'a whole byte offset >= 0, a multiple of 4', byteOffset);
    }
    if (!(buffer.usage & Usage.COPY_SRC)) {
      throw new InvalidArgumentError(argument, 'a GPUBuffer with COPY_SRC usage to read it back', new Got(`usage 0x${buffer.usage.toString(16)}`));
    }
    const size = Math.ceil(bytes / 4) * 4;
    if (byteOffset + size > buffer.size) {
      throw new InvalidArgumentError(argument, `a readable range inside its ${buffer.size} bytes`, new Got(`[${byteOffset}, ${byteOffset + size})`));
    }
    // A failed batch has already rejected the ops that recorded it; reading is still valid.
    await this.flush().catch(() => undefined);
    if (size === 0) return new ArrayBuffer(0);
    const staging = this.pool.acquire(size, Usage.MAP_READ | Usage.COPY_DST, 'readback');
    try {
      // The copy is recorded and finished inside the scope: a buffer of another device fails there.
      if (this.validate) this.device.pushErrorScope('validation');
      const encoder = this.device.createCommandEncoder({ label: 'readback' });
      encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
      this.device.queue.submit([encoder.finish()]);
      if (this.validate) {
        const error = await this.guard(this.device.popErrorScope());
        if (error) throw await this.explain(error, [{ buffer, argument }]);
      }
      await this.guard(staging.mapAsync(MAP_MODE_READ, 0, size));
      const out = staging.getMappedRange(0, size).slice(0, bytes);
      staging.unmap();
      this.pool.release(staging);
      return out;
    } catch (e) {
      // A refused read gives its staging buffer back, as if never taken (unless a mapping is still pending on it).
      if (staging.mapState === 'unmapped') this.pool.refund(staging);
      if (this.lostReason !== null && !(e instanceof DeviceLostError)) throw new DeviceLostError(this.lostReason);
      throw e;
    }
  }

  /** Destroys the pool's idle buffers and forgets cached pipelines; outputs the caller still holds
   * stay alive until released or the device is destroyed, and the device itself stays the caller's. */
  destroy(): void {
    this.destroyed = true;
    this.arena = null;
    this.bindGroups.clear();
    this.pool.clear();
    this.pipelines.clear();
    this.readyPipelines.clear();
    this.compiledPipelines.clear();
    this.modules.clear();
  }
}

/** The same bytes as u32 and f32 words. */
function paramsViews(buffer: ArrayBuffer): { u32: Uint32Array<ArrayBuffer>; f32: Float32Array<ArrayBuffer> } {
  return { u32: new Uint32Array(buffer), f32: new Float32Array(buffer) };
}

function padTo4(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}

/** The entries of `constants` that some file of `files` declares as an override. */
function declaredOf(files: readonly ShaderName[], constants: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(constants)) {
    if (files.some((f) => new RegExp(`\\boverride\\s+${name}\\b`).test(shaderSources[f]))) out[name] = value;
  }
  return out;
}

export function isGpuBuffer(v: unknown): v is GPUBuffer {
  return typeof v === 'object' && v !== null && typeof (v as GPUBuffer).mapAsync === 'function' && typeof (v as GPUBuffer).size === 'number';
}

function randomSeed(): bigint {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (BigInt(words[1]!) << 32n) | BigInt(words[0]!);
}

