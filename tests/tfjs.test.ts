// webgpu-dropout/tfjs on TensorFlow.js's WebGPU backend over the suite's Dawn device (lavapipe):
// outputs against the CPU reference bit for bit, gradients against the backward reference,
// disposal, errors.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  gaussianDropout as bufferGaussianDropout,
  DropoutContext,
  InvalidArgumentError,
  PhiloxGenerator,
  type RandomState,
  readArray,
  UnsupportedError,
} from '../src/index.js';
import {
  applyKeepMask,
  referenceDropout,
  referenceDropoutBackward,
  referenceKeepMask,
  referenceMcStats,
  referenceStructuredDropout,
} from '../src/reference.js';
import { dropout, dropPath, gaussianDropout, mcDropout, setTfjsContext, spatialDropout, tfjsContext, useTfjsDevice } from '../src/tfjs.js';
import { WebGPUDropout, webgpuDropout } from '../src/tfjs-layers.js';
import { nodeDevice, testData } from './gpu.js';

beforeAll(async () => {
  const { device, adapter } = await nodeDevice();
  await useTfjsDevice(device, adapter);
});

afterAll(() => {
  tf.removeBackend('webgpu');
});

/** A tensor of `data`, and a disposed NaN tensor of the same size first, so that the backend's pool
 * hands our output a buffer full of poison (a NaN no kernel writes). */
async function poisonedInput(data: Float32Array, shape: number[]): Promise<tf.Tensor> {
  const poison = tf.fill(shape, NaN);
  await poison.data();
  poison.dispose();
  return tf.tensor(data, shape);
}

const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

