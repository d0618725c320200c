// Dropout forward and backward on the GPU against the CPU reference: f32 bit for bit, f16 within
// 1 ulp (on the context's f16 path: native where the adapter has shader-f16); in place, eval mode, p = 0 and p = 1, the packed mask and the backward that reads it,
// and the Dropout layer on top.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepRule } from '../src/contract.js';
import {
  Dropout,
  type DropoutContext,
  type DropoutOptions,
  type DropoutState,
  type Dtype,
  dropout,
  dropoutBackward,
  PhiloxGenerator,
  thresholdFor,
  toHalfArray,
  toHalfBits,
} from '../src/index.js';
import {
  applyKeepMask,
  packMask,
  referenceDropout,
  referenceDropoutBackward,
  referenceKeepMask,
  referenceWords,
  unpackMask,
} from '../src/reference.js';
import { mismatch } from './fixture.js';
import { gpuContext, nodeDevice, POISON_WORD, poisoned, testData } from './gpu.js';

const SEED = 0xdeadbeef_00c0ffeen;
const SIZES = [1, 3, 5, 1023];
const BIG = 2 ** 20 + 3;
const OFFSETS = [0n, 1n, 2n, 3n, 5n, 2n ** 33n + 1n];
const STREAMS = [0n, 2n ** 32n, 2n ** 64n - 1n];
/** Poisoned words written past the end of every output, to catch writes past count. */
const GUARD_WORDS = 2;

let ctx: DropoutContext;
beforeAll(async () => {
  ctx = await gpuContext();
});
/** Largest f16 difference seen from the reference, in ulps (reported, bounded by 1). */
let worstF16Ulps = 0;
afterAll(() => {
  if (ctx) console.log(`dropout f16: worst difference from referenceDropout = ${worstF16Ulps} ulp`);
});

type Data = Float32Array | Uint16Array;

function dataBytes(dtype: Dtype, n: number): number {
  return Math.ceil((n * (dtype === 'f16' ? 2 : 4)) / 4) * 4;
}

/** A poisoned output with guard words after the `n` elements. */
function poisonedOut(dtype: Dtype, n: number): GPUBuffer {
  return poisoned(ctx, dataBytes(dtype, n) + 4 * GUARD_WORDS);
}

/** Reads `n` elements of `buffer`, and checks that everything after them still holds the poison. */
async function readChecked(buffer: GPUBuffer, dtype: Dtype, n: number): Promise<Data> {
  const words = new Uint32Array(await ctx.readBytes(buffer, buffer.size));
  const halves = new Uint16Array(words.buffer);
  const poisonHalves = new Uint16Array(Uint32Array.of(POISON_WORD).buffer);
  if (dtype === 'f16') {
    for (let i = n; i < halves.length; i++) expect(halves[i], `f16 element ${i} past count ${n} was written`).toBe(poisonHalves[i % 2]);
    return halves.slice(0, n);
  }
  for (let i = n; i < words.length; i++) expect(words[i], `f32 element ${i} past count ${n} was written`).toBe(POISON_WORD);
  return new Float32Array(words.buffer.slice(0, 4 * n));
}

function inputData(dtype: Dtype, n: number, salt: number): Data {
  const x = testData(n, salt);
  return dtype === 'f16' ? toHalfArray(x) : x;
}

/** f16 bits as a monotone integer line, so adjacent values differ by 1. */
function halfOrder(h: number): number {
  return h & 0x8000 ? -(h & 0x7fff) : h;
}

/** f32: bit-exact. f16: same keep decisions (zeros where the reference is 0) and within 1 ulp. */
function compare(got: Data, want: Data, what: string): void {
  if (got instanceof Float32Array) {
    expect(mismatch(got, want as Float32Array), what).toBeNull();
    return;
  }
  const w = want as Uint16Array;
  expect(got.length, what).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    const zeroWanted = (w[i]! & 0x7fff) === 0;
    const ulps = Math.abs(halfOrder(got[i]!) - halfOrder(w[i]!));
    const ok = zeroWanted ? got[i] === w[i] : ulps <= 1;
    if (ok) worstF16Ulps = Math.max(worstF16Ulps, ulps);
    if (!ok) expect(`${what}: element ${i} = 0x${got[i]!.toString(16)}`).toBe(`0x${w[i]!.toString(16)} (within 1 ulp)`);
  }
}

