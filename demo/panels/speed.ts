// Panel 6: throughput on the visitor's adapter, on demand. Each kernel is recorded `passes` times
// into one command encoder and timed from submit to onSubmittedWorkDone (recording excluded);
// the copy kernel over the same bytes is the floor every other kernel is compared with. Every
// batch takes its own turn on the GPU queue, so the other panels' work runs between batches and
// the page never waits for the whole benchmark.
import { type DropoutContext, dropout, randomNormal } from '../../src/index.js';
import { kernels } from '../../src/kernels/elementwise.js';
import { runtimeOf } from '../../src/runtime/context.js';
import { axes, colors, message, paint, size } from '../plot.js';
import { byId, canvas2d, fmt, fmtInt, gpuTurn, Panel } from '../ui.js';

interface Case {
  name: string;
  /** Bytes read plus written per element. */
  bytesPerElement: number;
  record: (encoder: GPUCommandEncoder) => Promise<unknown>;
}

interface Result {
  name: string;
  msPerPass: number;
  gbPerSecond: number;
  elementsPerSecond: number;
}

const BATCHES = 5;
/** Aim for batches of about this long, so timer and submit overheads stay small. */
const TARGET_BATCH_MS = 40;

export function startSpeedPanel(ctx: DropoutContext): void {
  const panel = new Panel('speed');
  const { g } = canvas2d('speed-canvas');
  const button = byId<HTMLButtonElement>('speed-run');
  const sizes = byId<HTMLSelectElement>('speed-size');
  message(g, 'Press "Run benchmark" to time the kernels on this adapter.');
  panel.set('ready', 'Not run yet.');
  panel.root.dataset.runs = '0';

  button.addEventListener('click', async () => {
    panel.disable(button, sizes);
    try {
      const n = Number(sizes.value);
      panel.set('running', `Timing the kernels on ${fmtInt(n)} elements…`);
      // Each timed batch is alone on the GPU; other panels' work runs between batches. Which
      // kernel runs goes to the progress line, not to the live status.
      const results = await benchmark(ctx, n, (name) => panel.progress(`Timing ${name}…`));
      panel.progress('');
      show(results, n);
      panel.root.dataset.runs = String(Number(panel.root.dataset.runs) + 1);
      panel.set('ready', `${fmtInt(n)} f32 elements, median of ${BATCHES} batches per kernel.${boundNote(results)}`);
    } catch (e) {
      panel.progress('');
      panel.fail(e);
    } finally {
      panel.enable(button, sizes);
    }
  });
  panel.enable(button, sizes);

  function show(results: Result[], n: number): void {
    const body = byId('speed-table').querySelector('tbody')!;
    body.replaceChildren();
    const copy = results[0]!;
    for (const r of results) {
      const row = document.createElement('tr');
      row.dataset.kernel = r.name;
      row.dataset.gbps = String(r.gbPerSecond);
      const cells = [
        r.name,
        fmt(r.msPerPass, 3),
        fmt(r.gbPerSecond, 2),
        fmt(r.elementsPerSecond / 1e9, 3),
        `${fmt((100 * r.gbPerSecond) / copy.gbPerSecond, 0)} %`,
      ];
      for (const [i, text] of cells.entries()) {
        const cell = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) cell.setAttribute('scope', 'row');
        cell.textContent = text;
        row.append(cell);
      }
      body.append(row);
    }
    paint(g, () => drawBars(results, n));
  }

  function drawBars(results: Result[], n: number): void {
    const canvasWidth = size(g).width;
    const top = Math.max(...results.map((r) => r.gbPerSecond)) * 1.15;
    const f = axes(
      g,
      { x0: 0, x1: top, y0: 0, y1: results.length },
      { x: 'GB/s (bytes read + written)', title: `Throughput, ${fmtInt(n)} f32 elements`, yTicks: false },
    );
    const rowHeight = f.height / results.length;
    g.font = '12px system-ui, sans-serif';
    g.textBaseline = 'middle';
    for (const [i, r] of results.entries()) {
      const y = f.top + i * rowHeight + rowHeight * 0.18;
      const w = (r.gbPerSecond / top) * f.width;
      g.fillStyle = i === 0 ? colors.muted : colors.kept;
      g.fillRect(f.left, y, w, rowHeight * 0.64);
      // The label inside the bar when it fits, after it when that fits; otherwise (a narrow
      // screen) over the bar's start, on a white halo so it stays readable.
      const label = `${r.name}: ${fmt(r.gbPerSecond, 2)} GB/s`;
      const textWidth = g.measureText(label).width;
      const inside = textWidth + 12 < w;
      const after = f.left + w + 6 + textWidth <= canvasWidth - 4;
      const ty = y + rowHeight * 0.32;
      g.textAlign = 'left';
      if (inside || after) {
        g.fillStyle = inside ? '#ffffff' : colors.ink;
        g.fillText(label, inside ? f.left + 6 : f.left + w + 6, ty);
      } else {
        g.strokeStyle = '#ffffff';
        g.lineWidth = 3;
        g.lineJoin = 'round';
        g.strokeText(label, f.left + 6, ty);
        g.fillStyle = colors.ink;
        g.fillText(label, f.left + 6, ty);
      }
    }
    // The copy's throughput as a line across all bars: the floor to compare with.
    const copyX = f.left + (results[0]!.gbPerSecond / top) * f.width;
    g.strokeStyle = colors.ink;
    g.setLineDash([4, 3]);
    g.beginPath();
    g.moveTo(copyX, f.top);
    g.lineTo(copyX, f.top + f.height);
    g.stroke();
    g.setLineDash([]);
  }
}

