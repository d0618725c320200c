// What every structured op shares before it launches: its options and state types, the option
// names, the validation of its buffers and shapes (prepare), the state check, the state it
// returns, the prologue of a backward pass, and that of the ops whose rate must stay below 1.
import { checkProbability, type KeepRule, keepRule } from '../contract.js';
import { Got, InvalidArgumentError } from '../errors.js';
import type { Dtype } from '../kernels/shaders.js';
import { optionNames } from '../options.js';
import type { DropoutContext, Runtime } from '../runtime/context.js';
import { bindingBytes, dtypeBytes } from '../runtime/units.js';
import {
  beginOp,
  checkOpState,
  drawRandom,
  type OpOptions,
  type OpState,
  RANDOM_OPTION_NAMES,
  type RandomState,
  type RecordOptions,
  resolveCount,
} from './common.js';
import { broadcastTable, checkShape, type NoiseShape, resolveNoiseShape, type Shape, shapeSize } from './shape.js';

/** The options of the structured and variant ops ({@link structuredDropout}, {@link gaussianDropout},
 * {@link alphaDropout}, ...); each op's own options extend these. */
export interface StructuredOptions extends OpOptions {
  /** Drop probability (the op's rate): in [0, 1], or [0, 1) for Gaussian and Alpha dropout. */
  p: number;
  /** Shape of x. `structuredDropout` and the Gaussian and Alpha ops default to one dimension
   * holding the whole buffer; the ops with a mask layout of their own (spatial, drop-path,
   * variational, fused bias) and `structuredKeepMask` require it. */
  shape?: Shape;
  /** Mask shape: the input's with some dimensions 1 (default: the input's, element-wise). */
  noiseShape?: NoiseShape;
  /** Output buffer (default: a new pooled buffer). Must not be an input buffer. */
  out?: GPUBuffer;
}

/** The names every structured op shares; each op's list adds its own. */
export const COMMON_OPTION_NAMES = {
  p: true,
  shape: true,
  dtype: true,
  out: true,
  training: true,
  ...RANDOM_OPTION_NAMES,
  encoder: true,
} as const;
export const STRUCTURED_OPTIONS = optionNames<StructuredOptions>({ ...COMMON_OPTION_NAMES, noiseShape: true });

/** Which forward a {@link StructuredState} came from: 'dropout' (every masked op: structured,
 * spatial, drop-path, variational, DropConnect, the keep-mask), 'gaussian', 'alpha' or 'bias-residual'.
 * A backward refuses the state of another kind. */
export type StructuredOp = 'dropout' | 'gaussian' | 'alpha' | 'bias-residual';

/** Everything a backward pass needs to regenerate the forward's mask; nothing else is kept. */
export interface StructuredState extends OpState {
  /** The kind of forward that made this state. */
  op: StructuredOp;
  /** The input's shape (one dimension holding the whole buffer when none was given). */
  shape: number[];
  /** The mask's shape, in full: the input's with 1 where one decision is shared. */
  noiseShape: number[];
  /** Multiplier of kept values: 1 / (1 - p), or 1 for DropPath without scale_by_keep. */
  scale: number;
}

/** What the structured and variant ops return. */
export interface StructuredResult {
  /** The output: `out` when given, else a pooled buffer (`ctx.release` it when done). An identity
   * call (p = 0 or eval mode) of an op that maps x alone, given no `out`, returns `x` itself. */
  output: GPUBuffer;
  /** What the op's backward needs to regenerate the mask. */
  state: StructuredState;
}

/** The options of the structured and variant backward ops. */
export interface BackwardOptions extends RecordOptions {
  /** Output buffer for the gradient (default: a new pooled buffer). Must not be dy. */
  out?: GPUBuffer;
}

const BACKWARD_OPTIONS = optionNames<BackwardOptions>({ out: true, encoder: true });

/** A call's shapes and sizes, checked: what the launch needs besides the kernel and buffers. */
export interface Prepared {
  shape: number[];
  noiseShape: number[];
  count: number;
  dtype: Dtype;
  bytes: number;
  table: Uint32Array;
}

/** Validates the shapes and buffers of a call (after beginOp, which checked the rest but p); throws before any work. */
export function prepare(
  rt: Runtime,
  x: unknown,
  opts: { shape?: Shape; noiseShape?: NoiseShape; out?: GPUBuffer },
  dtype: Dtype,
  xName: string,
  shapeRequired = false,
  outName = 'out',
): Prepared {
  if (shapeRequired && opts.shape === undefined) throw new InvalidArgumentError('shape', 'the shape of x');
  const shape = opts.shape !== undefined ? checkShape(opts.shape) : [wholeBufferCount(x, dtype, xName)];
  const prep = prepared(shape, resolveNoiseShape(shape, opts.noiseShape), dtype);
  rt.transfers.checkStorage(x, xName, prep.bytes);
  if (opts.out !== undefined) {
    rt.transfers.checkStorage(opts.out, outName, prep.bytes);
    if (opts.out === x) throw new InvalidArgumentError(outName, `a buffer other than ${xName} (this op does not run in place)`);
  }
  return prep;
}

