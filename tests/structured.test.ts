// Noise-shape (broadcast) dropout and the structured ops over it: SpatialDropout (both layouts),
// DropPath (plain and fused residual), variational dropout and DropConnect, against the CPU
// reference; statistics of the structured decisions; argument errors; the layers.
import { describe, expect, it } from 'vitest';
import {
  alphaDropout,
  bernoulliMask,
  biasDropoutResidual,
  DropConnect,
  Dropout1d,
  Dropout2d,
  Dropout3d,
  type DropoutContext,
  DropPath,
  type Dtype,
  dropConnect,
  dropConnectBackward,
  dropout,
  dropPath,
  dropPathAdd,
  dropPathAddBackward,
  dropPathRates,
  gaussianDropout,
  InvalidArgumentError,
  PhiloxGenerator,
  randomWords,
  readArray,
  type Shape,
  SpatialDropout1D,
  SpatialDropout2D,
  SpatialDropout3D,
  spatialDropout,
  structuredDropout,
  structuredDropoutBackward,
  structuredKeepMask,
  toHalfArray,
  VariationalDropout,
  variationalDropout,
} from '../src/index.js';
import { structuredKernels } from '../src/kernels/structured.js';
import { broadcastTable, dropPathNoiseShape, shapeSize, spatialNoiseShape, variationalNoiseShape } from '../src/ops/index.js';
import { contractWords } from '../src/reference/philox.js';
import { referenceDropPathAdd, referenceMaskIndices, referenceStructuredDropout, referenceStructuredKeep } from '../src/reference.js';
import { runtimeOf } from '../src/runtime/context.js';
import { gpuContext, testData } from './gpu.js';
import {
  data,
  expectClose,
  expectDirectionalDerivative,
  expectInvalidArgument,
  expectUntouched,
  poisonedOut,
  read,
  TABLE_MODES,
} from './structured-helpers.js';

async function gpuKeep(
  ctx: DropoutContext,
  p: number,
  shape: Shape,
  noiseShape: readonly number[] | undefined,
  stream: bigint,
  offset: bigint,
): Promise<Uint32Array> {
  const n = shapeSize(shape);
  const out = poisonedOut(ctx, 'f32', n);
  await structuredKeepMask(ctx, { p, shape, noiseShape, seed: 77n, stream, offset, out });
  return readArray(ctx, out, 'u32', n);
}

const broadcastCases: { shape: number[]; noise: number[] }[] = [
  { shape: [7], noise: [7] },
  { shape: [2, 3, 5], noise: [2, 1, 5] },
  { shape: [3, 4, 5, 3], noise: [3, 4, 1, 1] },
  { shape: [3, 2, 5, 7], noise: [3, 1, 1, 7] },
  { shape: [5, 7], noise: [5, 1] },
  { shape: [5, 7], noise: [1, 7] },
  { shape: [2, 3, 2, 3, 2, 3], noise: [2, 1, 2, 1, 2, 1] },
  { shape: [1, 9, 1, 2], noise: [1, 9, 1, 1] },
  { shape: [], noise: [] },
  { shape: [4, 0, 3], noise: [4, 1, 3] },
];

