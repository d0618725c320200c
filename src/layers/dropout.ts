// Layer classes over the functional ops: they hold p, a generator and the train/eval switch.
import { checkProbability } from '../contract.js';
import type { DropoutContext } from '../context.js';
import { InvalidArgumentError } from '../errors.js';
import { PhiloxGenerator } from '../generator.js';
import { withOptions, type RecordOptions } from '../ops/common.js';
import { dropout, dropoutBackward, type DropoutBackwardOptions, type DropoutResult, type DropoutState } from '../ops/dropout.js';
import { checkOptionNames, optionNames } from '../options.js';
import type { Dtype } from '../kernels/shaders.js';

export interface DropoutLayerOptions {
  /** Drop probability in [0, 1] (default 0.5, as PyTorch). */
  p?: number;
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
  out?: GPUBuffer;
  mask?: GPUBuffer | boolean;
}

const CALL_OPTIONS = optionNames<DropoutCall>({ count: true, out: true, mask: true, encoder: true });

/** Base of the layers: the train()/eval() switch. */
export class Layer {
  training = true;

  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new InvalidArgumentError('mode', 'a boolean (train(true) or train(false))', mode);
    this.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }
}

/** Element-wise inverted dropout, as torch.nn.Dropout / keras.layers.Dropout. */
export class Dropout extends Layer {
  readonly p: number;
  readonly dtype: Dtype;
  readonly inPlace: boolean;
  readonly generator: PhiloxGenerator | undefined;

  constructor(
    readonly ctx: DropoutContext,
    options: DropoutLayerOptions = {},
  ) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'an object of layer options ({ p?, dtype?, generator?, inPlace? })', options);
    checkOptionNames(options, LAYER_OPTIONS);
    this.p = checkProbability(options.p ?? 0.5);
    this.dtype = options.dtype ?? 'f32';
    ctx.checkDtype(this.dtype);
    if (options.generator !== undefined && !(options.generator instanceof PhiloxGenerator)) {
      throw new InvalidArgumentError('generator', 'a PhiloxGenerator', options.generator);
    }
    this.generator = options.generator;
    this.inPlace = options.inPlace ?? false;
    if (typeof this.inPlace !== 'boolean') throw new InvalidArgumentError('inPlace', 'a boolean', options.inPlace);
  }

  /** Returns the output and the state that `backward` needs (nothing else is kept). */
  async forward(x: GPUBuffer, opts: DropoutCall = {}): Promise<DropoutResult> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'call options ({ count?, out?, mask?, encoder? })', opts);
    checkOptionNames(opts, CALL_OPTIONS);
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

  async backward(dy: GPUBuffer, state: DropoutState, opts: DropoutBackwardOptions = {}): Promise<GPUBuffer> {
    return dropoutBackward(this.ctx, dy, state, withOptions(opts, { out: opts.out ?? (this.inPlace ? dy : undefined) }));
  }
}
