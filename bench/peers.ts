// Peers timed side by side with ours, in the same process on the same GPUDevice:
// TensorFlow.js's WebGPU backend (tf.dropout) and the library's CPU reference (plain JS).
import { dropout } from '../src/index.js';
import { referenceDropout } from '../src/reference.js';
import type { BenchEnv } from './env.js';
import { P, SEED } from './ops.js';
import { median, quantile } from './timing.js';

export interface CallTiming {
  /** Median wall time of one call, from the call until the GPU queue is idle again, in ns. */
  ns: number;
  calls: number;
}

/** Calls `fn` (one complete call each) until `budgetMs` is spent, at least `min` and at most `max` times, after one warm-up. */
export async function timeCalls(fn: () => Promise<void>, budgetMs: number, min = 3, max = 50): Promise<CallTiming> {
  const [t] = await timeCallsTogether([fn], budgetMs, min, max);
  return { ns: t!.ns, calls: t!.calls };
}

/**
 * Several callers timed in rounds, one call of each per round (after one warm-up call each), so
 * a load change on a shared machine hits them alike; `perRound` keeps each round's times in order.
 */
export async function timeCallsTogether(
  fns: (() => Promise<void>)[],
  budgetMs: number,
  min = 3,
  max = 50,
): Promise<(CallTiming & { perRound: number[] })[]> {
  for (const fn of fns) await fn();
  const times: number[][] = fns.map(() => []);
  const start = performance.now();
  while (times[0]!.length < max && (times[0]!.length < min || performance.now() - start < budgetMs)) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]!();
      times[i]!.push((performance.now() - t0) * 1e6);
    }
  }
  return times.map((t) => ({ ns: median(t), calls: t.length, perRound: t }));
}

/** A peer and ours timed together: their medians, and the median of the per-round ratios peer / ours. */
export interface PeerTiming {
  peer: CallTiming;
  ours: CallTiming;
  ratio: number;
  /** Quartiles of the per-round ratios. */
  ratioRange: [number, number];
}

/**
 * Ours, timed the way the peers are (dropout(), flush, wait for the queue; data already on the GPU),
 * in rounds with the peer's calls.
 */
export async function timeAgainstOurs(
  env: BenchEnv,
  n: number,
  peer: () => Promise<void>,
  budgetMs: number,
  min = 3,
  max = 20,
): Promise<PeerTiming> {
  const { ctx, device } = env;
  const x = ctx.acquire(n * 4, 'peer x');
  const out = ctx.acquire(n * 4, 'peer out');
  try {
    const ours = async () => {
      await dropout(ctx, x, { p: P, seed: SEED, count: n, out });
      await device.queue.onSubmittedWorkDone();
    };
    const [p, o] = await timeCallsTogether([peer, ours], budgetMs, min, max);
    const ratios = p!.perRound.map((t, i) => t / o!.perRound[i]!);
    return {
      peer: { ns: p!.ns, calls: p!.calls },
      ours: { ns: o!.ns, calls: o!.calls },
      ratio: median(ratios),
      ratioRange: [quantile(ratios, 0.25), quantile(ratios, 0.75)],
    };
  } finally {
    ctx.release(x);
    ctx.release(out);
  }
}

type Tf = typeof import('@tensorflow/tfjs-core');

export interface TfPeer {
  tf: Tf;
  /** tf.dropout on a resident tensor, its queue flushed and the GPU idle before the clock stops, in
   * rounds with ours (at least `minRounds`). */
  time(n: number, budgetMs: number, minRounds?: number): Promise<PeerTiming>;
  /** tf.dropout against webgpu-dropout/tfjs's dropout on the same resident tensor, both flushed and
   * waited for alike, in rounds: the drop-in replacement, tensor in, tensor out. */
  timeTfjsEntry(n: number, budgetMs: number, minRounds?: number): Promise<PeerTiming>;
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
  const backend = tf.backend() as unknown as {
    commandEncoder: GPUCommandEncoder | null;
    endComputePassEncoder(): void;
    submitQueue(): void;
  };
  const flush = async () => {
    if (backend.commandEncoder) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    await env.device.queue.onSubmittedWorkDone();
  };
  return {
    tf,
    async time(n, budgetMs, minRounds = 3) {
      const x = tf.fill([n], 1.5);
      try {
        await flush();
        return await timeAgainstOurs(
          env,
          n,
          async () => {
            const y = tf.dropout(x, P);
            await flush();
            y.dispose();
          },
          budgetMs,
          minRounds,
        );
      } finally {
        x.dispose();
      }
    },
    async timeTfjsEntry(n, budgetMs, minRounds = 3) {
      const ours = await import('../src/tfjs.js');
      const x = tf.fill([n], 1.5);
      try {
        await flush();
        const call = (op: () => import('@tensorflow/tfjs-core').Tensor) => async () => {
          const y = op();
          await flush();
          y.dispose();
        };
        const [p, o] = await timeCallsTogether(
          [call(() => tf.dropout(x, P)), call(() => ours.dropout(x, { p: P, seed: SEED, stream: 1n }))],
          budgetMs,
          minRounds,
          20,
        );
        const ratios = p!.perRound.map((t, i) => t / o!.perRound[i]!);
        return {
          peer: { ns: p!.ns, calls: p!.calls },
          ours: { ns: o!.ns, calls: o!.calls },
          ratio: median(ratios),
          ratioRange: [quantile(ratios, 0.25), quantile(ratios, 0.75)],
        };
      } finally {
        x.dispose();
      }
    },
    timeMaskDraw(n, budgetMs) {
      return timeCalls(
        async () => {
          tf.randomUniform([n], 0, 1, 'float32').dispose();
        },
        budgetMs,
        3,
        20,
      );
    },
    dispose() {
      tf.disposeVariables();
      tf.removeBackend('webgpu');
    },
  };
}

/** The CPU reference (src/reference/dropout.ts) on a host Float32Array, in rounds with ours. */
export function timeCpuReference(env: BenchEnv, n: number, budgetMs: number): Promise<PeerTiming> {
  const x = new Float32Array(n).fill(1.5);
  return timeAgainstOurs(
    env,
    n,
    async () => {
      referenceDropout(x, { p: P, seed: SEED, stream: 1n });
    },
    budgetMs,
    1,
    10,
  );
}
