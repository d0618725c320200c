// Unit tests of the benchmark's arithmetic on fake timings (no GPU, no time asserted): what each op
// records and the bytes it counts, the copy reference's size, how GpuTimer sizes, pairs, divides
// and vets its samples, how the peers are timed (tf.dropout flushed and waited for, ours waited
// for, the ratio peer / ours), and the Markdown rows. The clock is a fake one that only the
// fakes advance, so every number below is exact.
import { resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const h = vi.hoisted(() => {
  const state = {
    /** The fake clock, in ms (performance.now). */
    clock: 0,
    /** GPU work submitted and not yet waited for, in ms: onSubmittedWorkDone adds it to the clock. */
    pendingGpu: 0,
    log: [] as string[],
    backend: {
      commandEncoder: null as object | null,
      endComputePassEncoder() {
        state.log.push('tf end pass');
      },
      submitQueue() {
        state.log.push('tf submit');
        if (state.backend.commandEncoder) state.pendingGpu += 4; // tf.dropout's kernels: 4 ms of GPU work
        state.backend.commandEncoder = null;
      },
    },
  };
  return state;
});

vi.mock('../src/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/index.js')>();
  const op = () => vi.fn(async (..._args: unknown[]) => ({}) as never);
  return {
    ...real,
    dropout: op(),
    dropoutBackward: op(),
    randomWords: op(),
    randomUniform: op(),
    randomNormal: op(),
    bernoulliMask: op(),
    spatialDropout: op(),
    dropPathAdd: op(),
    gaussianDropout: op(),
    biasDropoutResidual: op(),
  };
});

vi.mock('../src/reference.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/reference.js')>();
  return {
    ...real,
    referenceDropout: vi.fn((..._args: unknown[]) => {
      h.clock += 2; // the CPU reference: 2 ms per call
      return new Float32Array(0);
    }),
  };
});

vi.mock('@tensorflow/tfjs-core', () => ({
  removeBackend: () => true,
  registerBackend: (_name: string, factory: () => unknown) => {
    factory();
    return true;
  },
  setBackend: async () => true,
  ready: async () => {},
  backend: () => h.backend,
  fill: () => ({ dispose() {} }),
  // tf.dropout records its kernels into the backend's open encoder (0.5 ms of host time) and returns.
  dropout: () => {
    h.clock += 0.5;
    h.backend.commandEncoder ??= {};
    h.log.push('tf.dropout');
    return { dispose: () => h.log.push('tf dispose') };
  },
  randomUniform: () => {
    h.clock += 0.25;
    return { dispose() {} };
  },
  disposeVariables: () => {},
}));
vi.mock('@tensorflow/tfjs-backend-webgpu', () => ({ WebGPUBackend: class {} }));

import type { BenchEnv } from '../bench/env.js';
import { benchOps, copyCell, copyWordsFor, fitsBuffers, largestBufferBytesPerElement, P, SEED } from '../bench/ops.js';
import { parseArgs, UsageError } from '../bench/options.js';
import { openTfPeer, timeAgainstOurs, timeCpuReference } from '../bench/peers.js';
import { type BenchReport, cellResult, formatNs, type OpResult, opTable, toMarkdown } from '../bench/report.js';
import { measureMemory, measureOverhead } from '../bench/sections.js';
import { GpuTimer, pairedRatio, quantile, type Recorder, type Timing, type TimingBudget } from '../bench/timing.js';
import type { DropoutContext } from '../src/index.js';
import * as lib from '../src/index.js';
import { kernels } from '../src/kernels/elementwise.js';
import * as reference from '../src/reference.js';
import type { Runtime } from '../src/runtime/context.js';

beforeEach(() => {
  h.clock = 1000;
  h.pendingGpu = 0;
  h.log.length = 0;
  h.backend.commandEncoder = null;
  vi.clearAllMocks();
  vi.spyOn(performance, 'now').mockImplementation(() => h.clock);
});
afterEach(() => {
  vi.restoreAllMocks();
});

interface FakeBuffer {
  fake: true;
  size: number;
  label?: string;
}

// The bench's own kernel calls go through runtimeOf(ctx).dispatcher; a fake context brings its own.
vi.mock('../src/runtime/context.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/runtime/context.js')>();
  return {
    ...actual,
    runtimeOf: (ctx: DropoutContext) => (ctx as unknown as { fakeRuntime?: Runtime }).fakeRuntime ?? actual.runtimeOf(ctx),
  };
});