describe('noise-shape (broadcast) masks', () => {
  it('with noise shape == input shape it is element-wise dropout, word for word', async () => {
    const ctx = await gpuContext();
    for (const shape of [[1], [7], [3, 5, 7], [2, 2, 2, 2, 2, 2, 2, 3]]) {
      const n = shapeSize(shape);
      for (const offset of [0n, 3n, (1n << 33n) + 1n]) {
        for (const stream of [0n, 9n]) {
          const x = ctx.upload(testData(n, 3));
          const a = poisonedOut(ctx, 'f32', n);
          const b = poisonedOut(ctx, 'f32', n);
          await dropout(ctx, x, { p: 0.4, seed: 77n, stream, offset, out: a, count: n });
          await structuredDropout(ctx, x, { p: 0.4, seed: 77n, stream, offset, out: b, shape, noiseShape: shape });
          expect(Array.from(await read(ctx, b, 'f32', n))).toEqual(Array.from(await read(ctx, a, 'f32', n)));
          const core = await bernoulliMask(ctx, { p: 0.4, count: n, seed: 77n, stream, offset });
          expect(Array.from(await gpuKeep(ctx, 0.4, shape, undefined, stream, offset))).toEqual(
            Array.from(await readArray(ctx, core.output, 'u32', n)),
          );
        }
      }
    }
  });

  it('a mask element whose word equals the threshold is kept (keep iff word >= T), with and without a mask table', async () => {
    // A word equal to T has probability 2^-32 per mask element: p is chosen to make it happen.
    // (5, 7) / (5, 1): row r is mask element r; row 1 lies in the vec4 body, row 4 reaches the tail.
    const [shape, noiseShape, stream, offset] = [[5, 7], [5, 1], 12n, 3n] as const;
    const words = contractWords(77n, stream, 5, offset);
    const x = new Float32Array(35).fill(1);
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables });
      for (const row of [1, 4]) {
        for (const [threshold, kept] of [
          [words[row]!, 1],
          [words[row]! + 1, 0],
        ] as const) {
          const p = threshold / 2 ** 32;
          const label = `row ${row}, T = word${kept ? '' : ' + 1'}, maskTables ${JSON.stringify(maskTables)}`;
          const want = referenceStructuredKeep({ p, shape, noiseShape, seed: 77n, stream, offset });
          expect(Array.from(want.subarray(7 * row, 7 * row + 7)), label).toEqual(new Array(7).fill(kept));
          expect(Array.from(await gpuKeep(ctx, p, [...shape], noiseShape, stream, offset)), label).toEqual(Array.from(want));
          const out = poisonedOut(ctx, 'f32', 35);
          await structuredDropout(ctx, ctx.upload(x), {
            p,
            shape: [...shape],
            noiseShape: [...noiseShape],
            seed: 77n,
            stream,
            offset,
            out,
          });
          const y = await read(ctx, out, 'f32', 35);
          expect(
            Array.from(y, (v) => (v !== 0 ? 1 : 0)),
            `structuredDropout, ${label}`,
          ).toEqual(Array.from(want));
        }
      }
    }
  });

  it('broadcast keep-masks match the reference bit for bit (shapes, streams, offsets, rates)', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables });
      for (const { shape, noise } of broadcastCases) {
        for (const [stream, offset] of [
          [0n, 0n],
          [5n, 1n],
          [(1n << 40n) + 3n, (1n << 32n) + 6n],
        ] as const) {
          for (const p of [0, 0.3, 0.75, 1]) {
            const got = await gpuKeep(ctx, p, shape, noise, stream, offset);
            const want = referenceStructuredKeep({ p, shape, noiseShape: noise, seed: 77n, stream, offset });
            expect(Array.from(got), `${shape} / ${noise} p=${p} stream=${stream}`).toEqual(Array.from(want));
          }
        }
      }
    }
  });

  it('pipelines with the table compiled in (specializedShapes) and the generic one agree with the reference', async () => {
    // A new table runs the generic pipeline while its specialization compiles in the background;
    // after settled() the same call runs the specialized one. specializedShapes 0: never; 3: the
    // first three tables of rank >= 2 only (the cap); default: all of these.
    const cases = [
      ...broadcastCases,
      { shape: [2, 3, 700], noise: [2, 1, 700] },
      { shape: [5, 3, 4, 3, 2, 3, 2, 3], noise: [5, 3, 1, 3, 1, 3, 1, 1] },
    ];
    const specializable = cases.filter(({ shape, noise }) => shapeSize(shape) > 0 && broadcastTable(shape, noise)[0]! >= 2).length;
    for (const [options, expected] of [
      [{ specializedShapes: 0 }, 0],
      [{ specializedShapes: 3 }, 3],
      [{}, specializable],
    ] as const) {
      const ctx = await gpuContext({ ...options, maxChunkElements: 2048 });
      for (const { shape, noise } of cases) {
        for (const [stream, offset] of [
          [0n, 0n],
          [7n, 3n],
        ] as const) {
          const want = Array.from(referenceStructuredKeep({ p: 0.5, shape, noiseShape: noise, seed: 77n, stream, offset }));
          const label = `${JSON.stringify(options)} ${shape} / ${noise} offset ${offset}`;
          expect(Array.from(await gpuKeep(ctx, 0.5, shape, noise, stream, offset)), `${label}, first call`).toEqual(want);
          await ctx.settled();
          expect(Array.from(await gpuKeep(ctx, 0.5, shape, noise, stream, offset)), `${label}, after settled()`).toEqual(want);
        }
      }
      // One body pipeline per table, plus a MISALIGNED one (offset 3) and tails where counts are odd.
      if (expected === 0) expect(ctx.specializedPipelines).toBe(0);
      else expect(ctx.specializedPipelines).toBeGreaterThanOrEqual(expected);
    }
  });

  it('a specialization that fails to compile is not tried again; the generic pipeline serves', async () => {
    const ctx = await gpuContext();
    const device = ctx.device;
    const original = device.createComputePipelineAsync;
    let compiles = 0;
    device.createComputePipelineAsync = (descriptor) => {
      compiles++;
      return original.call(device, descriptor);
    };
    try {
      const [shape, noise] = [
        [3, 5, 4],
        [3, 1, 4],
      ];
      const n = shapeSize(shape);
      const run = async () => {
        const out = poisonedOut(ctx, 'f32', n);
        // RANK -1 is no u32: that pipeline's compile is rejected.
        await runtimeOf(ctx).dispatcher.dispatch({
          kernel: structuredKernels.keepMask,
          count: n,
          buffers: { out: { buffer: out, argument: 'out' } },
          rand: { seed: 77n, stream: 4n, offset: 0n },
          threshold: 2 ** 31,
          broadcast: broadcastTable(shape, noise),
          constants: { SPECIALIZED: 1, RANK: -1 },
        });
        return Array.from(await readArray(ctx, out, 'u32', n));
      };
      const want = Array.from(referenceStructuredKeep({ p: 0.5, shape, noiseShape: noise, seed: 77n, stream: 4n }));
      expect(await run()).toEqual(want);
      await ctx.settled();
      const after = compiles;
      expect(await run()).toEqual(want);
      await ctx.settled();
      expect(compiles).toBe(after);
      expect(ctx.specializedPipelines).toBe(0);
    } finally {
      device.createComputePipelineAsync = original;
    }
  });

  it('maskTables decides which calls go through a mask table; bad values are rejected', async () => {
    // Elements, and elements per mask element: (2, 3, 8, 8) / (2, 3, 1, 1) 384 and 64;
    // (5, 7) / (5, 1) 35 and 7; (4, 16, 1024) / (4, 16, 1) 65536 and 1024.
    const cases = [
      { shape: [2, 3, 8, 8], noise: [2, 3, 1, 1], count: 384, reuse: 64 },
      { shape: [5, 7], noise: [5, 1], count: 35, reuse: 7 },
      { shape: [4, 16, 1024], noise: [4, 16, 1], count: 65536, reuse: 1024 },
    ];
    for (const maskTables of [undefined, { minElements: 100, minReuse: 8 }, { minElements: 0 }, false] as const) {
      const ctx = await gpuContext(maskTables === undefined ? {} : { maskTables });
      const policy =
        maskTables === false ? { minElements: Infinity, minReuse: Infinity } : { minElements: 65536, minReuse: 16, ...maskTables };
      const original = ctx.device.createComputePipelineAsync;
      let tablePipelines = 0;
      ctx.device.createComputePipelineAsync = (descriptor) => {
        if (descriptor.compute.constants?.TABLE === 1) tablePipelines++;
        return original.call(ctx.device, descriptor);
      };
      try {
        for (const { shape, noise, count, reuse } of cases) {
          const before = tablePipelines;
          const want = Array.from(referenceStructuredKeep({ p: 0.5, shape, noiseShape: noise, seed: 77n, stream: 1n, offset: 0n }));
          expect(Array.from(await gpuKeep(ctx, 0.5, shape, noise, 1n, 0n))).toEqual(want);
          const label = `${shape} with maskTables ${JSON.stringify(maskTables)}`;
          expect(tablePipelines > before, label).toBe(count >= policy.minElements && reuse >= policy.minReuse);
        }
      } finally {
        ctx.device.createComputePipelineAsync = original;
      }
    }
    for (const [bad, argument] of [
      [true, 'maskTables'],
      [16, 'maskTables'],
      [{ minReuse: 0.5 }, 'maskTables.minReuse'],
      [{ minElements: -1 }, 'maskTables.minElements'],
      [{ minReuse: NaN }, 'maskTables.minReuse'],
    ] as const) {
      await expect(gpuContext({ maskTables: bad as never })).rejects.toThrow(new RegExp(`options\\.${argument.replace('.', '\\.')}:`));
    }
  });

  it('tables that differ only in the outermost extent share one specialized pipeline; a seen shape compiles nothing', async () => {
    const ctx = await gpuContext();
    const original = ctx.device.createComputePipelineAsync;
    const specializedCompiles: string[] = [];
    ctx.device.createComputePipelineAsync = (descriptor) => {
      if (descriptor.compute.constants?.SPECIALIZED === 1) specializedCompiles.push(JSON.stringify(descriptor.compute.constants));
      return original.call(ctx.device, descriptor);
    };
    try {
      const run = async (shape: number[], noise: number[]) => {
        const want = Array.from(referenceStructuredKeep({ p: 0.5, shape, noiseShape: noise, seed: 77n, stream: 2n, offset: 0n }));
        expect(Array.from(await gpuKeep(ctx, 0.5, shape, noise, 2n, 0n)), `${shape} / ${noise}`).toEqual(want);
        await ctx.settled();
      };
      await run([2, 3, 8, 8], [2, 3, 1, 1]);
      expect(specializedCompiles).toHaveLength(1);
      for (const batch of [2, 5, 1, 2]) await run([batch, 3, 8, 8], [batch, 3, 1, 1]);
      expect(specializedCompiles).toHaveLength(1);
      // Same extents, other strides (the mask runs along the other dimension): a table of its own.
      // (Counts stay multiples of 4: an odd tail would compile a specialized tail pipeline too.)
      await run([4, 6], [4, 1]);
      await run([4, 6], [1, 6]);
      await run([8, 6], [1, 6]);
      expect(specializedCompiles).toHaveLength(3);
      expect(ctx.specializedPipelines).toBe(3);
    } finally {
      ctx.device.createComputePipelineAsync = original;
    }
  });

  it('specializedShapes bounds the specializations: later tables fall back to the generic pipeline', async () => {
    const ctx = await gpuContext({ specializedShapes: 2 });
    expect(runtimeOf(ctx).pipelines.claimSpecialization('a')).toBe(true);
    expect(runtimeOf(ctx).pipelines.claimSpecialization('b')).toBe(true);
    expect(runtimeOf(ctx).pipelines.claimSpecialization('c')).toBe(false);
    expect(runtimeOf(ctx).pipelines.claimSpecialization('a')).toBe(true);
    await expect(gpuContext({ specializedShapes: -1 })).rejects.toThrow(/options\.specializedShapes/);
  });

  it('the reference mask index ravels coordinates in the noise shape', () => {
    expect(Array.from(referenceMaskIndices([2, 3, 2], [2, 1, 2]))).toEqual([0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3]);
    expect(Array.from(referenceMaskIndices([2, 3], [1, 3]))).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Array.from(referenceMaskIndices([2, 3], [null, 1]))).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it('structuredDropout matches the reference exactly in f32 and f16, and its backward too', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables });
      const dtypes: Dtype[] = ['f32', 'f16'];
      for (const dtype of dtypes) {
        for (const { shape, noise } of broadcastCases) {
          const n = shapeSize(shape);
          for (const stream of [1n, 12n]) {
            const x = data(n, dtype, 5);
            const out = poisonedOut(ctx, dtype, n);
            const { state } = await structuredDropout(ctx, ctx.upload(x), {
              p: 0.35,
              shape,
              noiseShape: noise,
              seed: 3n,
              stream,
              offset: 2n,
              out,
              dtype,
            });
            const want = referenceStructuredDropout(x, { p: 0.35, shape, noiseShape: noise, seed: 3n, stream, offset: 2n });
            expect(Array.from(await read(ctx, out, dtype, n)), `${dtype} ${shape}`).toEqual(Array.from(want));
            const dy = data(n, dtype, 9);
            const dx = poisonedOut(ctx, dtype, n);
            await structuredDropoutBackward(ctx, ctx.upload(dy), state, { out: dx });
            expect(Array.from(await read(ctx, dx, dtype, n))).toEqual(
              Array.from(referenceStructuredDropout(dy, { p: 0.35, shape, noiseShape: noise, seed: 3n, stream, offset: 2n })),
            );
          }
        }
      }
    }
  });

  it('is the same when the tensor is split into chunks (params.first)', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maxChunkElements: 2048, maskTables });
      for (const [shape, noise] of [
        [
          [3, 1001, 3],
          [3, 1, 3],
        ],
        [
          [2, 3, 1000],
          [2, 3, 1],
        ],
        [[4099], [4099]],
      ] as const) {
        const n = shapeSize(shape);
        const x = testData(n, 2);
        const out = poisonedOut(ctx, 'f32', n);
        await structuredDropout(ctx, ctx.upload(x), { p: 0.5, shape, noiseShape: noise, seed: 11n, stream: 4n, offset: 5n, out });
        expect(Array.from(await read(ctx, out, 'f32', n))).toEqual(
          Array.from(referenceStructuredDropout(x, { p: 0.5, shape, noiseShape: noise, seed: 11n, stream: 4n, offset: 5n })),
        );
      }
    }
  });

  it('backward matches a finite difference of the forward', async () => {
    const ctx = await gpuContext();
    const shape = [3, 5, 7];
    const noise = [3, 1, 7];
    const n = shapeSize(shape);
    const run = async (x: Float32Array) => {
      const out = poisonedOut(ctx, 'f32', n);
      await structuredDropout(ctx, ctx.upload(x), { p: 0.4, shape, noiseShape: noise, seed: 8n, stream: 2n, out });
      return (await read(ctx, out, 'f32', n)) as Float32Array;
    };
    const dy = testData(n, 21);
    const { state } = await structuredDropout(ctx, ctx.upload(testData(n)), { p: 0.4, shape, noiseShape: noise, seed: 8n, stream: 2n });
    const dx = (await read(ctx, await structuredDropoutBackward(ctx, ctx.upload(dy), state), 'f32', n)) as Float32Array;
    await expectDirectionalDerivative(run, testData(n, 1), testData(n, 33), dy, dx);
  });
});

