// The ops the suite times, one small record each: what it moves per element (for GB/s and the
// copy reference), how to set it up at n elements, and how to record one call into an encoder.
// Adding an op = adding one entry to `benchOps`.

import benchStagesSource from '../shaders/bench_stages.wgsl?raw';
import {
  bernoulliMask,
  biasDropoutResidual,
  type DropoutContext,
  type DropoutState,
  type Dtype,
  dropout,
  dropoutBackward,
  dropPathAdd,
  gaussianDropout,
  randomNormal,
  randomUniform,
  randomWords,
  spatialDropout,
} from '../src/index.js';
import { type KernelRecord, kernels } from '../src/kernels/elementwise.js';
import { read, write } from '../src/kernels/record.js';
import { registerShader } from '../src/kernels/shaders.js';
import { runtimeOf } from '../src/runtime/context.js';
import { dtypeBytes } from '../src/runtime/units.js';
import type { Recorder } from './timing.js';

export const P = 0.5;
export const SEED = 0x5eedn;

export interface BenchCell {
  record: Recorder;
  dispose(): void;
}

export interface BenchOp {
  id: string;
  label: string;
  /** 'op' rows are the library's ops; 'stage' rows are diagnostic variants that leave a stage out. */
  kind: 'op' | 'stage';
  dtype: Dtype;
  /** Bytes read plus bytes written per element; the copy reference moves the same bytes. */
  bytesPerElement: number;
  /** 'packed': the f16 data take the packed path (u32 words) even where the adapter has
   * shader-f16, so it can be timed next to the native path (the suite runs the op on a context
   * created with f16Path: 'packed'). Unset: the context's own path. */
  f16Path?: 'packed';
  setup(ctx: DropoutContext, n: number): BenchCell;
}

/** Pooled buffers for one cell, given back together (acquire rounds each up to whole words). */
function buffers(ctx: DropoutContext, ...bytes: number[]): { list: GPUBuffer[]; dispose(): void } {
  const list = bytes.map((b) => ctx.acquire(b, 'bench'));
  return { list, dispose: () => list.forEach((b) => ctx.release(b)) };
}

function forwardState(n: number, dtype: Dtype): DropoutState {
  return { seed: SEED, stream: 1n, offset: 0n, p: P, count: n, dtype, training: true };
}

/** An f16 op's row on the packed path (see BenchOp.f16Path). */
function packedF16(op: BenchOp): BenchOp {
  return { ...op, id: `${op.id}.packed`, label: `${op.label}, packed path (u32 words)`, f16Path: 'packed' };
}

function dropoutForward(dtype: Dtype, withMask: boolean): BenchOp {
  return {
    id: `dropout.forward${withMask ? '+mask' : ''}.${dtype}`,
    label: `dropout forward ${dtype}${withMask ? ' + bit mask' : ''}`,
    kind: 'op',
    dtype,
    bytesPerElement: 2 * dtypeBytes(dtype) + (withMask ? 1 / 8 : 0),
    setup(ctx, n) {
      const b = buffers(ctx, n * dtypeBytes(dtype), n * dtypeBytes(dtype), withMask ? n / 8 : 0);
      const [x, out, mask] = b.list as [GPUBuffer, GPUBuffer, GPUBuffer];
      return {
        record: (encoder) =>
          dropout(ctx, x, { p: P, seed: SEED, stream: 1n, dtype, count: n, out, encoder, ...(withMask ? { mask } : {}) }).then(
            () => undefined,
          ),
        dispose: b.dispose,
      };
    },
  };
}

function dropoutBack(dtype: Dtype, fromMask: boolean): BenchOp {
  return {
    id: `dropout.backward${fromMask ? '+mask' : ''}.${dtype}`,
    label: `dropout backward ${dtype}${fromMask ? ' from bit mask' : ''}`,
    kind: 'op',
    dtype,
    bytesPerElement: 2 * dtypeBytes(dtype) + (fromMask ? 1 / 8 : 0),
    setup(ctx, n) {
      const b = buffers(ctx, n * dtypeBytes(dtype), n * dtypeBytes(dtype), fromMask ? n / 8 : 0);
      const [dy, out, mask] = b.list as [GPUBuffer, GPUBuffer, GPUBuffer];
      const state = forwardState(n, dtype);
      return {
        record: (encoder) => dropoutBackward(ctx, dy, state, { out, encoder, ...(fromMask ? { mask } : {}) }).then(() => undefined),
        dispose: b.dispose,
      };
    },
  };
}

