// Host-side behaviour that output comparisons alone do not reach (from a mutation audit): the
// context's validation switch, readBytes ranges, batching and caller encoders, destroy and device
// loss; seeds, generators and typed arrays; adapter choice and the device request; layers passing
// out and encoder through.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { U64_MAX } from '../src/contract.js';
import {
  bernoulliMask,
  DeviceLostError,
  DropConnect,
  Dropout,
  DropoutContext,
  DropPath,
  dropout,
  dropoutArray,
  InvalidArgumentError,
  PhiloxGenerator,
  randomWords,
  readArray,
  requestDropoutDevice,
  SpatialDropout2D,
  toHalfArray,
  UnsupportedError,
  VariationalDropout,
} from '../src/index.js';
import { ADAPTER_ENV, requestNodeDevice, resolveIcd } from '../src/node.js';
import { contractWords } from '../src/reference/philox.js';
import { referenceDropout, referenceStructuredDropout } from '../src/reference.js';
import { runtimeOf } from '../src/runtime/context.js';
import { gpuContext, nodeDevice, POISON_WORD, poisoned, testData } from './gpu.js';

function lavapipeInstalled(): boolean {
  try {
    return resolveIcd('lavapipe') !== undefined;
  } catch {
    return false;
  }
}

/** Whether every word of `b` still holds the poison (nothing was written). */
const allPoison = async (ctx: DropoutContext, b: GPUBuffer) =>
  new Uint32Array(await ctx.readBytes(b, b.size)).every((w) => w === POISON_WORD);