describe('SpatialDropout', () => {
  it('noise shapes for both layouts and explicit axes', () => {
    expect(spatialNoiseShape([2, 3, 4, 5], { layout: 'channels-first' })).toEqual([2, 3, 1, 1]);
    expect(spatialNoiseShape([2, 3, 4, 5], { layout: 'channels-last' })).toEqual([2, 1, 1, 5]);
    expect(spatialNoiseShape([2, 3, 4, 5], { channelAxis: -1 })).toEqual([2, 1, 1, 5]);
    expect(spatialNoiseShape([2, 3, 4], { channelAxis: 2 })).toEqual([2, 1, 4]);
    expect(dropPathNoiseShape([6, 3, 4])).toEqual([6, 1, 1]);
    expect(variationalNoiseShape([2, 9, 4])).toEqual([2, 1, 4]);
    expect(variationalNoiseShape([9, 2, 4], 0)).toEqual([1, 2, 4]);
  });

  it('1D/2D/3D, channels-first and channels-last, match the reference and drop whole channels', async () => {
    const ctx = await gpuContext();
    const shapes = { 1: [3, 5, 7], 2: [2, 5, 3, 7], 3: [2, 3, 3, 2, 5] } as const;
    for (const dims of [1, 2, 3] as const) {
      for (const layout of ['channels-first', 'channels-last'] as const) {
        for (const stream of [0n, 6n, 1n << 35n]) {
          const shape = shapes[dims];
          const n = shapeSize(shape);
          const x = testData(n, dims);
          const out = poisonedOut(ctx, 'f32', n);
          await spatialDropout(ctx, ctx.upload(x), { p: 0.5, shape, layout, seed: 21n, stream, out });
          const got = await read(ctx, out, 'f32', n);
          const noiseShape = spatialNoiseShape(shape, { layout });
          expect(Array.from(got)).toEqual(Array.from(referenceStructuredDropout(x, { p: 0.5, shape, noiseShape, seed: 21n, stream })));
          // Every element of a (sample, channel) shares one decision.
          const index = referenceMaskIndices(shape, noiseShape);
          const decision = new Map<number, boolean>();
          for (let i = 0; i < n; i++) {
            const kept = got[i] !== 0;
            expect(decision.get(index[i]!) ?? kept).toBe(kept);
            decision.set(index[i]!, kept);
          }
          expect(decision.size).toBe(shape[0] * shape[layout === 'channels-first' ? 1 : shape.length - 1]!);
        }
      }
    }
  });

  it('keeps channels at rate 1 - p (within 4 standard errors)', async () => {
    const ctx = await gpuContext();
    for (const [layout, shape] of [
      ['channels-first', [64, 48, 3, 2]],
      ['channels-last', [64, 3, 2, 48]],
    ] as const) {
      for (const p of [0.2, 0.6]) {
        const n = shapeSize(shape);
        const x = new Float32Array(n).fill(1);
        const { output } = await spatialDropout(ctx, ctx.upload(x), { p, shape, layout, seed: 5n, stream: 77n });
        const got = await read(ctx, output, 'f32', n);
        const kept = Array.from(got).filter((v) => v !== 0).length / 6;
        const decisions = 64 * 48;
        const se = Math.sqrt((p * (1 - p)) / decisions);
        expect(Math.abs(kept / decisions - (1 - p))).toBeLessThan(4 * se);
      }
    }
  });

  it('layers: SpatialDropout*D default channels-last, Dropout*d channels-first; eval is the identity', async () => {
    const ctx = await gpuContext();
    const gen = () => new PhiloxGenerator(99n);
    const shape = [2, 3, 4, 5];
    const x = ctx.upload(testData(120));
    const keras = new SpatialDropout2D(ctx, { p: 0.5, generator: gen() });
    const torch = new Dropout2d(ctx, { p: 0.5, generator: gen() });
    const k = await keras.forward(x, { shape });
    const t = await torch.forward(x, { shape });
    expect(k.state.noiseShape).toEqual([2, 1, 1, 5]);
    expect(t.state.noiseShape).toEqual([2, 3, 1, 1]);
    expect(Array.from(await read(ctx, k.output, 'f32', 120))).toEqual(
      Array.from(referenceStructuredDropout(testData(120), { p: 0.5, shape, noiseShape: [2, 1, 1, 5], seed: 99n, stream: 0n })),
    );
    const second = await keras.forward(x, { shape });
    expect(second.state.stream).toBe(1n);
    keras.eval();
    const e = await keras.forward(x, { shape });
    expect(e.output).toBe(x);
    await expect(new SpatialDropout1D(ctx, { p: 0.5 }).forward(x, { shape })).rejects.toThrow(InvalidArgumentError);
    const s3 = new SpatialDropout3D(ctx, { p: 0.5, layout: 'channels-first', generator: gen() });
    expect((await s3.forward(ctx.upload(testData(120)), { shape: [2, 3, 2, 2, 5] })).state.noiseShape).toEqual([2, 3, 1, 1, 1]);
  });
});

