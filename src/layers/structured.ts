// Layer classes over the structured and variant ops: each holds p, a generator and the
// train()/eval() switch; forward returns the state its backward needs.

import { InvalidArgumentError } from '../errors.js';
import type { PhiloxGenerator } from '../generator.js';
import type { Dtype } from '../kernels/shaders.js';
import { type RecordOptions, withOptions } from '../ops/common.js';
import {
  alphaDropout,
  alphaDropoutBackward,
  alphaDropoutCoefficients,
  type BackwardOptions,
  type ChannelLayout,
  channelAxisFor,
  dropConnect,
  dropConnectBackward,
  dropPath,
  dropPathAdd,
  dropPathAddBackward,
  gaussianDropout,
  gaussianDropoutBackward,
  gaussianSigma,
  type Shape,
  type StructuredResult,
  type StructuredState,
  spatialDropout,
  structuredDropoutBackward,
  variationalDropout,
} from '../ops/index.js';
import { checkOptionsObject, type OptionNames, optionNames } from '../options.js';
import type { DropoutContext } from '../runtime/context.js';
import { checkLayerOptions, Layer } from './dropout.js';

export interface StructuredLayerOptions {
  /** Drop probability (required: the frameworks' defaults differ). */
  p: number;
  dtype?: Dtype;
  /** Source of (seed, stream): default the context's generator. */
  generator?: PhiloxGenerator;
}

/** Per-call options of a layer's forward. */
export interface LayerCall extends RecordOptions {
  shape: Shape;
  out?: GPUBuffer;
}

const LAYER_OPTIONS = { p: true, dtype: true, generator: true } as const;
const CALL_OPTIONS = optionNames<LayerCall>({ shape: true, out: true, encoder: true });
const DROP_CONNECT_CALL_OPTIONS = optionNames<RecordOptions & { out?: GPUBuffer }>({ out: true, encoder: true });

/** What every layer here shares: p, dtype, generator, train()/eval(). */
abstract class RandomLayer extends Layer {
  readonly p: number;
  readonly dtype: Dtype;
  readonly generator: PhiloxGenerator | undefined;

  constructor(
    readonly ctx: DropoutContext,
    options: StructuredLayerOptions,
    names: OptionNames,
  ) {
    super();
    ({ p: this.p, dtype: this.dtype, generator: this.generator } = checkLayerOptions(options, names, 'an object with at least p'));
  }

  protected common(call: LayerCall) {
    checkOptionsObject(call, CALL_OPTIONS, 'shape', 'call options with the shape of x ({ shape, ... })', call);
    return {
      p: this.p,
      dtype: this.dtype,
      training: this.training,
      generator: this.generator,
      shape: call.shape,
      out: call.out,
      encoder: call.encoder,
    };
  }

  async backward(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return structuredDropoutBackward(this.ctx, dy, state, opts);
  }
}

export interface SpatialDropoutLayerOptions extends StructuredLayerOptions {
  /** Default 'channels-last' for SpatialDropout{1,2,3}D (Keras), 'channels-first' for Dropout{1,2,3}d (PyTorch). */
  layout?: ChannelLayout;
}

const SPATIAL_LAYER_OPTIONS = optionNames<SpatialDropoutLayerOptions>({ ...LAYER_OPTIONS, layout: true });
const PLAIN_LAYER_OPTIONS = optionNames<StructuredLayerOptions>(LAYER_OPTIONS);
const DROP_PATH_LAYER_OPTIONS = optionNames<StructuredLayerOptions & { scaleByKeep?: boolean }>({ ...LAYER_OPTIONS, scaleByKeep: true });
const VARIATIONAL_LAYER_OPTIONS = optionNames<StructuredLayerOptions & { timeAxis?: number }>({ ...LAYER_OPTIONS, timeAxis: true });

/** Whole channels dropped for inputs of rank spatialDims + 2. */
class SpatialDropoutLayer extends RandomLayer {
  readonly layout: ChannelLayout;

