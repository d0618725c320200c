// What every op shares: its prologue (beginOp: the options, dtype, encoder and mode checked, the
// runtime handed over), the state fields every op returns and their check (checkOpState), where
// randomness comes from (RandomOptions, resolved to a (seed, stream, offset) triple; none drawn in
// eval mode), counts, option copies and the op ending (withOutput: an output, refunded if refused).
import { checkCount, checkProbability, type RandomState, toU64, type U64 } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { PhiloxGenerator } from '../generator.js';
import type { Dtype } from '../kernels/shaders.js';
import { checkOptionsObject, type OptionNames } from '../options.js';
import { type DropoutContext, type Runtime, runtimeOf } from '../runtime/context.js';
import { isGpuBuffer } from '../runtime/units.js';

/** Where an op's randomness comes from. Precedence: `seed` (with `stream`, default 0), then
 * `generator` (takes its next stream), then the context's default generator. */
export interface RandomOptions {
  /** The 64-bit seed (Philox key): a bigint or a non-negative safe integer. Given, it wins over
   * `generator`, and no generator's stream is taken. */
  seed?: U64;
  /** The 64-bit stream to use with `seed` (default 0). A call that draws randomness refuses it
   * without `seed` (InvalidArgumentError 'stream'): to draw from a stream counter, pass a `generator`. */
  stream?: U64;
  /** Used when no `seed` is given: the call takes its next stream, none in eval mode (default: the
   * context's generator, seeded by `ContextOptions.seed`). */
  generator?: PhiloxGenerator;
  /** Mask index of element 0, so a slice or shard draws the words of its place in the whole (default 0). */
  offset?: U64;
}

export type { RandomState } from '../contract.js';

/** Where an op's work is recorded. */
export interface RecordOptions {
  /** Record into this encoder instead of the context's own batch; the caller submits it, then calls
   * `ctx.submitted(encoder)` so the call's temporaries go back to the pool. Must be an unfinished
   * encoder of the context's device. Default: the context's batch, submitted on the next microtask. */
  encoder?: GPUCommandEncoder;
}

/** RandomOptions' names, for the option lists of every op that draws randomness. */
export const RANDOM_OPTION_NAMES = { seed: true, stream: true, generator: true, offset: true } as const;

/** The options every op shares (or a part of them): randomness, recording, dtype and mode; each op's options add their own. */
export interface OpOptions extends RandomOptions, RecordOptions {
  /** Element type of the data buffers: 'f32' (4 bytes an element, the default) or 'f16' (2 bytes;
   * computed in f32 and rounded once to nearest even, on every device). */
  dtype?: Dtype;
  /** false: eval mode (no randomness). Default true. */
  training?: boolean;
}

/** What the prologue settled: the element type, the mode, and the context's runtime. */
export interface OpSettings {
  dtype: Dtype;
  training: boolean;
  rt: Runtime;
}

/**
 * Every op's prologue, before its own checks: the context alive; `opts` an object (`expected` says
 * what it must hold; `showGot: false` leaves what came out of the message, as the element-wise ops
 * always have) with only the option `names` the op takes; the dtype supported, the encoder an
 * encoder and training a boolean. Draws no randomness: drawRandom comes after the op's own checks,
 * so that a refused call leaves the generator where it was.
 */
export function beginOp(ctx: DropoutContext, opts: OpOptions, expected: string, names: OptionNames, showGot = true): OpSettings {
  const rt: Runtime = runtimeOf(ctx);
  rt.liveness.check();
  checkOptionsObject(opts, names, 'options', expected, showGot ? opts : undefined);
  const dtype = opts.dtype ?? 'f32';
  checkDtype(dtype);
  rt.submission.checkEncoder(opts.encoder, 'encoder');
  const training = opts.training ?? true;
  if (typeof training !== 'boolean') throw new InvalidArgumentError('training', 'a boolean', training);
  return { dtype, training, rt };
}

