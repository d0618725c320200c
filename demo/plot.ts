// Plain 2-D canvas drawing: axes with ticks, lines, bands and points in data coordinates, on
// canvases whose bitmap follows their displayed size (drawing is in CSS pixels).

export const colors = {
  ink: '#1d2330',
  /** Secondary text and axes: 5.9:1 on white (WCAG AA for small text). */
  muted: '#5b6475',
  grid: '#e6e9f0',
  kept: '#2f6fde',
  dropped: '#e4e7ee',
  plain: '#e0692b',
  dropout: '#2f6fde',
  /** What a neuron computed, before dropout. */
  input: '#9aa3b2',
  /** The two classes of the classification panel: hues no other plot uses. */
  classA: '#7b3fa0',
  classB: '#178a73',
  /** Training data points where they are not a class. */
  data: '#4a5263',
  band: 'rgba(47, 111, 222, 0.18)',
} as const;

export interface Frame {
  g: CanvasRenderingContext2D;
  /** Plot area in CSS pixels. */
  left: number;
  top: number;
  width: number;
  height: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export interface LegendEntry {
  label: string;
  color: string;
  dash?: number[];
  /** A filled swatch instead of a line sample. */
  fill?: boolean;
}

/** The CSS size each fitted canvas is drawn at, and its latest drawing (replayed after a resize). */
const fitted = new WeakMap<HTMLCanvasElement, { width: number; height: number }>();
const drawings = new WeakMap<HTMLCanvasElement, () => void>();

/** A canvas's drawing size in CSS pixels (its bitmap may be larger by devicePixelRatio). */
export function size(g: CanvasRenderingContext2D): { width: number; height: number } {
  return fitted.get(g.canvas) ?? { width: g.canvas.width, height: g.canvas.height };
}

/**
 * Keeps a canvas's bitmap at its displayed width times devicePixelRatio, so that 12 px text stays
 * 11 CSS px on a phone as on a desktop. `height` gives the CSS height for a CSS width; by default
 * the height attribute scaled with the width, but never below 85 % of it (plots need the room).
 * Drawing is in CSS pixels; every resize replays the canvas's latest `paint`.
 */
export function fitToDisplay(canvas: HTMLCanvasElement, height?: (width: number) => number): void {
  if (fitted.has(canvas)) return;
  const designWidth = canvas.width;
  const designHeight = canvas.height;
  const heightFor = height ?? ((w: number) => designHeight * Math.min(1.25, Math.max(0.85, w / designWidth)));
  const fit = () => {
    // clientWidth excludes the border; 0 while not laid out, when the design size stands in.
    const width = canvas.clientWidth || designWidth;
    const cssHeight = Math.round(heightFor(width));
    const ratio = window.devicePixelRatio || 1;
    const current = fitted.get(canvas);
    if (current && current.width === width && current.height === cssHeight && canvas.width === Math.round(width * ratio)) return;
    fitted.set(canvas, { width, height: cssHeight });
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(cssHeight * ratio);
    drawings.get(canvas)?.();
  };
  fit();
  new ResizeObserver(fit).observe(canvas);
}

/** Draws with `draw` now, and again after every resize of the canvas (until the next paint). */
export function paint(g: CanvasRenderingContext2D, draw: () => void): void {
  const replay = () => {
    const ratio = fitted.has(g.canvas) ? g.canvas.width / size(g).width : 1;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    draw();
  };
  drawings.set(g.canvas, replay);
  replay();
}

export function clear(g: CanvasRenderingContext2D): void {
  const { width, height } = size(g);
  g.clearRect(0, 0, width, height);
}

export function px(f: Frame, x: number): number {
  return f.left + ((x - f.x0) / (f.x1 - f.x0)) * f.width;
}

export function py(f: Frame, y: number): number {
  return f.top + (1 - (y - f.y0) / (f.y1 - f.y0)) * f.height;
}

/** Splits `text` at spaces into lines no wider than `maxWidth` (a single long word stays whole). */
export function wrapText(g: CanvasRenderingContext2D, text: string, maxWidth: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    const candidate = current ? `${current} ${word}` : word;
    if (current && g.measureText(candidate).width > maxWidth) {
      lines.push(current);
      current = word;
    } else current = candidate;
  }
  if (current) lines.push(current);
  return lines;
}

