// Functional GPU ops. Each validates every argument before recording anything, resolves its
// randomness to a (seed, stream, offset) triple and returns it, and goes through DropoutContext.dispatch.
import { checkCount, checkProbability, keepRule, toU64, type KeepRule, type U64 } from './contract.js';
import { bindingBytes, dtypeBytes, isGpuBuffer, type BoundBuffer, type DispatchCall, type DropoutContext } from './context.js';
import { InvalidArgumentError } from './errors.js';
import { PhiloxGenerator } from './generator.js';
import { kernels, type KernelRecord } from './kernels/elementwise.js';
import { checkOptionNames, optionNames } from './options.js';
import type { Dtype } from './kernels/shaders.js';

/** Where an op's randomness comes from. Precedence: `seed` (with `stream`, default 0), then
 * `generator` (takes its next stream), then the context's default generator. */
export interface RandomOptions {
  seed?: U64;
  stream?: U64;
  generator?: PhiloxGenerator;
  /** Mask index of element 0, so a slice or shard draws the words of its place in the whole (default 0). */
  offset?: U64;
}

/** The randomness an op used: pass it back to replay the same mask. */
export interface RandomState {
  seed: bigint;
  stream: bigint;
  offset: bigint;
}

export interface RecordOptions {
  /** Record into this encoder instead of the context's own batch; the caller submits it. */
  encoder?: GPUCommandEncoder;
}

/** RandomOptions' names, for the option lists of every op that draws randomness. */
export const RANDOM_OPTION_NAMES = { seed: true, stream: true, generator: true, offset: true } as const;

export interface DropoutOptions extends RandomOptions, RecordOptions {
  /** Drop probability in [0, 1]. */
  p: number;
  dtype?: Dtype;
  /** Elements to process (default: all of `x`). */
  count?: number;
  /** Output buffer (default: a new pooled buffer). Pass `x` itself for in-place dropout. */
  out?: GPUBuffer;
  /** Also write the packed keep-mask (bit b of word k = element 32k + b): `true` for a new buffer. */
  mask?: GPUBuffer | boolean;
  /** false: eval mode, the identity (no RNG work; returns `x` unless `out` is given). Default true. */
  training?: boolean;
}

const DROPOUT_OPTIONS = optionNames<DropoutOptions>({ p: true, dtype: true, count: true, out: true, mask: true, training: true, ...RANDOM_OPTION_NAMES, encoder: true });

/** Everything the backward pass needs; nothing else is kept between the passes. */
export interface DropoutState extends RandomState {
  p: number;
  count: number;
  dtype: Dtype;
  training: boolean;
}

export interface DropoutResult {
  output: GPUBuffer;
  state: DropoutState;
  /** The packed keep-mask, when asked for. */
  mask?: GPUBuffer;
}

export interface DropoutBackwardOptions extends RecordOptions {
  /** Output buffer for dx (default: a new pooled buffer). Pass `dy` to work in place. */
  out?: GPUBuffer;
  /** A packed keep-mask from the forward (`mask: true`): read it instead of regenerating. */
  mask?: GPUBuffer;
}

const DROPOUT_BACKWARD_OPTIONS = optionNames<DropoutBackwardOptions>({ out: true, mask: true, encoder: true });

/**
 * `{ ...opts, ...more }` as a new object. Spelled with Object.assign because V8 (Node 20) builds a
 * literal that starts with a spread of a fresh object and adds properties after it about 5x slower
 * (1-1.5 us per call, measured), and ops copy their options on every call.
 */
export function withOptions<T extends object, U extends object>(opts: T, more: U): Omit<T, keyof U> & U {
  return Object.assign({}, opts, more);
}

export function resolveRandom(ctx: DropoutContext, opts: RandomOptions): RandomState {
  const offset = toU64(opts.offset ?? 0n, 'offset');
  if (opts.seed !== undefined) {
    return { seed: toU64(opts.seed, 'seed'), stream: toU64(opts.stream ?? 0n, 'stream'), offset };
  }
  if (opts.stream !== undefined) throw new InvalidArgumentError('stream', 'to come with a seed (or use a generator)', opts.stream);
  if (opts.generator !== undefined && !(opts.generator instanceof PhiloxGenerator)) {
    throw new InvalidArgumentError('generator', 'a PhiloxGenerator', opts.generator);
  }
  const generator = opts.generator ?? ctx.generator;
  return { seed: generator.seed, stream: generator.take(), offset };
}

