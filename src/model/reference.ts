// CPU reference of the model kit and of the MC statistics, in f64, on the same mask contract as
// the GPU (each hidden layer's dropout draws referenceKeepMask words of (seed, stream + t, site offset)).
import { keepRule, toU64, type U64 } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import { checkNumbers, checkPositive } from '../reference/checks.js';
import { referenceKeepMask } from '../reference/dropout.js';
import { isPositiveInteger } from './matrix.js';
import type { LossKind } from './mlp-options.js';
import { siteOffset } from './sample.js';

/** An MLP for {@link referenceMlpForward}: its widths, parameters and dropout rate. */
export interface ReferenceMlp {
  /** Layer widths [inputs, hidden..., outputs], as `MLPOptions.sizes`. */
  sizes: readonly number[];
  /** Flat parameters in the MLP's layout: per layer W (inputs x outputs, row-major) then b. */
  parameters: ArrayLike<number>;
  /** Drop probability after each hidden layer (default 0). */
  dropout?: number;
}

/** Randomness of one sample: dropout site s draws mask indices siteOffset(s) + i of (seed, stream). */
export interface ReferenceSample {
  /** The 64-bit seed. */
  seed: U64;
  /** The sample's stream (an mcDropout run's stream + t for sample t). */
  stream: U64;
}

/**
 * The MLP's output for `rows` rows of x (row-major), in f64: ReLU and, when `sample` is given and
 * dropout > 0, inverted dropout after every hidden layer with the GPU's masks for that sample.
 */
export function referenceMlpForward(model: ReferenceMlp, x: ArrayLike<number>, rows: number, sample?: ReferenceSample): Float64Array {
  const { sizes, parameters, random } = checkModel(model, sample);
  checkPositive(rows, 'rows');
  checkNumbers(x, 'x', rows * sizes[0]!, `values (${rows} rows of ${sizes[0]})`);
  const rule = keepRule(model.dropout ?? 0);
  let act = Float64Array.from(x);
  let offset = 0;
  for (let l = 1; l < sizes.length; l++) {
    const k = sizes[l - 1]!;
    const n = sizes[l]!;
    const bias = offset + k * n;
    const out = new Float64Array(rows * n);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < n; o++) {
        let acc = parameters[bias + o]!;
        for (let j = 0; j < k; j++) acc += act[r * k + j]! * parameters[offset + j * n + o]!;
        out[r * n + o] = acc;
      }
    }
    if (l < sizes.length - 1) {
      for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i]!, 0);
      if (random && rule.kind !== 'identity') {
        const keep = referenceKeepMask(out.length, model.dropout!, { ...random, offset: siteOffset(l - 1) });
        const scale = rule.kind === 'mask' ? Math.fround(rule.scale) : 0;
        for (let i = 0; i < out.length; i++) out[i] = keep[i] ? out[i]! * scale : 0;
      }
    }
    act = out;
    offset = bias + n;
  }
  return act;
}

/** The model and the sample checked as the MLP checks its own: widths, the parameters of its
 * layout, a rate in [0, 1), a sample's 64-bit seed and stream. */
function checkModel(model: ReferenceMlp, sample: ReferenceSample | undefined) {
  if (typeof model !== 'object' || model === null)
    throw new InvalidArgumentError('model', 'a ReferenceMlp { sizes, parameters, dropout? }', model);
  const { sizes, parameters, dropout } = model;
  if (!Array.isArray(sizes) || sizes.length < 2 || !sizes.every(isPositiveInteger)) {
    throw new InvalidArgumentError('model.sizes', 'an array of at least two positive integer widths', sizes);
  }
  let count = 0;
  for (let l = 1; l < sizes.length; l++) count += sizes[l - 1]! * sizes[l]! + sizes[l]!;
  checkNumbers(parameters, 'model.parameters', count, `parameters (each layer's W and b for sizes [${sizes.join(', ')}])`);
  if (dropout !== undefined && !(typeof dropout === 'number' && dropout >= 0 && dropout < 1)) {
    throw new InvalidArgumentError('model.dropout', 'a probability in [0, 1)', dropout);
  }
  if (sample === undefined) return { sizes, parameters, random: undefined };
  if (typeof sample !== 'object' || sample === null) throw new InvalidArgumentError('sample', 'a ReferenceSample { seed, stream }', sample);
  return { sizes, parameters, random: { seed: toU64(sample.seed, 'sample.seed'), stream: toU64(sample.stream, 'sample.stream') } };
}

