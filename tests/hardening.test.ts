// The seven faults an adversarial run found (issue 18), each refused up front with an error naming
// the argument, nothing written, no WebGPU error escaping (uncaptured or otherwise), the pool's
// counts and the generator's stream as they were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlphaDropout,
  DropoutContext,
  GaussianDropout,
  InvalidArgumentError,
  MLP,
  PhiloxGenerator,
  SpatialDropout2D,
  Usage,
  alphaDropout,
  alphaDropoutBackward,
  bernoulliMask,
  dropPath,
  dropout,
  gaussianDropout,
  gaussianDropoutBackward,
  mcDropout,
  randomNormal,
  randomWords,
  readArray,
  referenceStructuredDropout,
  spatialDropout,
  spatialNoiseShape,
  structuredDropout,
  structuredKeepMask,
  uploadMatrix,
} from '../src/index.js';
import { requestNodeDevice, type NodeDevice } from '../src/node.js';
import { expectInvalid, gpuContext, poisoned, POISON_WORD, testData } from './gpu.js';

const N = 1024;
let ctx: DropoutContext;
let x: GPUBuffer;
let uncaptured: string[] = [];
beforeAll(async () => {
  ctx = await gpuContext();
  x = ctx.upload(testData(N));
  ctx.device.addEventListener('uncapturederror', (e) => uncaptured.push((e as GPUUncapturedErrorEvent).error.message));
});

/** The device's queue drained and its events delivered: an uncaptured error would have arrived. */
async function settled(c: DropoutContext = ctx): Promise<void> {
  await c.device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 20));
}

async function expectUntouched(c: DropoutContext, buffer: GPUBuffer): Promise<void> {
  const words = new Uint32Array(await c.readBytes(buffer, buffer.size));
  expect(words.findIndex((w) => w !== POISON_WORD), 'a refused call wrote its output').toBe(-1);
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
    await expectInvalid(() => structuredKeepMask(ctx, { p: 0.5, shape: [2 ** 16, 2 ** 14], seed: 1n }), 'shape', new RegExp(`maxBufferSize of ${max} bytes`));
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
    await expectInvalid(() => mlp.trainStep(x, y, { loss: 'mse' }), 'x', new RegExp(`at most ${rows - 1} rows .*maxStorageBufferBindingSize of ${limit} bytes`));
    await expectInvalid(() => mlp.predict(x), 'x', /at most/);
    const fits = Math.floor(limit / (8 * width * 4));
    await expectInvalid(() => mcDropout(ctx, mlp, small, { samples: fits + 1, schedule: 'batched', samplesPerPass: fits + 1, seed: 1n }), 'samplesPerPass', new RegExp(`at most ${fits}`));
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
      await expectInvalid(() => spatialDropout(c, doomed, { p: 0.5, shape: [4, 8, 32], layout: 'channels-first', seed: 1n }), 'x', /destroyed/);
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
  let other: NodeDevice;
  beforeAll(async () => {
    other = await requestNodeDevice();
  });
  afterAll(() => other?.release());

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
      await expectInvalid(() => dropPath(c, mine, { p: 0.5, shape: [8, 128], generator, out: foreign(N * 4), encoder }), 'out', /another GPUDevice/);
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
  const state = { op: 'gaussian' as const, seed: 1n, stream: 0n, offset: 0n, p: 0.3, shape: [N], noiseShape: [N], dtype: 'f32' as const, training: true, scale: 1 };
  it("gaussianDropoutBackward and alphaDropoutBackward with p = 1 (or out of range) in the state name 'state.p'", async () => {
    const out = poisoned(ctx, N * 4);
    for (const p of [1, 1.5, NaN]) {
      await expectInvalid(() => gaussianDropoutBackward(ctx, x, { ...state, p }, { out }), 'state.p', /a number in \[0, 1\)?/);
      await expectInvalid(() => alphaDropoutBackward(ctx, x, { ...state, op: 'alpha', p }, { out }), 'state.p', /a number in \[0, 1\)?/);
    }
    await expectInvalid(() => alphaDropoutBackward(ctx, x, { ...state, op: 'alpha', seed: -1n }, { out }), 'state.seed', /0\.\.2\^64-1/);
    await expectInvalid(() => gaussianDropoutBackward(ctx, x, { ...state, shape: [N + 1], noiseShape: [N + 1] }, { out }), 'dy', /at least/);
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
      expect(() => referenceStructuredDropout(testData(8), { p: 0.5, seed: 1n, scaleByKeep: b })).toThrow(/scaleByKeep: expected a boolean/);
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
    await expectInvalid(() => new AlphaDropout(ctx, { p: 0.2 }).forward(x, { shape: [N], outt: out } as never), 'options.outt', /did you mean out\?/);
    await expectInvalid(() => layer.forward(x, { shape: [N], out }), 'shape', /4 dimensions/);
    expect(layer.generator!.stream).toBe(0n);
    await expectUntouched(ctx, out);
    const { output } = await layer.forward(x, { shape, out });
    const want = referenceStructuredDropout(testData(N), { p: 0.5, shape, noiseShape: spatialNoiseShape(shape, { layout: 'channels-last' }), seed: 1n });
    expect(Array.from(await readArray(ctx, output, 'f32', N))).toEqual(Array.from(want));
  });
});
