// Gaussian dropout (Keras GaussianDropout): multiplicative normal noise, y = x * (1 + sigma z).
import type { KeepRule, RandomState } from '../contract.js';
import { structuredKernels } from '../kernels/structured.js';
import type { DropoutContext, Runtime } from '../runtime/context.js';
import type { KernelCall } from '../runtime/dispatch.js';
import type { BoundBuffer } from '../runtime/units.js';
import { withOutput } from './common.js';
import { applyMask, over } from './launch.js';
import {
  type BackwardOptions,
  beginOpenRateBackward,
  beginOpenRateOp,
  checkOpenRate,
  type Prepared,
  type StructuredOptions,
  type StructuredResult,
  type StructuredState,
} from './prepare.js';

/** sigma = sqrt(p / (1 - p)): the noise's standard deviation, so the variance matches dropout's.
 * Throws {@link InvalidArgumentError} unless `p` is in [0, 1). */
export function gaussianSigma(p: number): number {
  checkOpenRate(p);
  return Math.sqrt(p / (1 - p));
}

/**
 * Gaussian dropout (Keras `GaussianDropout`, Srivastava et al. 2014): y = x * (1 + sigma z), z the
 * contract's standard normal of the element's mask index (Box-Muller on word pairs), sigma =
 * {@link gaussianSigma}(p), `p` in [0, 1). `noiseShape` shares one z across broadcast dimensions.
 * Does not run in place. Backward: {@link gaussianDropoutBackward}. Rejects with
 * {@link InvalidArgumentError} for a bad buffer, shape or option (p = 1 included).
 */
export async function gaussianDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions): Promise<StructuredResult> {
  const { rule, prep, training, state, rt } = beginOpenRateOp(ctx, x, opts, 'gaussian');
  const output = await applyGaussian(
    rt,
    prep,
    { buffer: x, argument: 'x' },
    opts.out,
    training ? rule : { kind: 'identity' },
    state,
    opts.encoder,
  );
  return { output, state };
}

/** dx = dy * (1 + sigma z) with the forward's z, regenerated. */
export async function gaussianDropoutBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: BackwardOptions = {},
): Promise<GPUBuffer> {
  const { rule, prep, rt, input } = beginOpenRateBackward(ctx, dy, state, opts, 'gaussian');
  return applyGaussian(rt, prep, input, opts.out, rule, state, opts.encoder);
}

function applyGaussian(
  rt: Runtime,
  prep: Prepared,
  input: BoundBuffer,
  out: GPUBuffer | undefined,
  rule: KeepRule,
  state: StructuredState,
  encoder?: GPUCommandEncoder,
): Promise<GPUBuffer> {
  if (rule.kind !== 'mask') return applyMask(rt, prep, input, out, rule, state, 1, encoder);
  return withOutput(rt, out, prep.bytes, 'gaussian dropout output', (output) =>
    rt.dispatcher.dispatch(gaussianCall(prep, input, { buffer: output, argument: 'out' }, state.p, state, encoder)),
  );
}

/** The call of y = x * (1 + sigma z) at rate `p` (in (0, 1)), z the normals of `rand`'s mask. */
export function gaussianCall(
  prep: Prepared,
  input: BoundBuffer,
  target: BoundBuffer,
  p: number,
  rand: RandomState,
  encoder?: GPUCommandEncoder,
): KernelCall {
  return over(prep, {
    kernel: structuredKernels.gaussian,
    buffers: { x: input, out: target },
    rand,
    uniforms: { sigma: gaussianSigma(p) },
    encoder,
  });
}
