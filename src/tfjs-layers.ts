// webgpu-dropout/tfjs-layers: a TensorFlow.js Layers layer over webgpu-dropout/tfjs's dropout, in
// place of tf.layers.dropout. Its own entry point, so that the ops need no @tensorflow/tfjs-layers.
import * as tf from '@tensorflow/tfjs-core';
import { layers, type Shape } from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from './errors.js';
import { PhiloxGenerator } from './generator.js';
import { checkTensor } from './tfjs/record.js';
import { dropout } from './tfjs.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof layers.Layer>[0]>;

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
  static className = 'WebGPUDropout';
  readonly rate: number;
  readonly noiseShape: (number | null)[] | undefined;
  readonly seed: number | undefined;
  /** Streams of the training calls: call k uses (seed, k). */
  readonly generator: PhiloxGenerator;

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

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { rate: this.rate };
    if (this.noiseShape !== undefined) config.noiseShape = this.noiseShape;
    if (this.seed !== undefined) config.seed = this.seed;
    return { ...config, ...super.getConfig() };
  }
}

tf.serialization.registerClass(WebGPUDropout);

/** `new WebGPUDropout(args)`, spelt like tf.layers.dropout(args). */
export function webgpuDropout(args: WebGPUDropoutLayerArgs): WebGPUDropout {
  return new WebGPUDropout(args);
}
