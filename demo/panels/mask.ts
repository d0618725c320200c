// Panel 1: the mask, live. A layer of 256 neurons (or a small feature map / batch for the
// structured masks) goes through the library's dropout on the GPU; the page reads the output back
// and draws which neurons survived and their scaled values. A second GPU call draws 2^20 keep
// decisions with the same (p, seed, stream) to show the kept fraction converging to 1 - p.
import { bernoulliMask, type DropoutContext, dropout, dropPath, readArray, spatialDropout } from '../../src/index.js';
import { applyKeepMask, referenceKeepMask } from '../../src/reference.js';
import { featureMap } from '../data.js';
import { clear, colors, paint, size } from '../plot.js';
import { byId, canvas2d, fmt, fmtInt, gpuTurn, latestWins, Panel, radioFromUrl, showValue, slider } from '../ui.js';

type MaskMode = 'element' | 'spatial' | 'droppath';

const ELEMENTS = 256;
const DRAWS = 1 << 20;
/**
 * The colour scale is fixed: 0 to COLOR_MAX whatever p is, so kept cells darken as 1/(1-p) grows
 * (values above it are drawn at its colour, and the legend says so).
 */
export const COLOR_MAX = 4;
/** The spatial mode's feature map: 1 sample, 4 channels of 8 x 8 pixels, channels first. */
const FEATURE_SHAPE = [1, 4, 8, 8];

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
  /** Label each row of the grid (drop-path: a row is a sample). */
  rowLabels?: boolean;
  unitName: string;
  /** The panel's explanation (HTML) and the canvas's accessible name, for this mode. */
  explain: string;
  canvasLabel: string;
}

