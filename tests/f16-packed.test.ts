// f16 on the packed path (u32 words, no `shader-f16`), on a device requested with f16: 'off':
// bit for bit against the CPU reference over every f16 bit pattern (subnormals, ties, overflow to
// infinity, NaN), odd counts, mask offsets that split a word pair, chunk boundaries, in place with
// words shared by two elements, the neighbour half past an odd count kept, and the packed mask.
// Where the adapter has shader-f16, the native path against the same reference too, kept NaNs of
// every sign and payload included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alphaDropout,
  alphaDropoutBackward,
  biasDropoutResidual,
  biasDropoutResidualBackward,
  Dropout,
  DropoutContext,
  type DropoutOptions,
  dropout,
  dropoutArray,
  dropoutBackward,
  dropPathAdd,
  dropPathAddBackward,
  gaussianDropout,
  gaussianDropoutBackward,
  InvalidArgumentError,
  structuredDropout,
  structuredDropoutBackward,
  toHalfArray,
  toHalfBits,
  UnsupportedError,
} from '../src/index.js';
import { type NodeDevice, requestNodeDevice } from '../src/node.js';
import { dropPathNoiseShape, shapeSize } from '../src/ops/index.js';
import {
  packMask,
  referenceAlphaDropout,
  referenceAlphaDropoutBackward,
  referenceBiasDropoutResidual,
  referenceBiasDropoutResidualBackward,
  referenceDropout,
  referenceDropPathAdd,
  referenceGaussianDropout,
  referenceKeepMask,
  referenceStructuredDropout,
} from '../src/reference.js';
import { mismatch, testRng } from './fixture.js';
import { nodeDevice, POISON_WORD, poisoned, testData } from './gpu.js';

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

async function forward(
  c: DropoutContext,
  x: Uint16Array,
  opts: Omit<DropoutOptions, 'out' | 'dtype' | 'count'>,
  inPlace = false,
): Promise<Uint16Array> {
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
    for (const [p, offset] of [
      [1 / 3, 0n],
      [0.1, 1n],
      [0.7, 3n],
      [0.5, 2n ** 33n + 1n],
    ] as const) {
      const opts = { p, seed: SEED, stream: 9n, offset };
      expectBits(await forward(ctx, x, opts), referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array, `p=${p} offset=${offset}`);
    }
  });

  it('the conversions hold at the edges: subnormals, ties to even, overflow to infinity, NaN (kept: 0x7e00, dropped: +0)', async () => {
    // p = 1/3 keeps with scale 1.5; the stream/offset is chosen by the reference, so check what it keeps.
    const special = Uint16Array.of(
      0x0001,
      0x0003,
      0x03ff,
      0x0400,
      0x8001,
      0x83ff,
      0x7bff,
      0x5bff,
      0xfbff,
      0x7c00,
      0xfc00,
      0x7e00,
      0xfe01,
      0x7c01,
      0x8000,
      0x0000,
      0x3c01,
      0x3c03,
      0x3555,
    );
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
    expect(
      Array.from(want)
        .filter((_h, i) => keep[i] && (x[i]! & 0x7fff) > 0x7c00)
        .every((h) => h === 0x7e00),
    ).toBe(true);
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
    for (const [n, offset] of [
      [1, 0n],
      [37, 3n],
      [1023, 1n],
      [4133, 2n ** 33n + 1n],
    ] as const) {
      const x = toHalfArray(testData(n, 3));
      const opts = { p: 0.3, seed: SEED, stream: 3n, offset };
      const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
      const mask = poisoned(ctx, 4 * Math.ceil(n / 32));
      const out = poisonedHalves(ctx, n);
      const r = await dropout(ctx, ctx.upload(x), { ...opts, dtype: 'f16', count: n, out, mask });
      expectBits(await readHalves(ctx, out, n), want, `fused forward n=${n}`);
      expect(
        mismatch(new Uint32Array(await ctx.readBytes(mask, mask.size)), packMask(referenceKeepMask(n, 0.3, opts))),
        `mask n=${n}`,
      ).toBeNull();
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
    await expect(dropout(ctx, small, { p: 0.5, dtype: 'f16', count: 3, seed: 1n })).rejects.toThrow(
      /^x: expected a GPUBuffer of at least 8 bytes/,
    );
    const big = ctx.upload(new Uint16Array(4));
    await expect(dropout(ctx, big, { p: 0.5, dtype: 'f16', count: 3, seed: 1n, out })).rejects.toThrow(
      /^out: expected a GPUBuffer of at least 8 bytes/,
    );
    const state = { seed: 1n, stream: 0n, offset: 0n, p: 0.5, count: 3, dtype: 'f16' as const, training: true };
    await expect(dropoutBackward(ctx, small, state)).rejects.toThrow(/^dy: expected a GPUBuffer of at least 8 bytes/);
    expect(new Uint32Array(await ctx.readBytes(out, 4))[0]).toBe(POISON_WORD);
  });
});