describe('DropPath', () => {
  it('one decision per sample, with and without scale_by_keep; fused residual form; backward', async () => {
    for (const maskTables of TABLE_MODES) {
      const ctx = await gpuContext({ maskTables });
      for (const shape of [
        [5, 7],
        [3, 4, 5],
        [9, 1, 3, 3],
      ]) {
        for (const scaleByKeep of [true, false]) {
          for (const stream of [2n, 31n]) {
            const n = shapeSize(shape);
            const x = testData(n, 4);
            const res = testData(n, 8);
            const noiseShape = dropPathNoiseShape(shape);
            const opts = { p: 0.3, shape, seed: 13n, stream, scaleByKeep };
            const out = poisonedOut(ctx, 'f32', n);
            await dropPath(ctx, ctx.upload(x), { ...opts, out });
            const ref = { ...opts, noiseShape };
            expect(Array.from(await read(ctx, out, 'f32', n))).toEqual(Array.from(referenceStructuredDropout(x, ref)));
            const fused = poisonedOut(ctx, 'f32', n);
            const { state } = await dropPathAdd(ctx, ctx.upload(res), ctx.upload(x), { ...opts, out: fused });
            // One rounding of residual + branch * scale may be fused on some GPUs: 1 ulp.
            const want = referenceDropPathAdd(res, x, ref);
            const got = await read(ctx, fused, 'f32', n);
            for (let i = 0; i < n; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(2.4e-7 * (Math.abs(want[i]!) + 1));
            const dy = testData(n, 12);
            const { dresidual, dbranch } = await dropPathAddBackward(ctx, ctx.upload(dy), state);
            expect(Array.from(await read(ctx, dresidual, 'f32', n))).toEqual(Array.from(dy));
            expect(Array.from(await read(ctx, dbranch, 'f32', n))).toEqual(Array.from(referenceStructuredDropout(dy, ref)));
          }
        }
      }
    }
  });

  it('fused form: eval adds, p = 1 returns the residual, and the backward matches a finite difference', async () => {
    const ctx = await gpuContext();
    const shape = [6, 11];
    const n = 66;
    const res = testData(n, 8);
    const x = testData(n, 4);
    const evalOut = await dropPathAdd(ctx, ctx.upload(res), ctx.upload(x), { p: 0.5, shape, training: false });
    expect(Array.from(await read(ctx, evalOut.output, 'f32', n))).toEqual(Array.from(res, (r, i) => Math.fround(r + x[i]!)));
    const all = await dropPathAdd(ctx, ctx.upload(res), ctx.upload(x), { p: 1, shape, seed: 1n });
    expect(Array.from(await read(ctx, all.output, 'f32', n))).toEqual(Array.from(res));
    const run = async (b: Float32Array) => {
      const out = poisonedOut(ctx, 'f32', n);
      await dropPathAdd(ctx, ctx.upload(res), ctx.upload(b), { p: 0.5, shape, seed: 4n, stream: 3n, out });
      return (await read(ctx, out, 'f32', n)) as Float32Array;
    };
    const { state } = await dropPathAdd(ctx, ctx.upload(res), ctx.upload(x), { p: 0.5, shape, seed: 4n, stream: 3n });
    const dy = testData(n, 40);
    const { dbranch } = await dropPathAddBackward(ctx, ctx.upload(dy), state);
    await expectDirectionalDerivative(run, x, testData(n, 41), dy, (await read(ctx, dbranch, 'f32', n)) as Float32Array);
  });

  it('fused form in f16: one f32 computation, one rounding', async () => {
    const ctx = await gpuContext();
    const shape = [7, 3, 5];
    const n = 105;
    const [res, x] = [toHalfArray(testData(n, 8)), toHalfArray(testData(n, 4))];
    const opts = { p: 0.4, shape, seed: 6n, stream: 6n, offset: 3n };
    const out = poisonedOut(ctx, 'f16', n);
    await dropPathAdd(ctx, ctx.upload(res), ctx.upload(x), { ...opts, out, dtype: 'f16' });
    const want = referenceDropPathAdd(res, x, { ...opts, noiseShape: dropPathNoiseShape(shape) });
    expectClose(await read(ctx, out, 'f16', n), want, 2 ** -10, 2 ** -14);
  });

  it('keeps samples at rate 1 - p (within 4 standard errors)', async () => {
    const ctx = await gpuContext();
    const samples = 4096;
    for (const p of [0.1, 0.5]) {
      const { output } = await dropPath(ctx, ctx.upload(new Float32Array(samples * 3).fill(1)), {
        p,
        shape: [samples, 3],
        seed: 9n,
        stream: 1000n,
      });
      const got = await read(ctx, output, 'f32', samples * 3);
      let kept = 0;
      for (let s = 0; s < samples; s++) {
        const row = [got[3 * s], got[3 * s + 1], got[3 * s + 2]];
        expect(new Set(row).size).toBe(1);
        if (row[0] !== 0) kept++;
      }
      expect(Math.abs(kept / samples - (1 - p))).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / samples));
    }
  });

  it('linear per-block rate schedule', () => {
    expect(dropPathRates(0.1, 5)).toEqual([0, 0.025, 0.05, 0.07500000000000001, 0.1]);
    expect(dropPathRates(0.2, 1)).toEqual([0]);
    expect(dropPathRates(0.1, 4)[3]).toBe(0.1); // the last block gets the rate exactly (timm's linspace)
    expect(() => dropPathRates(0.2, 0)).toThrow(InvalidArgumentError);
    expect(() => dropPathRates(1.2, 3)).toThrow(/rate/);
  });

  it('layer: train/eval and the fused form', async () => {
    const ctx = await gpuContext();
    const layer = new DropPath(ctx, { p: 0.5, generator: new PhiloxGenerator(3n), scaleByKeep: false });
    const x = ctx.upload(testData(24));
    const a = await layer.forward(x, { shape: [8, 3] });
    expect(a.state.scale).toBe(1);
    expect(Array.from(await read(ctx, a.output, 'f32', 24))).toEqual(
      Array.from(
        referenceStructuredDropout(testData(24), { p: 0.5, shape: [8, 3], noiseShape: [8, 1], seed: 3n, stream: 0n, scaleByKeep: false }),
      ),
    );
    layer.eval();
    expect((await layer.forward(x, { shape: [8, 3] })).output).toBe(x);
    const added = await layer.forwardAdd(ctx.upload(testData(24, 2)), x, { shape: [8, 3] });
    expect(Array.from(await read(ctx, added.output, 'f32', 24))).toEqual(
      Array.from(testData(24, 2), (r, i) => Math.fround(r + testData(24)[i]!)),
    );
  });

  it('layer: forwardAdd in training honours scaleByKeep (default true)', async () => {
    const ctx = await gpuContext();
    const shape = [8, 3];
    const [res, x] = [testData(24, 2), testData(24, 1)];
    expect(new DropPath(ctx, { p: 0.5 }).scaleByKeep).toBe(true);
    for (const scaleByKeep of [undefined, false, true]) {
      const layer = new DropPath(ctx, {
        p: 0.5,
        generator: new PhiloxGenerator(3n),
        ...(scaleByKeep === undefined ? {} : { scaleByKeep }),
      });
      const { output, state } = await layer.forwardAdd(ctx.upload(res), ctx.upload(x), { shape });
      const want = referenceDropPathAdd(res, x, {
        p: 0.5,
        shape,
        noiseShape: dropPathNoiseShape(shape),
        seed: 3n,
        stream: state.stream,
        scaleByKeep: scaleByKeep ?? true,
      });
      expectClose(await read(ctx, output, 'f32', 24), want, 2.4e-7, 2.4e-7, `scaleByKeep ${scaleByKeep}`);
    }
  });
});