export function resolveCount(count: number | undefined, buffer: unknown, bytesPerElement: number, argument: string): number {
  if (count !== undefined) return checkCount(count);
  if (!isGpuBuffer(buffer)) throw new InvalidArgumentError(argument, 'a GPUBuffer', buffer);
  return Math.floor(buffer.size / bytesPerElement);
}

/** Output buffer for an op: the caller's (checked), or a new pooled one. */
function outputBuffer(ctx: DropoutContext, out: GPUBuffer | undefined, bytes: number, label: string): GPUBuffer {
  return out ?? ctx.acquire(bytes, label);
}

/**
 * `work` on buffers the op took from the pool (`acquired`; undefined entries are skipped, e.g. a
 * caller's `out`): if WebGPU refuses it (submit, or a buffer of another device before recording),
 * they go back with `refund`, so a refused call leaves the pool's counts as it found them. Only
 * for work recorded in one go (one dispatchAll): a refusal then means nothing of it was recorded.
 */
export function refundOnFailure<T>(ctx: DropoutContext, acquired: readonly (GPUBuffer | undefined)[], work: () => Promise<T>): Promise<T> {
  // One promise reaction, no async frame of its own: this is on every op's path.
  return work().catch((e: unknown) => {
    for (const b of acquired) if (b) ctx.pool.refund(b);
    throw e;
  });
}

/** The kernel that carries out a keep rule on data, in place or not. */
function dataKernel(rule: KeepRule, inPlace: boolean, masked: boolean): KernelRecord | null {
  if (rule.kind === 'identity') return inPlace ? null : kernels.identity;
  if (rule.kind === 'zeros') return kernels.zeros;
  if (masked) return inPlace ? kernels.dropoutMaskedInPlace : kernels.dropoutMasked;
  return inPlace ? kernels.dropoutForwardInPlace : kernels.dropoutForward;
}

/** Applies the keep rule of `p` under `rand` to `count` elements of `x` into `out`. */
/** The dispatch of y = x * keep / (1 - p) under `rule` (none for an identity in place). */
function dropoutCall(
  x: GPUBuffer,
  out: GPUBuffer,
  rule: KeepRule,
  rand: RandomState,
  count: number,
  dtype: Dtype,
  names: { x: string; out: string },
  mask: GPUBuffer | undefined,
  encoder: GPUCommandEncoder | undefined,
): DispatchCall | undefined {
  const inPlace = out === x;
  const kernel = dataKernel(rule, inPlace, mask !== undefined);
  if (!kernel) return undefined;
  const buffers: Record<number, BoundBuffer> = { 2: { buffer: out, argument: names.out } };
  if (!inPlace) buffers[1] = { buffer: x, argument: names.x };
  if (mask) buffers[3] = { buffer: mask, argument: 'mask' };
  return {
    kernel,
    dtype,
    count,
    buffers,
    seed: rand.seed,
    stream: rand.stream,
    offset: rand.offset,
    threshold: rule.kind === 'mask' ? rule.threshold : 0,
    scale: rule.kind === 'mask' ? rule.scale : 1,
    encoder,
  };
}

export function checkEncoder(encoder: unknown): void {
  if (encoder !== undefined && (typeof encoder !== 'object' || encoder === null || typeof (encoder as GPUCommandEncoder).beginComputePass !== 'function')) {
    throw new InvalidArgumentError('encoder', 'a GPUCommandEncoder', encoder);
  }
}

/**
 * Inverted dropout, y = x * keep / (1 - p), with keep decided by the contract's words for
 * (seed, stream, offset + i). Returns the output and the state the backward pass needs.
 */
