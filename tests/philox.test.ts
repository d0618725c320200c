// Philox4x32-10 is checked against Random123 itself: its known-answer vectors, and its C++
// implementation compiled at test time, on the CPU port (src/reference/philox.ts), the WGSL function
// (through a test fixture shader) and the randomWords op (the mask contract's counter layout).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DropoutContext, randomWords, readArray } from '../src/index.js';
import { mulhi32, PHILOX_M0, PHILOX_M1, philox4x32_10 } from '../src/reference/philox.js';
import { EDGE_WORDS, edgyWord, runFixture, testRng, u64 } from './fixture.js';
import { gpuContext, poisoned } from './gpu.js';
import { buildPhiloxOracle, type KatVector, philoxKatVectors } from './random123.js';

let ctx: DropoutContext;
beforeAll(async () => {
  ctx = await gpuContext();
});

function cpuBlocks(blocks: Uint32Array): Uint32Array {
  const out = new Uint32Array((blocks.length / 6) * 4);
  const block = new Uint32Array(4);
  for (let b = 0; b < blocks.length / 6; b++) {
    const w = blocks.subarray(6 * b, 6 * b + 6);
    philox4x32_10(w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!, block);
    out.set(block, 4 * b);
  }
  return out;
}

/** 6-word blocks (counter, key) as the fixture's inputs: counter vec4, then key in a vec4's xy. */
function fixtureInputs(blocks: Uint32Array): Uint32Array {
  const n = blocks.length / 6;
  const inputs = new Uint32Array(n * 8);
  for (let b = 0; b < n; b++) {
    inputs.set(blocks.subarray(6 * b, 6 * b + 4), 8 * b);
    inputs.set(blocks.subarray(6 * b + 4, 6 * b + 6), 8 * b + 4);
  }
  return inputs;
}

function gpuBlocks(blocks: Uint32Array): Promise<Uint32Array> {
  return runFixture(ctx, 'philox_blocks', fixtureInputs(blocks), blocks.length / 6);
}

/** Index of the first block whose 4 words differ, for a readable failure. */
function firstMismatch(got: Uint32Array, want: Uint32Array): number {
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return i >> 2;
  return got.length === want.length ? -1 : want.length >> 2;
}

describe('Philox4x32-10 against Random123 known-answer vectors (kat_vectors)', () => {
  let vectors: KatVector[];
  beforeAll(() => {
    vectors = philoxKatVectors().filter((v) => v.rounds === 10);
  });

  it('finds the philox4x32 10-round vectors (zeros, all ones, pi digits)', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(3);
    expect(vectors.some((v) => v.counter.every((w) => w === 0xffffffff))).toBe(true);
  });

  it('the CPU philox4x32_10 reproduces every vector', () => {
    for (const v of vectors) {
      expect(Array.from(philox4x32_10(...v.counter, ...v.key))).toEqual(v.expected);
    }
  });

  it('the WGSL philox4x32_10 reproduces every vector', async () => {
    const blocks = Uint32Array.from(vectors.flatMap((v) => [...v.counter, ...v.key]));
    const got = await gpuBlocks(blocks);
    expect(Array.from(got)).toEqual(vectors.flatMap((v) => v.expected));
  });

  it('randomWords reproduces the vectors whose counter the mask contract can reach (c1 < 2^30)', async () => {
    // Counter (g_lo, g_hi, stream_lo, stream_hi) with g = offset / 4 < 2^62, key = seed.
    const reachable = vectors.filter((v) => v.counter[1] < 2 ** 30);
    expect(reachable.length).toBeGreaterThan(0);
    for (const v of reachable) {
      const out = poisoned(ctx, 16);
      await randomWords(ctx, {
        count: 4,
        seed: u64(...v.key),
        stream: u64(v.counter[2], v.counter[3]),
        offset: 4n * u64(v.counter[0], v.counter[1]),
        out,
      });
      expect(Array.from(await readArray(ctx, out, 'u32', 4))).toEqual(v.expected);
    }
  });
});

