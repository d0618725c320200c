// Dropout with a noise shape (structuredDropout) and the structured ops built on it: SpatialDropout,
// DropPath (and its fused residual form), variational dropout, DropConnect, and the keep-mask
// itself (docs/DESIGN.md section 2). Element e uses the contract word of its linear index in the
// noise shape (plus the call's offset).
import { checkCount, checkProbability, type KeepRule, keepRule } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { kernels } from '../kernels/elementwise.js';
import { structuredKernels } from '../kernels/structured.js';
import { type OptionNames, optionNames } from '../options.js';
import type { DropoutContext, Runtime } from '../runtime/context.js';
import { bindingBytes } from '../runtime/units.js';
import { beginOp, drawRandom, type OpSettings, RANDOM_OPTION_NAMES, resolveRandom, withOptions, withOutput } from './common.js';
import { applyMask, copyInto, over } from './launch.js';
import {
  type BackwardOptions,
  beginBackward,
  COMMON_OPTION_NAMES,
  type Prepared,
  prepare,
  type StructuredOptions,
  type StructuredResult,
  type StructuredState,
  structuredState,
} from './prepare.js';
import {
  broadcastTable,
  type ChannelOptions,
  checkShape,
  dropPathNoiseShape,
  resolveNoiseShape,
  type Shape,
  shapeSize,
  spatialNoiseShape,
  variationalNoiseShape,
} from './shape.js';

/** The options of {@link structuredDropout}. */
export interface StructuredDropoutOptions extends StructuredOptions {
  /** Scale kept values by 1 / (1 - p) (default true; timm's scale_by_keep=False sets it false). */
  scaleByKeep?: boolean;
}

const STRUCTURED_DROPOUT_OPTIONS = optionNames<StructuredDropoutOptions>({ ...COMMON_OPTION_NAMES, noiseShape: true, scaleByKeep: true });

interface Begun extends OpSettings {
  rule: KeepRule;
}

/** The prologue of the dropout ops: beginOp, then the rate (before the op's noise shape is worked out). */
function beginDropout(ctx: DropoutContext, opts: StructuredOptions, expected: string, names: OptionNames): Begun {
  const settings = beginOp(ctx, opts, expected, names);
  return { dtype: settings.dtype, training: settings.training, rt: settings.rt, rule: keepRule(opts.p) };
}

/** Checks the arguments after the prologue (`checkMore` for an op's own, given the prepared call)
 * and only then takes a stream, so that a rejected call leaves the generator where it was. */
function dropoutState(
  ctx: DropoutContext,
  x: unknown,
  opts: StructuredDropoutOptions,
  begun: Begun,
  xName: string,
  checkMore: (prep: Prepared) => void = () => {},
): { prep: Prepared; rule: KeepRule; state: StructuredState } {
  const { rule, training } = begun;
  const prep = prepare(begun.rt, x, opts, begun.dtype, xName);
  const scaleByKeep = opts.scaleByKeep ?? true;
  if (typeof scaleByKeep !== 'boolean') throw new InvalidArgumentError('scaleByKeep', 'a boolean', scaleByKeep);
  checkMore(prep);
  const rand = drawRandom(ctx, opts, training);
  const state = structuredState('dropout', rand, opts.p, prep, training, scaleByKeep && rule.kind === 'mask' ? rule.scale : 1);
  return { prep, rule: training ? rule : { kind: 'identity' }, state };
}

/**
 * Dropout with a broadcast mask (Keras `Dropout(noise_shape=...)`, `tf.dropout(x, rate, noiseShape)`):
 * y = keep ? x / (1 - p) : 0, one decision per element of the noise shape. With no noise shape it
 * is element-wise dropout, word for word the same as `dropout()`. Does not run in place.
 * Backward: {@link structuredDropoutBackward}.
 *
 * ```ts
 * const { output, state } = await structuredDropout(ctx, x, { p: 0.2, shape: [N, T, F], noiseShape: [N, 1, F] });
 * ```
 * @throws {@link InvalidArgumentError} (rejects, before anything is recorded) for a
 *   bad buffer, shape or option, naming it.
 */
export async function structuredDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredDropoutOptions): Promise<StructuredResult> {
  return maskedDropout(ctx, x, opts, beginDropout(ctx, opts, 'an object with at least p', STRUCTURED_DROPOUT_OPTIONS));
}

