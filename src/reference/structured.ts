// CPU reference of the structured and variant dropout ops, on the same contract as the kernels.
// The mask index is computed here the plain way (unravel the element's coordinates, ravel them in
// the noise shape), independently of the GPU's coalesced broadcast table.
import { checkProbability, keepRule } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { fromHalfBits, toHalfBits } from '../half.js';
import { contractWords } from './philox.js';
import { referenceNormal, type HostData, type ReferenceRandom } from './dropout.js';
import type { Dtype } from '../kernels/shaders.js';
import { alphaDropoutCoefficients } from '../ops/alpha.js';
import { gaussianSigma } from '../ops/gaussian.js';
import { checkShape, resolveNoiseShape, shapeSize, type NoiseShape, type Shape } from '../ops/shape.js';

export interface ReferenceStructured extends ReferenceRandom {
  p: number;
  /** Shape of the input (default: one dimension). */
  shape?: Shape;
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
  const count = shapeSize(checkShape(opts.shape));
  const { noise, indices } = resolved(count, opts);
  const rule = keepRule(opts.p);
  if (rule.kind !== 'mask') return new Uint8Array(count).fill(rule.kind === 'identity' ? 1 : 0);
  const words = contractWords(opts.seed, opts.stream ?? 0n, shapeSize(noise), opts.offset ?? 0n);
  return Uint8Array.from(indices, (m) => (words[m]! >= rule.threshold ? 1 : 0));
}

function dtypeOf(x: HostData, dtype?: Dtype): Dtype {
  return dtype ?? (x instanceof Uint16Array ? 'f16' : 'f32');
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
  checkProbability(opts.p);
  const dtype = dtypeOf(x, opts.dtype);
  const { shape } = resolved(x.length, opts);
  const keep = referenceStructuredKeep({ ...opts, shape });
  const rule = keepRule(opts.p);
  const scale = f(rule.kind === 'mask' && scaleByKeepOf(opts) ? rule.scale : 1);
  const v = values(x, dtype);
  return store(Array.from(v, (u, i) => (keep[i] ? f(u * scale) : 0)), dtype);
}

/** The backward pass is the forward map applied to dy with the forward's options. */
export const referenceStructuredDropoutBackward = referenceStructuredDropout;

/** out = residual + (keep ? branch * scale : 0), in f32 steps with one final rounding for f16;
 * DropPath's noise shape (N, 1, ..., 1) goes in opts.noiseShape. */
export function referenceDropPathAdd(residual: HostData, branch: HostData, opts: ReferenceStructured & { scaleByKeep?: boolean }): HostData {
  const dtype = dtypeOf(branch, opts.dtype);
  const { shape } = resolved(branch.length, opts);
  const keep = referenceStructuredKeep({ ...opts, shape });
  const rule = keepRule(opts.p);
  const scale = f(rule.kind === 'mask' && scaleByKeepOf(opts) ? rule.scale : 1);
  const [bv, rv] = [values(branch, dtype), values(residual, dtype)];
  return store(Array.from(rv, (u, i) => f(u + (keep[i] ? f(bv[i]! * scale) : 0))), dtype);
}

/** y = x * (1 + sigma z), z = the contract normal of the element's mask index, in f32 steps. */
export function referenceGaussianDropout(x: HostData, opts: ReferenceStructured): HostData {
  const dtype = dtypeOf(x, opts.dtype);
  const { noise, indices } = resolved(x.length, opts);
  const sigma = f(gaussianSigma(opts.p));
  const z = referenceNormal(shapeSize(noise), opts);
  const v = values(x, dtype);
  return store(Array.from(v, (u, i) => (opts.p === 0 ? f(u) : f(u * f(1 + f(sigma * z[indices[i]!]!))))), dtype);
}

/** dx = dy * (1 + sigma z) with the forward's z. */
export const referenceGaussianDropoutBackward = referenceGaussianDropout;

/** Keras AlphaDropout: y = a (keep ? x : alpha') + b, with a, b and alpha' rounded to f32. */
export function referenceAlphaDropout(x: HostData, opts: ReferenceStructured): HostData {
  const dtype = dtypeOf(x, opts.dtype);
  const { shape } = resolved(x.length, opts);
  const keep = referenceStructuredKeep({ ...opts, shape });
  const { a, b, alphaPrime } = alphaDropoutCoefficients(opts.p);
  const v = values(x, dtype);
  return store(Array.from(v, (u, i) => f(f(f(a) * (keep[i] ? u : f(alphaPrime))) + f(b))), dtype);
}

/** dx = keep ? dy * a : 0. */
export function referenceAlphaDropoutBackward(dy: HostData, opts: ReferenceStructured): HostData {
  const dtype = dtypeOf(dy, opts.dtype);
  const { shape } = resolved(dy.length, opts);
  const keep = referenceStructuredKeep({ ...opts, shape });
  const a = f(alphaDropoutCoefficients(opts.p).a);
  const v = values(dy, dtype);
  return store(Array.from(v, (u, i) => (keep[i] ? f(u * a) : 0)), dtype);
}

/** out = residual + (keep ? (x + bias[c]) * scale : 0), c = the element's last coordinate. */
export function referenceBiasDropoutResidual(x: HostData, bias: HostData, residual: HostData, opts: ReferenceStructured): HostData {
  const dtype = dtypeOf(x, opts.dtype);
  const { shape } = resolved(x.length, opts);
  const cols = shape[shape.length - 1]!;
  const keep = referenceStructuredKeep({ ...opts, shape });
  const rule = keepRule(opts.p);
  const scale = f(rule.kind === 'mask' ? rule.scale : 1);
  const [xv, bv, rv] = [values(x, dtype), values(bias, dtype), values(residual, dtype)];
  return store(Array.from(xv, (u, i) => f(rv[i]! + (keep[i] ? f(f(u + bv[i % cols]!) * scale) : 0))), dtype);
}

/** dx = keep ? dy * scale : 0; dbias = sum of dx over the rows (in f64, then rounded); dresidual = dy. */
export function referenceBiasDropoutResidualBackward(dy: HostData, opts: ReferenceStructured): { dx: HostData; dbias: HostData; dresidual: HostData } {
  const dtype = dtypeOf(dy, opts.dtype);
  const { shape } = resolved(dy.length, opts);
  const cols = shape[shape.length - 1]!;
  const dx = referenceStructuredDropout(dy, { ...opts, shape, dtype });
  const dxv = values(dx, dtype);
  const sums = new Float64Array(cols);
  for (let i = 0; i < dxv.length; i++) sums[i % cols]! += dxv[i]!;
  return { dx, dbias: store(Array.from(sums, f), dtype), dresidual: dy };
}
