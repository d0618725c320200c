// The demo's small datasets, generated on the CPU from a fixed seed (they are inputs, not results;
// every number the panels show about them is computed on the GPU).

/** A small deterministic PRNG (mulberry32) for the data only. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
export function regression(n: number, intervals: readonly [number, number][], f: (x: number) => number, noise: number, seed: number): Points1D {
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