describe('layer defaults', () => {
  it('SpatialDropout1D/2D/3D are channels-last (Keras), Dropout1d/2d/3d channels-first (PyTorch); VariationalDropout time axis 1', async () => {
    const ctx = await gpuContext();
    for (const Layer of [SpatialDropout1D, SpatialDropout2D, SpatialDropout3D])
      expect(new Layer(ctx, { p: 0.2 }).layout, Layer.name).toBe('channels-last');
    for (const Layer of [Dropout1d, Dropout2d, Dropout3d]) expect(new Layer(ctx, { p: 0.2 }).layout, Layer.name).toBe('channels-first');
    expect(new VariationalDropout(ctx, { p: 0.2 }).timeAxis).toBe(1);
  });
});

describe('variational (locked) dropout', () => {
  it('the same mask at every time step, (N, T, F) and time-major (T, N, F)', async () => {
    const ctx = await gpuContext();
    for (const [shape, timeAxis] of [
      [[3, 7, 5], 1],
      [[7, 3, 5], 0],
    ] as const) {
      const n = shapeSize(shape);
      const x = new Float32Array(n).fill(1);
      const out = poisonedOut(ctx, 'f32', n);
      await variationalDropout(ctx, ctx.upload(x), { p: 0.5, shape, timeAxis, seed: 2n, stream: 8n, out });
      const got = await read(ctx, out, 'f32', n);
      expect(Array.from(got)).toEqual(
        Array.from(
          referenceStructuredDropout(x, { p: 0.5, shape, noiseShape: variationalNoiseShape(shape, timeAxis), seed: 2n, stream: 8n }),
        ),
      );
      const [a, b, c] = shape;
      for (let i = 0; i < a; i++) {
        for (let j = 0; j < b; j++) {
          for (let k = 0; k < c; k++) {
            const t0 = timeAxis === 1 ? i * b * c + k : j * c + k;
            expect(got[i * b * c + j * c + k]).toBe(got[t0]);
          }
        }
      }
    }
    const layer = new VariationalDropout(ctx, { p: 0.25, timeAxis: 0, generator: new PhiloxGenerator(1n) });
    expect((await layer.forward(ctx.upload(testData(30)), { shape: [5, 2, 3] })).state.noiseShape).toEqual([1, 2, 3]);
  });
});