async function runForward(dtype: Dtype, x: Data, opts: Omit<DropoutOptions, 'out' | 'dtype'>, inPlace = false) {
  const xb = inPlace ? poisonedOut(dtype, x.length) : ctx.upload(x);
  if (inPlace) ctx.device.queue.writeBuffer(xb, 0, padded(x));
  const out = inPlace ? xb : poisonedOut(dtype, x.length);
  const result = await dropout(ctx, xb, { ...opts, dtype, count: x.length, out });
  expect(result.output).toBe(out);
  return { xb, out, result, y: await readChecked(out, dtype, x.length) };
}

/** Typed data padded with the poison to whole 4-byte words, for writeBuffer over a poisoned buffer. */
function padded(x: Data): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new Uint32Array(Math.ceil(x.byteLength / 4)).fill(POISON_WORD).buffer);
  bytes.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  return bytes;
}

for (const dtype of ['f32', 'f16'] as const) {
  const exactness = dtype === 'f32' ? 'bit for bit' : 'within 1 ulp';
  describe(`dropout ${dtype} equals the CPU reference ${exactness}`, () => {
    it(`forward over sizes ${SIZES.join(', ')}, 2^20+3, offsets ${OFFSETS.join(', ')} and 64-bit streams; state is returned`, async () => {
      const all = SIZES.flatMap((n) => OFFSETS.flatMap((offset) => STREAMS.map((stream) => ({ n, offset, stream, p: 0.3 }))));
      all.push(
        { n: 1023, offset: 3n, stream: 7n, p: 0.9 },
        { n: 1023, offset: 2n, stream: 8n, p: 0.01 },
        { n: BIG, offset: 2n ** 33n + 1n, stream: 2n ** 32n + 1n, p: 0.5 },
      );
      for (const { n, offset, stream, p } of all) {
        const x = inputData(dtype, n, n);
        const { result, y } = await runForward(dtype, x, { p, seed: SEED, stream, offset });
        expect(result.state).toEqual({ seed: SEED, stream, offset, p, count: n, dtype, training: true });
        compare(y, referenceDropout(x, { p, seed: SEED, stream, offset, dtype }), `n=${n} offset=${offset} stream=${stream} p=${p}`);
      }
    });

    it('backward regenerates the forward mask: dx == referenceDropoutBackward(dy, state)', async () => {
      for (const [n, offset] of [
        [5, 3n],
        [1023, 2n ** 33n + 1n],
        [4099, 1n],
      ] as const) {
        const x = inputData(dtype, n, 1);
        const { result } = await runForward(dtype, x, { p: 0.4, seed: SEED, stream: 2n ** 40n, offset });
        const dy = inputData(dtype, n, 2);
        const out = poisonedOut(dtype, n);
        expect(await dropoutBackward(ctx, ctx.upload(dy), result.state, { out })).toBe(out);
        const want = referenceDropoutBackward(dy, { p: 0.4, seed: SEED, stream: 2n ** 40n, offset, dtype });
        compare(await readChecked(out, dtype, n), want, `backward n=${n} offset=${offset}`);
      }
    });

    it('in place (out === x), forward and backward', async () => {
      for (const n of [3, 1023, 4101]) {
        const x = inputData(dtype, n, 3);
        const { y, result } = await runForward(dtype, x, { p: 0.5, seed: SEED, stream: 11n, offset: 5n }, true);
        compare(y, referenceDropout(x, { p: 0.5, seed: SEED, stream: 11n, offset: 5n, dtype }), `in-place forward n=${n}`);
        const dy = inputData(dtype, n, 4);
        const dyb = poisonedOut(dtype, n);
        ctx.device.queue.writeBuffer(dyb, 0, padded(dy));
        expect(await dropoutBackward(ctx, dyb, result.state, { out: dyb })).toBe(dyb);
        compare(
          await readChecked(dyb, dtype, n),
          referenceDropout(dy, { p: 0.5, seed: SEED, stream: 11n, offset: 5n, dtype }),
          `in-place backward n=${n}`,
        );
      }
    });

    it('the packed mask equals packMask(referenceKeepMask); backward reading it equals the regenerated backward', async () => {
      for (const [n, offset] of [
        [1, 0n],
        [37, 3n],
        [1023, 1n],
        [4133, 2n ** 33n + 1n],
      ] as const) {
        const x = inputData(dtype, n, 5);
        const xb = ctx.upload(x);
        const out = poisonedOut(dtype, n);
        const maskWords = Math.ceil(n / 32);
        const mask = poisoned(ctx, 4 * (maskWords + GUARD_WORDS));
        const result = await dropout(ctx, xb, { p: 0.3, dtype, count: n, seed: SEED, stream: 3n, offset, out, mask });
        expect(result.mask).toBe(mask);
        const maskRead = new Uint32Array(await ctx.readBytes(mask, mask.size));
        expect(
          mismatch(maskRead.subarray(0, maskWords), packMask(referenceKeepMask(n, 0.3, { seed: SEED, stream: 3n, offset }))),
        ).toBeNull();
        expect(Array.from(maskRead.subarray(maskWords))).toEqual(new Array(GUARD_WORDS).fill(POISON_WORD));
        // The output written in the same pass as the mask (the fused forward).
        compare(
          await readChecked(out, dtype, n),
          referenceDropout(x, { p: 0.3, seed: SEED, stream: 3n, offset, dtype }),
          `forward with mask n=${n}`,
        );

        const dy = inputData(dtype, n, 6);
        const dyb = ctx.upload(dy);
        const regenerated = poisonedOut(dtype, n);
        const fromMask = poisonedOut(dtype, n);
        await dropoutBackward(ctx, dyb, result.state, { out: regenerated });
        await dropoutBackward(ctx, dyb, result.state, { out: fromMask, mask });
        const a = await readChecked(regenerated, dtype, n);
        const b = await readChecked(fromMask, dtype, n);
        expect(mismatch(b, a), `mask-read backward n=${n}`).toBeNull();
        // In place, reading the mask.
        const inPlace = poisonedOut(dtype, n);
        ctx.device.queue.writeBuffer(inPlace, 0, padded(dy));
        await dropoutBackward(ctx, inPlace, result.state, { out: inPlace, mask });
        expect(mismatch(await readChecked(inPlace, dtype, n), a), `in-place mask-read backward n=${n}`).toBeNull();
      }
    });

    it('p = 1 writes zeros (whatever x holds) and an all-zero mask', async () => {
      const x =
        dtype === 'f32' ? Float32Array.of(1, -2, Infinity, -Infinity, NaN, -0, 3) : toHalfArray([1, -2, Infinity, -Infinity, NaN, -0, 3]);
      const mask = poisoned(ctx, 4);
      const out = poisonedOut(dtype, x.length);
      await dropout(ctx, ctx.upload(x), { p: 1, dtype, count: x.length, seed: SEED, out, mask });
      const y = await readChecked(out, dtype, x.length);
      expect(Array.from(y)).toEqual(new Array(x.length).fill(0));
      expect(Object.is(y[5], -0)).toBe(false);
      expect(new Uint32Array(await ctx.readBytes(mask, 4))[0]).toBe(0);
    });

    it('p = 0 is the identity: returns x itself without out, copies into out, mask all ones', async () => {
      const n = 1029;
      const x = inputData(dtype, n, 7);
      const xb = ctx.upload(x);
      const same = await dropout(ctx, xb, { p: 0, dtype, count: n, seed: SEED });
      expect(same.output).toBe(xb);
      expect(await dropoutBackward(ctx, xb, same.state)).toBe(xb);
      const out = poisonedOut(dtype, n);
      const mask = poisoned(ctx, 4 * Math.ceil(n / 32));
      await dropout(ctx, xb, { p: 0, dtype, count: n, seed: SEED, out, mask });
      expect(mismatch(await readChecked(out, dtype, n), x)).toBeNull();
      expect(mismatch(new Uint32Array(await ctx.readBytes(mask, mask.size)), packMask(new Uint8Array(n).fill(1)))).toBeNull();
    });

    it('eval mode is the identity, returns x, and takes no stream', async () => {
      const n = 1030;
      const x = inputData(dtype, n, 8);
      const xb = ctx.upload(x);
      const gen = new PhiloxGenerator(5n, 17n);
      const before = ctx.generator.stream;
      const r = await dropout(ctx, xb, { p: 0.5, dtype, count: n, training: false, generator: gen });
      const r2 = await dropout(ctx, xb, { p: 0.5, dtype, count: n, training: false });
      expect(r.output).toBe(xb);
      expect(r2.output).toBe(xb);
      expect(gen.stream).toBe(17n);
      expect(ctx.generator.stream).toBe(before);
      expect(r.state.training).toBe(false);
      expect(await dropoutBackward(ctx, xb, r.state)).toBe(xb);
      // With an out buffer, eval copies x.
      const out = poisonedOut(dtype, n);
      await dropout(ctx, xb, { p: 0.5, dtype, count: n, training: false, out });
      expect(mismatch(await readChecked(out, dtype, n), x)).toBeNull();
      const dx = poisonedOut(dtype, n);
      await dropoutBackward(ctx, xb, r.state, { out: dx });
      expect(mismatch(await readChecked(dx, dtype, n), x)).toBeNull();
    });
  });
}