/** The Prepared of checked shapes. */
export function prepared(shape: number[], noiseShape: number[], dtype: Dtype): Prepared {
  const count = shapeSize(shape);
  return { shape, noiseShape, count, dtype, bytes: bindingBytes('data', dtype, count), table: broadcastTable(shape, noiseShape) };
}

/** Without a shape, the element count is x's size: past the contract's 2^32 - 1 elements that is
 * x's fault (the caller passed no shape to name). */
function wholeBufferCount(x: unknown, dtype: Dtype, xName: string): number {
  const count = resolveCount(undefined, x, dtypeBytes(dtype), xName);
  if (count > 0xffffffff) {
    throw new InvalidArgumentError(
      xName,
      "a buffer of at most 2^32 - 1 elements (the mask contract's limit) when no shape is given; pass shape to use a part of it",
      new Got(`${(x as GPUBuffer).size} bytes`),
    );
  }
  return count;
}

/** The state a structured forward returns. */
export function structuredState(
  op: StructuredOp,
  rand: RandomState,
  p: number,
  prep: Prepared,
  training: boolean,
  scale: number,
): StructuredState {
  return {
    op,
    seed: rand.seed,
    stream: rand.stream,
    offset: rand.offset,
    p,
    shape: prep.shape,
    noiseShape: prep.noiseShape,
    dtype: prep.dtype,
    training,
    scale,
  };
}

/** Checks a state returned by one of the forward `ops`: the shared fields, then the shapes and scale. */
export function checkState(state: unknown, ops: readonly StructuredOp[]): asserts state is StructuredState {
  const s = state as StructuredState;
  checkOpState(state, `the state returned by the forward op (${ops.join(' or ')})`, ops.includes(s?.op));
  checkShape(s.shape, 'state.shape');
  resolveNoiseShape(s.shape, s.noiseShape, 'state.noiseShape');
  if (typeof s.scale !== 'number' || !Number.isFinite(s.scale)) throw new InvalidArgumentError('state.scale', 'a finite number', s.scale);
}

/** The Prepared of a backward pass: the forward's shapes, checked against dy and the output buffer. */
export function prepareBackward(rt: Runtime, dy: unknown, state: StructuredState, out: GPUBuffer | undefined, outName = 'out'): Prepared {
  return prepare(rt, dy, { shape: state.shape, noiseShape: state.noiseShape, out }, state.dtype, 'dy', false, outName);
}

/** The prologue of a backward pass with BackwardOptions: beginOp, the state of one of `ops`, the Prepared. */
export function beginBackward(
  ctx: DropoutContext,
  dy: unknown,
  state: StructuredState,
  opts: BackwardOptions,
  ops: readonly StructuredOp[],
): { prep: Prepared; rt: Runtime } {
  const { rt } = beginOp(ctx, opts, 'an object with out or encoder', BACKWARD_OPTIONS);
  checkState(state, ops);
  return { prep: prepareBackward(rt, dy, state, opts.out), rt };
}

/** p in [0, 1): the rates Gaussian and Alpha dropout are defined for. */
export function checkOpenRate(p: number, argument = 'p'): KeepRule {
  checkProbability(p, argument);
  const rule = keepRule(p);
  if (rule.kind === 'zeros') throw new InvalidArgumentError(argument, 'a number in [0, 1) (p = 1 leaves no signal to rescale)', p);
  return rule;
}

/** Validates a forward of an op whose rate must be below 1 (Gaussian, Alpha) and draws its stream. */
export function beginOpenRateOp(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions, op: 'gaussian' | 'alpha') {
  const { dtype, training, rt } = beginOp(ctx, opts, 'an object with at least p', STRUCTURED_OPTIONS);
  const rule = checkOpenRate(opts.p);
  const prep = prepare(rt, x, opts, dtype, 'x');
  const state = structuredState(op, drawRandom(ctx, opts, training), opts.p, prep, training, 1);
  return { rule, prep, training, state, rt };
}

/** Validates the backward of a Gaussian or Alpha forward; the rule is the identity in eval mode. */
export function beginOpenRateBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: BackwardOptions,
  op: 'gaussian' | 'alpha',
) {
  const { prep, rt } = beginBackward(ctx, dy, state, opts, [op]);
  const rule = checkOpenRate(state.p, 'state.p');
  return { rule: state.training ? rule : ({ kind: 'identity' } as KeepRule), prep, rt, input: { buffer: dy, argument: 'dy' } };
}