/**
 * A note for the status when dropout runs far below the copy: then this adapter is limited by
 * computing the random numbers, not by memory (a CPU adapter such as SwiftShader or lavapipe).
 */
function boundNote(results: Result[]): string {
  const copy = results[0]!.gbPerSecond;
  const plain = results.find((r) => r.name === 'dropout');
  if (!plain || plain.gbPerSecond >= 0.5 * copy) return '';
  return ` Dropout reaches only ${fmt((100 * plain.gbPerSecond) / copy, 0)} % of the copy here: this adapter is compute-bound (as CPU adapters are), not memory-bound.`;
}

async function benchmark(ctx: DropoutContext, n: number, progress: (name: string) => void): Promise<Result[]> {
  const x = ctx.acquire(n * 4, 'speed x');
  const y = ctx.acquire(n * 4, 'speed y');
  const mask = ctx.acquire(Math.ceil(n / 32) * 4, 'speed mask');
  const random = { seed: 2026n, stream: 0n };
  const cases: Case[] = [
    {
      name: 'plain copy (the floor)',
      bytesPerElement: 8,
      record: (encoder) =>
        runtimeOf(ctx).dispatcher.dispatch({
          kernel: kernels.copy,
          count: n,
          buffers: { src: { buffer: x, argument: 'x' }, dst: { buffer: y, argument: 'out' } },
          encoder,
        }),
    },
    { name: 'dropout', bytesPerElement: 8, record: (encoder) => dropout(ctx, x, { p: 0.5, ...random, out: y, encoder }) },
    { name: 'dropout in place', bytesPerElement: 8, record: (encoder) => dropout(ctx, y, { p: 0.5, ...random, out: y, encoder }) },
    {
      name: 'dropout + packed mask',
      bytesPerElement: 8 + 1 / 8,
      record: (encoder) => dropout(ctx, x, { p: 0.5, ...random, out: y, mask, encoder }),
    },
    {
      name: 'random normals (write only)',
      bytesPerElement: 4,
      record: (encoder) => randomNormal(ctx, { count: n, ...random, out: y, encoder }),
    },
  ];
  try {
    // Zeroed input: the timings must not depend on whatever the pool's memory held.
    await gpuTurn(async () => {
      const zero = ctx.device.createCommandEncoder();
      zero.clearBuffer(x);
      ctx.device.queue.submit([zero.finish()]);
      await ctx.device.queue.onSubmittedWorkDone();
    }, 'benchmark');
    const results: Result[] = [];
    for (const c of cases) {
      progress(c.name);
      // One warm-up pass (compiles the pipeline), one to size the batches.
      await gpuTurn(() => timePasses(ctx, c, 1), 'benchmark');
      const once = await gpuTurn(() => timePasses(ctx, c, 1), 'benchmark');
      const passes = Math.min(100, Math.max(2, Math.ceil(TARGET_BATCH_MS / Math.max(once, 0.01))));
      const times: number[] = [];
      for (let b = 0; b < BATCHES; b++) times.push(await gpuTurn(() => timePasses(ctx, c, passes), 'benchmark'));
      times.sort((a, b) => a - b);
      const ms = times[BATCHES >> 1]!;
      results.push({ name: c.name, msPerPass: ms, gbPerSecond: (n * c.bytesPerElement) / (ms * 1e6), elementsPerSecond: n / (ms / 1e3) });
    }
    return results;
  } finally {
    for (const b of [x, y, mask]) ctx.release(b);
  }
}

/** Milliseconds per pass: `passes` recordings of the case in one encoder, submit to completion. */
async function timePasses(ctx: DropoutContext, c: Case, passes: number): Promise<number> {
  const encoder = ctx.device.createCommandEncoder({ label: `speed ${c.name}` });
  for (let i = 0; i < passes; i++) await c.record(encoder);
  const commands = encoder.finish();
  const start = performance.now();
  ctx.device.queue.submit([commands]);
  ctx.submitted(encoder);
  await ctx.device.queue.onSubmittedWorkDone();
  return (performance.now() - start) / passes;
}
