// webgpu-dropout/tfjs: the library's kernels as TensorFlow.js ops on the tfjs WebGPU backend.
//
// tfjs ops are synchronous: a kernel is recorded into the backend's open command encoder when the
// op is called, and the backend submits that encoder later (after a batch of dispatches, or on a
// read). The library's own ops record asynchronously (they await pipeline compiles), which would
// let tfjs submit the work that reads our output before our work is recorded. So this module
// records the same kernel records (src/kernels/elementwise.ts, src/kernels/structured.ts: no WGSL of its own) with the
// same Params words synchronously, into the backend's own encoder, between the tfjs kernels that
// produce x and those that read y:
// - x's GPUBuffer is read in place (the backend's tensor storage), and y is a tensor the backend
//   allocated from its own pool, written in place: no copy, no readback, and tfjs frees y as usual;
// - the mask is never stored: the backward (tf.customGrad) regenerates it from (seed, stream, offset).
import * as tf from '@tensorflow/tfjs-core';
import { toU64, keepRule, type KeepRule, type U64 } from './contract.js';
import { DropoutContext, runtimeOf, Usage, type ContextOptions } from './context.js';
import { Got, InvalidArgumentError, UnsupportedError } from './errors.js';
import { PhiloxGenerator } from './generator.js';
import { kernels, type KernelRecord } from './kernels/elementwise.js';
import { checkOptionNames, optionNames } from './options.js';
import { RANDOM_OPTION_NAMES, resolveRandom, type RandomState } from './ops/common.js';
import { structuredKernels } from './kernels/structured.js';
import { gaussianSigma } from './ops/gaussian.js';
import { broadcastTable, dropPathNoiseShape, resolveNoiseShape, spatialNoiseShape, type ChannelLayout, type NoiseShape } from './ops/shape.js';

// ---------------------------------------------------------------------------------------------
// The backend

/** The members of tfjs-backend-webgpu's WebGPUBackend (4.x) this module uses. */
interface WebGPUBackendLike {
  device: GPUDevice;
  tensorMap: { has(dataId: object): boolean; get(dataId: object): { resource?: unknown } | undefined };
  commandEncoder: GPUCommandEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const BACKEND_MEMBERS = ['device', 'tensorMap', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue', 'uploadToGPU', 'makeTensorInfo'] as const;

/** The active tfjs backend, which must be tfjs-backend-webgpu's. */
export function webgpuBackend(): WebGPUBackendLike {
  const name = tf.getBackend();
  if (name !== 'webgpu') {
    throw new UnsupportedError(
      `webgpu-dropout/tfjs runs on TensorFlow.js's WebGPU backend, but the active backend is ${name ? `'${name}'` : 'none'}: ` +
        "import '@tensorflow/tfjs-backend-webgpu' and call await tf.setBackend('webgpu') first",
    );
  }
  const backend = tf.backend() as unknown as WebGPUBackendLike;
  const missing = BACKEND_MEMBERS.filter((m) => (backend as unknown as Record<string, unknown>)[m] === undefined);
  if (missing.length) {
    throw new UnsupportedError(`the 'webgpu' backend lacks ${missing.join(', ')}: webgpu-dropout/tfjs needs @tensorflow/tfjs-backend-webgpu 4.x`);
  }
  return backend;
}

/**
 * Registers TensorFlow.js's WebGPU backend over `device` (replacing the 'webgpu' factory, which
 * would request a device of its own) and makes it the active backend. For Node, where the device
 * comes from 'webgpu-dropout/node' (Dawn); in a browser, `await tf.setBackend('webgpu')` alone is
 * enough and the backend's own device is used. tfjs only checks that `navigator.gpu` exists; where
 * it does not (Node), a stand-in that hands out `adapter` is installed. A 'webgpu' backend already
 * running on another device is removed (its tensors with it).
 */
export async function useTfjsDevice(device: GPUDevice, adapter?: GPUAdapter): Promise<void> {
  if (typeof device !== 'object' || device === null || typeof device.createBuffer !== 'function') throw new InvalidArgumentError('device', 'a GPUDevice', device);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    const gpu = { requestAdapter: async () => adapter ?? null, getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set<string>() };
    if (g.navigator) g.navigator.gpu = gpu;
    else g.navigator = { gpu };
  }
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  // Already set up on this device (the registry holds initialized backends; findBackend would
  // initialize the default factory's, which requests a device of its own).
  const current = (tf.engine().registry as Record<string, unknown>).webgpu as WebGPUBackendLike | undefined;
  if (current?.device === device) {
    if (!(await tf.setBackend('webgpu'))) throw new UnsupportedError("tf.setBackend('webgpu') failed on the given device");
    return;
  }
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter?.info as never), 3);
  if (!(await tf.setBackend('webgpu'))) throw new UnsupportedError("tf.setBackend('webgpu') failed on the given device");
  await tf.ready();
}