const LEGEND_ROW = 16;
const LEGEND_SAMPLE = 22;

/** Legend entries flowed into rows of at most `maxWidth`: each entry's x offset and row. */
function legendLayout(g: CanvasRenderingContext2D, entries: readonly LegendEntry[], maxWidth: number): { x: number; row: number }[] {
  g.font = '12px system-ui, sans-serif';
  const out: { x: number; row: number }[] = [];
  let x = 0;
  let row = 0;
  for (const e of entries) {
    const w = LEGEND_SAMPLE + 5 + g.measureText(e.label).width;
    if (x > 0 && x + w > maxWidth) {
      row++;
      x = 0;
    }
    out.push({ x, row });
    x += w + 14;
  }
  return out;
}

/**
 * Clears the canvas and draws axes with a few ticks; returns the frame to plot into. The title
 * (wrapped to the width) and the legend (flowed into rows) sit above the plot area, so neither
 * ever hides a curve.
 */
export function axes(
  g: CanvasRenderingContext2D,
  range: { x0: number; x1: number; y0: number; y1: number },
  labels: { x?: string; y?: string; title?: string; yTicks?: boolean; legend?: readonly LegendEntry[] } = {},
): Frame {
  clear(g);
  const { width: W, height: H } = size(g);
  const yTicks = labels.yTicks ?? true;
  const left = yTicks ? 46 : 12;
  g.font = '600 12px system-ui, sans-serif';
  const titleLines = labels.title ? wrapText(g, labels.title, W - left - 8) : [];
  const legendSlots = labels.legend ? legendLayout(g, labels.legend, W - left - 8) : [];
  const legendRows = legendSlots.length ? legendSlots.at(-1)!.row + 1 : 0;
  const legendTop = 6 + titleLines.length * 15;
  const top = legendTop + legendRows * LEGEND_ROW + (titleLines.length || legendRows ? 6 : 4);
  const f: Frame = { g, left, top, width: W - left - 12, height: H - top - 34, ...range };
  g.font = '12px system-ui, sans-serif';
  g.lineWidth = 1;
  g.strokeStyle = colors.grid;
  g.fillStyle = colors.muted;
  g.beginPath();
  if (yTicks) {
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const yv of niceTicks(f.y0, f.y1)) {
      g.moveTo(f.left, py(f, yv));
      g.lineTo(f.left + f.width, py(f, yv));
      g.fillText(tick(yv), f.left - 5, py(f, yv));
    }
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (const xv of niceTicks(f.x0, f.x1)) {
    g.moveTo(px(f, xv), f.top);
    g.lineTo(px(f, xv), f.top + f.height);
    g.fillText(tick(xv), px(f, xv), f.top + f.height + 4);
  }
  g.stroke();
  g.strokeStyle = colors.muted;
  g.strokeRect(f.left, f.top, f.width, f.height);
  g.fillStyle = colors.ink;
  if (labels.x) {
    g.textAlign = 'center';
    g.textBaseline = 'bottom';
    g.fillText(labels.x, f.left + f.width / 2, H - 2);
  }
  if (labels.y) {
    g.save();
    g.translate(11, f.top + f.height / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(labels.y, 0, 0);
    g.restore();
  }
  g.font = '600 12px system-ui, sans-serif';
  g.textAlign = 'left';
  g.textBaseline = 'top';
  titleLines.forEach((text, i) => g.fillText(text, f.left, 5 + i * 15));
  labels.legend?.forEach((e, i) => drawLegendEntry(g, e, f.left + legendSlots[i]!.x, legendTop + legendSlots[i]!.row * LEGEND_ROW));
  return f;
}

function drawLegendEntry(g: CanvasRenderingContext2D, e: LegendEntry, x: number, y: number): void {
  g.save();
  g.strokeStyle = e.color;
  g.fillStyle = e.color;
  g.lineWidth = 2;
  g.setLineDash(e.dash ?? []);
  if (e.fill) g.fillRect(x, y + 3, LEGEND_SAMPLE, 8);
  else {
    g.beginPath();
    g.moveTo(x, y + 7);
    g.lineTo(x + LEGEND_SAMPLE, y + 7);
    g.stroke();
  }
  g.font = '12px system-ui, sans-serif';
  g.fillStyle = colors.ink;
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  g.fillText(e.label, x + LEGEND_SAMPLE + 5, y + 7);
  g.restore();
}

/** About four to eight round values (steps of 1, 2, 2.5 or 5 times a power of ten) in [a, b]. */
function niceTicks(a: number, b: number): number[] {
  const rough = (b - a) / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const out: number[] = [];
  for (let v = Math.ceil(a / step - 1e-9) * step; v <= b + 1e-9 * step; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
  return out;
}

function tick(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-2)) return v.toExponential(0);
  return Number(v.toFixed(a < 1 ? 2 : a < 10 ? 1 : 0)).toString();
}

