// Bad input is refused with an error naming the argument, before anything is recorded: every
// output buffer is poisoned before the call and must still hold the poison after it. Device loss
// rejects pending and later work with DeviceLostError instead of hanging.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bernoulliMask,
  DeviceLostError,
  Dropout,
  DropoutContext,
  type DropoutState,
  dropout,
  dropoutArray,
  dropoutBackward,
  GpuValidationError,
  InvalidArgumentError,
  randomNormal,
  randomUniform,
  randomWords,
  readArray,
  requestDropoutDevice,
  structuredDropout,
} from '../src/index.js';
import { type NodeDevice, requestNodeDevice } from '../src/node.js';
import { referenceKeepMask, unpackMask } from '../src/reference.js';
import { dtypeBytes, Usage } from '../src/runtime/units.js';
import { expectInvalid, gpuContext, POISON_WORD, poisoned, testData } from './gpu.js';

const N = 1024;
let ctx: DropoutContext;
let x: GPUBuffer;
beforeAll(async () => {
  ctx = await gpuContext();
  x = ctx.upload(testData(N));
});

/** Checks that every word of `buffer` still holds the poison. */
async function expectUntouched(buffer: GPUBuffer): Promise<void> {
  const words = new Uint32Array(await ctx.readBytes(buffer, buffer.size));
  const written = words.findIndex((w) => w !== POISON_WORD);
  expect(written, 'the output was written although the call was refused').toBe(-1);
}

describe('bad drop probability p', () => {
  for (const [label, p] of [
    ['p < 0', -0.1],
    ['p > 1', 1.0001],
    ['NaN', NaN],
    ['a string', '0.5'],
    ['undefined', undefined],
    ['Infinity', Infinity],
  ] as const) {
    it(`${label}: InvalidArgumentError('p'), out untouched (dropout and bernoulliMask)`, async () => {
      const out = poisoned(ctx, N * 4);
      await expectInvalid(() => dropout(ctx, x, { p: p as number, seed: 1n, out }), 'p', /a number in \[0, 1\]/);
      await expectInvalid(() => bernoulliMask(ctx, { p: p as number, count: N, seed: 1n, out }), 'p', /a number in \[0, 1\]/);
      await expectUntouched(out);
    });
  }
});

