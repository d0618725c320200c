// The random ops on the GPU equal the CPU reference bit for bit (normals within a stated
// tolerance) over sizes, offsets not divisible by 4 and 64-bit streams; the mask does not depend on
// chunking, workgroup size or sharding; generators hand out successive, replayable streams.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  bernoulliMask,
  type DropoutContext,
  dropout,
  PhiloxGenerator,
  type RandomOpOptions,
  type RandomResult,
  randomNormal,
  randomUniform,
  randomWords,
  readArray,
  structuredDropout,
  toHalfArray,
} from '../src/index.js';
import { kernels } from '../src/kernels/elementwise.js';
import { contractWords } from '../src/reference/philox.js';
import {
  packMask,
  referenceDropout,
  referenceKeepMask,
  referenceNormal,
  referenceStructuredDropout,
  referenceUniform,
} from '../src/reference.js';
import { runtimeOf } from '../src/runtime/context.js';
import { mismatch } from './fixture.js';
import { gpuContext, poisoned, testData } from './gpu.js';

const SMALL_SIZES = [1, 3, 5, 1023];
const BIG = 2 ** 20 + 3;
const OFFSETS = [0n, 1n, 2n, 3n, 5n, 2n ** 33n + 1n];
const STREAMS = [0n, 3n, 2n ** 32n, 2n ** 64n - 1n];
const SEED = 0x0123456789abcdefn;
/** GPU normals (f32 Box-Muller) against the f64 reference: |z - ref| <= 1e-5 * (1 + |ref|) (the shader
 * takes ln u1 from a series where u1 is near 1, because the f32 log there gave errors up to 1.8e-5
 * at |z| ~ 0.002). */
const NORMAL_TOLERANCE = 1e-5;

let ctx: DropoutContext;
beforeAll(async () => {
  ctx = await gpuContext();
});

type Op = (c: DropoutContext, o: RandomOpOptions) => Promise<RandomResult>;

/** Runs `op` into a poisoned output of `words` u32 and reads `words` back. */
async function gpuWords(c: DropoutContext, op: Op, opts: Omit<RandomOpOptions, 'out'>, words: number): Promise<Uint32Array> {
  const out = poisoned(c, words * 4);
  const { output, state } = await op(c, { ...opts, out });
  expect(output).toBe(out);
  if (opts.seed !== undefined)
    expect(state).toEqual({ seed: BigInt(opts.seed), stream: BigInt(opts.stream ?? 0n), offset: BigInt(opts.offset ?? 0n) });
  const got = await readArray(c, out, 'u32', words);
  c.release(out);
  return got;
}

/** Every (size, offset, stream) case: the small sizes against all offsets and streams, 2^20 + 3 against two. */
function cases(): { count: number; offset: bigint; stream: bigint }[] {
  const out = [];
  for (const count of SMALL_SIZES) for (const offset of OFFSETS) for (const stream of STREAMS) out.push({ count, offset, stream });
  out.push({ count: BIG, offset: 1n, stream: 2n ** 32n + 5n }, { count: BIG, offset: 2n ** 33n + 1n, stream: 2n ** 64n - 1n });
  return out;
}