export async function dropout(ctx: DropoutContext, x: GPUBuffer, opts: DropoutOptions): Promise<DropoutResult> {
  ctx.checkAlive();
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object with at least p');
  checkOptionNames(opts, DROPOUT_OPTIONS);
  const rule = keepRule(opts.p);
  const dtype = opts.dtype ?? 'f32';
  ctx.checkDtype(dtype);
  checkEncoder(opts.encoder);
  const count = resolveCount(opts.count, x, dtypeBytes(dtype), 'x');
  const bytes = bindingBytes('data', dtype, count);
  ctx.checkStorage(x, 'x', bytes);
  if (opts.out !== undefined) ctx.checkStorage(opts.out, 'out', bytes);
  const maskBytes = bindingBytes('bit', dtype, count);
  if (opts.mask !== undefined && typeof opts.mask !== 'boolean') ctx.checkStorage(opts.mask, 'mask', maskBytes);
  if (opts.mask && opts.out !== undefined && opts.mask === opts.out) throw new InvalidArgumentError('mask', 'a buffer other than out');
  if (opts.mask && opts.mask === x) throw new InvalidArgumentError('mask', 'a buffer other than x');
  const training = opts.training ?? true;
  if (typeof training !== 'boolean') throw new InvalidArgumentError('training', 'a boolean', training);
  // Eval mode draws no stream: it is the identity and needs no randomness.
  const rand = training ? resolveRandom(ctx, opts) : { seed: 0n, stream: 0n, offset: toU64(opts.offset ?? 0n, 'offset') };
  const effective: KeepRule = training ? rule : { kind: 'identity' };
  const state: DropoutState = { seed: rand.seed, stream: rand.stream, offset: rand.offset, p: opts.p, count, dtype, training };

  if (effective.kind === 'identity' && opts.out === undefined && !opts.mask) return { output: x, state };
  const output = outputBuffer(ctx, opts.out, bytes, 'dropout output');
  const mask = opts.mask === true ? ctx.acquire(maskBytes, 'dropout mask') : opts.mask || undefined;
  const acquired = [opts.out === undefined ? output : undefined, opts.mask === true ? mask : undefined];
  await refundOnFailure(ctx, acquired, async () => {
    if (mask && effective.kind === 'mask' && output !== x) {
      // Outputs and mask bits from the same words, in one pass.
      await ctx.dispatch({
        kernel: kernels.dropoutForwardPacked,
        dtype,
        count,
        buffers: { 1: { buffer: x, argument: 'x' }, 2: { buffer: output, argument: 'out' }, 3: { buffer: mask, argument: 'mask' } },
        ...rand,
        threshold: effective.threshold,
        scale: effective.scale,
        encoder: opts.encoder,
      });
    } else {
      // One op, recorded together: if WebGPU refuses the batch, both dispatches know the op's arguments.
      const calls = [dropoutCall(x, output, effective, rand, count, dtype, { x: 'x', out: 'out' }, undefined, opts.encoder), mask && packedMaskCall(mask, effective, rand, count, opts.encoder)];
      await ctx.dispatchAll(calls.filter((c): c is DispatchCall => c !== undefined));
    }
  });
  return mask ? { output, state, mask } : { output, state };
}

/**
 * dx = dy * keep / (1 - p) with the forward's mask, regenerated from its (seed, stream, offset)
 * or read from the packed mask when one is given.
 */
export async function dropoutBackward(ctx: DropoutContext, dy: GPUBuffer, state: DropoutState, opts: DropoutBackwardOptions = {}): Promise<GPUBuffer> {
  ctx.checkAlive();
  checkState(state);
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object of backward options ({ out?, mask?, encoder? })', opts);
  checkOptionNames(opts, DROPOUT_BACKWARD_OPTIONS);
  ctx.checkDtype(state.dtype, 'state.dtype');
  checkEncoder(opts.encoder);
  const bytes = bindingBytes('data', state.dtype, state.count);
  ctx.checkStorage(dy, 'dy', bytes);
  if (opts.out !== undefined) ctx.checkStorage(opts.out, 'out', bytes);
  if (opts.mask !== undefined) {
    ctx.checkStorage(opts.mask, 'mask', bindingBytes('bit', state.dtype, state.count));
    if (opts.mask === dy || opts.mask === opts.out) throw new InvalidArgumentError('mask', 'a buffer other than dy and out');
  }
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  if (rule.kind === 'identity' && opts.out === undefined) return dy;
  const output = outputBuffer(ctx, opts.out, bytes, 'dropout grad');
  const call = dropoutCall(dy, output, rule, state, state.count, state.dtype, { x: 'dy', out: 'out' }, opts.mask, opts.encoder);
  if (call) await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () => ctx.dispatch(call));
  return output;
}

function checkState(state: DropoutState): void {
  if (typeof state !== 'object' || state === null) throw new InvalidArgumentError('state', 'the state returned by dropout()', state);
  checkProbability(state.p, 'state.p');
  if (typeof state.training !== 'boolean') throw new InvalidArgumentError('state.training', 'a boolean', state.training);
  toU64(state.seed, 'state.seed');
  toU64(state.stream, 'state.stream');
  toU64(state.offset, 'state.offset');
  checkCount(state.count, 'state.count');
}