describe('dropout on tfjs tensors', () => {
  const cases: { shape: number[]; p: number; stream: bigint; offset: bigint }[] = [
    { shape: [1], p: 0.5, stream: 0n, offset: 0n },
    { shape: [7], p: 0.3, stream: 5n, offset: 3n },
    { shape: [33, 5], p: 0.5, stream: 1n, offset: 0n },
    { shape: [4, 3, 2, 9], p: 0.1, stream: 2n ** 40n + 3n, offset: 2n ** 33n + 1n },
    { shape: [2, 4099], p: 0.9, stream: 7n, offset: 6n },
  ];
  for (const c of cases) {
    it(`matches referenceDropout bit for bit: shape [${c.shape}], p ${c.p}, stream ${c.stream}, offset ${c.offset}`, async () => {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const xs = testData(n, n);
      const x = await poisonedInput(xs, c.shape);
      const y = dropout(x, { p: c.p, seed: 0xabcdef12345n, stream: c.stream, offset: c.offset });
      expect(y.shape).toEqual(c.shape);
      expect(y.dtype).toBe('float32');
      const want = referenceDropout(xs, { p: c.p, seed: 0xabcdef12345n, stream: c.stream, offset: c.offset });
      expect(bits(await y.data())).toEqual(bits(want));
      tf.dispose([x, y]);
    });
  }

  it('a noise shape broadcasts the mask as referenceStructuredDropout does', async () => {
    const shape = [3, 4, 5];
    const xs = testData(60, 3);
    const x = await poisonedInput(xs, shape);
    for (const noiseShape of [
      [3, 1, 5],
      [1, 4, 1],
      [3, 4, 5],
    ]) {
      const y = dropout(x, { p: 0.5, seed: 9, stream: 2, noiseShape });
      expect(bits(await y.data())).toEqual(bits(referenceStructuredDropout(xs, { p: 0.5, seed: 9, stream: 2, shape, noiseShape })));
      y.dispose();
    }
    x.dispose();
  });

  it('a generator gives each call its next stream; onState reports it', async () => {
    const xs = testData(100, 4);
    const x = tf.tensor(xs);
    const generator = new PhiloxGenerator(77n, 10n);
    const states: RandomState[] = [];
    const a = dropout(x, { p: 0.5, generator, onState: (s) => states.push(s) });
    const b = dropout(x, { p: 0.5, generator, onState: (s) => states.push(s) });
    expect(states.map((s) => s.stream)).toEqual([10n, 11n]);
    expect(bits(await a.data())).toEqual(bits(referenceDropout(xs, { p: 0.5, seed: 77n, stream: 10n })));
    expect(bits(await b.data())).toEqual(bits(referenceDropout(xs, { p: 0.5, seed: 77n, stream: 11n })));
    tf.dispose([x, a, b]);
  });

  it('runs between tfjs kernels in one encoder: a producer before, a consumer after, no read in between', async () => {
    const xs = testData(1000, 5);
    const x = tf.tensor(xs);
    const y = tf.tidy(() => tf.mul(dropout(tf.add(x, 1), { p: 0.25, seed: 3 }), 2));
    const want = referenceDropout(
      Float32Array.from(xs, (v) => Math.fround(v + 1)),
      { p: 0.25, seed: 3 },
    );
    expect(bits(await y.data())).toEqual(bits(Float32Array.from(want, (v) => v * 2)));
    tf.dispose([x, y]);
  });

  it('a tensor larger than one chunk is recorded in chunks with the same mask', async () => {
    const { device } = await nodeDevice();
    const own = tfjsContext();
    const small = new DropoutContext(device, { maxChunkElements: 2048, seed: 1n });
    setTfjsContext(small);
    try {
      const xs = testData(5003, 14);
      const x = tf.tensor(xs);
      const opts = { p: 0.4, seed: 8, stream: 3, offset: 2 ** 32 - 3 };
      const [y, dx] = [dropout(x, opts), tf.grad((t: tf.Tensor) => dropout(t, opts))(x)];
      expect(bits(await y.data())).toEqual(bits(referenceDropout(xs, opts)));
      expect(bits(await dx.data())).toEqual(bits(referenceDropoutBackward(new Float32Array(5003).fill(1), opts)));
      const shape = [4, 700, 3];
      const zs = testData(8400, 15);
      const z = tf.tensor(zs, shape);
      const s = spatialDropout(z, { p: 0.5, seed: 8, offset: 1 });
      expect(bits(await s.data())).toEqual(
        bits(referenceStructuredDropout(zs, { p: 0.5, seed: 8, offset: 1, shape, noiseShape: [4, 1, 3] })),
      );
      tf.dispose([x, y, dx, z, s]);
    } finally {
      setTfjsContext(own);
      small.destroy();
    }
  });

  it('p = 0 and eval mode are copies of x, p = 1 zeros (NaN included)', async () => {
    const x = tf.tensor([1, NaN, -3, Infinity]);
    expect(Array.from(await dropout(x, { p: 0, seed: 1 }).data())).toEqual([1, NaN, -3, Infinity]);
    expect(Array.from(await dropout(x, { p: 0.5, training: false }).data())).toEqual([1, NaN, -3, Infinity]);
    expect(Array.from(await dropout(x, { p: 1, seed: 1 }).data())).toEqual([0, 0, 0, 0]);
  });
});

