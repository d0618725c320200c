// Panel 2: one network, many thinned sub-networks. The keep-masks of six sub-networks come from
// one GPU call (bernoulliMask, one stream per sub-network). The output comparison uses a small
// MLP trained once on the GPU with dropout: its full (evaluation-mode) output next to the
// average of many thinned networks, each a training-mode pass with one fixed mask.
import { MLP, bernoulliMask, readArray, readMatrix, uploadMatrix, type DropoutContext, type Matrix } from '../../src/index.js';
import { linspace, regression } from '../data.js';
import { axes, clear, colors, legend, line, message, points } from '../plot.js';
import { Panel, byId, canvas2d, fmt, gpuTurn, latestWins, showValue, slider } from '../ui.js';

/** Units per layer of the drawn network; dropout acts on the two hidden layers. */
const LAYERS = [3, 8, 8, 1] as const;
const HIDDEN = LAYERS[1] + LAYERS[2];
const SUBNETS = 6;
const SEED = 7n;
/** The network whose outputs are compared: trained once with dropout TRAIN_P. */
const SIZES = [1, 32, 32, 1];
const TRAIN_P = 0.3;
const TRAIN_STEPS = 300;
const X_RANGE: [number, number] = [-3, 3];
const GRID = 61;
/** Thinned networks drawn individually. */
const MEMBERS = 4;

interface Outputs {
  full: Float32Array;
  average: Float32Array;
  members: Float32Array[];
}

