// MC-Dropout on the GPU: statistics against the CPU reference computed from the same per-sample
// masks, sequential vs batched schedules bit for bit, replay of single samples, progress, errors,
// and an end-to-end regression where the predictive variance grows away from the training data.
import { describe, expect, it } from 'vitest';
import { type DropoutContext, InvalidArgumentError } from '../src/index.js';
import {
  DropoutInactiveError,
  type ForwardFn,
  type McDropoutResult,
  MLP,
  mcDropout,
  mcSample,
  readMatrix,
  sampleDropout,
  siteOffset,
  uploadMatrix,
} from '../src/model.js';
import { contractWords } from '../src/reference/philox.js';
import { referenceDropout, referenceKeepMask, referenceMcStats, referenceMlpForward } from '../src/reference.js';
import { gpuContext, testData } from './gpu.js';

function expectClose(got: Float32Array, want: ArrayLike<number>, abs: number, rel: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const tolerance = abs + rel * Math.abs(want[i]!);
    if (!(Math.abs(got[i]! - want[i]!) <= tolerance)) expect.fail(`element ${i}: got ${got[i]}, want ${want[i]} (tolerance ${tolerance})`);
  }
}

function expectIdentical(a: McDropoutResult, b: McDropoutResult): void {
  for (const key of ['mean', 'variance', 'predictiveEntropy', 'expectedEntropy', 'mutualInformation'] as const) {
    expect(a[key] === undefined).toBe(b[key] === undefined);
    if (a[key]) expect(Array.from(a[key]!)).toEqual(Array.from(b[key]!));
  }
}

const SEED = 9n;
const STREAM = 100n;

async function smallModel(ctx: DropoutContext, outputs: number) {
  const sizes = [2, 16, 16, outputs];
  const mlp = new MLP(ctx, { sizes, dropout: 0.3, seed: 17 });
  const rows = 10;
  const xData = testData(rows * 2, 3);
  const x = uploadMatrix(ctx, xData, rows, 2);
  const reference = { sizes, parameters: await mlp.getParameters(), dropout: 0.3 };
  const samplesOnCpu = (T: number) =>
    Array.from({ length: T }, (_, t) => referenceMlpForward(reference, xData, rows, { seed: SEED, stream: STREAM + BigInt(t) }));
  return { mlp, x, rows, samplesOnCpu };
}

