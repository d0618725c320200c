// CPU reference of the structured and variant dropout ops, on the same contract as the kernels.
// The mask index is computed here the plain way (unravel the element's coordinates, ravel them in
// the noise shape), independently of the GPU's coalesced broadcast table.
import { checkProbability, keepRule } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { fromHalfBits, toHalfBits } from '../half.js';
import type { Dtype } from '../kernels/shaders.js';
import { alphaDropoutCoefficients } from '../ops/alpha.js';
import { gaussianSigma } from '../ops/gaussian.js';
import { checkShape, type NoiseShape, resolveNoiseShape, type Shape, shapeSize } from '../ops/shape.js';
import { arrayGot, checkHostData, checkRandom } from './checks.js';
import { type HostData, type ReferenceRandom, referenceNormal } from './dropout.js';
import { contractWords } from './philox.js';

/** The options of the structured and variant CPU references: a GPU op's (seed, stream, offset), p and shapes. */
export interface ReferenceStructured extends ReferenceRandom {
  /** Drop probability: in [0, 1], or [0, 1) for the Gaussian and Alpha references. */
  p: number;
  /** Shape of the input (default: one dimension). */
  shape?: Shape;
  /** Mask shape: the input's with some dimensions 1 (null: the input's extent); default the input's. */
  noiseShape?: NoiseShape;
  /** Default: f16 for Uint16Array data, f32 otherwise. */
  dtype?: Dtype;
}

/** Mask index of every element: its coordinates in `shape`, raveled in `noiseShape` (0 where broadcast). */
export function referenceMaskIndices(shape: Shape, noiseShape?: NoiseShape): Uint32Array {
  const s = checkShape(shape);
  const noise = resolveNoiseShape(s, noiseShape);
  const rank = s.length;
  const noiseStrides = new Array<number>(rank).fill(0);
  for (let k = rank - 1, stride = 1; k >= 0; k--) {
    noiseStrides[k] = noise[k] === 1 ? 0 : stride;
    stride *= noise[k]!;
  }
  const out = new Uint32Array(shapeSize(s));
  const coord = new Array<number>(rank).fill(0);
  for (let e = 0; e < out.length; e++) {
    let m = 0;
    for (let k = 0; k < rank; k++) m += coord[k]! * noiseStrides[k]!;
    out[e] = m;
    for (let k = rank - 1; k >= 0; k--) {
      if (++coord[k]! < s[k]!) break;
      coord[k] = 0;
    }
  }
  return out;
}

function resolved(count: number, opts: ReferenceStructured): { shape: number[]; noise: number[]; indices: Uint32Array } {
  const shape = checkShape(opts.shape ?? [count]);
  if (shapeSize(shape) !== count) throw new InvalidArgumentError('shape', `a shape holding the data's ${count} elements`, shape);
  const noise = resolveNoiseShape(shape, opts.noiseShape);
  return { shape, noise, indices: referenceMaskIndices(shape, noise) };
}

/** The broadcast keep-mask (1 = keep), one entry per element of `shape`. */
export function referenceStructuredKeep(opts: ReferenceStructured & { shape: Shape }): Uint8Array {
  const { seed, stream, offset } = checkRandom(opts);
  const count = shapeSize(checkShape(opts.shape));
  const { noise, indices } = resolved(count, opts);
  const rule = keepRule(opts.p);
  if (rule.kind !== 'mask') return new Uint8Array(count).fill(rule.kind === 'identity' ? 1 : 0);
  const words = contractWords(seed, stream, shapeSize(noise), offset);
  return Uint8Array.from(indices, (m) => (words[m]! >= rule.threshold ? 1 : 0));
}

/** The options object and the data checked (see checkHostData): the data's dtype. */
function begin(x: unknown, opts: ReferenceStructured, argument: string): Dtype {
  checkRandom(opts);
  return checkHostData(x, opts.dtype, argument);
}

/** Another array of the call (residual, bias): the data's type and `length` elements. */
function checkPartner(a: unknown, dtype: Dtype, length: number, argument: string, what: string): void {
  checkHostData(a, dtype, argument);
  if ((a as HostData).length !== length) throw new InvalidArgumentError(argument, `${length} elements (${what})`, arrayGot(a));
}

