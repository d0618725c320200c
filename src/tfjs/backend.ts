// webgpu-dropout/tfjs's view of TensorFlow.js: the active WebGPU backend (checked for the members
// this entry uses), registering it over a caller's device, and the DropoutContext of its device.
import * as tf from '@tensorflow/tfjs-core';
import { Got, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { DropoutContext } from '../runtime/context.js';
import type { ContextOptions } from '../runtime/options.js';

/** The members of tfjs-backend-webgpu's WebGPUBackend (4.x) this module uses: a view of
 * `tf.backend()`, not a type of the backend's own. */
export interface WebGPUBackendLike {
  /** The backend's GPUDevice, which every tensor's buffer belongs to. */
  device: GPUDevice;
  /** The backend's tensor storage, by data id (a tensor's `resource` is its GPUBuffer once uploaded). */
  tensorMap: {
    /** Whether the backend holds data for `dataId`. */
    has(dataId: object): boolean;
    /** The backend's record of `dataId`'s data. */
    get(dataId: object):
      | {
          /** The data's GPU resource (its GPUBuffer, for a tensor on the GPU). */
          resource?: unknown;
        }
      | undefined;
  };
  /** The backend's open command encoder, or null between submissions. */
  commandEncoder: GPUCommandEncoder | null;
  /** Data ids of the tensors the backend's pending commands use. */
  commandQueueOwnedIds: WeakSet<object>;
  /** Dispatches recorded into the current batch (the backend submits after a limit). */
  dispatchCountInPass: number;
  /** Opens the command encoder if none is open. */
  ensureCommandEncoderReady(): void;
  /** Ends the open compute pass, if any, so that other commands can be recorded. */
  endComputePassEncoder(): void;
  /** Submits the open command encoder. */
  submitQueue(): void;
  /** Moves a tensor's data to its GPU buffer. */
  uploadToGPU(dataId: object): void;
  /** Allocates a tensor of `shape` and `dtype` on the backend. */
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const BACKEND_MEMBERS = [
  'device',
  'tensorMap',
  'ensureCommandEncoderReady',
  'endComputePassEncoder',
  'submitQueue',
  'uploadToGPU',
  'makeTensorInfo',
] as const;

/** The active tfjs backend, which must be tfjs-backend-webgpu's.
 * @throws {@link "webgpu-dropout".UnsupportedError | UnsupportedError} when the active backend is not
 *   'webgpu' or lacks a member this module uses (a tfjs-backend-webgpu other than 4.x). */
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
    throw new UnsupportedError(
      `the 'webgpu' backend lacks ${missing.join(', ')}: webgpu-dropout/tfjs needs @tensorflow/tfjs-backend-webgpu 4.x`,
    );
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
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} (rejects) for a `device`
 *   that is not a GPUDevice; {@link "webgpu-dropout".UnsupportedError | UnsupportedError} when
 *   `tf.setBackend('webgpu')` fails on it.
 */
export async function useTfjsDevice(device: GPUDevice, adapter?: GPUAdapter): Promise<void> {
  if (typeof device !== 'object' || device === null || typeof device.createBuffer !== 'function')
    throw new InvalidArgumentError('device', 'a GPUDevice', device);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    const gpu = {
      requestAdapter: async () => adapter ?? null,
      getPreferredCanvasFormat: () => 'rgba8unorm',
      wgslLanguageFeatures: new Set<string>(),
    };
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
 * its `generator` draws the streams of calls given neither seed nor generator). `options` apply
 * only when this call creates it. Throws as {@link webgpuBackend} does.
 */
export function tfjsContext(options?: ContextOptions): DropoutContext {
  const { device } = webgpuBackend();
  let ctx = contexts.get(device);
  if (!ctx) {
    ctx = new DropoutContext(device, options);
    contexts.set(device, ctx);
  }
  return ctx;
}

/**
 * Makes `ctx` the context of its device here (e.g. to share its default generator or pool with
 * raw-buffer ops). It must be on the backend's own GPUDevice: buffers cannot cross devices.
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} (argument `context`) for a
 *   context on another device, or not a DropoutContext.
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
