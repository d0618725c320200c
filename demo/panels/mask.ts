// Panel 1: the mask, live. A layer of 256 neurons (or a small feature map / batch for the
// structured masks) goes through the library's dropout on the GPU; the page reads the output back
// and draws which neurons survived and their scaled values. A second GPU call draws 2^20 keep
// decisions with the same (p, seed, stream) to show the kept fraction converging to 1 - p.
import { bernoulliMask, dropPath, dropout, readArray, spatialDropout, type DropoutContext } from '../../src/index.js';
import { clear, colors, paint, size } from '../plot.js';
import { Panel, byId, canvas2d, fmt, fmtInt, gpuTurn, latestWins, showValue, slider } from '../ui.js';

type MaskMode = 'element' | 'spatial' | 'droppath';

const ELEMENTS = 256;
const DRAWS = 1 << 20;

/** How the 256 values are arranged and which dimensions the mask spans. */
interface Layout {
  mode: MaskMode;
  /** The input's shape. */
  shape: number[];
  /** The mask's shape (the input's with broadcast dimensions set to 1). */
  maskShape: number[];
  /** Tiles drawn (one per mask unit for the structured masks), each `tile` x `tile` cells. */
  tiles: number;
  tileColumns: number;
  tile: number;
  /** Tile labels, longest first: the longest that fits every tile is drawn. */
  tileLabels: ((t: number) => string)[];
  unitName: string;
  /** The panel's explanation (HTML) and the canvas's accessible name, for this mode. */
  explain: string;
  canvasLabel: string;
}

const SCALED = 'the ones kept are scaled by 1/(1&minus;<var>p</var>) (inverted dropout), so the expected output is unchanged. Move the sliders: the mask is recomputed on the GPU.';

const layouts: Record<MaskMode, Layout> = {
  element: {
    mode: 'element',
    shape: [256],
    maskShape: [256],
    tiles: 1,
    tileColumns: 1,
    tile: 16,
    tileLabels: [() => ''],
    unitName: 'neurons',
    explain: `A layer of 256 neurons. Each is dropped with probability <var>p</var>; ${SCALED}`,
    canvasLabel: "The dropout mask over the layer's 256 neurons",
  },
  // A feature map (N=2, C=8, H=4, W=4), channels first: one decision per (sample, channel).
  spatial: {
    mode: 'spatial',
    shape: [2, 8, 4, 4],
    maskShape: [2, 8, 1, 1],
    tiles: 16,
    tileColumns: 4,
    tile: 4,
    tileLabels: [(t) => `n${t >> 3} c${t & 7}`],
    unitName: 'channels',
    explain: `A feature map of 2 samples (n) &times; 8 channels (c) of 4 &times; 4 values. Each channel of each sample is dropped whole with probability <var>p</var> (spatial dropout); ${SCALED}`,
    canvasLabel: 'The spatial dropout mask: 16 channels (2 samples of 8 channels), each kept or dropped whole',
  },
  // A batch of 16 samples of 16 features: one decision per sample (stochastic depth).
  droppath: {
    mode: 'droppath',
    shape: [16, 16],
    maskShape: [16, 1],
    tiles: 16,
    tileColumns: 4,
    tile: 4,
    tileLabels: [(t) => `sample ${t}`, (t) => `n${t}`],
    unitName: 'samples',
    explain: `A batch of 16 samples of 16 features. Each sample is dropped whole with probability <var>p</var> (drop-path, or stochastic depth); ${SCALED}`,
    canvasLabel: 'The drop-path mask over 16 samples, each kept or dropped whole',
  },
};

/** Positive, smoothly varying activations, so a dropped neuron (exactly 0) is never ambiguous. */
function layerValues(): Float32Array {
  const x = new Float32Array(ELEMENTS);
  for (let i = 0; i < ELEMENTS; i++) x[i] = Number((0.55 + 0.35 * Math.sin(i * 0.37) * Math.cos(i * 0.11)).toFixed(2));
  return x;
}

/** Room right of the grid for the colour bar and its labels (CSS px). */
const LEGEND_WIDTH = 104;