describe('mcDropout', () => {
  for (const task of ['regression', 'classification'] as const) {
    it(`${task}: statistics match the CPU reference from the same per-sample masks; batched equals sequential bit for bit`, async () => {
      const ctx = await gpuContext();
      const outputs = task === 'regression' ? 3 : 4;
      const { mlp, x, rows, samplesOnCpu } = await smallModel(ctx, outputs);
      const T = 8;
      const sequential = await mcDropout(ctx, mlp.sampler(), x, { samples: T, task, seed: SEED, stream: STREAM });
      const want = referenceMcStats(samplesOnCpu(T), rows, outputs, task);
      expect([sequential.rows, sequential.cols, sequential.samples]).toEqual([rows, outputs, T]);
      // f32 forward and Welford vs f64 two-pass; measured max abs error: regression mean 7e-7,
      // variance 3.3e-6; classification mean, variance, entropies and BALD 4e-8..1.4e-7.
      expectClose(sequential.mean, want.mean, 1e-5, 1e-4);
      expectClose(sequential.variance, want.variance, 1e-5, 1e-3);
      if (task === 'classification') {
        expectClose(sequential.predictiveEntropy!, want.predictiveEntropy!, 1e-5, 1e-4);
        expectClose(sequential.expectedEntropy!, want.expectedEntropy!, 1e-5, 1e-4);
        expectClose(sequential.mutualInformation!, want.mutualInformation!, 2e-5, 1e-3);
        expect(Math.max(...sequential.mutualInformation!)).toBeGreaterThan(1e-3);
      }
      expect(Math.max(...sequential.variance)).toBeGreaterThan(1e-4);

      const batched = await mcDropout(ctx, mlp.sampler(), x, { samples: T, task, seed: SEED, stream: STREAM, schedule: 'batched' });
      expectIdentical(batched, sequential);
      // Uneven passes (3 + 3 + 2 samples) too.
      const chunked = await mcDropout(ctx, mlp.sampler(), x, {
        samples: T,
        task,
        seed: SEED,
        stream: STREAM,
        schedule: 'batched',
        samplesPerPass: 3,
      });
      expectIdentical(chunked, sequential);
      // A different stream gives different samples.
      const other = await mcDropout(ctx, mlp.sampler(), x, { samples: T, task, seed: SEED, stream: STREAM + 1000n });
      expect(Array.from(other.mean)).not.toEqual(Array.from(sequential.mean));
      mlp.destroy();
    });
  }

  it('replaying sample t reproduces it exactly, alone or as block t of a batched pass', async () => {
    const ctx = await gpuContext();
    const { mlp, x, rows, samplesOnCpu } = await smallModel(ctx, 3);
    const T = 5;
    const forward = mlp.sampler();
    const xValues = await readMatrix(ctx, x);
    const stacked = new Float32Array(rows * 2 * T);
    for (let t = 0; t < T; t++) stacked.set(xValues, t * rows * 2);
    const batchOut = await mlp.forward(uploadMatrix(ctx, stacked, rows * T, 2), { random: { seed: SEED, stream: STREAM, samples: T } });
    const batchValues = await readMatrix(ctx, batchOut);
    const cpu = samplesOnCpu(T);
    for (const t of [0, 3, 4]) {
      const first = await mcSample(ctx, forward, x, { seed: SEED, stream: STREAM, sample: t });
      const again = await mcSample(ctx, forward, x, { seed: SEED, stream: STREAM, sample: t });
      expect(Array.from(again)).toEqual(Array.from(first));
      expect(Array.from(batchValues.subarray(t * rows * 3, (t + 1) * rows * 3))).toEqual(Array.from(first));
      expectClose(first, cpu[t]!, 1e-5, 1e-5);
    }
    mlp.destroy();
  });

  it('takes a forward function of the user’s own built on sampleDropout, in both schedules', async () => {
    const ctx = await gpuContext();
    const rows = 7;
    const cols = 5;
    const p = 0.4;
    const xData = testData(rows * cols, 8);
    const x = uploadMatrix(ctx, xData, rows, cols);
    // y = dropout(x): the simplest stochastic network; its samples are exactly the contract's masks.
    const forward: ForwardFn = async (input, random, encoder) => {
      const bytes = input.rows * input.cols * 4;
      const out = { buffer: ctx.acquire(bytes), rows: input.rows, cols: input.cols };
      encoder.copyBufferToBuffer(input.buffer, 0, out.buffer, 0, bytes);
      await sampleDropout(ctx, out, { p, random, encoder });
      return out;
    };
    const T = 6;
    const samples = Array.from({ length: T }, (_, t) => referenceDropout(xData, { p, seed: 4n, stream: 20n + BigInt(t) }) as Float32Array);
    const want = referenceMcStats(samples, rows, cols, 'regression');
    for (const schedule of ['sequential', 'batched'] as const) {
      const got = await mcDropout(ctx, forward, x, { samples: T, seed: 4n, stream: 20n, schedule });
      expectClose(got.mean, want.mean, 1e-6, 1e-5);
      expectClose(got.variance, want.variance, 1e-6, 1e-4);
    }
  });

  it('sampleDropout over folded samples keeps an element whose word equals the threshold (keep iff word >= T)', async () => {
    // A word equal to T has probability 2^-32 per element: p is chosen to make it happen in sample 1.
    const ctx = await gpuContext();
    const [rows, cols, samples] = [4, 3, 2];
    const perSample = (rows / samples) * cols;
    const random = { seed: 4n, stream: 30n, samples };
    const word = contractWords(4n, 31n, perSample, siteOffset(0))[5]!;
    for (const [threshold, kept] of [
      [word, true],
      [word + 1, false],
    ] as const) {
      const p = threshold / 2 ** 32;
      const x = uploadMatrix(ctx, new Float32Array(rows * cols).fill(1), rows, cols);
      await sampleDropout(ctx, x, { p, random });
      const got = await readMatrix(ctx, x);
      const want = Array.from({ length: samples }, (_, t) =>
        Array.from(referenceKeepMask(perSample, p, { seed: 4n, stream: 30n + BigInt(t), offset: siteOffset(0) })),
      ).flat();
      expect(want[perSample + 5], 'reference').toBe(kept ? 1 : 0);
      expect(
        Array.from(got, (v) => (v !== 0 ? 1 : 0)),
        `T = word${kept ? '' : ' + 1'}`,
      ).toEqual(want);
      ctx.release(x.buffer);
    }
  });

  it('reports progress as (samples done, total) after each pass', async () => {
    const ctx = await gpuContext();
    const { mlp, x } = await smallModel(ctx, 2);
    const calls: [number, number][] = [];
    await mcDropout(ctx, mlp.sampler(), x, { samples: 5, seed: SEED, onProgress: (done, total) => calls.push([done, total]) });
    expect(calls).toEqual([
      [1, 5],
      [2, 5],
      [3, 5],
      [4, 5],
      [5, 5],
    ]);
    calls.length = 0;
    await mcDropout(ctx, mlp.sampler(), x, {
      samples: 5,
      seed: SEED,
      schedule: 'batched',
      samplesPerPass: 2,
      onProgress: (d, t) => calls.push([d, t]),
    });
    expect(calls).toEqual([
      [2, 5],
      [4, 5],
      [5, 5],
    ]);
    mlp.destroy();
  });

  it('gives specific errors: T < 2, an input of the wrong shape, and samples that never differ', async () => {
    const ctx = await gpuContext();
    const { mlp, x } = await smallModel(ctx, 2);
    const forward = mlp.sampler();
    for (const samples of [0, 1, 2.5, -3]) {
      const error = await mcDropout(ctx, forward, x, { samples }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).argument).toBe('samples');
    }
    const wrong = uploadMatrix(ctx, new Float32Array(30), 10, 3);
    await expect(mcDropout(ctx, forward, wrong, { samples: 4 })).rejects.toThrow(/input: expected a matrix with 2 columns, got 10 x 3/);
    await expect(mcDropout(ctx, forward, { buffer: x.buffer, rows: 100, cols: 2 }, { samples: 4 })).rejects.toThrow(
      /input\.buffer: expected a GPUBuffer of at least 800 bytes/,
    );
    await expect(mcDropout(ctx, forward, x, { samples: 4, schedule: 'parallel' as 'batched' })).rejects.toThrow(/schedule/);
    await expect(mcDropout(ctx, {} as ForwardFn, x, { samples: 4 })).rejects.toThrow(/^model: expected an MLP or a function/);
    await expect(mcSample(ctx, forward, x, undefined as never)).rejects.toThrow(
      /^options: expected an object with seed, stream and sample/,
    );

    // Dropout never active: p = 0, or a forward function that ignores its randomness (eval mode).
    const noDropout = new MLP(ctx, { sizes: [2, 8, 2], dropout: 0, seed: 1 });
    await expect(mcDropout(ctx, noDropout.sampler(), x, { samples: 4 })).rejects.toThrow(DropoutInactiveError);
    const evalMode: ForwardFn = (input, _random, encoder) => mlp.predict(input, { encoder });
    for (const schedule of ['sequential', 'batched'] as const) {
      for (const task of ['regression', 'classification'] as const) {
        await expect(mcDropout(ctx, evalMode, x, { samples: 3, schedule, task })).rejects.toThrow(
          /all 3 MC samples were identical: dropout never acted/,
        );
      }
    }
    noDropout.destroy();
    mlp.destroy();
  });

  it('end to end: trained on 1-D regression, predictive variance is larger far from the data than inside it', async () => {
    const ctx = await gpuContext();
    const rows = 48;
    const xs = Float32Array.from({ length: rows }, (_, i) => -1 + (2 * i) / (rows - 1));
    const noise = testData(rows, 31);
    const ys = xs.map((v, i) => Math.sin(3 * v) + 0.025 * noise[i]!);
    const mlp = new MLP(ctx, { sizes: [1, 64, 64, 1], dropout: 0.1, seed: 314, learningRate: 0.01 });
    const x = uploadMatrix(ctx, xs, rows, 1);
    const y = uploadMatrix(ctx, ys, rows, 1);
    for (let step = 0; step < 400; step++) await mlp.trainStep(x, y, { loss: 'mse' });
    const fit = await mlp.evaluate(x, y, { loss: 'mse' });

    const inside = Float32Array.from({ length: 32 }, (_, i) => -0.9 + (1.8 * i) / 31);
    const outside = Float32Array.from({ length: 32 }, (_, i) => (i < 16 ? -4 + (1.5 * i) / 15 : 2.5 + (1.5 * (i - 16)) / 15));
    const grid = uploadMatrix(ctx, [...inside, ...outside], 64, 1);
    const stats = await mcDropout(ctx, mlp, grid, { samples: 64, seed: 5, schedule: 'batched' });
    const meanOf = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const varianceInside = meanOf(stats.variance.subarray(0, 32));
    const varianceOutside = meanOf(stats.variance.subarray(32));
    // Measured (lavapipe): fit 0.0098; mean variance inside 0.0104, outside 0.416 (ratio 39.9); the
    // smallest variance outside 0.165 against the largest inside 0.016. Over 5 model/noise seeds
    // the ratio ranged 22.6..43.9 and the smallest outside was always above the largest inside.
    expect(fit).toBeLessThan(0.05);
    expect(varianceOutside).toBeGreaterThan(10 * varianceInside);
    expect(Math.min(...stats.variance.subarray(32))).toBeGreaterThan(Math.max(...stats.variance.subarray(0, 32)));
    mlp.destroy();
  });
});