describe('gradients', () => {
  it('tf.grad of dropout is dy * keep / (1 - p), the mask regenerated', async () => {
    const shape = [17, 9];
    const [xs, dys] = [testData(153, 6), testData(153, 7)];
    const [x, dy] = [tf.tensor(xs, shape), tf.tensor(dys, shape)];
    for (const opts of [
      { p: 0.5, seed: 11, stream: 4, offset: 1 },
      { p: 0.2, seed: 12 },
    ]) {
      const dx = tf.grad((t: tf.Tensor) => dropout(t, opts))(x, dy);
      expect(bits(await dx.data())).toEqual(bits(referenceDropoutBackward(dys, opts)));
      dx.dispose();
    }
    tf.dispose([x, dy]);
  });

  it('tf.variableGrads through a loss sees the forward mask (one stream per call)', async () => {
    const xs = testData(64, 8);
    const v = tf.variable(tf.tensor(xs));
    const generator = new PhiloxGenerator(5n);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(dropout(v, { p: 0.5, generator }), 3)) as tf.Scalar, [v]);
    const y = referenceDropout(xs, { p: 0.5, seed: 5n, stream: 0n }) as Float32Array;
    expect(generator.stream).toBe(1n);
    expect(await value.data()).toEqual(await tf.sum(tf.mul(tf.tensor(y), 3)).data());
    const want = referenceDropoutBackward(new Float32Array(64).fill(3), { p: 0.5, seed: 5n, stream: 0n });
    expect(bits(await grads[v.name]!.data())).toEqual(bits(want));
    tf.dispose([value, grads[v.name]!, v]);
  });

  it('spatial dropout and drop path: forward and gradient with their noise shapes', async () => {
    const shape = [2, 3, 4, 5];
    const [xs, dys] = [testData(120, 9), testData(120, 10)];
    const [x, dy] = [tf.tensor(xs, shape), tf.tensor(dys, shape)];
    const runs = [
      { op: (t: tf.Tensor) => spatialDropout(t, { p: 0.5, seed: 1, stream: 2 }), ref: { noiseShape: [2, 1, 1, 5] } },
      {
        op: (t: tf.Tensor) => spatialDropout(t, { p: 0.5, seed: 1, stream: 2, layout: 'channels-first' }),
        ref: { noiseShape: [2, 3, 1, 1] },
      },
      { op: (t: tf.Tensor) => dropPath(t, { p: 0.5, seed: 1, stream: 3 }), ref: { noiseShape: [2, 1, 1, 1], stream: 3 } },
      {
        op: (t: tf.Tensor) => dropPath(t, { p: 0.5, seed: 1, stream: 3, scaleByKeep: false }),
        ref: { noiseShape: [2, 1, 1, 1], stream: 3, scaleByKeep: false },
      },
    ];
    for (const { op, ref } of runs) {
      const opts = { p: 0.5, seed: 1, stream: 2, shape, ...ref };
      const y = op(x);
      expect(bits(await y.data())).toEqual(bits(referenceStructuredDropout(xs, opts)));
      const dx = tf.grad(op)(x, dy);
      expect(bits(await dx.data())).toEqual(bits(referenceStructuredDropout(dys, opts)));
      tf.dispose([y, dx]);
    }
    tf.dispose([x, dy]);
  });

  it('Gaussian dropout: bit for bit the raw-buffer op on the same device, forward and gradient', async () => {
    const ctx = tfjsContext();
    const shape = [6, 7];
    const [xs, dys] = [testData(42, 11), testData(42, 12)];
    const [x, dy] = [tf.tensor(xs, shape), tf.tensor(dys, shape)];
    const opts = { p: 0.3, seed: 21n, stream: 8n, offset: 2n };
    const y = gaussianDropout(x, opts);
    const dx = tf.grad((t: tf.Tensor) => gaussianDropout(t, opts))(x, dy);
    const raw = async (data: Float32Array) => {
      const buf = ctx.upload(data);
      const { output } = await bufferGaussianDropout(ctx, buf, { ...opts, shape });
      const out = await readArray(ctx, output, 'f32', 42);
      ctx.release(buf);
      ctx.release(output);
      return out;
    };
    expect(bits(await y.data())).toEqual(bits(await raw(xs)));
    expect(bits(await dx.data())).toEqual(bits(await raw(dys)));
    tf.dispose([x, dy, y, dx]);
  });

  // Second and higher derivatives. Each op is y = c * x elementwise, so for sum(op(x) * x) the
  // gradient is 2 c x and the second derivative 2 c; for sum(op(x)^2) it is 2 c^2, and the third
  // derivative of sum(op(x)^3) is 6 c^3. c is the op applied to ones: the reference's masked scale
  // (p = 0.5 or 0.75, so every product is exact) or, for Gaussian dropout, the raw-buffer op's.
  const ones = (n: number) => new Float32Array(n).fill(1);
  const timesTwo = (a: ArrayLike<number>) => Float32Array.from(a, (v) => 2 * v);
  const secondOfProduct = (op: (t: tf.Tensor) => tf.Tensor) =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t), t)))(x)));

  it('second derivative of sum(dropout(x) * x) is 2 s m; the first derivative stays 2 s m x', async () => {
    const shape = [13, 11];
    const xs = testData(143, 24);
    const x = tf.tensor(xs, shape);
    for (const opts of [
      { p: 0.5, seed: 7 },
      { p: 0.75, seed: 31, stream: 2 ** 40 + 1, offset: 2 ** 32 + 5 },
    ]) {
      const keep = referenceKeepMask(143, opts.p, opts);
      const c = applyKeepMask(ones(143), keep, opts.p, 'f32');
      const op = (t: tf.Tensor) => dropout(t, opts);
      const before = tf.memory().numTensors;
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t), t)))(x);
      expect(bits(await dx.data())).toEqual(bits(timesTwo(applyKeepMask(xs, keep, opts.p, 'f32'))));
      const d2x = secondOfProduct(op)(x);
      expect(bits(await d2x.data())).toEqual(bits(timesTwo(c)));
      tf.dispose([dx, d2x]);
      expect(tf.memory().numTensors).toBe(before);
    }
    x.dispose();
  });

  it('second derivative through ordinary tfjs ops: sum(dropout(x)^2) gives 2 s^2 m', async () => {
    const xs = testData(200, 25);
    const x = tf.tensor(xs, [8, 25]);
    const opts = { p: 0.5, seed: 7, stream: 3 };
    const c = applyKeepMask(ones(200), referenceKeepMask(200, opts.p, opts), opts.p, 'f32');
    const d2x = tf.grad((u: tf.Tensor) => tf.sum(tf.grad((t: tf.Tensor) => tf.sum(tf.square(dropout(t, opts))))(u)))(x);
    expect(bits(await d2x.data())).toEqual(bits(Float32Array.from(c, (v) => 2 * v * v)));
    tf.dispose([x, d2x]);
  });

  it('third derivative of sum(dropout(x)^3) is 6 s^3 m', async () => {
    const xs = testData(64, 26);
    const x = tf.tensor(xs);
    const opts = { p: 0.5, seed: 9, offset: 3 };
    const c = applyKeepMask(ones(64), referenceKeepMask(64, opts.p, opts), opts.p, 'f32');
    const cube = (t: tf.Tensor) => {
      const y = dropout(t, opts);
      return tf.sum(tf.mul(tf.mul(y, y), y));
    };
    const grad = (f: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.grad(f)(t));
    const d3x = tf.grad(grad(grad(cube)))(x);
    expect(bits(await d3x.data())).toEqual(bits(Float32Array.from(c, (v) => 6 * v * v * v)));
    tf.dispose([x, d3x]);
  });

  it('spatial dropout and drop path: second derivative of sum(op(x) * x) is twice the masked scale', async () => {
    const shape = [2, 3, 4, 5];
    const x = tf.tensor(testData(120, 27), shape);
    const runs = [
      { op: (t: tf.Tensor) => spatialDropout(t, { p: 0.5, seed: 1, stream: 2 }), ref: { noiseShape: [2, 1, 1, 5] } },
      { op: (t: tf.Tensor) => dropPath(t, { p: 0.5, seed: 1, stream: 3 }), ref: { noiseShape: [2, 1, 1, 1], stream: 3 } },
      {
        op: (t: tf.Tensor) => dropPath(t, { p: 0.75, seed: 1, stream: 3, scaleByKeep: false }),
        ref: { p: 0.75, noiseShape: [2, 1, 1, 1], stream: 3, scaleByKeep: false },
      },
    ];
    for (const { op, ref } of runs) {
      const d2x = secondOfProduct(op)(x);
      expect(bits(await d2x.data())).toEqual(
        bits(timesTwo(referenceStructuredDropout(ones(120), { p: 0.5, seed: 1, stream: 2, shape, ...ref }) as Float32Array)),
      );
      d2x.dispose();
    }
    x.dispose();
  });

  it('Gaussian dropout: second derivative of sum(op(x) * x) is twice the raw-buffer op on ones', async () => {
    const ctx = tfjsContext();
    const shape = [6, 7];
    const x = tf.tensor(testData(42, 28), shape);
    const opts = { p: 0.3, seed: 21n, stream: 8n, offset: 2n };
    const d2x = secondOfProduct((t) => gaussianDropout(t, opts))(x);
    const buf = ctx.upload(ones(42));
    const { output } = await bufferGaussianDropout(ctx, buf, { ...opts, shape });
    const g = (await readArray(ctx, output, 'f32', 42)) as Float32Array;
    ctx.release(buf);
    ctx.release(output);
    expect(bits(await d2x.data())).toEqual(bits(timesTwo(g)));
    tf.dispose([x, d2x]);
  });
});