describe('the keep rule at its boundary, and paths random data rarely reaches', () => {
  it('a word equal to the threshold is kept, one below it drops: vec4 body, straddling and tail paths, fused mask, backward', async () => {
    // keep iff word >= T (docs/DESIGN.md). A word equal to T comes up with probability 2^-32 per element,
    // so random tests never meet it: here p is chosen to make T exactly the word of one element.
    const n = 5;
    const x = Float32Array.from({ length: n }, (_, i) => i + 1);
    const stream = 9n;
    // Offset 0: elements 0-3 in the vec4 body, 4 in the scalar tail; offset 1: the body straddles groups.
    for (const offset of [0n, 1n]) {
      const words = referenceWords(SEED, stream, n, offset);
      for (const i of [1, 4]) {
        const w = words[i]!;
        expect(w, 'a word of 0 would make p = 0').toBeGreaterThan(0);
        for (const [threshold, kept] of [
          [w, true],
          [w + 1, false],
        ] as const) {
          const p = threshold / 2 ** 32; // exact: round(p * 2^32) === threshold
          expect(thresholdFor(p)).toBe(threshold);
          const label = `offset ${offset}, element ${i}, T = word${kept ? '' : ' + 1'}`;
          expect(referenceKeepMask(n, p, { seed: SEED, stream, offset })[i], label).toBe(kept ? 1 : 0);
          const scale = 1 / (1 - p);
          const want = referenceDropout(x, { p, seed: SEED, stream, offset }) as Float32Array;
          expect(want[i], label).toBe(kept ? Math.fround(x[i]! * scale) : 0);

          const mask = poisoned(ctx, 4);
          const { y, result } = await runForward('f32', x, { p, seed: SEED, stream, offset });
          compare(y, want, `forward, ${label}`);
          const fused = poisonedOut('f32', n);
          await dropout(ctx, ctx.upload(x), { p, seed: SEED, stream, offset, out: fused, mask });
          compare(await readChecked(fused, 'f32', n), want, `forward with mask, ${label}`);
          expect((new Uint32Array(await ctx.readBytes(mask, 4))[0]! >>> i) & 1, `mask bit, ${label}`).toBe(kept ? 1 : 0);
          const dx = poisonedOut('f32', n);
          await dropoutBackward(ctx, ctx.upload(x), result.state, { out: dx });
          compare(await readChecked(dx, 'f32', n), want, `backward, ${label}`);
        }
      }
    }
  });

  it('the threshold is round(p 2^32); p within 2^-33 of 1 keeps nothing, on the GPU and in the reference', async () => {
    expect(thresholdFor(0.3)).toBe(1288490189); // 0.3 * 2^32 = 1288490188.8
    expect(thresholdFor(0.5)).toBe(2 ** 31);
    expect(thresholdFor(2 ** -33)).toBe(1); // 0.5 rounds up
    expect(thresholdFor(2 ** -34)).toBe(0);
    // round(p 2^32) = 2^32 would wrap to 0 in a u32 (keep all, scaled by 2^40): it is the zeros rule.
    const p = 1 - 2 ** -40;
    expect(keepRule(p).kind).toBe('zeros');
    const n = 1031;
    const x = testData(n, 3);
    const { y } = await runForward('f32', x, { p, seed: SEED, stream: 2n, offset: 0n });
    expect(Array.from(y).every((v) => Object.is(v, 0))).toBe(true);
    expect(Array.from(referenceKeepMask(n, p, { seed: SEED, stream: 2n })).every((v) => v === 0)).toBe(true);
  });

  it('backward from a caller-made mask reads every bit position, in the body and the tail, in place too', async () => {
    // Random masks agree with a wrong bit position often enough to hide it; alternating halves do not.
    for (const n of [37, 61, 1023]) {
      const bits = Uint32Array.from({ length: Math.ceil(n / 32) }, (_, k) => (k % 2 ? 0xaaaa5555 : 0x5555aaaa));
      const maskBuffer = ctx.upload(bits);
      const state: DropoutState = { seed: 1n, stream: 0n, offset: 0n, p: 0.5, count: n, dtype: 'f32', training: true };
      const dy = testData(n, 7);
      const want = applyKeepMask(dy, unpackMask(bits, n), 0.5, 'f32');
      const out = poisonedOut('f32', n);
      await dropoutBackward(ctx, ctx.upload(dy), state, { out, mask: maskBuffer });
      compare(await readChecked(out, 'f32', n), want, `mask-read backward n=${n}`);
      const inPlace = poisonedOut('f32', n);
      ctx.device.queue.writeBuffer(inPlace, 0, padded(dy));
      await dropoutBackward(ctx, inPlace, state, { out: inPlace, mask: maskBuffer });
      compare(await readChecked(inPlace, 'f32', n), want, `in-place mask-read backward n=${n}`);
    }
  });

  it('in-place forward that also writes the mask', async () => {
    for (const [n, offset] of [
      [1029, 1n],
      [64, 0n],
    ] as const) {
      const x = testData(n, 4);
      const opts = { p: 0.3, seed: SEED, stream: 2n, offset };
      const { y, result } = await runForward('f32', x, { ...opts, mask: true }, true);
      compare(y, referenceDropout(x, opts), `in-place forward with mask n=${n}`);
      const maskWords = new Uint32Array(await ctx.readBytes(result.mask!, 4 * Math.ceil(n / 32)));
      expect(mismatch(maskWords, packMask(referenceKeepMask(n, 0.3, opts))), `mask n=${n}`).toBeNull();
    }
  });

  it("f16: on lavapipe (the tests' default adapter) f16 dropout equals the reference bit for bit", async () => {
    // WGSL lets an f32 -> f16 conversion round to either neighbour, so elsewhere the tests allow
    // 1 ulp; lavapipe rounds to nearest even, as the reference does (0 ulp over every f16 test),
    // and there the 1-ulp tolerance would hide a product done in f16 (a second rounding).
    // Dawn's SwiftShader has no shader-f16.
    // (The packed path, which devices without shader-f16 take, is bit-exact everywhere:
    // tests/f16-packed.test.ts.)
    const { icd } = await nodeDevice();
    if (ctx.f16Path !== 'native' || !/lvp_icd/.test(icd ?? '')) {
      console.warn(
        `native f16 bit-exactness not checked: ${ctx.f16Path === 'native' ? `the adapter (ICD ${icd ?? 'from the system loader'}) is not lavapipe` : `f16 takes the ${ctx.f16Path} path`}`,
      );
      return;
    }
    for (const [n, p] of [
      [4099, 0.3],
      [1023, 0.1],
      [517, 0.7],
    ] as const) {
      const x = toHalfArray(testData(n, 8));
      const { y } = await runForward('f16', x, { p, seed: SEED, stream: 5n, offset: 3n });
      expect(mismatch(y, referenceDropout(x, { p, seed: SEED, stream: 5n, offset: 3n, dtype: 'f16' })), `n=${n} p=${p}`).toBeNull();
    }
  });

  it('the reference rounds to f16 with ties to even, subnormals included', () => {
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie: the even neighbour is below
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // a tie: the even neighbour is above
    expect(toHalfBits(-(1 + 2 ** -11))).toBe(0xbc00);
    expect(toHalfBits(2 ** -25)).toBe(0); // half the smallest subnormal
    expect(toHalfBits(3 * 2 ** -25)).toBe(2);
    expect(toHalfBits(65520)).toBe(0x7c00); // halfway to the next binade past the largest f16: infinity
    expect(toHalfBits(65519)).toBe(0x7bff);
  });
});

