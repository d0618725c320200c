// Gaussian dropout, Alpha dropout and the fused bias + dropout + residual add: against the CPU
// reference (masks bit-exact, values within f32/f16 tolerance), backward against the reference
// and a finite difference, output statistics on standard-normal input, argument errors.
import { describe, expect, it } from 'vitest';
import {
  AlphaDropout,
  alphaDropout,
  alphaDropoutBackward,
  alphaDropoutCoefficients,
  biasDropoutResidual,
  biasDropoutResidualBackward,
  type DropoutContext,
  type Dtype,
  GaussianDropout,
  gaussianDropout,
  gaussianDropoutBackward,
  gaussianSigma,
  InvalidArgumentError,
  PhiloxGenerator,
  type Shape,
} from '../src/index.js';
import { shapeSize } from '../src/ops/index.js';
import {
  referenceAlphaDropout,
  referenceAlphaDropoutBackward,
  referenceBiasDropoutResidual,
  referenceBiasDropoutResidualBackward,
  referenceGaussianDropout,
  referenceMaskIndices,
  referenceNormal,
  referenceStructuredKeep,
} from '../src/reference.js';
import { gpuContext, testData } from './gpu.js';
import {
  asNumbers,
  data,
  expectClose,
  expectDirectionalDerivative,
  expectInvalidArgument,
  expectUntouched,
  moments,
  normalData,
  poisonedOut,
  read,
  TABLE_MODES,
} from './structured-helpers.js';

const F16_RTOL = 2 ** -10;

const cases: { shape: number[]; noise?: number[] }[] = [
  { shape: [1] },
  { shape: [7] },
  { shape: [3, 5, 7] },
  { shape: [4, 3, 5], noise: [4, 1, 5] },
  { shape: [2, 3, 2, 5], noise: [2, 3, 1, 1] },
  { shape: [1031] },
];

async function f32(ctx: DropoutContext, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  return (await read(ctx, buffer, 'f32', n)) as Float32Array;
}

/** The GPU's f32 normals are within NORMAL_TOLERANCE (1 + |z|) of referenceNormal's (as in
 * tests/random.test.ts); y = x (1 + sigma z) inherits |x| sigma times that, plus f16's smallest step. */
const NORMAL_TOLERANCE = 1e-5;
function gaussianTolerance(
  x: Float32Array | Uint16Array,
  opts: { p: number; shape: number[]; noiseShape?: number[]; seed: bigint; stream: bigint; offset: bigint },
): Float64Array {
  const index = referenceMaskIndices(opts.shape, opts.noiseShape);
  const z = referenceNormal(shapeSize(opts.noiseShape ?? opts.shape), opts);
  const sigma = gaussianSigma(opts.p);
  const xs = asNumbers(x);
  return Float64Array.from(xs, (v, i) => NORMAL_TOLERANCE * Math.abs(v) * sigma * (1 + Math.abs(z[index[i]!]!)) + 2 ** -24);
}

