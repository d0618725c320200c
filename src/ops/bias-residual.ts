// The fused bias + dropout + residual add (out = residual + dropout(x + bias)) and its backward,
// whose bias gradient is a two-stage column reduction.
import { keepRule, type KeepRule } from '../contract.js';
import { bindingBytes, type DispatchCall, type DropoutContext } from '../context.js';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import { structuredKernels } from '../kernels/structured.js';
import type { Dtype } from '../kernels/shaders.js';
import { optionNames } from '../options.js';
import { beginOp, drawRandom, refundOnFailure, type RecordOptions } from './common.js';
import { copyInto, launch, launchCalls, maskLaunch } from './launch.js';
import { checkState, prepare, prepareBackward, STRUCTURED_OPTIONS, structuredState, type Prepared, type StructuredOptions, type StructuredResult, type StructuredState } from './prepare.js';
import type { Shape } from './shape.js';

export interface BiasDropoutResidualOptions extends StructuredOptions {
  /** Shape of x and residual, (..., C); bias holds C elements. */
  shape: Shape;
}

/** Rows per block of the first bias-gradient stage. */
const BIAS_GRAD_BLOCK_ROWS = 128;

/**
 * out = residual + dropout(x + bias) in one pass (the transformer block pattern; Megatron's
 * bias_dropout_add), f32 or f16 with f32 arithmetic. In eval mode: out = residual + x + bias.
 */
export async function biasDropoutResidual(ctx: DropoutContext, x: GPUBuffer, bias: GPUBuffer, residual: GPUBuffer, opts: BiasDropoutResidualOptions): Promise<StructuredResult> {
  const { dtype, training } = beginOp(ctx, opts, 'an object with p and shape', STRUCTURED_OPTIONS);
  const rule = keepRule(opts.p);
  const prep = prepare(ctx, x, opts, dtype, 'x', true);
  if (prep.shape.length < 1) throw new InvalidArgumentError('shape', 'at least 1 dimension (..., C)', prep.shape);
  const cols = prep.shape[prep.shape.length - 1]!;
  ctx.checkStorage(bias, 'bias', bindingBytes('data', prep.dtype, Math.max(cols, 1)));
  ctx.checkStorage(residual, 'residual', prep.bytes);
  if (residual === x) throw new InvalidArgumentError('residual', 'a buffer other than x (x, bias and residual must be distinct)');
  if (bias === x || bias === residual) throw new InvalidArgumentError('bias', 'a buffer other than x and residual (x, bias and residual must be distinct)');
  if (opts.out !== undefined && (opts.out === bias || opts.out === residual)) {
    throw new InvalidArgumentError('out', 'a buffer other than x, bias and residual (this op does not run in place)');
  }
  const rand = drawRandom(ctx, opts, training);
  const effective: KeepRule = training ? rule : { kind: 'identity' };
  const scale = effective.kind === 'mask' ? effective.scale : 1;
  const state = structuredState('bias-residual', rand, opts.p, prep, training, scale);
  const output = opts.out ?? ctx.acquire(prep.bytes, 'biasDropoutResidual output');
  const buffers = {
    x: { buffer: x, argument: 'x' },
    out: { buffer: output, argument: 'out' },
    residual: { buffer: residual, argument: 'residual' },
    bias: { buffer: bias, argument: 'bias' },
  };
  const threshold = effective.kind === 'mask' ? effective.threshold : 0;
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () =>
    effective.kind === 'zeros'
      ? copyInto(ctx, prep, buffers.residual, output, opts.encoder)
      : launch(ctx, prep, { kernel: structuredKernels.biasResidual, buffers, rand, threshold, scale, uniforms: { columns: cols }, constants: { COLUMNS: cols }, encoder: opts.encoder }),
  );
  return { output, state };
}

export interface BiasDropoutResidualGrads {
  /** dy * keep / (1 - p). */
  dx: GPUBuffer;
  /** Sum of dx over every dimension but the last (C elements). */
  dbias: GPUBuffer;
  /** dy itself (the same buffer): the residual's gradient. */
  dresidual: GPUBuffer;
}

const BIAS_BACKWARD_OPTIONS = optionNames<RecordOptions & { outX?: GPUBuffer; outBias?: GPUBuffer }>({ outX: true, outBias: true, encoder: true });