describe('random ops equal the CPU reference bit for bit (sizes 1..2^20+3, odd offsets, 64-bit streams)', () => {
  it('randomWords == contractWords', async () => {
    for (const { count, offset, stream } of cases()) {
      const got = await gpuWords(ctx, randomWords, { count, seed: SEED, stream, offset }, count);
      expect(mismatch(got, contractWords(SEED, stream, count, offset)), `n=${count} offset=${offset} stream=${stream}`).toBeNull();
    }
  });

  it('randomUniform == referenceUniform, values in [0, 1)', async () => {
    for (const { count, offset, stream } of cases()) {
      const got = new Float32Array((await gpuWords(ctx, randomUniform, { count, seed: SEED, stream, offset }, count)).buffer);
      const want = referenceUniform(count, { seed: SEED, stream, offset });
      expect(mismatch(got, want), `n=${count} offset=${offset} stream=${stream}`).toBeNull();
      expect(got.every((u) => u >= 0 && u < 1)).toBe(true);
    }
  });

  it('bernoulliMask (one u32 per element) == referenceKeepMask for p = 0.3 and p = 0.999', async () => {
    for (const p of [0.3, 0.999]) {
      for (const { count, offset, stream } of cases()) {
        if (p !== 0.3 && count === BIG) continue;
        const got = await gpuWords(ctx, (c, o) => bernoulliMask(c, { ...o, p }), { count, seed: SEED, stream, offset }, count);
        const want = Uint32Array.from(referenceKeepMask(count, p, { seed: SEED, stream, offset }));
        expect(mismatch(got, want), `p=${p} n=${count} offset=${offset} stream=${stream}`).toBeNull();
      }
    }
  });

  it('bernoulliMask packed == packMask(referenceKeepMask), bits past count are 0', async () => {
    for (const { count, offset, stream } of [...cases(), { count: 64, offset: 7n, stream: 1n }, { count: 97, offset: 2n, stream: 2n }]) {
      const words = Math.ceil(count / 32);
      const got = await gpuWords(
        ctx,
        (c, o) => bernoulliMask(c, { ...o, p: 0.3, packed: true }),
        { count, seed: SEED, stream, offset },
        words,
      );
      const want = packMask(referenceKeepMask(count, 0.3, { seed: SEED, stream, offset }));
      expect(mismatch(got, want), `n=${count} offset=${offset} stream=${stream}`).toBeNull();
    }
  });

  it('bernoulliMask keeps an element whose word equals the threshold (keep iff word >= T), packed and unpacked', async () => {
    // A word equal to T has probability 2^-32 per element: p is chosen to make it happen.
    const count = 37; // unpacked: 9 vec4 groups and a scalar tail (element 36); packed: 2 words
    const words = contractWords(SEED, 6n, count, 3n);
    for (const i of [2, 36]) {
      for (const [threshold, kept] of [
        [words[i]!, 1],
        [words[i]! + 1, 0],
      ] as const) {
        const p = threshold / 2 ** 32;
        const label = `element ${i}, T = word${kept ? '' : ' + 1'}`;
        expect(referenceKeepMask(count, p, { seed: SEED, stream: 6n, offset: 3n })[i], label).toBe(kept);
        const unpacked = await gpuWords(ctx, (c, o) => bernoulliMask(c, { ...o, p }), { count, seed: SEED, stream: 6n, offset: 3n }, count);
        expect(unpacked[i], label).toBe(kept);
        const packed = await gpuWords(
          ctx,
          (c, o) => bernoulliMask(c, { ...o, p, packed: true }),
          { count, seed: SEED, stream: 6n, offset: 3n },
          2,
        );
        expect((packed[i >> 5]! >>> (i & 31)) & 1, `packed, ${label}`).toBe(kept);
      }
    }
  });

  it('the reference uniforms and normals are the documented functions of the contract words', () => {
    // GPU and reference are compared elsewhere; this pins the formulas themselves (README, random
    // ops): u = (w >> 8) 2^-24, and Box-Muller on word pairs with u1 = ((w >> 8) + 1) 2^-24, angle pi (2 u2 - 1).
    const n = 64;
    const words = contractWords(SEED, 3n, n, 1n);
    const u = referenceUniform(n, { seed: SEED, stream: 3n, offset: 1n });
    for (let i = 0; i < n; i++) expect(u[i], `uniform ${i}`).toBe(Math.fround((words[i]! >>> 8) * 2 ** -24));
    // Normals pair words within their Philox group: offset 0 so that pairs start at even elements.
    const pairWords = contractWords(SEED, 3n, n);
    const z = referenceNormal(n, { seed: SEED, stream: 3n });
    for (let i = 0; i < n; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(((pairWords[i]! >>> 8) + 1) * 2 ** -24));
      const theta = Math.PI * (2 * (pairWords[i + 1]! >>> 8) * 2 ** -24 - 1);
      expect(z[i], `normal ${i}`).toBeCloseTo(radius * Math.cos(theta), 6);
      expect(z[i + 1], `normal ${i + 1}`).toBeCloseTo(radius * Math.sin(theta), 6);
    }
  });

  it('bernoulliMask p = 0 keeps everything and p = 1 nothing (packed and unpacked), with no RNG', async () => {
    for (const count of [1, 5, 33, 1023]) {
      for (const p of [0, 1]) {
        const unpacked = await gpuWords(ctx, (c, o) => bernoulliMask(c, { ...o, p }), { count, seed: SEED, stream: 9n, offset: 3n }, count);
        expect(Array.from(unpacked)).toEqual(new Array(count).fill(p === 0 ? 1 : 0));
        const packed = await gpuWords(
          ctx,
          (c, o) => bernoulliMask(c, { ...o, p, packed: true }),
          { count, seed: SEED, stream: 9n, offset: 3n },
          Math.ceil(count / 32),
        );
        expect(mismatch(packed, packMask(new Uint8Array(count).fill(p === 0 ? 1 : 0))), `p=${p} n=${count}`).toBeNull();
      }
    }
  });

  // Box-Muller in f32 on the GPU against the f64 reference: within NORMAL_TOLERANCE * (1 + |z|)
  // everywhere, small radii included. The worst case is printed.
  it(`randomNormal is within ${NORMAL_TOLERANCE} * (1 + |z|) of referenceNormal, small radii included`, async () => {
    let worst = 0;
    let worstSmallRadius = 0;
    for (const { count, offset, stream } of cases()) {
      const got = new Float32Array((await gpuWords(ctx, randomNormal, { count, seed: SEED, stream, offset }, count)).buffer);
      const want = referenceNormal(count, { seed: SEED, stream, offset });
      const radius = boxMullerRadius(count, stream, offset);
      let bad = -1;
      for (let i = 0; i < count; i++) {
        const rel = Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!));
        if (!(rel <= NORMAL_TOLERANCE)) {
          bad = i;
          break;
        }
        worst = Math.max(worst, rel);
        if (radius[i]! < 0.05) worstSmallRadius = Math.max(worstSmallRadius, rel);
      }
      expect(bad, `n=${count} offset=${offset} stream=${stream}: at ${bad} got ${got[bad]} want ${want[bad]} (r = ${radius[bad]})`).toBe(
        -1,
      );
    }
    console.log(
      `randomNormal: worst |gpu - reference| / (1 + |z|): ${worst.toExponential(2)} (radius < 0.05: ${worstSmallRadius.toExponential(2)})`,
    );
  });
});