describe('dropout f32 special values and recording into a caller encoder', () => {
  it('infinities, -0 and overflow follow the reference bit for bit; NaN stays NaN where kept', async () => {
    const n = 4096;
    const x = testData(n, 9);
    for (let i = 0; i < n; i += 7) x[i] = [Infinity, -Infinity, -0, 3.4e38, -3.4e38, NaN][(i / 7) % 6]!;
    const { y } = await runForward('f32', x, { p: 0.3, seed: SEED, stream: 1n, offset: 1n });
    const want = referenceDropout(x, { p: 0.3, seed: SEED, stream: 1n, offset: 1n }) as Float32Array;
    const y32 = y as Float32Array;
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(want[i]!)) expect(Number.isNaN(y32[i]!), `element ${i}`).toBe(true);
      else if (!Object.is(y32[i], want[i])) expect(`${i}: ${y32[i]}`).toBe(`${i}: ${want[i]}`);
    }
  });

  it('work recorded into the caller encoder runs on the caller submit', async () => {
    const n = 777;
    const x = testData(n, 10);
    const out = poisonedOut('f32', n);
    const encoder = ctx.device.createCommandEncoder();
    await dropout(ctx, ctx.upload(x), { p: 0.2, seed: SEED, stream: 4n, out, encoder });
    ctx.device.queue.submit([encoder.finish()]);
    compare(await readChecked(out, 'f32', n), referenceDropout(x, { p: 0.2, seed: SEED, stream: 4n }), 'encoder path');
  });
});

