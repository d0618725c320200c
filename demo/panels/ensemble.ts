// Panel 2: one network, many thinned sub-networks. The keep-masks of six sub-networks come from
// one GPU call: bernoulliMask over 96 elements on one stream, sub-network k taking elements
// 16k..16k+15 (a mask is a function of (seed, stream, index), so one call can serve many masks
// and each is still reproducible on its own). The output comparison uses a small
// MLP trained once on the GPU with dropout: its full (evaluation-mode) output next to the
// average of many thinned networks, each a training-mode pass with one fixed mask.
import { bernoulliMask, type DropoutContext, readArray } from '../../src/index.js';
import { type Matrix, MLP, readMatrix, uploadMatrix } from '../../src/model.js';
import { linspace, regression } from '../data.js';
import { axes, clear, colors, line, message, paint, points, size } from '../plot.js';
import { byId, canvas2d, fmt, gpuTurn, latestWins, Panel, showValue, slider } from '../ui.js';

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
/** The y-range of the output plot unless the curves need more. */
const Y_RANGE: [number, number] = [-2.5, 2.5];

interface Outputs {
  full: Float32Array;
  average: Float32Array;
  members: Float32Array[];
}

export async function startEnsemblePanel(ctx: DropoutContext): Promise<void> {
  const panel = new Panel('ensemble');
  // Two columns of three on a phone (three columns would squeeze the units together).
  const nets = canvas2d('ensemble-nets', (w) => (w < 420 ? 330 : 250 * Math.min(1.25, w / 560))).g;
  // Taller on a phone, where the title and the legend wrap onto more lines.
  const outputs = canvas2d('ensemble-output', (w) => (w < 420 ? 310 : 260 * Math.min(1.25, Math.max(0.85, w / 560)))).g;
  const maskBuffer = ctx.acquire(SUBNETS * HIDDEN * 4, 'ensemble masks');
  const xs = linspace(X_RANGE[0], X_RANGE[1], GRID);
  const data = regression(64, [[-2.5, 2.5]], (x) => Math.sin(1.6 * x) + 0.25 * x, 0.05, 23);
  let stream = 0n;
  let trained: Float32Array | null = null;
  let grid: Matrix | null = null;
  /** The trained weights under the slider's p (dropout's rate is fixed per MLP). */
  let net: MLP | null = null;

  const run = latestWins(
    async () => {
      const p = readP();
      const samples = readSamples();
      panel.set('running', 'Computing on the GPU…');
      const keep = await gpuTurn(async () => {
        await bernoulliMask(ctx, { count: SUBNETS * HIDDEN, p, seed: SEED, stream, out: maskBuffer });
        return readArray(ctx, maskBuffer, 'u32', SUBNETS * HIDDEN);
      }, panel);
      paint(nets, () => drawSubnets(keep));
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
      const result = await gpuTurn(() => compare(net!, grid!, samples, 1000n + stream * 100n), panel);
      let gap = 0;
      for (let i = 0; i < GRID; i++) gap += Math.abs(result.full[i]! - result.average[i]!);
      gap /= GRID;
      paint(outputs, () => drawOutputs(result, samples, p));
      byId('ensemble-output-caption').textContent = `A 1-32-32-1 network: ${describeMembers(samples)}.`;
      showValue('ensemble-gap', fmt(gap, 4), gap);
      byId('ensemble-note').textContent =
        `Why the gap does not go to 0: averaging more thinned networks removes sampling noise, so the gap falls at first (1 network: noisy), but then it levels off (here ${fmt(gap, 3)} with ${samples}). ` +
        "What remains is bias from the non-linearity: the full network feeds each ReLU the average input, the ensemble averages the ReLUs' outputs, and for a non-linear function the two differ. Scaling the weights (or, with inverted dropout, doing nothing at test time) is an approximation of the ensemble, exact only for a linear network." +
        (Math.abs(p - TRAIN_P) > 1e-9
          ? ` Note: these weights were trained with p = ${TRAIN_P.toFixed(2)}; at p = ${p.toFixed(2)} the thinned networks are ones training never used, so the gap is larger. That shows a p mismatch, not a failure of dropout.`
          : '');
      panel.set(
        'ready',
        `Masks: seed ${SEED}, stream ${stream}, one bernoulliMask call over elements 0–${SUBNETS * HIDDEN - 1}; sub-network k uses elements ${HIDDEN}k to ${HIDDEN}k+${HIDDEN - 1}. ${samples} ${thinned(samples)} evaluated on the GPU.`,
      );
    },
    (e) => panel.fail(e),
  );

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

  const readP = slider(
    'ensemble-p',
    (v) => v.toFixed(2),
    () => void run(),
  );
  const readSamples = slider(
    'ensemble-samples',
    (v) => String(v),
    () => void run(),
  );
  byId('ensemble-resample').addEventListener('click', () => {
    // The next stream: six new masks from the same call over the same elements.
    stream += 1n;
    void run();
  });
  panel.enable();

  function drawSubnets(keep: Uint32Array): void {
    const g = nets;
    clear(g);
    const { width: W, height: H } = size(g);
    const cols = W < 420 ? 2 : 3;
    const w = W / cols;
    const h = H / Math.ceil(SUBNETS / cols);
    const radius = Math.min(5, (0.4 * (h - 36)) / Math.max(...LAYERS));
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
          g.arc(x, y, radius, 0, 2 * Math.PI);
          g.fillStyle = on ? (l === 0 || l === LAYERS.length - 1 ? colors.ink : colors.kept) : '#ffffff';
          g.strokeStyle = on ? '#ffffff' : '#b9c0cc';
          g.fill();
          g.stroke();
        }
      }
      g.fillStyle = colors.ink;
      g.font = '600 12px system-ui, sans-serif';
      g.textAlign = 'left';
      g.textBaseline = 'top';
      // Numbered from 0, as in "elements 16k to 16k+15"; the element range too when it fits.
      const name = `sub-network ${s}`;
      const full = `${name}: elements ${s * HIDDEN}–${(s + 1) * HIDDEN - 1}`;
      g.fillText(g.measureText(full).width <= w - 12 ? full : name, ox + 8, oy + 6);
    }
  }

  function drawOutputs(result: Outputs, samples: number, p: number): void {
    const members = result.members.slice(0, MEMBERS);
    // Wide enough for every drawn curve: thinned networks at a large p can leave [-2.5, 2.5].
    let [y0, y1] = Y_RANGE;
    for (const curve of [result.full, result.average, ...members, data.y]) {
      for (const v of curve) {
        if (!Number.isFinite(v)) continue;
        y0 = Math.min(y0, v);
        y1 = Math.max(y1, v);
      }
    }
    const pad = y0 < Y_RANGE[0] || y1 > Y_RANGE[1] ? 0.05 * (y1 - y0) : 0;
    const f = axes(
      outputs,
      { x0: X_RANGE[0], x1: X_RANGE[1], y0: y0 < Y_RANGE[0] ? y0 - pad : y0, y1: y1 > Y_RANGE[1] ? y1 + pad : y1 },
      {
        x: 'input x',
        y: 'output',
        title: `Full network vs the average of ${samples} ${thinned(samples)} (p = ${p.toFixed(2)})`,
        legend: [
          { label: 'full network (eval)', color: colors.plain, dash: [6, 4] },
          { label: `average of ${samples} thinned`, color: colors.kept },
          {
            label:
              samples === 1
                ? 'the thinned network'
                : members.length === samples
                  ? 'each thinned network'
                  : `${members.length} of the ${samples}`,
            color: colors.muted,
          },
        ],
      },
    );
    for (const m of members) line(f, xs, m, { color: colors.muted, width: 1, alpha: 0.55 });
    points(f, data.x, data.y, '#c3cad6', 2);
    line(f, xs, result.average, { color: colors.kept, width: 2.5 });
    line(f, xs, result.full, { color: colors.plain, width: 2, dash: [6, 4] });
  }

  // The output comparison needs a trained network: train it once, with dropout, on the GPU.
  message(outputs, 'Training the network on the GPU…');
  await run();
  try {
    panel.set('running', 'Training the network on the GPU…');
    const model = new MLP(ctx, { sizes: SIZES, dropout: TRAIN_P, seed: 1, learningRate: 0.02 });
    const x = uploadMatrix(ctx, data.x, data.x.length, 1);
    const y = uploadMatrix(ctx, data.y, data.y.length, 1);
    for (let step = 0; step < TRAIN_STEPS; step++) await gpuTurn(() => model.trainStep(x, y, { loss: 'mse' }), panel);
    trained = await gpuTurn(() => model.getParameters(), panel);
    for (const b of [x.buffer, y.buffer]) ctx.release(b);
    model.destroy();
    grid = uploadMatrix(ctx, xs, GRID, 1);
  } catch (e) {
    panel.fail(e);
    return;
  }
  await run();
}

function thinned(n: number): string {
  return n === 1 ? 'thinned network' : 'thinned networks';
}

/** What the grey curves are: at most MEMBERS of the averaged thinned networks are drawn. */
function describeMembers(samples: number): string {
  if (samples === 1) return 'the grey curve is the one thinned network (one mask for every input), so the blue average lies on it';
  const shown = Math.min(MEMBERS, samples);
  const which = shown === samples ? `the ${samples} thinned networks` : `${shown} of the ${samples} thinned networks`;
  return `the grey curves are ${which}, each with one mask for every input; the blue curve is the average of all ${samples}`;
}