const SCALED =
  'the ones kept are scaled by 1/(1&minus;<var>p</var>) (inverted dropout), so the expected output is unchanged. Move the sliders: the mask is recomputed on the GPU.';

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
  // An image-like feature map (N=1, C=4, H=8, W=8), channels first: one decision per channel,
  // drawn next to element-wise dropout of the same map (see renderSpatial).
  spatial: {
    mode: 'spatial',
    shape: FEATURE_SHAPE,
    maskShape: [1, 4, 1, 1],
    tiles: 4,
    tileColumns: 2,
    tile: 8,
    tileLabels: [(t) => `channel ${t}`, (t) => `c${t}`],
    unitName: 'channels',
    explain: `A feature map, as a convolution outputs it: 4 channels of 8 &times; 8 pixels, each channel a smooth pattern, so neighbouring pixels carry nearly the same value. In the first map, element-wise dropout drops single pixels, and the next convolution still sees their neighbours, which say almost the same thing: little information is removed. In the second, spatial dropout drops whole channels with probability <var>p</var>, so a feature is really gone and the network cannot rely on it. Kept values are scaled by 1/(1&minus;<var>p</var>) in both.`,
    canvasLabel: 'One feature map of 4 channels of 8 by 8 pixels, dropped pixel by pixel (left) and channel by channel (right)',
  },
  // A batch of 16 samples of 16 features, one row per sample: one decision per sample.
  droppath: {
    mode: 'droppath',
    shape: [16, 16],
    maskShape: [16, 1],
    tiles: 1,
    tileColumns: 1,
    tile: 16,
    tileLabels: [() => ''],
    rowLabels: true,
    unitName: 'samples',
    explain: `Drop-path (stochastic depth) acts on a residual block's branch, out = x + drop_path(f(x)): for each sample of the batch (one row here, 16 features) the whole branch f(x) is kept, scaled by 1/(1&minus;<var>p</var>), or dropped, so that sample skips the block and only x goes on. A dropped row is a sample for which this block did not exist in this step.`,
    canvasLabel: 'The drop-path mask over a batch of 16 samples (rows), each branch kept or dropped whole',
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

/** The panel's canvases: the grid (element-wise and drop-path) and the spatial mode's two maps. */
interface MaskPlots {
  grid: CanvasRenderingContext2D;
  spatial: CanvasRenderingContext2D;
}

/** The values dropped: the layer's 256 activations and the spatial mode's feature map. */
interface MaskInputs {
  layer: Float32Array;
  map: Float32Array;
}

/** The GPU buffers: both inputs, the outputs (the mode's and the map's pixel by pixel) and the packed draws. */
interface MaskBuffers {
  x: GPUBuffer;
  map: GPUBuffer;
  y: GPUBuffer;
  pixels: GPUBuffer;
  draws: GPUBuffer;
}

/** What the controls ask for: the mode's layout and (p, seed, stream). */
interface MaskRequest {
  layout: Layout;
  p: number;
  seed: bigint;
  stream: bigint;
}

/** The output, the kept count over DRAWS draws, and (spatial) the map dropped pixel by pixel. */
type MaskResult = [Float32Array, number, Float32Array | null];

/**
 * Starts the panel on the GPU, or (ctx null: no WebGPU here) on the library's CPU reference, which
 * gives the same masks: referenceKeepMask's word u decides element u, or mask unit u (channel,
 * sample) of the structured masks, as on the GPU.
 */
export function startMaskPanel(ctx: DropoutContext | null): Promise<void> {
  const panel = new Panel('mask');
  const where = ctx ? 'on the GPU' : 'on the CPU reference (no WebGPU here)';
  const plots = maskCanvases();
  const inputs: MaskInputs = { layer: layerValues(), map: featureMap(FEATURE_SHAPE[1]!, FEATURE_SHAPE[2]!) };
  const gpu = ctx ? maskBuffers(ctx, inputs) : null;
  showValue('mask-draws-count', fmtInt(DRAWS), DRAWS);

  const run = latestWins(
    async () => {
      const request = readRequest();
      panel.busy(`Computing ${where}…`);
      describeMode(plots.grid, request.layout);
      const result = ctx && gpu ? await gpuTurn(() => computeOnGpu(ctx, gpu, request), panel) : computeOnCpu(inputs, request);
      showMask(plots, inputs, request, result);
      panel.set('ready', `Mask for seed ${request.seed}, stream ${request.stream}, p = ${request.p.toFixed(2)}: computed ${where}.`);
      panel.root.dataset.backend = ctx ? 'gpu' : 'cpu';
    },
    (e) => panel.fail(e),
  );

  const readRequest = maskControls(() => void run());
  panel.enable();
  return run();
}

/** The grid's canvas and the spatial maps' canvas, each sized to its display. */
function maskCanvases(): MaskPlots {
  // The grid is about square: a bit more height than width on a phone, less on a desktop.
  const grid = canvas2d('mask-canvas', (w) => Math.min(520, Math.max(300, 0.75 * w))).g;
  const spatial = canvas2d('mask-spatial', (w) => (w < 480 ? 2 * Math.min(w - 24, 280) + 135 : (w - 48) / 2 + 100)).g;
  return { grid, spatial };
}

/** The inputs uploaded once, and the buffers every computation writes. */
function maskBuffers(ctx: DropoutContext, inputs: MaskInputs): MaskBuffers {
  return {
    x: ctx.upload(inputs.layer, 'mask demo input'),
    map: ctx.upload(inputs.map, 'mask demo feature map'),
    y: ctx.acquire(ELEMENTS * 4, 'mask demo output'),
    pixels: ctx.acquire(ELEMENTS * 4, 'mask demo element-wise feature map'),
    draws: ctx.acquire(DRAWS / 8, 'mask demo packed draws'),
  };
}

/**
 * The mode radios (from the URL when it names one) and the p, seed and stream sliders, each
 * calling `onChange` when moved; returns what they ask for now.
 */
function maskControls(onChange: () => void): () => MaskRequest {
  radioFromUrl('mask-mode');
  const readP = slider('mask-p', (v) => v.toFixed(2), onChange);
  const readSeed = slider('mask-seed', (v) => String(v), onChange);
  const readStream = slider('mask-stream', (v) => String(v), onChange);
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mask-mode"]')) radio.addEventListener('change', onChange);
  return () => ({ layout: layouts[checkedMode()], p: readP(), seed: BigInt(readSeed()), stream: BigInt(readStream()) });
}

/** The mode whose radio is checked. */
function checkedMode(): MaskMode {
  return (document.querySelector<HTMLInputElement>('input[name="mask-mode"]:checked')?.value as MaskMode | undefined) ?? 'element';
}

/** The explanation and the canvas's name follow the mode (neurons, channels or samples). */
function describeMode(g: CanvasRenderingContext2D, layout: Layout): void {
  const explain = byId('mask-explain');
  if (explain.dataset.mode !== layout.mode) {
    explain.innerHTML = layout.explain;
    explain.dataset.mode = layout.mode;
  }
  g.canvas.setAttribute('aria-label', layout.canvasLabel);
}

/** The GPU's output, kept count over DRAWS draws, and (spatial) the map dropped pixel by pixel. */
async function computeOnGpu(c: DropoutContext, buffers: MaskBuffers, { layout, p, seed, stream }: MaskRequest): Promise<MaskResult> {
  const spatial = layout.mode === 'spatial';
  const opts = { p, seed, stream, out: buffers.y };
  const forward =
    layout.mode === 'element'
      ? dropout(c, buffers.x, { ...opts, count: ELEMENTS })
      : spatial
        ? spatialDropout(c, buffers.map, { ...opts, shape: layout.shape, layout: 'channels-first' })
        : dropPath(c, buffers.x, { ...opts, shape: layout.shape });
  // The same map, dropped pixel by pixel with the same (p, seed, stream), for the comparison.
  const perPixel = spatial ? dropout(c, buffers.map, { p, seed, stream, out: buffers.pixels, count: ELEMENTS }) : null;
  const draws = bernoulliMask(c, { count: DRAWS, p, seed, stream, packed: true, out: buffers.draws });
  await Promise.all([forward, draws, perPixel]);
  const [y, bits, pixels] = await Promise.all([
    readArray(c, buffers.y, 'f32', ELEMENTS),
    readArray(c, buffers.draws, 'u32', DRAWS / 32),
    spatial ? readArray(c, buffers.pixels, 'f32', ELEMENTS) : null,
  ]);
  return [y, popcount(bits), pixels];
}

/** The same on the CPU reference. */
function computeOnCpu({ layer, map }: MaskInputs, { layout, p, seed, stream }: MaskRequest): MaskResult {
  const r = { seed, stream };
  const units = layout.maskShape.reduce((a, b) => a * b, 1);
  const perUnit = ELEMENTS / units;
  const unitKeep = referenceKeepMask(units, p, r);
  const keep = Uint8Array.from({ length: ELEMENTS }, (_, i) => unitKeep[Math.floor(i / perUnit)]!);
  const spatial = layout.mode === 'spatial';
  const y = applyKeepMask(spatial ? map : layer, keep, p, 'f32') as Float32Array;
  const pixels = spatial ? (applyKeepMask(map, referenceKeepMask(ELEMENTS, p, r), p, 'f32') as Float32Array) : null;
  const kept = referenceKeepMask(DRAWS, p, r).reduce((a, b) => a + b, 0);
  return [y, kept, pixels];
}

/**
 * Shows a result: the mode's canvas drawn (the other hidden), the read-outs written, and what was
 * computed recorded on the canvas.
 */
function showMask(plots: MaskPlots, { layer, map }: MaskInputs, request: MaskRequest, [y, keptDraws, pixels]: MaskResult): void {
  const { layout, p } = request;
  const spatial = layout.mode === 'spatial';
  const x = spatial ? map : layer;
  plots.grid.canvas.hidden = spatial;
  plots.spatial.canvas.hidden = !spatial;
  if (spatial) paint(plots.spatial, () => drawSpatialMaps(plots.spatial, map, p, pixels!, y));
  else paint(plots.grid, () => drawMaskGrid(plots.grid, layout, p, x, y));
  reportMask(layout, p, x, y, keptDraws);
  byId('mask-recover-row').hidden = !spatial;
  if (spatial) {
    reportRecovery(map, pixels!, y);
    byId('mask-tile-key').textContent = ' Each map: channels 0–3 in reading order, 8 × 8 pixels each, same (p, seed, stream).';
  }
  recordMask(spatial ? plots.spatial : plots.grid, plots.spatial, request, y, pixels);
}

/** What was computed, on the canvases' data attributes, for tests and for anyone checking it against the CPU reference. */
function recordMask(
  shown: CanvasRenderingContext2D,
  spatialPlot: CanvasRenderingContext2D,
  { layout, p, seed, stream }: MaskRequest,
  y: Float32Array,
  pixels: Float32Array | null,
): void {
  spatialPlot.canvas.dataset.pixelKept = pixels ? Array.from(pixels, (v) => (v !== 0 ? '1' : '0')).join('') : '';
  spatialPlot.canvas.dataset.pixelValues = pixels ? Array.from(pixels).join(',') : '';
  Object.assign(shown.canvas.dataset, { mode: layout.mode, p: String(p), seed: String(seed), stream: String(stream) });
  shown.canvas.dataset.kept = Array.from(y, (v) => (v !== 0 ? '1' : '0')).join('');
  shown.canvas.dataset.values = Array.from(y).join(',');
  byId('panel-mask').dataset.mode = layout.mode;
}

/**
 * The grid: a cell per value on the fixed colour scale, a dropped one crossed out, in one tile per
 * mask unit for the structured masks, with the colour bar on its right.
 */
function drawMaskGrid(g: CanvasRenderingContext2D, layout: Layout, p: number, x: Float32Array, y: Float32Array): void {
  clear(g);
  const { width: W, height: H } = size(g);
  const scale = p < 1 ? 1 / (1 - p) : 0;
  const vmax = COLOR_MAX;
  const rowLabel = layout.rowLabels ? 64 : 0;
  const gridWidth = W - LEGEND_WIDTH - 24 - rowLabel;
  const gap = layout.tiles > 1 ? 12 : 0;
  const rows = Math.ceil(layout.tiles / layout.tileColumns);
  const cellsAcross = layout.tileColumns * layout.tile;
  const labelSpace = layout.tiles > 1 ? 13 : 0;
  const cell = Math.min(
    (gridWidth - gap * (layout.tileColumns - 1)) / cellsAcross,
    (H - 20 - rows * labelSpace - gap * (rows - 1)) / (rows * layout.tile),
  );
  const tileWidth = layout.tile * cell;
  const perTile = layout.tile * layout.tile;
  g.font = '12px system-ui, sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  const tileLabel = fittingTileLabel(g, layout, tileWidth + gap - 4);
  // The short labels need a key; it follows the labels drawn (they change with the width).
  byId('mask-tile-key').textContent =
    tileLabel(3) === 'n0 c3' ? ' Tile n0 c3 is sample 0, channel 3.' : tileLabel(3) === 'n3' ? ' Tile n3 is sample 3.' : '';
  const at: [number, number][] = [];
  for (let t = 0; t < layout.tiles; t++) {
    const ox = 12 + rowLabel + (t % layout.tileColumns) * (tileWidth + gap);
    const oy = 10 + Math.floor(t / layout.tileColumns) * (tileWidth + gap + labelSpace) + labelSpace;
    if (labelSpace) {
      g.fillStyle = colors.muted;
      g.fillText(tileLabel(t), ox + tileWidth / 2, oy - 7);
    }
    for (let k = 0; k < perTile; k++) {
      const i = layout.tiles > 1 ? t * perTile + k : k;
      const cx = ox + (k % layout.tile) * cell;
      const cy = oy + Math.floor(k / layout.tile) * cell;
      at[i] = [cx, cy];
      if (rowLabel && k % layout.tile === 0) {
        g.fillStyle = colors.ink;
        g.textAlign = 'right';
        g.fillText(`sample ${k / layout.tile}`, ox - 6, cy + cell / 2);
        g.textAlign = 'center';
      }
      drawCell(g, y[i]!, vmax, cx, cy, cell);
    }
  }
  drawScale(g, vmax, scale, W - LEGEND_WIDTH, H, x);
  // Where value i's cell is drawn (top-left corner, CSS px), for tests that check what is painted.
  g.canvas.dataset.cells = JSON.stringify({ size: cell, at });
}

/** The longest labels that fit over every tile (`room` wide each) without running into the next one. */
function fittingTileLabel(g: CanvasRenderingContext2D, layout: Layout, room: number): (t: number) => string {
  return (
    layout.tileLabels.find((label) =>
      Array.from({ length: layout.tiles }, (_, t) => g.measureText(label(t)).width).every((w) => w <= room),
    ) ?? layout.tileLabels.at(-1)!
  );
}

/** One value's cell: crossed out when dropped, else in its colour, with the value when there is room. */
function drawCell(g: CanvasRenderingContext2D, v: number, vmax: number, cx: number, cy: number, cell: number): void {
  if (v === 0) {
    g.fillStyle = colors.dropped;
    g.fillRect(cx + 1, cy + 1, cell - 2, cell - 2);
    g.strokeStyle = colors.muted;
    g.lineWidth = 1.5;
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

/** The colour bar right of the grid, from the canvas's top to above its bottom. */
function drawScale(g: CanvasRenderingContext2D, vmax: number, scale: number, left: number, canvasHeight: number, x: Float32Array): void {
  drawColourBar(g, vmax, scale, x, { left, top: 30, length: Math.max(60, canvasHeight - 30 - 96), vertical: true });
}

/**
 * The feature map dropped pixel by pixel and channel by channel, side by side (stacked on a
 * phone), on the fixed colour scale, with a horizontal colour bar below.
 */
function drawSpatialMaps(sg: CanvasRenderingContext2D, map: Float32Array, p: number, pixels: Float32Array, channels: Float32Array): void {
  clear(sg);
  const { width: W } = size(sg);
  const side = W >= 480;
  const mapW = side ? (W - 48) / 2 : Math.min(W - 24, 280);
  const tileGap = 8;
  const cell = (mapW - tileGap) / 16;
  const titleH = 22;
  const origins: [number, number][] = side
    ? [
        [12, titleH + 8],
        [36 + mapW, titleH + 8],
      ]
    : [
        [(W - mapW) / 2, titleH + 8],
        [(W - mapW) / 2, 2 * (titleH + 8) + mapW + 6],
      ];
  const titles = ['Element-wise: single pixels', 'Spatial: whole channels'];
  const values = [pixels, channels];
  let at: [number, number][] = [];
  for (let m = 0; m < 2; m++) {
    const [ox, oy] = origins[m]!;
    sg.font = '600 13px system-ui, sans-serif';
    sg.fillStyle = colors.ink;
    sg.textAlign = 'left';
    sg.textBaseline = 'bottom';
    sg.fillText(titles[m]!, ox, oy - 6);
    const cells: [number, number][] = [];
    for (let i = 0; i < ELEMENTS; i++) {
      const t = i >> 6;
      const k = i & 63;
      const cx = ox + (t % 2) * (8 * cell + tileGap) + (k % 8) * cell;
      const cy = oy + (t >> 1) * (8 * cell + tileGap) + (k >> 3) * cell;
      cells.push([cx, cy]);
      const v = values[m]![i]!;
      sg.fillStyle = v === 0 ? colors.dropped : valueColor(v / COLOR_MAX);
      sg.fillRect(cx, cy, cell - 1, cell - 1);
    }
    if (m === 1) {
      frameDroppedChannels(sg, channels, ox, oy, cell, tileGap);
      at = cells;
    }
  }
  const barTop = (side ? titleH + 8 + mapW : origins[1]![1] + mapW) + 22;
  const scale = p < 1 ? 1 / (1 - p) : 0;
  drawColourBar(sg, COLOR_MAX, scale, map, { left: 24, top: barTop, length: Math.min(W - 140, 360), vertical: false });
  sg.font = '12px system-ui, sans-serif';
  sg.fillStyle = colors.ink;
  sg.textAlign = 'left';
  sg.textBaseline = 'top';
  sg.fillText(`kept: x × ${scale.toFixed(2)}`, 30 + Math.min(W - 140, 360), barTop);
  sg.canvas.dataset.cells = JSON.stringify({ size: cell - 1, at });
}

/** A dashed frame (in the gap around it) round each dropped whole channel, so it reads as one decision. */
function frameDroppedChannels(
  sg: CanvasRenderingContext2D,
  channels: Float32Array,
  ox: number,
  oy: number,
  cell: number,
  tileGap: number,
): void {
  for (let t = 0; t < 4; t++) {
    if (channels[t * 64] !== 0) continue;
    const x0 = ox + (t % 2) * (8 * cell + tileGap);
    const y0 = oy + (t >> 1) * (8 * cell + tileGap);
    sg.strokeStyle = colors.ink;
    sg.lineWidth = 2;
    sg.setLineDash([4, 3]);
    sg.strokeRect(x0 - 3, y0 - 3, 8 * cell + 5, 8 * cell + 5);
    sg.setLineDash([]);
  }
}

/**
 * How much of a dropped pixel its kept neighbours (same channel, 4-neighbourhood) still say:
 * the share of dropped pixels with one, and how far their inputs' mean is from the pixel's own.
 */
function reportRecovery(map: Float32Array, pixels: Float32Array, channels: Float32Array): void {
  const a = neighbourRecovery(map, pixels);
  const b = neighbourRecovery(map, channels);
  showValue(
    'mask-recover',
    `pixels: ${fmt(100 * a.share, 0)}% (their neighbours' mean is off by ${fmt(a.error, 2)}); channels: ${fmt(100 * b.share, 0)}%`,
    [a.share, a.error, b.share],
  );
}

/**
 * For one dropped map `out`: the share of dropped pixels with a kept neighbour, and the mean
 * distance from such a pixel's input to its kept neighbours' mean input.
 */
function neighbourRecovery(map: Float32Array, out: Float32Array): { share: number; error: number } {
  let dropped = 0;
  let described = 0;
  let error = 0;
  for (let i = 0; i < ELEMENTS; i++) {
    if (out[i] !== 0) continue;
    dropped++;
    const [c, r, k] = [i >> 6, (i >> 3) & 7, i & 7];
    const near = [
      [r - 1, k],
      [r + 1, k],
      [r, k - 1],
      [r, k + 1],
    ].filter(([rr, kk]) => rr! >= 0 && rr! < 8 && kk! >= 0 && kk! < 8 && out[c * 64 + rr! * 8 + kk!] !== 0);
    if (!near.length) continue;
    described++;
    error += Math.abs(map[i]! - near.reduce((a, [rr, kk]) => a + map[c * 64 + rr! * 8 + kk!]!, 0) / near.length);
  }
  return { share: dropped ? described / dropped : 0, error: described ? error / described : 0 };
}

/** The read-outs: kept fractions (this mask and DRAWS draws), the scale, the means, the first values and the shapes. */
function reportMask(layout: Layout, p: number, x: Float32Array, y: Float32Array, keptDraws: number): void {
  const units = layout.maskShape.reduce((a, b) => a * b, 1);
  const perUnit = ELEMENTS / units;
  let keptUnits = 0;
  for (let u = 0; u < units; u++) if (unitKept(layout, y, u, perUnit)) keptUnits++;
  const expected = 1 - p;
  const sigmaLayer = Math.sqrt((p * (1 - p)) / units);
  showValue(
    'mask-kept-layer',
    `${keptUnits} of ${units} ${layout.unitName} = ${fmt(keptUnits / units)} (±${fmt(sigmaLayer)} is 1σ)`,
    keptUnits / units,
  );
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

/**
 * A colour bar on the fixed scale 0..vmax, with brackets for where the inputs x lie and where their
 * kept outputs x/(1-p) lie (the second moves along the bar as p grows), and the "dropped" swatch.
 * Vertical (0 at the bottom) right of a grid, or horizontal (0 at the left) below one.
 */
function drawColourBar(
  g: CanvasRenderingContext2D,
  vmax: number,
  scale: number,
  x: Float32Array,
  at: { left: number; top: number; length: number; vertical: boolean },
): void {
  let lo = Infinity;
  let hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const { left, top, length, vertical } = at;
  const thick = 16;
  // Position along the bar of value v (clamped: values above vmax take its colour).
  const pos = (v: number) => (Math.min(v, vmax) / vmax) * length;
  for (let i = 0; i < length; i++) {
    g.fillStyle = valueColor(i / length);
    if (vertical) g.fillRect(left, top + length - i - 1, thick, 1);
    else g.fillRect(left + i, top, 1, thick);
  }
  g.strokeStyle = colors.muted;
  g.lineWidth = 1;
  g.strokeRect(left, top, vertical ? thick : length, vertical ? length : thick);
  g.font = '12px system-ui, sans-serif';
  g.fillStyle = colors.ink;
  const label = (text: string, v: number, side: number) => {
    if (vertical) {
      g.textAlign = 'left';
      g.textBaseline = 'middle';
      g.fillText(text, left + thick + 6 + side, top + length - pos(v));
    } else {
      g.textAlign = 'center';
      g.textBaseline = 'top';
      g.fillText(text, left + pos(v), top + thick + 4 + side);
    }
  };
  label('0', 0, 0);
  label(`${vmax}+`, vmax, 0);
  // Brackets beside the bar: x (grey) and the kept x/(1-p) (ink).
  const bracket = (a: number, b: number, color: string, offset: number) => {
    g.strokeStyle = color;
    g.lineWidth = 3;
    g.beginPath();
    if (vertical) {
      g.moveTo(left - 4 - offset, top + length - pos(a));
      g.lineTo(left - 4 - offset, top + length - pos(b));
    } else {
      g.moveTo(left + pos(a), top - 4 - offset);
      g.lineTo(left + pos(b), top - 4 - offset);
    }
    g.stroke();
  };
  bracket(lo, hi, colors.input, 0);
  if (scale > 0) bracket(lo * scale, hi * scale, colors.ink, 5);
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  if (vertical) {
    g.fillText('value (fixed)', left - 10, top - 16);
    const y = top + length + 16;
    g.fillStyle = colors.dropped;
    g.fillRect(left, y, 16, 16);
    g.fillStyle = colors.ink;
    g.fillText('dropped', left + 22, y + 8);
    g.fillStyle = colors.input;
    g.fillRect(left - 10, y + 26, 10, 3);
    g.fillStyle = colors.ink;
    g.fillText('inputs x', left + 4, y + 28);
    g.fillRect(left - 10, y + 44, 10, 3);
    g.fillText(`kept: x × ${scale.toFixed(2)}`, left + 4, y + 46);
  }
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
    n += Math.imul((w + (w >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
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
