// Property-based fuzzing (fast-check) of every op, layer and helper: random valid calls must match
// the CPU reference (bit for bit; normals within their stated tolerance), random invalid calls must
// be refused with a DropoutError naming the argument, write nothing to a poisoned `out`, leave the
// generator's stream, the pool's counts and the device's error state as they were, fire no
// `uncapturederror`, and leave the context working for the next valid call.
//
// CI runs a fixed seed and a bounded number of cases. For a larger run (nightly, or locally):
//   WEBGPU_DROPOUT_FUZZ_RUNS=2000 npx vitest run tests/fuzz.test.ts
//   WEBGPU_DROPOUT_FUZZ_SEED=<n> replays or varies the run (a failure prints its seed and path).
// A failure prints the shrunk counterexample: a plain description of the call (op, shape, p, seed,
// the fault injected) that fast-check reduced to the smallest one it found still failing.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { keepRule } from '../src/contract.js';
import {
  AlphaDropout,
  alphaDropout,
  bernoulliMask,
  biasDropoutResidual,
  Dropout,
  type DropoutContext,
  DropoutError,
  DropPath,
  dropConnect,
  dropout,
  dropoutArray,
  dropoutBackward,
  dropPath,
  dropPathAdd,
  GaussianDropout,
  gaussianDropout,
  gaussianSigma,
  InvalidArgumentError,
  PhiloxGenerator,
  randomNormal,
  randomUniform,
  randomWords,
  readArray,
  SpatialDropout2D,
  spatialDropout,
  structuredDropout,
  structuredKeepMask,
  VariationalDropout,
  variationalDropout,
} from '../src/index.js';
import { MLP, mcDropout, mcSample, sampleDropout, uploadMatrix } from '../src/model.js';
import { type NodeDevice, requestNodeDevice } from '../src/node.js';
import { dropPathNoiseShape, shapeSize, spatialNoiseShape, variationalNoiseShape } from '../src/ops/index.js';
import {
  packMask,
  referenceAlphaDropout,
  referenceBiasDropoutResidual,
  referenceDropout,
  referenceDropPathAdd,
  referenceGaussianDropout,
  referenceKeepMask,
  referenceMaskIndices,
  referenceNormal,
  referenceStructuredDropout,
  referenceStructuredKeep,
  referenceUniform,
  referenceWords,
} from '../src/reference.js';
import { Usage } from '../src/runtime/units.js';
import { gpuContext, POISON_WORD, poisoned, testData } from './gpu.js';

const SEED = Number(process.env.WEBGPU_DROPOUT_FUZZ_SEED ?? 18);
/** Cases per property: twice this many valid calls, and as many invalid ones (each followed by a valid one). */
const RUNS = Number(process.env.WEBGPU_DROPOUT_FUZZ_RUNS ?? 100);
/** Words after every `out` that must stay poisoned. */
const GUARD = 4;

let ctx: DropoutContext;
let other: NodeDevice;
const uncaptured: string[] = [];
beforeAll(async () => {
  // Chunks of 2048 elements, so calls up to 4500 elements span several dispatches; mask tables for
  // every broadcast call that reuses its mask elements at least twice.
  ctx = await gpuContext({ maxChunkElements: 2048, specializedShapes: 0, maskTables: { minElements: 0, minReuse: 2 } });
  ctx.device.addEventListener('uncapturederror', (e) => uncaptured.push((e as GPUUncapturedErrorEvent).error.message));
  other = await requestNodeDevice();
  return () => other.release();
});

// ---------------------------------------------------------------------------------------------
// What a call is: plain data, so a shrunk counterexample reads as the call itself.

const OPS = [
  'dropout',
  'dropoutBackward',
  'randomWords',
  'randomUniform',
  'randomNormal',
  'bernoulliMask',
  'structuredDropout',
  'spatialDropout',
  'dropPath',
  'dropPathAdd',
  'variationalDropout',
  'dropConnect',
  'structuredKeepMask',
  'gaussianDropout',
  'alphaDropout',
  'biasDropoutResidual',
  'Dropout layer',
  'SpatialDropout2D layer',
  'DropPath layer',
  'VariationalDropout layer',
  'GaussianDropout layer',
  'AlphaDropout layer',
  'dropoutArray',
] as const;
type Op = (typeof OPS)[number];

interface Call {
  op: Op;
  /** The tensor's shape (element-wise ops use its product). */
  shape: number[];
  /** Per dimension: drawn per element (true) or broadcast (false), for ops that take a noise shape. */
  noise: boolean[];
  p: number;
  seed: bigint;
  stream: bigint;
  offset: bigint;
  /** Pass a poisoned `out` (with guard words) instead of taking one from the pool. */
  out: boolean;
  /** Record into a caller's encoder, submitted after the call. */
  encoder: boolean;
  /** The op's own switch: mask (dropout), packed (bernoulliMask), scaleByKeep (drop-path, structured), channels-first (spatial). */
  flag: boolean;
  /** Before the call, a pooled buffer of its output's size was destroyed and released (the pool must forget it). */
  destroyedInPool: boolean;
}