/** Throws unless `dtype` is 'f32' or 'f16' (both run on every device, see DropoutContext.f16Path). */
export function checkDtype(dtype: unknown, argument = 'dtype'): asserts dtype is Dtype {
  if (dtype !== 'f32' && dtype !== 'f16') throw new InvalidArgumentError(argument, "'f32' or 'f16'", dtype);
}

/** The op's randomness, after every check: in training resolved from `opts` (the generator's next
 * stream unless a seed is given); in eval mode, the identity, none is drawn and only the offset kept. */
export function drawRandom(ctx: DropoutContext, opts: RandomOptions, training: boolean): RandomState {
  return training ? resolveRandom(ctx, opts) : { seed: 0n, stream: 0n, offset: toU64(opts.offset ?? 0n, 'offset') };
}

/** The fields every op's state holds (DropoutState and StructuredState add their own): what a
 * backward pass needs to regenerate the forward's mask. */
export interface OpState extends RandomState {
  /** The drop probability the forward used. */
  p: number;
  /** The element type of the forward's data. */
  dtype: Dtype;
  /** false: the forward ran in eval mode (the identity), and so does its backward. */
  training: boolean;
}

/** Checks the fields every op state shares; `recognized` false (a state of another op) or a
 * non-object is refused as not `expected`. */
export function checkOpState(state: unknown, expected: string, recognized = true): asserts state is OpState {
  const s = state as OpState;
  if (typeof s !== 'object' || s === null || !recognized) throw new InvalidArgumentError('state', expected, state);
  checkProbability(s.p, 'state.p');
  if (typeof s.training !== 'boolean') throw new InvalidArgumentError('state.training', 'a boolean', s.training);
  toU64(s.seed, 'state.seed');
  toU64(s.stream, 'state.stream');
  toU64(s.offset, 'state.offset');
  if (s.dtype !== 'f32' && s.dtype !== 'f16') throw new InvalidArgumentError('state.dtype', "'f32' or 'f16'", s.dtype);
}

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
  const generator = checkGenerator(opts.generator) ?? ctx.generator;
  return { seed: generator.seed, stream: generator.take(), offset };
}

/** Checks a `generator` option: undefined or a PhiloxGenerator. */
export function checkGenerator(generator: unknown): PhiloxGenerator | undefined {
  if (generator !== undefined && !(generator instanceof PhiloxGenerator))
    throw new InvalidArgumentError('generator', 'a PhiloxGenerator', generator);
  return generator;
}

export function resolveCount(count: number | undefined, buffer: unknown, bytesPerElement: number, argument: string): number {
  if (count !== undefined) return checkCount(count);
  if (!isGpuBuffer(buffer)) throw new InvalidArgumentError(argument, 'a GPUBuffer', buffer);
  return Math.floor(buffer.size / bytesPerElement);
}

/**
 * `work` on buffers the op took from the pool (`acquired`; undefined entries are skipped, e.g. a
 * caller's `out`): if WebGPU refuses it (submit, or a buffer of another device before recording),
 * they go back with `refund`, so a refused call leaves the pool's counts as it found them. Only
 * for work recorded in one go (one `dispatch`): a refusal then means nothing of it was recorded.
 */
export function refundOnFailure<T>(rt: Runtime, acquired: readonly (GPUBuffer | undefined)[], work: () => Promise<T>): Promise<T> {
  // One promise reaction, no async frame of its own: this is on every op's path.
  return work().catch((e: unknown) => {
    for (const b of acquired) if (b) rt.transfers.refund(b);
    throw e;
  });
}

/**
 * The op ending: `record(output)` into the caller's `out`, or into a new pooled buffer of `bytes`
 * bytes (`label`) that goes back to the pool if the work is refused. Resolves to the output.
 */
export function withOutput(
  rt: Runtime,
  out: GPUBuffer | undefined,
  bytes: number,
  label: string,
  record: (output: GPUBuffer) => Promise<unknown>,
): Promise<GPUBuffer> {
  if (out !== undefined) return record(out).then(() => out);
  const output = rt.transfers.acquire(bytes, label);
  return refundOnFailure(rt, [output], () => record(output)).then(() => output);
}