describe('bad buffers and counts', () => {
  it('count larger than x: names x and the bytes it needs', async () => {
    const out = poisoned(ctx, (N + 8) * 4);
    await expectInvalid(
      () => dropout(ctx, x, { p: 0.5, seed: 1n, count: N + 1, out }),
      'x',
      new RegExp(`at least ${(N + 1) * 4} bytes, got ${N * 4} bytes`),
    );
    await expectUntouched(out);
  });

  it('count not a whole number in 0..2^32-1: names count', async () => {
    const out = poisoned(ctx, N * 4);
    for (const count of [-1, 1.5, NaN, 2 ** 32]) {
      await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, count, out }), 'count', /whole number/);
      await expectInvalid(() => randomWords(ctx, { count, seed: 1n, out }), 'count', /whole number/);
    }
    await expectUntouched(out);
  });

  it('x or out without STORAGE usage: names the buffer and its usage', async () => {
    const noStorage = ctx.device.createBuffer({ size: N * 4, usage: Usage.COPY_SRC | Usage.COPY_DST });
    const out = poisoned(ctx, N * 4);
    await expectInvalid(() => dropout(ctx, noStorage, { p: 0.5, seed: 1n, out }), 'x', /STORAGE usage, got usage 0xc/);
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, out: noStorage }), 'out', /STORAGE usage/);
    await expectInvalid(() => randomUniform(ctx, { count: N, seed: 1n, out: noStorage }), 'out', /STORAGE usage/);
    await expectUntouched(out);
    noStorage.destroy();
  });

  it('x that is not a GPUBuffer: names x', async () => {
    await expectInvalid(() => dropout(ctx, new Float32Array(4) as unknown as GPUBuffer, { p: 0.5, seed: 1n }), 'x', /a GPUBuffer/);
  });

  it('out too small: names out', async () => {
    const out = poisoned(ctx, N * 4 - 4);
    await expectInvalid(
      () => dropout(ctx, x, { p: 0.5, seed: 1n, out }),
      'out',
      new RegExp(`at least ${N * 4} bytes, got ${N * 4 - 4} bytes`),
    );
    await expectInvalid(() => randomNormal(ctx, { count: N, seed: 1n, out }), 'out', /at least/);
    await expectInvalid(
      () => bernoulliMask(ctx, { p: 0.5, packed: true, count: 32 * N, seed: 1n, out: poisoned(ctx, 4) }),
      'out',
      /at least/,
    );
    await expectUntouched(out);
  });

  it('mask buffer too small (forward and backward): names mask, nothing written', async () => {
    const out = poisoned(ctx, N * 4);
    const mask = poisoned(ctx, N / 8 - 4);
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, out, mask }), 'mask', new RegExp(`at least ${N / 8} bytes`));
    await expectUntouched(out);
    await expectUntouched(mask);
    const state: DropoutState = { seed: 1n, stream: 0n, offset: 0n, p: 0.5, count: N, dtype: 'f32', training: true };
    await expectInvalid(() => dropoutBackward(ctx, x, state, { out, mask }), 'mask', /at least/);
    await expectUntouched(out);
  });

  it('mask aliasing out or x: names mask', async () => {
    const out = poisoned(ctx, N * 4);
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, out, mask: out }), 'mask', /other than out/);
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, out, mask: x }), 'mask', /other than x/);
    await expectUntouched(out);
  });

  it('readBytes on a buffer without COPY_SRC: names the buffer', async () => {
    const storageOnly = ctx.device.createBuffer({ size: 16, usage: Usage.STORAGE });
    await expectInvalid(() => ctx.readBytes(storageOnly, 16), 'buffer', /COPY_SRC/);
    await expectInvalid(() => ctx.readBytes(x, N * 4 + 4), 'buffer', /readable range/);
    storageOnly.destroy();
  });

  it('a destroyed input buffer: named up front; destroyed after the call, before its batch is submitted (own-submit path), named at the submit; nothing written', async () => {
    const doomed = ctx.upload(testData(N, 2));
    await ctx.flush();
    const out = poisoned(ctx, N * 4);
    // The call's checks pass; the buffer is destroyed before the batch it joined is submitted.
    const pending = dropout(ctx, doomed, { p: 0.5, seed: 1n, count: N, out });
    doomed.destroy();
    await expectInvalid(() => pending, 'x', /destroyed, or belongs to another GPUDevice\); nothing was written/);
    await expectInvalid(
      () => dropout(ctx, doomed, { p: 0.5, seed: 1n, count: N, out }),
      'x',
      /a live GPUBuffer, got a destroyed GPUBuffer/,
    );
    await expectUntouched(out);
    // The context still works afterwards.
    const w = await randomWords(ctx, { count: 4, seed: 1n, out: poisoned(ctx, 16) });
    expect(new Uint32Array(await ctx.readBytes(w.output, 16))).not.toContain(POISON_WORD);
  });

  // dropout with a mask is two dispatches; "nothing was written" holds only if they share one
  // submission. Uses a fresh context so the packed-mask pipeline is not compiled yet.
  it('a destroyed input buffer with a mask output: neither out nor mask is written', async () => {
    const c = await gpuContext();
    const doomed = c.upload(testData(N, 2));
    await c.flush();
    doomed.destroy();
    const out = poisoned(c, N * 4);
    const mask = poisoned(c, N / 8);
    await expectInvalid(() => dropout(c, doomed, { p: 0.5, seed: 1n, count: N, out, mask }), 'x', /destroyed/);
    const words = (b: GPUBuffer) => c.readBytes(b, b.size).then((a) => Array.from(new Uint32Array(a)));
    expect(
      (await words(out)).every((w) => w === POISON_WORD),
      'out was written',
    ).toBe(true);
    expect(
      (await words(mask)).every((w) => w === POISON_WORD),
      'mask was written',
    ).toBe(true);
  });

  it('a destroyed output buffer: names out', async () => {
    const out = poisoned(ctx, N * 4);
    await ctx.flush();
    out.destroy();
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, out }), 'out', /destroyed/);
  });
});

