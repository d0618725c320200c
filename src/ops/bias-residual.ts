// The fused bias + dropout + residual add (out = residual + dropout(x + bias)) and its backward,
// whose bias gradient is a two-stage column reduction.
import { type KeepRule, keepRule } from '../contract.js';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import type { Dtype } from '../kernels/shaders.js';
import { structuredKernels } from '../kernels/structured.js';
import { optionNames } from '../options.js';
import type { DropoutContext, Runtime } from '../runtime/context.js';
import type { KernelCall } from '../runtime/dispatch.js';
import { bindingBytes } from '../runtime/units.js';
import { beginOp, drawRandom, type RecordOptions, refundOnFailure, withOutput } from './common.js';
import { copyInto, maskCall, over } from './launch.js';
import {
  checkState,
  prepare,
  prepareBackward,
  STRUCTURED_OPTIONS,
  type StructuredOptions,
  type StructuredResult,
  type StructuredState,
  structuredState,
} from './prepare.js';
import type { Shape } from './shape.js';

/** The options of {@link biasDropoutResidual}: `shape` is required. */
export interface BiasDropoutResidualOptions extends StructuredOptions {
  /** Shape of x and residual, (..., C); bias holds C elements. */
  shape: Shape;
}

/** Rows per block of the first bias-gradient stage. */
const BIAS_GRAD_BLOCK_ROWS = 128;

/**
 * out = residual + dropout(x + bias) in one pass (the transformer block pattern; Megatron's
 * bias_dropout_add), f32 or f16 with f32 arithmetic. In eval mode: out = residual + x + bias.
 * x, bias and residual must be distinct buffers, and `out` none of them.
 * Backward: {@link biasDropoutResidualBackward}.
 *
 * @param bias - C elements, C the last extent of `opts.shape`.
 * @param residual - The same shape as x.
 * @throws {@link InvalidArgumentError} (rejects, before anything is recorded) for a
 *   bad buffer, shape or option, naming it.
 */
export async function biasDropoutResidual(
  ctx: DropoutContext,
  x: GPUBuffer,
  bias: GPUBuffer,
  residual: GPUBuffer,
  opts: BiasDropoutResidualOptions,
): Promise<StructuredResult> {
  const { dtype, training, rt } = beginOp(ctx, opts, 'an object with p and shape', STRUCTURED_OPTIONS);
  const rule = keepRule(opts.p);
  const prep = prepare(rt, x, opts, dtype, 'x', true);
  if (prep.shape.length < 1) throw new InvalidArgumentError('shape', 'at least 1 dimension (..., C)', prep.shape);
  const cols = prep.shape[prep.shape.length - 1]!;
  rt.transfers.checkStorage(bias, 'bias', bindingBytes('data', prep.dtype, Math.max(cols, 1)));
  rt.transfers.checkStorage(residual, 'residual', prep.bytes);
  if (residual === x) throw new InvalidArgumentError('residual', 'a buffer other than x (x, bias and residual must be distinct)');
  if (bias === x || bias === residual)
    throw new InvalidArgumentError('bias', 'a buffer other than x and residual (x, bias and residual must be distinct)');
  if (opts.out !== undefined && (opts.out === bias || opts.out === residual)) {
    throw new InvalidArgumentError('out', 'a buffer other than x, bias and residual (this op does not run in place)');
  }
  const rand = drawRandom(ctx, opts, training);
  const effective: KeepRule = training ? rule : { kind: 'identity' };
  const scale = effective.kind === 'mask' ? effective.scale : 1;
  const state = structuredState('bias-residual', rand, opts.p, prep, training, scale);
  const threshold = effective.kind === 'mask' ? effective.threshold : 0;
  const output = await withOutput(rt, opts.out, prep.bytes, 'biasDropoutResidual output', (out) => {
    const buffers = {
      x: { buffer: x, argument: 'x' },
      out: { buffer: out, argument: 'out' },
      residual: { buffer: residual, argument: 'residual' },
      bias: { buffer: bias, argument: 'bias' },
    };
    if (effective.kind === 'zeros') return copyInto(rt, prep, buffers.residual, out, opts.encoder);
    return rt.dispatcher.dispatch(
      over(prep, {
        kernel: structuredKernels.biasResidual,
        buffers,
        rand,
        threshold,
        scale,
        uniforms: { columns: cols },
        constants: { COLUMNS: cols },
        encoder: opts.encoder,
      }),
    );
  });
  return { output, state };
}

/** What {@link biasDropoutResidualBackward} returns. */
export interface BiasDropoutResidualGrads {
  /** dy * keep / (1 - p). */
  dx: GPUBuffer;
  /** Sum of dx over every dimension but the last (C elements). */
  dbias: GPUBuffer;
  /** dy itself (the same buffer): the residual's gradient. */
  dresidual: GPUBuffer;
}