describe('Gaussian dropout', () => {
  it('matches the reference (f32 and f16, noise shapes, streams, offsets), backward too', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables });
      const dtypes: Dtype[] = ['f32', 'f16'];
      for (const dtype of dtypes) {
        for (const { shape, noise } of cases) {
          for (const [stream, offset] of [
            [0n, 0n],
            [3n, 5n],
            [1n << 36n, (1n << 33n) + 2n],
          ] as const) {
            const n = shapeSize(shape);
            const opts = { p: 0.4, shape, noiseShape: noise, seed: 19n, stream, offset };
            const x = data(n, dtype, 2);
            const out = poisonedOut(ctx, dtype, n);
            const { state } = await gaussianDropout(ctx, ctx.upload(x), { ...opts, out, dtype });
            const rtol = dtype === 'f16' ? F16_RTOL : 2.4e-7;
            expectClose(
              await read(ctx, out, dtype, n),
              referenceGaussianDropout(x, opts),
              rtol,
              gaussianTolerance(x, opts),
              `${dtype} ${shape}`,
            );
            const dy = data(n, dtype, 3);
            const dx = poisonedOut(ctx, dtype, n);
            await gaussianDropoutBackward(ctx, ctx.upload(dy), state, { out: dx });
            expectClose(
              await read(ctx, dx, dtype, n),
              referenceGaussianDropout(dy, opts),
              rtol,
              gaussianTolerance(dy, opts),
              `backward ${dtype} ${shape}`,
            );
          }
        }
      }
    }
  });

  it('uses the contract normal of each mask index (a broadcast mask shares z)', async () => {
    const ctx = await gpuContext();
    const shape = [3, 4, 6];
    const noise = [3, 1, 6];
    const n = 72;
    const { output } = await gaussianDropout(ctx, ctx.upload(new Float32Array(n).fill(1)), {
      p: 0.5,
      shape,
      noiseShape: noise,
      seed: 6n,
      stream: 2n,
      offset: 1n,
    });
    const got = await f32(ctx, output, n);
    const z = referenceNormal(18, { seed: 6n, stream: 2n, offset: 1n });
    const index = referenceMaskIndices(shape, noise);
    const sigma = gaussianSigma(0.5);
    for (let i = 0; i < n; i++) {
      const zi = z[index[i]!]!;
      expect(Math.abs(got[i]! - (1 + sigma * zi))).toBeLessThan(
        NORMAL_TOLERANCE * sigma * (1 + Math.abs(zi)) + 2.4e-7 * (1 + sigma * Math.abs(zi)),
      );
    }
  });

  it('backward matches a finite difference of the forward', async () => {
    const ctx = await gpuContext();
    const n = 203;
    const opts = { p: 0.3, seed: 4n, stream: 9n };
    const run = async (x: Float32Array) => {
      const out = poisonedOut(ctx, 'f32', n);
      await gaussianDropout(ctx, ctx.upload(x), { ...opts, out });
      return f32(ctx, out, n);
    };
    const { state } = await gaussianDropout(ctx, ctx.upload(testData(n)), opts);
    const dy = testData(n, 5);
    const dx = await f32(ctx, await gaussianDropoutBackward(ctx, ctx.upload(dy), state), n);
    await expectDirectionalDerivative(run, testData(n), testData(n, 6), dy, dx);
  });

  it('on standard-normal input: mean 0 and variance 1 / (1 - p) within 4 standard errors', async () => {
    const ctx = await gpuContext();
    const n = 1 << 16;
    const x = normalData(n, 11);
    for (const p of [0.1, 0.5]) {
      const { output } = await gaussianDropout(ctx, ctx.upload(x), { p, seed: 123n, stream: 40n });
      const m = moments(await f32(ctx, output, n));
      expect(Math.abs(m.mean)).toBeLessThan(4 * m.seMean);
      expect(Math.abs(m.variance - 1 / (1 - p))).toBeLessThan(4 * m.seVariance);
      expect(gaussianSigma(p) ** 2).toBeCloseTo(p / (1 - p), 12);
    }
  });

  it('layer: eval is the identity; p = 0 too', async () => {
    const ctx = await gpuContext();
    const layer = new GaussianDropout(ctx, { p: 0.5, generator: new PhiloxGenerator(2n) });
    const x = ctx.upload(testData(9));
    const a = await layer.forward(x, { shape: [9] });
    const ref = { p: 0.5, shape: [9], seed: 2n, stream: 0n, offset: 0n };
    expectClose(await f32(ctx, a.output, 9), referenceGaussianDropout(testData(9), ref), 2.4e-7, gaussianTolerance(testData(9), ref));
    layer.eval();
    expect((await layer.forward(x, { shape: [9] })).output).toBe(x);
    expect((await gaussianDropout(ctx, x, { p: 0, seed: 1n })).output).toBe(x);
  });

  it('layer: backward in training is gaussianDropoutBackward (the same noise, not a keep-mask)', async () => {
    const ctx = await gpuContext();
    const layer = new GaussianDropout(ctx, { p: 0.3, generator: new PhiloxGenerator(6n) });
    const { state } = await layer.forward(ctx.upload(testData(33)), { shape: [33] });
    const dy = ctx.upload(testData(33, 2));
    const got = await f32(ctx, await layer.backward(dy, state), 33);
    expect(Array.from(got)).toEqual(Array.from(await f32(ctx, await gaussianDropoutBackward(ctx, dy, state), 33)));
  });
});