/** The dispatch that writes the packed keep-mask of `rule` (constant bits where p is 0 or 1). */
function packedMaskCall(mask: GPUBuffer, rule: KeepRule, rand: RandomState, count: number, encoder?: GPUCommandEncoder): DispatchCall {
  const random = rule.kind === 'mask';
  return {
    kernel: random ? kernels.bernoulliPacked : kernels.bernoulliPackedFill,
    dtype: 'f32',
    count,
    buffers: { 2: { buffer: mask, argument: 'mask' } },
    ...rand,
    threshold: random ? rule.threshold : rule.kind === 'identity' ? 0 : 1,
    encoder,
  };
}

export interface RandomOpOptions extends RandomOptions, RecordOptions {
  /** Number of values to generate. */
  count: number;
  /** Output buffer (default: a new pooled buffer), 4 bytes per value (or per 32 values, packed). */
  out?: GPUBuffer;
}

const RANDOM_OP_OPTIONS = optionNames<RandomOpOptions>({ count: true, out: true, ...RANDOM_OPTION_NAMES, encoder: true });

export interface RandomResult {
  output: GPUBuffer;
  state: RandomState;
}

async function randomOp(
  ctx: DropoutContext,
  kernel: KernelRecord,
  opts: RandomOpOptions,
  threshold = 0,
  unit: 'word' | 'bit' = 'word',
  names = RANDOM_OP_OPTIONS,
): Promise<RandomResult> {
  ctx.checkAlive();
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object with at least count');
  checkOptionNames(opts, names);
  const count = checkCount(opts.count);
  checkEncoder(opts.encoder);
  const bytes = bindingBytes(unit, 'f32', count);
  if (opts.out !== undefined) ctx.checkStorage(opts.out, 'out', bytes);
  else ctx.checkBufferSize(bytes, 'count', count);
  const state = resolveRandom(ctx, opts);
  const output = outputBuffer(ctx, opts.out, bytes, kernel.name);
  const call: DispatchCall = { kernel, dtype: 'f32', count, buffers: { 2: { buffer: output, argument: 'out' } }, ...state, threshold, encoder: opts.encoder };
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () => ctx.dispatch(call));
  return { output, state };
}

/** The contract's raw 32-bit words (u32), the ones every mask is decided from. */
export function randomWords(ctx: DropoutContext, opts: RandomOpOptions): Promise<RandomResult> {
  return randomOp(ctx, kernels.words, opts);
}

/** Uniform f32 in [0, 1): (word >> 8) * 2^-24. */
export function randomUniform(ctx: DropoutContext, opts: RandomOpOptions): Promise<RandomResult> {
  return randomOp(ctx, kernels.uniform, opts);
}

/** Standard normal f32, Box-Muller on word pairs (see referenceNormal for the exact formula). */
export function randomNormal(ctx: DropoutContext, opts: RandomOpOptions): Promise<RandomResult> {
  return randomOp(ctx, kernels.normal, opts);
}

export interface BernoulliOptions extends RandomOpOptions {
  /** Drop probability: an element is 1 (kept) with probability 1 - p. */
  p: number;
  /** Pack 32 decisions per u32 (bit b of word k = element 32k + b) instead of one u32 each. */
  packed?: boolean;
}

const BERNOULLI_OPTIONS = optionNames<BernoulliOptions>({ count: true, p: true, packed: true, out: true, ...RANDOM_OPTION_NAMES, encoder: true });

/** The keep-mask dropout with the same (p, seed, stream, offset) would use: 1 = keep. */
export async function bernoulliMask(ctx: DropoutContext, opts: BernoulliOptions): Promise<RandomResult> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object with count and p');
  checkOptionNames(opts, BERNOULLI_OPTIONS);
  const rule = keepRule(opts.p);
  if (opts.packed !== undefined && typeof opts.packed !== 'boolean') throw new InvalidArgumentError('packed', 'a boolean', opts.packed);
  const random = rule.kind === 'mask';
  const threshold = random ? rule.threshold : rule.kind === 'identity' ? 0 : 1;
  if (opts.packed) return randomOp(ctx, random ? kernels.bernoulliPacked : kernels.bernoulliPackedFill, opts, threshold, 'bit', BERNOULLI_OPTIONS);
  return randomOp(ctx, random ? kernels.bernoulli : kernels.bernoulliFill, opts, threshold, 'word', BERNOULLI_OPTIONS);
}