/** The contexts of the backends' devices: the uniform arena, bind groups, layouts and default generator. */
const contexts = new WeakMap<GPUDevice, DropoutContext>();

/**
 * The DropoutContext this module uses on the active backend's GPUDevice (created on first use;
 * its `generator` draws the streams of calls given neither seed nor generator).
 */
export function tfjsContext(options?: ContextOptions): DropoutContext {
  const { device } = webgpuBackend();
  let ctx = contexts.get(device);
  if (!ctx) contexts.set(device, (ctx = new DropoutContext(device, options)));
  return ctx;
}

/**
 * Makes `ctx` the context of its device here (e.g. to share its default generator or pool with
 * raw-buffer ops). It must be on the backend's own GPUDevice: buffers cannot cross devices.
 */
export function setTfjsContext(ctx: DropoutContext): void {
  if (!(ctx instanceof DropoutContext)) throw new InvalidArgumentError('context', 'a DropoutContext', ctx);
  const { device } = webgpuBackend();
  if (ctx.device !== device) {
    throw new InvalidArgumentError(
      'context',
      "a DropoutContext on the tfjs WebGPU backend's own GPUDevice (tf.backend().device); tensors cannot be bound on another device " +
        '(in Node, give the backend your device with useTfjsDevice(device); in a browser, create the context on tf.backend().device)',
      new Got('a context on another GPUDevice'),
    );
  }
  contexts.set(device, ctx);
}

// ---------------------------------------------------------------------------------------------
// Synchronous recording of a kernel record (the runtime's Dispatcher.recordNow)

/** A 16-byte storage buffer per context, bound where a structured kernel declares its mask table
 * but the call reads no table. */
const placeholders = new WeakMap<DropoutContext, GPUBuffer>();
function placeholderOf(ctx: DropoutContext): GPUBuffer {
  let b = placeholders.get(ctx);
  if (!b) placeholders.set(ctx, (b = ctx.device.createBuffer({ label: 'webgpu-dropout/tfjs no mask table', size: 16, usage: Usage.STORAGE })));
  return b;
}

interface Launch {
  kernel: KernelRecord;
  count: number;
  /** Storage buffers by the record's binding names. */
  buffers: Record<string, GPUBuffer>;
  rand: RandomState;
  threshold: number;
  scale: number;
  /** The record's own uniform fields, by name. */
  uniforms?: Record<string, number>;
  /** The broadcast table (structured kernels), bound at binding 4. */
  aux?: Uint32Array;
}

/** Records one kernel call into `encoder` now, chunked as DropoutContext.dispatch chunks it. */
function record(ctx: DropoutContext, encoder: GPUCommandEncoder, l: Launch): void {
  if (l.count === 0) return;
  const buffers: Record<string, { buffer: GPUBuffer; argument: string }> = {};
  for (const [name, buffer] of Object.entries(l.buffers)) buffers[name] = { buffer, argument: name === 'x' ? 'x' : 'out' };
  runtimeOf(ctx).dispatcher.recordNow(
    { kernel: l.kernel, dtype: 'f32', count: l.count, buffers, seed: l.rand.seed, stream: l.rand.stream, offset: l.rand.offset, threshold: l.threshold, scale: l.scale, uniforms: l.uniforms, aux: l.aux },
    encoder,
  );
}

// ---------------------------------------------------------------------------------------------
// Tensors in, tensors out

function checkTensor(x: unknown, argument: string): asserts x is tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new InvalidArgumentError(argument, 'a tf.Tensor', x);
  if (x.isDisposed) throw new InvalidArgumentError(argument, 'a live tf.Tensor', new Got('a disposed tensor'));
  if (x.dtype !== 'float32') {
    throw new InvalidArgumentError(
      argument,
      "a float32 tensor (the tfjs WebGPU backend has no float16 tensors; cast others with tf.cast(x, 'float32'))",
      new Got(`a ${x.dtype} tensor`),
    );
  }
}

