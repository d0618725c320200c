// The report's memory and per-call overhead sections (bench/README.md), apart from bench/run.ts so
// that tests can run them on their own.
import { dropout, dropoutBackward } from '../src/index.js';
import type { BenchEnv } from './env.js';
import { P, SEED } from './ops.js';
import { type CellResult, formatNs, type MemoryRow, type OverheadRow } from './report.js';
import { median } from './timing.js';

/** Bytes the pool holds after a forward, beyond its output: what the backward would need kept. */
export async function measureMemory(env: BenchEnv, n: number): Promise<MemoryRow[]> {
  const { ctx, device } = env;
  // Sizes no earlier cell used, so the pool cannot hand back an idle buffer and hide a new one.
  const keptPerElement = async (count: number, mask: boolean) => {
    const x = ctx.acquire(count * 4, 'memory x');
    const before = ctx.pool.bytes;
    const r = await dropout(ctx, x, { p: P, seed: SEED, count, ...(mask ? { mask: true } : {}) });
    await device.queue.onSubmittedWorkDone();
    const kept = (ctx.pool.bytes - before - count * 4) / count;
    ctx.release(r.output);
    if (r.mask) ctx.release(r.mask);
    ctx.release(x);
    return kept;
  };
  const plain = await keptPerElement(n + 2048, false);
  const masked = await keptPerElement(n + 4096, true);
  // The pool's peak over one forward + backward whose outputs come from the pool (x is the caller's).
  const count = n + 6144;
  const x = ctx.acquire(count * 4, 'memory x');
  const before = ctx.pool.bytes;
  const runPeak = ctx.pool.peakBytes;
  ctx.pool.peakBytes = before;
  const fwd = await dropout(ctx, x, { p: P, seed: SEED, count });
  const dx = await dropoutBackward(ctx, fwd.output, fwd.state);
  await device.queue.onSubmittedWorkDone();
  const peak = (ctx.pool.peakBytes - before) / count;
  ctx.pool.peakBytes = Math.max(runPeak, ctx.pool.peakBytes);
  for (const b of [dx, fwd.output, x]) ctx.release(b);
  return [
    {
      what: 'ours: dropout, backward regenerates the mask',
      bytesPerElement: plain,
      source: 'measured',
      note: 'pool bytes held after the forward beyond its output, / elements; the state is (seed, stream, offset, p)',
    },
    {
      what: 'ours: dropout with mask: true (bit mask)',
      bytesPerElement: masked,
      source: 'measured',
      note: 'packed keep-mask, 1 bit per element',
    },
    {
      what: 'ours: pool peak over forward + backward',
      bytesPerElement: peak,
      source: 'measured',
      note: 'new pool bytes at the peak, / elements: y and dx (4 + 4 in f32), nothing else',
    },
    {
      what: 'PyTorch F.dropout',
      bytesPerElement: 1,
      source: 'by construction',
      note: 'saves a bool (1-byte) mask for backward (native_dropout)',
    },
    {
      what: 'tf.dropout (tfjs)',
      bytesPerElement: 4,
      source: 'by construction',
      note: "x * multiplier with a float32 multiplier tensor, which mul's gradient keeps",
    },
  ];
}

/** Host and per-dispatch costs at 2^10 elements, the size that dominates many small layers. */
export async function measureOverhead(env: BenchEnv, calls: number, rounds: number, gpu: CellResult | undefined): Promise<OverheadRow[]> {
  const { ctx, device } = env;
  const n = 1024;
  const x = ctx.acquire(n * 4, 'overhead x');
  const out = ctx.acquire(n * 4, 'overhead out');
  const call = (encoder?: GPUCommandEncoder) => dropout(ctx, x, { p: P, seed: SEED, count: n, out, ...(encoder ? { encoder } : {}) });
  try {
    await call();
    await device.queue.onSubmittedWorkDone();
    // Host time to record one op into the caller's encoder; the first round warms the JIT up and
    // is not counted (the median of the others is reported: this VM's host time is noisy).
    const recordRounds: number[] = [];
    for (let round = 0; round <= rounds; round++) {
      const encoder = device.createCommandEncoder();
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await call(encoder);
      if (round > 0) recordRounds.push(((performance.now() - t0) * 1e6) / calls);
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      ctx.submitted(encoder);
    }
    // Many ops issued in one tick: the context batches them into one submit.
    const issuedRounds: number[] = [];
    const batchedRounds: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: calls }, () => call()));
      issuedRounds.push(((performance.now() - t0) * 1e6) / calls);
      await device.queue.onSubmittedWorkDone();
      batchedRounds.push(((performance.now() - t0) * 1e6) / calls);
    }
    const [recordNs, issuedNs, batchedNs] = [recordRounds, issuedRounds, batchedRounds].map(median) as [number, number, number];
    // One op per submit, waited for each time.
    const single: number[] = [];
    for (let i = 0; i < Math.min(calls, 100); i++) {
      const s = performance.now();
      await call();
      await device.queue.onSubmittedWorkDone();
      single.push((performance.now() - s) * 1e6);
    }
    const rows: OverheadRow[] = [
      {
        what: 'host: record one dropout into a caller encoder',
        ns: recordNs,
        note: `${calls} calls, median of ${rounds} rounds after a warm-up round; JS + Dawn encoding, no GPU work`,
      },
      {
        what: 'host: issue one dropout into the context batch',
        ns: issuedNs,
        note: `${calls} calls in one tick, one submit, median of ${rounds} rounds; time until all were submitted`,
      },
      { what: 'wall: one dropout of many sharing one submit', ns: batchedNs, note: `the same ${calls} calls, until the GPU queue is idle` },
      { what: 'wall: one dropout per submit, waited for', ns: median(single), note: 'median latency of call, submit, onSubmittedWorkDone' },
    ];
    if (gpu)
      rows.push({
        what: `GPU: one dropout dispatch of many in one submit (${gpu.method})`,
        ns: gpu.ns,
        note: `2^10 f32 forward (${gpu.samples}×${gpu.reps}); copy kernel at the same bytes: ${formatNs(gpu.copyNs ?? NaN)}`,
      });
    return rows;
  } finally {
    ctx.release(x);
    ctx.release(out);
  }
}