const ELEMENTWISE: ReadonlySet<Op> = new Set<Op>([
  'dropout',
  'dropoutBackward',
  'randomWords',
  'randomUniform',
  'randomNormal',
  'bernoulliMask',
  'Dropout layer',
  'dropoutArray',
]);
const OPEN_RATE: ReadonlySet<Op> = new Set<Op>(['gaussianDropout', 'alphaDropout', 'GaussianDropout layer', 'AlphaDropout layer']);
const LAYERS: ReadonlySet<Op> = new Set<Op>([
  'Dropout layer',
  'SpatialDropout2D layer',
  'DropPath layer',
  'VariationalDropout layer',
  'GaussianDropout layer',
  'AlphaDropout layer',
]);

const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 2n ** 32n - 1n, 2n ** 64n - 1n));
const probability = fc.oneof(fc.constantFrom(0, 1, 0.5, 2 ** -33), fc.double({ min: 0, max: 1, noNaN: true }));
const shape = fc.oneof(
  fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 2, maxLength: 4 }),
  fc.integer({ min: 0, max: 4500 }).map((n) => [n, 1]),
);

const callArb: fc.Arbitrary<Call> = fc
  .record({
    op: fc.constantFrom(...OPS),
    shape,
    noise: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    p: probability,
    seed: u64,
    stream: u64,
    // Near 2^64 some calls run past index 2^64 - 1, where mask indices wrap to 0 (docs/DESIGN.md).
    offset: fc.oneof(
      fc.constant(0n),
      fc.bigInt({ min: 0n, max: 2n ** 40n }),
      fc.constant(2n ** 64n - 5000n),
      fc.bigInt({ min: 2n ** 64n - 3000n, max: 2n ** 64n - 1n }),
    ),
    out: fc.boolean(),
    encoder: fc.boolean(),
    flag: fc.boolean(),
    destroyedInPool: fc.boolean(),
  })
  .map((c) => normalize(c));

/** A generated call made valid for its op (ranks, open rates, no random streams for layers). */
function normalize(c: Call): Call {
  let shape = c.shape;
  if (c.op === 'SpatialDropout2D layer') shape = [...shape, 1, 1, 1, 1].slice(0, 4);
  if (c.op === 'dropConnect' || c.op === 'dropPathAdd' || c.op === 'biasDropoutResidual') shape = [shape[0]!, shapeSize(shape.slice(1))];
  if (['spatialDropout', 'variationalDropout', 'VariationalDropout layer'].includes(c.op) && shape.length < 3) shape = [...shape, 2];
  const p = OPEN_RATE.has(c.op) && c.p >= 1 - 2 ** -30 ? 0.5 : c.p;
  // Layers draw from a generator (seed, stream) at offset 0.
  const offset = LAYERS.has(c.op) ? 0n : c.offset;
  return { ...c, shape, noise: c.noise.slice(0, shape.length), p, offset };
}

// ---------------------------------------------------------------------------------------------
// Running a call

interface Args {
  x: GPUBuffer;
  /** A second input (dropPathAdd's branch, biasDropoutResidual's residual) and the bias. */
  y: GPUBuffer;
  bias: GPUBuffer;
  out?: GPUBuffer;
  encoder?: GPUCommandEncoder;
  random: { seed?: bigint; stream?: bigint; offset?: bigint; generator?: PhiloxGenerator };
  p: unknown;
  count: unknown;
  shape: unknown;
  noiseShape: unknown;
  flag: unknown;
  /** Extra options merged into the options object (a misspelt name, for one). */
  extra: Record<string, unknown>;
}

const noiseShapeOf = (c: Call) => c.shape.map((d, k) => (c.noise[k] ? d : 1));

