// Helpers shared by tests/structured.test.ts and tests/variants.test.ts.
import { expect } from 'vitest';
import { type DropoutContext, type Dtype, fromHalfBits, InvalidArgumentError, readArray, toHalfArray } from '../src/index.js';
import { POISON_WORD, poisoned, testData } from './gpu.js';

export type Host = Float32Array | Uint16Array;

/** Reads `count` elements of `dtype` from a buffer. */
export function read(ctx: DropoutContext, buffer: GPUBuffer, dtype: Dtype, count: number): Promise<Host> {
  return readArray(ctx, buffer, dtype, count);
}

export function asNumbers(x: Host): number[] {
  return x instanceof Uint16Array ? Array.from(x, fromHalfBits) : Array.from(x);
}

/** |got - want| <= atol + rtol * |want| element by element (atol may be per element), with the
 * first failure reported. */
export function expectClose(got: Host, want: Host, rtol: number, atol: number | ArrayLike<number> = 0, label = ''): void {
  const g = asNumbers(got);
  const w = asNumbers(want);
  expect(g.length, label).toBe(w.length);
  for (let i = 0; i < g.length; i++) {
    const tol = (typeof atol === 'number' ? atol : atol[i]!) + rtol * Math.abs(w[i]!);
    if (!(Math.abs(g[i]! - w[i]!) <= tol)) {
      expect.fail(`${label} element ${i}: got ${g[i]}, want ${w[i]} (tolerance ${tol})`);
    }
  }
}

/** A poisoned output of `count` elements of `dtype`. */
export function poisonedOut(ctx: DropoutContext, dtype: Dtype, count: number): GPUBuffer {
  return poisoned(ctx, Math.max(4, count * (dtype === 'f16' ? 2 : 4)));
}

/** Asserts that every word of a poisoned buffer still holds the poison (nothing was written). */
export async function expectUntouched(ctx: DropoutContext, buffer: GPUBuffer): Promise<void> {
  const words = await readArray(ctx, buffer, 'u32', buffer.size / 4);
  expect(words.every((w) => w === POISON_WORD)).toBe(true);
}

/** Standard normal test data (Box-Muller over the tests' own LCG, not the library's RNG). */
export function normalData(n: number, salt = 7): Float32Array {
  const u = testData(2 * n + 2, salt).map((v) => (v + 4) / 8);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u1 = Math.max(u[2 * i]!, 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u[2 * i + 1]!);
  }
  return out;
}

/** Sample mean and variance with their standard errors. */
export function moments(v: ArrayLike<number>): { mean: number; variance: number; seMean: number; seVariance: number } {
  const n = v.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i]!;
  const mean = s / n;
  let m2 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = v[i]! - mean;
    m2 += d * d;
    m4 += d ** 4;
  }
  const variance = m2 / n;
  return { mean, variance, seMean: Math.sqrt(variance / n), seVariance: Math.sqrt(Math.max(m4 / n - variance * variance, 0) / n) };
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Central finite difference of L(x) = sum(dy * f(x)) along v, against sum(dx * v) from the
 * backward pass. The ops are affine in x for a fixed mask, so the difference is exact up to
 * rounding; the tolerance is relative to the magnitudes involved.
 */
export async function expectDirectionalDerivative(
  forward: (x: Float32Array) => Promise<Float32Array>,
  x: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  h = 0.25,
): Promise<void> {
  const plus = await forward(x.map((xi, i) => xi + h * v[i]!));
  const minus = await forward(x.map((xi, i) => xi - h * v[i]!));
  const fd = (dot(dy, plus) - dot(dy, minus)) / (2 * h);
  const analytic = dot(dx, v);
  let scale = 0;
  for (let i = 0; i < dy.length; i++) scale += Math.abs(dy[i]!) * (Math.abs(plus[i]!) + Math.abs(minus[i]!));
  expect(Math.abs(fd - analytic)).toBeLessThanOrEqual(1e-5 * (scale / h) + 1e-6);
  expect(Math.abs(analytic)).toBeGreaterThan(0);
}

/** Test data of `n` values in the given dtype (f16 as bit patterns). */
export function data(n: number, dtype: Dtype, salt = 1): Float32Array | Uint16Array {
  const x = testData(n, salt);
  return dtype === 'f16' ? toHalfArray(x) : x;
}

/** Runs `work` and expects it to reject with an InvalidArgumentError naming `argument`. */
export async function expectInvalidArgument(work: () => Promise<unknown>, argument: string): Promise<void> {
  let error: unknown;
  try {
    await work();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect((error as InvalidArgumentError).argument).toBe(argument);
}

/** ContextOptions.maskTables that send every broadcast mask through a mask table, or none: the
 * two ways a broadcast mask is computed, which must agree bit for bit. */
export const TABLE_MODES = [{ minElements: 0, minReuse: 1 }, false] as const;