/** A DropoutContext that hands out fake buffers of the requested size and records dispatches. */
function fakeCtx() {
  const acquired: FakeBuffer[] = [];
  const dispatch = vi.fn(async (..._args: unknown[]) => {});
  const ctx = {
    acquire: (size: number, label?: string) => {
      const b: FakeBuffer = { fake: true, size, label };
      acquired.push(b);
      return b;
    },
    release: vi.fn(),
    dispatch,
    fakeRuntime: { dispatcher: { dispatch } },
  };
  return { ctx: ctx as unknown as DropoutContext, raw: ctx, acquired };
}

const isBuffer = (v: unknown): v is FakeBuffer => typeof v === 'object' && v !== null && (v as FakeBuffer).fake === true;

/** Every fake buffer a call's arguments name (directly, as an option, or in a dispatch's buffer table). */
function buffersIn(args: unknown[]): FakeBuffer[] {
  const found = new Set<FakeBuffer>();
  const visit = (v: unknown, depth: number) => {
    if (isBuffer(v)) found.add(v);
    else if (depth < 3 && typeof v === 'object' && v !== null && !ArrayBuffer.isView(v))
      for (const w of Object.values(v)) visit(w, depth + 1);
  };
  args.forEach((a) => visit(a, 0));
  return [...found];
}

describe('bench ops: each op times its own library call, on the bytes it counts', () => {
  // Which library function each op must call, and the dtype its elements have.
  const calls: Record<string, keyof typeof lib | 'dispatch'> = {
    'dropout.forward.f32': 'dropout',
    'dropout.backward.f32': 'dropoutBackward',
    'dropout.forward.f16': 'dropout',
    'dropout.backward.f16': 'dropoutBackward',
    'dropout.forward.f16.packed': 'dropout',
    'dropout.backward.f16.packed': 'dropoutBackward',
    'dropout.forward+mask.f32': 'dropout',
    'dropout.backward+mask.f32': 'dropoutBackward',
    'rng.words': 'randomWords',
    'rng.uniform': 'randomUniform',
    'rng.normal': 'randomNormal',
    'rng.bernoulli_packed': 'bernoulliMask',
    'spatial_dropout.f32': 'spatialDropout',
    'drop_path_add.f32': 'dropPathAdd',
    'gaussian_dropout.f32': 'gaussianDropout',
    'bias_dropout_residual.f32': 'biasDropoutResidual',
    'stage.no_rng.f32': 'dispatch',
    'stage.rng_only.f32': 'dispatch',
    'stage.rng_only_rebuilt_lo.f32': 'dispatch',
  };
  const n = 2 ** 14;
  const BIAS_BYTES = 1024 * 4; // the fused op's bias row: read once per row, not counted (ops.ts)

  it('covers every op of the suite', () => {
    expect(benchOps.map((op) => op.id).sort()).toEqual(Object.keys(calls).sort());
  });

  for (const op of benchOps) {
    it(`${op.id}: calls ${calls[op.id]}, its buffers hold bytesPerElement x n bytes, its element count is n`, async () => {
      const { ctx, raw } = fakeCtx();
      const cell = op.setup(ctx, n);
      const encoder = { fakeEncoder: true } as unknown as GPUCommandEncoder;
      await cell.record(encoder);
      const name = calls[op.id]!;
      const fn = (name === 'dispatch' ? raw.dispatch : lib[name]) as unknown as ReturnType<typeof vi.fn>;
      expect(fn).toHaveBeenCalledTimes(1);
      const args = fn.mock.calls[0]!;
      // The library's ops take the context first; a stage is a dispatch on it.
      if (name !== 'dispatch') expect(args[0]).toBe(ctx);
      const options = args.at(-1) as Record<string, unknown>;
      // Recorded into the sample's encoder, as a user records it.
      expect(options.encoder).toBe(encoder);

      // The bytes the op is credited with are the bytes of the buffers its call touches.
      const touched = buffersIn(args).filter((b) => !(op.id.startsWith('bias_dropout_residual') && b.size === BIAS_BYTES));
      const touchedBytes = touched.reduce((s, b) => s + b.size, 0);
      if (op.id.startsWith('stage.rng_only'))
        expect(op.bytesPerElement).toBe(0); // Philox only: its store is a never-taken sentinel branch
      else expect(touchedBytes).toBe(op.bytesPerElement * n);

      // The call runs on n elements of the op's dtype (elements/s divides by n).
      const state = (name === 'dropoutBackward' ? args[2] : undefined) as { count: number; dtype: string } | undefined;
      const shape = options.shape as number[] | undefined;
      const count =
        (options.count as number | undefined) ??
        state?.count ??
        (shape ? shape.reduce((a, b) => a * b, 1) : (args[1] as FakeBuffer).size / 4);
      expect(count).toBe(n);
      const dtype = (options.dtype as string | undefined) ?? state?.dtype ?? 'f32';
      expect(dtype).toBe(op.dtype);
      // No buffer holds more than largestBufferBytesPerElement says (the suite's size cap relies on it).
      for (const b of touched)
        expect(b.size, `${op.id}: a buffer of ${b.size} bytes`).toBeLessThanOrEqual(largestBufferBytesPerElement(op) * n);
      if (op.id.includes('+mask')) expect((options.mask as FakeBuffer).size).toBe(n / 8);
      else expect(options.mask).toBeUndefined();
      cell.dispose();
      expect(raw.release).toHaveBeenCalled();
    });
  }
});