/** The op's call with these arguments; resolves to the buffer (or array) holding its result. */
async function invoke(c: Call, a: Args): Promise<GPUBuffer | Float32Array> {
  const n = shapeSize(c.shape);
  const rand = { ...a.random, ...(a.extra as object) };
  const rec = { out: a.out, encoder: a.encoder };
  const layerGenerator = () => a.random.generator ?? new PhiloxGenerator(a.random.seed as bigint, a.random.stream as bigint);
  switch (c.op) {
    case 'dropout': {
      const r = await dropout(ctx, a.x, { p: a.p as number, count: a.count as number, mask: a.flag as boolean, ...rec, ...rand });
      return r.mask ?? r.output;
    }
    case 'dropoutBackward': {
      const state = {
        seed: a.random.seed as bigint,
        stream: a.random.stream as bigint,
        offset: a.random.offset as bigint,
        p: a.p as number,
        count: a.count as number,
        dtype: 'f32' as const,
        training: true,
      };
      return dropoutBackward(ctx, a.x, state, { ...rec, ...a.extra });
    }
    case 'randomWords':
      return (await randomWords(ctx, { count: a.count as number, ...rec, ...rand })).output;
    case 'randomUniform':
      return (await randomUniform(ctx, { count: a.count as number, ...rec, ...rand })).output;
    case 'randomNormal':
      return (await randomNormal(ctx, { count: a.count as number, ...rec, ...rand })).output;
    case 'bernoulliMask':
      return (await bernoulliMask(ctx, { count: a.count as number, p: a.p as number, packed: a.flag as boolean, ...rec, ...rand })).output;
    case 'structuredDropout':
      return (
        await structuredDropout(ctx, a.x, {
          p: a.p as number,
          shape: a.shape as number[],
          noiseShape: a.noiseShape as number[],
          scaleByKeep: a.flag as boolean,
          ...rec,
          ...rand,
        })
      ).output;
    case 'spatialDropout':
      return (
        await spatialDropout(ctx, a.x, {
          p: a.p as number,
          shape: a.shape as number[],
          layout: c.flag ? 'channels-first' : 'channels-last',
          ...rec,
          ...rand,
        })
      ).output;
    case 'dropPath':
      return (await dropPath(ctx, a.x, { p: a.p as number, shape: a.shape as number[], scaleByKeep: a.flag as boolean, ...rec, ...rand }))
        .output;
    case 'dropPathAdd':
      return (
        await dropPathAdd(ctx, a.y, a.x, { p: a.p as number, shape: a.shape as number[], scaleByKeep: a.flag as boolean, ...rec, ...rand })
      ).output;
    case 'variationalDropout':
      return (await variationalDropout(ctx, a.x, { p: a.p as number, shape: a.shape as number[], timeAxis: 1, ...rec, ...rand })).output;
    case 'dropConnect': {
      const [rows, cols] = a.shape as number[];
      return (await dropConnect(ctx, a.x, { p: a.p as number, rows: rows!, cols: cols!, ...rec, ...rand })).output;
    }
    case 'structuredKeepMask':
      return (
        await structuredKeepMask(ctx, {
          p: a.p as number,
          shape: a.shape as number[],
          noiseShape: a.noiseShape as number[],
          ...rec,
          ...rand,
        })
      ).output;
    case 'gaussianDropout':
      return (
        await gaussianDropout(ctx, a.x, {
          p: a.p as number,
          shape: a.shape as number[],
          noiseShape: a.noiseShape as number[],
          ...rec,
          ...rand,
        })
      ).output;
    case 'alphaDropout':
      return (
        await alphaDropout(ctx, a.x, {
          p: a.p as number,
          shape: a.shape as number[],
          noiseShape: a.noiseShape as number[],
          ...rec,
          ...rand,
        })
      ).output;
    case 'biasDropoutResidual':
      return (await biasDropoutResidual(ctx, a.x, a.bias, a.y, { p: a.p as number, shape: a.shape as number[], ...rec, ...rand })).output;
    case 'Dropout layer':
      return (
        await new Dropout(ctx, { p: a.p as number, generator: layerGenerator() }).forward(a.x, {
          count: a.count as number,
          ...rec,
          ...a.extra,
        })
      ).output;
    case 'SpatialDropout2D layer':
      return (
        await new SpatialDropout2D(ctx, { p: a.p as number, generator: layerGenerator() }).forward(a.x, {
          shape: a.shape as number[],
          ...rec,
          ...a.extra,
        })
      ).output;
    case 'DropPath layer':
      return (
        await new DropPath(ctx, { p: a.p as number, generator: layerGenerator(), scaleByKeep: c.flag }).forward(a.x, {
          shape: a.shape as number[],
          ...rec,
          ...a.extra,
        })
      ).output;
    case 'VariationalDropout layer':
      return (
        await new VariationalDropout(ctx, { p: a.p as number, generator: layerGenerator() }).forward(a.x, {
          shape: a.shape as number[],
          ...rec,
          ...a.extra,
        })
      ).output;
    case 'GaussianDropout layer':
      return (
        await new GaussianDropout(ctx, { p: a.p as number, generator: layerGenerator() }).forward(a.x, {
          shape: a.shape as number[],
          ...rec,
          ...a.extra,
        })
      ).output;
    case 'AlphaDropout layer':
      return (
        await new AlphaDropout(ctx, { p: a.p as number, generator: layerGenerator() }).forward(a.x, {
          shape: a.shape as number[],
          ...rec,
          ...a.extra,
        })
      ).output;
    case 'dropoutArray':
      return (await dropoutArray(ctx, testData(n, 1), { p: a.p as number, ...(rand as object) })).output as Float32Array;
  }
}