export function startMaskPanel(ctx: DropoutContext): Promise<void> {
  const panel = new Panel('mask');
  // The grid is about square: a bit more height than width on a phone, less on a desktop.
  const { g } = canvas2d('mask-canvas', (w) => Math.min(520, Math.max(300, 0.75 * w)));
  const x = layerValues();
  const xBuffer = ctx.upload(x, 'mask demo input');
  const yBuffer = ctx.acquire(ELEMENTS * 4, 'mask demo output');
  const drawsBuffer = ctx.acquire(DRAWS / 8, 'mask demo packed draws');
  showValue('mask-draws-count', fmtInt(DRAWS), DRAWS);

  const mode = (): MaskMode => (document.querySelector<HTMLInputElement>('input[name="mask-mode"]:checked')?.value as MaskMode | undefined) ?? 'element';
  const run = latestWins(async () => {
    const layout = layouts[mode()];
    const p = readP();
    const seed = BigInt(readSeed());
    const stream = BigInt(readStream());
    panel.busy('Computing on the GPU…');
    describeMode(layout);
    const opts = { p, seed, stream, out: yBuffer };
    const [y, bits] = await gpuTurn(async () => {
      const forward =
        layout.mode === 'element'
          ? dropout(ctx, xBuffer, { ...opts, count: ELEMENTS })
          : layout.mode === 'spatial'
            ? spatialDropout(ctx, xBuffer, { ...opts, shape: layout.shape, layout: 'channels-first' })
            : dropPath(ctx, xBuffer, { ...opts, shape: layout.shape });
      const draws = bernoulliMask(ctx, { count: DRAWS, p, seed, stream, packed: true, out: drawsBuffer });
      await Promise.all([forward, draws]);
      return Promise.all([readArray(ctx, yBuffer, 'f32', ELEMENTS), readArray(ctx, drawsBuffer, 'u32', DRAWS / 32)]);
    }, panel);
    paint(g, () => render(layout, p, y));
    report(layout, p, y, popcount(bits));
    // What was computed, for tests and for anyone checking it against the CPU reference.
    Object.assign(g.canvas.dataset, { mode: layout.mode, p: String(p), seed: String(seed), stream: String(stream) });
    g.canvas.dataset.kept = Array.from(y, (v) => (v !== 0 ? '1' : '0')).join('');
    g.canvas.dataset.values = Array.from(y).join(',');
    panel.set('ready', `Mask for seed ${seed}, stream ${stream}, p = ${p.toFixed(2)}: computed on the GPU.`);
  }, (e) => panel.fail(e));

  const readP = slider('mask-p', (v) => v.toFixed(2), () => void run());
  const readSeed = slider('mask-seed', (v) => String(v), () => void run());
  const readStream = slider('mask-stream', (v) => String(v), () => void run());
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mask-mode"]')) radio.addEventListener('change', () => void run());
  panel.enable();

  /** The explanation and the canvas's name follow the mode (neurons, channels or samples). */
  function describeMode(layout: Layout): void {
    const explain = byId('mask-explain');
    if (explain.dataset.mode !== layout.mode) {
      explain.innerHTML = layout.explain;
      explain.dataset.mode = layout.mode;
    }
    g.canvas.setAttribute('aria-label', layout.canvasLabel);
  }

  function render(layout: Layout, p: number, y: Float32Array): void {
    clear(g);
    const { width: W, height: H } = size(g);
    const scale = p < 1 ? 1 / (1 - p) : 0;
    const vmax = Math.max(1e-6, ...x) * Math.max(scale, 1);
    const gridWidth = W - LEGEND_WIDTH - 24;
    const gap = layout.tiles > 1 ? 12 : 0;
    const rows = Math.ceil(layout.tiles / layout.tileColumns);
    const cellsAcross = layout.tileColumns * layout.tile;
    const labelSpace = layout.tiles > 1 ? 13 : 0;
    const cell = Math.min((gridWidth - gap * (layout.tileColumns - 1)) / cellsAcross, (H - 20 - rows * labelSpace - gap * (rows - 1)) / (rows * layout.tile));
    const tileWidth = layout.tile * cell;
    const perTile = layout.tile * layout.tile;
    g.font = '11px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    // The longest labels that fit over every tile without running into the next one.
    const tileLabel =
      layout.tileLabels.find((label) => Array.from({ length: layout.tiles }, (_, t) => g.measureText(label(t)).width).every((w) => w <= tileWidth + gap - 4)) ??
      layout.tileLabels.at(-1)!;
    // The short labels need a key; it follows the labels drawn (they change with the width).
    byId('mask-tile-key').textContent = tileLabel(3) === 'n0 c3' ? ' Tile n0 c3 is sample 0, channel 3.' : tileLabel(3) === 'n3' ? ' Tile n3 is sample 3.' : '';
    const at: [number, number][] = [];
    for (let t = 0; t < layout.tiles; t++) {
      const ox = 12 + (t % layout.tileColumns) * (tileWidth + gap);
      const oy = 10 + Math.floor(t / layout.tileColumns) * (tileWidth + gap + labelSpace) + labelSpace;
      if (labelSpace) {
        g.fillStyle = colors.muted;
        g.fillText(tileLabel(t), ox + tileWidth / 2, oy - 7);
      }
      for (let k = 0; k < perTile; k++) {
        const i = layout.tiles > 1 ? t * perTile + k : k;
        const v = y[i]!;
        const cx = ox + (k % layout.tile) * cell;
        const cy = oy + Math.floor(k / layout.tile) * cell;
        at[i] = [cx, cy];
        if (v === 0) {
          g.fillStyle = colors.dropped;
          g.fillRect(cx + 1, cy + 1, cell - 2, cell - 2);
          g.strokeStyle = '#b9c0cc';
          g.lineWidth = 1;
          g.beginPath();
          g.moveTo(cx + 0.3 * cell, cy + 0.3 * cell);
          g.lineTo(cx + 0.7 * cell, cy + 0.7 * cell);
          g.moveTo(cx + 0.7 * cell, cy + 0.3 * cell);
          g.lineTo(cx + 0.3 * cell, cy + 0.7 * cell);
          g.stroke();
        } else {
          g.fillStyle = valueColor(v / vmax);
          g.fillRect(cx + 1, cy + 1, cell - 2, cell - 2);
          if (cell >= 22) {
            g.fillStyle = v / vmax > 0.55 ? '#ffffff' : colors.ink;
            g.fillText(v.toFixed(1), cx + cell / 2, cy + cell / 2);
          }
        }
      }
    }
    drawScale(vmax, scale, W - LEGEND_WIDTH, H);
    // Where value i's cell is drawn (top-left corner, CSS px), for tests that check what is painted.
    g.canvas.dataset.cells = JSON.stringify({ size: cell, at });
  }

  /** Colour bar: what the cell colours mean, and where x and x/(1-p) fall. */
  function drawScale(vmax: number, scale: number, left: number, canvasHeight: number): void {
    const top = 30;
    // Room below the bar for the "dropped" swatch and the scale.
    const height = Math.max(60, canvasHeight - top - 80);
    for (let i = 0; i < height; i++) {
      g.fillStyle = valueColor(1 - i / height);
      g.fillRect(left, top + i, 18, 1);
    }
    g.strokeStyle = colors.muted;
    g.strokeRect(left, top, 18, height);
    g.fillStyle = colors.ink;
    g.font = '11px system-ui, sans-serif';
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    g.fillText(vmax.toFixed(2), left + 24, top);
    g.fillText('0', left + 24, top + height);
    g.fillText('value', left, top - 14);
    g.fillStyle = colors.dropped;
    g.fillRect(left, top + height + 22, 18, 18);
    g.fillStyle = colors.ink;
    g.fillText('dropped', left + 24, top + height + 31);
    g.fillText(`kept: x × ${scale.toFixed(2)}`, left - 2, top + height + 62);
  }

  function report(layout: Layout, p: number, y: Float32Array, keptDraws: number): void {
    const units = layout.maskShape.reduce((a, b) => a * b, 1);
    const perUnit = ELEMENTS / units;
    let keptUnits = 0;
    for (let u = 0; u < units; u++) if (unitKept(layout, y, u, perUnit)) keptUnits++;
    const expected = 1 - p;
    const sigmaLayer = Math.sqrt((p * (1 - p)) / units);
    showValue('mask-kept-layer', `${keptUnits} of ${units} ${layout.unitName} = ${fmt(keptUnits / units)} (±${fmt(sigmaLayer)} is 1σ)`, keptUnits / units);
    const large = keptDraws / DRAWS;
    showValue('mask-kept-large', `${fmt(large, 5)} (±${fmt(Math.sqrt((p * (1 - p)) / DRAWS), 5)} is 1σ)`, large);
    showValue('mask-expected', fmt(expected, 2), expected);
    const scale = p < 1 ? 1 / (1 - p) : 0;
    showValue('mask-scale', `× ${fmt(scale, 3)}`, scale);
    const meanX = mean(x);
    const meanY = mean(y);
    showValue('mask-means', `${fmt(meanX)} → ${fmt(meanY)}`, [meanX, meanY]);
    const shown = 8;
    byId('mask-values').textContent =
      `x[0..${shown - 1}] = ${Array.from(x.subarray(0, shown), (v) => v.toFixed(2)).join(' ')}\n` +
      `y[0..${shown - 1}] = ${Array.from(y.subarray(0, shown), (v) => v.toFixed(2)).join(' ')}`;
    const maskShape = layout.maskShape.join(' × ');
    byId('mask-shape').textContent =
      layout.mode === 'element'
        ? `Input shape ${layout.shape.join(' × ')}; one keep decision per neuron.`
        : `Input shape ${layout.shape.join(' × ')}; mask shape ${maskShape}: one decision per ${layout.unitName.slice(0, -1)}, broadcast over the rest.`;
  }

  return run();
}

/** A unit is kept when its elements are non-zero (the inputs are all positive). */
function unitKept(layout: Layout, y: Float32Array, unit: number, perUnit: number): boolean {
  if (layout.mode === 'element') return y[unit] !== 0;
  for (let k = 0; k < perUnit; k++) if (y[unit * perUnit + k] !== 0) return true;
  return false;
}

function popcount(words: Uint32Array): number {
  let n = 0;
  for (let w of words) {
    w = w - ((w >>> 1) & 0x55555555);
    w = (w & 0x33333333) + ((w >>> 2) & 0x33333333);
    n += (Math.imul((w + (w >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
  }
  return n;
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
}

/** White to the accent blue. */
function valueColor(t: number): string {
  const u = Math.min(1, Math.max(0, t));
  const r = Math.round(236 + (30 - 236) * u);
  const gg = Math.round(243 + (84 - 243) * u);
  const b = Math.round(253 + (196 - 253) * u);
  return `rgb(${r}, ${gg}, ${b})`;
}
