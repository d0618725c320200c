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
  type DropPathAddGrads,
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

/** The options of the structured and variant layers ({@link SpatialDropout2D}, {@link DropPath}, ...). */
export interface StructuredLayerOptions {
  /** Drop probability (required: the frameworks' defaults differ): in [0, 1], or [0, 1) for
   * {@link GaussianDropout} and {@link AlphaDropout}. */
  p: number;
  /** Element type of the data: 'f32' (default) or 'f16'. */
  dtype?: Dtype;
  /** Source of (seed, stream): default the context's generator. */
  generator?: PhiloxGenerator;
}

/** Per-call options of a layer's forward. */
export interface LayerCall extends RecordOptions {
  /** Shape of x (required: a GPUBuffer has no shape). */
  shape: Shape;
  /** Output buffer (default: a new pooled buffer); not x: these layers do not run in place. */
  out?: GPUBuffer;
}

const LAYER_OPTIONS = { p: true, dtype: true, generator: true } as const;
const CALL_OPTIONS = optionNames<LayerCall>({ shape: true, out: true, encoder: true });
const DROP_CONNECT_CALL_OPTIONS = optionNames<RecordOptions & { out?: GPUBuffer }>({ out: true, encoder: true });

/** What every structured and variant layer shares: p, dtype, generator, train()/eval() and the
 * backward of its masked forward. */
export abstract class RandomLayer extends Layer {
  /** Drop probability (the layer's rate). */
  readonly p: number;
  /** Element type of the data. */
  readonly dtype: Dtype;
  /** The streams' source; undefined: the context's generator. */
  readonly generator: PhiloxGenerator | undefined;

  constructor(
    /** The context the layer's ops run on. */
    readonly ctx: DropoutContext,
    options: StructuredLayerOptions,
    names: OptionNames,
  ) {
    super();
    ({ p: this.p, dtype: this.dtype, generator: this.generator } = checkLayerOptions(options, names, 'an object with at least p'));
  }

  /**
   * The options every forward passes to its op.
   * @internal
   */
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

  /** dx = keep ? dy * scale : 0 with the mask of the forward that returned `state`, regenerated
   * ({@link structuredDropoutBackward}). */
  async backward(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return structuredDropoutBackward(this.ctx, dy, state, opts);
  }
}

/** The options of the spatial dropout layers ({@link SpatialDropout1D}, ..., {@link Dropout3d}). */
export interface SpatialDropoutLayerOptions extends StructuredLayerOptions {
  /** Default 'channels-last' for SpatialDropout{1,2,3}D (Keras), 'channels-first' for Dropout{1,2,3}d (PyTorch). */
  layout?: ChannelLayout;
}

const SPATIAL_LAYER_OPTIONS = optionNames<SpatialDropoutLayerOptions>({ ...LAYER_OPTIONS, layout: true });
const PLAIN_LAYER_OPTIONS = optionNames<StructuredLayerOptions>(LAYER_OPTIONS);
const DROP_PATH_LAYER_OPTIONS = optionNames<StructuredLayerOptions & { scaleByKeep?: boolean }>({ ...LAYER_OPTIONS, scaleByKeep: true });
const VARIATIONAL_LAYER_OPTIONS = optionNames<StructuredLayerOptions & { timeAxis?: number }>({ ...LAYER_OPTIONS, timeAxis: true });

/**
 * The spatial dropout layers ({@link SpatialDropout1D}/2D/3D, {@link Dropout1d}/2d/3d): whole
 * channels dropped, one decision per (sample, channel), for inputs of rank spatialDims + 2.
 * Each training forward takes the generator's next stream.
 */
export class SpatialDropoutLayer extends RandomLayer {
  /** Where the channels are: from the options, else the class's default. */
  readonly layout: ChannelLayout;

  constructor(
    ctx: DropoutContext,
    /** Spatial dimensions of the input (1, 2 or 3): its rank is spatialDims + 2. */
    readonly spatialDims: 1 | 2 | 3,
    options: SpatialDropoutLayerOptions,
    defaultLayout: ChannelLayout,
  ) {
    super(ctx, options, SPATIAL_LAYER_OPTIONS);
    this.layout = options.layout ?? defaultLayout;
    channelAxisFor(spatialDims + 2, { layout: this.layout });
  }

  /** {@link spatialDropout} of x (`call.shape` of rank spatialDims + 2) with the layer's p, layout
   * and generator; the identity in eval mode. Rejects with {@link InvalidArgumentError} for a bad
   * buffer, shape or option. */
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
): {
  /**
   * A spatial dropout layer on `ctx`; `options.layout` overrides the class's default layout.
   * @throws {@link InvalidArgumentError} for an unknown option or a bad `p`, `dtype`, `generator` or `layout`.
   */
  new (ctx: DropoutContext, options: SpatialDropoutLayerOptions): SpatialDropoutLayer;
} {
  const layer = class extends SpatialDropoutLayer {
    constructor(ctx: DropoutContext, options: SpatialDropoutLayerOptions) {
      super(ctx, spatialDims, options, defaultLayout);
    }
  };
  return Object.defineProperty(layer, 'name', { value: name });
}

