// Panel 5: MC-Dropout. A small MLP with dropout is trained on the GPU on noisy 1-D data that
// covers only part of the axis; then T stochastic passes run on the GPU, each pass ONE mask set
// for every input (so each pass is one thinned network and the mean is a smooth curve), and the
// predictive mean and variance per input are drawn as the mean and a +/- 2 sigma band.
// (mcDropout folds the T samples into the batch, where each input row draws its own masks: right
// for a batch of independent inputs, but it makes a curve over x jagged at small T.)
import { type DropoutContext, readArray } from '../../src/index.js';
import { MLP, uploadMatrix } from '../../src/model.js';
import { referenceMcStats } from '../../src/reference.js';
import { linspace, regression } from '../data.js';
import { axes, band, colors, line, message, paint, points, px } from '../plot.js';
import { byId, canvas2d, fmt, gpuTurn, latestWins, Panel, showValue, slider } from '../ui.js';

const SIZES = [1, 64, 64, 1];
const P = 0.2;
const STEPS = 300;
const X_RANGE: [number, number] = [-3, 3];
const DATA_RANGE: [number, number] = [-1, 1];
const GRID = 121;
const target = (x: number) => 0.8 * Math.sin(2.5 * x) + 0.3 * x;

export async function startMcPanel(ctx: DropoutContext): Promise<void> {
  const panel = new Panel('mc');
  const { g } = canvas2d('mc-canvas');
  const data = regression(48, [DATA_RANGE], target, 0.08, 17);
  const xs = linspace(X_RANGE[0], X_RANGE[1], GRID);
  let mlp: MLP | null = null;
  let call = 0;

  /**
   * T passes over the grid, pass t one thinned network: for each grid point the input repeated T
   * times as T sample blocks of one row (block t on stream first + t), so pass t's masks do not
   * depend on x. All forwards in one encoder, one readback; statistics by the library's
   * referenceMcStats (f64) over the GPU's outputs.
   */
  async function passes(model: MLP, samples: number, first: bigint): Promise<{ mean: Float64Array; variance: Float64Array }> {
    const inputs = Array.from(xs, (x) => uploadMatrix(ctx, new Float32Array(samples).fill(x), samples, 1));
    const table = ctx.acquire(GRID * samples * 4, 'mc passes');
    const encoder = ctx.device.createCommandEncoder({ label: 'mc passes' });
    const outputs: GPUBuffer[] = [];
    for (const [j, repeated] of inputs.entries()) {
      const y = await model.forward(repeated, { random: { seed: 99n, stream: first, samples }, encoder });
      encoder.copyBufferToBuffer(y.buffer, 0, table, j * samples * 4, samples * 4);
      outputs.push(y.buffer);
    }
    ctx.device.queue.submit([encoder.finish()]);
    ctx.submitted(encoder);
    const values = await readArray(ctx, table, 'f32', GRID * samples);
    for (const b of [...inputs.map((m) => m.buffer), ...outputs, table]) ctx.release(b);
    const perPass = Array.from({ length: samples }, (_, t) => Float32Array.from(xs, (_, j) => values[j * samples + t]!));
    return referenceMcStats(perPass, GRID, 1, 'regression');
  }

  const run = latestWins(
    async () => {
      if (!mlp) return;
      const samples = readSamples();
      panel.set('running', `Running ${samples} stochastic passes on the GPU…`);
      // A fresh block of streams per request: T samples use streams [stream, stream + T).
      const stream = BigInt(call++) * 1000n;
      const stats = await gpuTurn(() => passes(mlp!, samples, stream), panel);
      const sigma = Float32Array.from(stats.variance, (v) => Math.sqrt(Math.max(v, 0)));
      const mean = Float32Array.from(stats.mean);
      paint(g, () => draw(mean, sigma, samples));
      const inside = meanWhere(sigma, (x) => x >= DATA_RANGE[0] && x <= DATA_RANGE[1]);
      const outside = meanWhere(sigma, (x) => Math.abs(x) >= 2);
      showValue('mc-sigma-in', fmt(inside, 3), inside);
      showValue('mc-sigma-out', `${fmt(outside, 3)} (${fmt(outside / inside, 1)}× wider)`, outside);
      g.canvas.dataset.samples = String(samples);
      panel.set('ready', `${samples} MC-Dropout samples (p = ${P}), computed on the GPU.`);
      byId('mc-note').textContent =
        samples < 10
          ? `With only ${samples} passes, σ is itself a rough estimate (from ${samples} values per x): it can come out smaller or larger than with many passes, and it moves a lot when the passes change. Use 30 or more to read the uncertainty.`
          : `Each pass is one thinned network (one mask set for every x), so the mean is a smooth curve. σ from ${samples} passes is a fair estimate; more passes change it little.`;
    },
    (e) => panel.fail(e),
  );
  // Enabled at once: a move during training is not lost, the first run reads the slider.
  const readSamples = slider(
    'mc-samples',
    (v) => String(v),
    () => void run(),
  );
  panel.enable();

  function meanWhere(sigma: Float32Array, keep: (x: number) => boolean): number {
    let sum = 0;
    let n = 0;
    xs.forEach((x, i) => {
      if (keep(x)) {
        sum += sigma[i]!;
        n++;
      }
    });
    return sum / n;
  }

  function draw(mean: Float32Array, sigma: Float32Array, samples: number): void {
    const lo = Float32Array.from(mean, (m, i) => m - 2 * sigma[i]!);
    const hi = Float32Array.from(mean, (m, i) => m + 2 * sigma[i]!);
    const f = axes(
      g,
      { x0: X_RANGE[0], x1: X_RANGE[1], y0: -3, y1: 3 },
      {
        x: 'x',
        y: 'y',
        title: `MC-Dropout, T = ${samples} passes`,
        legend: [
          { label: 'predictive mean', color: colors.kept },
          { label: '± 2σ', color: colors.band, fill: true },
          { label: 'training data', color: colors.data, fill: true },
        ],
      },
    );
    // Where the training data lies.
    g.fillStyle = 'rgba(29, 35, 48, 0.06)';
    g.fillRect(px(f, DATA_RANGE[0]), f.top, px(f, DATA_RANGE[1]) - px(f, DATA_RANGE[0]), f.height);
    band(f, xs, lo, hi, colors.band);
    line(f, xs, mean, { color: colors.kept, width: 2 });
    points(f, data.x, data.y, colors.data, 2.5);
  }

  message(g, 'Training the model on the GPU…');
  panel.set('running', `Training the model on the GPU (${STEPS} steps)…`);
  try {
    const net = new MLP(ctx, { sizes: SIZES, dropout: P, seed: 5, learningRate: 0.01 });
    const x = uploadMatrix(ctx, data.x, data.x.length, 1);
    const y = uploadMatrix(ctx, data.y, data.y.length, 1);
    for (let step = 1; step <= STEPS; step++) {
      await gpuTurn(() => net.trainStep(x, y, { loss: 'mse' }), panel);
      if (step % 50 === 0) {
        const loss = await gpuTurn(() => net.evaluate(x, y, { loss: 'mse' }), panel);
        panel.progress(
          step < STEPS
            ? `Training: step ${step} of ${STEPS}, loss ${fmt(loss, 4)}`
            : `Trained for ${STEPS} steps; training loss ${fmt(loss, 4)}`,
        );
      }
    }
    ctx.release(x.buffer);
    ctx.release(y.buffer);
    mlp = net;
  } catch (e) {
    panel.fail(e);
    return;
  }
  return run();
}
