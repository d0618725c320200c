// Gaussian dropout (Keras GaussianDropout): multiplicative normal noise, y = x * (1 + sigma z).
import type { KeepRule } from '../contract.js';
import type { BoundBuffer, DropoutContext } from '../context.js';
import { structuredKernels } from '../kernels/structured.js';
import { refundOnFailure } from './common.js';
import { applyMask, launch, type Launch } from './launch.js';
import {
  beginOpenRateBackward, beginOpenRateOp, checkOpenRate,
  type BackwardOptions, type Prepared, type StructuredOptions, type StructuredResult, type StructuredState,
} from './prepare.js';

/** sigma = sqrt(p / (1 - p)): the noise's standard deviation, so the variance matches dropout's. */
export function gaussianSigma(p: number): number {
  checkOpenRate(p);
  return Math.sqrt(p / (1 - p));
}

/**
 * Gaussian dropout (Keras `GaussianDropout`, Srivastava et al. 2014): y = x * (1 + sigma z), z the
 * contract's standard normal of the element's mask index (Box-Muller on word pairs).
 */
export async function gaussianDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions): Promise<StructuredResult> {
  const { rule, prep, training, state } = beginOpenRateOp(ctx, x, opts, 'gaussian');
  const output = await applyGaussian(ctx, prep, { buffer: x, argument: 'x' }, opts.out, training ? rule : { kind: 'identity' }, state, opts.encoder);
  return { output, state };
}

/** dx = dy * (1 + sigma z) with the forward's z, regenerated. */
export async function gaussianDropoutBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
  const { rule, prep, input } = beginOpenRateBackward(ctx, dy, state, opts, 'gaussian');
  return applyGaussian(ctx, prep, input, opts.out, rule, state, opts.encoder);
}

async function applyGaussian(ctx: DropoutContext, prep: Prepared, input: BoundBuffer, out: GPUBuffer | undefined, rule: KeepRule, state: StructuredState, encoder?: GPUCommandEncoder): Promise<GPUBuffer> {
  if (rule.kind !== 'mask') return applyMask(ctx, prep, input, out, rule, state, 1, encoder);
  const output = out ?? ctx.acquire(prep.bytes, 'gaussian dropout output');
  const l: Launch = { kernel: structuredKernels.gaussian, buffers: { x: input, out: { buffer: output, argument: 'out' } }, rand: state, uniforms: { sigma: gaussianSigma(state.p) }, encoder };
  await refundOnFailure(ctx, [out === undefined ? output : undefined], () => launch(ctx, prep, l));
  return output;
}