describe('the copy reference moves the same bytes as the op', () => {
  it('copyWordsFor: a copy moves 8 bytes per word (4 read + 4 written), in whole vec4s', () => {
    expect(copyWordsFor(8 * 1024)).toBe(1024);
    expect(copyWordsFor(8.125 * 1024)).toBe(1040);
    expect(copyWordsFor(1024 / 8)).toBe(16);
    expect(copyWordsFor(1)).toBe(4);
    for (const op of benchOps.filter((o) => o.bytesPerElement > 0))
      for (const log2 of [10, 15, 20, 26])
        expect(copyWordsFor(op.bytesPerElement * 2 ** log2) * 8, `${op.id} 2^${log2}`).toBe(op.bytesPerElement * 2 ** log2);
  });

  it("largestBufferBytesPerElement: 4 (one f32), or half the op's bytes for its copy buffers when larger", () => {
    const byId = (id: string) => benchOps.find((op) => op.id === id)!;
    expect(largestBufferBytesPerElement(byId('dropout.forward.f32'))).toBe(4);
    expect(largestBufferBytesPerElement(byId('rng.bernoulli_packed'))).toBe(4);
    expect(largestBufferBytesPerElement(byId('drop_path_add.f32'))).toBe(6);
    expect(Math.max(...benchOps.map(largestBufferBytesPerElement))).toBe(6);
    // The copy reference's buffers, for every op and size, within that bound.
    for (const op of benchOps.filter((o) => o.bytesPerElement > 0))
      for (const log2 of [10, 20, 26])
        expect(copyWordsFor(op.bytesPerElement * 2 ** log2) * 4, op.id).toBeLessThanOrEqual(largestBufferBytesPerElement(op) * 2 ** log2);
  });

  it('fitsBuffers: with maxBufferSize 2^30 the f32 forward runs 2^28, the 12-byte ops (6-byte copy buffers) stop at 2^27', () => {
    const op = (id: string) => benchOps.find((o) => o.id === id)!;
    expect(fitsBuffers(op('dropout.forward.f32'), 28, 2 ** 30)).toBe(true);
    expect(fitsBuffers(op('dropout.forward.f32'), 29, 2 ** 30)).toBe(false);
    expect(fitsBuffers(op('drop_path_add.f32'), 27, 2 ** 30)).toBe(true);
    expect(fitsBuffers(op('drop_path_add.f32'), 28, 2 ** 30)).toBe(false);
    expect(fitsBuffers(op('bias_dropout_residual.f32'), 28, 2 ** 30)).toBe(false);
  });

  it('copyCell copies all of its words from one buffer into the other', async () => {
    const { ctx, raw, acquired } = fakeCtx();
    const cell = copyCell(ctx, 1040);
    const encoder = {} as GPUCommandEncoder;
    await cell.record(encoder);
    expect(acquired.map((b) => b.size)).toEqual([1040 * 4, 1040 * 4]);
    const call = raw.dispatch.mock.calls[0]![0] as {
      kernel: unknown;
      count: number;
      buffers: Record<string, { buffer: unknown }>;
      encoder: unknown;
    };
    expect(call.kernel).toBe(kernels.copy);
    expect(call.count).toBe(1040);
    expect(call.encoder).toBe(encoder);
    expect(new Set([call.buffers.src!.buffer, call.buffers.dst!.buffer])).toEqual(new Set(acquired));
  });
});

/**
 * A GPUDevice whose queue "runs" the recorded calls on the fake clock: each recorder adds its
 * wall and GPU time per call; the timestamps read back are the GPU time of the submit, unless
 * `gpuOf` overrides it (sample index of that recorder, total wall ns of the submit).
 */