describe('Philox4x32-10 against the Random123 C++ oracle (librandom123-dev, g++)', () => {
  let oracle: ReturnType<typeof buildPhiloxOracle>;
  const BLOCKS = 12_000;
  let blocks: Uint32Array;
  let expected: Uint32Array;

  beforeAll(() => {
    oracle = buildPhiloxOracle();
    const rng = testRng(0x5eed);
    const fixed = [
      [0, 0, 0, 0, 0, 0],
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0, 0],
      [0, 0, 0, 0, 0xffffffff, 0xffffffff],
      [0xffffffff, 0, 0xffffffff, 0, 0xffffffff, 0],
      [0, 0xffffffff, 0, 0xffffffff, 0, 0xffffffff],
      [0x80000000, 0x80000000, 0x80000000, 0x80000000, 0x80000000, 0x80000000],
      // Keys whose round bumps wrap past 2^32 on the first bump.
      [1, 2, 3, 4, (2 ** 32 - PHILOX_M0) >>> 0, 0xfffffff0],
    ];
    blocks = new Uint32Array(BLOCKS * 6);
    fixed.forEach((b, i) => blocks.set(b, 6 * i));
    for (let i = fixed.length * 6; i < blocks.length; i++) {
      // Counter words 2 and 3 and the key's high word get the top bit set half of the time.
      const slot = i % 6;
      const w = edgyWord(rng);
      blocks[i] = slot === 3 || slot === 5 || slot === 2 ? (rng() & 1 ? w | 0x80000000 : w) >>> 0 : w;
    }
    expected = oracle.run(blocks);
  });
  afterAll(() => oracle?.dispose());

  it('the inputs include high counter and key words (top bits set, all ones)', () => {
    let topC3 = 0;
    let topK1 = 0;
    for (let b = 0; b < BLOCKS; b++) {
      if (blocks[6 * b + 3]! >= 0x80000000) topC3++;
      if (blocks[6 * b + 5]! >= 0x80000000) topK1++;
    }
    expect(topC3).toBeGreaterThan(BLOCKS / 2);
    expect(topK1).toBeGreaterThan(BLOCKS / 2);
    expect(blocks.filter((w) => w === 0xffffffff).length).toBeGreaterThan(1000);
  });

  it(`the CPU philox4x32_10 equals the oracle bit for bit on ${BLOCKS} blocks`, () => {
    const got = cpuBlocks(blocks);
    expect(firstMismatch(got, expected)).toBe(-1);
  });

  it(`the WGSL philox4x32_10 equals the oracle bit for bit on ${BLOCKS} blocks`, async () => {
    const got = await gpuBlocks(blocks);
    expect(firstMismatch(got, expected)).toBe(-1);
  });

  // The contract's counter layout end to end: (g_lo, g_hi, stream_lo, stream_hi), key = seed,
  // word lane = index mod 4, with g's low word carrying into its high word inside one call.
  const contractCases = [
    {
      name: 'top seed, top stream, g_hi = 2^30 - 1',
      seed: 2n ** 64n - 1n,
      stream: 2n ** 64n - 1n,
      offset: 2n ** 64n - 4n * 300n,
      count: 1024,
    },
    { name: 'g_lo carry at an odd offset', seed: 0x8000000080000000n, stream: 0xffffffffn, offset: 2n ** 34n - 30n, count: 67 },
    { name: 'stream hi word only', seed: 0xfffffffe00000001n, stream: 0x100000000n, offset: 2n ** 33n + 1n, count: 37 },
    { name: 'all-ones low words', seed: 0xffffffffn, stream: 0xffffffff_fffffffen, offset: 4n * 0x3fffffff_ffffffc0n + 3n, count: 250 },
  ];

  for (const c of contractCases) {
    it(`randomWords equals the oracle at the contract's counters (${c.name})`, async () => {
      const first = c.offset >> 2n;
      const last = (c.offset + BigInt(c.count) - 1n) >> 2n;
      const groups = Number(last - first) + 1;
      const oracleBlocks = new Uint32Array(groups * 6);
      for (let j = 0; j < groups; j++) {
        const g = first + BigInt(j);
        oracleBlocks.set(
          [
            Number(g & 0xffffffffn),
            Number(g >> 32n),
            Number(c.stream & 0xffffffffn),
            Number(c.stream >> 32n),
            Number(c.seed & 0xffffffffn),
            Number(c.seed >> 32n),
          ],
          6 * j,
        );
      }
      const groupWords = oracle.run(oracleBlocks);
      const lead = Number(c.offset & 3n);
      const want = groupWords.subarray(lead, lead + c.count);
      const out = poisoned(ctx, c.count * 4);
      await randomWords(ctx, { count: c.count, seed: c.seed, stream: c.stream, offset: c.offset, out });
      expect(firstMismatch(await readArray(ctx, out, 'u32', c.count), want)).toBe(-1);
    });
  }
});