describe('f16 packed and native paths agree on an adapter that has both', () => {
  it('lavapipe: a packed context and the native one both give the reference bits over every f16 pattern', async () => {
    const { device } = await nodeDevice();
    if (!device.features.has('shader-f16')) return console.warn('native f16 not compared: the adapter lacks shader-f16');
    const native = await DropoutContext.create(device, { seed: 1n });
    const packed = await DropoutContext.create(device, { seed: 1n, f16Path: 'packed' });
    try {
      expect([native.f16Path, packed.f16Path]).toEqual(['native', 'packed']);
      const x = allHalves();
      const opts = { p: 0.3, seed: SEED, stream: 6n, offset: 3n };
      const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
      expectBits(await forward(packed, x, opts), want, 'packed');
      expectBits(await forward(native, x, opts), want, 'native');
    } finally {
      native.destroy();
      packed.destroy();
    }
  });
});

/** Outputs of every structured op on context c, each read as halves with its poison checked. */
async function structuredOutputs(
  c: DropoutContext,
  shape: number[],
  noise: number[],
  offset: bigint,
): Promise<Record<string, Uint16Array>> {
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
  const read = async (name: string, b: GPUBuffer, m = n) => {
    out[name] = await readHalves(c, b, m);
  };

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
        expectBits(
          await readHalves(c, y, n),
          referenceStructuredDropout(x, opts) as Uint16Array,
          `shape ${shape} chunk ${c.maxChunkElements}`,
        );
      }
    }
  });

  it("every op (forward and backward) gives the native path's bits on lavapipe, where both run", async () => {
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

/** NaNs of both signs with different payloads: wherever one is kept, the result is 0x7e00. */
const NANS = [0x7e00, 0xfe00, 0x7c01, 0xfc01, 0x7fff, 0xffff] as const;
const isNanHalf = (h: number) => (h & 0x7fff) > 0x7c00;
const hex = (h: number) => `0x${h.toString(16)}`;

/** n halves, half of them drawn from `specials`, the others k / 4 in [-4, 4) (or +-0 with
 * `zeros`): sums and doublings of these are exact in f32 and f16, so the only bits in question
 * are a NaN's. The last three are negative specials, so the scalar tail sees them. */
function nanMix(n: number, seed: number, specials: readonly number[], zeros = false): Uint16Array {
  const rng = testRng(seed);
  const negative = specials.filter((h) => h & 0x8000);
  return Uint16Array.from({ length: n }, (_, i) => {
    if (i >= n - 3) return negative[rng() % negative.length]!;
    const r = rng() % (2 * specials.length);
    if (r < specials.length) return specials[r]!;
    return zeros ? (rng() & 1) * 0x8000 : toHalfBits(((rng() % 32) - 16) / 4);
  });
}

interface NanCase {
  /** GPU output, its reference, and the op's inputs (element-aligned, the first one x or dy). */
  got: Uint16Array;
  want: Uint16Array;
  inputs: Uint16Array[];
}

/** What one output covers: each input NaN pattern kept ('nan 0x..'), a NaN from infinities of both
 * signs ('generated'), and in the scalar tail (the last count % 4 elements) a kept negative NaN
 * ('tail'). */
function coverage(c: NanCase): Set<string> {
  const tags = new Set<string>();
  const n = c.want.length;
  c.want.forEach((h, i) => {
    if (!isNanHalf(h)) return;
    const from = c.inputs.map((a) => a[i]!).find(isNanHalf);
    tags.add(from === undefined ? 'generated' : `nan ${hex(from)}`);
    if (i >= n - (n % 4) && from !== undefined && from & 0x8000) tags.add('tail');
  });
  return tags;
}

const NAN_SPECIALS = [...NANS, 0x7c00, 0xfc00];
const NAN_SHAPES: [shape: number[], noise: number[], offset: bigint][] = [
  [[9, 13], [9, 13], 1n],
  [[3, 5, 7], [3, 1, 7], 2n],
  [[7], [7], 3n],
  [[3], [3], 0n],
];

type AddCase = (name: string, got: Uint16Array, want: Uint16Array, inputs: Uint16Array[]) => void;

/** DropPath add and the fused bias + dropout + residual op with its backward, inputs drawn from
 * `specials` (bias: infinities). */
async function residualNanCases(
  c: DropoutContext,
  add: AddCase,
  shape: number[],
  rand: { seed: bigint; stream: bigint; offset: bigint },
  seed: number,
  specials: readonly number[],
): Promise<void> {
  const n = shapeSize(shape);
  const cols = shape[shape.length - 1]!;
  const x = nanMix(n, seed, specials);
  const res = nanMix(n, seed + 1, specials);
  const dy = nanMix(n, seed + 2, specials);
  const bias = nanMix(cols, seed + 3, [0x7c00, 0xfc00]);
  const opts = { p: 0.5, shape, ...rand };
  const pathNoise = dropPathNoiseShape(shape);

  let y = poisonedHalves(c, n);
  const dp = await dropPathAdd(c, c.upload(res), c.upload(x), { ...opts, dtype: 'f16', out: y });
  add('dropPathAdd', await readHalves(c, y, n), referenceDropPathAdd(res, x, { ...opts, noiseShape: pathNoise }) as Uint16Array, [x, res]);
  y = poisonedHalves(c, n);
  await dropPathAddBackward(c, c.upload(dy), dp.state, { out: y });
  add('dropPathAddBackward', await readHalves(c, y, n), referenceStructuredDropout(dy, { ...opts, noiseShape: pathNoise }) as Uint16Array, [
    dy,
  ]);

  y = poisonedHalves(c, n);
  const b = await biasDropoutResidual(c, c.upload(x), c.upload(bias), c.upload(res), { ...opts, dtype: 'f16', out: y });
  const biasAt = Uint16Array.from({ length: n }, (_, i) => bias[i % cols]!);
  add('biasDropoutResidual', await readHalves(c, y, n), referenceBiasDropoutResidual(x, bias, res, opts) as Uint16Array, [x, res, biasAt]);
  const outX = poisonedHalves(c, n);
  const outBias = poisonedHalves(c, cols);
  await biasDropoutResidualBackward(c, c.upload(dy), b.state, { outX, outBias });
  const grads = referenceBiasDropoutResidualBackward(dy, opts);
  add('biasDropoutResidualBackward dx', await readHalves(c, outX, n), grads.dx as Uint16Array, [dy]);
  // A column's sum is NaN from a NaN in it or from infinities of both signs.
  const columnNaN = Uint16Array.from({ length: cols }, (_, col) => dy.find((h, i) => i % cols === col && isNanHalf(h)) ?? 0);
  add('biasDropoutResidualBackward dbias', await readHalves(c, outBias, cols), grads.dbias as Uint16Array, [columnNaN]);
}

/** Every f16 op on context c fed kept NaNs (and, for the residual ops, opposite infinities), each
 * output read as halves with its poison checked, with the reference for it. */
async function nanCases(c: DropoutContext): Promise<Record<string, NanCase[]>> {
  const cases: Record<string, NanCase[]> = {};
  const add: AddCase = (name, got, want, inputs) => {
    cases[name] ??= [];
    cases[name].push({ got, want, inputs });
  };

  for (const [n, offset] of [
    [3, 0n],
    [7, 1n],
    [117, 3n],
    [1029, 2n],
  ] as const) {
    const x = nanMix(n, n, NAN_SPECIALS);
    const opts = { p: 0.5, seed: SEED, stream: 11n, offset };
    const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
    add('dropout', await forward(c, x, opts), want, [x]);
    add('dropout in place', await forward(c, x, opts, true), want, [x]);
    const state = { ...opts, count: n, dtype: 'f16' as const, training: true };
    const dx = poisonedHalves(c, n);
    await dropoutBackward(c, c.upload(x), state, { out: dx });
    add('dropoutBackward', await readHalves(c, dx, n), want, [x]);
    const inPlace = poisonedWith(c, x);
    await dropoutBackward(c, inPlace, state, { out: inPlace });
    add('dropoutBackward in place', await readHalves(c, inPlace, n), want, [x]);
    const mask = poisoned(c, 4 * Math.ceil(n / 32));
    const out = poisonedHalves(c, n);
    await dropout(c, c.upload(x), { ...opts, dtype: 'f16', count: n, out, mask });
    add('dropout with mask', await readHalves(c, out, n), want, [x]);
    const fromMask = poisonedHalves(c, n);
    await dropoutBackward(c, c.upload(x), state, { out: fromMask, mask });
    add('dropoutBackward from mask', await readHalves(c, fromMask, n), want, [x]);
    const fromMaskInPlace = poisonedWith(c, x);
    await dropoutBackward(c, fromMaskInPlace, state, { out: fromMaskInPlace, mask });
    add('dropoutBackward from mask in place', await readHalves(c, fromMaskInPlace, n), want, [x]);
    const array = await dropoutArray(c, x, opts);
    add('dropoutArray', array.output, want, [x]);
    const layer = new Dropout(c, { p: 0.5, dtype: 'f16' });
    const y = poisonedHalves(c, n);
    const r = await layer.forward(c.upload(x), { count: n, out: y });
    const layerWant = referenceDropout(x, { ...r.state, dtype: 'f16' }) as Uint16Array;
    add('Dropout layer', await readHalves(c, y, n), layerWant, [x]);
    const ly = poisonedHalves(c, n);
    await layer.backward(c.upload(x), r.state, { out: ly });
    add('Dropout layer backward', await readHalves(c, ly, n), layerWant, [x]);
  }

  for (const [k, [shape, noise, offset]] of NAN_SHAPES.entries()) {
    const n = shapeSize(shape);
    const x = nanMix(n, 40 + k, NAN_SPECIALS);
    const dy = nanMix(n, 50 + k, NAN_SPECIALS);
    // Gaussian and Alpha multiply by irrational factors: their finite inputs are +-0.
    const xz = nanMix(n, 60 + k, NAN_SPECIALS, true);
    const dyz = nanMix(n, 70 + k, NAN_SPECIALS, true);
    const rand = { seed: SEED, stream: 12n, offset };
    const opts = { p: 0.5, shape, noiseShape: noise, ...rand };

    let y = poisonedHalves(c, n);
    const s = await structuredDropout(c, c.upload(x), { ...opts, dtype: 'f16', out: y });
    add('structuredDropout', await readHalves(c, y, n), referenceStructuredDropout(x, opts) as Uint16Array, [x]);
    y = poisonedHalves(c, n);
    await structuredDropoutBackward(c, c.upload(dy), s.state, { out: y });
    add('structuredDropoutBackward', await readHalves(c, y, n), referenceStructuredDropout(dy, opts) as Uint16Array, [dy]);

    const gOpts = { ...opts, p: 0.3 };
    y = poisonedHalves(c, n);
    const g = await gaussianDropout(c, c.upload(xz), { ...gOpts, dtype: 'f16', out: y });
    add('gaussianDropout', await readHalves(c, y, n), referenceGaussianDropout(xz, gOpts) as Uint16Array, [xz]);
    y = poisonedHalves(c, n);
    await gaussianDropoutBackward(c, c.upload(dyz), g.state, { out: y });
    add('gaussianDropoutBackward', await readHalves(c, y, n), referenceGaussianDropout(dyz, gOpts) as Uint16Array, [dyz]);

    const aOpts = { ...opts, p: 0.2 };
    y = poisonedHalves(c, n);
    const a = await alphaDropout(c, c.upload(xz), { ...aOpts, dtype: 'f16', out: y });
    add('alphaDropout', await readHalves(c, y, n), referenceAlphaDropout(xz, aOpts) as Uint16Array, [xz]);
    y = poisonedHalves(c, n);
    await alphaDropoutBackward(c, c.upload(dyz), a.state, { out: y });
    add('alphaDropoutBackward', await readHalves(c, y, n), referenceAlphaDropoutBackward(dyz, aOpts) as Uint16Array, [dyz]);

    // The residual ops twice: with the NaNs, and with infinities only, whose opposite signs meet
    // in x + bias, residual + branch and the bias gradient's column sums.
    for (const [set, specials] of [
      [0, NAN_SPECIALS],
      [1, [0x7c00, 0xfc00]],
    ] as const)
      await residualNanCases(c, add, shape, rand, 100 + 10 * k + set, specials);
  }
  return cases;
}

describe('kept NaNs on both f16 paths', () => {
  it('every op gives the reference bits, each kept NaN (any sign, any payload, or from -Inf + Inf) as 0x7e00', async () => {
    const { device } = await nodeDevice();
    const native = device.features.has('shader-f16') ? await DropoutContext.create(device, { seed: 1n }) : undefined;
    if (!native) console.warn('native f16 not checked: the adapter lacks shader-f16');
    try {
      expect(native?.f16Path ?? 'native').toBe('native');
      const failures: string[] = [];
      const uncovered: string[] = [];
      for (const c of native ? [native, ctx] : [ctx]) {
        const cases = await nanCases(c);
        for (const [name, list] of Object.entries(cases)) {
          for (const [k, { got, want }] of list.entries()) {
            const m = mismatch(got, want);
            if (m) failures.push(`${c.f16Path} ${name} case ${k}: ${m}`);
          }
          // The data reaches what the test is about: every NaN pattern kept, a kept negative NaN in
          // the scalar tail, and (residual sums, the bias gradient) a NaN from -Inf + Inf.
          const tags = new Set(list.flatMap((one) => [...coverage(one)]));
          const needed = name.endsWith('dbias') ? ['generated'] : [...NANS.map((h) => `nan ${hex(h)}`), 'tail'];
          if (name === 'dropPathAdd' || name === 'biasDropoutResidual') needed.push('generated');
          for (const tag of needed) if (!tags.has(tag)) uncovered.push(`${c.f16Path} ${name}: ${tag}`);
        }
      }
      expect({ failures, uncovered }).toEqual({ failures: [], uncovered: [] });
    } finally {
      native?.destroy();
    }
  });
});
