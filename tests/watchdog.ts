// A watchdog for every test file (vitest.config.ts's setupFiles): when the file's main thread stops
// answering, which a deadlock in native code (Dawn) causes and no testTimeout can see, a worker
// thread prints the file and the test that was running and kills the process with SIGKILL. Vitest
// then fails that file and goes on with the others, instead of waiting for CI's time limit.
//
// The main thread beats every second; a test that is merely slow keeps beating and is left to
// testTimeout. WEBGPU_DROPOUT_STALL_S sets how long a silence is tolerated (default 60 s).

import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, expect } from 'vitest';

const STALL_S = Number(process.env.WEBGPU_DROPOUT_STALL_S ?? 60);
const NAME_BYTES = 1024;

// [0]: the last beat (seconds since start, as an integer), [1]: the length of the name in `name`.
const shared = new SharedArrayBuffer(8 + NAME_BYTES);
const state = new Int32Array(shared, 0, 2);
const name = new Uint8Array(shared, 8, NAME_BYTES);
const started = Date.now();

function beat(): void {
  Atomics.store(state, 0, Math.floor((Date.now() - started) / 1000));
}

function running(what: string): void {
  const bytes = new TextEncoder().encode(what).subarray(0, NAME_BYTES);
  name.set(bytes);
  Atomics.store(state, 1, bytes.length);
  beat();
}

const file = expect.getState().testPath ?? 'an unknown test file';
running(`${file} (outside any test: loading it, or a beforeAll/afterAll hook)`);
setInterval(beat, 1000).unref();
beforeEach((context) => running(`${file} > ${context.task.name}`));
afterEach(() => running(`${file} (between tests, or an afterAll hook)`));

// The watchdog: plain JavaScript in a thread of its own, which a blocked main thread cannot stop.
const watchdog = new Worker(
  `
  const { workerData } = require('node:worker_threads');
  const { writeSync } = require('node:fs');
  const state = new Int32Array(workerData.shared, 0, 2);
  const name = new Uint8Array(workerData.shared, 8, workerData.nameBytes);
  setInterval(() => {
    const now = Math.floor((Date.now() - workerData.started) / 1000);
    const silent = now - Atomics.load(state, 0);
    if (silent < workerData.stallS) return;
    const what = new TextDecoder().decode(name.slice(0, Atomics.load(state, 1)));
    writeSync(2, '\\n[watchdog] ' + what + ': the main thread has not answered for ' + silent + ' s (a deadlock?); killing test process ' + process.pid + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }, 1000);
  `,
  { eval: true, workerData: { shared, nameBytes: NAME_BYTES, started, stallS: STALL_S } },
);
watchdog.unref();