const BIAS_BACKWARD_OPTIONS = optionNames<RecordOptions & { outX?: GPUBuffer; outBias?: GPUBuffer }>({
  outX: true,
  outBias: true,
  encoder: true,
});

/**
 * Gradients of biasDropoutResidual for x, bias and residual, the mask regenerated from the state.
 * `opts.outX` and `opts.outBias` are the buffers for dx and dbias (default: new pooled buffers).
 * The bias reduction binds dx whole.
 *
 * @throws {@link InvalidArgumentError} (rejects) for a bad buffer, option or state;
 *   {@link UnsupportedError} when dx is larger than the device's `maxStorageBufferBindingSize`.
 */
export async function biasDropoutResidualBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: RecordOptions & { outX?: GPUBuffer; outBias?: GPUBuffer } = {},
): Promise<BiasDropoutResidualGrads> {
  const { rt } = beginOp(ctx, opts, 'an object with outX, outBias or encoder', BIAS_BACKWARD_OPTIONS);
  checkState(state, ['bias-residual']);
  const prep = prepareBackward(rt, dy, state, opts.outX, 'outX');
  const cols = prep.shape[prep.shape.length - 1] ?? 1;
  const rows = cols === 0 ? 0 : prep.count / cols;
  const biasBytes = bindingBytes('data', prep.dtype, Math.max(cols, 1));
  if (opts.outBias !== undefined) {
    rt.transfers.checkStorage(opts.outBias, 'outBias', biasBytes);
    if (opts.outBias === dy || opts.outBias === opts.outX) throw new InvalidArgumentError('outBias', 'a buffer other than dy and outX');
  }
  // The reduction binds dx whole.
  if (prep.bytes > ctx.device.limits.maxStorageBufferBindingSize) {
    throw new UnsupportedError(
      `state.shape: the bias gradient reads dx in one binding; ${prep.bytes} bytes exceed this device's maxStorageBufferBindingSize`,
    );
  }
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  // dx, then the two reduction stages that read it, in one dispatch: one submission (or one
  // caller's encoder, checked before anything is recorded), so a refused call writes nothing,
  // outX included, and gives back every buffer it took.
  const dxIsDy = rule.kind === 'identity' && opts.outX === undefined;
  const dx = dxIsDy ? dy : (opts.outX ?? rt.transfers.acquire(prep.bytes, 'bias-residual dx'));
  const dbias = opts.outBias ?? rt.transfers.acquire(biasBytes, 'bias grad');
  const gradient = dxIsDy
    ? []
    : [maskCall(prep, { buffer: dy, argument: 'dy' }, { buffer: dx, argument: 'outX' }, rule, state, state.scale, opts.encoder)];
  const reduction = reduceRows(rt, dx, dbias, rows, cols, prep.dtype, opts.encoder);
  const taken = [dxIsDy || opts.outX !== undefined ? undefined : dx, opts.outBias === undefined ? dbias : undefined, reduction.partial];
  await refundOnFailure(rt, taken, () => rt.dispatcher.dispatch([...gradient, ...reduction.calls]));
  if (reduction.partial) rt.transfers.retire(reduction.partial, opts.encoder);
  return { dx, dbias, dresidual: dy };
}

/** The dispatches of dbias[c] = sum over r of dx[r * cols + c]: blocks of rows summed in f32 into
 * `partial` (a temporary taken from the pool), then the blocks. None for cols = 0. */
function reduceRows(
  rt: Runtime,
  dx: GPUBuffer,
  dbias: GPUBuffer,
  rows: number,
  cols: number,
  dtype: Dtype,
  encoder?: GPUCommandEncoder,
): { calls: KernelCall[]; partial?: GPUBuffer } {
  if (cols === 0) return { calls: [] };
  const perBlock = BIAS_GRAD_BLOCK_ROWS;
  const blocks = Math.max(1, Math.ceil(rows / perBlock));
  const uniforms = { cols, rows, per_block: perBlock };
  const partial = rt.transfers.acquire(blocks * cols * 4, 'bias grad partial sums');
  const partialBound = { buffer: partial, argument: 'partial' };
  // The kernels' uniforms carry the shape: one invocation per partial sum, then one per column.
  return {
    calls: [
      {
        kernel: structuredKernels.biasGradPartial,
        dtype,
        count: blocks * cols,
        buffers: { dx: { buffer: dx, argument: 'dx' }, partial: partialBound },
        uniforms,
        encoder,
      },
      {
        kernel: structuredKernels.biasGradFinal,
        dtype,
        count: cols,
        buffers: { partial: partialBound, out: { buffer: dbias, argument: 'outBias' } },
        uniforms,
        encoder,
      },
    ],
    partial,
  };
}
