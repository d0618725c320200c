// Faults refused up front, each with an error naming the argument the caller passed, nothing
// written, no WebGPU error escaping (uncaptured or otherwise), the pool's counts and the
// generator's stream as they were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlphaDropout,
  alphaDropout,
  alphaDropoutBackward,
  bernoulliMask,
  biasDropoutResidual,
  biasDropoutResidualBackward,
  Dropout,
  type DropoutContext,
  dropConnect,
  dropout,
  dropoutBackward,
  dropPath,
  GaussianDropout,
  gaussianDropout,
  gaussianDropoutBackward,
  InvalidArgumentError,
  PhiloxGenerator,
  randomNormal,
  randomWords,
  readArray,
  requestDropoutDevice,
  SpatialDropout2D,
  spatialDropout,
  structuredDropout,
  structuredKeepMask,
} from '../src/index.js';
import { MLP, mcDropout, mcSample, sampleDropout, uploadMatrix } from '../src/model.js';
import { type NodeDevice, requestNodeDevice } from '../src/node.js';
import { spatialNoiseShape } from '../src/ops/index.js';
import {
  applyKeepMask,
  packMask,
  philox4x32_10,
  referenceAlphaDropoutBackward,
  referenceBiasDropoutResidual,
  referenceBiasDropoutResidualBackward,
  referenceDropout,
  referenceDropPathAdd,
  referenceGaussianDropout,
  referenceKeepMask,
  referenceLoss,
  referenceMcStats,
  referenceMlpForward,
  referenceNormal,
  referenceStructuredDropout,
  referenceStructuredKeep,
  referenceUniform,
  referenceWords,
  unpackMask,
} from '../src/reference.js';
import { Usage } from '../src/runtime/units.js';
import { expectInvalid, gpuContext, POISON_WORD, poisoned, testData } from './gpu.js';

const N = 1024;
let ctx: DropoutContext;
let x: GPUBuffer;
let uncaptured: string[] = [];
/** A second device, for buffers and encoders that are not the context's. */
let other: NodeDevice;
beforeAll(async () => {
  ctx = await gpuContext();
  x = ctx.upload(testData(N));
  ctx.device.addEventListener('uncapturederror', (e) => uncaptured.push((e as GPUUncapturedErrorEvent).error.message));
  other = await requestNodeDevice();
});
afterAll(() => other?.release());

/** The device's queue drained and its events delivered: an uncaptured error would have arrived. */
async function settled(c: DropoutContext = ctx): Promise<void> {
  await c.device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 20));
}

async function expectUntouched(c: DropoutContext, buffer: GPUBuffer): Promise<void> {
  const words = new Uint32Array(await c.readBytes(buffer, buffer.size));
  expect(
    words.findIndex((w) => w !== POISON_WORD),
    'a refused call wrote its output',
  ).toBe(-1);
}

const counts = (c: DropoutContext) => ({ allocations: c.pool.allocations, bytes: c.pool.bytes });

describe('1. buffers past maxBufferSize are refused before any work', () => {
  it('randomWords, randomNormal and bernoulliMask outputs: count named with the limit; no stream taken, no WebGPU error, pool unchanged', async () => {
    const max = ctx.device.limits.maxBufferSize;
    const count = Math.floor(max / 4) + 1; // within the contract's 2^32 - 1, past the buffer limit
    expect(count).toBeLessThanOrEqual(0xffffffff);
    const generator = new PhiloxGenerator(5n);
    const before = counts(ctx);
    uncaptured = [];
    const limit = new RegExp(`^count: expected .*maxBufferSize of ${max} bytes \\(it would take ${count * 4} bytes\\), got ${count}$`);
    await expectInvalid(() => randomWords(ctx, { count, generator }), 'count', limit);
    await expectInvalid(() => randomNormal(ctx, { count: 2 ** 31, seed: 1n }), 'count', /maxBufferSize/);
    await expectInvalid(() => bernoulliMask(ctx, { count: 0xffffffff, p: 0.5, generator }), 'count', /maxBufferSize/);
    await settled();
    expect(uncaptured).toEqual([]);
    expect(generator.stream).toBe(0n);
    expect(counts(ctx)).toEqual(before);
    // Packed, the same count fits (1 bit per element) is not refused for size.
    const w = await randomWords(ctx, { count: 8, generator });
    expect(new Uint32Array(await ctx.readBytes(w.output, 32))).not.toContain(POISON_WORD);
  });

  it("structuredKeepMask's implicit output names shape; acquire names bytes; upload names data", async () => {
    const max = ctx.device.limits.maxBufferSize;
    const before = counts(ctx);
    uncaptured = [];
    await expectInvalid(
      () => structuredKeepMask(ctx, { p: 0.5, shape: [2 ** 16, 2 ** 14], seed: 1n }),
      'shape',
      new RegExp(`maxBufferSize of ${max} bytes`),
    );
    await expectInvalid(() => ctx.acquire(2 ** 33), 'bytes', new RegExp(`up to this device's maxBufferSize \\(${max}\\), got ${2 ** 33}`));
    // A typed array that says it holds more than the limit (allocating one would take 4 GiB).
    const huge = new Uint32Array(4);
    Object.defineProperty(huge, 'byteLength', { value: max + 1 });
    await expectInvalid(() => ctx.upload(huge), 'data', new RegExp(`maxBufferSize of ${max} bytes.*got ${max + 1} bytes`));
    await settled();
    expect(uncaptured).toEqual([]);
    expect(counts(ctx)).toEqual(before);
  });
});