describe('mcDropout: edge cases of the statistics, streams and schedule', () => {
  const p = 0.4;
  /** y = dropout(x) on the first row of each sample; the other rows are the input itself, the same in every sample. */
  function partlyConstant(ctx: DropoutContext): ForwardFn {
    return async (input, random, encoder) => {
      const bytes = input.rows * input.cols * 4;
      const out = { buffer: ctx.acquire(bytes), rows: input.rows, cols: input.cols };
      encoder.copyBufferToBuffer(input.buffer, 0, out.buffer, 0, bytes);
      await sampleDropout(ctx, out, { p, random, encoder });
      const perSample = input.rows / random.samples;
      const rowBytes = input.cols * 4;
      for (let s = 0; s < random.samples; s++) {
        const at = (s * perSample + 1) * rowBytes;
        encoder.copyBufferToBuffer(input.buffer, at, out.buffer, at, (perSample - 1) * rowBytes);
      }
      return out;
    };
  }

  it('classification: a class of probability 0 in every sample, and rows that never vary', async () => {
    const ctx = await gpuContext();
    const [rows, cols, T] = [9, 3, 6];
    const xData = testData(rows * cols, 21);
    xData.set([0, 5, -200], 3); // row 1: class 2's softmax probability is exactly 0 in f32 (0 log 0 must be 0)
    const x = uploadMatrix(ctx, xData, rows, cols);
    const got = await mcDropout(ctx, partlyConstant(ctx), x, { samples: T, task: 'classification', seed: 3n, stream: 50n });
    const samples = Array.from({ length: T }, (_, t) => {
      const sample = Float32Array.from(referenceDropout(xData, { p, seed: 3n, stream: 50n + BigInt(t) }) as Float32Array);
      sample.set(xData.subarray(cols), cols);
      return sample;
    });
    const want = referenceMcStats(samples, rows, cols, 'classification');
    expectClose(got.predictiveEntropy!, want.predictiveEntropy!, 1e-5, 1e-4);
    expectClose(got.expectedEntropy!, want.expectedEntropy!, 1e-5, 1e-4);
    // Mutual information is >= 0, and 0 (up to rounding) where the samples never differ.
    for (let r = 0; r < rows; r++) {
      expect(got.mutualInformation![r]!, `row ${r}`).toBeGreaterThanOrEqual(0);
      if (r > 0) expect(got.mutualInformation![r]!, `row ${r}`).toBeLessThan(1e-6);
    }
    for (let e = cols; e < rows * cols; e++) expect(got.variance[e]).toBe(0);
  });

  it('without a seed, a run takes T streams from the context generator and reports the first', async () => {
    const ctx = await gpuContext({ seed: 5n });
    const x = uploadMatrix(ctx, testData(12, 4), 4, 3);
    const s0 = ctx.generator.stream;
    const result = await mcDropout(ctx, partlyConstant(ctx), x, { samples: 4 });
    expect([result.seed, result.stream]).toEqual([5n, s0]);
    expect(ctx.generator.stream).toBe(s0 + 4n);
  });

  it('batched passes are sized by the widest activation (forward.widest), not the input', async () => {
    const ctx = await gpuContext();
    const rows = 4;
    const x = uploadMatrix(ctx, testData(rows * 3, 4), rows, 3);
    const forward = partlyConstant(ctx);
    forward.widest = Math.floor(ctx.device.limits.maxStorageBufferBindingSize / (rows * 4 * 2)); // two samples per pass
    const calls: number[] = [];
    await mcDropout(ctx, forward, x, { samples: 5, seed: 1n, schedule: 'batched', onProgress: (done) => calls.push(done) });
    expect(calls).toEqual([2, 4, 5]);
  });

  it('onProgress comes after the queue reported the pass done', async () => {
    const ctx = await gpuContext();
    const x = uploadMatrix(ctx, testData(12, 4), 4, 3);
    const queue = ctx.device.queue;
    const original = queue.onSubmittedWorkDone;
    let finished = 0;
    queue.onSubmittedWorkDone = () => original.call(queue).then(() => void finished++);
    const seen: number[] = [];
    try {
      await mcDropout(ctx, partlyConstant(ctx), x, { samples: 3, seed: 1n, onProgress: () => seen.push(finished) });
    } finally {
      queue.onSubmittedWorkDone = original;
    }
    expect(seen).toHaveLength(3);
    seen.forEach((waits, k) => expect(waits, `progress call ${k + 1}`).toBeGreaterThanOrEqual(k + 1));
  });
});