/** structuredDropout after its prologue (the ops built on it add a noise shape). */
async function maskedDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredDropoutOptions, begun: Begun): Promise<StructuredResult> {
  const { prep, rule, state } = dropoutState(ctx, x, opts, begun, 'x');
  const output = await applyMask(begun.rt, prep, { buffer: x, argument: 'x' }, opts.out, rule, state, state.scale, opts.encoder);
  return { output, state };
}

/** dx = keep ? dy * scale : 0 with the forward's mask, regenerated from its state (structured
 * dropout, SpatialDropout, DropPath, variational dropout, DropConnect, fused bias + dropout + residual).
 * Rejects with {@link InvalidArgumentError} for a bad buffer, option or state (one of another op included). */
export async function structuredDropoutBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: BackwardOptions = {},
): Promise<GPUBuffer> {
  const { prep, rt } = beginBackward(ctx, dy, state, opts, ['dropout', 'bias-residual']);
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  return applyMask(rt, prep, { buffer: dy, argument: 'dy' }, opts.out, rule, state, state.scale, opts.encoder);
}

function requireShape(opts: { shape?: Shape }): Shape {
  if (opts.shape === undefined) throw new InvalidArgumentError('shape', 'the shape of x');
  return opts.shape;
}

/** The options of {@link spatialDropout}: `layout` or `channelAxis` is required. */
export interface SpatialDropoutOptions extends Omit<StructuredOptions, 'noiseShape'>, ChannelOptions {
  /** Shape of x: (N, C, ...) or (N, ..., C), at least 2 dimensions. */
  shape: Shape;
}

const SPATIAL_OPTIONS = optionNames<SpatialDropoutOptions>({ ...COMMON_OPTION_NAMES, layout: true, channelAxis: true });

/**
 * SpatialDropout1D/2D/3D (Keras) and Dropout1d/2d/3d (PyTorch): whole channels dropped, one
 * decision per (sample, channel). Backward: {@link structuredDropoutBackward}.
 * Rejects as {@link structuredDropout} does (also for a missing or inconsistent layout).
 */
export async function spatialDropout(ctx: DropoutContext, x: GPUBuffer, opts: SpatialDropoutOptions): Promise<StructuredResult> {
  const begun = beginDropout(ctx, opts, 'an object with p, shape and layout', SPATIAL_OPTIONS);
  return maskedDropout(ctx, x, withOptions(opts, { noiseShape: spatialNoiseShape(requireShape(opts), opts) }), begun);
}

/** The options of {@link dropPath} and {@link dropPathAdd}. */
export interface DropPathOptions extends Omit<StructuredOptions, 'noiseShape'> {
  /** Shape of x (or of branch and residual), batch first: (N, ...). */
  shape: Shape;
  /** Divide kept samples by 1 - p (timm's scale_by_keep, default true). */
  scaleByKeep?: boolean;
}

const DROP_PATH_OPTIONS = optionNames<DropPathOptions>({ ...COMMON_OPTION_NAMES, scaleByKeep: true });

/** DropPath / stochastic depth (timm `drop_path`): each sample's branch kept or zeroed whole.
 * Backward: {@link structuredDropoutBackward}. Rejects as {@link structuredDropout} does. */
export async function dropPath(ctx: DropoutContext, x: GPUBuffer, opts: DropPathOptions): Promise<StructuredResult> {
  const begun = beginDropout(ctx, opts, 'an object with p and shape', DROP_PATH_OPTIONS);
  return maskedDropout(ctx, x, withOptions(opts, { noiseShape: dropPathNoiseShape(requireShape(opts)) }), begun);
}

/**
 * The fused residual form of DropPath, out = residual + drop_path(branch), in one pass:
 * out = residual + branch * keep / (1 - p) (or * keep without scaleByKeep).
 * Backward: {@link dropPathAddBackward} (d residual = dy, d branch = structuredDropoutBackward).
 * `out` must differ from both inputs. Rejects as {@link structuredDropout} does.
 */
