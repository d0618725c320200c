// Typed-array convenience over the GPUBuffer ops: upload, run, read back, release.

import { InvalidArgumentError } from './errors.js';
import type { Dtype } from './kernels/shaders.js';
import { RANDOM_OPTION_NAMES } from './ops/common.js';
import { type DropoutOptions, type DropoutState, dropout } from './ops/dropout.js';
import { checkOptionsObject, optionNames } from './options.js';
import type { DropoutContext } from './runtime/context.js';

type ArrayFor<D extends Dtype | 'u32'> = D extends 'f32' ? Float32Array : D extends 'f16' ? Uint16Array : Uint32Array;

/**
 * Reads the first `count` elements of `buffer` back to the CPU: a Float32Array for 'f32', a
 * Uint16Array of binary16 bit patterns for 'f16' (see {@link fromHalfArray}), a Uint32Array for
 * 'u32' (the random-word and mask ops). Submits the context's pending work first; the buffer needs
 * `COPY_SRC` usage (every pooled buffer has it).
 * @param dtype - The element type: 'f32' and 'u32' take 4 bytes an element, 'f16' 2.
 * @param count - Elements to read; `count` times the element size must lie within the buffer.
 * @throws {@link InvalidArgumentError} (rejects) for a bad `dtype` or `count` or a read past the buffer's end;
 *   {@link DeviceLostError} if the device is lost before the read completes.
 */
export async function readArray<D extends Dtype | 'u32'>(
  ctx: DropoutContext,
  buffer: GPUBuffer,
  dtype: D,
  count: number,
): Promise<D extends 'f32' ? Float32Array : D extends 'f16' ? Uint16Array : Uint32Array> {
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'u32') throw new InvalidArgumentError('dtype', "'f32', 'f16' or 'u32'", dtype);
  if (!Number.isSafeInteger(count) || count < 0) throw new InvalidArgumentError('count', 'a whole number of elements >= 0', count);
  const bytes = await ctx.readBytes(buffer, count * (dtype === 'f16' ? 2 : 4));
  if (dtype === 'f16') return new Uint16Array(bytes) as ArrayFor<D>;
  return (dtype === 'f32' ? new Float32Array(bytes) : new Uint32Array(bytes)) as ArrayFor<D>;
}

/** The options of dropoutArray: those of dropout without the buffer-level ones. */
export type ArrayDropoutOptions = Omit<DropoutOptions, 'out' | 'count' | 'dtype' | 'encoder' | 'mask'>;
const ARRAY_DROPOUT_OPTIONS = optionNames<ArrayDropoutOptions>({ p: true, training: true, ...RANDOM_OPTION_NAMES });

/**
 * {@link dropout} on a typed array: uploads `x`, runs the op and reads the result back (f32 as a
 * Float32Array, f16 as a Uint16Array of bit patterns, with the dtype taken from the array type).
 * The buffers it used go back to the pool. The state replays the mask with {@link dropoutBackward}
 * on GPU buffers or with `referenceDropoutBackward` on the CPU.
 * @throws {@link InvalidArgumentError} (rejects) for a bad `x` or option, as {@link dropout} does.
 */
export async function dropoutArray<T extends Float32Array | Uint16Array>(
  ctx: DropoutContext,
  x: T,
  opts: ArrayDropoutOptions,
): Promise<{
  /** The result, the same array type as `x`. */
  output: T;
  /** What the call used: (seed, stream, offset), p, count, dtype and training. */
  state: DropoutState;
}> {
  checkOptionsObject(opts, ARRAY_DROPOUT_OPTIONS, 'options', 'an object with at least p', opts);
  if (!(x instanceof Float32Array || x instanceof Uint16Array)) {
    throw new InvalidArgumentError('x', 'a Float32Array (f32) or a Uint16Array (f16 bit patterns)', x);
  }
  const dtype: Dtype = x instanceof Uint16Array ? 'f16' : 'f32';
  const input = ctx.upload(x, 'dropoutArray input');
  let result: { output: GPUBuffer; state: DropoutState };
  try {
    result = await dropout(ctx, input, { ...opts, dtype, count: x.length });
  } catch (e) {
    ctx.pool.refund(input); // refused: the pool as it was
    throw e;
  }
  try {
    const { output, state } = result;
    const values = (await readArray(ctx, output, dtype, x.length)) as T;
    if (output !== input) ctx.release(output);
    return { output: values, state };
  } finally {
    ctx.release(input);
  }
}