describe('DropConnect', () => {
  it('masks the weight with a fresh stream per forward; dW through the same mask', async () => {
    const ctx = await gpuContext();
    const rows = 5;
    const cols = 13;
    const n = rows * cols;
    const w = testData(n, 17);
    const weight = ctx.upload(w);
    const layer = new DropConnect(ctx, rows, cols, { p: 0.3, generator: new PhiloxGenerator(45n, 10n) });
    const first = await layer.forward(weight);
    const second = await layer.forward(weight);
    expect([first.state.stream, second.state.stream]).toEqual([10n, 11n]);
    const m1 = await read(ctx, first.output, 'f32', n);
    const m2 = await read(ctx, second.output, 'f32', n);
    expect(Array.from(m1)).toEqual(Array.from(referenceStructuredDropout(w, { p: 0.3, shape: [rows, cols], seed: 45n, stream: 10n })));
    expect(Array.from(m1)).not.toEqual(Array.from(m2));
    // A linear layer using the masked weight: y = W_masked x, so dW = dy x^T * mask / (1 - p).
    const dMasked = testData(n, 18);
    const dW = await read(ctx, await layer.backward(ctx.upload(dMasked), first.state), 'f32', n);
    expect(Array.from(dW)).toEqual(
      Array.from(referenceStructuredDropout(dMasked, { p: 0.3, shape: [rows, cols], seed: 45n, stream: 10n })),
    );
    const direct = await dropConnect(ctx, weight, { p: 0.3, rows, cols, seed: 45n, stream: 10n });
    expect(Array.from(await read(ctx, direct.output, 'f32', n))).toEqual(Array.from(m1));
    expect(Array.from(await read(ctx, await dropConnectBackward(ctx, ctx.upload(dMasked), direct.state), 'f32', n))).toEqual(
      Array.from(dW),
    );
    layer.eval();
    expect((await layer.forward(weight)).output).toBe(weight);
    // Column-wise DropConnect (drop whole input connections) through the noise shape.
    const cw = await dropConnect(ctx, weight, { p: 0.5, rows, cols, noiseShape: [1, cols], seed: 1n });
    const got = await read(ctx, cw.output, 'f32', n);
    for (let c = 0; c < cols; c++) for (let r = 1; r < rows; r++) expect(got[r * cols + c] === 0).toBe(got[c] === 0);
  });
});

