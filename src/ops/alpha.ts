// Alpha dropout for SELU networks: dropped units take SELU's negative saturation, then an affine
// map keeps zero mean and unit variance.

import { structuredKernels } from '../kernels/structured.js';
import type { DropoutContext } from '../runtime/context.js';
import { withOutput } from './common.js';
import { applyMask, over } from './launch.js';
import {
  type BackwardOptions,
  beginOpenRateBackward,
  beginOpenRateOp,
  checkOpenRate,
  type StructuredOptions,
  type StructuredResult,
  type StructuredState,
} from './prepare.js';

/** SELU's scale lambda (Klambauer et al. 2017). */
export const SELU_LAMBDA = 1.0507009873554805;
/** SELU's alpha (Klambauer et al. 2017): SELU saturates at -lambda alpha for large negative inputs. */
export const SELU_ALPHA = 1.6732632423543772;

/**
 * Keras AlphaDropout's coefficients for rate p, keep probability q = 1 - p: dropped units take
 * alpha' = -lambda alpha, then y = a x + b with a = (q + alpha'^2 q p)^-1/2 and b = -a alpha' p,
 * which keeps zero mean and unit variance.
 * @throws {@link InvalidArgumentError} unless `p` is in [0, 1).
 */
export function alphaDropoutCoefficients(p: number): {
  /** The affine map's scale. */
  a: number;
  /** The affine map's shift. */
  b: number;
  /** The value dropped units take before the affine map: -SELU_LAMBDA * SELU_ALPHA. */
  alphaPrime: number;
} {
  checkOpenRate(p);
  const alphaPrime = -SELU_LAMBDA * SELU_ALPHA;
  const q = 1 - p;
  const a = (q + alphaPrime * alphaPrime * q * p) ** -0.5;
  return { a, b: -a * alphaPrime * p, alphaPrime };
}

/** Alpha dropout for SELU networks (Keras `AlphaDropout`, PyTorch `nn.AlphaDropout`):
 * y = a (keep ? x : alpha') + b, with the coefficients of {@link alphaDropoutCoefficients}; `p` in [0, 1).
 * Does not run in place. Backward: {@link alphaDropoutBackward}. Rejects with
 * {@link InvalidArgumentError} for a bad buffer, shape or option (p = 1 included). */
export async function alphaDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions): Promise<StructuredResult> {
  const { rule, prep, training, state, rt } = beginOpenRateOp(ctx, x, opts, 'alpha');
  const input = { buffer: x, argument: 'x' };
  if (!training || rule.kind !== 'mask')
    return { output: await applyMask(rt, prep, input, opts.out, { kind: 'identity' }, state, 1, opts.encoder), state };
  const { a, b, alphaPrime } = alphaDropoutCoefficients(opts.p);
  const uniforms = { a, b, alpha_prime: alphaPrime };
  const output = await withOutput(rt, opts.out, prep.bytes, 'alpha dropout output', (out) =>
    rt.dispatcher.dispatch(
      over(prep, {
        kernel: structuredKernels.alpha,
        buffers: { x: input, out: { buffer: out, argument: 'out' } },
        rand: state,
        threshold: rule.threshold,
        uniforms,
        encoder: opts.encoder,
      }),
    ),
  );
  return { output, state };
}

/** dx = keep ? dy * a : 0 with the forward's mask, regenerated. */
export async function alphaDropoutBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: BackwardOptions = {},
): Promise<GPUBuffer> {
  const { rule, prep, rt, input } = beginOpenRateBackward(ctx, dy, state, opts, 'alpha');
  if (rule.kind !== 'mask') return applyMask(rt, prep, input, opts.out, { kind: 'identity' }, state, 1, opts.encoder);
  const { a } = alphaDropoutCoefficients(state.p);
  return withOutput(rt, opts.out, prep.bytes, 'alpha dropout grad', (out) =>
    rt.dispatcher.dispatch(
      over(prep, {
        kernel: structuredKernels.alphaBackward,
        buffers: { x: input, out: { buffer: out, argument: 'out' } },
        rand: state,
        threshold: rule.threshold,
        uniforms: { a },
        encoder: opts.encoder,
      }),
    ),
  );
}
