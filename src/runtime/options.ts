// ContextOptions: what a DropoutContext can be told, the launch tuning's per-adapter defaults, and
// the checks that turn each option into its resolved value (or an error naming it).
import { toU64, type U64 } from '../contract.js';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import type { F16Path } from '../kernels/shaders.js';
import { checkOptionNames, optionNames } from '../options.js';
import { CHUNK_ALIGN } from './units.js';

/** The options of {@link DropoutContext.create}; every one is checked, and an unknown name is refused. */
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
  maskTables?:
    | false
    | {
        /** Fewest elements a call must have to use a table (default 65536). */
        minElements?: number;
        /** Fewest input elements each mask element must serve on average (default 16, at least 1). */
        minReuse?: number;
      };
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

/** ContextOptions.maskTables, resolved: Infinity where tables are off. */
export interface MaskTablePolicy {
  /** Fewest elements a call needs to use a mask table (Infinity: tables off). */
  readonly minElements: number;
  /** Fewest input elements per mask element, on average, for a table (Infinity: tables off). */
  readonly minReuse: number;
}

/** Every option, checked and with its default filled in. */
export interface ResolvedOptions {
  readonly workgroupSize: number;
  readonly maxChunkElements: number;
  readonly poolBytes: number;
  readonly validate: boolean;
  readonly specializedShapes: number;
  readonly maskTables: MaskTablePolicy;
  readonly tuning: Readonly<Required<LaunchTuning>>;
  readonly f16Path: F16Path;
  readonly seed: bigint;
}

