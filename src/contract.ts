// The mask contract of docs/DESIGN.md section 1, as host-side arithmetic shared by the GPU ops and the
// CPU reference: seeds and streams as 64-bit values split into u32 words, the integer keep
// threshold and the inverted-dropout scale.
import { InvalidArgumentError } from './errors.js';

export const U64_MAX = (1n << 64n) - 1n;
const TWO_32 = 4294967296;

/** A 64-bit seed, stream or offset: a bigint, or a non-negative safe integer. */
export type U64 = bigint | number;

/** The randomness of a call: the Philox key (seed), counter words 2-3 (stream) and the mask index
 * of element 0 (offset). Every op returns it, so a mask can be replayed. */
export interface RandomState {
  /** The 64-bit Philox key: key words (seed mod 2^32, floor(seed / 2^32)). */
  seed: bigint;
  /** The 64-bit stream: Philox counter words 2 and 3 (low word first). */
  stream: bigint;
  /** Mask index of element 0 (64-bit; indices wrap past 2^64 - 1), so a slice or shard draws the words of its place in the whole. */
  offset: bigint;
}

export function toU64(value: U64, argument: string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InvalidArgumentError(argument, 'an integer in 0..2^64-1 (a safe integer or a bigint)', value);
    }
    return BigInt(value);
  }
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new InvalidArgumentError(argument, 'an integer in 0..2^64-1', value);
  }
  return value;
}

/** (lo, hi) u32 words of a 64-bit value. */
export function split64(v: bigint): [number, number] {
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

export function checkProbability(p: number, argument = 'p'): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new InvalidArgumentError(argument, 'a number in [0, 1]', p);
  }
  return p;
}

/** How a rate p is carried out: identity, all zeros, or a Bernoulli mask with threshold T. */
export type KeepRule = { kind: 'identity' } | { kind: 'zeros' } | { kind: 'mask'; threshold: number; scale: number };

/**
 * keep iff word >= T with T = round(p * 2^32), computed here so the GPU compares integers.
 * A p so close to 1 that T reaches 2^32 keeps nothing, the same as p = 1.
 */
export function keepRule(p: number): KeepRule {
  checkProbability(p);
  if (p === 0) return { kind: 'identity' };
  if (p === 1) return { kind: 'zeros' };
  const threshold = Math.round(p * TWO_32);
  if (threshold >= TWO_32) return { kind: 'zeros' };
  return { kind: 'mask', threshold, scale: 1 / (1 - p) };
}

/**
 * The contract's integer keep threshold for drop probability `p`: T = round(p * 2^32), so an element
 * is kept iff its 32-bit word >= T. 0 for p = 0 (keep all) and 2^32 for p = 1, or for a p so close
 * to 1 that T rounds to 2^32 (keep none).
 * @throws {@link InvalidArgumentError} (argument `p`) unless `p` is a number in [0, 1].
 */
export function thresholdFor(p: number): number {
  const rule = keepRule(p);
  return rule.kind === 'mask' ? rule.threshold : rule.kind === 'identity' ? 0 : TWO_32;
}

export function checkCount(count: number, argument = 'count'): number {
  if (!Number.isSafeInteger(count) || count < 0 || count > 0xffffffff) {
    throw new InvalidArgumentError(argument, 'a whole number of elements in 0..2^32-1', count);
  }
  return count;
}
