// Argument checks of the CPU references. They refuse what the GPU ops refuse, with the same
// InvalidArgumentError naming the argument, rather than failing with a TypeError or RangeError
// or quietly computing from undefined elements (a short keep-mask, a wrong typed array).
import { toU64 } from '../contract.js';
import { Got, InvalidArgumentError } from '../errors.js';
import type { Dtype } from '../kernels/shaders.js';

/** The randomness of a reference call, checked. */
export interface CheckedRandom {
  seed: bigint;
  stream: bigint;
  offset: bigint;
}

/** Checks a reference call's options object and the randomness it holds: seed required, stream
 * and offset 0 by default. */
export function checkRandom(opts: unknown, argument = 'options'): CheckedRandom {
  if (typeof opts !== 'object' || opts === null)
    throw new InvalidArgumentError(argument, 'an object with at least seed ({ seed, stream?, offset?, ... })', opts);
  const r = opts as { seed: bigint; stream?: bigint; offset?: bigint };
  return { seed: toU64(r.seed, 'seed'), stream: toU64(r.stream ?? 0n, 'stream'), offset: toU64(r.offset ?? 0n, 'offset') };
}

/** What came instead of an array, without printing a long one. */
export function arrayGot(v: unknown): unknown {
  if (Array.isArray(v)) return new Got(`an Array of ${v.length} values`);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView))
    return new Got(`a ${v.constructor.name} of ${(v as unknown as ArrayLike<unknown>).length} values`);
  return v;
}

/**
 * The dtype of reference data `x`: `dtype` when given ('f32' or 'f16'; the array must then be of
 * its type), else Uint16Array bit patterns are f16 and a Float32Array f32. Anything else is refused
 * as `argument`: f32 values read as f16 bits (or the reverse) would give numbers, all wrong.
 */
export function checkHostData(x: unknown, dtype: unknown, argument: string): Dtype {
  if (dtype !== undefined && dtype !== 'f32' && dtype !== 'f16') throw new InvalidArgumentError('dtype', "'f32' or 'f16'", dtype);
  const d: Dtype = (dtype as Dtype | undefined) ?? (x instanceof Uint16Array ? 'f16' : 'f32');
  if (d === 'f16' ? x instanceof Uint16Array : x instanceof Float32Array) return d;
  const expected =
    dtype === undefined
      ? 'a Float32Array, or a Uint16Array of f16 bit patterns'
      : d === 'f16'
        ? "a Uint16Array of f16 bit patterns (dtype 'f16')"
        : "a Float32Array (dtype 'f32')";
  throw new InvalidArgumentError(argument, expected, arrayGot(x));
}

/** Checks that `a` is a typed array or an Array of `length` numbers (`what` says what they are). */
export function checkNumbers(a: unknown, argument: string, length: number, what: string): asserts a is ArrayLike<number> {
  const isArray = Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView));
  if (!isArray) throw new InvalidArgumentError(argument, `an array of ${length} ${what}`, a);
  if ((a as ArrayLike<number>).length !== length)
    throw new InvalidArgumentError(argument, `${length} ${what}`, new Got(`${(a as ArrayLike<number>).length}`));
}

/** A whole number >= 1: the model references' rows and columns. */
export function checkPositive(v: unknown, argument: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(argument, 'a positive integer', v);
  return v;
}