describe('memory', () => {
  it('a loop of forward + backward calls keeps tf.memory() and the pool bounded', async () => {
    const ctx = tfjsContext();
    const x = tf.tensor(testData(4096, 13), [64, 64]);
    const step = () =>
      tf.tidy(() => {
        const y = dropout(x, { p: 0.5 });
        const g = tf.grad((t: tf.Tensor) => spatialDropout(t, { p: 0.3 }))(x);
        return tf.add(tf.sum(y), tf.sum(g));
      });
    // Warm-up: pipelines, the backend's pools.
    for (let i = 0; i < 50; i++) step().dispose();
    await step().data();
    const before = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
    const allocations = ctx.pool.allocations;
    for (let i = 0; i < 1000; i++) step().dispose();
    const last = step();
    await last.data();
    last.dispose();
    const after = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    // The backend's own buffers: what its pool holds stays at the warm-up's level.
    expect(after.numBytesAllocatedInGPU).toBeLessThanOrEqual(before.numBytesAllocatedInGPU! + 4 * 4096 * 8);
    expect(ctx.pool.allocations).toBe(allocations);
    x.dispose();
  });
});

describe('errors', () => {
  const x = () => tf.tensor([1, 2, 3, 4]);
  const cases: [string, string, () => unknown][] = [
    ['x', 'not a tensor', () => dropout(new Float32Array(4) as never, { p: 0.5 })],
    ['x', 'an int32 tensor', () => dropout(tf.tensor([1, 2], [2], 'int32'), { p: 0.5 })],
    ['p', 'p = 2', () => dropout(x(), { p: 2 })],
    ['options', 'no options', () => dropout(x(), undefined as never)],
    ['options.rate', 'an option of tf.dropout', () => dropout(x(), { rate: 0.5 } as never)],
    ['noiseShape', 'a noise shape of another rank', () => dropout(x(), { p: 0.5, noiseShape: [4, 1] })],
    ['seed', 'a negative seed', () => dropout(x(), { p: 0.5, seed: -1 })],
    ['stream', 'a stream without a seed', () => dropout(x(), { p: 0.5, stream: 3 })],
    ['generator', 'not a generator', () => dropout(x(), { p: 0.5, generator: {} as never })],
    ['training', 'a string', () => dropout(x(), { p: 0.5, training: 'yes' as never })],
    ['onState', 'onState not a function', () => dropPath(tf.ones([2, 3]), { p: 0.5, onState: 5 as never })],
    ['scaleByKeep', 'scaleByKeep a number', () => dropPath(tf.ones([2, 3]), { p: 0.5, scaleByKeep: 1 as never })],
    [
      'options.noiseShape',
      'a noise shape given to spatialDropout',
      () => spatialDropout(tf.ones([2, 3]), { p: 0.5, noiseShape: [2, 1] } as never),
    ],
    ['x', 'spatial dropout of a vector', () => spatialDropout(x(), { p: 0.5 })],
    ['p', 'Gaussian p = 1', () => gaussianDropout(x(), { p: 1 })],
  ];
  for (const [argument, what, call] of cases) {
    it(`${what}: InvalidArgumentError naming ${argument}, no stream drawn`, () => {
      const ctx = tfjsContext();
      const stream = ctx.generator.stream;
      const before = tf.memory().numTensors;
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).argument).toBe(argument);
      expect(ctx.generator.stream).toBe(stream);
      tf.disposeVariables();
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 1);
    });
  }

  it('another backend active: UnsupportedError saying to call tf.setBackend', async () => {
    const t = tf.tensor([1, 2]);
    await tf.setBackend('cpu');
    try {
      const c = tf.tensor([1, 2]);
      expect(() => dropout(c, { p: 0.5 })).toThrow(UnsupportedError);
      expect(() => dropout(c, { p: 0.5 })).toThrow("tf.setBackend('webgpu')");
      c.dispose();
    } finally {
      await tf.setBackend('webgpu');
    }
    t.dispose();
  });

  it("a context on another GPUDevice than the backend's: InvalidArgumentError naming context", async () => {
    // Another GPUDevice object with the same limits (a second Dawn instance in one process is
    // not needed to show that the check compares devices).
    const { device } = await nodeDevice();
    const other = {
      createBuffer: () => undefined,
      limits: device.limits,
      features: device.features,
      lost: new Promise(() => undefined),
    } as unknown as GPUDevice;
    const ctx = new DropoutContext(other);
    expect(() => setTfjsContext(ctx)).toThrow(InvalidArgumentError);
    expect(() => setTfjsContext(ctx)).toThrow(/^context: .*own GPUDevice/);
    expect(tfjsContext().device).toBe(device);
  });
});