describe('Alpha dropout', () => {
  it('coefficients are Keras AlphaDropout’s', () => {
    const { a, b, alphaPrime } = alphaDropoutCoefficients(0.2);
    expect(alphaPrime).toBeCloseTo(-1.7580993408473766, 14);
    // keras: a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5; b = -a * alpha_p * rate
    expect(a).toBeCloseTo((0.8 * (1 + 0.2 * alphaPrime ** 2)) ** -0.5, 14);
    expect(b).toBeCloseTo(-a * alphaPrime * 0.2, 14);
  });

  it('matches the reference (f32 and f16); the backward (one product) bit for bit', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables });
      const dtypes: Dtype[] = ['f32', 'f16'];
      for (const dtype of dtypes) {
        for (const { shape, noise } of cases) {
          for (const [stream, offset] of [
            [1n, 0n],
            [8n, 3n],
            [1n << 34n, 7n],
          ] as const) {
            for (const p of [0.1, 0.5]) {
              const n = shapeSize(shape);
              const opts = { p, shape, noiseShape: noise, seed: 29n, stream, offset };
              const x = data(n, dtype, 4);
              const out = poisonedOut(ctx, dtype, n);
              const { state } = await alphaDropout(ctx, ctx.upload(x), { ...opts, out, dtype });
              expectClose(
                await read(ctx, out, dtype, n),
                referenceAlphaDropout(x, opts),
                dtype === 'f16' ? F16_RTOL : 1.2e-7,
                1e-6,
                `${dtype} ${shape}`,
              );
              const dy = data(n, dtype, 5);
              const dx = poisonedOut(ctx, dtype, n);
              await alphaDropoutBackward(ctx, ctx.upload(dy), state, { out: dx });
              expect(Array.from(await read(ctx, dx, dtype, n))).toEqual(Array.from(referenceAlphaDropoutBackward(dy, opts)));
            }
          }
        }
      }
    }
  });

  it("dropped units hold a alpha' + b exactly where the reference mask drops", async () => {
    const ctx = await gpuContext();
    const shape = [5, 3, 7];
    const n = 105;
    const x = testData(n, 8);
    const { output } = await alphaDropout(ctx, ctx.upload(x), { p: 0.4, shape, seed: 3n, stream: 3n });
    const got = await f32(ctx, output, n);
    const keep = referenceStructuredKeep({ p: 0.4, shape, seed: 3n, stream: 3n });
    const { a, b, alphaPrime } = alphaDropoutCoefficients(0.4);
    for (let i = 0; i < n; i++) {
      const want = keep[i] ? a * x[i]! + b : a * alphaPrime + b;
      expect(Math.abs(got[i]! - want)).toBeLessThan(1e-6 * (1 + Math.abs(want)));
    }
  });

  it('backward matches a finite difference of the forward', async () => {
    const ctx = await gpuContext();
    const n = 131;
    const opts = { p: 0.25, seed: 5n, stream: 2n, shape: [n] };
    const run = async (x: Float32Array) => {
      const out = poisonedOut(ctx, 'f32', n);
      await alphaDropout(ctx, ctx.upload(x), { ...opts, out });
      return f32(ctx, out, n);
    };
    const { state } = await alphaDropout(ctx, ctx.upload(testData(n)), opts);
    const dy = testData(n, 9);
    const dx = await f32(ctx, await alphaDropoutBackward(ctx, ctx.upload(dy), state), n);
    await expectDirectionalDerivative(run, testData(n), testData(n, 10), dy, dx);
  });

  it('on standard-normal input: mean 0 and variance 1 within 4 standard errors', async () => {
    const ctx = await gpuContext();
    const n = 1 << 16;
    const x = normalData(n, 12);
    for (const p of [0.05, 0.2, 0.5]) {
      const { output } = await alphaDropout(ctx, ctx.upload(x), { p, seed: 321n, stream: 17n });
      const m = moments(await f32(ctx, output, n));
      expect(Math.abs(m.mean)).toBeLessThan(4 * m.seMean);
      expect(Math.abs(m.variance - 1)).toBeLessThan(4 * m.seVariance);
    }
  });

  it('layer: eval is the identity', async () => {
    const ctx = await gpuContext();
    const layer = new AlphaDropout(ctx, { p: 0.3, generator: new PhiloxGenerator(8n) });
    const x = ctx.upload(testData(10));
    const r = await layer.forward(x, { shape: [2, 5] });
    expect(r.state.op).toBe('alpha');
    layer.eval();
    expect((await layer.forward(x, { shape: [2, 5] })).output).toBe(x);
    expect(await layer.backward(x, { ...r.state, training: false })).toBe(x);
  });
});

