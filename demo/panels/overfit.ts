// Panel 3: overfitting, trained in the page. Two copies of one MLP (same initial weights) are
// trained full-batch on a few noisy two-moons points, one without and one with dropout, step by
// step on the GPU; after every epoch both are evaluated (eval mode, on the GPU) on the training
// and the validation points, and the decision boundaries are redrawn from GPU predictions.
import type { DropoutContext } from '../../src/index.js';
import { MLP, oneHot, readMatrix, uploadMatrix } from '../../src/model.js';
import { moons, type Points2D } from '../data.js';
import { axes, colors, line, paint, size } from '../plot.js';
import { byId, canvas2d, fmt, gpuTurn, Panel, showValue, slider, urlState } from '../ui.js';

/** Hidden units per layer by default; the panel's select offers a too-small network too. */
const WIDTH = 64;
const EPOCHS = 150;
const LEARNING_RATE = 0.01;
const NOISE = 0.3;
/** Resolution of the decision-boundary image. */
const BOUNDARY = 48;
const RANGE = 2.2;
const REDRAW_EVERY = 25;

interface Run {
  label: 'plain' | 'dropout';
  mlp: MLP;
  train: number[];
  val: number[];
}

export async function startOverfitPanel(ctx: DropoutContext): Promise<void> {
  const panel = new Panel('overfit');
  const lossPlot = canvas2d('overfit-loss').g;
  // Square, like the plane they show.
  const boundaries = { plain: canvas2d('overfit-boundary-plain', (w) => w).g, dropout: canvas2d('overfit-boundary-dropout', (w) => w).g };
  const button = byId<HTMLButtonElement>('overfit-train');
  const trainSet = moons(40, NOISE, 3);
  const valSet = moons(400, NOISE, 4);
  const matrices = {
    trainX: uploadMatrix(ctx, trainSet.x, 40, 2),
    trainY: uploadMatrix(ctx, oneHot(trainSet.labels, 2), 40, 2),
    valX: uploadMatrix(ctx, valSet.x, 400, 2),
    valY: uploadMatrix(ctx, oneHot(valSet.labels, 2), 400, 2),
    grid: uploadMatrix(ctx, boundaryGrid(), BOUNDARY * BOUNDARY, 2),
  };
  let generation = 0;

  /** The p and width the shown curves were trained with (null before the first run). */
  let trainedP: number | null = null;
  let trainedWidth = WIDTH;
  const widthSelect = byId<HTMLSelectElement>('overfit-width');
  const readWidth = () => Number(widthSelect.value);
  const readP = slider(
    'overfit-p',
    (v) => v.toFixed(2),
    () => markStale(),
  );
  const widthFromUrl = urlState.get('overfit-width');
  if ([...widthSelect.options].some((o) => o.value === widthFromUrl)) widthSelect.value = widthFromUrl!;
  widthSelect.addEventListener('change', () => {
    urlState.set('overfit-width', widthSelect.value);
    markStale();
  });
  /** The plots show the p and width they were trained with; when the controls differ, say so at once. */
  function markStale(): void {
    const p = readP();
    const width = readWidth();
    const stale = trainedP !== null && (Math.abs(p - trainedP) > 1e-9 || width !== trainedWidth);
    const note = byId('overfit-stale');
    note.hidden = !stale;
    note.textContent = stale
      ? `These curves and maps were trained with p = ${trainedP!.toFixed(2)} and ${trainedWidth} hidden units per layer. Press "Train again" to train with p = ${p.toFixed(2)} and ${width}.`
      : '';
    panel.root.dataset.stale = String(stale);
    button.classList.toggle('attention', stale);
  }
  button.addEventListener('click', () => void train());
  panel.enable(byId<HTMLInputElement>('overfit-p'), widthSelect);

  async function train(): Promise<void> {
    const mine = ++generation;
    const p = readP();
    const width = readWidth();
    const sizes = [2, width, width, 2];
    trainedP = p;
    trainedWidth = width;
    markStale();
    panel.disable(button);
    byId('overfit-dropout-caption').textContent = `With dropout (p = ${p.toFixed(2)})`;
    // The same seed gives both networks the same initial weights: only dropout differs.
    const runs: Run[] = [
      { label: 'plain', mlp: new MLP(ctx, { sizes, dropout: 0, seed: 9, learningRate: LEARNING_RATE }), train: [], val: [] },
      { label: 'dropout', mlp: new MLP(ctx, { sizes, dropout: p, seed: 9, learningRate: LEARNING_RATE }), train: [], val: [] },
    ];
    // Said once: the epoch count below is not a live region, so a screen reader is not told every epoch.
    panel.set('running', `Training both networks on the GPU for ${EPOCHS} epochs…`);
    try {
      for (let epoch = 1; epoch <= EPOCHS; epoch++) {
        if (mine !== generation) return;
        // Both steps, then all four evaluations in flight together: one GPU round trip per epoch.
        const losses = await gpuTurn(async () => {
          await Promise.all(runs.map((r) => r.mlp.trainStep(matrices.trainX, matrices.trainY, { loss: 'xent' })));
          return Promise.all(
            runs.map((r) =>
              Promise.all([
                r.mlp.evaluate(matrices.trainX, matrices.trainY, { loss: 'xent' }),
                r.mlp.evaluate(matrices.valX, matrices.valY, { loss: 'xent' }),
              ]),
            ),
          );
        }, panel);
        runs.forEach((r, k) => {
          r.train.push(losses[k]![0]);
          r.val.push(losses[k]![1]);
        });
        paint(lossPlot, () => drawLosses(runs, p));
        showValue('overfit-epoch', `${epoch} of ${EPOCHS}`, epoch);
        for (const r of runs)
          showValue(`overfit-loss-${r.label}`, `${fmt(r.train.at(-1)!)} / ${fmt(r.val.at(-1)!)}`, [r.train.at(-1)!, r.val.at(-1)!]);
        if (epoch === 1 || epoch % REDRAW_EVERY === 0 || epoch === EPOCHS) {
          for (const r of runs) {
            const prob = await classOneProbability(r.mlp);
            paint(boundaries[r.label], () => drawBoundary(boundaries[r.label], prob, trainSet, valSet));
          }
        }
      }
      if (mine === generation) markStale();
      lossPlot.canvas.dataset.history = JSON.stringify(Object.fromEntries(runs.map((r) => [r.label, { train: r.train, val: r.val }])));
      const [plain, drop] = runs as [Run, Run];
      const gap = (r: Run) => r.val.at(-1)! - r.train.at(-1)!;
      panel.set(
        'ready',
        `Done: ${EPOCHS} epochs each on the GPU. Best validation loss: ${fmt(Math.min(...plain.val))} without dropout, ${fmt(Math.min(...drop.val))} with dropout. Validation minus training loss at the end: ${fmt(gap(plain))} without, ${fmt(gap(drop))} with.`,
      );
    } catch (e) {
      panel.fail(e);
    } finally {
      for (const r of runs) r.mlp.destroy();
      if (mine === generation) panel.enable(button);
    }
  }

  function drawLosses(runs: Run[], p: number): void {
    const top = Math.min(2, Math.max(0.1, ...runs.flatMap((r) => [...r.train, ...r.val])) * 1.05);
    // Colour says which network, the dash which data set: four short entries instead of four long ones.
    const f = axes(
      lossPlot,
      { x0: 0, x1: EPOCHS, y0: 0, y1: top },
      {
        x: 'epoch',
        y: 'cross-entropy',
        title: `Loss per epoch (2-${trainedWidth}-${trainedWidth}-2 network)`,
        legend: [
          { label: 'no dropout', color: colors.plain, fill: true },
          { label: `dropout ${p.toFixed(2)}`, color: colors.dropout, fill: true },
          { label: 'train (dropout off)', color: colors.ink },
          { label: 'validation', color: colors.ink, dash: [6, 4] },
        ],
      },
    );
    const epochs = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    for (const r of runs) {
      const color = r.label === 'plain' ? colors.plain : colors.dropout;
      line(f, epochs(r.train.length), r.train, { color, width: 2 });
      line(f, epochs(r.val.length), r.val, { color, width: 2, dash: [6, 4] });
      // The best epoch so far: where this network's validation loss is lowest.
      let best = 0;
      r.val.forEach((v, i) => {
        if (v < r.val[best]!) best = i;
      });
      if (r.val.length) {
        const X = f.left + ((best + 1) / EPOCHS) * f.width;
        const Y = f.top + (1 - r.val[best]! / f.y1) * f.height;
        f.g.fillStyle = color;
        f.g.strokeStyle = '#ffffff';
        f.g.lineWidth = 1.5;
        f.g.beginPath();
        f.g.arc(X, Y, 5, 0, 2 * Math.PI);
        f.g.fill();
        f.g.stroke();
      }
    }
  }

  /** Class-1 probability over the boundary grid, from GPU predictions. */
  async function classOneProbability(mlp: MLP): Promise<Float32Array> {
    const logits = await gpuTurn(async () => {
      const out = await mlp.predict(matrices.grid);
      const values = await readMatrix(ctx, out);
      ctx.release(out.buffer);
      return values;
    }, panel);
    return Float32Array.from({ length: BOUNDARY * BOUNDARY }, (_, i) => 1 / (1 + Math.exp(logits[2 * i]! - logits[2 * i + 1]!)));
  }

  /** The class-1 probability over the plane, its 0.5 contour, and the training points. */
  function drawBoundary(g: CanvasRenderingContext2D, prob: Float32Array, points: Points2D, validation: Points2D): void {
    const image = new ImageData(BOUNDARY, BOUNDARY);
    prob.forEach((q, i) => {
      const [r, gg, b] = rgb(q > 0.5 ? colors.classB : colors.classA);
      const strength = Math.min(1, Math.abs(q - 0.5) * 2);
      const mix = (c: number) => Math.round(255 + (c - 255) * (0.12 + 0.3 * strength));
      image.data.set([mix(r), mix(gg), mix(b), 255], 4 * i);
    });
    // Through a small canvas, so the image is scaled to the display synchronously (a resize redraws it).
    const small = document.createElement('canvas');
    small.width = BOUNDARY;
    small.height = BOUNDARY;
    small.getContext('2d')!.putImageData(image, 0, 0);
    const { width: W, height: H } = size(g);
    g.imageSmoothingEnabled = true;
    g.drawImage(small, 0, 0, W, H);
    g.strokeStyle = colors.ink;
    g.lineWidth = 2;
    g.stroke(contour(prob, BOUNDARY, W / BOUNDARY, 0.5));
    // Some validation points, as rings (every fourth of the 400).
    for (let i = 0; i < validation.labels.length; i += 4) {
      const x = ((validation.x[2 * i]! + RANGE) / (2 * RANGE)) * W;
      const y = (1 - (validation.x[2 * i + 1]! + RANGE) / (2 * RANGE)) * H;
      g.beginPath();
      g.arc(x, y, 2.5, 0, 2 * Math.PI);
      g.strokeStyle = validation.labels[i] ? colors.classB : colors.classA;
      g.lineWidth = 1.2;
      g.stroke();
    }
    for (let i = 0; i < points.labels.length; i++) {
      const x = ((points.x[2 * i]! + RANGE) / (2 * RANGE)) * W;
      const y = (1 - (points.x[2 * i + 1]! + RANGE) / (2 * RANGE)) * H;
      g.beginPath();
      g.arc(x, y, 4, 0, 2 * Math.PI);
      g.fillStyle = points.labels[i] ? colors.classB : colors.classA;
      g.strokeStyle = '#ffffff';
      g.lineWidth = 1.5;
      g.fill();
      g.stroke();
    }
  }

  return train();
}