/** The reference: tf.layers-style dropout whose mask comes from the CPU reference (applyKeepMask's
 * rule as a tensor of keep ? 1 / (1 - p) : 0), call k on stream k. */
class ReferenceDropout extends tfl.layers.Layer {
  static className = 'ReferenceDropout';
  calls = 0n;
  constructor(
    private readonly p: number,
    private readonly seed: number,
  ) {
    super({});
  }
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (!kwargs.training) return x;
    const keep = referenceKeepMask(x.size, this.p, { seed: this.seed, stream: this.calls++ });
    return tf.mul(x, tf.tensor(applyKeepMask(new Float32Array(x.size).fill(1), keep, this.p, 'f32') as Float32Array, x.shape));
  }
}

/** A small classifier: 4 inputs, 3 classes, dropout between the dense layers. */
function classifier(drop: tfl.layers.Layer): tfl.Sequential {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 16, activation: 'relu', inputShape: [4], kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      drop,
      tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return model;
}

function toyData(): { xs: tf.Tensor; ys: tf.Tensor } {
  const n = 48;
  const x = testData(n * 4, 21);
  const labels = Array.from({ length: n }, (_, i) => (x[4 * i]! + x[4 * i + 1]! > 0 ? 0 : x[4 * i + 2]! > 0 ? 1 : 2));
  return { xs: tf.tensor(x, [n, 4]), ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 3) };
}

