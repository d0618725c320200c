// CPU Philox4x32-10, the reference for shaders/philox.wgsl (same contract, bit for bit).
import { checkCount, split64, toU64, type U64 } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

// philox4x32_10's refusals, out of its body: the CPU reference calls it once per four words, and
// it must stay small enough to be inlined there.
function refuseWords(words: readonly number[]): never {
  const i = words.findIndex((v) => v >>> 0 !== v);
  throw new InvalidArgumentError(['c0', 'c1', 'c2', 'c3', 'k0', 'k1'][i]!, 'a u32 word (an integer in 0..2^32-1)', words[i]);
}

function refuseOut(out: unknown): never {
  throw new InvalidArgumentError('out', 'a Uint32Array of at least 4 words, or an Array', out);
}

/** High 32 bits of the exact 64-bit product a * b (a, b unsigned 32-bit). */
export function mulhi32(a: number, b: number): number {
  // a * (b & 0xffff) and a * (b >>> 16) are both < 2^48, exact in a double.
  const lo = a * (b & 0xffff);
  const mid = a * (b >>> 16) + Math.floor(lo / 65536);
  return Math.floor(mid / 65536) >>> 0;
}

/** Philox4x32-10 of a counter (4 u32 words) under a key (2 u32 words). Writes 4 words into out. */
export function philox4x32_10(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array | number[] = new Uint32Array(4),
): Uint32Array | number[] {
  if (c0 >>> 0 !== c0 || c1 >>> 0 !== c1 || c2 >>> 0 !== c2 || c3 >>> 0 !== c3 || k0 >>> 0 !== k0 || k1 >>> 0 !== k1)
    refuseWords([c0, c1, c2, c3, k0, k1]);
  // A typed array too short would drop words silently.
  if (!(out instanceof Uint32Array && out.length >= 4) && !Array.isArray(out)) refuseOut(out);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/**
 * The contract's random words for mask elements offset .. offset + count - 1 (indices mod 2^64):
 * element i uses counter (g_lo, g_hi, stream_lo, stream_hi) with g = floor(i / 4), lane i mod 4.
 */
export function contractWords(seed: U64, stream: U64, count: number, offset: U64 = 0n): Uint32Array {
  checkCount(count);
  const [k0, k1] = split64(toU64(seed, 'seed'));
  const [s0, s1] = split64(toU64(stream, 'stream'));
  const start = toU64(offset, 'offset');
  const out = new Uint32Array(count);
  const block = new Uint32Array(4);
  // The group counter as two u32 words, stepped with a carry: no BigInt per element (the CPU
  // reference is also the benchmark's no-GPU baseline). Indices count mod 2^64, so g counts mod
  // 2^62: past index 2^64 - 1 the words start again at index 0.
  let [g0, g1] = split64(start >> 2n);
  let lane = Number(start & 3n);
  for (let i = 0; i < count; lane = 0) {
    philox4x32_10(g0, g1, s0, s1, k0, k1, block);
    for (; lane < 4 && i < count; lane++) out[i++] = block[lane]!;
    g0 = (g0 + 1) >>> 0;
    if (g0 === 0) g1 = (g1 + 1) & 0x3fffffff;
  }
  return out;
}
