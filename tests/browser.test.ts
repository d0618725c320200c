// @vitest-environment node
// The demo page in real headless Chromium (Debian's, WebGPU on SwiftShader): it is built with
// Vite, served on loopback, and every panel must show real GPU results: the mask panel's mask is
// compared bit for bit with the CPU reference of the contract. Screenshots of each panel go to
// test-artifacts/browser/ (not committed).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_WEBGPU_MESSAGE, applyKeepMask, referenceKeepMask } from '../src/index.js';
import { ROOT, canvasInk, collectErrors, dataValue, setSlider, startHarness, type Harness } from './browser/harness.js';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'browser');
const PANELS = ['mask', 'ensemble', 'overfit', 'mc', 'speed'] as const;

let harness: Harness;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  harness = await startHarness();
}, 120_000);

afterAll(async () => {
  await harness?.close();
});

async function openPage(viewport: { width: number; height: number }, prepare?: (page: Page) => Promise<unknown>): Promise<{ page: Page; errors: string[] }> {
  const page = await harness.browser.newPage();
  await page.setViewportSize(viewport);
  const errors = collectErrors(page);
  if (prepare) await prepare(page);
  await page.goto(harness.url);
  return { page, errors };
}

function panelState(page: Page, name: string): Promise<string | undefined> {
  return page.locator(`#panel-${name}`).evaluate((el) => (el as HTMLElement).dataset.state);
}

