// Typed-array convenience over the GPUBuffer ops: upload, run, read back, release.
import { dtypeBytes, type DropoutContext } from './context.js';
import { dropout, type DropoutOptions, type DropoutState } from './ops.js';
import type { Dtype } from './shaders.js';

type ArrayFor<D extends Dtype | 'u32'> = D extends 'f32' ? Float32Array : D extends 'f16' ? Uint16Array : Uint32Array;

/** Reads `count` elements of `buffer` (f16 as Uint16Array bit patterns). */
export async function readArray<D extends Dtype | 'u32'>(ctx: DropoutContext, buffer: GPUBuffer, dtype: D, count: number): Promise<ArrayFor<D>> {
  const bytes = await ctx.readBytes(buffer, count * (dtype === 'u32' ? 4 : dtypeBytes(dtype as Dtype)));
  if (dtype === 'f16') return new Uint16Array(bytes) as ArrayFor<D>;
  return (dtype === 'f32' ? new Float32Array(bytes) : new Uint32Array(bytes)) as ArrayFor<D>;
}

/** Dropout on a typed array: f32 as Float32Array, f16 as Uint16Array bit patterns. */
export async function dropoutArray<T extends Float32Array | Uint16Array>(
  ctx: DropoutContext,
  x: T,
  opts: Omit<DropoutOptions, 'out' | 'count' | 'dtype' | 'encoder' | 'mask'>,
): Promise<{ output: T; state: DropoutState }> {
  const dtype: Dtype = x instanceof Uint16Array ? 'f16' : 'f32';
  ctx.checkDtype(dtype);
  const input = ctx.upload(x, 'dropoutArray input');
  try {
    const { output, state } = await dropout(ctx, input, { ...opts, dtype, count: x.length });
    const result = (await readArray(ctx, output, dtype, x.length)) as T;
    if (output !== input) ctx.release(output);
    return { output: result, state };
  } finally {
    ctx.release(input);
  }
}
