// Temporaries and the buffer pool: a buffer the library used for work recorded into an encoder
// that is not yet submitted must not be handed to another op by the pool, or that encoder's work
// overwrites the other op's result when it finally runs (a silent wrong answer).
import { describe, expect, it } from 'vitest';
import { biasDropoutResidual, biasDropoutResidualBackward, dropout, readArray, spatialDropout } from '../src/index.js';
import { MLP, uploadMatrix } from '../src/model.js';
import { spatialNoiseShape } from '../src/ops/index.js';
import { referenceDropout, referenceStructuredDropout } from '../src/reference.js';
import { runtimeOf } from '../src/runtime/context.js';
import { gpuContext, testData } from './gpu.js';

/** A dropout through the context's batch (submitted at once) into a pooled output of `n` f32, checked after `later` runs. */
async function batchDropoutSurvives(ctx: Awaited<ReturnType<typeof gpuContext>>, n: number, later: () => void): Promise<void> {
  const x = testData(n, 77);
  const { output } = await dropout(ctx, ctx.upload(x), { p: 0.5, seed: 9n });
  later();
  expect(Array.from(await readArray(ctx, output, 'f32', n))).toEqual(Array.from(referenceDropout(x, { p: 0.5, seed: 9n })));
}

describe('temporaries and the buffer pool', () => {
  it('retire: back to the pool at once (batch), after `submitted` (own and caller encoders), else never (caller encoder)', async () => {
    const ctx = await gpuContext();
    const batch = ctx.acquire(1028);
    runtimeOf(ctx).transfers.retire(batch);
    expect(ctx.acquire(1028)).toBe(batch);

    const own = runtimeOf(ctx).transfers.ownEncoder('test');
    const deferred = ctx.acquire(1032);
    runtimeOf(ctx).transfers.retire(deferred, own);
    expect(ctx.acquire(1032)).not.toBe(deferred);
    ctx.submitted(own);
    expect(ctx.acquire(1032)).toBe(deferred);

    const callers = ctx.device.createCommandEncoder();
    const left = ctx.acquire(1036);
    const held = ctx.pool.bytes;
    runtimeOf(ctx).transfers.retire(left, callers);
    expect(ctx.pool.bytes).toBe(held - 1036);
    expect(ctx.acquire(1036)).not.toBe(left);
    ctx.release(left); // not the pool's any more: ignored, never reused
    expect(ctx.acquire(1036)).not.toBe(left);

    const submittedLater = ctx.device.createCommandEncoder();
    const back = ctx.acquire(1040);
    runtimeOf(ctx).transfers.retire(back, submittedLater);
    expect(ctx.acquire(1040)).not.toBe(back);
    const counted = ctx.pool.bytes;
    ctx.submitted(submittedLater);
    expect(ctx.pool.bytes).toBe(counted + 1040);
    expect(ctx.acquire(1040)).toBe(back);
    ctx.submitted(submittedLater); // a second call has nothing left to give back
    expect(ctx.acquire(1040)).not.toBe(back);
  });

  it('the bias-gradient partial sums recorded into a caller encoder do not become a later op output', async () => {
    const ctx = await gpuContext();
    const shape = [256, 16];
    const n = 256 * 16;
    const { state } = await biasDropoutResidual(ctx, ctx.upload(testData(n, 1)), ctx.upload(testData(16, 2)), ctx.upload(testData(n, 3)), {
      p: 0.5,
      shape,
      seed: 1n,
    });
    const encoder = ctx.device.createCommandEncoder();
    await biasDropoutResidualBackward(ctx, ctx.upload(testData(n, 4)), state, { encoder });
    // The partial sums: 2 blocks of 128 rows x 16 columns of f32, the size of a 32-element output.
    await batchDropoutSurvives(ctx, 32, () => ctx.device.queue.submit([encoder.finish()]));
  });

  it('the mask table of a SpatialDropout recorded into a caller encoder does not become a later op output', async () => {
    const ctx = await gpuContext({ maskTables: { minElements: 0, minReuse: 1 } });
    const shape = [4, 8, 5, 5];
    const x = testData(800, 8);
    const encoder = ctx.device.createCommandEncoder();
    const { output } = await spatialDropout(ctx, ctx.upload(x), { p: 0.5, shape, layout: 'channels-first', seed: 2n, encoder });
    // The table: 4 x 8 words, the size of a 32-element output.
    await batchDropoutSurvives(ctx, 32, () => ctx.device.queue.submit([encoder.finish()]));
    const want = referenceStructuredDropout(x, {
      p: 0.5,
      shape,
      noiseShape: spatialNoiseShape(shape, { layout: 'channels-first' }),
      seed: 2n,
    });
    expect(Array.from(await readArray(ctx, output, 'f32', 800))).toEqual(Array.from(want));
  });

  it('an MLP step recorded into a caller encoder leaves its activations out of the pool until then', async () => {
    const ctx = await gpuContext();
    const rows = 4;
    const mlp = new MLP(ctx, { sizes: [2, 8, 1], dropout: 0.2, seed: 3 });
    const x = uploadMatrix(ctx, testData(rows * 2, 5), rows, 2);
    const y = uploadMatrix(ctx, testData(rows, 6), rows, 1);
    const encoder = ctx.device.createCommandEncoder();
    await mlp.trainStep(x, y, { loss: 'mse', encoder });
    // The hidden activations and their gradients: 4 rows x 8 f32, the size of a 32-element output.
    await batchDropoutSurvives(ctx, rows * 8, () => ctx.device.queue.submit([encoder.finish()]));
    mlp.destroy();
  });

  it('a training loop on caller encoders reuses its temporaries once each encoder is reported submitted, with the same result', async () => {
    const ctx = await gpuContext();
    const rows = 16;
    const x = uploadMatrix(ctx, testData(rows * 3, 11), rows, 3);
    const y = uploadMatrix(ctx, testData(rows, 12), rows, 1);
    const mlp = (): MLP => new MLP(ctx, { sizes: [3, 16, 8, 1], dropout: 0.3, seed: 5 });
    const batched = mlp();
    for (let step = 0; step < 4; step++) await batched.trainStep(x, y, { loss: 'mse' });
    const want = await batched.getParameters();
    batched.destroy();

    /** Four steps on caller encoders; the pool's allocations made by each step after the first. */
    const loop = async (report: boolean): Promise<{ parameters: Float32Array; laterAllocations: number[] }> => {
      const model = mlp();
      const laterAllocations: number[] = [];
      for (let step = 0; step < 4; step++) {
        const before = ctx.pool.allocations;
        const encoder = ctx.device.createCommandEncoder();
        await model.trainStep(x, y, { loss: 'mse', encoder });
        ctx.device.queue.submit([encoder.finish()]);
        if (report) ctx.submitted(encoder);
        if (step > 0) laterAllocations.push(ctx.pool.allocations - before);
      }
      const parameters = await model.getParameters();
      model.destroy();
      return { parameters, laterAllocations };
    };
    const reported = await loop(true);
    expect(reported.laterAllocations).toEqual([0, 0, 0]);
    expect(Array.from(reported.parameters)).toEqual(Array.from(want));
    // Without `submitted` every step allocates its activations afresh (freed only by GC).
    const unreported = await loop(false);
    for (const n of unreported.laterAllocations) expect(n).toBeGreaterThan(0);
    expect(Array.from(unreported.parameters)).toEqual(Array.from(want));
  });

  it('mask tables and bias-gradient partials recorded into caller encoders come back with `submitted`', async () => {
    const ctx = await gpuContext({ maskTables: { minElements: 0, minReuse: 1 } });
    const shape = [4, 8, 5, 5];
    const n = 800;
    const x = ctx.upload(testData(n, 13));
    const bias = ctx.upload(testData(25, 14));
    const dy = ctx.upload(testData(n, 15));
    const { state } = await biasDropoutResidual(ctx, x, bias, ctx.upload(testData(n, 16)), { p: 0.5, shape: [32, 25], seed: 4n });
    const allocationsPerStep: number[] = [];
    for (let step = 0; step < 3; step++) {
      const before = ctx.pool.allocations;
      const encoder = ctx.device.createCommandEncoder();
      const spatial = await spatialDropout(ctx, x, { p: 0.5, shape, layout: 'channels-first', seed: 2n, stream: 7n, encoder });
      const grads = await biasDropoutResidualBackward(ctx, dy, state, { encoder });
      ctx.device.queue.submit([encoder.finish()]);
      ctx.submitted(encoder);
      const want = referenceStructuredDropout(testData(n, 13), {
        p: 0.5,
        shape,
        noiseShape: spatialNoiseShape(shape, { layout: 'channels-first' }),
        seed: 2n,
        stream: 7n,
      });
      expect(Array.from(await readArray(ctx, spatial.output, 'f32', n))).toEqual(Array.from(want));
      for (const b of [spatial.output, grads.dx, grads.dbias]) ctx.release(b);
      allocationsPerStep.push(ctx.pool.allocations - before);
    }
    // The first step allocates; later steps find the outputs, the table and the partials in the pool
    // (readArray's staging buffer included).
    expect(allocationsPerStep[0]).toBeGreaterThan(0);
    expect(allocationsPerStep.slice(1)).toEqual([0, 0]);
  });
});