/** What the CPU reference says the call computes, as f32 values (or u32 words), with a tolerance for normals. */
function expected(c: Call): { words?: Uint32Array; values?: Float32Array; tolerance?: Float64Array; tol?: [number, number] } {
  const n = shapeSize(c.shape);
  const x = testData(n, 1);
  const r = { seed: c.seed, stream: c.stream, offset: c.offset };
  const noiseShape = noiseShapeOf(c);
  const structured = { ...r, p: c.p, shape: c.shape };
  switch (c.op) {
    case 'dropout':
      return c.flag ? { words: packMask(referenceKeepMask(n, c.p, r)) } : { values: referenceDropout(x, { ...r, p: c.p }) as Float32Array };
    case 'dropoutBackward':
    case 'Dropout layer':
    case 'dropoutArray':
      return { values: referenceDropout(x, { ...r, p: c.p }) as Float32Array };
    case 'randomWords':
      return { words: referenceWords(c.seed, c.stream, n, c.offset) };
    case 'randomUniform':
      return { values: referenceUniform(n, r) };
    case 'randomNormal': {
      const z = referenceNormal(n, r);
      return { values: z, tolerance: Float64Array.from(z, (v) => 1e-5 * (1 + Math.abs(v))) };
    }
    case 'bernoulliMask': {
      const keep = referenceKeepMask(n, c.p, r);
      return { words: c.flag ? packMask(keep) : Uint32Array.from(keep) };
    }
    case 'structuredDropout':
      return { values: referenceStructuredDropout(x, { ...structured, noiseShape, scaleByKeep: c.flag }) as Float32Array };
    case 'spatialDropout':
    case 'SpatialDropout2D layer':
      return {
        values: referenceStructuredDropout(x, {
          ...structured,
          noiseShape: spatialNoiseShape(c.shape, { layout: c.flag && c.op === 'spatialDropout' ? 'channels-first' : 'channels-last' }),
        }) as Float32Array,
      };
    case 'dropPath':
    case 'DropPath layer':
      return {
        values: referenceStructuredDropout(x, {
          ...structured,
          noiseShape: dropPathNoiseShape(c.shape),
          scaleByKeep: c.flag,
        }) as Float32Array,
      };
    case 'dropPathAdd':
      return {
        values: referenceDropPathAdd(testData(n, 2), x, {
          ...structured,
          noiseShape: dropPathNoiseShape(c.shape),
          scaleByKeep: c.flag,
        }) as Float32Array,
        tol: [2.4e-7, 1e-6],
      };
    case 'variationalDropout':
    case 'VariationalDropout layer':
      return { values: referenceStructuredDropout(x, { ...structured, noiseShape: variationalNoiseShape(c.shape, 1) }) as Float32Array };
    case 'dropConnect':
      return { values: referenceStructuredDropout(x, structured) as Float32Array };
    case 'structuredKeepMask':
      return { words: Uint32Array.from(referenceStructuredKeep({ ...structured, noiseShape })) };
    case 'gaussianDropout':
    case 'GaussianDropout layer': {
      const ns = c.op === 'gaussianDropout' ? noiseShape : c.shape;
      const values = referenceGaussianDropout(x, { ...structured, noiseShape: ns }) as Float32Array;
      // As tests/variants.test.ts: the normals' tolerance, times |x| sigma.
      const z = referenceNormal(shapeSize(ns), r);
      const index = referenceMaskIndices(c.shape, ns);
      const sigma = c.p === 0 ? 0 : gaussianSigma(c.p);
      // Plus f32 rounding, 2.4e-7 of the value (which dominates for small p: a nightly run found 1 ulp at p = 3e-6).
      return {
        values,
        tolerance: Float64Array.from(x, (v, i) => 1e-5 * Math.abs(v) * sigma * (1 + Math.abs(z[index[i]!]!)) + 2 ** -24),
        tol: [2.4e-7, 0],
      };
    }
    case 'alphaDropout':
    case 'AlphaDropout layer':
      return {
        values: referenceAlphaDropout(x, { ...structured, noiseShape: c.op === 'alphaDropout' ? noiseShape : c.shape }) as Float32Array,
        tol: [1.2e-7, 1e-6],
      };
    case 'biasDropoutResidual':
      return {
        values: referenceBiasDropoutResidual(x, testData(c.shape[1]!, 3), testData(n, 2), structured) as Float32Array,
        tol: [2.4e-7, 1e-6],
      };
  }
}

/** Length in u32 words of what the call writes. */
function outputWords(c: Call): number {
  const n = shapeSize(c.shape);
  if ((c.op === 'dropout' && c.flag) || (c.op === 'bernoulliMask' && c.flag)) return Math.ceil(n / 32);
  return n;
}

function validArgs(c: Call, inputs: { x: GPUBuffer; y: GPUBuffer; bias: GPUBuffer }): Args {
  const layer = LAYERS.has(c.op);
  return {
    ...inputs,
    random: layer ? { seed: c.seed, stream: c.stream } : { seed: c.seed, stream: c.stream, offset: c.offset },
    p: c.p,
    count: ELEMENTWISE.has(c.op) ? shapeSize(c.shape) : undefined,
    shape: c.shape,
    noiseShape: noiseShapeOf(c),
    flag: c.flag,
    extra: {},
  };
}

function inputsFor(c: Call): { x: GPUBuffer; y: GPUBuffer; bias: GPUBuffer } {
  const n = shapeSize(c.shape);
  return { x: ctx.upload(testData(n, 1)), y: ctx.upload(testData(n, 2)), bias: ctx.upload(testData(Math.max(1, c.shape[1] ?? 1), 3)) };
}

function describeMismatch(got: Uint32Array, want: Uint32Array): string {
  const i = got.findIndex((w, k) => w !== want[k]);
  return `${got.length} words, first difference at ${i}: got 0x${got[i]?.toString(16)}, want 0x${want[i]?.toString(16)}`;
}

/** Runs a valid call and checks it against the reference; returns false (with a message) on a mismatch. */
const tally = { valid: 0, invalid: 0 };