type RandomFn = typeof randomWords;

function rng(id: string, label: string, fn: RandomFn): BenchOp {
  return {
    id,
    label,
    kind: 'op',
    dtype: 'f32',
    bytesPerElement: 4,
    setup(ctx, n) {
      const b = buffers(ctx, n * 4);
      const out = b.list[0]!;
      return { record: (encoder) => fn(ctx, { count: n, seed: SEED, stream: 2n, out, encoder }).then(() => undefined), dispose: b.dispose };
    },
  };
}

const bernoulliPacked: BenchOp = {
  id: 'rng.bernoulli_packed',
  label: 'RNG Bernoulli mask, packed bits',
  kind: 'op',
  dtype: 'f32',
  bytesPerElement: 1 / 8,
  setup(ctx, n) {
    const b = buffers(ctx, n / 8);
    const out = b.list[0]!;
    return {
      record: (encoder) => bernoulliMask(ctx, { count: n, p: P, packed: true, seed: SEED, stream: 3n, out, encoder }).then(() => undefined),
      dispose: b.dispose,
    };
  },
};

// Structured and fused variants (src/ops/), f32, shapes built around n elements.
const SAMPLES = 8; // batch of DropPath; channels of bias-dropout-residual below
const ROW = 1024;

type Structured = (ctx: DropoutContext, n: number, b: GPUBuffer[], encoder: GPUCommandEncoder) => Promise<unknown>;

function structuredOp(id: string, label: string, inputs: number, run: Structured): BenchOp {
  return {
    id,
    label,
    kind: 'op',
    dtype: 'f32',
    bytesPerElement: 4 * (inputs + 1),
    setup(ctx, n) {
      const b = buffers(ctx, ...Array.from({ length: inputs + 1 }, () => n * 4), ROW * 4);
      return { record: (encoder) => run(ctx, n, b.list, encoder).then(() => undefined), dispose: b.dispose };
    },
  };
}

const random = { p: P, seed: SEED, stream: 4n } as const;
const variantOps: BenchOp[] = [
  // SpatialDropout2D channels-first (N, C, 16, 16): one decision per (sample, channel).
  structuredOp('spatial_dropout.f32', 'spatial dropout 2D f32 (N, C, 16, 16)', 1, (ctx, n, [x, out], encoder) =>
    spatialDropout(ctx, x!, { ...random, shape: [4, n / 1024, 16, 16], layout: 'channels-first', out, encoder }),
  ),
  // out = residual + drop_path(branch), one decision per sample.
  structuredOp(
    'drop_path_add.f32',
    'drop-path residual f32 (out = residual + drop_path(branch))',
    2,
    (ctx, n, [branch, residual, out], encoder) =>
      dropPathAdd(ctx, residual!, branch!, { ...random, shape: [SAMPLES, n / SAMPLES], out, encoder }),
  ),
  structuredOp('gaussian_dropout.f32', 'Gaussian dropout f32', 1, (ctx, _n, [x, out], encoder) =>
    gaussianDropout(ctx, x!, { ...random, out, encoder }),
  ),
  // out = residual + dropout(x + bias), rows of 1024 channels (the bias is 4 KiB, not counted).
  structuredOp(
    'bias_dropout_residual.f32',
    'fused bias + dropout + residual f32 (rows of 1024)',
    2,
    (ctx, n, [x, residual, out, bias], encoder) =>
      biasDropoutResidual(ctx, x!, bias!, residual!, { ...random, shape: [n / ROW, ROW], out, encoder }),
  ),
];

/** shaders/bench_stages.wgsl: not among the library's shader files, so registered here. */
const benchStages = registerShader('benchStages', benchStagesSource);