/** Whether an adapter computes on the CPU (lavapipe/llvmpipe, SwiftShader): the tuning defaults differ. */
export function isCpuAdapter(info: GPUAdapterInfo | undefined): boolean {
  if (!info) return false;
  return (
    info.isFallbackAdapter === true ||
    info.architecture === 'software' ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`)
  );
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
const CONTEXT_OPTIONS = optionNames<ContextOptions>({
  workgroupSize: true,
  maxChunkElements: true,
  poolBytes: true,
  seed: true,
  validate: true,
  specializedShapes: true,
  maskTables: true,
  tuning: true,
  f16Path: true,
});
const MASK_TABLE_OPTIONS = optionNames<Exclude<ContextOptions['maskTables'], false | undefined>>({ minElements: true, minReuse: true });

function launchTuning(option: unknown, device: GPUDevice, workgroupSize: number): Required<LaunchTuning> {
  const auto = defaultTuning((device as { adapterInfo?: GPUAdapterInfo }).adapterInfo, workgroupSize);
  if (option === undefined) return auto;
  if (typeof option !== 'object' || option === null)
    throw new InvalidArgumentError('options.tuning', '{ groupsPerInvocation?, maskWords? }', option);
  checkOptionNames(option, TUNING_OPTIONS, 'options.tuning');
  const { groupsPerInvocation = auto.groupsPerInvocation, maskWords = auto.maskWords } = option as LaunchTuning;
  if (![1, 2, 4, 8].includes(groupsPerInvocation))
    throw new InvalidArgumentError('options.tuning.groupsPerInvocation', '1, 2, 4 or 8', groupsPerInvocation);
  if (maskWords !== 'workgroup' && maskWords !== 'invocation')
    throw new InvalidArgumentError('options.tuning.maskWords', "'workgroup' or 'invocation'", maskWords);
  if (maskWords === 'workgroup' && workgroupSize % 8 !== 0) {
    throw new InvalidArgumentError(
      'options.tuning.maskWords',
      `'invocation' with a workgroupSize that is not a multiple of 8 (it is ${workgroupSize})`,
      maskWords,
    );
  }
  return { groupsPerInvocation, maskWords };
}

function maskTablePolicy(option: ContextOptions['maskTables']): MaskTablePolicy {
  if (option === false) return { minElements: Infinity, minReuse: Infinity };
  if (option !== undefined && (typeof option !== 'object' || option === null)) {
    throw new InvalidArgumentError('options.maskTables', 'false or { minElements?, minReuse? }', option);
  }
  if (option) checkOptionNames(option, MASK_TABLE_OPTIONS, 'options.maskTables');
  const { minElements = 65536, minReuse = 16 } = option ?? {};
  if (typeof minElements !== 'number' || !(minElements >= 0))
    throw new InvalidArgumentError('options.maskTables.minElements', 'a number >= 0', minElements);
  if (typeof minReuse !== 'number' || !(minReuse >= 1))
    throw new InvalidArgumentError('options.maskTables.minReuse', 'a number >= 1', minReuse);
  return { minElements, minReuse };
}

function randomSeed(): bigint {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (BigInt(words[1]!) << 32n) | BigInt(words[0]!);
}

/** Checks `device` and `options` (in this order, each failure naming its option) and fills in the defaults. */
export function resolveOptions(device: GPUDevice, options: ContextOptions): ResolvedOptions {
  if (typeof device !== 'object' || device === null || typeof device.createBuffer !== 'function') {
    throw new InvalidArgumentError('device', 'a GPUDevice', device);
  }
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'an object of context options', options);
  checkOptionNames(options, CONTEXT_OPTIONS);
  const limits = device.limits;
  const wg = options.workgroupSize ?? 256;
  if (!Number.isInteger(wg) || wg < 1 || wg > limits.maxComputeInvocationsPerWorkgroup || wg > limits.maxComputeWorkgroupSizeX) {
    throw new InvalidArgumentError(
      'options.workgroupSize',
      `an integer in 1..${Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX)}`,
      wg,
    );
  }
  // Four bytes per element is the widest binding unit; keep chunks within one binding.
  const byLimit = Math.floor(limits.maxStorageBufferBindingSize / 4 / CHUNK_ALIGN) * CHUNK_ALIGN;
  const requested = options.maxChunkElements ?? byLimit;
  if (!Number.isInteger(requested) || requested < CHUNK_ALIGN) {
    throw new InvalidArgumentError('options.maxChunkElements', `an integer >= ${CHUNK_ALIGN}`, requested);
  }
  const maxChunkElements = Math.min(byLimit, Math.floor(requested / CHUNK_ALIGN) * CHUNK_ALIGN);
  const poolBytes = options.poolBytes ?? 256 * 1024 * 1024;
  if (typeof poolBytes !== 'number' || !(poolBytes >= 0))
    throw new InvalidArgumentError('options.poolBytes', 'a byte count >= 0', poolBytes);
  const validate = options.validate ?? true;
  if (typeof validate !== 'boolean') throw new InvalidArgumentError('options.validate', 'true or false', validate);
  const specializedShapes = options.specializedShapes ?? 32;
  if (!Number.isInteger(specializedShapes) || specializedShapes < 0) {
    throw new InvalidArgumentError('options.specializedShapes', 'a non-negative integer', specializedShapes);
  }
  const maskTables = maskTablePolicy(options.maskTables);
  const tuning = Object.freeze(launchTuning(options.tuning, device, wg));
  const hasF16 = device.features.has('shader-f16');
  const f16Path = options.f16Path ?? (hasF16 ? 'native' : 'packed');
  if (f16Path !== 'native' && f16Path !== 'packed') throw new InvalidArgumentError('options.f16Path', "'native' or 'packed'", f16Path);
  if (f16Path === 'native' && !hasF16) {
    throw new UnsupportedError(
      "options.f16Path: 'native' needs the device feature 'shader-f16', which this device lacks (use 'packed' or leave it unset)",
    );
  }
  const seed = options.seed === undefined ? randomSeed() : toU64(options.seed, 'options.seed');
  return { workgroupSize: wg, maxChunkElements, poolBytes, validate, specializedShapes, maskTables, tuning, f16Path, seed };
}