  constructor(
    ctx: DropoutContext,
    readonly spatialDims: 1 | 2 | 3,
    options: SpatialDropoutLayerOptions,
    defaultLayout: ChannelLayout,
  ) {
    super(ctx, options, SPATIAL_LAYER_OPTIONS);
    this.layout = options.layout ?? defaultLayout;
    channelAxisFor(spatialDims + 2, { layout: this.layout });
  }

  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    const common = this.common(call); // first: a misspelt option is reported as such, not as a missing shape
    if (!Array.isArray(call.shape) || call.shape.length !== this.spatialDims + 2) {
      throw new InvalidArgumentError(
        'shape',
        `${this.spatialDims + 2} dimensions: the batch, the channels and ${this.spatialDims} spatial`,
        call.shape,
      );
    }
    return spatialDropout(this.ctx, x, withOptions(common, { layout: this.layout }));
  }
}

/** A spatial dropout layer class: inputs of rank spatialDims + 2, `defaultLayout` unless the options
 * give one; `name` is the class's name. */
function spatialDropoutLayer(
  name: string,
  spatialDims: 1 | 2 | 3,
  defaultLayout: ChannelLayout,
): new (
  ctx: DropoutContext,
  options: SpatialDropoutLayerOptions,
) => SpatialDropoutLayer {
  const layer = class extends SpatialDropoutLayer {
    constructor(ctx: DropoutContext, options: SpatialDropoutLayerOptions) {
      super(ctx, spatialDims, options, defaultLayout);
    }
  };
  return Object.defineProperty(layer, 'name', { value: name });
}

/** keras.layers.SpatialDropout1D: (N, L, C) by default, or channels-first (N, C, L). */
export const SpatialDropout1D = spatialDropoutLayer('SpatialDropout1D', 1, 'channels-last');
export type SpatialDropout1D = InstanceType<typeof SpatialDropout1D>;
/** keras.layers.SpatialDropout2D: (N, H, W, C) by default, or channels-first (N, C, H, W). */
export const SpatialDropout2D = spatialDropoutLayer('SpatialDropout2D', 2, 'channels-last');
export type SpatialDropout2D = InstanceType<typeof SpatialDropout2D>;
/** keras.layers.SpatialDropout3D: (N, D, H, W, C) by default, or channels-first. */
export const SpatialDropout3D = spatialDropoutLayer('SpatialDropout3D', 3, 'channels-last');
export type SpatialDropout3D = InstanceType<typeof SpatialDropout3D>;
/** torch.nn.Dropout1d: (N, C, L). */
export const Dropout1d = spatialDropoutLayer('Dropout1d', 1, 'channels-first');
export type Dropout1d = InstanceType<typeof Dropout1d>;
/** torch.nn.Dropout2d: (N, C, H, W). */
export const Dropout2d = spatialDropoutLayer('Dropout2d', 2, 'channels-first');
export type Dropout2d = InstanceType<typeof Dropout2d>;
/** torch.nn.Dropout3d: (N, C, D, H, W). */
export const Dropout3d = spatialDropoutLayer('Dropout3d', 3, 'channels-first');
export type Dropout3d = InstanceType<typeof Dropout3d>;

/** timm.layers.DropPath (stochastic depth): forward(x) or the fused forwardAdd(residual, branch). */
export class DropPath extends RandomLayer {
  readonly scaleByKeep: boolean;

  constructor(ctx: DropoutContext, options: StructuredLayerOptions & { scaleByKeep?: boolean }) {
    super(ctx, options, DROP_PATH_LAYER_OPTIONS);
    this.scaleByKeep = options.scaleByKeep ?? true;
    if (typeof this.scaleByKeep !== 'boolean') throw new InvalidArgumentError('scaleByKeep', 'a boolean', this.scaleByKeep);
  }

  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return dropPath(this.ctx, x, withOptions(this.common(call), { scaleByKeep: this.scaleByKeep }));
  }

  /** out = residual + drop_path(branch) in one pass. */
  async forwardAdd(residual: GPUBuffer, branch: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return dropPathAdd(this.ctx, residual, branch, withOptions(this.common(call), { scaleByKeep: this.scaleByKeep }));
  }

  async backwardAdd(
    dy: GPUBuffer,
    state: StructuredState,
    opts: BackwardOptions = {},
  ): Promise<{ dresidual: GPUBuffer; dbranch: GPUBuffer }> {
    return dropPathAddBackward(this.ctx, dy, state, opts);
  }
}