describe('the pool itself', () => {
  it('a buffer released twice is handed out once', async () => {
    const ctx = await gpuContext();
    const b = ctx.acquire(1044);
    ctx.release(b);
    ctx.release(b);
    expect(ctx.acquire(1044)).not.toBe(ctx.acquire(1044));
  });

  it('poolBytes caps the idle bytes; one buffer acquired and released again is one allocation', async () => {
    const ctx = await gpuContext({ poolBytes: 4096 });
    const base = ctx.pool.bytes;
    const buffers = [ctx.acquire(2048), ctx.acquire(2048), ctx.acquire(2048)];
    for (const b of buffers) ctx.release(b);
    // The third idle buffer would pass the cap: it is destroyed, the two others kept.
    expect(ctx.pool.bytes - base).toBe(4096);
    const allocations = ctx.pool.allocations;
    for (let i = 0; i < 6; i++) ctx.release(ctx.acquire(1024));
    expect(ctx.pool.allocations - allocations).toBe(1);
    expect(ctx.pool.bytes - base).toBe(3072); // idle 2048 + 2048 + 1024 passes the cap: one 2048 goes
  });

  it('peakBytes is the most bytes held at once', async () => {
    const ctx = await gpuContext({ poolBytes: 0 });
    const base = ctx.pool.bytes;
    const a = ctx.acquire(1 << 20);
    const b = ctx.acquire(1 << 19);
    expect(ctx.pool.peakBytes).toBeGreaterThanOrEqual(base + (1 << 20) + (1 << 19));
    ctx.release(a);
    ctx.release(b);
    expect(ctx.pool.bytes).toBe(base);
    expect(ctx.pool.peakBytes).toBeGreaterThanOrEqual(base + (1 << 20) + (1 << 19));
  });
});