export async function dropPathAdd(
  ctx: DropoutContext,
  residual: GPUBuffer,
  branch: GPUBuffer,
  opts: DropPathOptions,
): Promise<StructuredResult> {
  const begun = beginDropout(ctx, opts, 'an object with p and shape', DROP_PATH_OPTIONS);
  const full = withOptions(opts, { noiseShape: dropPathNoiseShape(requireShape(opts)) });
  const rt: Runtime = begun.rt;
  const { prep, rule, state } = dropoutState(ctx, branch, full, begun, 'branch', (p) => {
    rt.transfers.checkStorage(residual, 'residual', p.bytes);
    if (residual === branch) throw new InvalidArgumentError('residual', 'a buffer other than branch');
    if (opts.out === residual) throw new InvalidArgumentError('out', 'a buffer other than residual (this op does not run in place)');
  });
  const output = await withOutput(rt, opts.out, prep.bytes, 'dropPathAdd output', (out) => {
    const bound = {
      x: { buffer: branch, argument: 'branch' },
      out: { buffer: out, argument: 'out' },
      residual: { buffer: residual, argument: 'residual' },
    };
    if (rule.kind === 'zeros') return copyInto(rt, prep, bound.residual, out, opts.encoder);
    const random = rule.kind === 'mask' ? { rand: state, threshold: rule.threshold, scale: state.scale } : { threshold: 0, scale: 1 };
    return rt.dispatcher.dispatch(over(prep, { kernel: structuredKernels.residual, buffers: bound, ...random, encoder: opts.encoder }));
  });
  return { output, state };
}

/** The gradients of {@link dropPathAdd}. */
export interface DropPathAddGrads {
  /** The residual's gradient: `dy` itself, the same buffer. */
  dresidual: GPUBuffer;
  /** The branch's gradient, dy * keep (/ (1 - p) with scaleByKeep): `opts.out` or a pooled buffer. */
  dbranch: GPUBuffer;
}

/** Gradients of dropPathAdd: d residual is dy itself (the same buffer), d branch regenerates the mask.
 * Rejects as {@link structuredDropoutBackward} does. */
export async function dropPathAddBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: BackwardOptions = {},
): Promise<DropPathAddGrads> {
  const dbranch = await structuredDropoutBackward(ctx, dy, state, opts);
  return { dresidual: dy, dbranch };
}

/** timm's per-block stochastic-depth rates: rate_i = rate * i / (depth - 1), i = 0 .. depth-1
 * (torch.linspace(0, rate, depth); a single block gets 0). Throws {@link InvalidArgumentError}
 * unless `rate` is in [0, 1] and `depth` a positive integer. */
export function dropPathRates(rate: number, depth: number): number[] {
  checkProbability(rate, 'rate');
  if (!Number.isSafeInteger(depth) || depth < 1) throw new InvalidArgumentError('depth', 'a positive integer', depth);
  if (depth === 1) return [0];
  // The last block gets `rate` exactly (rate * i / (depth - 1) can overshoot it by an ulp).
  return Array.from({ length: depth }, (_, i) => (i === depth - 1 ? rate : (rate * i) / (depth - 1)));
}

/** The options of {@link variationalDropout}. */
export interface VariationalDropoutOptions extends Omit<StructuredOptions, 'noiseShape'> {
  /** Shape of x, e.g. (N, T, F) or time-major (T, N, F). */
  shape: Shape;
  /** The axis that shares one mask (default 1: (N, T, F); 0 for time-major (T, N, F), as AWD-LSTM's LockedDropout). */
  timeAxis?: number;
}

const VARIATIONAL_OPTIONS = optionNames<VariationalDropoutOptions>({ ...COMMON_OPTION_NAMES, timeAxis: true });

/** Variational (locked) dropout for sequences: the same mask for every time step.
 * Backward: {@link structuredDropoutBackward}. Rejects as {@link structuredDropout} does. */
export async function variationalDropout(ctx: DropoutContext, x: GPUBuffer, opts: VariationalDropoutOptions): Promise<StructuredResult> {
  const begun = beginDropout(ctx, opts, 'an object with p and shape', VARIATIONAL_OPTIONS);
  return maskedDropout(ctx, x, withOptions(opts, { noiseShape: variationalNoiseShape(requireShape(opts), opts.timeAxis ?? 1) }), begun);
}

/** The options of {@link dropConnect}: the weight's shape is (rows, cols). */
export interface DropConnectOptions extends Omit<StructuredOptions, 'shape'> {
  /** Rows of the weight matrix. */
  rows: number;
  /** Columns of the weight matrix (rows x cols at most 2^32 - 1). */
  cols: number;
}

const DROP_CONNECT_OPTIONS = optionNames<DropConnectOptions>({
  p: true,
  rows: true,
  cols: true,
  noiseShape: true,
  dtype: true,
  out: true,
  training: true,
  ...RANDOM_OPTION_NAMES,
  encoder: true,
});