function fakeDevice(timestamps: boolean) {
  const submits: string[] = [];
  let lastGpuNs = 0;
  const gpuOverride: { fn?: (name: string, index: number, wallNs: number) => number | undefined } = {};
  /** Overrides a submit's wall time (and, unless gpuOverride says otherwise, its GPU time with it). */
  const wallOverride: { fn?: (name: string, index: number) => number | undefined } = {};
  const samplesOf = new Map<string, number>();
  let pending: { work: { name: string; wallNs: number; gpuNs: number }[] } | null = null;
  const device = {
    features: new Set(timestamps ? ['timestamp-query'] : []),
    createQuerySet: () => ({ destroy() {} }),
    createBuffer: () => ({
      mapAsync: async () => {},
      // A real timestamp counter does not start at 0.
      getMappedRange: () => new BigUint64Array([5_000_000_000n, 5_000_000_000n + BigInt(Math.round(lastGpuNs))]).buffer,
      unmap() {},
      destroy() {},
    }),
    createCommandEncoder: () => {
      const enc = {
        work: [] as { name: string; wallNs: number; gpuNs: number }[],
        beginComputePass: () => ({ end() {} }),
        resolveQuerySet() {},
        copyBufferToBuffer() {},
        finish: () => enc,
      };
      return enc;
    },
    queue: {
      submit: ([cmd]: [{ work: { name: string; wallNs: number; gpuNs: number }[] }]) => {
        pending = cmd;
        submits.push(`${cmd.work[0]?.name}x${cmd.work.length}`);
      },
      onSubmittedWorkDone: async () => {
        const work = pending!.work;
        const name = work[0]!.name;
        const index = samplesOf.get(name) ?? 0;
        samplesOf.set(name, index + 1);
        const slowWallNs = wallOverride.fn?.(name, index);
        const wallNs = slowWallNs ?? work.reduce((s, w) => s + w.wallNs, 0);
        lastGpuNs = gpuOverride.fn?.(name, index, wallNs) ?? slowWallNs ?? work.reduce((s, w) => s + w.gpuNs, 0);
        h.clock += wallNs / 1e6;
        pending = null;
      },
    },
  };
  const recorder =
    (name: string, wallNs: number, gpuNs: number): Recorder =>
    (encoder) => {
      (encoder as unknown as { work: unknown[] }).work.push({ name, wallNs, gpuNs });
    };
  return { device: device as unknown as GPUDevice, submits, recorder, gpuOverride, wallOverride };
}