async function runValid(c: Call): Promise<void> {
  tally.valid++;
  const inputs = inputsFor(c);
  const words = outputWords(c);
  const out = c.out && c.op !== 'dropoutArray' && !(c.op === 'dropout' && c.flag) ? poisoned(ctx, (words + GUARD) * 4) : undefined;
  const encoder = c.encoder && c.op !== 'dropoutArray' ? ctx.device.createCommandEncoder() : undefined;
  if (c.destroyedInPool && words > 0) {
    const doomed = ctx.acquire(words * 4);
    doomed.destroy();
    ctx.release(doomed);
  }
  const args = validArgs(c, inputs);
  const result = await invoke(c, { ...args, out, encoder });
  if (encoder) {
    ctx.device.queue.submit([encoder.finish()]);
    ctx.submitted(encoder);
  }
  const got =
    result instanceof Float32Array
      ? new Uint32Array(result.buffer, result.byteOffset, result.length)
      : await readArray(ctx, result, 'u32', words);
  const want = expected(c);
  if (want.words) {
    expect(Array.from(got), describeMismatch(got, want.words)).toEqual(Array.from(want.words));
  } else if (want.tolerance || want.tol) {
    const values = new Float32Array(got.buffer, got.byteOffset, got.length);
    const [rtol, atol] = want.tol ?? [0, 0];
    const bad = Array.from(values).findIndex((v, i) => {
      const w = want.values![i]!;
      const limit = (want.tolerance?.[i] ?? 0) + rtol * Math.abs(w) + atol;
      return !(Math.abs(v - w) <= limit) && !(Number.isNaN(v) && Number.isNaN(w));
    });
    expect(bad, bad < 0 ? '' : `element ${bad}: got ${values[bad]}, want ${want.values![bad]}`).toBe(-1);
  } else {
    const wantBits = new Uint32Array(want.values!.buffer, want.values!.byteOffset, want.values!.length);
    expect(Array.from(got), describeMismatch(got, wantBits)).toEqual(Array.from(wantBits));
  }
  if (out) {
    const guard = new Uint32Array(await ctx.readBytes(out, GUARD * 4, words * 4));
    expect(Array.from(guard), 'a guard word after out was written').toEqual(new Array(GUARD).fill(POISON_WORD));
  }
  for (const b of [inputs.x, inputs.y, inputs.bias, out]) if (b) ctx.release(b);
  if (!(result instanceof Float32Array) && result !== inputs.x) ctx.release(result);
}

// ---------------------------------------------------------------------------------------------
// Faults

const FAULTS = [
  'p: -0.25',
  'p: 1.5',
  'p: NaN',
  "p: '0.5'",
  'seed: -1n',
  'seed: 2^64',
  'seed: 1.5',
  'stream without seed',
  'offset: -1',
  'out too small',
  'out without STORAGE',
  'out mapped',
  'out of another device',
  'x too small',
  'x destroyed',
  'x of another device',
  'misspelt option',
  'flag not a boolean',
  'shape: negative extent',
  'noiseShape of another rank',
  'count past maxBufferSize',
  'encoder not an encoder',
  'encoder finished',
  'encoder of another device',
  'readBytes byteOffset',
  'acquire past maxBufferSize',
] as const;
type Fault = (typeof FAULTS)[number];
const GPU_DETECTED: ReadonlySet<Fault> = new Set<Fault>(['out of another device', 'x of another device']);

/** The argument the error must name, or null where the fault does not apply to the op. */
function faultArgument(c: Call, f: Fault): string | null {
  const n = shapeSize(c.shape);
  const words = outputWords(c);
  // Work that reads x at all: p = 1 writes zeros (or copies the residual) without reading it.
  const readsX = n > 0 && keepRule(c.p).kind !== 'zeros';
  if (f === 'x too small' && n < 2) return null;
  if (f === 'out too small' && words < 3) return null;
  if ((f === 'x destroyed' || f === 'x of another device') && !readsX) return null;
  if ((f === 'out of another device' || f === 'x destroyed' || f === 'x of another device') && n === 0) return null;
  const random = !LAYERS.has(c.op) && c.op !== 'dropoutBackward';
  const hasShape = !ELEMENTWISE.has(c.op) && !LAYERS.has(c.op);
  const noiseOption = ['structuredDropout', 'structuredKeepMask', 'gaussianDropout', 'alphaDropout'].includes(c.op);
  const noOutput = c.op === 'dropoutArray';
  const takesX = !['randomWords', 'randomUniform', 'randomNormal', 'bernoulliMask', 'structuredKeepMask', 'dropoutArray'].includes(c.op);
  switch (f) {
    case 'p: -0.25':
    case 'p: 1.5':
    case 'p: NaN':
    case "p: '0.5'":
      return c.op.startsWith('random') ? null : c.op === 'dropoutBackward' ? 'state.p' : 'p';
    case 'seed: -1n':
    case 'seed: 2^64':
    case 'seed: 1.5':
      return random ? 'seed' : null;
    case 'stream without seed':
    case 'offset: -1':
      return random ? f.split(' ')[0]!.replace(':', '') : null;
    case 'out too small':
    case 'out without STORAGE':
    case 'out mapped':
    case 'out of another device':
      return noOutput || (c.op === 'dropout' && c.flag) ? null : 'out';
    case 'x too small':
      return takesX && !LAYERS.has(c.op)
        ? c.op === 'dropoutBackward'
          ? 'dy'
          : c.op === 'dropConnect'
            ? 'weight'
            : c.op === 'dropPathAdd'
              ? 'branch'
              : 'x'
        : null;
    case 'x destroyed':
    case 'x of another device':
      return takesX
        ? c.op === 'dropoutBackward'
          ? 'dy'
          : c.op === 'dropConnect'
            ? 'weight'
            : c.op === 'dropPathAdd'
              ? 'branch'
              : 'x'
        : null;
    case 'misspelt option':
      return `options.${misspelling(c)}`;
    case 'flag not a boolean':
      return c.op === 'dropout'
        ? 'training'
        : c.op === 'bernoulliMask'
          ? 'packed'
          : ['structuredDropout', 'dropPath', 'dropPathAdd'].includes(c.op)
            ? 'scaleByKeep'
            : null;
    case 'shape: negative extent':
      return hasShape && c.op !== 'dropConnect' ? 'shape' : null;
    case 'noiseShape of another rank':
      return noiseOption ? 'noiseShape' : null;
    case 'count past maxBufferSize':
      return ['randomWords', 'randomUniform', 'randomNormal'].includes(c.op) || (c.op === 'bernoulliMask' && !c.flag) ? 'count' : null;
    case 'encoder not an encoder':
    case 'encoder finished':
    case 'encoder of another device':
      return noOutput ? null : 'encoder';
    case 'readBytes byteOffset':
      return 'byteOffset';
    case 'acquire past maxBufferSize':
      return 'bytes';
  }
}