/**
 * DropConnect (Wan et al. 2013; torchnlp/AWD-LSTM WeightDrop): dropout on a (rows, cols) weight
 * matrix, a fresh mask per call (the next stream), returning the masked weight for the caller's
 * matmul. Backward: {@link dropConnectBackward} turns d(masked weight) into dW.
 * Rejects as {@link structuredDropout} does.
 */
export async function dropConnect(ctx: DropoutContext, weight: GPUBuffer, opts: DropConnectOptions): Promise<StructuredResult> {
  const begun = beginDropout(ctx, opts, 'an object with p, rows and cols', DROP_CONNECT_OPTIONS);
  checkCount(opts.rows, 'rows');
  checkCount(opts.cols, 'cols');
  // Checked here, not as the [rows, cols] shape built from them: the caller passed no shape.
  if (opts.rows * opts.cols > 0xffffffff) {
    throw new InvalidArgumentError(
      'cols',
      `at most ${Math.floor(0xffffffff / opts.rows)} for ${opts.rows} rows (rows x cols at most 2^32 - 1 elements)`,
      opts.cols,
    );
  }
  const { prep, rule, state } = dropoutState(ctx, weight, withOptions(opts, { shape: [opts.rows, opts.cols] }), begun, 'weight');
  const output = await applyMask(begun.rt, prep, { buffer: weight, argument: 'weight' }, opts.out, rule, state, state.scale, opts.encoder);
  return { output, state };
}

/** dW = d(masked weight) * keep / (1 - p) with the forward's mask. */
export async function dropConnectBackward(
  ctx: DropoutContext,
  dMaskedWeight: GPUBuffer,
  state: StructuredState,
  opts: BackwardOptions = {},
): Promise<GPUBuffer> {
  return structuredDropoutBackward(ctx, dMaskedWeight, state, opts);
}

/** The options of {@link structuredKeepMask}: `shape` is required. */
export interface KeepMaskOptions extends Omit<StructuredOptions, 'dtype' | 'training'> {}

const KEEP_MASK_OPTIONS = optionNames<KeepMaskOptions>({
  p: true,
  shape: true,
  noiseShape: true,
  out: true,
  ...RANDOM_OPTION_NAMES,
  encoder: true,
});

/** The broadcast keep-mask itself, one u32 per element of x's shape (1 = keep): what every op
 * here decides for the same (p, shape, noiseShape, seed, stream, offset). Always draws a stream
 * (it has no eval mode). Rejects with {@link InvalidArgumentError} for a bad option. */
export async function structuredKeepMask(
  ctx: DropoutContext,
  opts: KeepMaskOptions,
): Promise<{
  /** One u32 per element of `shape`, 1 = keep: `out` when given, else a pooled buffer. */
  output: GPUBuffer;
  /** The (seed, stream, offset), p and shapes used: a state of kind 'dropout'. */
  state: StructuredState;
}> {
  const { rule, rt } = beginDropout(ctx, opts, 'an object with p and shape', KEEP_MASK_OPTIONS);
  const shape = checkShape(requireShape(opts));
  const noiseShape = resolveNoiseShape(shape, opts.noiseShape);
  const count = shapeSize(shape);
  const bytes = bindingBytes('word', 'f32', count);
  if (opts.out !== undefined) rt.transfers.checkStorage(opts.out, 'out', bytes);
  else rt.transfers.checkBufferSize(bytes, 'shape', shape, 'the output buffer (a u32 per element)');
  const rand = resolveRandom(ctx, opts);
  const prep: Prepared = { shape, noiseShape, count, dtype: 'f32', bytes, table: broadcastTable(shape, noiseShape) };
  // threshold 0 keeps all; bernoulliFill writes 0 for any other threshold (p = 1).
  const output = await withOutput(rt, opts.out, bytes, 'structured keep mask', (buffer) => {
    const out = { out: { buffer, argument: 'out' } };
    return rt.dispatcher.dispatch(
      rule.kind === 'zeros'
        ? over(prep, { kernel: kernels.bernoulliFill, buffers: out, threshold: 1, encoder: opts.encoder })
        : over(prep, {
            kernel: structuredKernels.keepMask,
            buffers: out,
            rand,
            threshold: rule.kind === 'mask' ? rule.threshold : 0,
            encoder: opts.encoder,
          }),
    );
  });
  const scale = rule.kind === 'mask' ? rule.scale : 1;
  return { output, state: structuredState('dropout', rand, opts.p, prep, true, scale) };
}