describe('GpuTimer on a fake device and clock', () => {
  beforeEach(() => {
    vi.stubGlobal('GPUBufferUsage', { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, QUERY_RESOLVE: 512 });
    vi.stubGlobal('GPUMapMode', { READ: 1 });
  });
  afterEach(() => vi.unstubAllGlobals());
  const budget: TimingBudget = { budgetMs: 10, sampleMs: 1, minSamples: 3, maxSamples: 15, maxReps: 256 };

  it('per-call times: timestamps / reps, wall / reps, calls sized by the calibration, op and copy interleaved round by round', async () => {
    const fake = fakeDevice(true);
    const timer = new GpuTimer(fake.device);
    // op: 10 us of GPU time and 12 us of wall time per call; copy: 5 and 6.
    const [t, c] = (await timer.measureTogether([fake.recorder('op', 12_000, 10_000), fake.recorder('copy', 6_000, 5_000)], budget)) as [
      Timing,
      Timing,
    ];
    // 1 ms samples: 100 calls of the op, 200 of the copy; 10 ms of budget / 2 ms per round = 5 rounds.
    expect([t.reps, c.reps, t.samples, c.samples]).toEqual([100, 200, 5, 5]);
    expect(t.method).toBe('timestamp');
    expect(t.ns).toBe(10_000);
    expect(t.series).toEqual([10_000, 10_000, 10_000, 10_000, 10_000]);
    expect(t.wallNs).toBeCloseTo(12_000, 6);
    expect(t.wallSeries).toHaveLength(5);
    expect(c.ns).toBe(5_000);
    expect(c.wallNs).toBeCloseTo(6_000, 6);
    expect(t.rejected).toBeUndefined();
    // Warm-up + 3 calibration submits of one call each, then one sample of each per round.
    expect(fake.submits).toEqual([
      'opx1',
      'opx1',
      'opx1',
      'opx1',
      'copyx1',
      'copyx1',
      'copyx1',
      'copyx1',
      ...Array(5).fill(['opx100', 'copyx200']).flat(),
    ]);
    expect(pairedRatio(c, t).ratio).toBe(0.5);
  });

  it('calls under a millisecond get at least 8 per sample', async () => {
    const fake = fakeDevice(true);
    const [t] = await new GpuTimer(fake.device).measureTogether([fake.recorder('op', 300_000, 250_000)], budget);
    // 1 ms / 250 us would be 4 calls per sample.
    expect(t!.reps).toBe(8);
    expect(t!.ns).toBe(250_000);
  });

  it('calls are sized by the fastest calibration sample: two slow ones of three do not shrink the samples', async () => {
    const fake = fakeDevice(true);
    // Calibration samples are indices 1-3 (0 is the warm-up); 1 and 2 take 1.5 ms, as on a loaded CPU adapter.
    fake.wallOverride.fn = (_name, index) => (index === 1 || index === 2 ? 1_500_000 : undefined);
    const [t] = await new GpuTimer(fake.device).measureTogether([fake.recorder('op', 60_000, 50_000)], budget);
    expect(t!.reps).toBe(20); // 1 ms / 50 us
    expect(t!.ns).toBe(50_000);
  });

  it('one timestamp sample above its wall time (beyond 5% + 50 us) makes the whole cell use wall time, and says so', async () => {
    const fake = fakeDevice(true);
    // The op's 3rd timed sample (index 6: after the warm-up and 3 calibration samples) reads 1.2 x its wall time.
    fake.gpuOverride.fn = (name, index, wallNs) => (name === 'op' && index === 6 ? wallNs * 1.2 : undefined);
    const [t, c] = (await new GpuTimer(fake.device).measureTogether(
      [fake.recorder('op', 12_000, 10_000), fake.recorder('copy', 6_000, 5_000)],
      budget,
    )) as [Timing, Timing];
    expect(t.method).toBe('wall');
    expect(t.rejected).toBe('1/5 timestamp samples outside (0, wall]');
    expect(t.ns).toBe(t.wallNs);
    expect(t.ns).toBeCloseTo(12_000, 6);
    expect(t.series).toEqual(t.wallSeries);
    // The copy's samples were all sane: it keeps its timestamps, and the pair is compared by wall time.
    expect(c.method).toBe('timestamp');
    expect(cellResult(10, 8 * 1024, t, c).copy?.method).toBe('timestamp');
    expect(pairedRatio(c, t).ratio).toBeCloseTo(0.5, 9);
  });

  it('the sanity rule: (0, wall x 1.05 + 50 us] is sane, 0 is not', async () => {
    for (const [gpu, method] of [
      [(w: number) => w * 1.04, 'timestamp'], // inside the 5% slack
      [(w: number) => w * 1.05 + 5e4 - 10, 'timestamp'], // at the edge
      [(w: number) => w * 1.05 + 6e4, 'wall'],
      [() => 0, 'wall'],
    ] as const) {
      const fake = fakeDevice(true);
      fake.gpuOverride.fn = (_name, index, wallNs) => (index === 5 ? gpu(wallNs) : undefined);
      const [t] = await new GpuTimer(fake.device).measureTogether([fake.recorder('op', 12_000, 10_000)], budget);
      expect(t!.method, gpu.toString()).toBe(method);
    }
  });

  it('without timestamp-query: wall time, and no rejection note', async () => {
    const fake = fakeDevice(false);
    const [t] = await new GpuTimer(fake.device).measureTogether([fake.recorder('op', 12_000, 10_000)], budget);
    expect(t!.method).toBe('wall');
    expect(t!.rejected).toBeUndefined();
    expect(t!.ns).toBeCloseTo(12_000, 6);
    expect(t!.reps).toBe(83); // 1 ms / 12 us
  });
});

describe('pairedRatio and cellResult with mixed methods', () => {
  const timing = (method: Timing['method'], series: number[], wallSeries = series): Timing => ({
    ns: quantile(series, 0.5),
    method,
    wallNs: quantile(wallSeries, 0.5),
    reps: 1,
    samples: series.length,
    series,
    wallSeries,
  });

  it('a timestamp copy against a wall op is paired by the wall times of both', () => {
    const copy = timing('timestamp', [1, 1, 1], [20, 20, 20]);
    const op = timing('wall', [10, 10, 10]);
    expect(pairedRatio(copy, op).ratio).toBe(2);
  });

  it("copyNs is the copy's median in its own method; copy.method is the copy's", () => {
    const op = timing('timestamp', [4000, 4000, 4000], [9000, 9000, 9000]);
    const copy = timing('wall', [1000, 2000, 3000]);
    const tsCopy = timing('timestamp', [1000, 2000, 3000], [5000, 5000, 5000]);
    expect(cellResult(10, 8 * 1024, op, tsCopy).copyNs).toBe(2000);
    const cell = cellResult(10, 8 * 1024, op, copy);
    expect(cell.copy).toEqual({ method: 'wall', reps: 1, samples: 3 });
    expect(opTable({ id: 'x', label: 'x', kind: 'op', dtype: 'f32', bytesPerElement: 8, cells: [cell] })).toContain(
      'timestamp (3×1); copy wall, paired by wall time',
    );
  });
});