/** An option name one letter off one the op takes. */
function misspelling(c: Call): string {
  if (LAYERS.has(c.op)) return c.op === 'Dropout layer' ? 'cont' : 'shpe';
  if (c.op === 'dropoutBackward') return 'mask_';
  return 'sed';
}

/** The call's arguments with the fault injected. */
function faultyArgs(c: Call, f: Fault, base: Args): { args: Args; cleanup?: () => void } {
  const a: Args = { ...base, extra: {} };
  const n = shapeSize(c.shape);
  const words = outputWords(c);
  const destroy: GPUBuffer[] = [];
  switch (f) {
    case 'p: -0.25':
      a.p = -0.25;
      break;
    case 'p: 1.5':
      a.p = 1.5;
      break;
    case 'p: NaN':
      a.p = NaN;
      break;
    case "p: '0.5'":
      a.p = '0.5';
      break;
    case 'seed: -1n':
      a.random = { seed: -1n };
      break;
    case 'seed: 2^64':
      a.random = { seed: 2n ** 64n };
      break;
    case 'seed: 1.5':
      a.random = { seed: 1.5 as never };
      break;
    case 'stream without seed':
      a.random = { stream: 3n };
      break;
    case 'offset: -1':
      a.random = { generator: base.random.generator, offset: -1n };
      break;
    case 'out too small':
      a.out = poisoned(ctx, Math.max(0, words * 4 - 8));
      break;
    case 'out without STORAGE':
      a.out = ctx.device.createBuffer({ size: words * 4 + 16, usage: Usage.COPY_SRC | Usage.COPY_DST });
      destroy.push(a.out);
      break;
    case 'out mapped':
      a.out = ctx.device.createBuffer({ size: words * 4 + 16, usage: Usage.STORAGE | Usage.COPY_SRC, mappedAtCreation: true });
      destroy.push(a.out);
      break;
    case 'out of another device':
      a.out = other.device.createBuffer({ size: words * 4 + 16, usage: Usage.STORAGE | Usage.COPY_SRC });
      destroy.push(a.out);
      break;
    case 'x too small': {
      a.x = ctx.upload(testData(Math.max(0, n - 1), 1));
      if (ELEMENTWISE.has(c.op)) a.count = n;
      break;
    }
    case 'x destroyed':
      a.x = ctx.upload(testData(n, 1));
      a.x.destroy();
      break;
    case 'x of another device':
      a.x = other.device.createBuffer({ size: n * 4 + 16, usage: Usage.STORAGE | Usage.COPY_SRC });
      destroy.push(a.x);
      break;
    case 'misspelt option':
      a.extra = { [misspelling(c)]: 1 };
      break;
    case 'flag not a boolean':
      if (c.op === 'dropout') a.extra = { training: 'yes' };
      else a.flag = 'yes';
      break;
    case 'shape: negative extent':
      a.shape = [-1, ...c.shape.slice(1)];
      break;
    case 'noiseShape of another rank':
      a.noiseShape = [...noiseShapeOf(c), 1];
      break;
    case 'count past maxBufferSize':
      a.count = Math.floor(ctx.device.limits.maxBufferSize / 4) + 1;
      break;
    case 'encoder not an encoder':
      a.encoder = {} as GPUCommandEncoder;
      break;
    case 'encoder finished':
      a.encoder = ctx.device.createCommandEncoder();
      a.encoder.finish();
      break;
    case 'encoder of another device':
      a.encoder = other.device.createCommandEncoder();
      break;
    default:
      break;
  }
  // WebGPU itself finds these, after the call has taken its stream (README, Errors): such calls are
  // given a seed, not the generator whose stream the check watches.
  if (GPU_DETECTED.has(f) && c.op !== 'dropoutBackward') a.random = { seed: 1n, stream: 0n };
  // Element-wise ops of zero elements need at least one for some faults to be faults.
  return { args: a, cleanup: () => destroy.forEach((b) => b.destroy()) };
}

