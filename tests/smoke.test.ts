import { describe, expect, it } from 'vitest';
import { dropout, readArray, referenceDropout, randomWords, contractWords } from '../src/index.js';
import { gpuContext, poisoned, testData } from './gpu.js';

describe('smoke', () => {
  it('forward matches reference', async () => {
    const ctx = await gpuContext();
    for (const n of [1, 3, 5, 1023, 4096 + 3]) {
      for (const offset of [0n, 1n, 6n]) {
        const x = testData(n);
        const xb = ctx.upload(x);
        const out = poisoned(ctx, n * 4);
        await dropout(ctx, xb, { p: 0.3, seed: 42n, stream: 7n, offset, out });
        const got = await readArray(ctx, out, 'f32', n);
        const want = referenceDropout(x, { p: 0.3, seed: 42n, stream: 7n, offset });
        expect(Array.from(got)).toEqual(Array.from(want));
      }
    }
    const w = await randomWords(ctx, { count: 11, seed: 5n, stream: 3n, offset: 3n });
    expect(Array.from(await readArray(ctx, w.output, 'u32', 11))).toEqual(Array.from(contractWords(5n, 3n, 11, 3n)));
  });
});