describe('peers on fake clocks', () => {
  const env = () => {
    const { ctx, acquired } = fakeCtx();
    const device = {
      queue: {
        onSubmittedWorkDone: async () => {
          h.clock += h.pendingGpu;
          h.pendingGpu = 0;
        },
      },
    };
    // Ours: 0.1 ms to record and submit, 0.9 ms on the GPU.
    vi.mocked(lib.dropout).mockImplementation(async () => {
      h.clock += 0.1;
      h.pendingGpu += 0.9;
      return {} as never;
    });
    return { env: { ctx, device, gpu: {}, adapter: { info: {} } } as unknown as BenchEnv, acquired };
  };

  it('timeAgainstOurs: ratio = peer time / our time per round (median, quartiles), ours waited for on the GPU', async () => {
    const { env: e, acquired } = env();
    const peerMs = [3, 6, 9, 6];
    let call = 0;
    const t = await timeAgainstOurs(
      e,
      4096,
      async () => {
        h.clock += peerMs[call++ % peerMs.length]!;
      },
      0,
      4,
      4,
    );
    expect(vi.mocked(lib.dropout).mock.calls[0]![2]).toMatchObject({ p: P, seed: SEED, count: 4096 });
    expect(acquired.map((b) => b.size)).toEqual([4096 * 4, 4096 * 4]);
    // One warm-up call each, then 4 rounds: the peer's 3, 6, 9, 6 ms against our 1 ms.
    expect(t.peer.calls).toBe(4);
    expect(t.peer.ns).toBeCloseTo(6e6, 3);
    expect(t.ours.ns).toBeCloseTo(1e6, 3);
    expect(t.ratio).toBeCloseTo(6, 9);
    expect(t.ratioRange[0]).toBeCloseTo(5.25, 9);
    expect(t.ratioRange[1]).toBeCloseTo(6.75, 9);
  });

  it('tf.dropout: its open encoder is flushed and the GPU waited for before the clock stops', async () => {
    const { env: e } = env();
    const tf = await openTfPeer(e);
    const t = await tf.time(4096, 0, 3);
    // 0.5 ms to record tf.dropout + 4 ms of its GPU work, against our 1 ms.
    expect(t.peer.ns).toBeCloseTo(4.5e6, 3);
    expect(t.ours.ns).toBeCloseTo(1e6, 3);
    expect(t.ratio).toBeCloseTo(4.5, 9);
    const round = h.log.slice(h.log.lastIndexOf('tf.dropout'));
    expect(round).toEqual(['tf.dropout', 'tf end pass', 'tf submit', 'tf dispose']);
    tf.dispose();
  });

  it('the CPU reference: n elements of the same dropout, in rounds with ours', async () => {
    const { env: e } = env();
    const t = await timeCpuReference(e, 4096, 0);
    const [x, opts] = vi.mocked(reference.referenceDropout).mock.calls[0]!;
    expect((x as Float32Array).length).toBe(4096);
    expect(opts).toMatchObject({ p: P, seed: SEED });
    expect(vi.mocked(lib.dropout).mock.calls[0]![2]).toMatchObject({ count: 4096 });
    expect(t.ratio).toBeCloseTo(2, 9);
  });
});