describe('Dropout layer', () => {
  it('train(): forward drops with successive streams and returns the state backward needs', async () => {
    const gen = new PhiloxGenerator(0xabcn, 100n);
    const layer = new Dropout(ctx, { p: 0.25, generator: gen });
    expect(layer.training).toBe(true);
    const n = 1031;
    const x = testData(n, 11);
    const xb = ctx.upload(x);
    const states: DropoutState[] = [];
    for (let k = 0; k < 2; k++) {
      const out = poisonedOut('f32', n);
      const { output, state } = await layer.forward(xb, { out });
      expect(output).toBe(out);
      expect(state).toEqual({ seed: 0xabcn, stream: 100n + BigInt(k), offset: 0n, p: 0.25, count: n, dtype: 'f32', training: true });
      compare(await readChecked(out, 'f32', n), referenceDropout(x, { p: 0.25, seed: 0xabcn, stream: state.stream }), `layer forward ${k}`);
      states.push(state);
    }
    const dy = testData(n, 12);
    const dx = poisonedOut('f32', n);
    await layer.backward(ctx.upload(dy), states[0]!, { out: dx });
    compare(await readChecked(dx, 'f32', n), referenceDropoutBackward(dy, { p: 0.25, seed: 0xabcn, stream: 100n }), 'layer backward');
  });

  it('eval(): forward returns x and takes no stream; train() switches back', async () => {
    const gen = new PhiloxGenerator(1n, 5n);
    const layer = new Dropout(ctx, { p: 0.5, generator: gen }).eval();
    expect(layer.training).toBe(false);
    const xb = ctx.upload(testData(64, 13));
    const { output, state } = await layer.forward(xb);
    expect(output).toBe(xb);
    expect(state.training).toBe(false);
    expect(await layer.backward(xb, state)).toBe(xb);
    expect(gen.stream).toBe(5n);
    layer.train();
    const again = await layer.forward(xb);
    expect(again.output).not.toBe(xb);
    expect(again.state.stream).toBe(5n);
  });

  it('inPlace: forward overwrites x and backward overwrites dy', async () => {
    const layer = new Dropout(ctx, { p: 0.5, inPlace: true, generator: new PhiloxGenerator(77n) });
    const n = 515;
    const x = testData(n, 14);
    const xb = poisonedOut('f32', n);
    ctx.device.queue.writeBuffer(xb, 0, padded(x));
    const { output, state } = await layer.forward(xb, { count: n });
    expect(output).toBe(xb);
    compare(await readChecked(xb, 'f32', n), referenceDropout(x, { p: 0.5, seed: 77n, stream: 0n }), 'in-place layer forward');
    const dy = testData(n, 15);
    const dyb = poisonedOut('f32', n);
    ctx.device.queue.writeBuffer(dyb, 0, padded(dy));
    expect(await layer.backward(dyb, state)).toBe(dyb);
    compare(await readChecked(dyb, 'f32', n), referenceDropout(dy, { p: 0.5, seed: 77n, stream: 0n }), 'in-place layer backward');
  });

  it('p defaults to 0.5; forward with mask: true returns the packed keep-mask', async () => {
    expect(new Dropout(ctx).p).toBe(0.5);
    const layer = new Dropout(ctx, { p: 0.3, generator: new PhiloxGenerator(8n, 2n) });
    const n = 100;
    const result = await layer.forward(ctx.upload(testData(n)), { mask: true });
    expect(result.mask).toBeDefined();
    const words = new Uint32Array(await ctx.readBytes(result.mask!, 16));
    expect(mismatch(words, packMask(referenceKeepMask(n, 0.3, { seed: 8n, stream: 2n })))).toBeNull();
  });

  it('rejects a bad p and a bad generator at construction', () => {
    expect(() => new Dropout(ctx, { p: 1.5 })).toThrow(/p: expected a number in \[0, 1\]/);
    expect(() => new Dropout(ctx, { generator: {} as PhiloxGenerator })).toThrow(/generator/);
  });
});
