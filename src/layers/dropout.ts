// Layer classes over the functional ops: they hold p, a generator and the train/eval switch. The
// base Layer and the checks every layer's constructor shares live here too.
import { checkProbability } from '../contract.js';
import { InvalidArgumentError } from '../errors.js';
import type { PhiloxGenerator } from '../generator.js';
import type { Dtype } from '../kernels/shaders.js';
import { checkDtype, checkGenerator, type RecordOptions, withOptions } from '../ops/common.js';
import { type DropoutBackwardOptions, type DropoutResult, type DropoutState, dropout, dropoutBackward } from '../ops/dropout.js';
import { checkOptionsObject, type OptionNames, optionNames } from '../options.js';
import type { DropoutContext } from '../runtime/context.js';

/** The options of the {@link Dropout} layer. */
export interface DropoutLayerOptions {
  /** Drop probability in [0, 1] (default 0.5, as PyTorch). */
  p?: number;
  /** Element type of the data: 'f32' (default) or 'f16'. */
  dtype?: Dtype;
  /** Source of (seed, stream): default the context's generator. */
  generator?: PhiloxGenerator;
  /** Write the output over the input (PyTorch's inplace=True). */
  inPlace?: boolean;
}

const LAYER_OPTIONS = optionNames<DropoutLayerOptions>({ p: true, dtype: true, generator: true, inPlace: true });

/** Per-call options of Dropout.forward. */
export interface DropoutCall extends RecordOptions {
  /** Elements to process (default: all of x). */
  count?: number;
  /** Output buffer (default: x itself for an `inPlace` layer, else a new pooled buffer). */
  out?: GPUBuffer;
  /** Also write the packed keep-mask (bit b of word k = element 32k + b): `true` for a new buffer. */
  mask?: GPUBuffer | boolean;
}

const CALL_OPTIONS = optionNames<DropoutCall>({ count: true, out: true, mask: true, encoder: true });

/** Base of the layers: the train()/eval() switch. */
export class Layer {
  /** true (the default): forward calls drop and take a stream; false: they are the identity and draw nothing. */
  training = true;

  /**
   * Sets training mode (`mode` true, the default) or eval mode (false), as torch's `Module.train`.
   * @returns The layer itself, for chaining.
   * @throws {@link InvalidArgumentError} (argument `mode`) unless `mode` is a boolean.
   */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new InvalidArgumentError('mode', 'a boolean (train(true) or train(false))', mode);
    this.training = mode;
    return this;
  }

  /** Eval mode: `train(false)`. Returns the layer itself. */
  eval(): this {
    return this.train(false);
  }
}

/** What every layer holds of its options. */
export interface LayerSettings {
  p: number;
  dtype: Dtype;
  generator: PhiloxGenerator | undefined;
}

/**
 * The checks every layer's constructor shares: `options` an object (else refused as not
 * `expected`) with only the option `names` the layer takes, p (default `defaultP`), the dtype
 * and the generator.
 */
export function checkLayerOptions(
  options: { p?: number; dtype?: Dtype; generator?: PhiloxGenerator },
  names: OptionNames,
  expected: string,
  defaultP?: number,
): LayerSettings {
  checkOptionsObject(options, names, 'options', expected, options);
  const p = checkProbability((options.p ?? defaultP) as number); // a missing p without a default is refused as p
  const dtype = options.dtype ?? 'f32';
  checkDtype(dtype);
  return { p, dtype, generator: checkGenerator(options.generator) };
}

/**
 * Element-wise inverted dropout, as torch.nn.Dropout / keras.layers.Dropout: a layer over
 * {@link dropout}. Each training forward takes the generator's next stream; in eval mode forward is
 * the identity and draws nothing.
 *
 * ```ts
 * const layer = new Dropout(ctx, { p: 0.1, generator: new PhiloxGenerator(7n) });
 * const { output, state } = await layer.forward(x);
 * const dx = await layer.backward(dy, state);
 * ```
 */
export class Dropout extends Layer {
  /** Drop probability in [0, 1]. */
  readonly p: number;
  /** Element type of the data. */
  readonly dtype: Dtype;
  /** Whether forward writes over x (and backward over dy) when no `out` is given. */
  readonly inPlace: boolean;
  /** The streams' source; undefined: the context's generator. */
  readonly generator: PhiloxGenerator | undefined;

  /**
   * @throws {@link InvalidArgumentError} for an unknown option or a bad `p`, `dtype`, `generator` or `inPlace`.
   */
  constructor(
    /** The context the layer's ops run on. */
    readonly ctx: DropoutContext,
    options: DropoutLayerOptions = {},
  ) {
    super();
    ({
      p: this.p,
      dtype: this.dtype,
      generator: this.generator,
    } = checkLayerOptions(options, LAYER_OPTIONS, 'an object of layer options ({ p?, dtype?, generator?, inPlace? })', 0.5));
    this.inPlace = options.inPlace ?? false;
    if (typeof this.inPlace !== 'boolean') throw new InvalidArgumentError('inPlace', 'a boolean', options.inPlace);
  }

  /** Returns the output and the state that `backward` needs (nothing else is kept). Rejects as
   * {@link dropout} does. */
  async forward(x: GPUBuffer, opts: DropoutCall = {}): Promise<DropoutResult> {
    checkOptionsObject(opts, CALL_OPTIONS, 'options', 'call options ({ count?, out?, mask?, encoder? })', opts);
    return dropout(this.ctx, x, {
      p: this.p,
      dtype: this.dtype,
      training: this.training,
      generator: this.generator,
      out: opts.out ?? (this.inPlace ? x : undefined),
      count: opts.count,
      encoder: opts.encoder,
      mask: opts.mask,
    });
  }

  /** dx = dy * keep / (1 - p) with the mask of the forward that returned `state`, regenerated
   * ({@link dropoutBackward}); an `inPlace` layer writes dx over dy unless `out` is given. */
  async backward(dy: GPUBuffer, state: DropoutState, opts: DropoutBackwardOptions = {}): Promise<GPUBuffer> {
    return dropoutBackward(this.ctx, dy, state, withOptions(opts, { out: opts.out ?? (this.inPlace ? dy : undefined) }));
  }
}