describe('context: validate, readBytes, batching, caller encoders, destroy', () => {
  it('validate: false opens no error scope (dropout, readBytes); the default does', async () => {
    const { device } = await nodeDevice();
    const original = device.pushErrorScope;
    let scopes = 0;
    device.pushErrorScope = function (this: GPUDevice, filter: GPUErrorFilter) {
      scopes++;
      return original.call(this, filter);
    };
    try {
      for (const validate of [false, true]) {
        const ctx = await gpuContext({ validate });
        const x = ctx.upload(testData(64));
        await ctx.flush();
        scopes = 0;
        const { output } = await dropout(ctx, x, { p: 0.5, seed: 1n });
        await ctx.readBytes(output, 16);
        if (validate) expect(scopes).toBeGreaterThanOrEqual(2);
        else expect(scopes).toBe(0);
      }
    } finally {
      device.pushErrorScope = original;
    }
  });

  it('readBytes reads [byteOffset, byteOffset + bytes), checks the range with the offset, and 4-byte alignment', async () => {
    const ctx = await gpuContext();
    const b = ctx.upload(Uint32Array.from({ length: 8 }, (_, i) => 100 + i));
    expect(Array.from(new Uint32Array(await ctx.readBytes(b, 8, 12)))).toEqual([103, 104]);
    expect(Array.from(new Uint8Array(await ctx.readBytes(b, 3, 4)))).toEqual([101, 0, 0]);
    expect((await ctx.readBytes(b, 5)).byteLength).toBe(5);
    await expect(ctx.readBytes(b, 8, 28)).rejects.toThrow(/buffer: expected a readable range inside its 32 bytes/);
    await expect(ctx.readBytes(b, 4, 2)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('readBytes submits work recorded into the batch first', async () => {
    const ctx = await gpuContext();
    const src = ctx.upload(Uint32Array.from([1, 2, 3, 4]));
    const dst = poisoned(ctx, 16);
    await ctx.flush();
    const recorded = runtimeOf(ctx).submission.encode((e) => e.copyBufferToBuffer(src, 0, dst, 0, 16));
    const got = await ctx.readBytes(dst, 16);
    await recorded;
    expect(Array.from(new Uint32Array(got))).toEqual([1, 2, 3, 4]);
  });

  it('an op given a caller encoder records only: nothing runs until the caller submits', async () => {
    const ctx = await gpuContext();
    const x = testData(100);
    const out = poisoned(ctx, 400);
    const encoder = ctx.device.createCommandEncoder();
    await dropout(ctx, ctx.upload(x), { p: 0.3, seed: 5n, out, encoder });
    await ctx.flush();
    expect(await allPoison(ctx, out), 'the op ran before the caller submitted its encoder').toBe(true);
    ctx.device.queue.submit([encoder.finish()]);
    expect(Array.from(await readArray(ctx, out, 'f32', 100))).toEqual(Array.from(referenceDropout(x, { p: 0.3, seed: 5n })));
  });

  it('after destroy(): ops and readBytes reject with DeviceLostError, and the idle pool buffers are destroyed', async () => {
    const ctx = await gpuContext();
    const other = await gpuContext();
    const x = ctx.upload(testData(64));
    const idle = ctx.acquire(4096);
    ctx.release(idle);
    await ctx.flush();
    ctx.destroy();
    await expect(dropout(ctx, x, { p: 0.5, seed: 1n })).rejects.toBeInstanceOf(DeviceLostError);
    await expect(ctx.readBytes(x, 16)).rejects.toThrow(/destroyed/);
    expect(() => ctx.acquire(16)).toThrow(DeviceLostError);
    // The idle buffer was destroyed: another context on the device cannot read it.
    await expect(other.readBytes(idle, 16)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('ops, generators and typed arrays', () => {
  it('eval mode returns the offset it was given in the state', async () => {
    const ctx = await gpuContext();
    const x = ctx.upload(testData(16));
    const { state } = await dropout(ctx, x, { p: 0.5, training: false, offset: 5n });
    expect(state.offset).toBe(5n);
  });

  it('an explicit seed wins over a generator, which is then left alone', async () => {
    const ctx = await gpuContext();
    const gen = new PhiloxGenerator(99n, 40n);
    const x = testData(64);
    const out = poisoned(ctx, 256);
    const { state } = await dropout(ctx, ctx.upload(x), { p: 0.5, seed: 7n, generator: gen, out });
    expect([state.seed, state.stream]).toEqual([7n, 0n]);
    expect(gen.stream).toBe(40n);
    expect(Array.from(await readArray(ctx, out, 'f32', 64))).toEqual(Array.from(referenceDropout(x, { p: 0.5, seed: 7n })));
  });

  it('a generator serves stream 2^64 - 1 and then refuses, naming the generator; bad streams are named "stream"', async () => {
    const ctx = await gpuContext();
    const gen = new PhiloxGenerator(3n, U64_MAX);
    const { output, state } = await bernoulliMask(ctx, { count: 8, p: 0.5, generator: gen });
    expect(state.stream).toBe(U64_MAX);
    expect(Array.from(await readArray(ctx, output, 'u32', 8)).every((v) => v === 0 || v === 1)).toBe(true);
    const w = await randomWords(ctx, { count: 4, seed: 3n, stream: U64_MAX });
    expect(Array.from(await readArray(ctx, w.output, 'u32', 4))).toEqual(Array.from(contractWords(3n, U64_MAX, 4)));
    let e: unknown;
    try {
      gen.take();
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).argument).toBe('generator');
    for (const bad of [-1, 2n ** 64n, 1.5]) {
      let s: unknown;
      try {
        new PhiloxGenerator(1n, bad as bigint);
      } catch (err) {
        s = err;
      }
      expect((s as InvalidArgumentError).argument).toBe('stream');
    }
  });

  it('contexts created without a seed get different random default seeds', async () => {
    const { device } = await nodeDevice();
    const seeds = new Set<bigint>();
    for (let i = 0; i < 4; i++) {
      const c = await DropoutContext.create(device);
      seeds.add(c.generator.seed);
      c.destroy();
    }
    expect(seeds.size).toBe(4);
  });

  it('dropoutArray round-trips f16 bit patterns (Uint16Array) against the reference', async () => {
    const ctx = await gpuContext();
    const x = toHalfArray(testData(37));
    const { output, state } = await dropoutArray(ctx, x, { p: 0.25, seed: 11n });
    expect(output).toBeInstanceOf(Uint16Array);
    expect(state.dtype).toBe('f16');
    expect(Array.from(output)).toEqual(Array.from(referenceDropout(x, { p: 0.25, seed: 11n })));
  });

  it('packed bernoulliMask accepts an out of exactly ceil(count / 32) words', async () => {
    const ctx = await gpuContext();
    const out = poisoned(ctx, 8);
    await bernoulliMask(ctx, { count: 64, p: 0.5, seed: 1n, packed: true, out });
    expect(await allPoison(ctx, out)).toBe(false);
  });
});

describe('Node adapter choice and device request', () => {
  it('the suite runs on the adapter WEBGPU_DROPOUT_ADAPTER names (lavapipe by default), and lavapipe has shader-f16, so no f16 check skips there', async () => {
    // Without this, a broken ICD choice could run every GPU test on some other adapter (or skip
    // the f16 checks) and still pass.
    const { icd, adapterName, adapter } = await nodeDevice();
    const choice = process.env[ADAPTER_ENV]?.trim() || 'default';
    if (choice === 'default' && !lavapipeInstalled()) return expect(icd).toBe('system');
    if (choice === 'default' || choice === 'lavapipe') {
      expect(icd).toMatch(/\/lvp_icd[^/]*\.json$/);
      expect(adapterName).toMatch(/llvmpipe/i);
      expect(adapter.features.has('shader-f16')).toBe(true);
      expect((await gpuContext({ f16Path: undefined })).f16Path).toBe('native');
    } else if (choice === 'swiftshader') {
      expect(icd).toMatch(/vk_swiftshader_icd\.json$/);
      expect(adapterName).toMatch(/swiftshader/i);
    } else {
      expect(icd).toBe(choice === 'system' ? 'system' : choice);
    }
  });

  it('resolveIcd: unset/lavapipe give the lvp ICD, system gives none, swiftshader and a path resolve, junk is refused', () => {
    if (!lavapipeInstalled())
      return console.warn('resolveIcd checks skipped: lavapipe is not installed (WEBGPU_DROPOUT_ADAPTER=system runs)');
    const lvp = resolveIcd('lavapipe');
    expect(lvp).toMatch(/\/lvp_icd[^/]*\.json$/);
    expect(resolveIcd('')).toBe(lvp);
    expect(resolveIcd(' lavapipe ')).toBe(lvp);
    expect(resolveIcd('system')).toBeUndefined();
    if (existsSync('/usr/lib/chromium/vk_swiftshader_icd.json'))
      expect(resolveIcd('swiftshader')).toBe('/usr/lib/chromium/vk_swiftshader_icd.json');
    expect(resolveIcd(lvp!)).toBe(lvp);
    expect(() => resolveIcd('/no/such/icd.json')).toThrow(UnsupportedError);
    expect(() => resolveIcd('/no/such/icd.json')).toThrow(/^WEBGPU_DROPOUT_ADAPTER=\/no\/such\/icd\.json: no such file/);
    expect(() => resolveIcd(tmpdir(), 'adapter')).toThrow(/^adapter=.*: not a file/);
    expect(() => resolveIcd('bogus', 'adapter')).toThrow(/^adapter: expected lavapipe, swiftshader, system or an ICD json path/);
  });

  it('requestNodeDevice honours request.adapter; release() destroys the device', async () => {
    await expect(requestNodeDevice({ adapter: 'bogus' })).rejects.toThrow(/^adapter: /);
    if (!lavapipeInstalled()) return console.warn('requestNodeDevice({ adapter }) not checked: lavapipe is not installed');
    const dev = await requestNodeDevice({ adapter: 'lavapipe' });
    expect(dev.icd).toMatch(/lvp_icd/);
    expect(dev.adapterName).toMatch(/llvmpipe/i);
    dev.release();
    const info = await Promise.race([dev.device.lost, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(info?.reason).toBe('destroyed');
  });

  it("requestDropoutDevice: f16 'require'/'prefer'/'off', the adapter's largest limits, timestamp-query, the adapter's name", async () => {
    const requests: GPUDeviceDescriptor[] = [];
    const fakeGpu = (features: string[]) =>
      ({
        requestAdapter: async () => ({
          features: new Set(features),
          limits: { maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 31 },
          info: { vendor: 'acme', architecture: 'rx', device: '', description: 'acme' },
          requestDevice: async (d: GPUDeviceDescriptor) => {
            requests.push(d);
            return { fake: true };
          },
        }),
      }) as unknown as GPU;
    await expect(requestDropoutDevice({ gpu: fakeGpu([]), f16: 'require' })).rejects.toThrow(UnsupportedError);
    expect(requests).toHaveLength(0);
    const got = await requestDropoutDevice({ gpu: fakeGpu(['shader-f16', 'timestamp-query']) });
    expect(got.adapterName).toBe('acme / rx');
    await requestDropoutDevice({ gpu: fakeGpu(['shader-f16']), f16: 'off' });
    expect(requests.map((r) => [...(r.requiredFeatures ?? [])].sort())).toEqual([['shader-f16', 'timestamp-query'], []]);
    for (const r of requests) expect(r.requiredLimits).toEqual({ maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 31 });
  });
});

describe('layers pass out and encoder through', () => {
  it('structured layers write into the given out', async () => {
    const ctx = await gpuContext();
    const x = testData(120);
    const shape = [2, 3, 4, 5];
    const out = poisoned(ctx, 480);
    const r = await new SpatialDropout2D(ctx, { p: 0.5, generator: new PhiloxGenerator(9n) }).forward(ctx.upload(x), { shape, out });
    expect(r.output).toBe(out);
    const out2 = poisoned(ctx, 480);
    expect(
      (await new DropPath(ctx, { p: 0.5, generator: new PhiloxGenerator(9n) }).forward(ctx.upload(x), { shape, out: out2 })).output,
    ).toBe(out2);
    expect(Array.from(await readArray(ctx, out, 'f32', 120))).toEqual(
      Array.from(referenceStructuredDropout(x, { p: 0.5, shape, noiseShape: [2, 1, 1, 5], seed: 9n, stream: 0n })),
    );
  });

  it('layers given an encoder record only; the caller submit runs them', async () => {
    const ctx = await gpuContext();
    const x = ctx.upload(testData(60));
    const encoder = ctx.device.createCommandEncoder();
    const outs = [poisoned(ctx, 240), poisoned(ctx, 240), poisoned(ctx, 240)];
    await new Dropout(ctx, { p: 0.5, generator: new PhiloxGenerator(1n) }).forward(x, { out: outs[0], encoder });
    await new VariationalDropout(ctx, { p: 0.5, generator: new PhiloxGenerator(1n) }).forward(x, {
      shape: [3, 4, 5],
      out: outs[1],
      encoder,
    });
    await new DropConnect(ctx, 6, 10, { p: 0.5, generator: new PhiloxGenerator(1n) }).forward(x, { out: outs[2], encoder });
    await ctx.flush();
    for (const [i, o] of outs.entries()) expect(await allPoison(ctx, o), `layer ${i} ran before the caller's submit`).toBe(true);
    ctx.device.queue.submit([encoder.finish()]);
    for (const o of outs) expect(await allPoison(ctx, o)).toBe(false);
  });

  it('VariationalDropout refuses a negative or fractional timeAxis at construction', async () => {
    const ctx = await gpuContext();
    for (const timeAxis of [-1, 0.5])
      expect(() => new VariationalDropout(ctx, { p: 0.5, timeAxis })).toThrow(/timeAxis: expected a non-negative integer/);
  });
});

describe('batching and device loss, harder cases', () => {
  it('an op of two dispatches lands in one submit: a refused in-place forward with a mask writes no mask and names its argument', async () => {
    const c = await gpuContext();
    const doomed = c.upload(testData(1024, 2));
    await c.flush();
    const mask = poisoned(c, 128);
    // Its two dispatches (in-place forward, mask) are recorded together: the error names the op's
    // own argument (in place, x is its out too). Destroyed after the call's checks, the buffer is
    // refused at the submit.
    const pending = dropout(c, doomed, { p: 0.5, seed: 1n, count: 1024, out: doomed, mask });
    doomed.destroy();
    await expect(pending).rejects.toThrow(/^x: expected a live GPUBuffer/);
    expect(await allPoison(c, mask), 'mask written by an op that was refused').toBe(true);
  });

  it('device loss rejects a pending op even when the promise it waits on never settles', async () => {
    const dev = await requestNodeDevice();
    const c = await DropoutContext.create(dev.device);
    const x = c.upload(testData(64));
    await c.flush();
    dev.device.popErrorScope = () => new Promise<GPUError | null>(() => undefined);
    const pending = dropout(c, x, { p: 0.5, seed: 1n });
    await new Promise((r) => setTimeout(r, 50));
    dev.device.destroy();
    const settled = await Promise.race([
      pending.then(
        () => 'resolved',
        (e) => e,
      ),
      new Promise((r) => setTimeout(() => r('still pending'), 10_000)),
    ]);
    expect(settled).toBeInstanceOf(DeviceLostError);
    dev.release();
  });
});
