// Peers timed side by side with ours, in the same process on the same GPUDevice:
// TensorFlow.js's WebGPU backend (tf.dropout) and the library's CPU reference (plain JS).
import { dropout, referenceDropout } from '../src/index.js';
import type { BenchEnv } from './env.js';
import { P, SEED } from './ops.js';
import { median } from './timing.js';

export interface CallTiming {
  /** Median wall time of one call, from the call until the GPU queue is idle again, in ns. */
  ns: number;
  calls: number;
}

/** Calls `fn` (one complete call each) until `budgetMs` is spent, at least `min` and at most `max` times, after one warm-up. */
export async function timeCalls(fn: () => Promise<void>, budgetMs: number, min = 3, max = 50): Promise<CallTiming> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < max && (times.length < min || performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) * 1e6);
  }
  return { ns: median(times), calls: times.length };
}

/** Ours, timed the way the peers are: dropout(), flush, wait for the queue. Data already on the GPU. */
export async function oursPerCall(env: BenchEnv, n: number, budgetMs: number): Promise<CallTiming> {
  const { ctx, device } = env;
  const x = ctx.acquire(n * 4, 'peer x');
  const out = ctx.acquire(n * 4, 'peer out');
  try {
    return await timeCalls(async () => {
      await dropout(ctx, x, { p: P, seed: SEED, count: n, out });
      await device.queue.onSubmittedWorkDone();
    }, budgetMs);
  } finally {
    ctx.release(x);
    ctx.release(out);
  }
}

type Tf = typeof import('@tensorflow/tfjs-core');

export interface TfPeer {
  tf: Tf;
  /** tf.dropout on a resident tensor, its queue flushed and the GPU idle before the clock stops. */
  time(n: number, budgetMs: number): Promise<CallTiming>;
  /** tf.randomUniform alone: the part of tf.dropout that runs in JS on the CPU (before the upload). */
  timeMaskDraw(n: number, budgetMs: number): Promise<CallTiming>;
  dispose(): void;
}

/**
 * TensorFlow.js's WebGPU backend on our GPUDevice. tfjs-backend-webgpu registers its kernels
 * under the backend name 'webgpu' and builds its own device from navigator.gpu, so: give it a
 * navigator (Node 20 has none), then replace the 'webgpu' factory with one that wraps our device.
 */
export async function openTfPeer(env: BenchEnv): Promise<TfPeer> {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (!g.navigator) g.navigator = { gpu: env.gpu };
  else g.navigator.gpu ??= env.gpu;
  const tf = await import('@tensorflow/tfjs-core');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(env.device, env.adapter.info as never));
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
  await tf.ready();
  // The backend keeps its commands in an open encoder and pass until it decides to submit.
  const backend = tf.backend() as unknown as { commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void; submitQueue(): void };
  const flush = async () => {
    if (backend.commandEncoder) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    await env.device.queue.onSubmittedWorkDone();
  };
  return {
    tf,
    async time(n, budgetMs) {
      const x = tf.fill([n], 1.5);
      try {
        await flush();
        return await timeCalls(async () => {
          const y = tf.dropout(x, P);
          await flush();
          y.dispose();
        }, budgetMs, 3, 20);
      } finally {
        x.dispose();
      }
    },
    timeMaskDraw(n, budgetMs) {
      return timeCalls(async () => {
        tf.randomUniform([n], 0, 1, 'float32').dispose();
      }, budgetMs, 3, 20);
    },
    dispose() {
      tf.disposeVariables();
      tf.removeBackend('webgpu');
    },
  };
}

/** The CPU reference (src/reference.ts) on a host Float32Array. */
export function timeCpuReference(n: number, budgetMs: number): Promise<CallTiming> {
  const x = new Float32Array(n).fill(1.5);
  return timeCalls(async () => {
    referenceDropout(x, { p: P, seed: SEED, stream: 1n });
  }, budgetMs, 1, 10);
}
