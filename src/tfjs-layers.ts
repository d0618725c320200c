// webgpu-dropout/tfjs-layers: a TensorFlow.js Layers layer over webgpu-dropout/tfjs's dropout, in
// place of tf.layers.dropout. Its own entry point, so that the ops need no @tensorflow/tfjs-layers.

/**
 * A TensorFlow.js Layers layer ({@link WebGPUDropout}, or {@link webgpuDropout}(args)) in place of
 * `tf.layers.dropout`, on webgpu-dropout's kernels through `webgpu-dropout/tfjs`: active only in
 * training calls, with a new stream of its generator per call, registered for serialization as
 * 'WebGPUDropout'. Needs `@tensorflow/tfjs-layers` 4.x.
 *
 * ```ts
 * const model = tfl.sequential({
 *   layers: [tfl.layers.dense({ units: 16, inputShape: [4] }), webgpuDropout({ rate: 0.3, seed: 7 }), tfl.layers.dense({ units: 3 })],
 * });
 * ```
 * @module webgpu-dropout/tfjs-layers
 */
import * as tf from '@tensorflow/tfjs-core';
import { layers, type Shape } from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from './errors.js';
import { PhiloxGenerator } from './generator.js';
import { checkTensor } from './tfjs/record.js';
import { dropout } from './tfjs.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof layers.Layer>[0]>;

/** The arguments of {@link WebGPUDropout}: tf.layers.dropout's, plus the usual layer arguments (name, ...). */
export interface WebGPUDropoutLayerArgs extends LayerArgs {
  /** Fraction of the inputs to drop, in [0, 1] (tf.layers.dropout's rate). */
  rate: number;
  /** The mask's shape: null (or the input's extent) where the mask varies, 1 where it is shared. */
  noiseShape?: (number | null)[];
  /** Seed of the layer's generator (a safe integer); each training call takes its next stream.
   * Default: a random seed. */
  seed?: number;
}

/**
 * Dropout as tf.layers.dropout does it, on webgpu-dropout's kernels: active only in training calls
 * (`training: true`, as fit() passes), the identity otherwise; the mask is the contract's for the
 * layer's (seed, stream), a new stream per training call, and the backward regenerates it.
 * Registered for serialization as 'WebGPUDropout'.
 */
export class WebGPUDropout extends layers.Layer {
  /** The name the layer is registered under for serialization. */
  static className = 'WebGPUDropout';
  /** Fraction of the inputs dropped, in [0, 1]. */
  readonly rate: number;
  /** The mask's shape (null entries: the input's extent); undefined: element-wise. */
  readonly noiseShape: (number | null)[] | undefined;
  /** The seed the layer was given; undefined: a random one. */
  readonly seed: number | undefined;
  /** Streams of the training calls: call k uses (seed, k). */
  readonly generator: PhiloxGenerator;

  /** @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} for a bad `rate`, `noiseShape` or `seed`. */
  constructor(args: WebGPUDropoutLayerArgs) {
    if (typeof args !== 'object' || args === null) throw new InvalidArgumentError('args', 'an object with rate', args);
    if (typeof args.rate !== 'number' || !(args.rate >= 0 && args.rate <= 1))
      throw new InvalidArgumentError('rate', 'a number in [0, 1]', args.rate);
    if (
      args.noiseShape != null &&
      (!Array.isArray(args.noiseShape) || args.noiseShape.some((d) => d !== null && !(Number.isSafeInteger(d) && d >= 0)))
    ) {
      throw new InvalidArgumentError('noiseShape', 'an array of extents (null: the input extent)', args.noiseShape);
    }
    if (args.seed != null && !(Number.isSafeInteger(args.seed) && args.seed >= 0))
      throw new InvalidArgumentError('seed', 'a non-negative safe integer', args.seed);
    super(args);
    this.rate = args.rate;
    this.noiseShape = args.noiseShape ?? undefined;
    this.seed = args.seed ?? undefined;
    this.generator = new PhiloxGenerator(this.seed ?? Math.floor(Math.random() * 2 ** 53));
    this.supportsMasking = true;
  }

  /** Dropout of the one input when `kwargs.training` is true (and rate > 0), on the layer's next
   * stream; otherwise the input itself, any dtype. Throws InvalidArgumentError (argument `inputs`)
   * for more than one input, or a training input that is not a float32 tensor. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    if (Array.isArray(inputs) && inputs.length !== 1) throw new InvalidArgumentError('inputs', 'exactly one tensor', inputs.length);
    if (!(input instanceof tf.Tensor)) throw new InvalidArgumentError('inputs', 'a tf.Tensor', input);
    const training = kwargs?.training ?? false;
    // Inference passes any tensor through, int32 included, as tf.layers.dropout does.
    if (!training || this.rate === 0) return input;
    // Checked here so that a bad input is named as the layer's caller passed it (dropout() would say x).
    checkTensor(input, 'inputs');
    const noiseShape = this.noiseShape?.map((d, k) => d ?? input.shape[k]!);
    return dropout(input, { p: this.rate, noiseShape, generator: this.generator });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  /** The layer's config for serialization: rate, and noiseShape and seed where set, with the base layer's. */
  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { rate: this.rate };
    if (this.noiseShape !== undefined) config.noiseShape = this.noiseShape;
    if (this.seed !== undefined) config.seed = this.seed;
    return { ...config, ...super.getConfig() };
  }
}

tf.serialization.registerClass(WebGPUDropout);

/** `new WebGPUDropout(args)`, spelt like tf.layers.dropout(args). Throws as the constructor does. */
export function webgpuDropout(args: WebGPUDropoutLayerArgs): WebGPUDropout {
  return new WebGPUDropout(args);
}
