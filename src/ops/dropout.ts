// Element-wise inverted dropout and its backward: validate every argument before recording anything,
// resolve the randomness to a (seed, stream, offset) triple, return it, and dispatch KernelCalls.
import { checkCount, type KeepRule, keepRule } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { type KernelRecord, kernels } from '../kernels/elementwise.js';
import type { Dtype } from '../kernels/shaders.js';
import { optionNames } from '../options.js';
import type { DropoutContext } from '../runtime/context.js';
import type { KernelCall } from '../runtime/dispatch.js';
import { type BoundBuffer, bindingBytes, dtypeBytes } from '../runtime/units.js';
import {
  beginOp,
  checkOpState,
  drawRandom,
  type OpOptions,
  type OpState,
  RANDOM_OPTION_NAMES,
  type RandomState,
  type RecordOptions,
  refundOnFailure,
  resolveCount,
  withOutput,
} from './common.js';

/** The options of {@link dropout}. */
export interface DropoutOptions extends OpOptions {
  /** Drop probability in [0, 1]. */
  p: number;
  /** Elements to process, at most 2^32 - 1 (default: all of `x`, its size divided by the element size). */
  count?: number;
  /** Output buffer, STORAGE usage (default: a new pooled buffer). Pass `x` itself for in-place dropout. */
  out?: GPUBuffer;
  /** Also write the packed keep-mask (bit b of word k = element 32k + b): `true` for a new buffer. */
  mask?: GPUBuffer | boolean;
  /** false: eval mode, the identity (no RNG work; returns `x` unless `out` is given). Default true. */
  training?: boolean;
}

const DROPOUT_OPTIONS = optionNames<DropoutOptions>({
  p: true,
  dtype: true,
  count: true,
  out: true,
  mask: true,
  training: true,
  ...RANDOM_OPTION_NAMES,
  encoder: true,
});

/** Everything the backward pass needs; nothing else is kept between the passes. */
export interface DropoutState extends OpState {
  /** Elements the forward processed. */
  count: number;
}

/** What {@link dropout} returns. */
export interface DropoutResult {
  /** The output: `out` when given, else a pooled buffer (`ctx.release` it when done). An identity
   * call (p = 0 or eval mode) given neither `out` nor `mask` returns `x` itself. */
  output: GPUBuffer;
  /** What {@link dropoutBackward} needs to regenerate the mask. */
  state: DropoutState;
  /** The packed keep-mask, when asked for. */
  mask?: GPUBuffer;
}

/** The options of {@link dropoutBackward}. */
export interface DropoutBackwardOptions extends RecordOptions {
  /** Output buffer for dx (default: a new pooled buffer). Pass `dy` to work in place. */
  out?: GPUBuffer;
  /** A packed keep-mask from the forward (`mask: true`): read it instead of regenerating. */
  mask?: GPUBuffer;
}

const DROPOUT_BACKWARD_OPTIONS = optionNames<DropoutBackwardOptions>({ out: true, mask: true, encoder: true });

/** The kernel that carries out a keep rule on data, in place or not. */
function dataKernel(rule: KeepRule, inPlace: boolean, masked: boolean): KernelRecord | null {
  if (rule.kind === 'identity') return inPlace ? null : kernels.identity;
  if (rule.kind === 'zeros') return kernels.zeros;
  if (masked) return inPlace ? kernels.dropoutMaskedInPlace : kernels.dropoutMasked;
  return inPlace ? kernels.dropoutForwardInPlace : kernels.dropoutForward;
}

/** The call of y = x * keep / (1 - p) under `rule` (none for an identity in place). */
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
): KernelCall | undefined {
  const inPlace = out === x;
  const kernel = dataKernel(rule, inPlace, mask !== undefined);
  if (!kernel) return undefined;
  // In place, the one buffer is bound as `out` but is the caller's input too: errors name that.
  const buffers: Record<string, BoundBuffer> = { out: { buffer: out, argument: inPlace ? names.x : names.out } };
  if (!inPlace) buffers.x = { buffer: x, argument: names.x };
  if (mask) buffers.mask = { buffer: mask, argument: 'mask' };
  return {
    kernel,
    dtype,
    count,
    buffers,
    rand,
    threshold: rule.kind === 'mask' ? rule.threshold : 0,
    scale: rule.kind === 'mask' ? rule.scale : 1,
    encoder,
  };
}

/**
 * Inverted dropout, y = x * keep / (1 - p), with keep decided by the contract's words for
 * (seed, stream, offset + i). Returns the output and the state the backward pass needs.
 * Dropped elements are exactly +0 (NaN and infinities included); p = 0 is the identity and
 * p = 1 writes zeros, neither doing RNG work.
 *
 * @param x - The input, a STORAGE buffer of at least `count` elements of `dtype`.
 * @throws {@link InvalidArgumentError} (rejects, before anything is recorded) for a
 *   bad buffer or option, naming it; {@link DeviceLostError} once the device is lost;
 *   {@link GpuValidationError} when WebGPU refuses the batch the call was submitted in.
 */