/** The Box-Muller radius sqrt(-2 ln u1) behind each normal, from the contract words (f64). */
function boxMullerRadius(count: number, stream: bigint, offset: bigint): Float64Array {
  const lead = Number(offset & 3n);
  const words = contractWords(SEED, stream, Math.ceil((count + lead) / 4) * 4, offset - BigInt(lead));
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const m = i + lead;
    out[i] = Math.sqrt(-2 * Math.log(((words[m - (m % 2)]! >>> 8) + 1) * 2 ** -24));
  }
  return out;
}

describe('the mask does not depend on chunking, workgroup size or sharding', () => {
  const COUNT = 25_003; // spans several chunks of 2048, 6144 and 10240 elements, with a scalar tail
  const OFFSET = 5n;
  const STREAM = 2n ** 32n + 11n;
  let unchunkedPacked: Uint32Array;
  let unchunkedDropout: Float32Array;
  let f16Unchunked: Uint16Array;
  const x = testData(COUNT, 3);

  async function packedMask(c: DropoutContext, count: number): Promise<Uint32Array> {
    return gpuWords(
      c,
      (cc, o) => bernoulliMask(cc, { ...o, p: 0.4, packed: true }),
      { count, seed: SEED, stream: STREAM, offset: OFFSET },
      Math.ceil(count / 32),
    );
  }

  async function dropoutOutput(c: DropoutContext, data: Float32Array): Promise<Float32Array> {
    const xb = c.upload(data);
    const out = poisoned(c, data.length * 4);
    await dropout(c, xb, { p: 0.4, seed: SEED, stream: STREAM, offset: OFFSET, out });
    const got = await readArray(c, out, 'f32', data.length);
    c.release(xb);
    c.release(out);
    return got;
  }

  /** What every chunking and tuning setting must reproduce: the packed mask, dropout, the fused
   * forward + mask (f32 and f16), raw words and the unpacked Bernoulli mask of the unchunked run. */
  async function expectSameAsUnchunked(c: DropoutContext): Promise<void> {
    expect(mismatch(await packedMask(c, COUNT), unchunkedPacked)).toBeNull();
    expect(mismatch(await dropoutOutput(c, x), unchunkedDropout)).toBeNull();
    // Forward and packed mask in one pass, chunked: the same outputs and bits.
    const fusedOut = poisoned(c, COUNT * 4);
    const fusedMask = poisoned(c, Math.ceil(COUNT / 32) * 4);
    await dropout(c, c.upload(x), { p: 0.4, seed: SEED, stream: STREAM, offset: OFFSET, out: fusedOut, mask: fusedMask });
    expect(mismatch(await readArray(c, fusedOut, 'f32', COUNT), unchunkedDropout)).toBeNull();
    expect(mismatch(await readArray(c, fusedMask, 'u32', Math.ceil(COUNT / 32)), unchunkedPacked)).toBeNull();
    const words = await gpuWords(c, randomWords, { count: COUNT, seed: SEED, stream: STREAM, offset: OFFSET }, COUNT);
    expect(mismatch(words, contractWords(SEED, STREAM, COUNT, OFFSET))).toBeNull();
    const mask = await gpuWords(
      c,
      (cc, o) => bernoulliMask(cc, { ...o, p: 0.4 }),
      { count: COUNT, seed: SEED, stream: STREAM, offset: OFFSET },
      COUNT,
    );
    expect(mismatch(mask, Uint32Array.from(referenceKeepMask(COUNT, 0.4, { seed: SEED, stream: STREAM, offset: OFFSET })))).toBeNull();
    // f16 chunks start at 2-byte elements: the chunk alignment must keep binding offsets legal.
    const outH = poisoned(c, 2 * COUNT + 2);
    const maskH = poisoned(c, Math.ceil(COUNT / 32) * 4);
    await dropout(c, c.upload(toHalfArray(x)), {
      p: 0.4,
      dtype: 'f16',
      count: COUNT,
      seed: SEED,
      stream: STREAM,
      offset: OFFSET,
      out: outH,
      mask: maskH,
    });
    expect(mismatch(await readArray(c, outH, 'f16', COUNT), f16Unchunked)).toBeNull();
    expect(mismatch(await readArray(c, maskH, 'u32', Math.ceil(COUNT / 32)), unchunkedPacked)).toBeNull();
  }

  beforeAll(async () => {
    expect(ctx.maxChunkElements).toBeGreaterThan(BIG);
    unchunkedPacked = await packedMask(ctx, COUNT);
    unchunkedDropout = await dropoutOutput(ctx, x);
    // f16 runs on every device (natively with shader-f16, else through the packed path).
    const out = poisoned(ctx, 2 * COUNT + 2);
    await dropout(ctx, ctx.upload(toHalfArray(x)), { p: 0.4, dtype: 'f16', count: COUNT, seed: SEED, stream: STREAM, offset: OFFSET, out });
    f16Unchunked = await readArray(ctx, out, 'f16', COUNT);
    expect(
      mismatch(
        f16Unchunked,
        referenceDropout(toHalfArray(x), { p: 0.4, dtype: 'f16', seed: SEED, stream: STREAM, offset: OFFSET }) as Uint16Array,
      ),
    ).toBeNull();
    expect(mismatch(unchunkedPacked, packMask(referenceKeepMask(COUNT, 0.4, { seed: SEED, stream: STREAM, offset: OFFSET })))).toBeNull();
    expect(
      mismatch(unchunkedDropout, referenceDropout(x, { p: 0.4, seed: SEED, stream: STREAM, offset: OFFSET }) as Float32Array),
    ).toBeNull();
  });

  for (const maxChunkElements of [2048, 6144, 10240]) {
    for (const workgroupSize of [1, 64, 256]) {
      it(`maxChunkElements ${maxChunkElements}, workgroupSize ${workgroupSize}: packed mask, words, dropout and forward + mask (f32, f16) equal the unchunked run`, async () => {
        const c = await gpuContext({ maxChunkElements, workgroupSize });
        expect(c.maxChunkElements).toBe(maxChunkElements);
        await expectSameAsUnchunked(c);
      });
    }
  }

  // The launch tuning (groups per grid-stride invocation, how packed mask words are assembled) is a
  // per-adapter speed choice: every setting must give the same words, outputs and bits, chunked
  // (chunks of 2048 elements start mid-way through nothing but whole mask words) and with a tail.
  for (const groupsPerInvocation of [1, 2, 4, 8] as const) {
    for (const maskWords of ['workgroup', 'invocation'] as const) {
      it(`tuning { groupsPerInvocation: ${groupsPerInvocation}, maskWords: '${maskWords}' }, chunks of 2048: words, packed mask, dropout and forward + mask (f32, f16) equal the unchunked run`, async () => {
        // f16 through the packed path here (the native one is checked above): its kernels share the loops the tuning shapes.
        const c = await gpuContext({
          maxChunkElements: 2048,
          workgroupSize: 64,
          tuning: { groupsPerInvocation, maskWords },
          f16Path: 'packed',
        });
        expect(c.tuning).toEqual({ groupsPerInvocation, maskWords });
        await expectSameAsUnchunked(c);
      });
    }
  }

  it("maskWords 'workgroup': packed masks of every size 1..80 and around whole words (each a mask word's tail or a partial workgroup) equal the reference", async () => {
    const c = await gpuContext({ workgroupSize: 64, tuning: { groupsPerInvocation: 1, maskWords: 'workgroup' } });
    const sizes = [...Array.from({ length: 80 }, (_, i) => i + 1), 255, 256, 257, 1023, 1025];
    for (const n of sizes) {
      for (const offset of [0n, 3n]) {
        const want = packMask(referenceKeepMask(n, 0.3, { seed: SEED, stream: 9n, offset }));
        const got = await gpuWords(
          c,
          (cc, o) => bernoulliMask(cc, { ...o, p: 0.3, packed: true }),
          { count: n, seed: SEED, stream: 9n, offset },
          Math.ceil(n / 32),
        );
        expect(mismatch(got, want), `bernoulliMask packed n=${n} offset=${offset}`).toBeNull();
        const data = testData(n, n);
        const out = poisoned(c, n * 4);
        const bits = poisoned(c, Math.ceil(n / 32) * 4);
        await dropout(c, c.upload(data), { p: 0.3, seed: SEED, stream: 9n, offset, out, mask: bits });
        expect(
          mismatch(await readArray(c, bits, 'u32', Math.ceil(n / 32)), want),
          `forward + mask bits n=${n} offset=${offset}`,
        ).toBeNull();
        expect(
          mismatch(await readArray(c, out, 'f32', n), referenceDropout(data, { p: 0.3, seed: SEED, stream: 9n, offset }) as Float32Array),
          `forward + mask output n=${n}`,
        ).toBeNull();
      }
    }
  });

  it('tuning is checked: unknown names, values outside the choices, and workgroup mask words with a workgroupSize not divisible by 8 are refused', async () => {
    await expect(gpuContext({ tuning: { groupsPerInvocation: 3 as never } })).rejects.toMatchObject({
      argument: 'options.tuning.groupsPerInvocation',
    });
    await expect(gpuContext({ tuning: { maskWords: 'warp' as never } })).rejects.toMatchObject({ argument: 'options.tuning.maskWords' });
    await expect(gpuContext({ tuning: { groups: 1 } as never })).rejects.toMatchObject({ argument: 'options.tuning.groups' });
    await expect(gpuContext({ workgroupSize: 12, tuning: { maskWords: 'workgroup' } })).rejects.toMatchObject({
      argument: 'options.tuning.maskWords',
    });
    // Left to choose, such a context assembles mask words per invocation.
    expect((await gpuContext({ workgroupSize: 12 })).tuning.maskWords).toBe('invocation');
  });

  it('a maxChunkElements that is not a multiple of 2048 is rounded down to one; the mask is unchanged', async () => {
    // Chunks must start on multiples of 2048 elements: binding offsets stay 256-byte aligned (f32
    // and f16) and every chunk shares the call's alignment within its Philox group.
    for (const [requested, granted] of [
      [3000, 2048],
      [5000, 4096],
    ] as const) {
      const c = await gpuContext({ maxChunkElements: requested });
      expect(c.maxChunkElements).toBe(granted);
      expect(mismatch(await dropoutOutput(c, x), unchunkedDropout), `maxChunkElements ${requested}`).toBeNull();
      expect(mismatch(await packedMask(c, COUNT), unchunkedPacked), `maxChunkElements ${requested}`).toBeNull();
    }
  });

  it('more than 65,535 workgroups (2-D grid): words, packed mask and dropout equal the reference', async () => {
    const limit = ctx.device.limits.maxComputeWorkgroupsPerDimension;
    const one = await gpuContext({ workgroupSize: 1 });
    // Grid-stride kernels cover 4 vec4 groups (16 elements) per invocation on this adapter:
    // 16 * (limit + 10) + 3 elements need limit + 10 single-invocation workgroups.
    const n = 16 * (limit + 10) + 3;
    expect(runtimeOf(one).dispatcher.grid(runtimeOf(one).dispatcher.invocations(kernels.words, n))[1]).toBeGreaterThan(1);
    const words = await gpuWords(one, randomWords, { count: n, seed: SEED, stream: STREAM, offset: 1n }, n);
    expect(mismatch(words, contractWords(SEED, STREAM, n, 1n))).toBeNull();
    // Packed: 32 elements per invocation, so 32 * (limit + 10) elements.
    const np = 32 * (limit + 10) + 7;
    const packed = await gpuWords(
      one,
      (c, o) => bernoulliMask(c, { ...o, p: 0.4, packed: true }),
      { count: np, seed: SEED, stream: STREAM, offset: 3n },
      Math.ceil(np / 32),
    );
    expect(mismatch(packed, packMask(referenceKeepMask(np, 0.4, { seed: SEED, stream: STREAM, offset: 3n })))).toBeNull();
    // Mask words assembled in workgroup memory (4 elements per invocation) over a 2-D grid of
    // 8-invocation workgroups: the y rows must continue the x rows' groups, 8 to a word.
    const eight = await gpuContext({ workgroupSize: 8, tuning: { groupsPerInvocation: 1, maskWords: 'workgroup' } });
    expect(
      runtimeOf(eight).dispatcher.grid(runtimeOf(eight).dispatcher.invocations(kernels.dropoutForwardPacked, np) / 8)[1],
    ).toBeGreaterThan(1);
    const packed8 = await gpuWords(
      eight,
      (c, o) => bernoulliMask(c, { ...o, p: 0.4, packed: true }),
      { count: np, seed: SEED, stream: STREAM, offset: 3n },
      Math.ceil(np / 32),
    );
    expect(mismatch(packed8, packed)).toBeNull();
    const data8 = testData(np, 8);
    const out8 = poisoned(eight, np * 4);
    const bits8 = poisoned(eight, Math.ceil(np / 32) * 4);
    await dropout(eight, eight.upload(data8), { p: 0.4, seed: SEED, stream: STREAM, offset: 3n, out: out8, mask: bits8 });
    expect(mismatch(await readArray(eight, bits8, 'u32', Math.ceil(np / 32)), packed)).toBeNull();
    expect(
      mismatch(
        await readArray(eight, out8, 'f32', np),
        referenceDropout(data8, { p: 0.4, seed: SEED, stream: STREAM, offset: 3n }) as Float32Array,
      ),
    ).toBeNull();

    // Dropout over BIG elements with one invocation per workgroup: 2^16 workgroups, a 2-D grid.
    expect(runtimeOf(one).dispatcher.grid(runtimeOf(one).dispatcher.invocations(kernels.dropoutForward, BIG))[1]).toBeGreaterThan(1);
    const big = testData(BIG, 9);
    const xb = one.upload(big);
    const out = poisoned(one, BIG * 4);
    await dropout(one, xb, { p: 0.25, seed: SEED, stream: 3n, offset: 2n ** 33n + 1n, out });
    const got = await readArray(one, out, 'f32', BIG);
    expect(mismatch(got, referenceDropout(big, { p: 0.25, seed: SEED, stream: 3n, offset: 2n ** 33n + 1n }) as Float32Array)).toBeNull();
  });

  it('sharding: two calls over halves, the second at offset = start of the second half, equal one whole call', async () => {
    for (const [n, split, base] of [
      [2051, 1001, 0n],
      [4096, 2048, 7n],
      [777, 3, 2n ** 40n + 2n],
    ] as const) {
      const whole = await gpuWords(ctx, randomWords, { count: n, seed: SEED, stream: 5n, offset: base }, n);
      const first = await gpuWords(ctx, randomWords, { count: split, seed: SEED, stream: 5n, offset: base }, split);
      const second = await gpuWords(
        ctx,
        randomWords,
        { count: n - split, seed: SEED, stream: 5n, offset: base + BigInt(split) },
        n - split,
      );
      const joined = new Uint32Array(n);
      joined.set(first);
      joined.set(second, split);
      expect(mismatch(joined, whole), `n=${n} split=${split}`).toBeNull();

      // The same for dropout data: each shard reads its own slice of x.
      const data = testData(n, 5);
      const wholeY = await dropoutShard(data, base);
      const y = new Float32Array(n);
      y.set(await dropoutShard(data.subarray(0, split), base));
      y.set(await dropoutShard(data.subarray(split), base + BigInt(split)), split);
      expect(mismatch(y, wholeY), `dropout n=${n} split=${split}`).toBeNull();
    }
  });

  async function dropoutShard(data: Float32Array, offset: bigint): Promise<Float32Array> {
    const xb = ctx.upload(data.slice());
    const out = poisoned(ctx, data.length * 4);
    await dropout(ctx, xb, { p: 0.5, seed: SEED, stream: 6n, offset, out });
    return readArray(ctx, out, 'f32', data.length);
  }
});