/** A shape of rank >= 1 (..., C): the fused bias op's. */
function checkColumns(shape: number[]): number {
  if (shape.length < 1) throw new InvalidArgumentError('shape', 'at least 1 dimension (..., C)', shape);
  return shape[shape.length - 1]!;
}

function values(x: HostData, dtype: Dtype): Float64Array {
  return dtype === 'f16' ? Float64Array.from(x as Uint16Array, fromHalfBits) : Float64Array.from(x as Float32Array);
}

/** f32 results (already f32-rounded) stored as f32, or rounded once more to f16. */
function store(v: ArrayLike<number>, dtype: Dtype): HostData {
  return dtype === 'f16' ? Uint16Array.from(Array.from(v), (u) => toHalfBits(u)) : Float32Array.from(Array.from(v));
}

const f = Math.fround;

/** The scaleByKeep option (default true), type-checked. */
function scaleByKeepOf(opts: { scaleByKeep?: boolean }): boolean {
  const v = opts.scaleByKeep ?? true;
  if (typeof v !== 'boolean') throw new InvalidArgumentError('scaleByKeep', 'a boolean', v);
  return v;
}

/** y = keep ? x * scale : 0, scale = 1 / (1 - p) rounded to f32 (1 without scaleByKeep). */
export function referenceStructuredDropout(x: HostData, opts: ReferenceStructured & { scaleByKeep?: boolean }): HostData {
  return structuredOf(x, opts, 'x');
}

/** The backward pass is the forward map applied to dy with the forward's options. */
export function referenceStructuredDropoutBackward(dy: HostData, opts: ReferenceStructured & { scaleByKeep?: boolean }): HostData {
  return structuredOf(dy, opts, 'dy');
}

/** referenceStructuredDropout of `x`, which errors call `argument`. */
function structuredOf(x: HostData, opts: ReferenceStructured & { scaleByKeep?: boolean }, argument: string): HostData {
  const dtype = begin(x, opts, argument);
  checkProbability(opts.p);
  const scaleByKeep = scaleByKeepOf(opts);
  const { shape } = resolved(x.length, opts);
  const keep = referenceStructuredKeep({ ...opts, shape });
  const rule = keepRule(opts.p);
  // p = 0 is the identity: the bits as they are, NaN payloads included (the GPU copies them).
  if (rule.kind === 'identity') return x.slice();
  const scale = f(rule.kind === 'mask' && scaleByKeep ? rule.scale : 1);
  const v = values(x, dtype);
  return store(
    Array.from(v, (u, i) => (keep[i] ? f(u * scale) : 0)),
    dtype,
  );
}

/** out = residual + (keep ? branch * scale : 0), in f32 steps with one final rounding for f16;
 * DropPath's noise shape (N, 1, ..., 1) goes in opts.noiseShape. */
export function referenceDropPathAdd(
  residual: HostData,
  branch: HostData,
  opts: ReferenceStructured & { scaleByKeep?: boolean },
): HostData {
  const dtype = begin(branch, opts, 'branch');
  checkPartner(residual, dtype, branch.length, 'residual', 'as branch');
  const scaleByKeep = scaleByKeepOf(opts);
  const { shape } = resolved(branch.length, opts);
  const keep = referenceStructuredKeep({ ...opts, shape });
  const rule = keepRule(opts.p);
  const scale = f(rule.kind === 'mask' && scaleByKeep ? rule.scale : 1);
  const [bv, rv] = [values(branch, dtype), values(residual, dtype)];
  return store(
    Array.from(rv, (u, i) => f(u + (keep[i] ? f(bv[i]! * scale) : 0))),
    dtype,
  );
}

/** y = x * (1 + sigma z), z = the contract normal of the element's mask index, in f32 steps. */
export function referenceGaussianDropout(x: HostData, opts: ReferenceStructured): HostData {
  return gaussianOf(x, opts, 'x');
}

/** dx = dy * (1 + sigma z) with the forward's z. */
export function referenceGaussianDropoutBackward(dy: HostData, opts: ReferenceStructured): HostData {
  return gaussianOf(dy, opts, 'dy');
}

