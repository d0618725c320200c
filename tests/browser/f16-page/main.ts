// The browser test's f16 page (tests/browser.test.ts): the library in this browser, on a device
// requested without shader-f16 (so f16 takes the packed path), against the CPU reference bit for
// bit. It reports into document.body.dataset: result (JSON) or error.
import { DropoutContext, dropout, dropoutBackward, requestDropoutDevice, structuredDropout, toHalfArray } from '../../../src/index.js';
import { referenceDropout, referenceStructuredDropout } from '../../../src/reference.js';

const POISON = 0x7fbadbad;

interface Check {
  name: string;
  count: number;
  /** Elements that differ from the reference. */
  mismatches: number;
  /** Halves past the count that were written (the poison was not kept). */
  overwritten: number;
}

async function main(): Promise<void> {
  const { device, adapterName } = await requestDropoutDevice({ f16: 'off' });
  const ctx = await DropoutContext.create(device, { seed: 1n });
  const checks: Check[] = [];
  const poisoned = (n: number) => ctx.upload(new Uint32Array(Math.ceil(n / 2) + 1).fill(POISON));
  const check = async (name: string, buffer: GPUBuffer, want: Uint16Array) => {
    const halves = new Uint16Array(await ctx.readBytes(buffer, buffer.size));
    const poison = new Uint16Array(Uint32Array.of(POISON).buffer);
    let mismatches = 0;
    let overwritten = 0;
    for (let i = 0; i < want.length; i++) if (halves[i] !== want[i]) mismatches++;
    for (let i = want.length; i < halves.length; i++) if (halves[i] !== poison[i % 2]) overwritten++;
    checks.push({ name, count: want.length, mismatches, overwritten });
  };
  // Every f16 bit pattern and three more (an odd count), offset 3 (splitting a word pair).
  const n = 65536 + 3;
  const x = new Uint16Array(n);
  for (let i = 0; i < n; i++) x[i] = (Math.imul(i, 40503) + 12345) & 0xffff;
  const opts = { p: 1 / 3, seed: 0x1234_5678_9abcn, stream: 2n, offset: 3n };
  const want = referenceDropout(x, { ...opts, dtype: 'f16' }) as Uint16Array;
  const y = poisoned(n);
  const { state } = await dropout(ctx, ctx.upload(x), { ...opts, dtype: 'f16', count: n, out: y });
  await check('forward', y, want);
  const mask = ctx.upload(new Uint32Array(Math.ceil(n / 32)));
  const ym = poisoned(n);
  await dropout(ctx, ctx.upload(x), { ...opts, dtype: 'f16', count: n, out: ym, mask });
  await check('forward with mask', ym, want);
  // x over the poison: the half past the odd count keeps it.
  const padded = new Uint16Array(new Uint32Array(Math.ceil(n / 2) + 1).fill(POISON).buffer);
  padded.set(x);
  const inPlace = ctx.upload(padded);
  await dropoutBackward(ctx, inPlace, state, { out: inPlace, mask });
  await check('backward in place from mask', inPlace, want);
  const shape = [5, 3, 7];
  const xs = toHalfArray(Array.from({ length: 105 }, (_, i) => Math.sin(i) * 3));
  const sopts = { p: 0.4, shape, noiseShape: [5, 1, 7], seed: 9n, stream: 1n, offset: 1n };
  const ys = poisoned(105);
  await structuredDropout(ctx, ctx.upload(xs), { ...sopts, dtype: 'f16', out: ys });
  await check('structured', ys, referenceStructuredDropout(xs, sopts) as Uint16Array);
  document.body.dataset.result = JSON.stringify({
    adapter: adapterName,
    shaderF16: device.features.has('shader-f16'),
    f16Path: ctx.f16Path,
    checks,
  });
  ctx.destroy();
  device.destroy();
}

main().catch((e: unknown) => {
  document.body.dataset.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
});
