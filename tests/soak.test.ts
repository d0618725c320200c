// A bounded soak (a few seconds): batched calls, calls recorded into caller encoders and refused
// calls (bad arguments, a destroyed buffer, a buffer of another device), round after round. After a
// warm-up the pool must stop allocating: every output, table, staging buffer and refused call's
// buffer comes back. Results are checked against the CPU reference as it goes.
import { describe, expect, it } from 'vitest';
import { bernoulliMask, biasDropoutResidual, DropoutError, dropout, dropoutBackward, readArray, spatialDropout } from '../src/index.js';
import { requestNodeDevice } from '../src/node.js';
import { spatialNoiseShape } from '../src/ops/index.js';
import { referenceDropout, referenceStructuredDropout } from '../src/reference.js';
import { Usage } from '../src/runtime/units.js';
import { gpuContext, testData } from './gpu.js';

const ROUNDS = 60;
const WARM_UP = 10;

describe('soak', () => {
  it('mixed batched, caller-encoder and refused calls: the pool stops allocating after warm-up, no uncaptured error, results exact', async () => {
    const ctx = await gpuContext({ maskTables: { minElements: 0, minReuse: 2 } });
    const other = await requestNodeDevice();
    const uncaptured: string[] = [];
    ctx.device.addEventListener('uncapturederror', (e) => uncaptured.push((e as GPUUncapturedErrorEvent).error.message));
    const n = 3000;
    const shape = [4, 6, 5, 25];
    const xs = testData(n, 1);
    const x = ctx.upload(xs);
    const bias = ctx.upload(testData(25, 2));
    const residual = ctx.upload(testData(n, 3));
    const foreign = other.device.createBuffer({ size: n * 4, usage: Usage.STORAGE | Usage.COPY_SRC });
    const doomed = ctx.upload(xs);
    await ctx.flush();
    doomed.destroy();
    const allocations: number[] = [];
    const bytes: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const seed = BigInt(round);
        // Batched: four ops in one tick, one submission.
        const [a, b, c, d] = await Promise.all([
          dropout(ctx, x, { p: 0.3, seed, mask: true }),
          spatialDropout(ctx, x, { p: 0.5, shape, layout: 'channels-first', seed }),
          bernoulliMask(ctx, { count: n, p: 0.2, packed: true, seed }),
          biasDropoutResidual(ctx, x, bias, residual, { p: 0.1, shape: [120, 25], seed }),
        ]);
        // A caller's encoder: the backward of the first, and another spatial dropout (its table retired into the encoder).
        const encoder = ctx.device.createCommandEncoder();
        const dx = await dropoutBackward(ctx, x, a.state, { mask: a.mask, encoder });
        const e = await spatialDropout(ctx, x, { p: 0.5, shape, layout: 'channels-last', seed, encoder });
        ctx.device.queue.submit([encoder.finish()]);
        ctx.submitted(encoder);
        if (round % 15 === 0) {
          expect(Array.from(await readArray(ctx, a.output, 'f32', n))).toEqual(Array.from(referenceDropout(xs, { p: 0.3, seed })));
          expect(Array.from(await readArray(ctx, dx, 'f32', n))).toEqual(Array.from(referenceDropout(xs, { p: 0.3, seed })));
          const want = referenceStructuredDropout(xs, {
            p: 0.5,
            shape,
            noiseShape: spatialNoiseShape(shape, { layout: 'channels-last' }),
            seed,
          });
          expect(Array.from(await readArray(ctx, e.output, 'f32', n))).toEqual(Array.from(want));
        }
        for (const buffer of [a.output, a.mask!, b.output, c.output, d.output, dx, e.output]) ctx.release(buffer);
        // Refused: up front, at submit (a destroyed buffer), and before recording (another device's buffer).
        for (const refused of [
          () => dropout(ctx, x, { p: 1.5, seed }),
          () => dropout(ctx, doomed, { p: 0.5, seed, mask: true }),
          () => spatialDropout(ctx, doomed, { p: 0.5, shape, layout: 'channels-first', seed }),
          () => dropout(ctx, foreign, { p: 0.5, seed, encoder: ctx.device.createCommandEncoder() }),
          () => biasDropoutResidual(ctx, x, bias, foreign, { p: 0.1, shape: [120, 25], seed }),
          () => ctx.readBytes(doomed, 64),
        ]) {
          await expect(refused()).rejects.toBeInstanceOf(DropoutError);
        }
        allocations.push(ctx.pool.allocations);
        bytes.push(ctx.pool.bytes);
      }
      await ctx.device.queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, 20));
      expect(uncaptured).toEqual([]);
      // Past the warm-up, not one buffer more: allocations and bytes held stay flat.
      expect(allocations.slice(WARM_UP), `pool.allocations per round: ${allocations.join(', ')}`).toEqual(
        new Array(ROUNDS - WARM_UP).fill(allocations[WARM_UP]),
      );
      expect(bytes.slice(WARM_UP), `pool.bytes per round: ${bytes.join(', ')}`).toEqual(new Array(ROUNDS - WARM_UP).fill(bytes[WARM_UP]));
      expect(allocations[0]).toBeGreaterThan(0);
    } finally {
      other.release();
    }
  });
});