describe('buffers WebGPU would refuse, and ops sharing a batch with a refused one', () => {
  it('a mapped buffer is refused before recording, naming it', async () => {
    const mapped = ctx.device.createBuffer({ size: N * 4, usage: Usage.STORAGE | Usage.COPY_SRC, mappedAtCreation: true });
    const out = poisoned(ctx, N * 4);
    await expectInvalid(() => dropout(ctx, mapped, { p: 0.5, seed: 1n, out }), 'x', /unmapped GPUBuffer.*mapState is 'mapped'/);
    mapped.unmap();
    await expectUntouched(out);
    mapped.destroy();
  });

  it('a valid op in the same tick as one whose buffer is destroyed before their batch is submitted: each error says whose fault it was', async () => {
    const doomed = ctx.upload(testData(N, 3));
    await ctx.flush();
    const outGood = poisoned(ctx, N * 4);
    // Started in one tick without an encoder: both join one batch, which WebGPU refuses whole.
    const calls = [dropout(ctx, x, { p: 0.5, seed: 1n, out: outGood }), dropout(ctx, doomed, { p: 0.5, seed: 3n, count: N })] as const;
    doomed.destroy();
    const [good, bad] = await Promise.allSettled(calls);
    expect(good.status).toBe('rejected');
    const goodError = (good as PromiseRejectedResult).reason;
    expect(goodError).toBeInstanceOf(GpuValidationError);
    expect(String(goodError.message)).toMatch(/another op recorded in the same batch.*x: expected a live GPUBuffer/);
    const badError = (bad as PromiseRejectedResult).reason;
    expect(badError).toBeInstanceOf(InvalidArgumentError);
    expect(badError.argument).toBe('x');
    await expectUntouched(outGood);
  });

  it('one destroyed buffer given to two ops of a batch, as x and as out: each error names its own argument', async () => {
    const doomed = ctx.upload(testData(N, 3));
    await ctx.flush();
    doomed.destroy();
    const [asX, asOut] = await Promise.allSettled([
      dropout(ctx, doomed, { p: 0.5, seed: 1n, count: N, out: poisoned(ctx, N * 4) }),
      dropout(ctx, x, { p: 0.5, seed: 2n, out: doomed }),
    ]);
    const errors = [asX, asOut].map((r) => (r as PromiseRejectedResult).reason as InvalidArgumentError);
    for (const e of errors) expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(errors.map((e) => e.argument)).toEqual(['x', 'out']);
  });
});

describe('helpers and options refuse bad arguments by name', () => {
  it("dropout's training must be a boolean, checked before anything is recorded", async () => {
    const out = poisoned(ctx, N * 4);
    for (const training of ['yes', 1, 0]) {
      await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, out, training: training as never }), 'training', /a boolean/);
    }
    await expectUntouched(out);
  });

  it('dropoutArray takes Float32Array or Uint16Array only', async () => {
    await expectInvalid(
      () => dropoutArray(ctx, new Float64Array([1, 2, 3]) as unknown as Float32Array, { p: 0 }),
      'x',
      /Float32Array.*Uint16Array/,
    );
    await expectInvalid(
      () => dropoutArray(ctx, new Int32Array([1, 2, 3]) as unknown as Float32Array, { p: 0.5, seed: 1n }),
      'x',
      /Float32Array/,
    );
  });

  it('readArray, acquire, upload and dtypeBytes', async () => {
    for (const count of [-1, NaN, 1.5]) await expectInvalid(() => readArray(ctx, x, 'f32', count), 'count', /whole number/);
    await expectInvalid(() => readArray(ctx, x, 'f64' as 'f32', 4), 'dtype', /'f32', 'f16' or 'u32'/);
    for (const bytes of [NaN, -4, Infinity]) await expectInvalid(() => ctx.acquire(bytes), 'bytes', /byte count/);
    await expectInvalid(() => ctx.upload([1, 2, 3] as unknown as Float32Array), 'data', /typed array/);
    await expectInvalid(() => dtypeBytes('f64' as 'f32'), 'dtype', /'f32' or 'f16'/);
    expect([dtypeBytes('f32'), dtypeBytes('f16')]).toEqual([4, 2]);
  });

  it('DropoutContext.create checks the device and every option', async () => {
    await expectInvalid(() => DropoutContext.create(null as unknown as GPUDevice), 'device', /a GPUDevice/);
    await expectInvalid(() => DropoutContext.create(ctx.device, { poolBytes: -5 }), 'options.poolBytes', /byte count/);
    await expectInvalid(
      () => DropoutContext.create(ctx.device, { validate: 'yes' as unknown as boolean }),
      'options.validate',
      /true or false/,
    );
    await expectInvalid(() => DropoutContext.create(ctx.device, { seed: -1 }), 'options.seed', /0\.\.2\^64-1/);
  });

  it('requestDropoutDevice checks f16 before asking for an adapter', async () => {
    let asked = false;
    const gpu = {
      requestAdapter: async () => {
        asked = true;
        return null;
      },
    } as unknown as GPU;
    await expectInvalid(() => requestDropoutDevice({ gpu, f16: 'maybe' as 'off' }), 'f16', /'prefer', 'require' or 'off'/);
    expect(asked).toBe(false);
  });

  it('the Dropout layer checks its options object', () => {
    expect(() => new Dropout(ctx, null as unknown as object)).toThrow(/options: expected an object/);
    expect(() => new Dropout(ctx, { inPlace: 'yes' as unknown as boolean })).toThrow(/inPlace: expected a boolean/);
  });

  it('the CPU reference checks counts', async () => {
    await expectInvalid(() => referenceKeepMask(-1, 0.5, { seed: 1n }), 'count', /whole number/);
    await expectInvalid(() => unpackMask(new Uint32Array(1), 33), 'count', /at most 32 elements/);
    expect(Array.from(unpackMask(new Uint32Array([0b101]), 3))).toEqual([1, 0, 1]);
  });
});