describe('mask indices count mod 2^64: a call that runs past index 2^64 - 1 wraps to index 0', () => {
  // Offsets 1..6 below 2^64 and counts 1..12: the vec4 body, a misaligned start and the scalar
  // tail each reach the wrap; every element's word must be that of its index mod 2^64, so a mask
  // cannot depend on how many elements a call has.
  const TOP = 2n ** 64n;
  const wrapped = (offset: bigint, count: number): Uint32Array => {
    const out = new Uint32Array(count);
    for (let i = 0; i < count; i++) out[i] = contractWords(SEED, 9n, 1, (offset + BigInt(i)) % TOP)[0]!;
    return out;
  };

  it('contractWords steps past 2^64 - 1 to index 0 (one index at a time agrees with one call)', () => {
    for (let back = 1n; back <= 6n; back++) {
      for (const count of [1, 4, 7, 8, 13]) {
        expect(
          mismatch(contractWords(SEED, 9n, count, TOP - back), wrapped(TOP - back, count)),
          `offset 2^64 - ${back}, count ${count}`,
        ).toBeNull();
      }
    }
    // Index 2^64 is index 0: the words after the wrap are the first words of the stream.
    expect(Array.from(contractWords(SEED, 9n, 6, TOP - 2n).subarray(2))).toEqual(Array.from(contractWords(SEED, 9n, 4, 0n)));
  });

  it('randomWords, bernoulliMask and dropout (f32 and f16) agree with the reference for every count around the wrap', async () => {
    const x = testData(16, 9);
    for (let back = 1n; back <= 6n; back++) {
      const offset = TOP - back;
      for (let count = 1; count <= 12; count++) {
        const what = `offset 2^64 - ${back}, count ${count}`;
        const words = await gpuWords(ctx, randomWords, { count, seed: SEED, stream: 9n, offset }, count);
        expect(mismatch(words, wrapped(offset, count)), `randomWords, ${what}`).toBeNull();
        const keep = await gpuWords(ctx, (c, o) => bernoulliMask(c, { ...o, p: 0.5 }), { count, seed: SEED, stream: 9n, offset }, count);
        expect(
          mismatch(keep, Uint32Array.from(referenceKeepMask(count, 0.5, { seed: SEED, stream: 9n, offset }))),
          `bernoulliMask, ${what}`,
        ).toBeNull();
        const data = x.subarray(0, count);
        const xb = ctx.upload(data);
        const out = poisoned(ctx, count * 4);
        await dropout(ctx, xb, { p: 0.5, seed: SEED, stream: 9n, offset, out });
        expect(
          mismatch(
            await readArray(ctx, out, 'f32', count),
            referenceDropout(data, { p: 0.5, seed: SEED, stream: 9n, offset }) as Float32Array,
          ),
          `dropout, ${what}`,
        ).toBeNull();
        const half = toHalfArray(data);
        const hb = ctx.upload(half);
        const hout = poisoned(ctx, count * 2);
        await dropout(ctx, hb, { p: 0.5, seed: SEED, stream: 9n, offset, out: hout, dtype: 'f16' });
        expect(
          mismatch(
            await readArray(ctx, hout, 'f16', count),
            referenceDropout(half, { p: 0.5, seed: SEED, stream: 9n, offset }) as Uint16Array,
          ),
          `f16 dropout, ${what}`,
        ).toBeNull();
        for (const b of [xb, out, hb, hout]) ctx.release(b);
      }
    }
  });

  it('structured dropout and randomNormal wrap the same way (a broadcast mask near 2^64, normals paired across the wrap)', async () => {
    const shape = [3, 5, 4];
    const data = testData(60, 10);
    for (const back of [1n, 3n, 7n, 14n]) {
      const offset = TOP - back;
      const noiseShape = [3, 1, 4];
      const xb = ctx.upload(data);
      const out = poisoned(ctx, data.length * 4);
      await structuredDropout(ctx, xb, { p: 0.5, shape, noiseShape, seed: SEED, stream: 9n, offset, out });
      const want = referenceStructuredDropout(data, { p: 0.5, shape, noiseShape, seed: SEED, stream: 9n, offset });
      expect(
        mismatch(await readArray(ctx, out, 'f32', data.length), want as Float32Array),
        `structuredDropout, offset 2^64 - ${back}`,
      ).toBeNull();
      for (const b of [xb, out]) ctx.release(b);
      for (const count of [1, 3, 6, 9]) {
        const normals = new Float32Array((await gpuWords(ctx, randomNormal, { count, seed: SEED, stream: 9n, offset }, count)).buffer);
        const reference = referenceNormal(count, { seed: SEED, stream: 9n, offset });
        for (let i = 0; i < count; i++)
          expect(Math.abs(normals[i]! - reference[i]!), `randomNormal ${i}, offset 2^64 - ${back}, count ${count}`).toBeLessThan(
            NORMAL_TOLERANCE * (1 + Math.abs(reference[i]!)),
          );
      }
    }
  });
});