export async function dropout(ctx: DropoutContext, x: GPUBuffer, opts: DropoutOptions): Promise<DropoutResult> {
  const { dtype, training, rt } = beginOp(ctx, opts, 'an object with at least p', DROPOUT_OPTIONS, false);
  const rule = keepRule(opts.p);
  const count = resolveCount(opts.count, x, dtypeBytes(dtype), 'x');
  const bytes = bindingBytes('data', dtype, count);
  rt.transfers.checkStorage(x, 'x', bytes);
  if (opts.out !== undefined) rt.transfers.checkStorage(opts.out, 'out', bytes);
  const maskBytes = bindingBytes('bit', dtype, count);
  if (opts.mask !== undefined && typeof opts.mask !== 'boolean') rt.transfers.checkStorage(opts.mask, 'mask', maskBytes);
  if (opts.mask && opts.out !== undefined && opts.mask === opts.out) throw new InvalidArgumentError('mask', 'a buffer other than out');
  if (opts.mask && opts.mask === x) throw new InvalidArgumentError('mask', 'a buffer other than x');
  const rand = drawRandom(ctx, opts, training);
  const effective: KeepRule = training ? rule : { kind: 'identity' };
  const state: DropoutState = { seed: rand.seed, stream: rand.stream, offset: rand.offset, p: opts.p, count, dtype, training };

  if (effective.kind === 'identity' && opts.out === undefined && !opts.mask) return { output: x, state };
  const output = opts.out ?? rt.transfers.acquire(bytes, 'dropout output');
  const mask = opts.mask === true ? rt.transfers.acquire(maskBytes, 'dropout mask') : opts.mask || undefined;
  const acquired = [opts.out === undefined ? output : undefined, opts.mask === true ? mask : undefined];
  const calls: KernelCall[] = [];
  if (mask && effective.kind === 'mask' && output !== x) {
    // Outputs and mask bits from the same words, in one pass.
    const buffers = { x: { buffer: x, argument: 'x' }, out: { buffer: output, argument: 'out' }, mask: { buffer: mask, argument: 'mask' } };
    calls.push({
      kernel: kernels.dropoutForwardPacked,
      dtype,
      count,
      buffers,
      rand,
      threshold: effective.threshold,
      scale: effective.scale,
      encoder: opts.encoder,
    });
  } else {
    // One op, recorded together: if WebGPU refuses the batch, both dispatches know the op's arguments.
    const data = dropoutCall(x, output, effective, rand, count, dtype, { x: 'x', out: 'out' }, undefined, opts.encoder);
    if (data) calls.push(data);
    if (mask) calls.push(packedMaskCall(mask, effective, rand, count, opts.encoder));
  }
  await refundOnFailure(rt, acquired, () => rt.dispatcher.dispatch(calls));
  return mask ? { output, state, mask } : { output, state };
}

/**
 * dx = dy * keep / (1 - p) with the forward's mask, regenerated from its (seed, stream, offset)
 * or read from the packed mask when one is given. For an identity forward (p = 0 or eval mode)
 * without `out`, resolves to `dy` itself.
 *
 * @param state - The state {@link dropout} returned.
 * @throws {@link InvalidArgumentError} (rejects) for a bad buffer, option or state, naming it.
 */
export async function dropoutBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: DropoutState,
  opts: DropoutBackwardOptions = {},
): Promise<GPUBuffer> {
  const { rt } = beginOp(ctx, opts, 'an object of backward options ({ out?, mask?, encoder? })', DROPOUT_BACKWARD_OPTIONS);
  checkOpState(state, 'the state returned by dropout()');
  checkCount(state.count, 'state.count');
  const bytes = bindingBytes('data', state.dtype, state.count);
  rt.transfers.checkStorage(dy, 'dy', bytes);
  if (opts.out !== undefined) rt.transfers.checkStorage(opts.out, 'out', bytes);
  if (opts.mask !== undefined) {
    rt.transfers.checkStorage(opts.mask, 'mask', bindingBytes('bit', state.dtype, state.count));
    if (opts.mask === dy || opts.mask === opts.out) throw new InvalidArgumentError('mask', 'a buffer other than dy and out');
  }
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  if (rule.kind === 'identity' && opts.out === undefined) return dy;
  return withOutput(rt, opts.out, bytes, 'dropout grad', async (output) => {
    const call = dropoutCall(dy, output, rule, state, state.count, state.dtype, { x: 'dy', out: 'out' }, opts.mask, opts.encoder);
    if (call) await rt.dispatcher.dispatch(call);
  });
}

/** The dispatch that writes the packed keep-mask of `rule` (constant bits where p is 0 or 1). */
function packedMaskCall(mask: GPUBuffer, rule: KeepRule, rand: RandomState, count: number, encoder?: GPUCommandEncoder): KernelCall {
  const random = rule.kind === 'mask';
  return {
    kernel: random ? kernels.bernoulliPacked : kernels.bernoulliPackedFill,
    dtype: 'f32',
    count,
    buffers: { out: { buffer: mask, argument: 'mask' } },
    rand,
    threshold: random ? rule.threshold : rule.kind === 'identity' ? 0 : 1,
    encoder,
  };
}