describe('1b. what the model kit binds whole is checked against maxStorageBufferBindingSize up front', () => {
  it("an MLP's batch too tall for its widest activation names x; mcDropout's samplesPerPass past what fits names samplesPerPass", async () => {
    const limit = ctx.device.limits.maxStorageBufferBindingSize;
    const width = 4096;
    const rows = Math.floor(limit / (width * 4)) + 1;
    const mlp = new MLP(ctx, { sizes: [1, width, 1], seed: 1 });
    const x = uploadMatrix(ctx, testData(rows), rows, 1);
    const y = uploadMatrix(ctx, testData(rows, 2), rows, 1);
    const small = uploadMatrix(ctx, testData(8), 8, 1);
    const before = counts(ctx);
    uncaptured = [];
    await expectInvalid(
      () => mlp.trainStep(x, y, { loss: 'mse' }),
      'x',
      new RegExp(`at most ${rows - 1} rows .*maxStorageBufferBindingSize of ${limit} bytes`),
    );
    await expectInvalid(() => mlp.predict(x), 'x', /at most/);
    const fits = Math.floor(limit / (8 * width * 4));
    await expectInvalid(
      () => mcDropout(ctx, mlp, small, { samples: fits + 1, schedule: 'batched', samplesPerPass: fits + 1, seed: 1n }),
      'samplesPerPass',
      new RegExp(`at most ${fits}`),
    );
    await settled();
    expect(uncaptured).toEqual([]);
    expect(counts(ctx)).toEqual(before);
    expect(mlp.steps).toBe(0);
    mlp.destroy();
  });
});

describe('2. calls refused at submit give their pooled buffers back', () => {
  it('repeated calls on a destroyed input leave pool.allocations and pool.bytes as they were (dropout with mask, structured op with a mask table, readBytes)', async () => {
    const c = await gpuContext({ maskTables: { minElements: 0, minReuse: 1 } });
    const doomed = c.upload(testData(N, 2));
    await c.flush();
    doomed.destroy();
    const before = counts(c);
    for (let i = 0; i < 20; i++) {
      await expectInvalid(() => dropout(c, doomed, { p: 0.5, seed: 1n, count: N, mask: true }), 'x', /destroyed/);
      await expectInvalid(
        () => spatialDropout(c, doomed, { p: 0.5, shape: [4, 8, 32], layout: 'channels-first', seed: 1n }),
        'x',
        /destroyed/,
      );
      await expectInvalid(() => c.readBytes(doomed, 16), 'buffer', /destroyed/);
    }
    expect(counts(c)).toEqual(before);
    // The context still works, and a good call's buffers come from the pool as usual.
    const { output } = await dropout(c, c.upload(testData(N, 3)), { p: 0.5, seed: 1n });
    expect(new Uint32Array(await c.readBytes(output, 16))).not.toContain(POISON_WORD);
  });
});

describe('3. readBytes validates bytes and byteOffset', () => {
  it('a negative, fractional, NaN or unaligned byteOffset is an InvalidArgumentError, not a TypeError; the pool is unchanged', async () => {
    const b = ctx.upload(new Uint32Array(8));
    await ctx.flush();
    const before = counts(ctx);
    for (const byteOffset of [-4, NaN, 2.5, 2, Infinity, '4' as unknown as number]) {
      await expectInvalid(() => ctx.readBytes(b, 16, byteOffset), 'byteOffset', /a whole byte offset >= 0, a multiple of 4/);
    }
    for (const bytes of [-4, NaN, 1.5]) await expectInvalid(() => ctx.readBytes(b, bytes), 'bytes', /whole byte count/);
    await expectInvalid(() => ctx.readBytes(b, 16, 20), 'buffer', /readable range inside its 32 bytes/);
    expect(counts(ctx)).toEqual(before);
    expect(Array.from(new Uint32Array(await ctx.readBytes(b, 8, 24)))).toEqual([0, 0]);
  });
});

