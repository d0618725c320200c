// Gaussian dropout (multiplicative normal noise) and the open-rate prologue it shares with Alpha
// dropout (p in [0, 1)).
import { checkProbability, keepRule, type KeepRule } from '../contract.js';
import type { BoundBuffer, DropoutContext } from '../context.js';
import { InvalidArgumentError } from '../errors.js';
import { structuredKernels } from '../kernels/structured.js';
import { refundOnFailure } from './common.js';
import {
  applyMask, checkOptions, checkState, launch, prepare, prepareBackward, randomFor, STRUCTURED_OPTIONS,
  type BackwardOptions, type Launch, type Prepared, type StructuredOptions, type StructuredResult, type StructuredState,
} from './launch.js';

/** p in [0, 1): the rates Gaussian and Alpha dropout are defined for. */
export function checkOpenRate(p: number, argument = 'p'): KeepRule {
  checkProbability(p, argument);
  const rule = keepRule(p);
  if (rule.kind === 'zeros') throw new InvalidArgumentError(argument, 'a number in [0, 1) (p = 1 leaves no signal to rescale)', p);
  return rule;
}

/** sigma = sqrt(p / (1 - p)): the noise's standard deviation, so the variance matches dropout's. */
export function gaussianSigma(p: number): number {
  checkOpenRate(p);
  return Math.sqrt(p / (1 - p));
}

/** Validates a forward of an op whose rate must be below 1 (Gaussian, Alpha) and draws its stream. */
export function beginOpenRateOp(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions, op: 'gaussian' | 'alpha') {
  ctx.checkAlive();
  checkOptions(opts, 'at least p', STRUCTURED_OPTIONS);
  const rule = checkOpenRate(opts.p);
  const prep = prepare(ctx, x, opts, 'x');
  const training = opts.training ?? true;
  const rand = randomFor(ctx, opts, training);
  const state: StructuredState = { op, ...rand, p: opts.p, shape: prep.shape, noiseShape: prep.noiseShape, dtype: prep.dtype, training, scale: 1 };
  return { rule, prep, training, state };
}

/** Validates the backward of a Gaussian or Alpha forward; the rule is the identity in eval mode. */
export function beginOpenRateBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions, op: 'gaussian' | 'alpha') {
  ctx.checkAlive();
  checkState(state, [op]);
  const rule = checkOpenRate(state.p, 'state.p');
  const prep = prepareBackward(ctx, dy, state, opts);
  return { rule: state.training ? rule : ({ kind: 'identity' } as KeepRule), prep, input: { buffer: dy, argument: 'dy' } };
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
