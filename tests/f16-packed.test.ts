// f16 on the packed path (u32 words, no `shader-f16`), on a device requested with f16: 'off':
// bit for bit against the CPU reference over every f16 bit pattern (subnormals, ties, overflow to
// infinity, NaN), odd counts, mask offsets that split a word pair, chunk boundaries, in place with
// words shared by two elements, the neighbour half past an odd count kept, and the packed mask.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Dropout,
  DropoutContext,
  InvalidArgumentError,
  UnsupportedError,
  alphaDropout,
  alphaDropoutBackward,
  biasDropoutResidual,
  biasDropoutResidualBackward,
  dropPathAdd,
  dropPathAddBackward,
  gaussianDropout,
  gaussianDropoutBackward,
  referenceStructuredDropout,
  shapeSize,
  structuredDropoutBackward,
  dropout,
  dropoutArray,
  dropoutBackward,
  packMask,
  referenceDropout,
  referenceKeepMask,
  structuredDropout,
  toHalfArray,
  type DropoutOptions,
} from '../src/index.js';
import { requestNodeDevice, type NodeDevice } from '../src/node.js';
import { nodeDevice, poisoned, POISON_WORD, testData } from './gpu.js';
import { mismatch } from './fixture.js';

const SEED = 0x0123_4567_89ab_cdefn;
const GUARD_WORDS = 2;
/** The poison's two halves: a neighbour half past the count must still hold its one. */
const POISON_HALVES = new Uint16Array(Uint32Array.of(POISON_WORD).buffer);

let plain: NodeDevice;
let ctx: DropoutContext;
/** A context whose chunks are 2048 elements, so tensors past that cross chunk boundaries. */
let chunked: DropoutContext;
beforeAll(async () => {
  plain = await requestNodeDevice({ f16: 'off' });
  ctx = await DropoutContext.create(plain.device, { seed: 7n });
  chunked = await DropoutContext.create(plain.device, { seed: 7n, maxChunkElements: 2048 });
});
afterAll(() => {
  ctx?.destroy();
  chunked?.destroy();
  plain?.release();
});

/** Every f16 bit pattern once, in a scrambled order (so neighbours differ in kind). */
function allHalves(): Uint16Array {
  const out = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) out[i] = (Math.imul(i, 40503) + 12345) & 0xffff;
  return out;
}

function poisonedHalves(c: DropoutContext, n: number): GPUBuffer {
  return poisoned(c, Math.ceil(n / 2) * 4 + 4 * GUARD_WORDS);
}

/** The n halves of `buffer`; every half after them (the odd count's neighbour, the guards) must hold the poison. */
async function readHalves(c: DropoutContext, buffer: GPUBuffer, n: number): Promise<Uint16Array> {
  const halves = new Uint16Array(await c.readBytes(buffer, buffer.size));
  for (let i = n; i < halves.length; i++) expect(halves[i], `half ${i} past count ${n} was written`).toBe(POISON_HALVES[i % 2]);
  return halves.slice(0, n);
}

/** x written over a poisoned buffer (the half past an odd count keeps the poison). */
function poisonedWith(c: DropoutContext, x: Uint16Array): GPUBuffer {
  const buffer = poisonedHalves(c, x.length);
  const bytes = new Uint8Array(new Uint32Array(Math.ceil(x.length / 2)).fill(POISON_WORD).buffer);
  bytes.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  c.device.queue.writeBuffer(buffer, 0, bytes);
  return buffer;
}

function expectBits(got: Uint16Array, want: Uint16Array, what: string): void {
  expect(mismatch(got, want), what).toBeNull();
}

async function forward(c: DropoutContext, x: Uint16Array, opts: Omit<DropoutOptions, 'out' | 'dtype' | 'count'>, inPlace = false): Promise<Uint16Array> {
  const xb = inPlace ? poisonedWith(c, x) : c.upload(x);
  const out = inPlace ? xb : poisonedHalves(c, x.length);
  const r = await dropout(c, xb, { ...opts, dtype: 'f16', count: x.length, out });
  expect(r.output).toBe(out);
  return readHalves(c, out, x.length);
}