describe('32x32 -> 64-bit products and 64-bit adds (mulhi32, WGSL mulhi and the native low word, add64)', () => {
  const rng = testRng(77);
  const pairs: [number, number][] = [];
  for (const a of [...EDGE_WORDS, PHILOX_M0, PHILOX_M1]) for (const b of [...EDGE_WORDS, PHILOX_M0, PHILOX_M1]) pairs.push([a, b]);
  for (let i = 0; i < 4000; i++) pairs.push([edgyWord(rng), edgyWord(rng)]);
  const exact = (a: number, b: number): [number, number] => {
    const p = BigInt(a) * BigInt(b);
    return [Number(p & 0xffffffffn), Number(p >> 32n)];
  };

  it('mulhi32(0xffffffff, 0xffffffff) is 0xfffffffe, and every pair matches BigInt', () => {
    expect(mulhi32(0xffffffff, 0xffffffff)).toBe(0xfffffffe);
    expect(mulhi32(0xffffffff, 1)).toBe(0);
    expect(mulhi32(0x10000, 0x10000)).toBe(1);
    const wrong = pairs.filter(([a, b]) => mulhi32(a, b) !== exact(a, b)[1]).map(([a, b]) => `mulhi32(${a}, ${b}) = ${mulhi32(a, b)}`);
    expect(wrong).toEqual([]);
  });

  it('WGSL a * b and mulhi return the exact (lo, hi) product on carry edges and random pairs', async () => {
    const inputs = new Uint32Array(pairs.length * 4);
    pairs.forEach(([a, b], i) => inputs.set([a, b], 4 * i));
    const got = await runFixture(ctx, 'mulhilo_pairs', inputs, pairs.length);
    const want = new Uint32Array(pairs.length * 4);
    pairs.forEach(([a, b], i) => want.set(exact(a, b), 4 * i));
    const bad = firstMismatch(got, want);
    const show = (w: ArrayLike<number>) => Array.from(w, (x) => `0x${x.toString(16)}`).join(', ');
    if (bad >= 0) {
      const [a, b] = pairs[bad]!;
      expect(`mulhilo(0x${a.toString(16)}, 0x${b.toString(16)}) = (${show(got.subarray(4 * bad, 4 * bad + 2))})`).toBe(
        `(${show(exact(a, b))})`,
      );
    }
    expect(bad).toBe(-1);
  });

  it('WGSL M0 * a and mulhi_m0 (the shortcut for a * M0) are exact for every edge and random word', async () => {
    // Its cross products must never overflow: a = 0xffffffff is the worst case, every 16-bit
    // half at 0xffff or 0 and the words around them are the carry edges.
    const words = [...EDGE_WORDS, PHILOX_M0, PHILOX_M1, ...pairs.map(([a]) => a)];
    const inputs = new Uint32Array(words.length * 4);
    words.forEach((a, i) => inputs.set([a, 0xdeadbeef], 4 * i));
    const got = await runFixture(ctx, 'mulhilo_m0_pairs', inputs, words.length);
    const want = new Uint32Array(words.length * 4);
    words.forEach((a, i) => want.set(exact(a, PHILOX_M0), 4 * i));
    const bad = firstMismatch(got, want);
    expect(bad >= 0 ? `mulhilo_m0(0x${words[bad]!.toString(16)}) = (${Array.from(got.subarray(4 * bad, 4 * bad + 2))})` : 'all exact').toBe(
      'all exact',
    );
  });

  it('WGSL add64 carries from the low into the high word', async () => {
    const cases: [number, number, number][] = [
      [0xffffffff, 0, 1],
      [0xffffffff, 0xfffffffe, 1],
      [0xfffffffe, 7, 0xffffffff],
      [0x80000000, 3, 0x80000000],
      [0x7fffffff, 3, 0x80000000],
      [5, 9, 0],
      [0xffffffff, 0xffffffff, 0xffffffff], // wraps past 2^64
    ];
    const inputs = new Uint32Array(cases.length * 4);
    cases.forEach((c, i) => inputs.set(c, 4 * i));
    const got = await runFixture(ctx, 'add64_pairs', inputs, cases.length);
    const want = cases.flatMap(([lo, hi, b]) => {
      const s = (u64(lo, hi) + BigInt(b)) & (2n ** 64n - 1n);
      return [Number(s & 0xffffffffn), Number(s >> 32n), 0, 0];
    });
    expect(Array.from(got)).toEqual(want);
  });
});