/** The GPUBuffer holding a tensor's data on the backend (uploaded first if it is still on the CPU). */
function bufferOf(backend: WebGPUBackendLike, t: tf.Tensor | tf.TensorInfo, argument: string): GPUBuffer {
  if (!backend.tensorMap.has(t.dataId)) {
    // A tensor made under another backend: tfjs moves its data as it does for its own kernels.
    (tf.engine() as unknown as { moveData(b: unknown, id: object): void }).moveData(backend, t.dataId);
  }
  backend.uploadToGPU(t.dataId);
  const resource = backend.tensorMap.get(t.dataId)?.resource;
  if (typeof resource !== 'object' || resource === null || typeof (resource as GPUBuffer).mapAsync !== 'function') {
    throw new UnsupportedError(`${argument}: its data is not in a GPUBuffer on the WebGPU backend (a texture-backed tensor); pass tf.clone(${argument})`);
  }
  return resource as GPUBuffer;
}

/**
 * Runs `launch(input, output)` on a new float32 tensor of `shape` over `input`'s data: recorded into
 * the backend's open encoder, both tensors held by it until submitted, submitted when tfjs would.
 */
function runOp(ctx: DropoutContext, input: tf.Tensor, make: (x: GPUBuffer, out: GPUBuffer) => Launch): tf.Tensor {
  const backend = webgpuBackend();
  const x = bufferOf(backend, input, 'x');
  const info = backend.makeTensorInfo(input.shape.slice(), 'float32');
  backend.uploadToGPU(info.dataId);
  const out = bufferOf(backend, info, 'out');
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  record(ctx, backend.commandEncoder!, make(x, out));
  backend.commandQueueOwnedIds.add(input.dataId);
  backend.commandQueueOwnedIds.add(info.dataId);
  // Count the pass as tfjs counts its dispatches, so a loop of our ops alone still gets submitted
  // (and the buffers of disposed tensors recycled) every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE ops.
  backend.dispatchCountInPass++;
  if ((tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= backend.dispatchCountInPass) backend.submitQueue();
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor;
}

// ---------------------------------------------------------------------------------------------
// Ops

/** Where randomness comes from, as in the raw-buffer ops: `seed` (with `stream`, default 0), else
 * `generator` (its next stream), else the context's default generator; `offset` is the mask index of
 * element 0. */
export interface TfRandomOptions {
  seed?: U64;
  stream?: U64;
  generator?: PhiloxGenerator;
  offset?: U64;
}

export interface TfDropoutOptions extends TfRandomOptions {
  /** Drop probability in [0, 1]. */
  p: number;
  /** Mask shape: x's shape with some dimensions 1 (one decision per noise-shape element), as tf.dropout's. */
  noiseShape?: NoiseShape;
  /** false: the identity (a copy of x, no stream drawn). Default true. */
  training?: boolean;
  /** Called with the (seed, stream, offset) the call used, to replay its mask. */
  onState?: (state: RandomState) => void;
}

const BASE_NAMES = { ...RANDOM_OPTION_NAMES, p: true, training: true, onState: true } as const;
const DROPOUT_NAMES = optionNames<TfDropoutOptions>({ ...BASE_NAMES, noiseShape: true });

/** What an op does with its mask on one tensor (forward on x, backward on dy: the same map). */
type Apply = (ctx: DropoutContext, t: tf.Tensor) => tf.Tensor;

function checkOptions(opts: unknown, names: ReadonlySet<string>): asserts opts is TfDropoutOptions {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object with at least p', opts);
  checkOptionNames(opts, names);
  const onState = (opts as TfDropoutOptions).onState;
  if (onState !== undefined && typeof onState !== 'function') throw new InvalidArgumentError('onState', 'a function', onState);
}

/**
 * The op for x under `opts`: its stream drawn now (once), then `apply` for the forward and for the
 * gradient (dy mapped with the same mask, regenerated, never stored).
 */
function differentiable(x: tf.Tensor, opts: TfDropoutOptions, rule: KeepRule, apply: Apply): tf.Tensor {
  const training = opts.training ?? true;
  if (typeof training !== 'boolean') throw new InvalidArgumentError('training', 'a boolean', training);
  const ctx = tfjsContext();
  if (!training) {
    toU64(opts.offset ?? 0n, 'offset');
    return tf.clone(x);
  }
  const rand = resolveRandom(ctx, opts);
  opts.onState?.(rand);
  if (rule.kind === 'identity' || x.size === 0) return tf.clone(x);
  if (rule.kind === 'zeros') return tf.zerosLike(x);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: apply(ctx, args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => apply(ctx, dy.dtype === 'float32' ? dy : tf.cast(dy, 'float32')),
  }));
  return f(x) as tf.Tensor;
}

