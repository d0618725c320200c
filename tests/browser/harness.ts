// Browser-test plumbing: build the demo (and the f16 check page, at f16/) with Vite into a temp
// dir, serve it on loopback, and run Debian's Chromium (never a downloaded browser) through playwright-core with WebGPU on
// SwiftShader. Everything started here is stopped by `close()`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** `vite build` of the demo (vite.config.ts) into `outDir`, in a child process. */
export async function buildDemo(outDir: string): Promise<void> {
  const vite = join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
  const child = spawn(process.execPath, [vite, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const code = await new Promise<number | null>((done) => child.on('close', done));
  if (code !== 0) throw new Error(`vite build of the demo failed (exit ${code}):\n${output}`);
  if (!existsSync(join(outDir, 'index.html'))) throw new Error(`vite build wrote no index.html to ${outDir}`);
}

/** The f16 check page (tests/browser/f16-page, the library in the browser) built into `outDir`. */
export async function buildF16Page(outDir: string): Promise<void> {
  const vite = join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
  const root = join(ROOT, 'tests', 'browser', 'f16-page');
  const child = spawn(process.execPath, [vite, 'build', root, '--base', './', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const code = await new Promise<number | null>((done) => child.on('close', done));
  if (code !== 0) throw new Error(`vite build of the f16 page failed (exit ${code}):\n${output}`);
  if (!existsSync(join(outDir, 'index.html'))) throw new Error(`vite build wrote no index.html to ${outDir}`);
}

/** A static file server for `dir` on 127.0.0.1 and a free port. */
export async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const base = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ready);
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, server };
}

export interface Harness {
  url: string;
  browser: BrowserContext;
  close(): Promise<void>;
}

/** Builds the demo, serves it and starts Chromium with a fresh profile. */
export async function startHarness(): Promise<Harness> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run scripts/setup.sh (it installs Debian's chromium) or set CHROMIUM_PATH`);
  }
  const work = mkdtempSync(join(tmpdir(), 'webgpu-dropout-demo-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(work, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    await buildDemo(join(work, 'site'));
    await buildF16Page(join(work, 'site', 'f16'));
    const { url, server } = await serve(join(work, 'site'));
    cleanups.push(() => new Promise<void>((done) => server.close(() => done())));
    // Playwright's own headless switch is off: the new headless mode comes from the flag, which
    // Debian's Chromium needs for WebGPU.
    const browser = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: false,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
    });
    cleanups.push(() => browser.close());
    return { url, browser, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Console errors and uncaught exceptions of a page, collected from its start. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}

export interface Ink {
  /** Distinct RGBA colours in the canvas. */
  colours: number;
  /** Fraction of pixels that differ from the top-left pixel (the background). */
  covered: number;
}

/** How much a canvas has drawn on it. */
export function canvasInk(page: Page, id: string): Promise<Ink> {
  return page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId) as HTMLCanvasElement | null;
    if (!canvas) throw new Error(`no canvas #${canvasId}`);
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const words = new Uint32Array(data.buffer);
    const background = words[0];
    const colours = new Set<number>();
    let differ = 0;
    for (const w of words) {
      colours.add(w);
      if (w !== background) differ++;
    }
    return { colours: colours.size, covered: differ / words.length };
  }, id);
}

/** Sets a range input and fires its input event, as a user dragging it would. */
export function setSlider(page: Page, id: string, value: number): Promise<void> {
  return page.evaluate(
    ([sliderId, v]) => {
      const input = document.getElementById(sliderId as string) as HTMLInputElement;
      input.value = String(v);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    [id, value] as const,
  );
}

export function dataValue(page: Page, id: string): Promise<number[]> {
  return page.locator(`#${id}`).evaluate((el) => (el as HTMLElement).dataset.value?.split(',').map(Number) ?? []);
}

/** A showValue read-out: its visible text and the raw numbers kept in its data-value. */
export function shownValue(page: Page, id: string): Promise<{ text: string; value: number[] }> {
  return page.locator(`#${id}`).evaluate((el) => ({
    text: el.textContent ?? '',
    value: (el as HTMLElement).dataset.value?.split(',').map(Number) ?? [],
  }));
}

export interface CellPaint {
  /** The cell size and each cell's top-left corner, in CSS px (the canvas's data-cells). */
  size: number;
  at: [number, number][];
  /** Per cell, its four corner samples. */
  colours: number[][][];
}

/**
 * The colours painted in each cell of a canvas whose data-cells (JSON `{ size, at: [x, y][] }`,
 * CSS px) says where cell i is drawn: one RGBA sample [r, g, b, a] near each of the cell's four
 * corners (a fifth of the cell in from each side, clear of a centred label or cross), read from the
 * bitmap through the drawing's transform (the bitmap is the display size times devicePixelRatio).
 */
export function cellColours(page: Page, id: string): Promise<CellPaint> {
  return page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId) as HTMLCanvasElement | null;
    if (!canvas?.dataset.cells) throw new Error(`no canvas #${canvasId} with data-cells`);
    const { size, at } = JSON.parse(canvas.dataset.cells) as { size: number; at: [number, number][] };
    const g = canvas.getContext('2d')!;
    const m = g.getTransform();
    const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
    const sample = (x: number, y: number) => {
      const bx = Math.floor(m.a * x + m.c * y + m.e);
      const by = Math.floor(m.b * x + m.d * y + m.f);
      if (bx < 0 || by < 0 || bx >= canvas.width || by >= canvas.height) return [-1, -1, -1, -1];
      const o = 4 * (by * canvas.width + bx);
      return [data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!];
    };
    const inset = 0.2 * size;
    const colours = at.map(([x, y]) =>
      [
        [x + inset, y + inset],
        [x + size - inset, y + inset],
        [x + inset, y + size - inset],
        [x + size - inset, y + size - inset],
      ].map(([sx, sy]) => sample(sx!, sy!)),
    );
    return { size, at, colours };
  }, id);
}

/**
 * Lets a test lose the page's GPU device, as a driver reset would, without changing the page: the
 * device from adapter.requestDevice gets its own `lost` promise, resolved by `loseDevice` with
 * `{ reason: 'unknown', message: 'simulated' }`, and the real device is destroyed right after, so
 * later GPU work fails as it does on a real loss. Call before the page loads.
 */
export async function installDeviceLossSwitch(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...args: Parameters<GPUAdapter['requestDevice']>) {
      const device = await requestDevice.apply(this, args);
      let resolve!: (info: GPUDeviceLostInfo) => void;
      const lost = new Promise<GPUDeviceLostInfo>((r) => (resolve = r));
      Object.defineProperty(device, 'lost', { value: lost, configurable: true });
      (window as unknown as { __loseDevice: () => void }).__loseDevice = () => {
        resolve({ reason: 'unknown', message: 'simulated' } as GPUDeviceLostInfo);
        device.destroy();
      };
      return device;
    };
  });
}

/** Loses the device (see installDeviceLossSwitch). */
export function loseDevice(page: Page): Promise<void> {
  return page.evaluate(() => {
    const lose = (window as unknown as { __loseDevice?: () => void }).__loseDevice;
    if (!lose) throw new Error('the page has requested no device yet (or installDeviceLossSwitch was not called)');
    lose();
  });
}