describe('f16 packed path (device without shader-f16)', () => {
  it('is chosen automatically and named by ctx.f16Path; native is refused without the feature', async () => {
    expect(plain.device.features.has('shader-f16')).toBe(false);
    expect(ctx.supportsF16).toBe(true);
    expect(ctx.f16Path).toBe('packed');
    expect(() => new DropoutContext(plain.device, { f16Path: 'native' })).toThrow(UnsupportedError);
    expect(() => new DropoutContext(plain.device, { f16Path: 'half' as never })).toThrow(InvalidArgumentError);
  });

  it('every f16 bit pattern, p in {1/3 (scale 1.5: ties), 0.1, 0.7, 0.5}, odd mask offsets: bit for bit', async () => {
    const x = allHalves();
    for (const [p, offset] of [[1 / 3, 0n], [0.1, 1n], [0.7, 3n], [0.5, 2n ** 33n + 1n]] as const) {
      const opts = { p, seed: SEED, stream: 9n, offset };
      expectBits(await forward(ctx, x, opts), referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array, `p=${p} offset=${offset}`);
    }
  });

  it('the conversions hold at the edges: subnormals, ties to even, overflow to infinity, NaN (kept: 0x7e00, dropped: +0)', async () => {
    // p = 1/3 keeps with scale 1.5; the stream/offset is chosen by the reference, so check what it keeps.
    const special = Uint16Array.of(0x0001, 0x0003, 0x03ff, 0x0400, 0x8001, 0x83ff, 0x7bff, 0x5bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x7c01, 0x8000, 0x0000, 0x3c01, 0x3c03, 0x3555);
    const x = new Uint16Array(special.length * 40);
    for (let i = 0; i < x.length; i++) x[i] = special[i % special.length]!;
    const opts = { p: 1 / 3, seed: SEED, stream: 1n, offset: 1n };
    const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
    const keep = referenceKeepMask(x.length, opts.p, opts);
    expectBits(await forward(ctx, x, opts), want, 'specials');
    // The cases the test means to cover are in the data, kept and dropped.
    for (const h of special) {
      const at = Array.from(x.keys()).filter((i) => x[i] === h);
      expect(at.some((i) => keep[i]) && at.some((i) => !keep[i]), `0x${h.toString(16)} kept and dropped`).toBe(true);
    }
    expect(Array.from(want).filter((h, i) => keep[i] && (x[i]! & 0x7fff) > 0x7c00).every((h) => h === 0x7e00)).toBe(true);
    expect(want.some((h, i) => keep[i] && h === 0x7c00 && x[i] === 0x7bff)).toBe(true); // 65504 * 1.5 overflows
    expect(want.some((h, i) => keep[i] && h === 0x0002 && x[i] === 0x0001)).toBe(true); // 1.5 ulp subnormal: tie to even (2)
    expect(want.every((h, i) => keep[i] || h === 0)).toBe(true);
  });

  it('odd and small counts, chunk boundaries, offsets 0..5: forward, in place and backward, neighbour half kept', async () => {
    for (const c of [ctx, chunked]) {
      for (const n of [1, 2, 3, 5, 6, 7, 2047, 2049, 4099, 2 * 2048 + 1]) {
        for (const offset of [0n, 1n, 2n, 3n, 5n]) {
          const x = toHalfArray(testData(n, n + Number(offset)));
          const opts = { p: 0.3, seed: SEED, stream: 4n, offset };
          const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
          const what = `n=${n} offset=${offset} chunk=${c.maxChunkElements}`;
          expectBits(await forward(c, x, opts), want, `forward ${what}`);
          expectBits(await forward(c, x, opts, true), want, `in place ${what}`);
          const state = { ...opts, count: n, dtype: 'f16' as const, training: true };
          const dy = c.upload(x);
          const dx = poisonedHalves(c, n);
          await dropoutBackward(c, dy, state, { out: dx });
          expectBits(await readHalves(c, dx, n), want, `backward ${what}`);
          const inPlace = poisonedWith(c, x);
          await dropoutBackward(c, inPlace, state, { out: inPlace });
          expectBits(await readHalves(c, inPlace, n), want, `backward in place ${what}`);
        }
      }
    }
  });

  it('with the packed mask: the fused forward writes it, backward (and in place) reads it', async () => {
    for (const [n, offset] of [[1, 0n], [37, 3n], [1023, 1n], [4133, 2n ** 33n + 1n]] as const) {
      const x = toHalfArray(testData(n, 3));
      const opts = { p: 0.3, seed: SEED, stream: 3n, offset };
      const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
      const mask = poisoned(ctx, 4 * Math.ceil(n / 32));
      const out = poisonedHalves(ctx, n);
      const r = await dropout(ctx, ctx.upload(x), { ...opts, dtype: 'f16', count: n, out, mask });
      expectBits(await readHalves(ctx, out, n), want, `fused forward n=${n}`);
      expect(mismatch(new Uint32Array(await ctx.readBytes(mask, mask.size)), packMask(referenceKeepMask(n, 0.3, opts))), `mask n=${n}`).toBeNull();
      // The mask path must not regenerate: a state with another seed still gives the masked result.
      const other = { ...r.state, seed: r.state.seed + 1n };
      const dx = poisonedHalves(ctx, n);
      await dropoutBackward(ctx, ctx.upload(x), other, { out: dx, mask });
      expectBits(await readHalves(ctx, dx, n), want, `backward from mask n=${n}`);
      const inPlace = poisonedWith(ctx, x);
      await dropoutBackward(ctx, inPlace, other, { out: inPlace, mask });
      expectBits(await readHalves(ctx, inPlace, n), want, `in-place backward from mask n=${n}`);
    }
  });

  it('p = 0 into out copies the bits (NaN payloads too), p = 1 writes +0, eval mode copies; odd counts', async () => {
    for (const n of [1, 3, 1029]) {
      const x = allHalves().subarray(0, n);
      const copy = poisonedHalves(ctx, n);
      await dropout(ctx, ctx.upload(x), { p: 0, dtype: 'f16', count: n, out: copy });
      expectBits(await readHalves(ctx, copy, n), x, `p=0 n=${n}`);
      const evalOut = poisonedHalves(ctx, n);
      await dropout(ctx, ctx.upload(x), { p: 0.5, training: false, dtype: 'f16', count: n, out: evalOut });
      expectBits(await readHalves(ctx, evalOut, n), x, `eval n=${n}`);
      expectBits(await forward(ctx, x, { p: 1, seed: SEED }), new Uint16Array(n), `p=1 n=${n}`);
      expectBits(await forward(ctx, x, { p: 1, seed: SEED }, true), new Uint16Array(n), `p=1 in place n=${n}`);
    }
  });

  it('the Dropout layer and dropoutArray take f16 on the packed path', async () => {
    const x = toHalfArray(testData(1001, 5));
    const { output, state } = await dropoutArray(ctx, x, { p: 0.25, seed: SEED, stream: 2n, offset: 1n });
    expectBits(output, referenceDropout(x, { p: 0.25, seed: SEED, stream: 2n, offset: 1n, dtype: 'f16' }) as Uint16Array, 'dropoutArray');
    expect(state.dtype).toBe('f16');
    const layer = new Dropout(ctx, { p: 0.25, dtype: 'f16' });
    const out = poisonedHalves(ctx, x.length);
    const r = await layer.forward(ctx.upload(x), { count: x.length, out });
    const want = referenceDropout(x, { ...r.state, dtype: 'f16' }) as Uint16Array;
    expectBits(await readHalves(ctx, out, x.length), want, 'Dropout layer forward');
    const dx = poisonedHalves(ctx, x.length);
    await layer.backward(ctx.upload(x), r.state, { out: dx });
    expectBits(await readHalves(ctx, dx, x.length), want, 'Dropout layer backward');
  });

  it('refuses a buffer too small for count f16 elements (whole words), naming the argument, before any work', async () => {
    const small = ctx.upload(new Uint16Array(2)); // 4 bytes: 2 halves
    const out = poisoned(ctx, 4);
    await expect(dropout(ctx, small, { p: 0.5, dtype: 'f16', count: 3, seed: 1n })).rejects.toThrow(/^x: expected a GPUBuffer of at least 8 bytes/);
    const big = ctx.upload(new Uint16Array(4));
    await expect(dropout(ctx, big, { p: 0.5, dtype: 'f16', count: 3, seed: 1n, out })).rejects.toThrow(/^out: expected a GPUBuffer of at least 8 bytes/);
    const state = { seed: 1n, stream: 0n, offset: 0n, p: 0.5, count: 3, dtype: 'f16' as const, training: true };
    await expect(dropoutBackward(ctx, small, state)).rejects.toThrow(/^dy: expected a GPUBuffer of at least 8 bytes/);
    expect(new Uint32Array(await ctx.readBytes(out, 4))[0]).toBe(POISON_WORD);
  });
});