describe('fused bias + dropout + residual', () => {
  // Column counts 1, 2 and 3 wrap more than once within one vec4 of elements.
  const shapes: Shape[] = [[7], [3, 5], [2, 3, 13], [17, 64], [5, 1], [6, 2], [5, 3]];

  it('gives the same bits with the column count compiled in (specializedShapes) and read from params', async () => {
    const [specialized, generic] = await Promise.all([gpuContext(), gpuContext({ specializedShapes: 0 })]);
    for (const shape of [...shapes, [4, 3, 1024]]) {
      const n = shapeSize(shape);
      const cols = shape[shape.length - 1]!;
      const opts = { p: 0.3, shape, seed: 5n, stream: 2n, offset: 3n };
      const [x, bias, res] = [testData(n, 1), testData(cols, 2), testData(n, 3)];
      const run = async (ctx: DropoutContext) => {
        const out = poisonedOut(ctx, 'f32', n);
        await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), { ...opts, out });
        return Array.from(await read(ctx, out, 'f32', n));
      };
      await run(specialized); // compiles the specialization in the background
      await specialized.settled();
      const got = await run(specialized);
      expect(got, `${shape}`).toEqual(await run(generic));
      expectClose(Float32Array.from(got), referenceBiasDropoutResidual(x, bias, res, opts), 2.4e-7, 1e-6, `${shape}`);
    }
    expect(specialized.specializedPipelines).toBeGreaterThanOrEqual(shapes.length + 1);
    expect(generic.specializedPipelines).toBe(0);
  });

  it('matches the reference in f32 and f16 (both mask and values), with its backward', async () => {
    const ctx = await gpuContext();
    const dtypes: Dtype[] = ['f32', 'f16'];
    for (const dtype of dtypes) {
      for (const shape of shapes) {
        for (const [stream, offset] of [
          [0n, 0n],
          [14n, 6n],
        ] as const) {
          const n = shapeSize(shape);
          const cols = shape[shape.length - 1]!;
          const opts = { p: 0.3, shape, seed: 101n, stream, offset };
          const [x, bias, res] = [data(n, dtype, 1), data(cols, dtype, 2), data(n, dtype, 3)];
          const out = poisonedOut(ctx, dtype, n);
          const { state } = await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), { ...opts, out, dtype });
          const want = referenceBiasDropoutResidual(x, bias, res, opts);
          const got = await read(ctx, out, dtype, n);
          const rtol = dtype === 'f16' ? F16_RTOL : 2.4e-7;
          expectClose(got, want, rtol, dtype === 'f16' ? 2 ** -14 : 1e-6, `${dtype} ${shape}`);
          // Mask bit for bit: dropped elements are exactly the residual.
          const keep = referenceStructuredKeep(opts);
          const [g, r] = [asNumbers(got), asNumbers(res)];
          for (let i = 0; i < n; i++) if (!keep[i]) expect(g[i]).toBe(r[i]);

          const dy = data(n, dtype, 4);
          const outX = poisonedOut(ctx, dtype, n);
          const outBias = poisonedOut(ctx, dtype, cols);
          const grads = await biasDropoutResidualBackward(ctx, ctx.upload(dy), state, { outX, outBias });
          const ref = referenceBiasDropoutResidualBackward(dy, opts);
          expect(Array.from(await read(ctx, grads.dx, dtype, n))).toEqual(Array.from(ref.dx));
          const absSum = new Float64Array(cols);
          asNumbers(ref.dx).forEach((v, i) => (absSum[i % cols]! += Math.abs(v)));
          const gotBias = asNumbers(await read(ctx, grads.dbias, dtype, cols));
          const wantBias = asNumbers(ref.dbias);
          for (let c = 0; c < cols; c++) {
            const tol = (dtype === 'f16' ? F16_RTOL : 1e-6) * (absSum[c]! + Math.abs(wantBias[c]!)) + 1e-7;
            expect(Math.abs(gotBias[c]! - wantBias[c]!), `dbias ${c}`).toBeLessThanOrEqual(tol);
          }
          expect(Array.from(await read(ctx, grads.dresidual, dtype, n))).toEqual(Array.from(dy));
        }
      }
    }
  });

  it('takes a noise shape (one decision per row here), with and without a mask table', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables, maxChunkElements: 2048 });
      const [shape, noiseShape] = [
        [6, 41, 24],
        [6, 41, 1],
      ]; // 5904 elements: three chunks
      const n = shapeSize(shape);
      const opts = { p: 0.4, shape, noiseShape, seed: 8n, stream: 5n, offset: 3n };
      const [x, bias, res] = [testData(n, 1), testData(24, 2), testData(n, 3)];
      const out = poisonedOut(ctx, 'f32', n);
      const { state } = await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), { ...opts, out });
      expectClose(
        await read(ctx, out, 'f32', n),
        referenceBiasDropoutResidual(x, bias, res, opts),
        2.4e-7,
        1e-6,
        `maskTables ${JSON.stringify(maskTables)}`,
      );
      const dy = testData(n, 4);
      const grads = await biasDropoutResidualBackward(ctx, ctx.upload(dy), state);
      expect(Array.from(await read(ctx, grads.dx, 'f32', n))).toEqual(Array.from(referenceBiasDropoutResidualBackward(dy, opts).dx));
    }
  });

  it('splits into chunks and a multi-block bias reduction without changing anything', async () => {
    const ctx = await gpuContext({ maxChunkElements: 2048 });
    const shape = [301, 23];
    const n = shapeSize(shape);
    const opts = { p: 0.5, shape, seed: 7n, stream: 70n, offset: 1n };
    const [x, bias, res] = [testData(n, 1), testData(23, 2), testData(n, 3)];
    const { output, state } = await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), opts);
    expectClose(await f32(ctx, output, n), referenceBiasDropoutResidual(x, bias, res, opts), 2.4e-7, 1e-6);
    const dy = testData(n, 4);
    const grads = await biasDropoutResidualBackward(ctx, ctx.upload(dy), state);
    const ref = referenceBiasDropoutResidualBackward(dy, opts);
    expect(Array.from(await f32(ctx, grads.dx, n))).toEqual(Array.from(ref.dx));
    expectClose(await f32(ctx, grads.dbias, 23), ref.dbias, 1e-5, 1e-4);
  });

  it('backward matches finite differences for x, bias and residual', async () => {
    const ctx = await gpuContext();
    const shape = [9, 14];
    const n = 126;
    const [x, bias, res] = [testData(n, 1), testData(14, 2), testData(n, 3)];
    const opts = { p: 0.4, shape, seed: 55n, stream: 5n };
    const run = async (xv: Float32Array, bv: Float32Array, rv: Float32Array) => {
      const out = poisonedOut(ctx, 'f32', n);
      await biasDropoutResidual(ctx, ctx.upload(xv), ctx.upload(bv), ctx.upload(rv), { ...opts, out });
      return f32(ctx, out, n);
    };
    const { state } = await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), opts);
    const dy = testData(n, 4);
    const g = await biasDropoutResidualBackward(ctx, ctx.upload(dy), state);
    await expectDirectionalDerivative((v) => run(v, bias, res), x, testData(n, 5), dy, await f32(ctx, g.dx, n));
    await expectDirectionalDerivative((v) => run(x, v, res), bias, testData(14, 6), dy, await f32(ctx, g.dbias, 14));
    await expectDirectionalDerivative((v) => run(x, bias, v), res, testData(n, 7), dy, await f32(ctx, g.dresidual, n));
  });

  it('eval mode adds without dropout; p = 1 gives the residual', async () => {
    const ctx = await gpuContext();
    const shape = [4, 6];
    const [x, bias, res] = [testData(24, 1), testData(6, 2), testData(24, 3)];
    const ev = await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), { p: 0.5, shape, training: false });
    expect(Array.from(await f32(ctx, ev.output, 24))).toEqual(
      Array.from(x, (v, i) => Math.fround(res[i]! + Math.fround(v + bias[i % 6]!))),
    );
    const all = await biasDropoutResidual(ctx, ctx.upload(x), ctx.upload(bias), ctx.upload(res), { p: 1, shape, seed: 1n });
    expect(Array.from(await f32(ctx, all.output, 24))).toEqual(Array.from(res));
    const g = await biasDropoutResidualBackward(ctx, ctx.upload(x), all.state);
    expect(Array.from(await f32(ctx, g.dbias, 6))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('eval-mode backward: dx = dy, dresidual = dy, dbias = the column sums of dy', async () => {
    const ctx = await gpuContext();
    const shape = [4, 6];
    const ev = await biasDropoutResidual(ctx, ctx.upload(testData(24, 1)), ctx.upload(testData(6, 2)), ctx.upload(testData(24, 3)), {
      p: 0.5,
      shape,
      training: false,
    });
    const dy = testData(24, 4);
    const g = await biasDropoutResidualBackward(ctx, ctx.upload(dy), ev.state);
    expect(Array.from(await f32(ctx, g.dx, 24))).toEqual(Array.from(dy));
    expect(Array.from(await f32(ctx, g.dresidual, 24))).toEqual(Array.from(dy));
    const sums = Float32Array.from({ length: 6 }, (_, c) => [0, 1, 2, 3].reduce((s, r) => s + dy[r * 6 + c]!, 0));
    expectClose(await f32(ctx, g.dbias, 6), sums, 1e-6, 1e-6, 'dbias');
  });

  it('the bias gradient is right when a row spans several chunks (maxChunkElements 2048, 5000 columns)', async () => {
    const ctx = await gpuContext({ maxChunkElements: 2048 });
    const shape = [3, 5000];
    const n = 15000;
    const opts = { p: 0.3, shape, seed: 2n, stream: 9n };
    const { state } = await biasDropoutResidual(
      ctx,
      ctx.upload(testData(n, 1)),
      ctx.upload(testData(5000, 2)),
      ctx.upload(testData(n, 3)),
      opts,
    );
    const dy = testData(n, 4);
    const g = await biasDropoutResidualBackward(ctx, ctx.upload(dy), state);
    expectClose(await f32(ctx, g.dbias, 5000), referenceBiasDropoutResidualBackward(dy, opts).dbias, 1e-5, 1e-5, 'dbias');
  });
});