/** keras.layers.SpatialDropout1D, a {@link SpatialDropoutLayer}: (N, L, C) by default, or channels-first (N, C, L). */
export const SpatialDropout1D = spatialDropoutLayer('SpatialDropout1D', 1, 'channels-last');
export type SpatialDropout1D = InstanceType<typeof SpatialDropout1D>;
/** keras.layers.SpatialDropout2D, a {@link SpatialDropoutLayer}: (N, H, W, C) by default, or channels-first (N, C, H, W). */
export const SpatialDropout2D = spatialDropoutLayer('SpatialDropout2D', 2, 'channels-last');
export type SpatialDropout2D = InstanceType<typeof SpatialDropout2D>;
/** keras.layers.SpatialDropout3D, a {@link SpatialDropoutLayer}: (N, D, H, W, C) by default, or channels-first (N, C, D, H, W). */
export const SpatialDropout3D = spatialDropoutLayer('SpatialDropout3D', 3, 'channels-last');
export type SpatialDropout3D = InstanceType<typeof SpatialDropout3D>;
/** torch.nn.Dropout1d, a {@link SpatialDropoutLayer}: (N, C, L) by default, or channels-last (N, L, C). */
export const Dropout1d = spatialDropoutLayer('Dropout1d', 1, 'channels-first');
export type Dropout1d = InstanceType<typeof Dropout1d>;
/** torch.nn.Dropout2d, a {@link SpatialDropoutLayer}: (N, C, H, W) by default, or channels-last (N, H, W, C). */
export const Dropout2d = spatialDropoutLayer('Dropout2d', 2, 'channels-first');
export type Dropout2d = InstanceType<typeof Dropout2d>;
/** torch.nn.Dropout3d, a {@link SpatialDropoutLayer}: (N, C, D, H, W) by default, or channels-last (N, D, H, W, C). */
export const Dropout3d = spatialDropoutLayer('Dropout3d', 3, 'channels-first');
export type Dropout3d = InstanceType<typeof Dropout3d>;

/** timm.layers.DropPath (stochastic depth): forward(x) or the fused forwardAdd(residual, branch). */
export class DropPath extends RandomLayer {
  /** Whether kept samples are divided by 1 - p (timm's scale_by_keep; default true). */
  readonly scaleByKeep: boolean;

  /**
   * @param options - The layer options plus `scaleByKeep` (default true).
   * @throws {@link InvalidArgumentError} for an unknown option or a bad `p`, `dtype`, `generator` or `scaleByKeep`.
   */
  constructor(ctx: DropoutContext, options: StructuredLayerOptions & { scaleByKeep?: boolean }) {
    super(ctx, options, DROP_PATH_LAYER_OPTIONS);
    this.scaleByKeep = options.scaleByKeep ?? true;
    if (typeof this.scaleByKeep !== 'boolean') throw new InvalidArgumentError('scaleByKeep', 'a boolean', this.scaleByKeep);
  }

  /** {@link dropPath} of x, `call.shape` batch first; the identity in eval mode. Rejects with
   * {@link InvalidArgumentError} for a bad buffer, shape or option. */
  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return dropPath(this.ctx, x, withOptions(this.common(call), { scaleByKeep: this.scaleByKeep }));
  }

  /** out = residual + drop_path(branch) in one pass ({@link dropPathAdd}); backward: {@link DropPath.backwardAdd | backwardAdd}.
   * In eval mode out = residual + branch. */
  async forwardAdd(residual: GPUBuffer, branch: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return dropPathAdd(this.ctx, residual, branch, withOptions(this.common(call), { scaleByKeep: this.scaleByKeep }));
  }

  /** The gradients of forwardAdd ({@link dropPathAddBackward}): d residual is dy itself, d branch
   * regenerates the mask. */
  async backwardAdd(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<DropPathAddGrads> {
    return dropPathAddBackward(this.ctx, dy, state, opts);
  }
}

/** Variational (locked) dropout: one mask for every step along timeAxis (AWD-LSTM's LockedDropout
 * with timeAxis 0; Keras Dropout(noise_shape=(N, 1, F)) with the default 1). */
export class VariationalDropout extends RandomLayer {
  /** The axis that shares one mask (default 1: (N, T, F); 0: time-major (T, N, F)). */
  readonly timeAxis: number;