export async function startEnsemblePanel(ctx: DropoutContext): Promise<void> {
  const panel = new Panel('ensemble');
  const nets = canvas2d('ensemble-nets').g;
  const outputs = canvas2d('ensemble-output').g;
  const maskBuffer = ctx.acquire(SUBNETS * HIDDEN * 4, 'ensemble masks');
  const xs = linspace(X_RANGE[0], X_RANGE[1], GRID);
  const data = regression(64, [[-2.5, 2.5]], (x) => Math.sin(1.6 * x) + 0.25 * x, 0.05, 23);
  let stream = 0n;
  let trained: Float32Array | null = null;
  let grid: Matrix | null = null;
  /** The trained weights under the slider's p (dropout's rate is fixed per MLP). */
  let net: MLP | null = null;

  const run = latestWins(async () => {
    const p = readP();
    const samples = readSamples();
    panel.set('running', 'Computing on the GPU…');
    const keep = await gpuTurn(async () => {
      await bernoulliMask(ctx, { count: SUBNETS * HIDDEN, p, seed: SEED, stream, out: maskBuffer });
      return readArray(ctx, maskBuffer, 'u32', SUBNETS * HIDDEN);
    });
    drawSubnets(keep);
    const kept = Array.from({ length: SUBNETS }, (_, s) => keep.subarray(s * HIDDEN, (s + 1) * HIDDEN).reduce((a, b) => a + b, 0));
    showValue('ensemble-kept', `${kept.join(', ')} of ${HIDDEN} (expected ${fmt(HIDDEN * (1 - p), 1)})`, kept);
    if (!trained || !grid) {
      panel.set('running', 'Sub-network masks computed on the GPU; training the network for the output comparison…');
      return;
    }
    if (!net || net.p !== p) {
      net?.destroy();
      net = new MLP(ctx, { sizes: SIZES, dropout: p, seed: 1 });
      net.setParameters(trained);
    }
    const result = await gpuTurn(() => compare(net!, grid!, samples, 1000n + stream * 100n));
    let gap = 0;
    for (let i = 0; i < GRID; i++) gap += Math.abs(result.full[i]! - result.average[i]!);
    gap /= GRID;
    drawOutputs(result, samples, p);
    showValue('ensemble-gap', fmt(gap, 4), gap);
    panel.set('ready', `Masks from seed ${SEED}, streams ${stream}–${stream + BigInt(SUBNETS - 1)}; ${samples} thinned networks evaluated on the GPU.`);
  }, (e) => panel.fail(e));

  /**
   * The full network on the grid, and `samples` thinned networks, each ONE mask applied to every
   * input: the MLP's sample blocks of one row each (input x_j repeated `samples` times, block t
   * on stream first + t) give sub-network t's output at x_j whatever j is. One forward per grid
   * point, all recorded into one encoder; one readback.
   */
  async function compare(model: MLP, input: Matrix, samples: number, first: bigint): Promise<Outputs> {
    // Every upload before anything is recorded, and no buffer given back to the pool before the
    // submit: an upload (queue.writeBuffer) runs ahead of the encoder's commands, so it must never
    // land in a buffer that work recorded here still reads or writes.
    const inputs = Array.from(xs, (x) => uploadMatrix(ctx, new Float32Array(samples).fill(x), samples, 1));
    const table = ctx.acquire(GRID * samples * 4, 'thinned outputs');
    const encoder = ctx.device.createCommandEncoder({ label: 'thinned networks' });
    const outputs: GPUBuffer[] = [];
    for (const [j, repeated] of inputs.entries()) {
      const y = await model.forward(repeated, { random: { seed: SEED, stream: first, samples }, encoder });
      encoder.copyBufferToBuffer(y.buffer, 0, table, j * samples * 4, samples * 4);
      outputs.push(y.buffer);
    }
    ctx.device.queue.submit([encoder.finish()]);
    ctx.submitted(encoder);
    const full = await model.predict(input);
    const [values, fullValues] = await Promise.all([readArray(ctx, table, 'f32', GRID * samples), readMatrix(ctx, full)]);
    for (const b of [...inputs.map((m) => m.buffer), ...outputs, table, full.buffer]) ctx.release(b);
    const members = Array.from({ length: samples }, (_, t) => Float32Array.from(xs, (_, j) => values[j * samples + t]!));
    const average = Float32Array.from(xs, (_, j) => members.reduce((sum, m) => sum + m[j]!, 0) / samples);
    return { full: fullValues, average, members };
  }

  const readP = slider('ensemble-p', (v) => v.toFixed(2), () => void run());
  const readSamples = slider('ensemble-samples', (v) => String(v), () => void run());
  byId('ensemble-resample').addEventListener('click', () => {
    stream += BigInt(SUBNETS);
    void run();
  });

  function drawSubnets(keep: Uint32Array): void {
    const g = nets;
    clear(g);
    const cols = 3;
    const w = g.canvas.width / cols;
    const h = g.canvas.height / Math.ceil(SUBNETS / cols);
    for (let s = 0; s < SUBNETS; s++) {
      const ox = (s % cols) * w;
      const oy = Math.floor(s / cols) * h;
      const alive = (layer: number, unit: number) => {
        if (layer === 0 || layer === LAYERS.length - 1) return true;
        const base = s * HIDDEN + (layer === 1 ? 0 : LAYERS[1]);
        return keep[base + unit] === 1;
      };
      const pos = (layer: number, unit: number): [number, number] => {
        const n = LAYERS[layer]!;
        const x = ox + 22 + (layer * (w - 44)) / (LAYERS.length - 1);
        const y = oy + 26 + ((unit + 0.5) * (h - 36)) / n;
        return [x, y];
      };
      g.lineWidth = 1;
      for (let l = 0; l + 1 < LAYERS.length; l++) {
        for (let a = 0; a < LAYERS[l]!; a++) {
          for (let b = 0; b < LAYERS[l + 1]!; b++) {
            if (!alive(l, a) || !alive(l + 1, b)) continue;
            const [x0, y0] = pos(l, a);
            const [x1, y1] = pos(l + 1, b);
            g.strokeStyle = 'rgba(47, 111, 222, 0.28)';
            g.beginPath();
            g.moveTo(x0, y0);
            g.lineTo(x1, y1);
            g.stroke();
          }
        }
      }
      for (let l = 0; l < LAYERS.length; l++) {
        for (let u = 0; u < LAYERS[l]!; u++) {
          const [x, y] = pos(l, u);
          const on = alive(l, u);
          g.beginPath();
          g.arc(x, y, 5, 0, 2 * Math.PI);
          g.fillStyle = on ? (l === 0 || l === LAYERS.length - 1 ? colors.ink : colors.kept) : '#ffffff';
          g.strokeStyle = on ? '#ffffff' : '#b9c0cc';
          g.fill();
          g.stroke();
        }
      }
      g.fillStyle = colors.ink;
      g.font = '600 11px system-ui, sans-serif';
      g.textAlign = 'left';
      g.textBaseline = 'top';
      g.fillText(`sub-network ${s + 1}`, ox + 8, oy + 6);
    }
  }

  function drawOutputs(result: Outputs, samples: number, p: number): void {
    const f = axes(outputs, { x0: X_RANGE[0], x1: X_RANGE[1], y0: -2.5, y1: 2.5 }, { x: 'input x', y: 'output', title: `Full network vs the average of ${samples} thinned networks (p = ${p.toFixed(2)})` });
    for (const m of result.members.slice(0, MEMBERS)) line(f, xs, m, { color: colors.muted, width: 1, alpha: 0.55 });
    points(f, data.x, data.y, '#c3cad6', 2);
    line(f, xs, result.average, { color: colors.kept, width: 2.5 });
    line(f, xs, result.full, { color: colors.plain, width: 2, dash: [6, 4] });
    legend(f, [
      { label: 'full network (eval)', color: colors.plain, dash: [6, 4] },
      { label: `average of ${samples} thinned`, color: colors.kept },
      { label: 'single thinned networks', color: colors.muted },
    ]);
  }

  // The output comparison needs a trained network: train it once, with dropout, on the GPU.
  message(outputs, 'Training the network on the GPU…');
  await run();
  try {
    panel.set('running', 'Training the network on the GPU…');
    const model = new MLP(ctx, { sizes: SIZES, dropout: TRAIN_P, seed: 1, learningRate: 0.02 });
    const x = uploadMatrix(ctx, data.x, data.x.length, 1);
    const y = uploadMatrix(ctx, data.y, data.y.length, 1);
    for (let step = 0; step < TRAIN_STEPS; step++) await gpuTurn(() => model.trainStep(x, y, { loss: 'mse' }));
    trained = await gpuTurn(() => model.getParameters());
    for (const b of [x.buffer, y.buffer]) ctx.release(b);
    model.destroy();
    grid = uploadMatrix(ctx, xs, GRID, 1);
  } catch (e) {
    panel.fail(e);
    return;
  }
  await run();
}