describe('f16 packed and native paths agree on an adapter that has both', () => {
  it('lavapipe: a packed context and the native one give the same bits', async () => {
    const { device } = await nodeDevice();
    if (!device.features.has('shader-f16')) return console.warn('native f16 not compared: the adapter lacks shader-f16');
    const native = await DropoutContext.create(device, { seed: 1n });
    const packed = await DropoutContext.create(device, { seed: 1n, f16Path: 'packed' });
    try {
      expect([native.f16Path, packed.f16Path]).toEqual(['native', 'packed']);
      const x = allHalves();
      const opts = { p: 0.3, seed: SEED, stream: 6n, offset: 3n };
      const a = await forward(native, x, opts);
      const b = await forward(packed, x, opts);
      expectBits(b, referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array, 'packed');
      // Native NaN bits are the adapter's; everything else must match.
      for (let i = 0; i < a.length; i++) if ((a[i]! & 0x7fff) > 0x7c00) a[i] = b[i]!;
      expectBits(a, b, 'native vs packed');
    } finally {
      native.destroy();
      packed.destroy();
    }
  });
});

/** Outputs of every structured op on context c, each read as halves with its poison checked. */
async function structuredOutputs(c: DropoutContext, shape: number[], noise: number[], offset: bigint): Promise<Record<string, Uint16Array>> {
  const n = shapeSize(shape);
  const cols = shape[shape.length - 1]!;
  const x = toHalfArray(testData(n, 21));
  x[0] = 0x7bff; // 65504: overflows where kept (scale > 1) and in the residual sums
  if (n > 2) x[2] = 0x0001; // the smallest subnormal
  const res = toHalfArray(testData(n, 22));
  const bias = toHalfArray(testData(cols, 23));
  const dy = toHalfArray(testData(n, 24));
  const rand = { seed: SEED, stream: 5n, offset };
  const out: Record<string, Uint16Array> = {};
  const fresh = (m = n) => poisonedHalves(c, m);
  const read = async (name: string, b: GPUBuffer, m = n) => void (out[name] = await readHalves(c, b, m));

  let y = fresh();
  const s = await structuredDropout(c, c.upload(x), { p: 0.35, shape, noiseShape: noise, dtype: 'f16', out: y, ...rand });
  await read('structured', y);
  y = fresh();
  await structuredDropoutBackward(c, c.upload(dy), s.state, { out: y });
  await read('structured backward', y);

  y = fresh();
  const dp = await dropPathAdd(c, c.upload(res), c.upload(x), { p: 0.4, shape, dtype: 'f16', out: y, ...rand });
  await read('dropPathAdd', y);
  y = fresh();
  const { dbranch } = await dropPathAddBackward(c, c.upload(dy), dp.state, { out: y });
  expect(dbranch).toBe(y);
  await read('dropPathAdd backward', y);

  y = fresh();
  const g = await gaussianDropout(c, c.upload(x), { p: 0.3, shape, noiseShape: noise, dtype: 'f16', out: y, ...rand });
  await read('gaussian', y);
  y = fresh();
  await gaussianDropoutBackward(c, c.upload(dy), g.state, { out: y });
  await read('gaussian backward', y);

  y = fresh();
  const a = await alphaDropout(c, c.upload(x), { p: 0.2, shape, noiseShape: noise, dtype: 'f16', out: y, ...rand });
  await read('alpha', y);
  y = fresh();
  await alphaDropoutBackward(c, c.upload(dy), a.state, { out: y });
  await read('alpha backward', y);

  y = fresh();
  const b = await biasDropoutResidual(c, c.upload(x), c.upload(bias), c.upload(res), { p: 0.25, shape, dtype: 'f16', out: y, ...rand });
  await read('biasDropoutResidual', y);
  const outX = fresh();
  const outBias = fresh(cols);
  await biasDropoutResidualBackward(c, c.upload(dy), b.state, { outX, outBias });
  await read('biasDropoutResidual dx', outX);
  await read('biasDropoutResidual dbias', outBias, cols);
  return out;
}