/** referenceGaussianDropout of `x`, which errors call `argument`. */
function gaussianOf(x: HostData, opts: ReferenceStructured, argument: string): HostData {
  const dtype = begin(x, opts, argument);
  const { noise, indices } = resolved(x.length, opts);
  const sigma = f(gaussianSigma(opts.p));
  if (opts.p === 0) return x.slice(); // the identity, bits as they are (the GPU copies them)
  const z = referenceNormal(shapeSize(noise), opts);
  const v = values(x, dtype);
  return store(
    Array.from(v, (u, i) => f(u * f(1 + f(sigma * z[indices[i]!]!)))),
    dtype,
  );
}

/** Keras AlphaDropout: y = a (keep ? x : alpha') + b, with a, b and alpha' rounded to f32. */
export function referenceAlphaDropout(x: HostData, opts: ReferenceStructured): HostData {
  const dtype = begin(x, opts, 'x');
  const { shape } = resolved(x.length, opts);
  if (opts.p === 0) return x.slice(); // the identity, bits as they are (the GPU copies them)
  const keep = referenceStructuredKeep({ ...opts, shape });
  const { a, b, alphaPrime } = alphaDropoutCoefficients(opts.p);
  const v = values(x, dtype);
  return store(
    Array.from(v, (u, i) => f(f(f(a) * (keep[i] ? u : f(alphaPrime))) + f(b))),
    dtype,
  );
}

/** dx = keep ? dy * a : 0. */
export function referenceAlphaDropoutBackward(dy: HostData, opts: ReferenceStructured): HostData {
  const dtype = begin(dy, opts, 'dy');
  const { shape } = resolved(dy.length, opts);
  if (opts.p === 0) return dy.slice(); // the identity, bits as they are (the GPU copies them)
  const keep = referenceStructuredKeep({ ...opts, shape });
  const a = f(alphaDropoutCoefficients(opts.p).a);
  const v = values(dy, dtype);
  return store(
    Array.from(v, (u, i) => (keep[i] ? f(u * a) : 0)),
    dtype,
  );
}

/** out = residual + (keep ? (x + bias[c]) * scale : 0), c = the element's last coordinate. */
export function referenceBiasDropoutResidual(x: HostData, bias: HostData, residual: HostData, opts: ReferenceStructured): HostData {
  const dtype = begin(x, opts, 'x');
  const { shape } = resolved(x.length, opts);
  const cols = checkColumns(shape);
  checkPartner(bias, dtype, cols, 'bias', 'the last extent of shape, C');
  checkPartner(residual, dtype, x.length, 'residual', 'as x');
  const keep = referenceStructuredKeep({ ...opts, shape });
  const rule = keepRule(opts.p);
  const scale = f(rule.kind === 'mask' ? rule.scale : 1);
  const [xv, bv, rv] = [values(x, dtype), values(bias, dtype), values(residual, dtype)];
  return store(
    Array.from(xv, (u, i) => f(rv[i]! + (keep[i] ? f(f(u + bv[i % cols]!) * scale) : 0))),
    dtype,
  );
}

/** dx = keep ? dy * scale : 0; dbias = sum of dx over the rows (in f64, then rounded); dresidual = dy. */
export function referenceBiasDropoutResidualBackward(
  dy: HostData,
  opts: ReferenceStructured,
): {
  /** keep ? dy * scale : 0, as dy's type. */
  dx: HostData;
  /** The column sums of dx (C values). */
  dbias: HostData;
  /** `dy` itself. */
  dresidual: HostData;
} {
  const dtype = begin(dy, opts, 'dy');
  const { shape } = resolved(dy.length, opts);
  const cols = checkColumns(shape);
  const dx = referenceStructuredDropoutBackward(dy, { ...opts, shape, dtype });
  const dxv = values(dx, dtype);
  const sums = new Float64Array(cols);
  for (let i = 0; i < dxv.length; i++) sums[i % cols]! += dxv[i]!;
  return { dx, dbias: store(Array.from(sums, f), dtype), dresidual: dy };
}