describe('generators: successive streams, replayable', () => {
  it('successive calls on one generator take successive streams, starting at its stream', async () => {
    const gen = new PhiloxGenerator(99n, 2n ** 32n - 1n);
    const streams: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const out = poisoned(ctx, 16 * 4);
      const { state } = await randomWords(ctx, { count: 16, generator: gen, out });
      expect(state.seed).toBe(99n);
      streams.push(state.stream);
      // Replaying the returned (seed, stream) reproduces the words.
      expect(mismatch(await readArray(ctx, out, 'u32', 16), contractWords(99n, state.stream, 16))).toBeNull();
    }
    expect(streams).toEqual([2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n]);
    expect(gen.stream).toBe(2n ** 32n + 2n);
  });

  it('the context default generator advances too, and dropout with a generator is replayed by its (seed, stream)', async () => {
    const before = ctx.generator.stream;
    const a = await randomWords(ctx, { count: 4 });
    const b = await randomWords(ctx, { count: 4 });
    expect([a.state.stream, b.state.stream]).toEqual([before, before + 1n]);
    expect(a.state.seed).toBe(ctx.generator.seed);

    const gen = new PhiloxGenerator(0xfeedn);
    const x = testData(1001, 2);
    const xb = ctx.upload(x);
    const first = poisoned(ctx, x.length * 4);
    const { state } = await dropout(ctx, xb, { p: 0.5, generator: gen, out: first });
    const replay = poisoned(ctx, x.length * 4);
    await dropout(ctx, xb, { p: 0.5, seed: state.seed, stream: state.stream, out: replay });
    const [y1, y2] = [await readArray(ctx, first, 'f32', x.length), await readArray(ctx, replay, 'f32', x.length)];
    expect(mismatch(y1, y2)).toBeNull();
    // The next call uses a different stream and so a different mask.
    const next = poisoned(ctx, x.length * 4);
    const second = await dropout(ctx, xb, { p: 0.5, generator: gen, out: next });
    expect(second.state.stream).toBe(state.stream + 1n);
    expect(mismatch(await readArray(ctx, next, 'f32', x.length), y1)).not.toBeNull();
  });
});
