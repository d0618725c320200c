// Plain 2-D canvas drawing: axes with ticks, lines, bands and points in data coordinates.

export const colors = {
  ink: '#1d2330',
  muted: '#7a8394',
  grid: '#e6e9f0',
  kept: '#2f6fde',
  dropped: '#e4e7ee',
  plain: '#e0692b',
  dropout: '#2f6fde',
  classA: '#2f6fde',
  classB: '#e0692b',
  band: 'rgba(47, 111, 222, 0.18)',
} as const;

export interface Frame {
  g: CanvasRenderingContext2D;
  /** Plot area in canvas pixels. */
  left: number;
  top: number;
  width: number;
  height: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export function clear(g: CanvasRenderingContext2D): void {
  g.clearRect(0, 0, g.canvas.width, g.canvas.height);
}

export function px(f: Frame, x: number): number {
  return f.left + ((x - f.x0) / (f.x1 - f.x0)) * f.width;
}

export function py(f: Frame, y: number): number {
  return f.top + (1 - (y - f.y0) / (f.y1 - f.y0)) * f.height;
}

/** Clears the canvas and draws axes with a few ticks; returns the frame to plot into. */
export function axes(
  g: CanvasRenderingContext2D,
  range: { x0: number; x1: number; y0: number; y1: number },
  labels: { x?: string; y?: string; title?: string; yTicks?: boolean } = {},
): Frame {
  clear(g);
  const { width: W, height: H } = g.canvas;
  const yTicks = labels.yTicks ?? true;
  const left = yTicks ? 46 : 12;
  const f: Frame = { g, left, top: labels.title ? 24 : 10, width: W - left - 12, height: 0, ...range };
  f.height = H - f.top - 34;
  g.font = '11px system-ui, sans-serif';
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
  if (labels.title) {
    g.font = '600 12px system-ui, sans-serif';
    g.textAlign = 'left';
    g.textBaseline = 'top';
    g.fillText(labels.title, f.left, 5);
  }
  return f;
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

export function line(f: Frame, xs: ArrayLike<number>, ys: ArrayLike<number>, style: { color: string; width?: number; dash?: number[]; alpha?: number }): void {
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

/** A legend of coloured line samples in the frame's top-right corner. */
export function legend(f: Frame, entries: { label: string; color: string; dash?: number[]; fill?: boolean }[]): void {
  const { g } = f;
  g.save();
  g.font = '11px system-ui, sans-serif';
  const w = Math.max(...entries.map((e) => g.measureText(e.label).width)) + 34;
  const x = f.left + f.width - w - 6;
  let y = f.top + 6;
  g.fillStyle = 'rgba(255,255,255,0.85)';
  g.fillRect(x - 4, y - 2, w + 4, entries.length * 15 + 4);
  for (const e of entries) {
    g.strokeStyle = e.color;
    g.fillStyle = e.color;
    g.lineWidth = 2;
    g.setLineDash(e.dash ?? []);
    if (e.fill) g.fillRect(x, y + 3, 22, 8);
    else {
      g.beginPath();
      g.moveTo(x, y + 7);
      g.lineTo(x + 22, y + 7);
      g.stroke();
    }
    g.setLineDash([]);
    g.fillStyle = colors.ink;
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    g.fillText(e.label, x + 28, y + 7);
    y += 15;
  }
  g.restore();
}

/** A message centred on an otherwise empty canvas (for panels waiting on something). */
export function message(g: CanvasRenderingContext2D, text: string): void {
  clear(g);
  g.fillStyle = colors.muted;
  g.font = '13px system-ui, sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(text, g.canvas.width / 2, g.canvas.height / 2);
}