/** Variational (locked) dropout: one mask for every step along timeAxis (AWD-LSTM's LockedDropout
 * with timeAxis 0; Keras Dropout(noise_shape=(N, 1, F)) with the default 1). */
export class VariationalDropout extends RandomLayer {
  readonly timeAxis: number;

  constructor(ctx: DropoutContext, options: StructuredLayerOptions & { timeAxis?: number }) {
    super(ctx, options, VARIATIONAL_LAYER_OPTIONS);
    this.timeAxis = options.timeAxis ?? 1;
    if (!Number.isInteger(this.timeAxis) || this.timeAxis < 0)
      throw new InvalidArgumentError('timeAxis', 'a non-negative integer', this.timeAxis);
  }

  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return variationalDropout(this.ctx, x, withOptions(this.common(call), { timeAxis: this.timeAxis }));
  }
}

/** keras.layers.GaussianDropout: multiplicative N(1, p / (1 - p)) noise; p in [0, 1). */
export class GaussianDropout extends RandomLayer {
  constructor(ctx: DropoutContext, options: StructuredLayerOptions) {
    super(ctx, options, PLAIN_LAYER_OPTIONS);
    gaussianSigma(this.p);
  }

  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return gaussianDropout(this.ctx, x, this.common(call));
  }

  override async backward(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return gaussianDropoutBackward(this.ctx, dy, state, opts);
  }
}

/** keras.layers.AlphaDropout / torch.nn.AlphaDropout: keeps SELU's zero mean, unit variance; p in [0, 1). */
export class AlphaDropout extends RandomLayer {
  constructor(ctx: DropoutContext, options: StructuredLayerOptions) {
    super(ctx, options, PLAIN_LAYER_OPTIONS);
    alphaDropoutCoefficients(this.p);
  }

  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return alphaDropout(this.ctx, x, this.common(call));
  }

  override async backward(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return alphaDropoutBackward(this.ctx, dy, state, opts);
  }
}

/** DropConnect on a (rows, cols) weight (torchnlp / AWD-LSTM WeightDrop): forward returns the
 * masked weight for the caller's matmul, a fresh mask per call; backward turns its gradient into dW. */
export class DropConnect extends RandomLayer {
  constructor(
    ctx: DropoutContext,
    readonly rows: number,
    readonly cols: number,
    options: StructuredLayerOptions,
  ) {
    super(ctx, options, PLAIN_LAYER_OPTIONS);
    if (!Number.isSafeInteger(rows) || rows < 1) throw new InvalidArgumentError('rows', 'a positive integer', rows);
    if (!Number.isSafeInteger(cols) || cols < 1) throw new InvalidArgumentError('cols', 'a positive integer', cols);
    if (rows * cols > 0xffffffff) throw new InvalidArgumentError('cols', 'rows * cols at most 2^32 - 1 elements', cols);
  }

  async forward(weight: GPUBuffer, call: RecordOptions & { out?: GPUBuffer } = {}): Promise<StructuredResult> {
    checkOptionsObject(call, DROP_CONNECT_CALL_OPTIONS, 'options', 'call options ({ out?, encoder? })', call);
    const { p, dtype, training, generator } = this;
    return dropConnect(this.ctx, weight, {
      p,
      dtype,
      training,
      generator,
      rows: this.rows,
      cols: this.cols,
      out: call.out,
      encoder: call.encoder,
    });
  }

  override async backward(dMaskedWeight: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return dropConnectBackward(this.ctx, dMaskedWeight, state, opts);
  }
}
