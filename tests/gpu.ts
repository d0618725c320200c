// Shared test set-up: one Dawn device per test file on the adapter WEBGPU_DROPOUT_ADAPTER picks
// (lavapipe by default), and helpers that poison output buffers before every GPU run.
import { afterAll, expect } from 'vitest';
import { type ContextOptions, DropoutContext, InvalidArgumentError } from '../src/index.js';
import { type NodeDevice, requestNodeDevice } from '../src/node.js';

let acquired: Promise<NodeDevice> | null = null;
const contexts: DropoutContext[] = [];

export function nodeDevice(): Promise<NodeDevice> {
  acquired ??= requestNodeDevice();
  return acquired;
}

/** WEBGPU_DROPOUT_F16_PATH=packed runs the suites' f16 cases on the packed path where the adapter
 * has shader-f16 (tests/f16-packed.test.ts covers that path in every run). */
const F16_PATH = process.env.WEBGPU_DROPOUT_F16_PATH as ContextOptions['f16Path'] | undefined;

export async function gpuContext(options: ContextOptions = {}): Promise<DropoutContext> {
  const { device } = await nodeDevice();
  const ctx = await DropoutContext.create(device, { seed: 1234n, ...(F16_PATH ? { f16Path: F16_PATH } : {}), ...options });
  contexts.push(ctx);
  return ctx;
}

afterAll(async () => {
  for (const c of contexts) c.destroy();
  if (acquired) (await acquired).release();
  acquired = null;
});

/** The poison pattern written into every output before a GPU run: a NaN no kernel produces. */
export const POISON_WORD = 0x7fbadbad;

/** A storage buffer of `bytes` (rounded up to 4) filled with the poison pattern. */
export function poisoned(ctx: DropoutContext, bytes: number): GPUBuffer {
  const words = new Uint32Array(Math.ceil(bytes / 4)).fill(POISON_WORD);
  return ctx.upload(words, 'poisoned output');
}

export function upload(ctx: DropoutContext, data: Float32Array | Uint16Array | Uint32Array): GPUBuffer {
  return ctx.upload(data);
}

/** Deterministic pseudo-random test data (not the library's RNG), values in [-4, 4). */
export function testData(n: number, salt = 1): Float32Array {
  const out = new Float32Array(n);
  let s = (0x9e3779b9 ^ salt) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 8 - 4;
  }
  return out;
}

/** Runs `call` (sync throw or rejection), expects InvalidArgumentError for `argument` with `message`. */
export async function expectInvalid(call: () => unknown, argument: string, message: RegExp): Promise<InvalidArgumentError> {
  let caught: unknown;
  try {
    await call();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected InvalidArgumentError for '${argument}'`).toBeInstanceOf(InvalidArgumentError);
  const err = caught as InvalidArgumentError;
  expect(err.argument).toBe(argument);
  expect(err.message).toMatch(message);
  expect(err.message.startsWith(`${argument}: expected `)).toBe(true);
  return err;
}