describe('argument errors (thrown before anything is written)', () => {
  it('names noiseShape, channelAxis, layout, p, shape and the buffers', async () => {
    const ctx = await gpuContext();
    const out = poisonedOut(ctx, 'f32', 60);
    const x = ctx.upload(testData(60));
    const shape = [3, 4, 5];
    await expectInvalidArgument(() => structuredDropout(ctx, x, { p: 0.5, shape, noiseShape: [3, 2, 5], out }), 'noiseShape');
    await expectInvalidArgument(() => structuredDropout(ctx, x, { p: 0.5, shape, noiseShape: [3, 5], out }), 'noiseShape');
    await expectInvalidArgument(() => spatialDropout(ctx, x, { p: 0.5, shape, channelAxis: 3, out }), 'channelAxis');
    await expectInvalidArgument(() => spatialDropout(ctx, x, { p: 0.5, shape, channelAxis: 0, out }), 'channelAxis');
    await expectInvalidArgument(() => spatialDropout(ctx, x, { p: 0.5, shape, channelAxis: -3, out }), 'channelAxis');
    await expectInvalidArgument(
      () => spatialDropout(ctx, x, { p: 0.5, shape, channelAxis: 1, layout: 'channels-last', out }),
      'channelAxis',
    );
    await expectInvalidArgument(() => spatialDropout(ctx, x, { p: 0.5, shape, layout: 'nhwc' as never, out }), 'layout');
    await expectInvalidArgument(() => spatialDropout(ctx, x, { p: 0.5, shape, out }), 'layout');
    await expectInvalidArgument(() => spatialDropout(ctx, x, { p: 0.5, shape: [60], layout: 'channels-first', out }), 'shape');
    await expectInvalidArgument(() => variationalDropout(ctx, x, { p: 0.5, shape, timeAxis: 3, out }), 'timeAxis');
    for (const p of [-0.1, 1.5, NaN]) {
      await expectInvalidArgument(() => structuredDropout(ctx, x, { p, shape, out }), 'p');
      await expectInvalidArgument(() => dropPath(ctx, x, { p, shape, out }), 'p');
      await expectInvalidArgument(() => spatialDropout(ctx, x, { p, shape, layout: 'channels-first', out }), 'p');
    }
    await expectInvalidArgument(() => structuredDropout(ctx, x, { p: 0.5, shape: [3, 4, 6], out }), 'x');
    await expectInvalidArgument(() => structuredDropout(ctx, x, { p: 0.5, shape: [3, -4, 5], out }), 'shape');
    await expectInvalidArgument(() => structuredDropout(ctx, x, { p: 0.5, shape: [1, 1, 1, 1, 1, 1, 1, 1, 60], out }), 'shape');
    await expectInvalidArgument(() => structuredDropout(ctx, x, { p: 0.5, shape, out: x }), 'out');
    await expectInvalidArgument(() => dropPathAdd(ctx, x, x, { p: 0.5, shape, out }), 'residual');
    await expectInvalidArgument(() => dropConnect(ctx, x, { p: 0.5, rows: 7, cols: 9, out }), 'weight');
    await expectInvalidArgument(() => structuredDropoutBackward(ctx, x, { op: 'gaussian' } as never, { out }), 'state');
    const { state } = await structuredDropout(ctx, x, { p: 0.5, shape, seed: 1n });
    await expectInvalidArgument(() => structuredDropoutBackward(ctx, x, { ...state, dtype: 'f8' as Dtype }, { out }), 'state.dtype');
    await expectInvalidArgument(() => structuredDropoutBackward(ctx, x, { ...state, training: 'no' as never }, { out }), 'state.training');
    await expectUntouched(ctx, out);
    expect(() => new DropConnect(ctx, -1, 9, { p: 0.5 })).toThrow(/rows: expected a positive integer/);
    expect(() => new DropConnect(ctx, 7, 2.5, { p: 0.5 })).toThrow(/cols: expected a positive integer/);
    // The CPU reference names a shape that does not fit its data, as the GPU ops do.
    expect(() => referenceStructuredDropout(new Float32Array(5), { p: 0.5, seed: 1n, shape: [2, 3] })).toThrow(InvalidArgumentError);
    expect(() => referenceStructuredDropout(new Float32Array(5), { p: 0.5, seed: 1n, shape: [2, 3] })).toThrow(
      /^shape: expected a shape holding the data's 5 elements, got \[2, 3\]$/,
    );
  });
});