describe('WebGPUDropout layer', () => {
  it('is active only in training calls, a new stream each call, with noiseShape', async () => {
    const layer = webgpuDropout({ rate: 0.4, seed: 17, noiseShape: [null, 1] });
    const xs = testData(24, 22);
    const x = tf.tensor(xs, [6, 4]);
    expect(bits(await (layer.apply(x, { training: false }) as tf.Tensor).data())).toEqual(bits(xs));
    expect(bits(await (layer.apply(x) as tf.Tensor).data())).toEqual(bits(xs));
    for (const stream of [0n, 1n]) {
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      expect(bits(await y.data())).toEqual(
        bits(referenceStructuredDropout(xs, { p: 0.4, seed: 17, stream, shape: [6, 4], noiseShape: [6, 1] })),
      );
    }
    expect(layer.generator.stream).toBe(2n);
    expect(() => webgpuDropout({ rate: 1.5 })).toThrow(/^rate: /);
    expect(() => webgpuDropout({ rate: 0.5, seed: -2 })).toThrow(/^seed: /);
  });

  it('inputs of another dtype: InvalidArgumentError naming inputs in training, no stream drawn; inference passes them through as tf.layers.dropout does', async () => {
    const layer = webgpuDropout({ rate: 0.5, seed: 3 });
    const ints = tf.tensor([1, 2, 3, 4], [2, 2], 'int32');
    const passed = layer.apply(ints) as tf.Tensor;
    expect(passed.dtype).toBe('int32');
    expect(Array.from(await passed.data())).toEqual([1, 2, 3, 4]);
    for (const call of [
      () => layer.apply(ints, { training: true }),
      () => layer.apply([ints], { training: true }),
      () => layer.call(ints, { training: true }),
    ]) {
      expect(() => call()).toThrow(expect.objectContaining({ name: 'InvalidArgumentError', argument: 'inputs' }));
    }
    expect(layer.generator.stream).toBe(0n);
    ints.dispose();
  });

  it('trains in tf.sequential like the same model with reference masks; the loss falls', async () => {
    const { xs, ys } = toyData();
    const ours = classifier(webgpuDropout({ rate: 0.25, seed: 99 }));
    const ref = classifier(new ReferenceDropout(0.25, 99));
    ref.setWeights(ours.getWeights());
    const train = (m: tfl.Sequential) => m.fit(xs, ys, { epochs: 12, batchSize: 48, shuffle: false, verbose: 0 });
    const [a, b] = [await train(ours), await train(ref)];
    const [la, lb] = [a.history.loss as number[], b.history.loss as number[]];
    expect(la).toEqual(lb);
    expect(la[la.length - 1]!).toBeLessThan(la[0]! * 0.9);
    const [wa, wb] = [ours.getWeights(), ref.getWeights()];
    for (let i = 0; i < wa.length; i++) expect(bits(await wa[i]!.data())).toEqual(bits(await wb[i]!.data()));
    // MC-Dropout on the trained model: statistics against the reference over the very same samples.
    const kept: tf.Tensor[] = [];
    const forward = (x: tf.Tensor) => {
      const y = ours.apply(x, { training: true }) as tf.Tensor;
      kept.push(tf.keep(tf.clone(y)));
      return y;
    };
    const stats = mcDropout(forward, xs, { samples: 8, task: 'classification' });
    const samples = await Promise.all(kept.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(kept);
    const want = referenceMcStats(samples, 48, 3, 'classification');
    const close = async (t: tf.Tensor | undefined, w: ArrayLike<number> | undefined) => {
      const got = await t!.data();
      expect(got.length).toBe(w!.length);
      got.forEach((v, i) => expect(Math.abs(v - w![i]!)).toBeLessThan(2e-6 + 2e-5 * Math.abs(w![i]!)));
    };
    await close(stats.mean, want.mean);
    await close(stats.variance, want.variance);
    await close(stats.predictiveEntropy, want.predictiveEntropy);
    await close(stats.expectedEntropy, want.expectedEntropy);
    await close(stats.mutualInformation, want.mutualInformation);
    expect(Math.max(...(await stats.mutualInformation!.data()))).toBeGreaterThan(0);
    tf.dispose([xs, ys, ...Object.values(stats)]);
  });

  it('survives a save/load round trip (registered for serialization)', async () => {
    const model = classifier(webgpuDropout({ rate: 0.3, seed: 5, noiseShape: [null, 16] }));
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const layer = loaded.layers[1]!;
    expect(layer).toBeInstanceOf(WebGPUDropout);
    expect((layer as WebGPUDropout).getConfig()).toMatchObject({ rate: 0.3, seed: 5, noiseShape: [null, 16] });
    const x = tf.tensor(testData(8, 23), [2, 4]);
    expect(bits(await (loaded.predict(x) as tf.Tensor).data())).toEqual(bits(await (model.predict(x) as tf.Tensor).data()));
  });
});
