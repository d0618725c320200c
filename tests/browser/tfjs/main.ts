// The page of tests/tfjs-browser.test.ts: webgpu-dropout/tfjs on the page's own WebGPU through
// tfjs-backend-webgpu (whose device tfjs requests itself), results left on window.__tfjs.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { dropout, spatialDropout } from '../../../src/tfjs.js';
import { N, OPTS } from './params.js';

async function run() {
  if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') failed");
  const xs = Float32Array.from({ length: N }, (_, i) => (i % 17) - 8.5);
  const x = tf.tensor(xs);
  const y = dropout(x, OPTS);
  const dx = tf.grad((t: tf.Tensor) => dropout(t, OPTS))(x);
  const s = spatialDropout(tf.reshape(x, [10, 25, 4]), OPTS);
  return {
    backend: tf.getBackend(),
    y: Array.from(await y.data()),
    dx: Array.from(await dx.data()),
    spatial: Array.from(await s.data()),
  };
}

const result = run().catch((e: unknown) => ({ error: String((e as Error)?.stack ?? e) }));
(window as unknown as { __tfjs: typeof result }).__tfjs = result;
void result.then(() => (document.getElementById('state')!.textContent = 'done'));