describe('rejected calls', () => {
  it('reject their promise (never throw synchronously) and take no stream from the generator', async () => {
    const ctx = await gpuContext();
    const shape = [3, 4, 5];
    const x = ctx.upload(testData(60));
    const other = ctx.upload(testData(60, 2));
    const small = ctx.acquire(16);
    const generator = new PhiloxGenerator(5n, 40n);
    const calls: [string, () => Promise<unknown>][] = [
      ['out', () => dropout(ctx, x, { p: 0.5, out: small, generator })],
      ['out', () => randomWords(ctx, { count: 60, out: small, generator })],
      ['out', () => bernoulliMask(ctx, { count: 6000, p: 0.5, out: small, generator })],
      ['out', () => structuredDropout(ctx, x, { p: 0.5, shape, out: small, generator })],
      ['layout', () => spatialDropout(ctx, x, { p: 0.5, shape, layout: 'nhwc' as never, generator })],
      ['p', () => dropPath(ctx, x, { p: 2, shape, generator })],
      ['timeAxis', () => variationalDropout(ctx, x, { p: 0.5, shape, timeAxis: 3, generator })],
      ['residual', () => dropPathAdd(ctx, small, x, { p: 0.5, shape, generator })],
      ['residual', () => dropPathAdd(ctx, x, x, { p: 0.5, shape, generator })],
      ['out', () => dropPathAdd(ctx, other, x, { p: 0.5, shape, out: other, generator })],
      ['weight', () => dropConnect(ctx, x, { p: 0.5, rows: 7, cols: 9, generator })],
      ['out', () => gaussianDropout(ctx, x, { p: 0.5, shape, out: small, generator })],
      ['out', () => alphaDropout(ctx, x, { p: 0.5, shape, out: small, generator })],
      ['bias', () => biasDropoutResidual(ctx, x, small, other, { p: 0.5, shape: [3, 20], generator })],
      ['out', () => structuredKeepMask(ctx, { p: 0.5, shape, out: small, generator })],
      ['shape', () => new SpatialDropout1D(ctx, { p: 0.5, generator }).forward(x, { shape: [60] })],
      ['shape', () => new DropPath(ctx, { p: 0.5, generator }).forward(x, { shape: [] })],
      ['shape', () => new DropPath(ctx, { p: 0.5, generator }).forward(x, undefined as never)],
      ['shape', () => new VariationalDropout(ctx, { p: 0.5, generator }).forward(x, undefined as never)],
      ['residual', () => biasDropoutResidual(ctx, x, other, x, { p: 0.5, shape: [3, 20], generator })],
      ['bias', () => biasDropoutResidual(ctx, x, other, other, { p: 0.5, shape: [3, 20], generator })],
    ];
    for (const [argument, call] of calls) {
      let pending: Promise<unknown> | undefined;
      expect(() => (pending = call()), argument).not.toThrow();
      await expectInvalidArgument(() => pending!, argument);
      expect(generator.stream, argument).toBe(40n);
    }
  });
});