describe('argument errors (thrown before anything is written)', () => {
  it('rates outside the domain, shapes, buffers and states', async () => {
    const ctx = await gpuContext();
    const out = poisonedOut(ctx, 'f32', 24);
    const x = ctx.upload(testData(24));
    const bias = ctx.upload(testData(6));
    const res = ctx.upload(testData(24, 2));
    for (const p of [1, 1.5, -0.5, NaN]) {
      await expectInvalidArgument(() => gaussianDropout(ctx, x, { p, out }), 'p');
      await expectInvalidArgument(() => alphaDropout(ctx, x, { p, out }), 'p');
    }
    await expectInvalidArgument(() => biasDropoutResidual(ctx, x, bias, res, { p: 2, shape: [4, 6], out }), 'p');
    await expectInvalidArgument(() => gaussianDropout(ctx, x, { p: 0.5, shape: [4, 6], noiseShape: [2, 6], out }), 'noiseShape');
    await expectInvalidArgument(() => alphaDropout(ctx, x, { p: 0.5, shape: [4, 7], out }), 'x');
    await expectInvalidArgument(() => biasDropoutResidual(ctx, x, bias, res, { p: 0.5, shape: [3, 8], out }), 'bias');
    await expectInvalidArgument(() => biasDropoutResidual(ctx, x, bias, res, { p: 0.5, shape: [], out }), 'shape');
    await expectInvalidArgument(() => biasDropoutResidual(ctx, x, bias, res, { p: 0.5 } as never), 'shape');
    await expectInvalidArgument(() => biasDropoutResidual(ctx, x, bias, bias, { p: 0.5, shape: [4, 6], out }), 'residual');
    await expectInvalidArgument(() => biasDropoutResidual(ctx, x, bias, res, { p: 0.5, shape: [4, 6], out: res }), 'out');
    const { state } = await gaussianDropout(ctx, x, { p: 0.5, seed: 1n });
    await expectInvalidArgument(() => alphaDropoutBackward(ctx, x, state, { out }), 'state');
    await expectInvalidArgument(() => biasDropoutResidualBackward(ctx, x, state, { outX: out }), 'state');
    const fused = await biasDropoutResidual(ctx, x, bias, res, { p: 0.5, shape: [4, 6], seed: 1n });
    await expectInvalidArgument(() => biasDropoutResidualBackward(ctx, x, fused.state, { outX: ctx.acquire(16) }), 'outX');
    await expectInvalidArgument(() => biasDropoutResidualBackward(ctx, x, fused.state, { outX: x }), 'outX');
    await expectInvalidArgument(() => gaussianDropoutBackward(ctx, x, { ...state, shape: [5, 5], noiseShape: [5, 5] }, { out }), 'dy');
    await expectUntouched(ctx, out);
    expect(() => new GaussianDropout(ctx, { p: 1 })).toThrow(InvalidArgumentError);
    expect(() => new AlphaDropout(ctx, { p: 1 })).toThrow(InvalidArgumentError);
  });
});
