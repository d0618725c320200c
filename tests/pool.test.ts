// Temporaries and the buffer pool: a buffer the library used for work recorded into an encoder
// that is not yet submitted must not be handed to another op by the pool, or that encoder's work
// overwrites the other op's result when it finally runs (a silent wrong answer).
import { describe, expect, it } from 'vitest';
import { biasDropoutResidual, biasDropoutResidualBackward, dropout, MLP, readArray, referenceDropout, referenceStructuredDropout, spatialDropout, spatialNoiseShape, uploadMatrix } from '../src/index.js';
import { gpuContext, testData } from './gpu.js';

/** A dropout through the context's batch (submitted at once) into a pooled output of `n` f32, checked after `later` runs. */
async function batchDropoutSurvives(ctx: Awaited<ReturnType<typeof gpuContext>>, n: number, later: () => void): Promise<void> {
  const x = testData(n, 77);
  const { output } = await dropout(ctx, ctx.upload(x), { p: 0.5, seed: 9n });
  later();
  expect(Array.from(await readArray(ctx, output, 'f32', n))).toEqual(Array.from(referenceDropout(x, { p: 0.5, seed: 9n })));
}

describe('temporaries and the buffer pool', () => {
  it('retire: back to the pool at once (batch), after submission (own encoder), never (caller encoder)', async () => {
    const ctx = await gpuContext();
    const batch = ctx.acquire(1028);
    ctx.retire(batch);
    expect(ctx.acquire(1028)).toBe(batch);

    const own = ctx.ownEncoder('test');
    const deferred = ctx.acquire(1032);
    ctx.retire(deferred, own);
    expect(ctx.acquire(1032)).not.toBe(deferred);
    ctx.submittedOwnEncoder(own);
    expect(ctx.acquire(1032)).toBe(deferred);

    const callers = ctx.device.createCommandEncoder();
    const left = ctx.acquire(1036);
    const held = ctx.pool.bytes;
    ctx.retire(left, callers);
    expect(ctx.pool.bytes).toBe(held - 1036);
    expect(ctx.acquire(1036)).not.toBe(left);
    ctx.release(left); // not the pool's any more: ignored, never reused
    expect(ctx.acquire(1036)).not.toBe(left);
  });

  it('the bias-gradient partial sums recorded into a caller encoder do not become a later op output', async () => {
    const ctx = await gpuContext();
    const shape = [256, 16];
    const n = 256 * 16;
    const { state } = await biasDropoutResidual(ctx, ctx.upload(testData(n, 1)), ctx.upload(testData(16, 2)), ctx.upload(testData(n, 3)), { p: 0.5, shape, seed: 1n });
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
    const want = referenceStructuredDropout(x, { p: 0.5, shape, noiseShape: spatialNoiseShape(shape, { layout: 'channels-first' }), seed: 2n });
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
});
