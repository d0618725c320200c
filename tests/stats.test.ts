// Statistical properties of the GPU's random output, tested rather than assumed. Every test uses
// fixed seeds (deterministic), n = 2^20, and a bound of 5 standard errors unless stated: a correct
// generator fails one such check with probability about 6e-7.
import { beforeAll, describe, expect, it } from 'vitest';
import { bernoulliMask, type DropoutContext, dropout, PhiloxGenerator, randomNormal, randomUniform, readArray } from '../src/index.js';
import { unpackMask } from '../src/reference.js';
import { gpuContext, poisoned, testData } from './gpu.js';

const N = 2 ** 20;
const SIGMAS = 5;
const SEED = 0x5151_7a7an;

let ctx: DropoutContext;
beforeAll(async () => {
  ctx = await gpuContext();
});

/** The keep-mask (1 = keep) of n elements for p, through the packed Bernoulli kernel. */
async function keepMask(
  p: number,
  opts: { seed?: bigint; stream?: bigint; generator?: PhiloxGenerator; offset?: bigint },
  n = N,
): Promise<Uint8Array> {
  const out = poisoned(ctx, 4 * Math.ceil(n / 32));
  await bernoulliMask(ctx, { p, count: n, packed: true, out, ...opts });
  const words = await readArray(ctx, out, 'u32', Math.ceil(n / 32));
  ctx.release(out);
  return unpackMask(words, n);
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
}

