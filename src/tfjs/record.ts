// Synchronous recording for webgpu-dropout/tfjs: a KernelCall recorded now into the backend's
// open encoder (the runtime's Dispatcher.recordNow), over tensors' own GPUBuffers, with the output
// a new tensor the backend allocated.
import * as tf from '@tensorflow/tfjs-core';
import { Got, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { type DropoutContext, runtimeOf } from '../runtime/context.js';
import type { KernelCall } from '../runtime/dispatch.js';
import type { BoundBuffer } from '../runtime/units.js';
import { type WebGPUBackendLike, webgpuBackend } from './backend.js';

// ---------------------------------------------------------------------------------------------
// Tensors in, tensors out

export function checkTensor(x: unknown, argument: string): asserts x is tf.Tensor {
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
    throw new UnsupportedError(
      `${argument}: its data is not in a GPUBuffer on the WebGPU backend (a texture-backed tensor); pass tf.clone(${argument})`,
    );
  }
  return resource as GPUBuffer;
}

/**
 * Runs the call `make(input, output)` gives on a new float32 tensor of `input`'s shape: recorded
 * into the backend's open encoder, both tensors held by it until submitted, submitted when tfjs would.
 */
export function runOp(ctx: DropoutContext, input: tf.Tensor, make: (x: BoundBuffer, out: BoundBuffer) => KernelCall): tf.Tensor {
  const backend = webgpuBackend();
  const x = bufferOf(backend, input, 'x');
  const info = backend.makeTensorInfo(input.shape.slice(), 'float32');
  backend.uploadToGPU(info.dataId);
  const out = bufferOf(backend, info, 'out');
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  const call = make({ buffer: x, argument: 'x' }, { buffer: out, argument: 'out' });
  runtimeOf(ctx).dispatcher.recordNow(call, backend.commandEncoder!);
  backend.commandQueueOwnedIds.add(input.dataId);
  backend.commandQueueOwnedIds.add(info.dataId);
  // Count the pass as tfjs counts its dispatches, so a loop of our ops alone still gets submitted
  // (and the buffers of disposed tensors recycled) every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE ops.
  backend.dispatchCountInPass++;
  if ((tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= backend.dispatchCountInPass) backend.submitQueue();
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor;
}