describe('Markdown rows from fixed numbers', () => {
  const op: OpResult = {
    id: 'dropout.forward.f32',
    label: 'dropout forward f32',
    kind: 'op',
    dtype: 'f32',
    bytesPerElement: 8,
    cells: [
      {
        log2: 10,
        n: 1024,
        ns: 4000,
        method: 'timestamp',
        wallNs: 5000,
        reps: 7,
        samples: 3,
        elementsPerSec: 256e6,
        gbPerSec: 2.048,
        copyNs: 2000,
        ofCopy: 0.5,
        ofCopyRange: [0.4, 0.6],
        copy: { method: 'timestamp', reps: 9, samples: 3 },
      },
    ],
    failures: [{ log2: 15, message: 'boom' }],
  };
  const report: BenchReport = {
    schema: 1,
    date: 'D',
    commit: 'C',
    node: 'v20',
    adapter: { name: 'A', slug: 'a', icd: 'I', features: [], limits: {} },
    timing: { timestampQuery: true, description: 'T' },
    options: { quick: false, sizesLog2: [10, 15], p: 0.5, cellBudgetMs: 300, peers: { tf: true, cpu: false }, subset: true },
    skipped: [],
    failures: ['dropout.forward.f32 at 2^15: boom'],
    ops: [op],
    peers: [
      {
        peer: 'tf.dropout (tfjs-backend-webgpu)',
        log2: 16,
        n: 65536,
        ns: 3e6,
        calls: 20,
        oursNs: 1e6,
        ratio: 3,
        ratioRange: [2.5, 3.5],
        note: 'N',
      },
    ],
    peerErrors: [],
    memory: { rows: [{ what: 'ours', bytesPerElement: 0.125, source: 'measured', note: 'M' }], poolPeakBytes: 2 ** 20, poolPeakNote: 'P' },
    overhead: [{ what: 'host', ns: 2.5e6, note: 'O' }],
    stages: [],
    targets: [],
    elapsedSec: 1,
  };

  it('op table: median, elements/s, GB/s, of copy (low-high), samples x calls; failed cells', () => {
    expect(opTable(op).split('\n')).toEqual([
      '| elements | median | elements/s | GB/s | of copy | timing |',
      '| --- | --- | --- | --- | --- | --- |',
      '| 2^10 | 4.00 µs | 256 M | 2.05 | 50% (40-60%) | timestamp (3×7) |',
      '| 2^15 | **failed**: boom |  |  |  |  |',
    ]);
  });

  it('report: peers row (peer median, ours median, peer / ours), failures and subset in the header', () => {
    const md = toMarkdown(report);
    expect(md).toContain('| tf.dropout (tfjs-backend-webgpu) | 2^16 | 3.00 ms | 1.00 ms | 3.0× (2.5-3.5) | 20 | N |');
    expect(md).toContain('- **failures** (the run exited non-zero): dropout.forward.f32 at 2^15: boom');
    expect(md).toContain('- **subset run**: all ops; peers left out: cpu;');
    expect(md).toContain('| ours | 0.125 | measured | M |');
    expect(md).toContain('| host | 2.50 ms | O |');
  });

  it('formatNs units', () => {
    expect([999, 1500, 12_345, 2.01e6, 12.34e6, 1.5e9].map(formatNs)).toEqual([
      '999 ns',
      '1.50 µs',
      '12.3 µs',
      '2.01 ms',
      '12.3 ms',
      '1.50 s',
    ]);
  });
});

describe('the command line (bench/options.ts)', () => {
  it('defaults: full run 2^10..2^26 in steps of 2, 300 ms per cell, both peers; quick 2^10..2^20 in steps of 5, 60 ms', () => {
    // A user's run goes to a git-ignored folder; only --write-reference writes the committed results.
    expect(parseArgs([])).toEqual({
      quick: false,
      out: resolve('bench/results/local'),
      writeReference: false,
      name: undefined,
      min: 10,
      max: 26,
      step: 2,
      budgetMs: 300,
      ops: undefined,
      tf: true,
      cpu: true,
      subset: false,
    });
    expect(parseArgs(['--write-reference', '--budget', '400'])).toMatchObject({
      out: resolve('bench/results'),
      writeReference: true,
      budgetMs: 400,
      subset: false,
      quick: false,
    });
    expect(parseArgs(['--', '--quick'])).toMatchObject({ quick: true, min: 10, max: 20, step: 5, budgetMs: 60, subset: false });
    expect(parseArgs(['--out', 'x', '--name', 'n', '--budget', '20', '--ops', 'rng.,dropout.forward'])).toMatchObject({
      out: resolve('x'),
      name: 'n',
      budgetMs: 20,
      ops: ['rng.', 'dropout.forward'],
    });
  });

  it('a run that leaves ops, sizes or a peer out is a subset; --budget (precision) and --quick are not', () => {
    for (const args of [['--ops', 'rng.'], ['--min', '12'], ['--max', '24'], ['--step', '1'], ['--no-tf'], ['--no-cpu']])
      expect(parseArgs(args).subset, args.join(' ')).toBe(true);
    for (const args of [[], ['--budget', '50'], ['--quick'], ['--out', 'x', '--name', 'y']])
      expect(parseArgs(args).subset, args.join(' ')).toBe(false);
    expect(parseArgs(['--no-tf'])).toMatchObject({ tf: false, cpu: true });
    expect(parseArgs(['--no-cpu'])).toMatchObject({ tf: true, cpu: false });
  });

  it('bad command lines are UsageErrors that say what is wrong', () => {
    for (const [args, reason] of [
      [['--min', '12', '--max', '11'], /^--min 12 is above --max 11/],
      [['--min', '27'], /^--min 27 is above --max 26/],
      [['--quick', '--min', '21'], /^--min 21 is above --max 20/],
      [['--min', '9'], /^--min: sizes start at 2\^10/],
      [['--step', '0'], /^--step: expected at least 1/],
      [['--max', '2.5'], /^--max: expected a whole number, got 2\.5/],
      [['--budget'], /^--budget needs a value/],
      [['--out', '--quick'], /^--out needs a value/],
      [['--ops', 'nosuch'], /^--ops: no op id starts with nosuch; the ops are dropout\.forward\.f32/],
      [['--fast'], /^unknown option --fast/],
      [['quick'], /^unexpected argument "quick"/],
      [
        ['--write-reference', '--quick'],
        /^--write-reference refreshes the committed full-run results in bench\/results\/ and takes no --quick$/,
      ],
      [['--write-reference', '--out', 'x', '--ops', 'rng.', '--no-tf'], /and takes no --out, --ops, --no-tf$/],
    ] as const) {
      expect(() => parseArgs([...args]), args.join(' ')).toThrow(UsageError);
      expect(() => parseArgs([...args]), args.join(' ')).toThrow(reason);
    }
  });
});