/** The masked map y = keep ? x * scale : 0 under a (broadcast) noise shape, for `rand`. */
function maskedApply(shape: number[], noiseShape: number[], rule: KeepRule & { kind: 'mask' }, rand: RandomState, scale: number): Apply {
  const elementwise = noiseShape.every((d, k) => d === shape[k]);
  const table = elementwise ? undefined : broadcastTable(shape, noiseShape);
  return (ctx, t) =>
    runOp(ctx, t, (x, out): Launch =>
      elementwise
        ? { kernel: kernels.dropoutForward, count: t.size, buffers: { x, out }, rand, threshold: rule.threshold, scale }
        : { kernel: structuredKernels.masked, count: t.size, buffers: { x, out, table: placeholderOf(ctx) }, rand, threshold: rule.threshold, scale, aux: table },
    );
}

/** A rule and a stream for x under opts, then the masked map, differentiable. */
function maskedOp(x: tf.Tensor, opts: TfDropoutOptions, noiseShape: number[], scaleByKeep = true): tf.Tensor {
  const rule = keepRule(opts.p);
  let state: RandomState | undefined;
  const onState = (s: RandomState) => {
    state = s;
    opts.onState?.(s);
  };
  return differentiable(x, { ...opts, onState }, rule, (ctx, t) => {
    if (rule.kind !== 'mask') throw new Error('unreachable: identity and zeros are handled before');
    return maskedApply(x.shape, noiseShape, rule, state!, scaleByKeep ? rule.scale : 1)(ctx, t);
  });
}

/**
 * Inverted dropout of a float32 tensor on the tfjs WebGPU backend: y = x * keep / (1 - p), keep
 * decided by the contract's words for (seed, stream, offset + mask index), as `dropout()` on raw
 * buffers. Differentiable: the gradient is dy * keep / (1 - p), the mask regenerated.
 * A drop-in for `tf.dropout(x, rate, noiseShape, seed)`: `dropout(x, { p: rate, noiseShape })`.
 */
export function dropout(x: tf.Tensor, opts: TfDropoutOptions): tf.Tensor {
  checkTensor(x, 'x');
  checkOptions(opts, DROPOUT_NAMES);
  keepRule(opts.p);
  return maskedOp(x, opts, resolveNoiseShape(x.shape, opts.noiseShape));
}

export interface TfSpatialDropoutOptions extends Omit<TfDropoutOptions, 'noiseShape'> {
  /** Default 'channels-last' (N, ..., C), tfjs' and Keras' default; 'channels-first' is (N, C, ...). */
  layout?: ChannelLayout;
  /** Or the channel axis itself. */
  channelAxis?: number;
}

const SPATIAL_NAMES = optionNames<TfSpatialDropoutOptions>({ ...BASE_NAMES, layout: true, channelAxis: true });

/** SpatialDropout1D/2D/3D: whole channels dropped, one decision per (sample, channel). */
export function spatialDropout(x: tf.Tensor, opts: TfSpatialDropoutOptions): tf.Tensor {
  checkTensor(x, 'x');
  checkOptions(opts, SPATIAL_NAMES);
  keepRule(opts.p);
  if (x.rank < 2) throw new InvalidArgumentError('x', 'a tensor of rank >= 2 (N, ..., C) or (N, C, ...)', new Got(`shape [${x.shape.join(', ')}]`));
  const layout = opts.layout ?? (opts.channelAxis === undefined ? 'channels-last' : undefined);
  return maskedOp(x, opts, spatialNoiseShape(x.shape, { layout, channelAxis: opts.channelAxis }));
}

export interface TfDropPathOptions extends Omit<TfDropoutOptions, 'noiseShape'> {
  /** Divide kept samples by 1 - p (timm's scale_by_keep, default true). */
  scaleByKeep?: boolean;
}

const DROP_PATH_NAMES = optionNames<TfDropPathOptions>({ ...BASE_NAMES, scaleByKeep: true });

/** DropPath / stochastic depth: each sample (axis 0) kept or zeroed whole. */
export function dropPath(x: tf.Tensor, opts: TfDropPathOptions): tf.Tensor {
  checkTensor(x, 'x');
  checkOptions(opts, DROP_PATH_NAMES);
  keepRule(opts.p);
  if (opts.scaleByKeep !== undefined && typeof opts.scaleByKeep !== 'boolean') throw new InvalidArgumentError('scaleByKeep', 'a boolean', opts.scaleByKeep);
  if (x.rank < 1) throw new InvalidArgumentError('x', 'a tensor of rank >= 1 (the batch first)', new Got('a scalar'));
  return maskedOp(x, opts, dropPathNoiseShape(x.shape), opts.scaleByKeep ?? true);
}

/**
 * Gaussian dropout (Keras GaussianDropout): y = x * (1 + sigma z), sigma = sqrt(p / (1 - p)), z
 * the contract's standard normal of the element's mask index. p in [0, 1). Differentiable:
 * dx = dy * (1 + sigma z), z regenerated.
 */