/** Gradients of biasDropoutResidual for x, bias and residual, the mask regenerated from the state. */
export async function biasDropoutResidualBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: RecordOptions & { outX?: GPUBuffer; outBias?: GPUBuffer } = {},
): Promise<BiasDropoutResidualGrads> {
  beginOp(ctx, opts, 'an object with outX, outBias or encoder', BIAS_BACKWARD_OPTIONS);
  checkState(state, ['bias-residual']);
  const prep = prepareBackward(ctx, dy, state, opts.outX, 'outX');
  const cols = prep.shape[prep.shape.length - 1] ?? 1;
  const rows = cols === 0 ? 0 : prep.count / cols;
  const biasBytes = bindingBytes('data', prep.dtype, Math.max(cols, 1));
  if (opts.outBias !== undefined) {
    ctx.checkStorage(opts.outBias, 'outBias', biasBytes);
    if (opts.outBias === dy || opts.outBias === opts.outX) throw new InvalidArgumentError('outBias', 'a buffer other than dy and outX');
  }
  // The reduction binds dx whole.
  if (prep.bytes > ctx.device.limits.maxStorageBufferBindingSize) {
    throw new UnsupportedError(`state.shape: the bias gradient reads dx in one binding; ${prep.bytes} bytes exceed this device's maxStorageBufferBindingSize`);
  }
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  // dx, then the two reduction stages that read it, in one dispatchAll: one submission (or one
  // caller's encoder, checked before anything is recorded), so a refused call writes nothing,
  // outX included, and gives back every buffer it took.
  const dxIsDy = rule.kind === 'identity' && opts.outX === undefined;
  const dx = dxIsDy ? dy : (opts.outX ?? ctx.acquire(prep.bytes, 'bias-residual dx'));
  const dbias = opts.outBias ?? ctx.acquire(biasBytes, 'bias grad');
  const gradient = dxIsDy ? undefined : launchCalls(ctx, prep, maskLaunch({ buffer: dy, argument: 'dy' }, { buffer: dx, argument: 'outX' }, rule, state, state.scale, opts.encoder));
  const reduction = reduceRows(ctx, dx, dbias, rows, cols, prep.dtype, opts.encoder);
  const taken = [dxIsDy || opts.outX !== undefined ? undefined : dx, opts.outBias === undefined ? dbias : undefined, gradient?.table, reduction.partial];
  await refundOnFailure(ctx, taken, () => ctx.dispatchAll([...(gradient?.calls ?? []), ...reduction.calls]));
  for (const temporary of [gradient?.table, reduction.partial]) if (temporary) ctx.retire(temporary, opts.encoder);
  return { dx, dbias, dresidual: dy };
}

/** The dispatches of dbias[c] = sum over r of dx[r * cols + c]: blocks of rows summed in f32 into
 * `partial` (a temporary taken from the pool), then the blocks. None for cols = 0. */
function reduceRows(ctx: DropoutContext, dx: GPUBuffer, dbias: GPUBuffer, rows: number, cols: number, dtype: Dtype, encoder?: GPUCommandEncoder): { calls: DispatchCall[]; partial?: GPUBuffer } {
  if (cols === 0) return { calls: [] };
  const perBlock = BIAS_GRAD_BLOCK_ROWS;
  const blocks = Math.max(1, Math.ceil(rows / perBlock));
  const uniforms = { cols, rows, per_block: perBlock };
  const partial = ctx.acquire(blocks * cols * 4, 'bias grad partial sums');
  // No broadcast table: the kernels' uniforms carry the shape.
  const stage = (count: number): Prepared => ({ shape: [count], noiseShape: [count], count, dtype, bytes: 0, table: new Uint32Array(0) });
  const partialSums = launchCalls(ctx, stage(blocks * cols), { kernel: structuredKernels.biasGradPartial, buffers: { dx: { buffer: dx, argument: 'dx' }, partial: { buffer: partial, argument: 'partial' } }, uniforms, encoder });
  const sums = launchCalls(ctx, stage(cols), { kernel: structuredKernels.biasGradFinal, buffers: { partial: { buffer: partial, argument: 'partial' }, out: { buffer: dbias, argument: 'outBias' } }, uniforms, encoder });
  return { calls: [...partialSums.calls, ...sums.calls], partial };
}