/** Pearson correlation of a[i] and b[i + lag]. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>, lag = 0): number {
  const n = Math.min(a.length, b.length - lag);
  let sa = 0,
    sb = 0,
    saa = 0,
    sbb = 0,
    sab = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i + lag]!;
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  const cov = sab / n - (sa / n) * (sb / n);
  return cov / Math.sqrt((saa / n - (sa / n) ** 2) * (sbb / n - (sb / n) ** 2));
}

describe('keep rate and scaling', () => {
  for (const p of [0.01, 0.1, 0.3, 0.5, 0.9, 0.99]) {
    it(`p = ${p}: the kept fraction is 1 - p within ${SIGMAS} standard deviations (n = 2^20)`, async () => {
      const kept = mean(await keepMask(p, { seed: SEED, stream: BigInt(Math.round(p * 100)) }));
      const sd = Math.sqrt((p * (1 - p)) / N);
      expect(Math.abs(kept - (1 - p)), `kept ${kept}, expected ${1 - p} +- ${SIGMAS * sd}`).toBeLessThanOrEqual(SIGMAS * sd);
    });
  }

  for (const p of [0.1, 0.5, 0.9]) {
    it(`p = ${p}: dropout preserves the mean, E[y] = E[x] within ${SIGMAS} standard errors`, async () => {
      const x = testData(N, 21).map((v) => v + 5); // in [1, 9): a mean well away from 0
      const out = poisoned(ctx, 4 * N);
      await dropout(ctx, ctx.upload(x), { p, seed: SEED, stream: 1000n + BigInt(p * 10), out });
      const y = await readArray(ctx, out, 'f32', N);
      // Given x, y_i = x_i * B_i / (1 - p) with B_i ~ Bernoulli(1 - p): Var(y_i) = x_i^2 p / (1 - p).
      let sumSq = 0;
      for (const v of x) sumSq += v * v;
      const se = Math.sqrt((sumSq * p) / (1 - p)) / N;
      const diff = mean(y) - mean(x);
      expect(Math.abs(diff), `mean y - mean x = ${diff}, se ${se}`).toBeLessThanOrEqual(SIGMAS * se);
      // Every output is 0 or x_i / (1 - p) (up to f32 rounding of the product).
      const scale = Math.fround(1 / (1 - p));
      expect(y.every((v, i) => v === 0 || v === Math.fround(x[i]! * scale))).toBe(true);
    });
  }
});

describe('independence', () => {
  // Under independence a sample correlation of n pairs has standard deviation ~ 1/sqrt(n).
  const bound = SIGMAS / Math.sqrt(N);

  for (const p of [0.5, 0.1]) {
    it(`p = ${p}: keep indicators at lags 1..4 (same and next Philox block), 5, 8 and 32 are uncorrelated`, async () => {
      const keep = await keepMask(p, { seed: SEED, stream: 77n, offset: 1n });
      for (const lag of [1, 2, 3, 4, 5, 8, 32]) {
        const r = correlation(keep, keep, lag);
        expect(Math.abs(r), `lag ${lag}: r = ${r}`).toBeLessThanOrEqual(bound);
      }
    });
  }

  it('successive streams of one generator, and adjacent seeds, give uncorrelated masks', async () => {
    const gen = new PhiloxGenerator(SEED, 2n ** 32n - 1n);
    const a = await keepMask(0.5, { generator: gen });
    const b = await keepMask(0.5, { generator: gen }); // stream 2^32: the carry into the high word
    expect(gen.stream).toBe(2n ** 32n + 1n);
    const r = correlation(a, b);
    expect(Math.abs(r), `streams 2^32-1 and 2^32: r = ${r}`).toBeLessThanOrEqual(bound);
    const c = await keepMask(0.5, { seed: SEED + 1n, stream: 2n ** 32n - 1n });
    const r2 = correlation(a, c);
    expect(Math.abs(r2), `seeds s and s+1: r = ${r2}`).toBeLessThanOrEqual(bound);
    // Shifted copies: a mask is not a shifted copy of its neighbour stream either.
    for (const lag of [1, 4]) expect(Math.abs(correlation(a, b, lag))).toBeLessThanOrEqual(bound);
  });
});

describe('distributions', () => {
  it(`randomUniform: mean, variance and 64-bin histogram of U[0, 1) within ${SIGMAS} standard errors`, async () => {
    const out = poisoned(ctx, 4 * N);
    await randomUniform(ctx, { count: N, seed: SEED, stream: 5n, out });
    const u = await readArray(ctx, out, 'f32', N);
    expect(u.every((v) => v >= 0 && v < 1)).toBe(true);
    const m = mean(u);
    // Values are k 2^-24 for k uniform in 0..2^24-1: mean 1/2 - 2^-25, variance (1 - 2^-48) / 12.
    const mu = 0.5 - 2 ** -25;
    const variance = (1 - 2 ** -48) / 12;
    expect(Math.abs(m - mu), `mean ${m}`).toBeLessThanOrEqual(SIGMAS * Math.sqrt(variance / N));
    let ss = 0;
    for (const v of u) ss += (v - m) ** 2;
    const v = ss / (N - 1);
    // Var of (U - mu)^2 is 1/80 - 1/144.
    expect(Math.abs(v - variance), `variance ${v}`).toBeLessThanOrEqual(SIGMAS * Math.sqrt((1 / 80 - 1 / 144) / N));
    // Chi-square over 64 equal bins: 63 degrees of freedom, mean 63, sd sqrt(126).
    const bins = new Float64Array(64);
    for (const x of u) bins[Math.floor(x * 64)]!++;
    const expected = N / 64;
    let chi2 = 0;
    for (const b of bins) chi2 += (b - expected) ** 2 / expected;
    expect(chi2, `chi-square ${chi2}`).toBeLessThanOrEqual(63 + SIGMAS * Math.sqrt(126));
  });

  it('randomNormal: mean 0, variance 1, skewness 0, kurtosis 3 within 5 * sqrt(2) standard errors', async () => {
    const out = poisoned(ctx, 4 * N);
    await randomNormal(ctx, { count: N, seed: SEED, stream: 6n, out });
    const z = await readArray(ctx, out, 'f32', N);
    expect(z.every((v) => Number.isFinite(v))).toBe(true);
    let s1 = 0,
      s2 = 0,
      s3 = 0,
      s4 = 0;
    for (const v of z) {
      s1 += v;
      s2 += v * v;
      s3 += v * v * v;
      s4 += v * v * v * v;
    }
    const m = s1 / N;
    const variance = s2 / N - m * m;
    const skew = s3 / N / variance ** 1.5;
    const kurt = s4 / N / variance ** 2;
    // Box-Muller pairs (r cos, r sin) are uncorrelated but not independent; a pair's statistics can
    // at most double the variance of a sum, hence the sqrt(2) on the i.i.d. standard errors.
    const k = SIGMAS * Math.SQRT2;
    expect(Math.abs(m), `mean ${m}`).toBeLessThanOrEqual(k * Math.sqrt(1 / N));
    expect(Math.abs(variance - 1), `variance ${variance}`).toBeLessThanOrEqual(k * Math.sqrt(2 / N));
    expect(Math.abs(skew), `skewness ${skew}`).toBeLessThanOrEqual(k * Math.sqrt(6 / N));
    expect(Math.abs(kurt - 3), `kurtosis ${kurt}`).toBeLessThanOrEqual(k * Math.sqrt(24 / N));
    // Tails: P(|z| > 3) = 0.0026998 (binomial standard error).
    const tail = z.filter((v) => Math.abs(v) > 3).length / N;
    expect(Math.abs(tail - 0.0026998), `P(|z| > 3) = ${tail}`).toBeLessThanOrEqual(k * Math.sqrt((0.0027 * (1 - 0.0027)) / N));
  });
});

describe('the checks above have power (they reject slightly wrong generators)', () => {
  it('a keep rate for p = 0.31 fails the p = 0.3 bound; a 5% lag-1 copy fails the correlation bound', async () => {
    const keep = await keepMask(0.31, { seed: SEED, stream: 31n });
    expect(Math.abs(mean(keep) - 0.7)).toBeGreaterThan(SIGMAS * Math.sqrt((0.3 * 0.7) / N));
    const copied = keep.slice();
    for (let i = 1; i < N; i += 20) copied[i] = copied[i - 1]!;
    expect(Math.abs(correlation(copied, copied, 1))).toBeGreaterThan(SIGMAS / Math.sqrt(N));
  });
});