describe('the memory and overhead sections (bench/sections.ts) on a fake context and clock', () => {
  /** A context whose pool counts the bytes it allocated (released buffers stay pooled) and their peak. */
  function pooledCtx() {
    const pool = { bytes: 0, peakBytes: 0 };
    const fake = fakeCtx();
    const acquire = fake.raw.acquire;
    const raw = Object.assign(fake.raw, {
      pool,
      submitted: vi.fn(),
      acquire: (size: number, label?: string) => {
        pool.bytes += size;
        pool.peakBytes = Math.max(pool.peakBytes, pool.bytes);
        return acquire(size, label);
      },
    });
    return { ...fake, raw, pool };
  }
  const fakeQueueDevice = (gpuMs: number) =>
    ({
      createCommandEncoder: () => ({ finish: () => ({}) }),
      queue: {
        submit: vi.fn(),
        onSubmittedWorkDone: async () => {
          h.clock += gpuMs;
        },
      },
    }) as unknown as GPUDevice;

  it('memory: bytes kept per element beyond the output (0; 1/8 with the bit mask) and the pool peak of forward + backward (8), whatever the run peaked at before', async () => {
    const { ctx, raw, pool } = pooledCtx();
    vi.mocked(lib.dropout).mockImplementation((async (_ctx: unknown, _x: unknown, o: { count: number; mask?: boolean }) => ({
      output: raw.acquire(o.count * 4),
      ...(o.mask ? { mask: raw.acquire(o.count / 8) } : {}),
      state: { count: o.count },
    })) as never);
    vi.mocked(lib.dropoutBackward).mockImplementation((async (_ctx: unknown, _dy: unknown, state: { count: number }) =>
      raw.acquire(state.count * 4)) as never);
    // Earlier cells took the pool far higher than this section will (a full run's 2^26 cells).
    pool.peakBytes = 1e12;
    const rows = await measureMemory({ ctx, device: fakeQueueDevice(1) } as unknown as BenchEnv, 4096);
    expect(rows.slice(0, 3).map((r) => [r.what, r.bytesPerElement])).toEqual([
      ['ours: dropout, backward regenerates the mask', 0],
      ['ours: dropout with mask: true (bit mask)', 0.125],
      ['ours: pool peak over forward + backward', 8],
    ]);
    expect(pool.peakBytes, "the run's peak is kept for the report").toBe(1e12);
    expect(raw.release).toHaveBeenCalledTimes(2 + 3 + 3); // (y, x), (y, mask, x), (dx, y, x)
  });

  it('overhead: host time per call for recording and issuing, wall time per call batched and one per submit', async () => {
    const { ctx, raw } = pooledCtx();
    // One dropout call: 10 us of host time; the GPU queue: 0.5 ms until idle.
    vi.mocked(lib.dropout).mockImplementation((async () => {
      h.clock += 0.01;
      return {};
    }) as never);
    const rows = await measureOverhead({ ctx, device: fakeQueueDevice(0.5) } as unknown as BenchEnv, 10, 3, undefined);
    expect(rows.map((r) => r.what)).toEqual([
      'host: record one dropout into a caller encoder',
      'host: issue one dropout into the context batch',
      'wall: one dropout of many sharing one submit',
      'wall: one dropout per submit, waited for',
    ]);
    const [record, issue, batched, single] = rows.map((r) => r.ns) as [number, number, number, number];
    expect(record).toBeCloseTo(10_000, 3); // 10 calls of 10 us, / 10
    expect(issue).toBeCloseTo(10_000, 3);
    expect(batched).toBeCloseTo(60_000, 3); // (10 x 10 us + 0.5 ms) / 10
    expect(single).toBeCloseTo(510_000, 3); // 10 us + 0.5 ms, each
    // Each recording round's encoder is handed back to the context once submitted; x and out go back to the pool.
    expect(raw.submitted).toHaveBeenCalledTimes(4);
    expect(raw.release).toHaveBeenCalledTimes(2);
  });
});