/** Runs one invalid call and checks every promise a refusal makes. */
async function runInvalid(c: Call, f: Fault): Promise<void> {
  const argument = faultArgument(c, f);
  if (argument === null) return;
  tally.invalid++;
  const inputs = inputsFor(c);
  const generator = new PhiloxGenerator(c.seed, c.stream);
  const valid = validArgs(c, inputs);
  // Draw from a generator (so that a refusal must leave its stream alone), except where the state holds the randomness.
  const base = c.op === 'dropoutBackward' ? valid : { ...valid, random: { generator } };
  const { args, cleanup } = faultyArgs(c, f, base);
  // A poisoned out that must stay poisoned: the caller's, or one given for the purpose.
  const canOut = c.op !== 'dropoutArray' && !(c.op === 'dropout' && c.flag);
  if (canOut && !f.startsWith('out') && f !== 'count past maxBufferSize') args.out = poisoned(ctx, outputWords(c) * 4 + 16);
  const out = args.out && (f === 'out too small' || !f.startsWith('out')) ? args.out : undefined;
  await ctx.flush();
  await ctx.device.queue.onSubmittedWorkDone();
  const before = { allocations: ctx.pool.allocations, bytes: ctx.pool.bytes, stream: generator.stream };
  uncaptured.length = 0;
  ctx.device.pushErrorScope('validation');
  let caught: unknown;
  try {
    if (f === 'readBytes byteOffset') await ctx.readBytes(inputs.x, 4, -4);
    else if (f === 'acquire past maxBufferSize') ctx.acquire(2 ** 33);
    else await invoke(c, args);
  } catch (e) {
    caught = e;
  }
  const escaped = await ctx.device.popErrorScope();
  await ctx.device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 5));
  expect(caught, `${c.op} with ${f} was not refused`).toBeInstanceOf(DropoutError);
  expect(caught, String(caught)).toBeInstanceOf(InvalidArgumentError);
  expect((caught as InvalidArgumentError).argument, String(caught)).toBe(argument);
  expect(escaped?.message ?? null, 'a WebGPU error escaped the call').toBeNull();
  expect(uncaptured, 'uncaptured WebGPU errors').toEqual([]);
  expect(
    { allocations: ctx.pool.allocations, bytes: ctx.pool.bytes, stream: generator.stream },
    'pool counts or generator stream changed',
  ).toEqual(before);
  if (out) {
    const words = new Uint32Array(await ctx.readBytes(out, out.size));
    expect(
      words.findIndex((w) => w !== POISON_WORD),
      'a refused call wrote its out',
    ).toBe(-1);
  }
  cleanup?.();
  for (const b of [inputs.x, inputs.y, inputs.bias, out]) if (b) ctx.release(b);
}

const fuzzOptions = (runs: number) => ({ seed: SEED, numRuns: runs });