/** The dropout forward with one stage left out (shaders/bench_stages.wgsl). */
function stage(entry: 'stage_no_rng' | 'stage_rng_only' | 'stage_rng_only_rebuilt_lo', label: string): BenchOp {
  const noRng = entry === 'stage_no_rng';
  // The grid-stride body of shaders/grid.wgsl over the stage's section; no tail (whole vec4 groups).
  const kernel: KernelRecord = {
    name: `bench.${entry}`,
    shader: ['philox', 'elementwise', 'data', 'input', 'dropout', benchStages, 'grid'],
    section: entry,
    entry: 'body',
    dispatch: 'grid',
    mask: noRng ? 'none' : 'elementwise',
    bindings: noRng ? { x: read(1), out: write(2) } : { out: write(2) },
    uniforms: noRng ? {} : { sentinel: 'u32' },
  };
  return {
    id: `stage.${entry.slice(6)}.f32`,
    label,
    kind: 'stage',
    dtype: 'f32',
    bytesPerElement: noRng ? 8 : 0,
    setup(ctx, n) {
      const b = buffers(ctx, n * 4, n * 4);
      const [x, y] = b.list as [GPUBuffer, GPUBuffer];
      const io = { x: { buffer: x, argument: 'x' }, out: { buffer: y, argument: 'out' } };
      return {
        record: (encoder) =>
          runtimeOf(ctx).dispatcher.dispatch({
            kernel,
            count: n,
            buffers: noRng ? io : { out: io.out },
            rand: { seed: SEED, stream: 1n, offset: 0n },
            threshold: 2 ** 31,
            scale: 2,
            uniforms: { sentinel: 0x2545f491 }, // the rng-only store's sentinel
            encoder,
          }),
        dispose: b.dispose,
      };
    },
  };
}

/** The roofline reference: kernels.copy over `words` u32 words (a multiple of 4). */
export function copyCell(ctx: DropoutContext, words: number): BenchCell {
  const b = buffers(ctx, words * 4, words * 4);
  const [src, dst] = b.list as [GPUBuffer, GPUBuffer];
  return {
    record: (encoder) =>
      runtimeOf(ctx).dispatcher.dispatch({
        kernel: kernels.copy,
        count: words,
        buffers: { src: { buffer: src, argument: 'src' }, dst: { buffer: dst, argument: 'dst' } },
        encoder,
      }),
    dispose: b.dispose,
  };
}

/** Words a copy must move to match `bytes` bytes read + written (a copy moves 8 bytes per word). */
export function copyWordsFor(bytes: number): number {
  return Math.max(4, Math.round(bytes / 8 / 4) * 4);
}

/**
 * The largest buffer a cell of the op allocates, in bytes per element: the op's own buffers hold
 * at most one f32 per element; its copy reference's two buffers hold half the op's bytes each (6
 * for the 12-byte ops). An op runs the sizes at which that still fits maxBufferSize.
 */
export function largestBufferBytesPerElement(op: BenchOp): number {
  return Math.max(4, op.bytesPerElement / 2);
}

/** Whether every buffer of the op's cell at 2^log2 elements fits the adapter's maxBufferSize. */
export function fitsBuffers(op: BenchOp, log2: number, maxBufferSize: number): boolean {
  return largestBufferBytesPerElement(op) * 2 ** log2 <= maxBufferSize;
}

export const benchOps: BenchOp[] = [
  dropoutForward('f32', false),
  dropoutBack('f32', false),
  dropoutForward('f16', false),
  packedF16(dropoutForward('f16', false)),
  dropoutBack('f16', false),
  packedF16(dropoutBack('f16', false)),
  dropoutForward('f32', true),
  dropoutBack('f32', true),
  rng('rng.words', 'RNG raw words (u32)', randomWords),
  rng('rng.uniform', 'RNG uniform [0,1) f32', randomUniform),
  rng('rng.normal', 'RNG normal f32', randomNormal),
  bernoulliPacked,
  ...variantOps,
  stage('stage_no_rng', 'stage: dropout f32 without Philox (bytes + select)'),
  stage('stage_rng_only', 'stage: dropout f32 Philox only (no loads/stores)'),
  stage(
    'stage_rng_only_rebuilt_lo',
    'stage: Philox only, low words rebuilt from partial products (the kernels before the native low word)',
  ),
];