  /**
   * @param options - The layer options plus `timeAxis` (default 1).
   * @throws {@link InvalidArgumentError} for an unknown option or a bad `p`, `dtype`, `generator` or `timeAxis`.
   */
  constructor(ctx: DropoutContext, options: StructuredLayerOptions & { timeAxis?: number }) {
    super(ctx, options, VARIATIONAL_LAYER_OPTIONS);
    this.timeAxis = options.timeAxis ?? 1;
    if (!Number.isInteger(this.timeAxis) || this.timeAxis < 0)
      throw new InvalidArgumentError('timeAxis', 'a non-negative integer', this.timeAxis);
  }

  /** {@link variationalDropout} of x: one mask for every step along `timeAxis` (which must be an
   * axis of `call.shape`); the identity in eval mode. Rejects with {@link InvalidArgumentError} for
   * a bad buffer, shape or option. */
  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return variationalDropout(this.ctx, x, withOptions(this.common(call), { timeAxis: this.timeAxis }));
  }
}

/** keras.layers.GaussianDropout: multiplicative N(1, p / (1 - p)) noise; p in [0, 1). */
export class GaussianDropout extends RandomLayer {
  /** @throws {@link InvalidArgumentError} for an unknown option or a bad `p` (1 included), `dtype` or `generator`. */
  constructor(ctx: DropoutContext, options: StructuredLayerOptions) {
    super(ctx, options, PLAIN_LAYER_OPTIONS);
    gaussianSigma(this.p);
  }

  /** {@link gaussianDropout} of x: y = x * (1 + sigma z); the identity in eval mode. Rejects with
   * {@link InvalidArgumentError} for a bad buffer, shape or option. */
  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return gaussianDropout(this.ctx, x, this.common(call));
  }

  /** dx = dy * (1 + sigma z) with the forward's z, regenerated ({@link gaussianDropoutBackward}). */
  override async backward(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return gaussianDropoutBackward(this.ctx, dy, state, opts);
  }
}

/** keras.layers.AlphaDropout / torch.nn.AlphaDropout: keeps SELU's zero mean, unit variance; p in [0, 1). */
export class AlphaDropout extends RandomLayer {
  /** @throws {@link InvalidArgumentError} for an unknown option or a bad `p` (1 included), `dtype` or `generator`. */
  constructor(ctx: DropoutContext, options: StructuredLayerOptions) {
    super(ctx, options, PLAIN_LAYER_OPTIONS);
    alphaDropoutCoefficients(this.p);
  }

  /** {@link alphaDropout} of x: y = a (keep ? x : alpha') + b; the identity in eval mode. Rejects
   * with {@link InvalidArgumentError} for a bad buffer, shape or option. */
  async forward(x: GPUBuffer, call: LayerCall): Promise<StructuredResult> {
    return alphaDropout(this.ctx, x, this.common(call));
  }

  /** dx = keep ? dy * a : 0 with the forward's mask, regenerated ({@link alphaDropoutBackward}). */
  override async backward(dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return alphaDropoutBackward(this.ctx, dy, state, opts);
  }
}

/** DropConnect on a (rows, cols) weight (torchnlp / AWD-LSTM WeightDrop): forward returns the
 * masked weight for the caller's matmul, a fresh mask per call; backward turns its gradient into dW. */
export class DropConnect extends RandomLayer {
  /**
   * @throws {@link InvalidArgumentError} for a bad `rows` or `cols` (positive integers, rows x cols at
   *   most 2^32 - 1), an unknown option or a bad `p`, `dtype` or `generator`.
   */
  constructor(
    ctx: DropoutContext,
    /** Rows of the weight matrix. */
    readonly rows: number,
    /** Columns of the weight matrix. */
    readonly cols: number,
    options: StructuredLayerOptions,
  ) {
    super(ctx, options, PLAIN_LAYER_OPTIONS);
    if (!Number.isSafeInteger(rows) || rows < 1) throw new InvalidArgumentError('rows', 'a positive integer', rows);
    if (!Number.isSafeInteger(cols) || cols < 1) throw new InvalidArgumentError('cols', 'a positive integer', cols);
    if (rows * cols > 0xffffffff) throw new InvalidArgumentError('cols', 'rows * cols at most 2^32 - 1 elements', cols);
  }

  /**
   * The masked weight ({@link dropConnect}), a fresh mask (the generator's next stream) per training
   * call; in eval mode the weight itself unless `call.out` is given. `call.out` is the output
   * buffer (default: a new pooled buffer). Rejects with {@link InvalidArgumentError} for a bad buffer or option.
   */
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

  /** dW = d(masked weight) * keep / (1 - p) with the forward's mask ({@link dropConnectBackward}). */
  override async backward(dMaskedWeight: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
    return dropConnectBackward(this.ctx, dMaskedWeight, state, opts);
  }
}