export function line(
  f: Frame,
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  style: { color: string; width?: number; dash?: number[]; alpha?: number },
): void {
  const { g } = f;
  g.save();
  g.beginPath();
  g.rect(f.left, f.top, f.width, f.height);
  g.clip();
  g.strokeStyle = style.color;
  g.globalAlpha = style.alpha ?? 1;
  g.lineWidth = style.width ?? 2;
  g.setLineDash(style.dash ?? []);
  g.beginPath();
  for (let i = 0; i < xs.length; i++) {
    const X = px(f, xs[i]!);
    const Y = py(f, ys[i]!);
    if (i === 0) g.moveTo(X, Y);
    else g.lineTo(X, Y);
  }
  g.stroke();
  g.restore();
}

/** The region between two curves. */
export function band(f: Frame, xs: ArrayLike<number>, lo: ArrayLike<number>, hi: ArrayLike<number>, color: string): void {
  const { g } = f;
  g.save();
  g.beginPath();
  g.rect(f.left, f.top, f.width, f.height);
  g.clip();
  g.fillStyle = color;
  g.beginPath();
  for (let i = 0; i < xs.length; i++) g.lineTo(px(f, xs[i]!), py(f, hi[i]!));
  for (let i = xs.length - 1; i >= 0; i--) g.lineTo(px(f, xs[i]!), py(f, lo[i]!));
  g.closePath();
  g.fill();
  g.restore();
}

export function points(f: Frame, xs: ArrayLike<number>, ys: ArrayLike<number>, color: string | ((i: number) => string), radius = 3): void {
  const { g } = f;
  for (let i = 0; i < xs.length; i++) {
    g.fillStyle = typeof color === 'string' ? color : color(i);
    g.strokeStyle = '#ffffff';
    g.lineWidth = 1;
    g.beginPath();
    g.arc(px(f, xs[i]!), py(f, ys[i]!), radius, 0, 2 * Math.PI);
    g.fill();
    g.stroke();
  }
}

/** A message centred on an otherwise empty canvas (for panels waiting on something); it is the canvas's paint. */
export function message(g: CanvasRenderingContext2D, text: string): void {
  paint(g, () => drawMessage(g, text));
}

function drawMessage(g: CanvasRenderingContext2D, text: string): void {
  clear(g);
  g.fillStyle = colors.muted;
  g.font = '13px system-ui, sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  const { width, height } = size(g);
  // Wrapped, so a long message still fits a phone-width canvas.
  const lines = wrapText(g, text, width - 24);
  lines.forEach((l, i) => g.fillText(l, width / 2, height / 2 + (i - (lines.length - 1) / 2) * 17));
}