const STRUCTURED_CASES: [shape: number[], noise: number[], offset: bigint][] = [
  [[3, 5, 7], [3, 1, 7], 1n],
  [[2, 3, 2, 5], [2, 3, 1, 1], 3n],
  [[3, 1367], [3, 1367], 2n], // odd columns (the bias gradient's last word), past one 2048 chunk
  [[7], [7], 0n],
  [[1], [1], 5n],
];

describe('structured ops, Gaussian, Alpha, DropPath and the fused bias op on the packed path', () => {
  it('structuredDropout equals the reference bit for bit (odd counts, chunks, neighbour half kept)', async () => {
    for (const c of [ctx, chunked]) {
      for (const [shape, noise, offset] of STRUCTURED_CASES) {
        const n = shapeSize(shape);
        const x = toHalfArray(testData(n, 31));
        const y = poisonedHalves(c, n);
        const opts = { p: 0.35, shape, noiseShape: noise, seed: SEED, stream: 2n, offset };
        await structuredDropout(c, c.upload(x), { ...opts, dtype: 'f16', out: y });
        expectBits(await readHalves(c, y, n), referenceStructuredDropout(x, opts) as Uint16Array, `shape ${shape} chunk ${c.maxChunkElements}`);
      }
    }
  });

  it('every op (forward and backward) gives the native path\'s bits on lavapipe, where both run', async () => {
    const { device } = await nodeDevice();
    if (!device.features.has('shader-f16')) return console.warn('native f16 not compared: the adapter lacks shader-f16');
    const native = await DropoutContext.create(device, { seed: 1n });
    try {
      for (const [shape, noise, offset] of STRUCTURED_CASES) {
        const want = await structuredOutputs(native, shape, noise, offset);
        for (const c of [ctx, chunked]) {
          const got = await structuredOutputs(c, shape, noise, offset);
          expect(Object.keys(got)).toEqual(Object.keys(want));
          for (const name of Object.keys(want)) expectBits(got[name]!, want[name]!, `${name} shape ${shape} chunk ${c.maxChunkElements}`);
        }
      }
    } finally {
      native.destroy();
    }
  });
});