describe('bad seeds, streams and offsets', () => {
  const bad: [string, unknown][] = [
    ['negative number', -1],
    ['negative bigint', -1n],
    ['2^64', 2n ** 64n],
    ['non-integer number', 1.5],
    ['unsafe integer', 2 ** 53],
    ['a string', '5'],
    ['NaN', NaN],
  ];
  for (const [label, value] of bad) {
    it(`${label}: seed, stream and offset each named, out untouched`, async () => {
      const out = poisoned(ctx, N * 4);
      const v = value as bigint;
      await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: v, out }), 'seed', /an integer in 0\.\.2\^64-1/);
      await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, stream: v, out }), 'stream', /an integer in 0\.\.2\^64-1/);
      await expectInvalid(() => dropout(ctx, x, { p: 0.5, seed: 1n, offset: v, out }), 'offset', /an integer in 0\.\.2\^64-1/);
      await expectInvalid(() => randomWords(ctx, { count: N, seed: v, out }), 'seed', /an integer/);
      await expectInvalid(() => bernoulliMask(ctx, { p: 0.5, count: N, seed: 1n, stream: v, out }), 'stream', /an integer/);
      await expectUntouched(out);
    });
  }

  it('2^64 - 1 and safe integers are accepted', async () => {
    const out = poisoned(ctx, 16);
    await randomWords(ctx, { count: 4, seed: 2n ** 64n - 1n, stream: Number.MAX_SAFE_INTEGER, offset: 2n ** 64n - 4n, out });
    expect(new Uint32Array(await ctx.readBytes(out, 16))).not.toContain(POISON_WORD);
  });

  it('a stream without a seed, or a generator that is not a PhiloxGenerator', async () => {
    const out = poisoned(ctx, N * 4);
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, stream: 3n, out }), 'stream', /to come with a seed/);
    await expectInvalid(() => dropout(ctx, x, { p: 0.5, generator: { seed: 1n } as never, out }), 'generator', /a PhiloxGenerator/);
    await expectUntouched(out);
  });
});

describe('dropoutBackward with a garbage state', () => {
  const good: DropoutState = { seed: 1n, stream: 2n, offset: 0n, p: 0.5, count: N, dtype: 'f32', training: true };
  const cases: [string, unknown, string, RegExp][] = [
    ['null', null, 'state', /the state returned by dropout/],
    ['a number', 42, 'state', /the state returned by dropout/],
    ['p out of range', { ...good, p: 2 }, 'state.p', /a number in \[0, 1\]/],
    ['p missing', { ...good, p: undefined }, 'state.p', /a number in \[0, 1\]/],
    ['negative seed', { ...good, seed: -1n }, 'state.seed', /an integer in 0\.\.2\^64-1/],
    ['stream past 2^64-1', { ...good, stream: 2n ** 64n }, 'state.stream', /an integer in 0\.\.2\^64-1/],
    ['string offset', { ...good, offset: '0' }, 'state.offset', /an integer/],
    ['fractional count', { ...good, count: 1.5 }, 'state.count', /whole number/],
    ['unknown dtype', { ...good, dtype: 'f64' }, 'state.dtype', /'f32' or 'f16'/],
    ['non-boolean training', { ...good, training: 'yes' }, 'state.training', /a boolean/],
    ['count larger than dy', { ...good, count: N + 1 }, 'dy', /at least/],
  ];
  for (const [label, state, argument, message] of cases) {
    it(`${label}: names ${argument}, out untouched`, async () => {
      const out = poisoned(ctx, (N + 1) * 4);
      await expectInvalid(() => dropoutBackward(ctx, x, state as DropoutState, { out }), argument, message);
      await expectUntouched(out);
    });
  }
});

