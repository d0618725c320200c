// CPU reference of every op, on the same contract as the GPU kernels (docs/DESIGN.md section 1).
// Tests compare the GPU to these; users can check a mask without a GPU.
import { checkCount, checkProbability, keepRule, type U64 } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { fromHalfBits, toHalfBits } from '../half.js';
import type { Dtype } from '../kernels/shaders.js';
import { arrayGot, checkHostData, checkRandom } from './checks.js';
import { contractWords } from './philox.js';

export { contractWords as referenceWords } from './philox.js';

/** The randomness of a CPU reference call: the (seed, stream, offset) a GPU op used or returned. */
export interface ReferenceRandom {
  /** The 64-bit seed: a bigint or a non-negative safe integer. */
  seed: U64;
  /** The 64-bit stream (default 0). */
  stream?: U64;
  /** Mask index of the first element (default 0). */
  offset?: U64;
}

const INV_2_24 = 2 ** -24;

/** Uniform floats in [0, 1): (word >> 8) * 2^-24, exact in f32. */
export function referenceUniform(count: number, r: ReferenceRandom): Float32Array {
  checkCount(count);
  const { seed, stream, offset } = checkRandom(r);
  const words = contractWords(seed, stream, count, offset);
  return Float32Array.from(words, (w) => (w >>> 8) * INV_2_24);
}

/**
 * Standard normals by Box-Muller on the word pairs (lanes 0,1) and (lanes 2,3) of each group:
 * u1 = ((w0 >> 8) + 1) 2^-24, u2 = (w1 >> 8) 2^-24, r = sqrt(-2 ln u1), theta = pi (2 u2 - 1);
 * lane 0 (or 2) gets r cos theta, lane 1 (or 3) r sin theta. Computed in f64 here; the GPU
 * computes in f32 (with a series for ln u1 near 1) and differs by under 1e-6 * (1 + |z|) on lavapipe
 * (7.6e-7 measured; tests/random.test.ts prints the worst case and allows 1e-5).
 */
export function referenceNormal(count: number, r: ReferenceRandom): Float32Array {
  checkCount(count);
  const { seed, stream, offset: start } = checkRandom(r);
  const lead = Number(start & 3n);
  // Words of whole groups covering the range, so every element sees its pair partner.
  const words = contractWords(seed, stream, Math.ceil((count + lead) / 4) * 4, start - BigInt(lead));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const m = i + lead;
    const base = m - (m % 2);
    const u1 = ((words[base]! >>> 8) + 1) * INV_2_24;
    const u2 = (words[base + 1]! >>> 8) * INV_2_24;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const theta = Math.PI * (2 * u2 - 1);
    out[i] = m % 2 ? radius * Math.sin(theta) : radius * Math.cos(theta);
  }
  return out;
}

/** Keep-mask, 1 = keep: word >= round(p 2^32); p = 0 keeps all, p = 1 none. */
export function referenceKeepMask(count: number, p: number, r: ReferenceRandom): Uint8Array {
  checkCount(count);
  const rule = keepRule(p);
  const { seed, stream, offset } = checkRandom(r); // checked where p needs no words as well
  if (rule.kind !== 'mask') return new Uint8Array(count).fill(rule.kind === 'identity' ? 1 : 0);
  const words = contractWords(seed, stream, count, offset);
  const keep = new Uint8Array(count);
  for (let i = 0; i < count; i++) keep[i] = words[i]! >= rule.threshold ? 1 : 0;
  return keep;
}

/** Packs a keep-mask 32 elements per u32: bit b of word k is element 32k + b. */
export function packMask(keep: Uint8Array): Uint32Array {
  if (!(keep instanceof Uint8Array)) throw new InvalidArgumentError('keep', 'a Uint8Array keep-mask (1 = keep)', arrayGot(keep));
  const out = new Uint32Array(Math.ceil(keep.length / 32));
  for (let i = 0; i < keep.length; i++) if (keep[i]) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

/** A packed keep-mask (bit b of word k is element 32k + b) back to one byte per element, 1 = keep:
 * the first `count` elements. Throws InvalidArgumentError when `bits` holds fewer than `count`. */
export function unpackMask(bits: Uint32Array, count: number): Uint8Array {
  if (!(bits instanceof Uint32Array)) throw new InvalidArgumentError('bits', 'a Uint32Array of packed mask words', arrayGot(bits));
  checkCount(count);
  if (count > bits.length * 32)
    throw new InvalidArgumentError('count', `at most ${bits.length * 32} elements (32 per word of bits)`, count);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (bits[i >>> 5]! >>> (i & 31)) & 1;
  return out;
}

/** f32 data, or f16 data as Uint16Array bit patterns. */
export type HostData = Float32Array | Uint16Array;

/** The options of {@link referenceDropout} and {@link referenceDropoutBackward}: a forward's
 * (seed, stream, offset) and p, plus the data's type. */
export interface ReferenceDropout extends ReferenceRandom {
  /** Drop probability in [0, 1]. */
  p: number;
  /** Default: f16 for Uint16Array data, f32 otherwise. */
  dtype?: Dtype;
}

/**
 * Inverted dropout on the CPU: y = keep ? x * (1 / (1 - p)) : 0, the product taken in f32 with
 * the scale rounded to f32 (as the GPU does), then rounded to f16 for f16 data.
 * Dropped elements are exactly 0 whatever x holds (NaN and infinities included).
 */
export function referenceDropout(x: HostData, opts: ReferenceDropout): HostData {
  return dropoutOf(x, opts, 'x');
}

/** The backward pass is the forward map applied to dy with the forward's state. */
export function referenceDropoutBackward(dy: HostData, opts: ReferenceDropout): HostData {
  return dropoutOf(dy, opts, 'dy');
}

/** referenceDropout of `data`, which errors call `argument`. */
function dropoutOf(data: HostData, opts: ReferenceDropout, argument: string): HostData {
  checkRandom(opts);
  checkProbability(opts.p);
  const dtype = checkHostData(data, opts.dtype, argument);
  // p = 0 is the identity: the bits as they are, NaN payloads included (the GPU copies them).
  if (opts.p === 0) return data.slice();
  return applyKeepMask(data, referenceKeepMask(data.length, opts.p, opts), opts.p, dtype);
}

/** y = keep ? x * scale : 0 for an explicit keep-mask (1 = keep). */
export function applyKeepMask(x: HostData, keep: Uint8Array, p: number, dtype: Dtype): HostData {
  if (dtype === undefined) throw new InvalidArgumentError('dtype', "'f32' or 'f16'", dtype);
  checkHostData(x, dtype, 'x');
  if (!(keep instanceof Uint8Array) || keep.length !== x.length) {
    throw new InvalidArgumentError('keep', `a Uint8Array keep-mask of ${x.length} elements, one per element of x`, arrayGot(keep));
  }
  const rule = keepRule(p);
  const scale = Math.fround(rule.kind === 'mask' ? rule.scale : 1);
  if (dtype === 'f16') {
    const bits = x as Uint16Array;
    return Uint16Array.from(bits, (h, i) => (keep[i] ? toHalfBits(Math.fround(fromHalfBits(h) * scale)) : 0));
  }
  // A plain loop, not Float32Array.from with a callback: several times faster in V8.
  const data = x as Float32Array;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = keep[i] ? data[i]! * scale : 0;
  return out;
}