/**
 * The `level` contour of a row-major n x n field (sample (r, c) at the centre of cell (r, c) of
 * size `cell`) by marching squares with linear interpolation along the cell edges.
 */
function contour(field: Float32Array, n: number, cell: number, level: number): Path2D {
  const path = new Path2D();
  const at = (r: number, c: number) => field[r * n + c]! - level;
  for (let r = 0; r + 1 < n; r++) {
    for (let c = 0; c + 1 < n; c++) {
      // Corners clockwise from top-left, and the crossing on each edge whose ends differ in sign.
      const corners: [number, number][] = [
        [r, c],
        [r, c + 1],
        [r + 1, c + 1],
        [r + 1, c],
      ];
      const crossings: [number, number][] = [];
      for (let k = 0; k < 4; k++) {
        const [r0, c0] = corners[k]!;
        const [r1, c1] = corners[(k + 1) % 4]!;
        const v0 = at(r0, c0);
        const v1 = at(r1, c1);
        if (v0 > 0 === v1 > 0) continue;
        const t = v0 / (v0 - v1);
        crossings.push([(c0 + t * (c1 - c0) + 0.5) * cell, (r0 + t * (r1 - r0) + 0.5) * cell]);
      }
      for (let k = 0; k + 1 < crossings.length; k += 2) {
        path.moveTo(...crossings[k]!);
        path.lineTo(...crossings[k + 1]!);
      }
    }
  }
  return path;
}

function rgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

/** Row-major BOUNDARY x BOUNDARY points over [-RANGE, RANGE]^2, top row first. */
function boundaryGrid(): Float32Array {
  const out = new Float32Array(BOUNDARY * BOUNDARY * 2);
  for (let r = 0; r < BOUNDARY; r++) {
    for (let c = 0; c < BOUNDARY; c++) {
      const i = r * BOUNDARY + c;
      out[2 * i] = -RANGE + ((c + 0.5) / BOUNDARY) * 2 * RANGE;
      out[2 * i + 1] = RANGE - ((r + 0.5) / BOUNDARY) * 2 * RANGE;
    }
  }
  return out;
}
