// The demo's small datasets, generated on the CPU from a fixed seed (they are inputs, not results;
// every number the panels show about them is computed on the GPU).

/** mulberry32: a small deterministic stream of u32 words (the demo's data and the tests' inputs). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform numbers in [0, 1) from mulberry32, for the data only. */
export function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

function gaussian(next: () => number): number {
  const u = 1 - next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

export interface Points2D {
  /** Row-major n x 2. */
  x: Float32Array;
  labels: Uint8Array;
}

/** Two interleaved half-moons with Gaussian noise, classes 0 and 1, scaled to about [-1.5, 1.5]. */
export function moons(n: number, noise: number, seed: number): Points2D {
  const next = rng(seed);
  const x = new Float32Array(n * 2);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const t = Math.PI * next();
    const px = c === 0 ? Math.cos(t) : 1 - Math.cos(t);
    const py = c === 0 ? Math.sin(t) : 0.5 - Math.sin(t);
    x[2 * i] = (px - 0.5) * 1.2 + noise * gaussian(next);
    x[2 * i + 1] = (py - 0.25) * 1.2 + noise * gaussian(next);
    labels[i] = c;
  }
  return { x, labels };
}

export interface Points1D {
  x: Float32Array;
  y: Float32Array;
}

/** y = f(x) + noise for x drawn uniformly from the given intervals. */
export function regression(
  n: number,
  intervals: readonly [number, number][],
  f: (x: number) => number,
  noise: number,
  seed: number,
): Points1D {
  const next = rng(seed);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const [a, b] = intervals[i % intervals.length]!;
    x[i] = a + (b - a) * next();
    y[i] = f(x[i]!) + noise * gaussian(next);
  }
  return { x, y };
}

export function linspace(a: number, b: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
}

/** The toggle panel's layer: 12 neurons' activations (inputs to dropout, all positive). */
export const TOGGLE_NEURONS = 12;
/** The next layer's width (ReLU units) after the dropped layer. */
export const TOGGLE_NEXT = 6;
/**
 * The toggle panel's network: sizes [12, 6, 7]. Layer 1 is the next layer (weights from a fixed
 * seed); layer 2 copies the 6 ReLU activations out unchanged (an identity block, so the GPU
 * returns them) and adds the output neuron as a 7th column: out = w . relu(z) + b.
 */
export function toggleNetwork(): { sizes: number[]; parameters: Float32Array; activations: Float32Array } {
  const next = rng(2024);
  const activations = Float32Array.from({ length: TOGGLE_NEURONS }, (_, i) =>
    Number((0.35 + 0.6 * Math.abs(Math.sin(1.7 * i + 0.4))).toFixed(2)),
  );
  const n = TOGGLE_NEURONS;
  const m = TOGGLE_NEXT;
  const w1 = Float32Array.from({ length: n * m }, () => Number(((next() - 0.35) * 0.9).toFixed(2)));
  const b1 = Float32Array.from({ length: m }, () => Number(((next() - 0.5) * 0.4).toFixed(2)));
  const w2 = new Float32Array(m * (m + 1));
  for (let j = 0; j < m; j++) {
    w2[j * (m + 1) + j] = 1;
    w2[j * (m + 1) + m] = Number(((next() - 0.3) * 1.2).toFixed(2));
  }
  const b2 = new Float32Array(m + 1);
  b2[m] = 0.1;
  const parameters = new Float32Array(w1.length + b1.length + w2.length + b2.length);
  parameters.set(w1, 0);
  parameters.set(b1, w1.length);
  parameters.set(w2, w1.length + b1.length);
  parameters.set(b2, w1.length + b1.length + w2.length);
  return { sizes: [n, m, m + 1], parameters, activations };
}

/**
 * An image-like feature map, channels first (1, channels, side, side): each channel is a smooth
 * pattern (a blob, stripes, a ramp, rings), so neighbouring pixels carry nearly the same value,
 * as a convolution's outputs do. All values positive.
 */
export function featureMap(channels: number, side: number): Float32Array {
  const out = new Float32Array(channels * side * side);
  for (let c = 0; c < channels; c++) {
    for (let r = 0; r < side; r++) {
      for (let k = 0; k < side; k++) {
        const u = (k + 0.5) / side - 0.5;
        const v = (r + 0.5) / side - 0.5;
        const pattern = [
          Math.exp(-((u + 0.1) ** 2 + (v - 0.1) ** 2) * 9),
          0.5 + 0.5 * Math.cos(6 * (u + 0.6 * v)),
          0.5 + u - 0.6 * v,
          0.5 + 0.5 * Math.cos(14 * Math.hypot(u, v)),
        ][c % 4]!;
        out[(c * side + r) * side + k] = Number((0.15 + 0.85 * Math.min(1, Math.max(0, pattern))).toFixed(2));
      }
    }
  }
  return out;
}