export function gaussianDropout(x: tf.Tensor, opts: TfDropoutOptions): tf.Tensor {
  checkTensor(x, 'x');
  checkOptions(opts, DROPOUT_NAMES);
  const sigma = gaussianSigma(opts.p);
  const shape = x.shape;
  const noiseShape = resolveNoiseShape(shape, opts.noiseShape);
  const table = broadcastTable(shape, noiseShape);
  let state: RandomState | undefined;
  const onState = (s: RandomState) => {
    state = s;
    opts.onState?.(s);
  };
  // The kernel's threshold is unused; a p of 0 is the identity.
  const rule: KeepRule = opts.p === 0 ? { kind: 'identity' } : { kind: 'mask', threshold: 0, scale: 1 };
  return differentiable(x, { ...opts, onState }, rule, (ctx, t) =>
    runOp(ctx, t, (xb, out) => ({
      kernel: structuredKernels.gaussian,
      count: t.size,
      buffers: { x: xb, out, table: placeholderOf(ctx) },
      rand: state!,
      threshold: 0,
      scale: 1,
      uniforms: { sigma },
      aux: table,
    })),
  );
}

// ---------------------------------------------------------------------------------------------
// MC-Dropout

export interface TfMcDropoutOptions {
  /** T, the number of stochastic passes (at least 2). */
  samples: number;
  /** 'regression' (default): statistics of the outputs. 'classification': outputs are logits
   * (..., K), statistics of their softmax plus the entropies and BALD. */
  task?: 'regression' | 'classification';
}

const MC_NAMES = optionNames<TfMcDropoutOptions>({ samples: true, task: true });

export interface TfMcDropoutResult {
  /** Mean over the T passes (of the softmax probabilities, for classification). */
  mean: tf.Tensor;
  /** Population variance over the T passes, per output. */
  variance: tf.Tensor;
  /** Classification, per row (the outputs' last axis summed out), in nats: H[mean p]. */
  predictiveEntropy?: tf.Tensor;
  /** E_t[H[p_t]]. */
  expectedEntropy?: tf.Tensor;
  /** BALD, the mutual information H[mean p] - E_t[H[p_t]] (clamped at 0). */
  mutualInformation?: tf.Tensor;
}

/** -sum p log p over the last axis, with 0 log 0 = 0. */
function entropy(p: tf.Tensor): tf.Tensor {
  return tf.neg(tf.sum(tf.where(tf.greater(p, 0), tf.mul(p, tf.log(p)), tf.zerosLike(p)), -1));
}

/**
 * MC-Dropout (Gal & Ghahramani 2016) for a tfjs model: `forward` is called T times with dropout
 * active, e.g. `(x) => model.apply(x, { training: true }) as tf.Tensor` for a model holding
 * WebGPUDropout layers (each call takes new streams), and the predictive statistics are computed as
 * tensors, with no readback. The intermediate tensors are disposed; the result's are the caller's.
 */
export function mcDropout(forward: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, opts: TfMcDropoutOptions): TfMcDropoutResult {
  if (typeof forward !== 'function') throw new InvalidArgumentError('forward', 'a function (x: tf.Tensor) => tf.Tensor', forward);
  if (!(x instanceof tf.Tensor)) throw new InvalidArgumentError('x', 'a tf.Tensor', x);
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object with samples', opts);
  checkOptionNames(opts, MC_NAMES);
  if (!Number.isSafeInteger(opts.samples) || opts.samples < 2) throw new InvalidArgumentError('samples', 'an integer >= 2', opts.samples);
  const task = opts.task ?? 'regression';
  if (task !== 'regression' && task !== 'classification') throw new InvalidArgumentError('task', "'regression' or 'classification'", task);
  return tf.tidy(() => {
    const outputs: tf.Tensor[] = [];
    for (let t = 0; t < opts.samples; t++) {
      const y = forward(x);
      if (!(y instanceof tf.Tensor)) throw new InvalidArgumentError('forward', 'a function returning a tf.Tensor', y);
      outputs.push(task === 'classification' ? tf.softmax(y) : y);
    }
    const stacked = tf.stack(outputs);
    const { mean, variance } = tf.moments(stacked, 0);
    if (task === 'regression') return { mean, variance };
    const predictiveEntropy = entropy(mean);
    const expectedEntropy = tf.mean(entropy(stacked), 0);
    const mutualInformation = tf.relu(tf.sub(predictiveEntropy, expectedEntropy));
    return { mean, variance, predictiveEntropy, expectedEntropy, mutualInformation };
  }) as TfMcDropoutResult;
}