describe('4. a buffer of another GPUDevice', () => {
  const foreign = (bytes: number) => other.device.createBuffer({ size: bytes, usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST });

  it('is named (before recording into a caller encoder, at the batch submit otherwise) with no uncaptured error, nothing written, the pool as it was', async () => {
    const c = await gpuContext();
    const errors: string[] = [];
    c.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
    const mine = c.upload(testData(N, 4));
    const out = poisoned(c, N * 4);
    await c.flush();
    const before = counts(c);
    const generator = new PhiloxGenerator(9n);
    for (const encoder of [undefined, c.device.createCommandEncoder()]) {
      await expectInvalid(() => dropout(c, foreign(N * 4), { p: 0.5, seed: 1n, out, encoder }), 'x', /another GPUDevice/);
      await expectInvalid(() => dropout(c, mine, { p: 0.5, seed: 1n, out: foreign(N * 4), encoder }), 'out', /another GPUDevice/);
      await expectInvalid(() => dropout(c, mine, { p: 0.5, seed: 1n, mask: foreign(N / 8), encoder }), 'mask', /another GPUDevice/);
      await expectInvalid(() => gaussianDropout(c, foreign(N * 4), { p: 0.3, seed: 1n, out, encoder }), 'x', /another GPUDevice/);
      await expectInvalid(
        () => dropPath(c, mine, { p: 0.5, shape: [8, 128], generator, out: foreign(N * 4), encoder }),
        'out',
        /another GPUDevice/,
      );
      if (encoder) {
        // Nothing was recorded: the caller's encoder is still valid and submits cleanly.
        c.device.pushErrorScope('validation');
        c.device.queue.submit([encoder.finish()]);
        expect(await c.device.popErrorScope()).toBeNull();
      }
    }
    await expectInvalid(() => c.readBytes(foreign(16), 16), 'buffer', /another GPUDevice/);
    await expectInvalid(() => readArray(c, foreign(16), 'f32', 4), 'buffer', /another GPUDevice/);
    await settled(c);
    expect(errors).toEqual([]);
    expect(counts(c)).toEqual(before);
    await expectUntouched(c, out);
    // The next valid call works, with the same buffers it would have had.
    const { output } = await dropout(c, mine, { p: 0.5, seed: 1n, out });
    expect(new Uint32Array(await c.readBytes(output, 16))).not.toContain(POISON_WORD);
  });

  it('given to the model kit, is refused without uncaptured errors', async () => {
    const c = await gpuContext();
    const errors: string[] = [];
    c.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
    const mlp = new MLP(c, { sizes: [2, 4, 1], seed: 1 });
    const y = uploadMatrix(c, testData(4, 1), 4, 1);
    let caught: unknown;
    try {
      await mlp.trainStep({ buffer: foreign(32), rows: 4, cols: 2 }, y, { loss: 'mse' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect((caught as InvalidArgumentError).argument).toBe('x');
    expect((caught as Error).message).toMatch(/another GPUDevice/);
    await settled(c);
    expect(errors).toEqual([]);
    mlp.destroy();
  });
});

describe('5. backward errors name the state', () => {
  const state = {
    op: 'gaussian' as const,
    seed: 1n,
    stream: 0n,
    offset: 0n,
    p: 0.3,
    shape: [N],
    noiseShape: [N],
    dtype: 'f32' as const,
    training: true,
    scale: 1,
  };
  it("gaussianDropoutBackward and alphaDropoutBackward with p = 1 (or out of range) in the state name 'state.p'", async () => {
    const out = poisoned(ctx, N * 4);
    for (const p of [1, 1.5, NaN]) {
      await expectInvalid(() => gaussianDropoutBackward(ctx, x, { ...state, p }, { out }), 'state.p', /a number in \[0, 1\)?/);
      await expectInvalid(() => alphaDropoutBackward(ctx, x, { ...state, op: 'alpha', p }, { out }), 'state.p', /a number in \[0, 1\)?/);
    }
    await expectInvalid(() => alphaDropoutBackward(ctx, x, { ...state, op: 'alpha', seed: -1n }, { out }), 'state.seed', /0\.\.2\^64-1/);
    await expectInvalid(
      () => gaussianDropoutBackward(ctx, x, { ...state, shape: [N + 1], noiseShape: [N + 1] }, { out }),
      'dy',
      /at least/,
    );
    await expectUntouched(ctx, out);
  });
});

describe('6. every boolean option is type-checked', () => {
  it("bernoulliMask's packed, training and scaleByKeep of the structured ops, MLP's readLoss, a layer's train(mode)", async () => {
    const out = poisoned(ctx, N * 4);
    const generator = new PhiloxGenerator(3n);
    for (const v of ['yes', 1, 0]) {
      const b = v as unknown as boolean;
      await expectInvalid(() => bernoulliMask(ctx, { count: N, p: 0.5, packed: b, generator, out }), 'packed', /a boolean/);
      await expectInvalid(() => dropout(ctx, x, { p: 0.5, training: b, generator, out }), 'training', /a boolean/);
      await expectInvalid(() => structuredDropout(ctx, x, { p: 0.5, training: b, generator, out }), 'training', /a boolean/);
      await expectInvalid(() => alphaDropout(ctx, x, { p: 0.5, training: b, generator, out }), 'training', /a boolean/);
      await expectInvalid(() => structuredDropout(ctx, x, { p: 0.5, scaleByKeep: b, generator, out }), 'scaleByKeep', /a boolean/);
      await expectInvalid(() => dropPath(ctx, x, { p: 0.5, shape: [8, 128], scaleByKeep: b, generator, out }), 'scaleByKeep', /a boolean/);
      expect(() => referenceStructuredDropout(testData(8), { p: 0.5, seed: 1n, scaleByKeep: b })).toThrow(
        /scaleByKeep: expected a boolean/,
      );
      expect(() => new GaussianDropout(ctx, { p: 0.5 }).train(b)).toThrow(/mode: expected a boolean/);
    }
    const mlp = new MLP(ctx, { sizes: [2, 1], seed: 1 });
    const m = uploadMatrix(ctx, testData(2), 1, 2);
    const y = uploadMatrix(ctx, testData(1), 1, 1);
    await expectInvalid(() => mlp.trainStep(m, y, { loss: 'mse', readLoss: 'yes' as unknown as boolean }), 'readLoss', /a boolean/);
    expect(mlp.steps).toBe(0);
    mlp.destroy();
    expect(generator.stream).toBe(0n);
    await expectUntouched(ctx, out);
  });
});

describe("7. a misspelt option in a layer's forward", () => {
  it('is reported as an unknown option with the suggestion, not as a missing shape', async () => {
    const out = poisoned(ctx, N * 4);
    const layer = new SpatialDropout2D(ctx, { p: 0.5, generator: new PhiloxGenerator(1n) });
    const shape = [2, 8, 8, 8];
    await expectInvalid(() => layer.forward(x, { shpe: shape, out } as never), 'options.shpe', /did you mean shape\?/);
    await expectInvalid(
      () => new AlphaDropout(ctx, { p: 0.2 }).forward(x, { shape: [N], outt: out } as never),
      'options.outt',
      /did you mean out\?/,
    );
    await expectInvalid(() => layer.forward(x, { shape: [N], out }), 'shape', /4 dimensions/);
    expect(layer.generator!.stream).toBe(0n);
    await expectUntouched(ctx, out);
    const { output } = await layer.forward(x, { shape, out });
    const want = referenceStructuredDropout(testData(N), {
      p: 0.5,
      shape,
      noiseShape: spatialNoiseShape(shape, { layout: 'channels-last' }),
      seed: 1n,
    });
    expect(Array.from(await readArray(ctx, output, 'f32', N))).toEqual(Array.from(want));
  });
});

/** The smaller of the two limits every buffer the model kit binds whole must fit, and its name. */
function bindingLimit(c: DropoutContext): { name: string; bytes: number } {
  const { maxStorageBufferBindingSize: binding, maxBufferSize } = c.device.limits;
  return binding <= maxBufferSize
    ? { name: 'maxStorageBufferBindingSize', bytes: binding }
    : { name: 'maxBufferSize', bytes: maxBufferSize };
}

describe("8. an MLP's parameters past one storage binding are refused in the constructor", () => {
  it('sizes named with the limit, before any allocation, initialisation or seed draw; a count past 2^32 the same way', async () => {
    const limit = bindingLimit(ctx);
    // [inputs, hidden, 1] holds hidden (inputs + 2) + 1 parameters: one hidden unit past the limit.
    const inputs = 8192;
    const hidden = Math.floor(limit.bytes / 4 / (inputs + 2)) + 1;
    const parameters = hidden * (inputs + 2) + 1;
    expect(parameters * 4).toBeGreaterThan(limit.bytes);
    const before = counts(ctx);
    const stream = ctx.generator.stream;
    uncaptured = [];
    await expectInvalid(
      () => new MLP(ctx, { sizes: [inputs, hidden, 1] }),
      'sizes',
      new RegExp(
        `^sizes: expected .*${parameters} f32 parameters take ${parameters * 4} bytes.*${limit.name} of ${limit.bytes} bytes\\), got \\[${inputs}, ${hidden}, 1\\]$`,
      ),
    );
    await expectInvalid(
      () => new MLP(ctx, { sizes: [65536, 65536, 1], seed: 1 }),
      'sizes',
      new RegExp(`${limit.name} of ${limit.bytes} bytes`),
    );
    await settled();
    expect(uncaptured).toEqual([]);
    expect(ctx.generator.stream).toBe(stream);
    expect(counts(ctx)).toEqual(before);
  });
});

describe('8b. the per-call buffers of the model kit are checked against the binding limit when the call is made', () => {
  it("mcDropout and mcSample name input (the MLP's rows check would say x); classification's row statistics count too", async () => {
    const limit = bindingLimit(ctx);
    const width = 4096;
    const rows = Math.floor(limit.bytes / (width * 4)) + 1;
    const mlp = new MLP(ctx, { sizes: [1, width, 1], dropout: 0.5, seed: 1 });
    const tall = uploadMatrix(ctx, testData(rows), rows, 1);
    // No hidden width past 2: the three f32 statistics per row are the widest buffer.
    const narrow = new MLP(ctx, { sizes: [1, 2], seed: 2 });
    const statsRows = Math.floor(limit.bytes / 12) + 1;
    expect(statsRows * 2 * 4).toBeLessThanOrEqual(limit.bytes);
    const statsInput = uploadMatrix(ctx, new Float32Array(statsRows), statsRows, 1);
    await ctx.flush();
    const before = counts(ctx);
    uncaptured = [];
    const rowsLimit = new RegExp(`^input: expected at most ${rows - 1} rows .*${limit.name} of ${limit.bytes} bytes`);
    await expectInvalid(() => mcDropout(ctx, mlp, tall, { samples: 2, seed: 1n }), 'input', rowsLimit);
    await expectInvalid(() => mcSample(ctx, mlp, tall, { seed: 1n, stream: 0n, sample: 0 }), 'input', rowsLimit);
    await expectInvalid(
      () => mcDropout(ctx, narrow, statsInput, { samples: 2, task: 'classification', seed: 1n }),
      'input',
      new RegExp(`at most ${statsRows - 1} rows`),
    );
    await settled();
    expect(uncaptured).toEqual([]);
    expect(counts(ctx)).toEqual(before);
    for (const m of [mlp, narrow]) m.destroy();
  });

  it('a matrix whose buffer is larger than one binding (the kernels bind it whole) names x or y, in the MLP and in sampleDropout', async (t) => {
    const limit = bindingLimit(ctx);
    // Such a buffer exists only where one buffer may be larger than one binding (lavapipe: 2^32 - 1 bytes and 128 MiB).
    if (limit.bytes + 4 > ctx.device.limits.maxBufferSize) t.skip();
    const big = ctx.device.createBuffer({ size: limit.bytes + 4, usage: Usage.STORAGE | Usage.COPY_DST });
    const mlp = new MLP(ctx, { sizes: [1, 4, 1], seed: 1 });
    const small = uploadMatrix(ctx, testData(8), 8, 1);
    const inBig = { buffer: big, rows: 8, cols: 1 };
    await ctx.flush();
    const before = counts(ctx);
    uncaptured = [];
    const whole = new RegExp(`a buffer of at most ${limit.bytes} bytes .*${limit.name}.*got ${limit.bytes + 4} bytes`);
    await expectInvalid(() => mlp.predict(inBig), 'x', whole);
    await expectInvalid(() => mlp.trainStep(small, inBig, { loss: 'mse' }), 'y', whole);
    await expectInvalid(() => mlp.evaluate(inBig, small, { loss: 'mse' }), 'x', whole);
    await expectInvalid(() => sampleDropout(ctx, inBig, { p: 0.5, random: { seed: 1n, stream: 0n, samples: 2 } }), 'x', whole);
    await settled();
    expect(uncaptured).toEqual([]);
    expect(counts(ctx)).toEqual(before);
    expect(mlp.steps).toBe(0);
    mlp.destroy();
    big.destroy();
  });
});

describe('9. structured ops name the size arguments the caller passed', () => {
  it("dropConnect's rows x cols past 2^32 - 1 names cols; a shape taken from x's size past the contract names x", async () => {
    const out = poisoned(ctx, N * 4);
    const generator = new PhiloxGenerator(4n);
    const before = counts(ctx);
    await expectInvalid(
      () => dropConnect(ctx, x, { p: 0.5, rows: 2 ** 31, cols: 2, generator, out }),
      'cols',
      /^cols: expected at most 1 for 2147483648 rows \(rows x cols at most 2\^32 - 1 elements\), got 2$/,
    );
    await expectInvalid(
      () => dropConnect(ctx, x, { p: 0.5, rows: 3, cols: 2 ** 31, generator, out }),
      'cols',
      /at most 1431655765 for 3 rows/,
    );
    // A buffer past 2^32 - 1 f32 elements, as a device with a larger maxBufferSize would hand out
    // (lavapipe's cannot hold one): without a shape, its size is the op's element count.
    const huge = {
      size: 2 ** 34 + 16,
      usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST,
      mapState: 'unmapped',
      mapAsync: async () => {},
    } as unknown as GPUBuffer;
    const tooMany = /^x: expected .*at most 2\^32 - 1 elements .*shape.*got 17179869200 bytes/;
    await expectInvalid(() => structuredDropout(ctx, huge, { p: 0.5, generator }), 'x', tooMany);
    await expectInvalid(() => gaussianDropout(ctx, huge, { p: 0.5, generator }), 'x', tooMany);
    await expectInvalid(() => alphaDropout(ctx, huge, { p: 0.5, generator }), 'x', tooMany);
    expect(generator.stream).toBe(0n);
    expect(counts(ctx)).toEqual(before);
    await expectUntouched(ctx, out);
  });
});

describe('10. every CPU reference refuses bad arguments with an InvalidArgumentError naming them', () => {
  /** What a call did: the refusal's argument, or another outcome spelt out. */
  function outcome(call: () => unknown): string {
    try {
      const result = call() as ArrayLike<number> | undefined;
      return `returned ${result?.length ?? typeof result} values`;
    } catch (e) {
      if (e instanceof InvalidArgumentError && e.message.startsWith(`${e.argument}: expected `)) return `refused ${e.argument}`;
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  }

  it('counts, words, p, dtype, arrays and their lengths, shapes, the random options, the model and the MC samples', () => {
    const x8 = testData(8);
    const keep8 = new Uint8Array(8).fill(1);
    const r = { seed: 1n };
    const cases: [string, () => unknown][] = [
      ['count', () => referenceWords(1n, 0n, -1)],
      ['count', () => referenceWords(1n, 0n, 2.5)],
      ['c0', () => philox4x32_10(-1, 0, 0, 0, 0, 0)],
      ['k1', () => philox4x32_10(0, 0, 0, 0, 0, 2 ** 32)],
      ['out', () => philox4x32_10(0, 0, 0, 0, 0, 0, new Uint32Array(2))],
      ['count', () => referenceUniform(1.5, r)],
      ['options', () => referenceUniform(4, undefined as never)],
      ['count', () => referenceNormal(NaN, r)],
      ['options', () => referenceKeepMask(4, 0, undefined as never)],
      ['seed', () => referenceKeepMask(4, 1, { seed: -1n })],
      ['keep', () => packMask(null as never)],
      ['bits', () => unpackMask([0b101] as never, 3)],
      ['keep', () => applyKeepMask(x8, new Uint8Array(4), 0.5, 'f32')],
      ['dtype', () => applyKeepMask(x8, keep8, 0.5, 'f64' as never)],
      ['x', () => applyKeepMask(x8, keep8, 0.5, 'f16')],
      ['x', () => referenceDropout(Array.from(x8) as never, { p: 0.5, seed: 1n })],
      ['dtype', () => referenceDropout(x8, { p: 0.5, seed: 1n, dtype: 'bf16' as never })],
      ['options', () => referenceDropout(x8, null as never)],
      ['options', () => referenceStructuredKeep(undefined as never)],
      ['seed', () => referenceStructuredKeep({ p: 0, shape: [4], seed: 'one' as never })],
      ['scaleByKeep', () => referenceStructuredDropout(x8, { p: 0, seed: 1n, scaleByKeep: 'yes' as never })],
      ['x', () => referenceStructuredDropout(x8, { p: 0.5, seed: 1n, dtype: 'f16' })],
      ['residual', () => referenceDropPathAdd(testData(4), x8, { p: 0.5, seed: 1n, shape: [2, 4], noiseShape: [2, 1] })],
      ['residual', () => referenceDropPathAdd(new Uint16Array(8), x8, { p: 0.5, seed: 1n, shape: [2, 4], noiseShape: [2, 1] })],
      ['bias', () => referenceBiasDropoutResidual(x8, testData(3), testData(8, 2), { p: 0.5, seed: 1n, shape: [2, 4] })],
      ['shape', () => referenceBiasDropoutResidual(testData(1), testData(1), testData(1, 2), { p: 0.5, seed: 1n, shape: [] })],
      ['shape', () => referenceBiasDropoutResidualBackward(testData(1), { p: 0.5, seed: 1n, shape: [] })],
      ['options', () => referenceGaussianDropout(x8, undefined as never)],
      ['options', () => referenceAlphaDropoutBackward(x8, 3 as never)],
      ['model.parameters', () => referenceMlpForward({ sizes: [2, 1], parameters: new Float32Array(2) }, [1, 2], 1)],
      ['model.sizes', () => referenceMlpForward({ sizes: [2], parameters: [] }, [1, 2], 1)],
      ['model.dropout', () => referenceMlpForward({ sizes: [2, 3, 1], parameters: new Float32Array(13), dropout: 1.5 }, [1, 2], 1)],
      ['rows', () => referenceMlpForward({ sizes: [2, 1], parameters: new Float32Array(3) }, [], -1)],
      ['sample.seed', () => referenceMlpForward({ sizes: [2, 1], parameters: new Float32Array(3) }, [1, 2], 1, { seed: -1n, stream: 0n })],
      ['loss', () => referenceLoss([0], [0], 1, 1, 'mae' as never)],
      ['targets', () => referenceLoss([0, 0], [0], 1, 2, 'mse')],
      ['samples', () => referenceMcStats([], 1, 1, 'regression')],
      ['task', () => referenceMcStats([[1], [2]], 1, 1, 'cls' as never)],
      ['samples[1]', () => referenceMcStats([[1, 2], [3]], 1, 2, 'regression')],
    ];
    expect(cases.map(([, call]) => outcome(call))).toEqual(cases.map(([argument]) => `refused ${argument}`));
    // The same calls with good arguments still compute.
    expect(referenceWords(1n, 0n, 0)).toHaveLength(0);
    expect(applyKeepMask(x8, keep8, 0.5, 'f32')).toEqual(x8.map((v) => v * 2));
    expect(referenceMcStats([[1], [3]], 1, 1, 'regression').variance).toEqual(Float64Array.of(1));
  });
});

describe('11. requestDropoutDevice checks powerPreference before asking for an adapter', () => {
  it("'ultra' (or any other value) names powerPreference and no adapter is requested; requestNodeDevice goes through the same check", async () => {
    const calls: unknown[] = [];
    const gpu = {
      requestAdapter: async (options?: unknown) => {
        calls.push(options);
        return null;
      },
    } as unknown as GPU;
    for (const powerPreference of ['ultra', 'LOW-POWER', 1, null]) {
      await expectInvalid(
        () => requestDropoutDevice({ gpu, powerPreference: powerPreference as GPUPowerPreference }),
        'powerPreference',
        /'low-power' or 'high-performance'/,
      );
    }
    expect(calls).toEqual([]);
    await expectInvalid(
      () => requestNodeDevice({ powerPreference: 'ultra' as GPUPowerPreference }),
      'powerPreference',
      /'low-power' or 'high-performance'/,
    );
    // A valid one goes to requestAdapter as it was given.
    await expect(requestDropoutDevice({ gpu, powerPreference: 'low-power' })).rejects.toThrow(/no adapter/);
    expect(calls).toEqual([{ powerPreference: 'low-power' }]);
  });
});

describe("12. the in-place Dropout layer's errors name the argument the caller passed", () => {
  it('a destroyed dy in backward names dy, a destroyed x in forward names x (the op binds the buffer as its out); the same for a buffer of another device', async () => {
    const layer = new Dropout(ctx, { p: 0.5, inPlace: true, generator: new PhiloxGenerator(6n) });
    const doomed = ctx.upload(testData(N, 6));
    const { state } = await layer.forward(doomed);
    await ctx.flush();
    doomed.destroy();
    const foreign = other.device.createBuffer({ size: N * 4, usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST });
    const before = counts(ctx);
    uncaptured = [];
    for (const [buffer, reason] of [
      [doomed, /destroyed/],
      [foreign, /another GPUDevice/],
    ] as const) {
      await expectInvalid(() => layer.backward(buffer, state), 'dy', reason);
      await expectInvalid(() => layer.forward(buffer), 'x', reason);
      await expectInvalid(() => layer.forward(buffer, { mask: true }), 'x', reason);
      // The functional ops in place name the buffer as the input it is.
      await expectInvalid(() => dropoutBackward(ctx, buffer, state, { out: buffer }), 'dy', reason);
      await expectInvalid(() => dropout(ctx, buffer, { p: 0.5, seed: 1n, out: buffer }), 'x', reason);
    }
    await settled();
    expect(uncaptured).toEqual([]);
    expect(counts(ctx)).toEqual(before);
    foreign.destroy();
  });
});

describe('13. biasDropoutResidualBackward is all or nothing', () => {
  it('refused for its outBias (destroyed, or of another device) or outX, it writes nothing, outX included, and the pool is as it was', async () => {
    const c = await gpuContext({ maskTables: { minElements: 0, minReuse: 1 } });
    const errors: string[] = [];
    c.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
    const shape = [32, 32];
    const { state } = await biasDropoutResidual(c, c.upload(testData(N, 1)), c.upload(testData(32, 2)), c.upload(testData(N, 3)), {
      p: 0.25,
      shape,
      seed: 4n,
    });
    const dy = c.upload(testData(N, 5));
    const outX = poisoned(c, N * 4);
    const doomed = c.upload(new Float32Array(32));
    const doomedX = c.upload(new Float32Array(N));
    await c.flush();
    doomed.destroy();
    doomedX.destroy();
    const foreignBias = other.device.createBuffer({ size: 32 * 4, usage: Usage.STORAGE | Usage.COPY_SRC });
    const before = counts(c);
    for (const encoder of [undefined, c.device.createCommandEncoder()]) {
      for (const outBias of [doomed, foreignBias]) {
        for (const x of [outX, undefined]) {
          await expectInvalid(
            () => biasDropoutResidualBackward(c, dy, state, { outX: x, outBias, encoder }),
            'outBias',
            /destroy|another GPUDevice/,
          );
        }
      }
      await expectInvalid(() => biasDropoutResidualBackward(c, dy, state, { outX: doomedX, encoder }), 'outX', /destroy/);
      if (encoder) {
        c.device.pushErrorScope('validation');
        c.device.queue.submit([encoder.finish()]);
        expect(await c.device.popErrorScope()).toBeNull();
      }
    }
    await settled(c);
    expect(errors).toEqual([]);
    expect(counts(c)).toEqual(before);
    await expectUntouched(c, outX);
    // A valid call writes both gradients as the reference says.
    const grads = await biasDropoutResidualBackward(c, dy, state, { outX });
    const want = referenceBiasDropoutResidualBackward(testData(N, 5), { p: 0.25, shape, seed: 4n });
    expect(Array.from(await readArray(c, grads.dx, 'f32', N))).toEqual(Array.from(want.dx));
    expect(grads.dx).toBe(outX);
  });
});

describe('14. a finished encoder, or one of another device, is refused naming encoder', () => {
  it('every kind of op and the model kit: nothing recorded, nothing written, no uncaptured error on either device, no stream taken', async () => {
    const c = await gpuContext();
    const errors: string[] = [];
    const otherErrors: string[] = [];
    c.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
    other.device.addEventListener('uncapturederror', (e) => otherErrors.push((e as GPUUncapturedErrorEvent).error.message));
    const data = c.upload(testData(N, 7));
    const out = poisoned(c, N * 4);
    const bias = c.upload(testData(32, 1));
    const residual = c.upload(testData(N, 2));
    const mlp = new MLP(c, { sizes: [4, 8, 2], dropout: 0.5, seed: 3 });
    const input = uploadMatrix(c, testData(8, 8), 2, 4);
    await c.flush();
    const finished = c.device.createCommandEncoder();
    finished.finish();
    const foreign = other.device.createCommandEncoder();
    const generator = new PhiloxGenerator(5n);
    const before = counts(c);
    for (const [encoder, reason] of [
      [finished, /still open for recording, got one whose finish\(\) was already called/],
      [foreign, /of this context's device, got an encoder of another GPUDevice/],
    ] as const) {
      await expectInvalid(() => dropout(c, data, { p: 0.5, generator, out, encoder }), 'encoder', reason);
      await expectInvalid(() => dropout(c, data, { p: 0.5, generator, encoder }), 'encoder', reason);
      await expectInvalid(() => randomWords(c, { count: N, generator, out, encoder }), 'encoder', reason);
      await expectInvalid(
        () => spatialDropout(c, data, { p: 0.5, shape: [4, 8, 32], layout: 'channels-first', generator, out, encoder }),
        'encoder',
        reason,
      );
      await expectInvalid(
        () => biasDropoutResidual(c, data, bias, residual, { p: 0.5, shape: [32, 32], generator, out, encoder }),
        'encoder',
        reason,
      );
      await expectInvalid(() => mlp.predict(input, { encoder }), 'encoder', reason);
    }
    expect(generator.stream).toBe(0n);
    await settled(c);
    await other.device.queue.onSubmittedWorkDone();
    expect(errors).toEqual([]);
    expect(otherErrors).toEqual([]);
    expect(counts(c)).toEqual(before);
    await expectUntouched(c, out);
    // The other device's encoder was left alone: it still finishes and submits cleanly there.
    other.device.pushErrorScope('validation');
    other.device.queue.submit([foreign.finish()]);
    expect(await other.device.popErrorScope()).toBeNull();
    mlp.destroy();
  });

  it('an encoder finished while the op waited (not awaited before finish) is refused before anything is recorded into it', async () => {
    const c = await gpuContext();
    const errors: string[] = [];
    c.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
    const data = c.upload(testData(N, 9));
    const out = poisoned(c, N * 4);
    await c.flush();
    const before = counts(c);
    const encoder = c.device.createCommandEncoder();
    // A new shape: its pipelines compile asynchronously, so the op is still waiting at finish().
    const pending = structuredDropout(c, data, { p: 0.5, shape: [2, 512], noiseShape: [2, 1], seed: 1n, encoder });
    c.device.queue.submit([encoder.finish()]);
    await expectInvalid(() => pending, 'encoder', /finish\(\) was already called/);
    await settled(c);
    expect(errors).toEqual([]);
    expect(counts(c)).toEqual(before);
    await expectUntouched(c, out);
  });
});

describe('15. destroyed buffers: refused up front, never handed out again by the pool', () => {
  it('output.destroy() then ctx.release(output): the pool forgets it; later calls of that size work and name nothing the caller did not pass', async () => {
    const c = await gpuContext();
    const xs = testData(N, 11);
    const data = c.upload(xs);
    const first = await dropout(c, data, { p: 0.5, seed: 1n });
    await c.flush();
    const bytes = c.pool.bytes;
    first.output.destroy();
    c.release(first.output);
    expect(c.pool.bytes).toBe(bytes - N * 4);
    // Released, then destroyed while idle (the caller kept using what it gave back).
    const second = await dropout(c, data, { p: 0.5, seed: 2n });
    c.release(second.output);
    second.output.destroy();
    for (let i = 0; i < 3; i++) {
      const { output } = await dropout(c, data, { p: 0.5, seed: 3n });
      expect(output).not.toBe(first.output);
      expect(output).not.toBe(second.output);
      expect(Array.from(await readArray(c, output, 'f32', N))).toEqual(Array.from(referenceDropout(xs, { p: 0.5, seed: 3n })));
      c.release(output);
    }
  });

  it('a destroyed argument is named before anything is recorded, so the other ops of the same batch still run', async () => {
    const c = await gpuContext();
    const errors: string[] = [];
    c.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
    const xs = testData(N, 12);
    const data = c.upload(xs);
    const doomed = c.upload(xs);
    await c.flush();
    doomed.destroy();
    const before = counts(c);
    const generator = new PhiloxGenerator(8n);
    // Issued in one tick: they share one batch.
    const [good, bad, badOut] = await Promise.allSettled([
      dropout(c, data, { p: 0.5, seed: 4n }),
      dropout(c, doomed, { p: 0.5, generator }),
      spatialDropout(c, data, { p: 0.5, shape: [4, 8, 32], layout: 'channels-first', generator, out: doomed }),
    ]);
    for (const [result, argument] of [
      [bad, 'x'],
      [badOut, 'out'],
    ] as const) {
      expect(result.status).toBe('rejected');
      const e = (result as PromiseRejectedResult).reason as InvalidArgumentError;
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.argument).toBe(argument);
      expect(e.message).toMatch(/a live GPUBuffer, got a destroyed GPUBuffer/);
    }
    expect(generator.stream).toBe(0n);
    // The refused calls took nothing from the pool; the good one its output.
    expect(counts(c)).toEqual({ allocations: before.allocations + 1, bytes: before.bytes + N * 4 });
    expect(good.status).toBe('fulfilled');
    const { output } = (good as PromiseFulfilledResult<Awaited<ReturnType<typeof dropout>>>).value;
    expect(Array.from(await readArray(c, output, 'f32', N))).toEqual(Array.from(referenceDropout(xs, { p: 0.5, seed: 4n })));
    await expectInvalid(() => c.readBytes(doomed, 16), 'buffer', /a destroyed GPUBuffer/);
    c.release(output);
    await settled(c);
    expect(errors).toEqual([]);
  });
});