/** Mean loss over the rows, as the GPU's loss kernels define it ('xent' targets are distributions). */
export function referenceLoss(output: ArrayLike<number>, targets: ArrayLike<number>, rows: number, cols: number, loss: LossKind): number {
  checkPositive(rows, 'rows');
  checkPositive(cols, 'cols');
  checkNumbers(output, 'output', rows * cols, `values (${rows} x ${cols})`);
  checkNumbers(targets, 'targets', rows * cols, `values (${rows} x ${cols})`);
  if (loss !== 'mse' && loss !== 'xent') throw new InvalidArgumentError('loss', "'mse' or 'xent'", loss);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    if (loss === 'mse') {
      for (let o = 0; o < cols; o++) total += (output[r * cols + o]! - targets[r * cols + o]!) ** 2 / cols;
    } else {
      const logP = logSoftmax(output, r * cols, cols);
      for (let o = 0; o < cols; o++) total -= targets[r * cols + o]! * logP[o]!;
    }
  }
  return total / rows;
}

function logSoftmax(z: ArrayLike<number>, base: number, n: number): Float64Array {
  let top = -Infinity;
  for (let o = 0; o < n; o++) top = Math.max(top, z[base + o]!);
  let sum = 0;
  for (let o = 0; o < n; o++) sum += Math.exp(z[base + o]! - top);
  const lse = Math.log(sum);
  return Float64Array.from({ length: n }, (_, o) => z[base + o]! - top - lse);
}

/** What {@link referenceMcStats} returns, as mcDropout's statistics but in f64. */
export interface ReferenceMcStats {
  /** Mean over the samples per output (rows x cols; of the softmax probabilities for classification). */
  mean: Float64Array;
  /** Population variance (divided by T) over the samples per output. */
  variance: Float64Array;
  /** Classification only, per row: H[mean p], in nats. */
  predictiveEntropy?: Float64Array;
  /** Classification only, per row: E_t[H[p_t]], in nats. */
  expectedEntropy?: Float64Array;
  /** Classification only, per row: BALD, H[mean p] - E_t[H[p_t]], clamped at 0, in nats. */
  mutualInformation?: Float64Array;
}

/**
 * MC statistics of T sample outputs (each rows x cols), two-pass in f64: mean and population
 * variance (divided by T) per element; for classification over softmax probabilities, plus per
 * row H[mean p], E[H[p_t]] and their difference (BALD, clamped at 0 as on the GPU).
 * @param samples - T sample outputs, each rows x cols row-major (logits for classification).
 */
export function referenceMcStats(
  samples: readonly ArrayLike<number>[],
  rows: number,
  cols: number,
  task: 'regression' | 'classification',
): ReferenceMcStats {
  checkPositive(rows, 'rows');
  checkPositive(cols, 'cols');
  if (!Array.isArray(samples) || samples.length < 1)
    throw new InvalidArgumentError('samples', 'an array of at least one sample output', samples);
  samples.forEach((s, t) => checkNumbers(s, `samples[${t}]`, rows * cols, `values (${rows} x ${cols})`));
  if (task !== 'regression' && task !== 'classification') throw new InvalidArgumentError('task', "'regression' or 'classification'", task);
  const T = samples.length;
  const values =
    task === 'regression'
      ? samples.map((s) => Float64Array.from(s))
      : samples.map((s) => {
          const p = new Float64Array(rows * cols);
          for (let r = 0; r < rows; r++) logSoftmax(s, r * cols, cols).forEach((lp, o) => (p[r * cols + o] = Math.exp(lp)));
          return p;
        });
  const mean = new Float64Array(rows * cols);
  const variance = new Float64Array(rows * cols);
  for (const v of values) v.forEach((y, e) => (mean[e]! += y / T));
  for (const v of values) v.forEach((y, e) => (variance[e]! += (y - mean[e]!) ** 2 / T));
  if (task === 'regression') return { mean, variance };
  const entropy = (p: ArrayLike<number>, r: number) => {
    let h = 0;
    for (let o = 0; o < cols; o++) if (p[r * cols + o]! > 0) h -= p[r * cols + o]! * Math.log(p[r * cols + o]!);
    return h;
  };
  const predictiveEntropy = Float64Array.from({ length: rows }, (_, r) => entropy(mean, r));
  const expectedEntropy = Float64Array.from({ length: rows }, (_, r) => values.reduce((h, p) => h + entropy(p, r) / T, 0));
  const mutualInformation = predictiveEntropy.map((h, r) => Math.max(h - expectedEntropy[r]!, 0));
  return { mean, variance, predictiveEntropy, expectedEntropy, mutualInformation };
}