/** Waits until the panel settles in `state` (failing fast with its status text on an error). */
async function settle(page: Page, name: string, state: string, timeout = 90_000): Promise<void> {
  await page.waitForFunction(
    ([panel, wanted]) => {
      const el = document.getElementById(`panel-${panel}`)!;
      return el.dataset.state === wanted || el.dataset.state === 'error';
    },
    [name, state] as const,
    { timeout, polling: 100 },
  );
  const actual = await panelState(page, name);
  if (actual !== state) throw new Error(`panel ${name}: ${actual}: ${await page.locator(`#${name}-status`).textContent()}`);
}

interface MaskView {
  mode: string;
  p: number;
  seed: bigint;
  stream: bigint;
  kept: string;
  values: number[];
}

async function maskView(page: Page): Promise<MaskView> {
  const d = await page.locator('#mask-canvas').evaluate((el) => ({ ...(el as HTMLElement).dataset }));
  return { mode: d.mode!, p: Number(d.p), seed: BigInt(d.seed!), stream: BigInt(d.stream!), kept: d.kept!, values: d.values!.split(',').map(Number) };
}

/** Sets p / seed / stream and waits for the panel to show the mask for exactly those. */
async function showMask(page: Page, p: number, seed: number, stream: number): Promise<MaskView> {
  await setSlider(page, 'mask-p', p);
  await setSlider(page, 'mask-seed', seed);
  await setSlider(page, 'mask-stream', stream);
  await page.waitForFunction(
    ([pp, s, t]) => {
      const panel = document.getElementById('panel-mask')!;
      const d = document.getElementById('mask-canvas')!.dataset;
      return panel.dataset.state === 'error' || (panel.dataset.state === 'ready' && Number(d.p) === pp && d.seed === String(s) && d.stream === String(t));
    },
    [p, seed, stream] as const,
    { timeout: 30_000, polling: 100 },
  );
  await settle(page, 'mask', 'ready');
  return maskView(page);
}

async function expectDrawn(page: Page, id: string): Promise<void> {
  const ink = await canvasInk(page, id);
  expect(ink.colours, `canvas #${id} colours`).toBeGreaterThan(8);
  expect(ink.covered, `canvas #${id} covered`).toBeGreaterThan(0.02);
}

describe('demo page in headless Chromium (WebGPU on SwiftShader)', () => {
  it('renders every panel from real GPU computation at 1280x800, with no console errors', async () => {
    const { page, errors } = await openPage({ width: 1280, height: 800 });
    await page.waitForFunction(() => document.body.dataset.webgpu !== undefined, undefined, { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.webgpu)).toBe('ready');
    await expect(page.locator('#adapter').textContent()).resolves.toMatch(/^Computing on: /);

    // 1. The mask: the page's GPU mask is the contract's mask, bit for bit; the statistics agree.
    await settle(page, 'mask', 'ready');
    for (const [p, seed, stream] of [
      [0.5, 42, 0],
      [0.2, 7, 3],
      [0.85, 999, 255],
    ] as const) {
      const view = await showMask(page, p, seed, stream);
      expect(view.mode).toBe('element');
      const keep = referenceKeepMask(256, p, { seed: BigInt(seed), stream: BigInt(stream) });
      expect(view.kept).toBe(Array.from(keep).join(''));
      const x = await page.evaluate(() => document.getElementById('mask-values')!.textContent!);
      expect(x).toMatch(/^x\[0\.\.7\] = /);
      // The layer's values: dropped exactly 0, kept scaled by 1/(1-p) (f32 product, as the reference).
      const kept = view.values.filter((v) => v !== 0).length;
      expect(kept).toBe(keep.reduce((a, b) => a + b, 0));
      const [layerFraction] = await dataValue(page, 'mask-kept-layer');
      expect(layerFraction).toBeCloseTo(kept / 256, 10);
      const [large] = await dataValue(page, 'mask-kept-large');
      const sigma = Math.sqrt((p * (1 - p)) / (1 << 20));
      expect(Math.abs(large! - (1 - p))).toBeLessThan(5 * sigma);
      expect((await dataValue(page, 'mask-expected'))[0]).toBeCloseTo(1 - p, 10);
      expect((await dataValue(page, 'mask-scale'))[0]).toBeCloseTo(1 / (1 - p), 10);
      const [meanX, meanY] = await dataValue(page, 'mask-means');
      expect(Math.abs(meanY! - meanX!)).toBeLessThan(6 * Math.sqrt(p / (1 - p) / 256) * meanX!);
    }
    // The scaled values themselves, against the CPU reference for the last setting.
    const last = await maskView(page);
    const input = await page.evaluate(() => {
      const out = new Float32Array(256);
      for (let i = 0; i < 256; i++) out[i] = Number((0.55 + 0.35 * Math.sin(i * 0.37) * Math.cos(i * 0.11)).toFixed(2));
      return Array.from(out);
    });
    const want = applyKeepMask(Float32Array.from(input), referenceKeepMask(256, last.p, { seed: last.seed, stream: last.stream }), last.p, 'f32');
    expect(Float32Array.from(last.values)).toEqual(want);
    await showMask(page, 0.5, 42, 0);
    await expectDrawn(page, 'mask-canvas');
    await page.locator('#panel-mask').screenshot({ path: join(ARTIFACTS, 'panel-1-mask.png') });

    // Spatial (2, 8, 4, 4) channels-first and drop-path (16, 16): 16 mask units of 16 elements
    // each, unit u decided by word u of the contract (its index in the mask shape).
    for (const mode of ['spatial', 'droppath'] as const) {
      await page.check(`#mask-mode-${mode}`);
      await page.waitForFunction((m) => document.getElementById('mask-canvas')!.dataset.mode === m, mode, { timeout: 30_000 });
      await settle(page, 'mask', 'ready');
      const view = await maskView(page);
      const units = referenceKeepMask(16, view.p, { seed: view.seed, stream: view.stream });
      expect(view.kept).toBe(Array.from({ length: 256 }, (_, i) => units[i >> 4]).join(''));
      const want = applyKeepMask(Float32Array.from(input), Uint8Array.from({ length: 256 }, (_, i) => units[i >> 4]!), view.p, 'f32');
      expect(Float32Array.from(view.values)).toEqual(want);
      expect((await dataValue(page, 'mask-kept-layer'))[0]).toBeCloseTo(units.reduce((a, b) => a + b, 0) / 16, 10);
      await expect(page.locator('#mask-shape').textContent()).resolves.toContain(mode === 'spatial' ? 'mask shape 2 × 8 × 1 × 1' : 'mask shape 16 × 1');
      await expectDrawn(page, 'mask-canvas');
      await page.locator('#panel-mask').screenshot({ path: join(ARTIFACTS, `panel-1-mask-${mode}.png`) });
    }
    await page.check('#mask-mode-element');

    // 2. Sub-networks: six GPU masks over 16 hidden units each, equal to the reference masks of
    // one call on stream 0, elements 16k..16k+15 for sub-network k; the full network next to the average of thinned ones.
    await settle(page, 'ensemble', 'ready', 120_000);
    const keptPerNet = await dataValue(page, 'ensemble-kept');
    const ensembleKeep = referenceKeepMask(6 * 16, 0.3, { seed: 7n, stream: 0n });
    expect(keptPerNet).toEqual(Array.from({ length: 6 }, (_, s) => ensembleKeep.subarray(s * 16, (s + 1) * 16).reduce((a, b) => a + b, 0)));
    const [gap] = await dataValue(page, 'ensemble-gap');
    expect(gap).toBeGreaterThan(0);
    expect(gap).toBeLessThan(0.5);
    await expectDrawn(page, 'ensemble-nets');
    await expectDrawn(page, 'ensemble-output');
    await page.locator('#panel-ensemble').screenshot({ path: join(ARTIFACTS, 'panel-2-ensemble.png') });

    // 4. MC-Dropout: the band is wider away from the data than inside it.
    await settle(page, 'mc', 'ready', 120_000);
    const [sigmaIn] = await dataValue(page, 'mc-sigma-in');
    const [sigmaOut] = await dataValue(page, 'mc-sigma-out');
    expect(sigmaIn).toBeGreaterThan(0);
    expect(sigmaOut).toBeGreaterThan(2 * sigmaIn!);
    await expectDrawn(page, 'mc-canvas');
    await setSlider(page, 'mc-samples', 8);
    await page.waitForFunction(() => document.getElementById('mc-canvas')!.dataset.samples === '8', undefined, { timeout: 30_000 });
    await settle(page, 'mc', 'ready');
    await page.locator('#panel-mc').screenshot({ path: join(ARTIFACTS, 'panel-4-mc.png') });

    // 3. Overfitting: both networks' training losses fall; without dropout the validation loss
    // ends above the training loss by more than with dropout.
    await settle(page, 'overfit', 'ready', 150_000);
    const history = JSON.parse((await page.locator('#overfit-loss').getAttribute('data-history'))!) as Record<'plain' | 'dropout', { train: number[]; val: number[] }>;
    const [epochs] = await dataValue(page, 'overfit-epoch');
    expect(epochs).toBeGreaterThanOrEqual(100);
    for (const run of [history.plain, history.dropout]) {
      expect(run.train).toHaveLength(epochs!);
      expect(run.val).toHaveLength(epochs!);
      expect(run.train.at(-1)!).toBeLessThan(0.5 * run.train[0]!);
      expect(Math.min(...run.val)).toBeLessThan(run.val[0]!);
    }
    const generalisationGap = (r: { train: number[]; val: number[] }) => r.val.at(-1)! - r.train.at(-1)!;
    expect(generalisationGap(history.plain)).toBeGreaterThan(generalisationGap(history.dropout));
    for (const id of ['overfit-loss', 'overfit-boundary-plain', 'overfit-boundary-dropout']) await expectDrawn(page, id);
    await page.locator('#panel-overfit').screenshot({ path: join(ARTIFACTS, 'panel-3-overfit.png') });

    // 5. Speed, on demand, at the smallest size (SwiftShader is a CPU).
    await page.selectOption('#speed-size', '65536');
    await page.click('#speed-run');
    await page.waitForFunction(() => document.getElementById('panel-speed')!.dataset.runs === '1' || document.getElementById('panel-speed')!.dataset.state === 'error', undefined, { timeout: 90_000 });
    await settle(page, 'speed', 'ready');
    const rows = await page.locator('#speed-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({ kernel: (tr as HTMLElement).dataset.kernel, gbps: Number((tr as HTMLElement).dataset.gbps) })));
    expect(rows.map((r) => r.kernel)).toEqual(['copy (floor)', 'dropout', 'dropout in place', 'dropout + packed mask', 'normal']);
    for (const r of rows) expect(r.gbps).toBeGreaterThan(0);
    await expectDrawn(page, 'speed-canvas');
    await page.locator('#panel-speed').screenshot({ path: join(ARTIFACTS, 'panel-5-speed.png') });

    await page.screenshot({ path: join(ARTIFACTS, 'page-1280x800.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('fits a narrow screen (390x844) without horizontal overflow, and every control has a label', async () => {
    const { page, errors } = await openPage({ width: 390, height: 844 });
    await settle(page, 'mask', 'ready');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>('input, select, button')]
        .filter((el) => (el instanceof HTMLButtonElement ? !el.textContent?.trim() : !el.labels?.length && !el.getAttribute('aria-label')))
        .map((el) => el.id || el.outerHTML),
    );
    expect(unlabelled).toEqual([]);
    // Panels are stacked in one column.
    const lefts = await page.evaluate((names) => names.map((n) => Math.round(document.getElementById(`panel-${n}`)!.getBoundingClientRect().left)), [...PANELS]);
    expect(new Set(lefts).size).toBe(1);
    await page.locator('#panel-mask').screenshot({ path: join(ARTIFACTS, 'narrow-panel-1-mask.png') });
    await page.screenshot({ path: join(ARTIFACTS, 'page-390x844.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('tells a visitor without WebGPU what is missing and how to enable it', async () => {
    const { page, errors } = await openPage({ width: 1280, height: 800 }, (p) =>
      p.addInitScript(() => {
        delete (Navigator.prototype as { gpu?: unknown }).gpu;
      }),
    );
    await page.waitForFunction(() => document.body.dataset.webgpu !== undefined, undefined, { timeout: 30_000 });
    expect(await page.evaluate(() => document.body.dataset.webgpu)).toBe('missing');
    await expect(page.locator('#no-webgpu').isVisible()).resolves.toBe(true);
    expect(await page.locator('#no-webgpu-message').textContent()).toBe(NO_WEBGPU_MESSAGE);
    expect(NO_WEBGPU_MESSAGE).toMatch(/enable-unsafe-webgpu/);
    for (const name of PANELS) expect(await panelState(page, name)).toBe('unavailable');
    await page.screenshot({ path: join(ARTIFACTS, 'page-no-webgpu.png') });
    expect(errors).toEqual([]);
    await page.close();
  });
});