describe('f16 on a device without shader-f16', () => {
  let plain: NodeDevice;
  let noF16: DropoutContext;
  beforeAll(async () => {
    plain = await requestNodeDevice({ f16: 'off' });
    noF16 = await DropoutContext.create(plain.device);
  });
  afterAll(() => {
    noF16?.destroy();
    plain?.release();
  });

  it('f16 takes the packed path there: supportsF16 is true, f16Path says packed, and the ops run; a bad dtype is still refused', async () => {
    expect(plain.device.features.has('shader-f16')).toBe(false);
    expect(noF16.supportsF16).toBe(true);
    expect(noF16.f16Path).toBe('packed');
    const xb = noF16.upload(new Uint16Array(N));
    const out = noF16.upload(new Uint32Array(N).fill(POISON_WORD));
    await expect(dropout(noF16, xb, { p: 0.5, dtype: 'bf16' as never, seed: 1n, out })).rejects.toThrow(/^dtype: expected 'f32' or 'f16'/);
    await expect(structuredDropout(noF16, xb, { p: 0.5, shape: [N], dtype: 'f64' as never, seed: 1n, out })).rejects.toThrow(
      /^dtype: expected 'f32' or 'f16'/,
    );
    expect(new Uint32Array(await noF16.readBytes(out, N * 4)).every((w) => w === POISON_WORD)).toBe(true);
    // tests/f16-packed.test.ts checks the bits; here only that they run.
    await dropout(noF16, xb, { p: 0.5, dtype: 'f16', seed: 1n, out });
    await structuredDropout(noF16, xb, { p: 0.5, shape: [N], dtype: 'f16', seed: 1n, out });
    const state: DropoutState = { seed: 1n, stream: 0n, offset: 0n, p: 0.5, count: N, dtype: 'f16', training: true };
    await dropoutBackward(noF16, xb, state, { out });
    expect(new Dropout(noF16, { dtype: 'f16' }).dtype).toBe('f16');
    // f32 still works on that device.
    await dropout(noF16, noF16.upload(testData(8)), { p: 0.5, seed: 1n, out });
    expect(new Uint32Array(await noF16.readBytes(out, 32))).not.toContain(POISON_WORD);
  });
});

describe('device loss (a separate device per test)', () => {
  async function freshContext(): Promise<{ dev: NodeDevice; c: DropoutContext }> {
    const dev = await requestNodeDevice();
    return { dev, c: await DropoutContext.create(dev.device) };
  }

  /** Settles within `ms` or fails: a lost device must never leave a promise hanging. */
  function settle<T>(p: Promise<T>, ms = 20_000): Promise<T> {
    return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms))]);
  }

  it('destroying the device while readBytes is pending rejects it with DeviceLostError', async () => {
    const { dev, c } = await freshContext();
    const big = c.upload(new Float32Array(1 << 20));
    await dropout(c, big, { p: 0.5, seed: 1n, out: big });
    const pending = c.readBytes(big, 1 << 22);
    dev.device.destroy();
    await expect(settle(pending)).rejects.toBeInstanceOf(DeviceLostError);
    dev.release();
  });

  it('an op right after the device is destroyed, and one after device.lost settles, reject with DeviceLostError', async () => {
    const { dev, c } = await freshContext();
    const xb = c.upload(testData(N));
    await c.flush();
    dev.device.destroy();
    const right = dropout(c, xb, { p: 0.5, seed: 1n }).then(async (r) => c.readBytes(r.output, 16));
    await expect(settle(right)).rejects.toBeInstanceOf(DeviceLostError);
    await dev.device.lost;
    await expect(settle(dropout(c, xb, { p: 0.5, seed: 1n }))).rejects.toBeInstanceOf(DeviceLostError);
    await expect(settle(c.readBytes(xb, 16))).rejects.toBeInstanceOf(DeviceLostError);
    dev.release();
  });
});