describe('fuzz (fast-check, seed and size from WEBGPU_DROPOUT_FUZZ_SEED / WEBGPU_DROPOUT_FUZZ_RUNS)', () => {
  it('valid calls of every op, layer and helper match the CPU reference', async () => {
    const start = tally.valid;
    await fc.assert(fc.asyncProperty(callArb, runValid), fuzzOptions(RUNS * 2));
    expect(tally.valid - start).toBe(RUNS * 2);
  });

  it('invalid calls are refused by name, write nothing, change nothing, and the next valid call works', async () => {
    const arb = fc
      .record({ call: callArb, fault: fc.constantFrom(...FAULTS), next: callArb })
      .filter(({ call, fault }) => faultArgument(call, fault) !== null);
    await fc.assert(
      fc.asyncProperty(arb, async ({ call, fault, next }) => {
        await runInvalid(call, fault);
        await runValid(next);
      }),
      fuzzOptions(RUNS * 2),
    );
    expect(tally.invalid).toBe(RUNS * 2);
  });

  it('the model kit: refused MLP and MC-Dropout calls change nothing (a twin trained without them ends bit-identical)', async () => {
    const MODEL_FAULTS = [
      'trainStep loss',
      'trainStep misspelt option',
      'trainStep readLoss',
      'trainStep x columns',
      'trainStep y rows',
      'trainStep x of another device',
      'predict random',
      'gradients random.samples',
      'mcDropout samples',
      'mcDropout schedule',
      'mcDropout stream without seed',
      'mcSample sample',
      'sampleDropout p = 1',
    ] as const;
    const argumentOf: Record<(typeof MODEL_FAULTS)[number], string> = {
      'trainStep loss': 'loss',
      'trainStep misspelt option': 'options.los',
      'trainStep readLoss': 'readLoss',
      'trainStep x columns': 'x',
      'trainStep y rows': 'y',
      'trainStep x of another device': 'x',
      'predict random': 'options.random',
      'gradients random.samples': 'random.samples',
      'mcDropout samples': 'samples',
      'mcDropout schedule': 'schedule',
      'mcDropout stream without seed': 'stream',
      'mcSample sample': 'sample',
      'sampleDropout p = 1': 'p',
    };
    const steps = fc.array(fc.oneof(fc.constant('step' as const), fc.constantFrom(...MODEL_FAULTS)), { minLength: 2, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(steps, fc.integer({ min: 1, max: 9 }), async (plan, rows) => {
        const [a, b] = [0, 1].map(() => new MLP(ctx, { sizes: [3, 8, 2], dropout: 0.25, seed: 11 }));
        const x = uploadMatrix(ctx, testData(rows * 3, 5), rows, 3);
        const y = uploadMatrix(ctx, testData(rows * 2, 6), rows, 2);
        const yTall = uploadMatrix(ctx, testData((rows + 1) * 2, 7), rows + 1, 2);
        const foreign = { buffer: other.device.createBuffer({ size: rows * 12, usage: Usage.STORAGE | Usage.COPY_SRC }), rows, cols: 3 };
        for (const step of plan) {
          if (step === 'step') {
            await a!.trainStep(x, y, { loss: 'mse' });
            await b!.trainStep(x, y, { loss: 'mse' });
            continue;
          }
          const before = { allocations: ctx.pool.allocations, bytes: ctx.pool.bytes, steps: a!.steps, stream: ctx.generator.stream };
          uncaptured.length = 0;
          ctx.device.pushErrorScope('validation');
          const run: Record<(typeof MODEL_FAULTS)[number], () => Promise<unknown>> = {
            'trainStep loss': () => a!.trainStep(x, y, { loss: 'l2' as 'mse' }),
            'trainStep misspelt option': () => a!.trainStep(x, y, { loss: 'mse', los: 'mse' } as never),
            'trainStep readLoss': () => a!.trainStep(x, y, { loss: 'mse', readLoss: 1 as unknown as boolean }),
            'trainStep x columns': () => a!.trainStep(y, y, { loss: 'mse' }),
            'trainStep y rows': () => a!.trainStep(x, yTall, { loss: 'mse' }),
            'trainStep x of another device': () => a!.trainStep(foreign, y, { loss: 'mse' }),
            'predict random': () => a!.predict(x, { random: { seed: 1n, stream: 0n, samples: 1 } } as never),
            'gradients random.samples': () => a!.gradients(x, y, { loss: 'mse', random: { seed: 1n, stream: 0n, samples: 0 } }),
            'mcDropout samples': () => mcDropout(ctx, a!, x, { samples: 1 }),
            'mcDropout schedule': () => mcDropout(ctx, a!, x, { samples: 4, schedule: 'parallel' as 'batched' }),
            'mcDropout stream without seed': () => mcDropout(ctx, a!, x, { samples: 4, stream: 2n }),
            'mcSample sample': () => mcSample(ctx, a!, x, { seed: 1n, stream: 0n, sample: -1 }),
            'sampleDropout p = 1': () => sampleDropout(ctx, x, { p: 1, random: { seed: 1n, stream: 0n, samples: 1 } }),
          };
          let caught: unknown;
          try {
            await run[step]();
          } catch (e) {
            caught = e;
          }
          const escaped = await ctx.device.popErrorScope();
          await ctx.device.queue.onSubmittedWorkDone();
          expect(caught, `${step} was not refused`).toBeInstanceOf(InvalidArgumentError);
          expect((caught as InvalidArgumentError).argument, String(caught)).toBe(argumentOf[step]);
          expect(escaped?.message ?? null).toBeNull();
          expect(uncaptured).toEqual([]);
          // A refusal WebGPU makes (another device's buffer) comes after the step drew its stream (README, Errors).
          if (step === 'trainStep x of another device') b!.generator.take();
          expect({ allocations: ctx.pool.allocations, bytes: ctx.pool.bytes, steps: a!.steps, stream: ctx.generator.stream }).toEqual(
            before,
          );
        }
        expect(a!.generator.stream).toBe(b!.generator.stream);
        const [pa, pb] = await Promise.all([a!.getParameters(), b!.getParameters()]);
        expect(Array.from(new Uint32Array(pa.buffer))).toEqual(Array.from(new Uint32Array(pb.buffer)));
        foreign.buffer.destroy();
        for (const m of [a!, b!]) m.destroy();
        for (const m of [x, y, yTall]) ctx.release(m.buffer);
      }),
      fuzzOptions(Math.max(4, Math.round(RUNS / 10))),
    );
  });

  it('every fault, on calls drawn for it, is refused the same way (none left to chance)', async () => {
    for (const [k, fault] of FAULTS.entries()) {
      const calls = fc.sample(
        callArb.filter((c) => faultArgument(c, fault) !== null),
        { seed: SEED + k, numRuns: Math.max(2, Math.round(RUNS / 20)) },
      );
      expect(calls.length).toBeGreaterThan(0);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...calls), (call) => runInvalid(call, fault)),
        { seed: SEED + k, numRuns: calls.length },
      );
    }
  });
});
