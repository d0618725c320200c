// @vitest-environment node
// The demo page in real headless Chromium (Debian's, WebGPU on SwiftShader): it is built with
// Vite, served on loopback, and every panel must show real GPU results: the mask panel's mask is
// compared bit for bit with the CPU reference of the contract. Screenshots of each panel go to
// test-artifacts/browser/ (not committed).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featureMap, TOGGLE_NEURONS, toggleNetwork } from '../demo/data.js';
import { colors } from '../demo/plot.js';
import { NO_WEBGPU_MESSAGE } from '../src/device.js';
import { applyKeepMask, referenceKeepMask, referenceMlpForward } from '../src/reference.js';
import {
  canvasInk,
  cellColours,
  collectErrors,
  dataValue,
  type Harness,
  installDeviceLossSwitch,
  loseDevice,
  ROOT,
  setSlider,
  shownValue,
  startHarness,
} from './browser/harness.js';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'browser');
const PANELS = ['toggle', 'mask', 'ensemble', 'overfit', 'mc', 'speed'] as const;

let harness: Harness;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  harness = await startHarness();
}, 120_000);

afterAll(async () => {
  await harness?.close();
});

async function openPage(
  viewport: { width: number; height: number },
  prepare?: (page: Page) => Promise<unknown>,
  hash = '',
): Promise<{ page: Page; errors: string[] }> {
  const page = await harness.browser.newPage();
  await page.setViewportSize(viewport);
  const errors = collectErrors(page);
  if (prepare) await prepare(page);
  await page.goto(harness.url + hash);
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

async function maskView(page: Page, canvas = 'mask-canvas'): Promise<MaskView> {
  const d = await page.locator(`#${canvas}`).evaluate((el) => ({ ...(el as HTMLElement).dataset }));
  return {
    mode: d.mode!,
    p: Number(d.p),
    seed: BigInt(d.seed!),
    stream: BigInt(d.stream!),
    kept: d.kept!,
    values: d.values!.split(',').map(Number),
  };
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
      return (
        panel.dataset.state === 'error' ||
        (panel.dataset.state === 'ready' && Number(d.p) === pp && d.seed === String(s) && d.stream === String(t))
      );
    },
    [p, seed, stream] as const,
    { timeout: 30_000, polling: 100 },
  );
  await settle(page, 'mask', 'ready');
  return maskView(page);
}

/**
 * A read-out's visible text, which must match `pattern`: the numbers it captures (as printed) and
 * the element's data-value, so a test can check that the text shows the value it keeps.
 */
async function readOut(page: Page, id: string, pattern: RegExp): Promise<{ shown: string[]; value: number[] }> {
  const { text, value } = await shownValue(page, id);
  const match = pattern.exec(text);
  expect(match, `#${id} shows ${JSON.stringify(text)}, expected ${pattern}`).not.toBeNull();
  return { shown: match!.slice(1), value };
}

/** The mask panel's statistics: each text shows its data-value as formatted (toFixed) in the page. */
async function expectMaskReadOuts(page: Page, view: MaskView, units: number): Promise<void> {
  const { p } = view;
  const layer = await readOut(page, 'mask-kept-layer', /^(\d+) of (\d+) \S+ = (\d+\.\d{3}) \(±(\d+\.\d{3}) is 1σ\)$/);
  const [fraction] = layer.value;
  expect(layer.shown, '#mask-kept-layer text vs data-value').toEqual([
    String(Math.round(fraction! * units)),
    String(units),
    fraction!.toFixed(3),
    Math.sqrt((p * (1 - p)) / units).toFixed(3),
  ]);
  const large = await readOut(page, 'mask-kept-large', /^(\d+\.\d{5}) \(±(\d+\.\d{5}) is 1σ\)$/);
  expect(large.shown, '#mask-kept-large text vs data-value').toEqual([
    large.value[0]!.toFixed(5),
    Math.sqrt((p * (1 - p)) / (1 << 20)).toFixed(5),
  ]);
  const expected = await readOut(page, 'mask-expected', /^(\d+\.\d{2})$/);
  expect(expected.shown, '#mask-expected text vs data-value').toEqual([expected.value[0]!.toFixed(2)]);
  const scale = await readOut(page, 'mask-scale', /^× (\d+\.\d{3})$/);
  expect(scale.shown, '#mask-scale text vs data-value').toEqual([scale.value[0]!.toFixed(3)]);
  const means = await readOut(page, 'mask-means', /^(\d+\.\d{3}) → (\d+\.\d{3})$/);
  expect(means.value).toHaveLength(2);
  expect(means.shown, '#mask-means text vs data-value').toEqual(means.value.map((v) => v.toFixed(3)));
}

const DROPPED_RGB = [1, 3, 5].map((i) => parseInt(colors.dropped.slice(i, i + 2), 16));

/**
 * A cell as painted, from samples near its corners: '0' dropped (colors.dropped all over), '1'
 * kept (one opaque value colour all over: the white-to-blue ramp, so bluer than the dropped grey),
 * '?' anything else.
 */
function paintedAs(samples: number[][]): '0' | '1' | '?' {
  const [first] = samples;
  if (first?.[3] !== 255 || !samples.every((s) => s.every((c, k) => Math.abs(c - first[k]!) <= 1))) return '?';
  const [r, , b] = first as [number, number, number];
  if (first.slice(0, 3).every((c, k) => Math.abs(c - DROPPED_RGB[k]!) <= 2)) return '0';
  return b - r >= 15 ? '1' : '?';
}

/**
 * Where value i belongs on the mask canvas, in cells from the top-left: row-major in a 16 x 16
 * grid; with the structured masks the 16 tiles (one per mask unit) row-major in 4 columns, each
 * a 4 x 4 block of its 16 values, row-major.
 */
function gridPlace(mode: string, i: number): { col: number; row: number } {
  if (mode !== 'spatial') return { col: i % 16, row: i >> 4 };
  // The feature map: 4 channels of 8 x 8 as 2 x 2 tiles.
  const [t, k] = [i >> 6, i & 63];
  return { col: (t % 2) * 8 + (k % 8), row: (t >> 1) * 8 + (k >> 3) };
}

/** The canvas's cell positions (data-cells) lay the values out as `gridPlace` says, without overlap. */
function expectGridLayout(mode: string, size: number, at: [number, number][]): void {
  expect(size, 'cell size').toBeGreaterThanOrEqual(10);
  for (const axis of [0, 1] as const) {
    const line = new Map<number, number>();
    at.forEach((xy, i) => {
      const place = gridPlace(mode, i);
      const n = axis === 0 ? place.col : place.row;
      const seen = line.get(n);
      if (seen === undefined) line.set(n, xy[axis]);
      else
        expect(
          xy[axis],
          `${mode} cell ${i}: ${axis === 0 ? 'x' : 'y'} unlike the rest of its ${axis === 0 ? 'column' : 'row'}`,
        ).toBeCloseTo(seen, 6);
    });
    for (let n = 1; n < 16; n++) {
      expect(
        line.get(n)! - line.get(n - 1)!,
        `${mode}: ${axis === 0 ? 'column' : 'row'} ${n} must start at least a cell after ${axis === 0 ? 'column' : 'row'} ${n - 1}`,
      ).toBeGreaterThanOrEqual(size - 1e-9);
    }
  }
}

/**
 * What the mask canvas PAINTS agrees with its data-kept: every cell, laid out in reading order,
 * dropped or kept as the GPU output says, and kept cells darker the larger their value.
 */
async function expectPaintedMask(page: Page, view: MaskView, canvas = 'mask-canvas'): Promise<void> {
  const { size, at, colours: cells } = await cellColours(page, canvas);
  expect(cells).toHaveLength(256);
  expectGridLayout(view.mode, size, at);
  const painted = cells.map(paintedAs);
  const wrong = painted.flatMap((c, i) =>
    c === view.kept[i]
      ? []
      : [
          `cell ${i}: painted ${{ '0': 'dropped', '1': 'kept', '?': 'neither' }[c]} (rgba ${cells[i]![0]!.join(',')}), data-kept ${view.kept[i]}`,
        ],
  );
  expect(
    wrong.slice(0, 8),
    `${view.mode} mask (p ${view.p}, seed ${view.seed}, stream ${view.stream}): ${wrong.length} cells painted unlike data-kept`,
  ).toEqual([]);
  const kept = painted
    .flatMap((c, i) => (c === '1' ? [{ i, value: view.values[i]!, red: cells[i]![0]![0]! }] : []))
    .sort((a, b) => a.value - b.value);
  for (let k = 1; k < kept.length; k++) {
    expect(
      kept[k]!.red,
      `cell ${kept[k]!.i} (${kept[k]!.value}) is painted lighter than cell ${kept[k - 1]!.i} (${kept[k - 1]!.value})`,
    ).toBeLessThanOrEqual(kept[k - 1]!.red);
  }
}

async function expectDrawn(page: Page, id: string): Promise<void> {
  const ink = await canvasInk(page, id);
  expect(ink.colours, `canvas #${id} colours`).toBeGreaterThan(8);
  expect(ink.covered, `canvas #${id} covered`).toBeGreaterThan(0.02);
}

/** The panels' controls that are not disabled, by id. */
function enabledControls(page: Page): Promise<string[]> {
  return page.evaluate(
    (names) =>
      names.flatMap((n) =>
        [...document.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLSelectElement>(`#panel-${n} :is(input, button, select)`)]
          .filter((el) => !el.disabled)
          .map((el) => `#${el.id}`),
      ),
    [...PANELS],
  );
}

/**
 * From the moment body[data-webgpu] is 'lost', records every panel whose data-state becomes other
 * than 'unavailable' and every control that is enabled again (read by `changesAfterLoss`).
 */
function watchAfterLoss(page: Page): Promise<void> {
  return page.evaluate(() => {
    const log: string[] = [];
    (window as unknown as { __afterLoss: string[] }).__afterLoss = log;
    new MutationObserver((records) => {
      if (document.body.dataset.webgpu !== 'lost') return;
      for (const r of records) {
        const el = r.target as HTMLElement & { disabled?: boolean };
        if (r.attributeName === 'disabled' && el.disabled === false) log.push(`#${el.id} enabled again`);
        if (r.attributeName === 'data-state' && el.dataset.state !== 'unavailable') log.push(`#${el.id} data-state ${el.dataset.state}`);
      }
    }).observe(document.querySelector('main')!, { subtree: true, attributes: true, attributeFilter: ['disabled', 'data-state'] });
  });
}

function changesAfterLoss(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __afterLoss: string[] }).__afterLoss);
}

/** The page after a device loss: the banner says so, every panel is unavailable and every control disabled. */
async function expectLostPage(page: Page, when: string): Promise<void> {
  expect(await page.evaluate(() => document.body.dataset.webgpu), when).toBe('lost');
  await expect(page.locator('#no-webgpu').isVisible(), when).resolves.toBe(true);
  expect(await page.locator('#no-webgpu h2').textContent(), when).toBe('The GPU device was lost');
  expect(await page.locator('#no-webgpu-detail').textContent(), when).toBe('Technical detail: unknown: simulated');
  await expect(page.locator('#adapter').textContent(), when).resolves.toMatch(/^Was computing on: .*\(the device was lost\)\.$/);
  for (const name of PANELS) {
    expect(await panelState(page, name), `${when}: panel ${name}`).toBe('unavailable');
    expect(await page.locator(`#${name}-status`).textContent(), `${when}: panel ${name}`).toBe(
      'The GPU device was lost: reload the page to compute again.',
    );
  }
  expect(await enabledControls(page), `${when}: controls still enabled`).toEqual([]);
}

/**
 * Loses the device (simulated, see installDeviceLossSwitch) once `ready` has brought the page to
 * the moment wanted, then checks that the page says so and stays so: work that was in flight
 * finishes without re-enabling anything, and a slider moved afterwards (by script: it is disabled)
 * starts nothing.
 */
async function expectDeviceLossHandled(ready: (page: Page) => Promise<void>): Promise<void> {
  const { page, errors } = await openPage({ width: 1280, height: 800 }, installDeviceLossSwitch);
  await ready(page);
  expect(await enabledControls(page), 'some controls are enabled before the loss').not.toEqual([]);
  await watchAfterLoss(page);
  await loseDevice(page);
  await page.waitForFunction(() => document.body.dataset.webgpu === 'lost', undefined, { timeout: 10_000 });
  await expectLostPage(page, 'right after the loss');
  await setSlider(page, 'mask-p', 0.3);
  await setSlider(page, 'mc-samples', 10);
  await setSlider(page, 'ensemble-p', 0.5);
  // Time for the work in flight at the loss, and for what the sliders asked, to fail and unwind
  // (a rejection, a busy status's delay of 0.4 s).
  await page.waitForTimeout(1500);
  await expectLostPage(page, 'after the work in flight ended');
  expect(await changesAfterLoss(page), 'changes after the loss').toEqual([]);
  expect(errors).toEqual([]);
  await page.screenshot({ path: join(ARTIFACTS, 'page-device-lost.png') });
  await page.close();
}

interface ToggleView {
  p: number;
  kind: string;
  stream: bigint;
  drawn: string;
  keep: string;
  flips: string;
  values: number[];
  next: number[];
  test: number[];
}

async function toggleView(page: Page): Promise<ToggleView> {
  const d = await page.locator('#toggle-layer').evaluate((el) => ({ ...(el as HTMLElement).dataset }));
  const nums = (v?: string) => v!.split(',').map(Number);
  return {
    p: Number(d.p),
    kind: d.kind!,
    stream: BigInt(d.stream!),
    drawn: d.drawn!,
    keep: d.keep!,
    flips: d.flips!,
    values: nums(d.values),
    next: nums(d.next),
    test: nums(d.test),
  };
}

/**
 * The toggle panel against the CPU reference: the drawn mask is the contract's for (seed 11,
 * stream = step), the kept mask is it with `flips` flipped, the layer is applyKeepMask of the
 * layer's input (bit for bit), and the next layer and output are referenceMlpForward of it.
 */
async function expectToggle(page: Page, step: number, flips: number[]): Promise<ToggleView> {
  const view = await toggleView(page);
  expect(view.stream).toBe(BigInt(step));
  expect(view.flips).toBe(flips.join(','));
  const drawn = referenceKeepMask(TOGGLE_NEURONS, view.p, { seed: 11n, stream: BigInt(step) });
  expect(view.drawn).toBe(Array.from(drawn).join(''));
  const keep = drawn.map((v, i) => (flips.includes(i) ? 1 - v : v));
  expect(view.keep).toBe(Array.from(keep).join(''));
  const net = toggleNetwork();
  const input = view.kind === 'classic' ? Float32Array.from(net.activations, (v) => v * (1 - view.p)) : net.activations;
  const layer = applyKeepMask(input, keep, view.p, 'f32');
  expect(Float32Array.from(view.values)).toEqual(layer);
  const next = referenceMlpForward({ sizes: net.sizes, parameters: net.parameters }, layer, 1);
  const test = referenceMlpForward({ sizes: net.sizes, parameters: net.parameters }, input, 1);
  view.next.forEach((v, j) => expect(v, `next[${j}]`).toBeCloseTo(next[j]!, 4));
  view.test.forEach((v, j) => expect(v, `test[${j}]`).toBeCloseTo(test[j]!, 4));
  const [out, outTest] = await dataValue(page, 'toggle-output');
  expect([out, outTest]).toEqual([view.next.at(-1), view.test.at(-1)]);
  return view;
}

/**
 * On the fixed axis, each kept neuron's blue bar is drawn 1/(1-p) times as tall as its grey input
 * bar (or capped at the axis top): checked on the painted pixels, a few px inside and outside the
 * bar's top edge.
 */
async function expectToggleBars(page: Page, p: number): Promise<void> {
  const painted = await page.locator('#toggle-layer').evaluate(
    (el, blue) => {
      const canvas = el as HTMLCanvasElement;
      const { base, unit, bars } = JSON.parse(canvas.dataset.bars!) as {
        base: number;
        unit: number;
        bars: { input: [number, number]; output: [number, number] }[];
      };
      const g = canvas.getContext('2d')!;
      const m = g.getTransform();
      const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
      const isBlue = (x: number, y: number) => {
        const o = 4 * (Math.floor(m.d * y + m.f) * canvas.width + Math.floor(m.a * x + m.e));
        return [data[o], data[o + 1], data[o + 2]].every((c, k) => Math.abs(c! - blue[k]!) <= 3);
      };
      return {
        base,
        unit,
        bars: bars.map((b) => ({
          ...b,
          inside: isBlue(b.output[0], base - b.output[1] + 3),
          above: isBlue(b.output[0], base - b.output[1] - 3),
        })),
      };
    },
    [1, 3, 5].map((i) => parseInt(colors.kept.slice(i, i + 2), 16)),
  );
  const keep = (await toggleView(page)).keep;
  let checked = 0;
  painted.bars.forEach((b, i) => {
    if (keep[i] !== '1') {
      expect(b.output[1], `dropped neuron ${i} has no bar`).toBe(0);
      return;
    }
    const want = Math.min(b.input[1] / (1 - p), 4 * painted.unit);
    expect(b.output[1] / want, `neuron ${i}: bar height vs input bar x 1/(1-p) at p ${p}`).toBeCloseTo(1, 2);
    expect(b.inside, `neuron ${i}: painted inside its bar`).toBe(true);
    if (b.output[1] < 4 * painted.unit - 4) expect(b.above, `neuron ${i}: painted above its bar`).toBe(false);
    checked++;
  });
  expect(checked).toBeGreaterThan(0);
}

describe('demo page in headless Chromium (WebGPU on SwiftShader)', () => {
  it('renders every panel from real GPU computation at 1280x800, with no console errors', async () => {
    const { page, errors } = await openPage({ width: 1280, height: 800 });
    await page.waitForFunction(() => document.body.dataset.webgpu !== undefined, undefined, { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.webgpu)).toBe('ready');
    await expect(page.locator('#adapter').textContent()).resolves.toMatch(/^Computing on: /);

    // 1. Drop neurons by hand: the drawn mask is the contract's, a click flips one neuron, and the
    // layer and the next layer are what the CPU reference computes from the edited mask.
    await settle(page, 'toggle', 'ready');
    await expectToggle(page, 0, []);
    const before = await toggleView(page);
    await page.click('#toggle-neurons button[data-neuron="3"]');
    await page.waitForFunction(
      () =>
        document.getElementById('toggle-layer')!.dataset.flips === '3' &&
        document.getElementById('panel-toggle')!.dataset.state === 'ready',
      undefined,
      { timeout: 30_000 },
    );
    const clicked = await expectToggle(page, 0, [3]);
    expect(clicked.values[3], 'neuron 3 flipped').not.toBe(before.values[3]);
    expect(clicked.next, 'the next layer reacts to the click').not.toEqual(before.next);
    expect(await page.getAttribute('#toggle-neurons button[data-neuron="3"]', 'aria-pressed')).toBe(
      clicked.keep[3] === '1' ? 'true' : 'false',
    );
    // The next training step: stream 1's mask, the flip forgotten.
    await page.click('#toggle-step');
    await page.waitForFunction(
      () =>
        document.getElementById('toggle-layer')!.dataset.stream === '1' &&
        document.getElementById('panel-toggle')!.dataset.state === 'ready',
      undefined,
      { timeout: 30_000 },
    );
    await expectToggle(page, 1, []);
    // Scaling on the fixed axis: a kept neuron's drawn bar is 1/(1-p) times its input's, in pixels.
    for (const p of [0.5, 0.2, 0.75]) {
      await setSlider(page, 'toggle-p', p);
      await page.waitForFunction(
        (pp) =>
          Number(document.getElementById('toggle-layer')!.dataset.p) === pp &&
          document.getElementById('panel-toggle')!.dataset.state === 'ready',
        p,
        { timeout: 30_000 },
      );
      await expectToggle(page, 1, []);
      await expectToggleBars(page, p);
    }
    // Classic dropout: kept neurons pass unchanged (computed as (x(1-p)) * keep / (1-p)).
    await page.check('#toggle-kind-classic');
    await page.waitForFunction(
      () =>
        document.getElementById('toggle-layer')!.dataset.kind === 'classic' &&
        document.getElementById('panel-toggle')!.dataset.state === 'ready',
      undefined,
      { timeout: 30_000 },
    );
    const classic = await expectToggle(page, 1, []);
    const h = toggleNetwork().activations;
    classic.values.forEach((v, i) => expect(v).toBeCloseTo(classic.keep[i] === '1' ? h[i]! : 0, 5));
    await page.locator('#panel-toggle').screenshot({ path: join(ARTIFACTS, 'panel-1-toggle.png') });

    // 2. The mask: the page's GPU mask is the contract's mask, bit for bit; the statistics agree.
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
      await expectMaskReadOuts(page, view, 256);
      // Both kinds of cell are on the canvas, painted as data-kept says.
      expect(view.kept).toMatch(/0.*1|1.*0/);
      await expectPaintedMask(page, view);
    }
    const draws = await shownValue(page, 'mask-draws-count');
    expect(draws.text.replaceAll(',', ''), '#mask-draws-count text vs data-value').toBe(String(draws.value[0]));
    // The scaled values themselves, against the CPU reference for the last setting.
    const last = await maskView(page);
    const input = await page.evaluate(() => {
      const out = new Float32Array(256);
      for (let i = 0; i < 256; i++) out[i] = Number((0.55 + 0.35 * Math.sin(i * 0.37) * Math.cos(i * 0.11)).toFixed(2));
      return Array.from(out);
    });
    const want = applyKeepMask(
      Float32Array.from(input),
      referenceKeepMask(256, last.p, { seed: last.seed, stream: last.stream }),
      last.p,
      'f32',
    );
    expect(Float32Array.from(last.values)).toEqual(want);
    await showMask(page, 0.5, 42, 0);
    await expectDrawn(page, 'mask-canvas');
    await page.locator('#panel-mask').screenshot({ path: join(ARTIFACTS, 'panel-2-mask.png') });

    // Spatial: a (1, 4, 8, 8) feature map, channels first: channel c decided by word c of the
    // contract, next to element-wise dropout of the same map (word i for pixel i). Drop-path
    // (16, 16): sample r decided by word r.
    const map = featureMap(4, 8);
    for (const mode of ['spatial', 'droppath'] as const) {
      await page.check(`#mask-mode-${mode}`);
      await page.waitForFunction((m) => document.getElementById('panel-mask')!.dataset.mode === m, mode, { timeout: 30_000 });
      await settle(page, 'mask', 'ready');
      const canvas = mode === 'spatial' ? 'mask-spatial' : 'mask-canvas';
      expect(await page.locator(`#${canvas}`).isVisible(), `${canvas} shown in ${mode} mode`).toBe(true);
      const view = await maskView(page, canvas);
      const unitSize = mode === 'spatial' ? 64 : 16;
      const units = referenceKeepMask(256 / unitSize, view.p, { seed: view.seed, stream: view.stream });
      // Whole channels (samples): every element of a unit shares its decision.
      expect(view.kept).toBe(Array.from({ length: 256 }, (_, i) => units[Math.floor(i / unitSize)]).join(''));
      const source = mode === 'spatial' ? map : Float32Array.from(input);
      const want = applyKeepMask(
        source,
        Uint8Array.from({ length: 256 }, (_, i) => units[Math.floor(i / unitSize)]!),
        view.p,
        'f32',
      );
      expect(Float32Array.from(view.values)).toEqual(want);
      expect((await dataValue(page, 'mask-kept-layer'))[0]).toBeCloseTo(units.reduce((a, b) => a + b, 0) / units.length, 10);
      await expect(page.locator('#mask-shape').textContent()).resolves.toContain(
        mode === 'spatial' ? 'mask shape 1 × 4 × 1 × 1' : 'mask shape 16 × 1',
      );
      await expectMaskReadOuts(page, view, units.length);
      expect(view.kept).toMatch(/0.*1|1.*0/);
      await expectPaintedMask(page, view, canvas);
      await expectDrawn(page, canvas);
      if (mode === 'spatial') {
        // The element-wise map beside it: single pixels, the contract's words 0..255.
        const pixels = await page.locator('#mask-spatial').evaluate((el) => ({
          kept: (el as HTMLElement).dataset.pixelKept!,
          values: (el as HTMLElement).dataset.pixelValues!.split(',').map(Number),
        }));
        const keep = referenceKeepMask(256, view.p, { seed: view.seed, stream: view.stream });
        expect(pixels.kept).toBe(Array.from(keep).join(''));
        expect(Float32Array.from(pixels.values)).toEqual(applyKeepMask(map, keep, view.p, 'f32'));
        // Most dropped pixels still have a kept neighbour in their channel; a dropped channel has none.
        const [pixelShare, pixelError, channelShare] = await dataValue(page, 'mask-recover');
        expect(pixelShare).toBeGreaterThan(0.5);
        expect(pixelError).toBeLessThan(0.3);
        expect(channelShare).toBe(0);
      }
      await page.locator('#panel-mask').screenshot({ path: join(ARTIFACTS, `panel-2-mask-${mode}.png`) });
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
    const ensembleP = Number(await page.inputValue('#ensemble-p'));
    const keptOut = await readOut(page, 'ensemble-kept', /^(\d+(?:, \d+)*) of (\d+) \(expected (\d+\.\d)\)$/);
    expect(keptOut.shown, '#ensemble-kept text vs data-value').toEqual([keptPerNet.join(', '), '16', (16 * (1 - ensembleP)).toFixed(1)]);
    const gapOut = await readOut(page, 'ensemble-gap', /^(\d+\.\d{4})$/);
    expect(gapOut.shown, '#ensemble-gap text vs data-value').toEqual([gap!.toFixed(4)]);
    await expectDrawn(page, 'ensemble-nets');
    await expectDrawn(page, 'ensemble-output');
    await expect(page.locator('#ensemble-note').textContent()).resolves.toContain(`(here ${gap!.toFixed(3)} with `);
    await page.locator('#panel-ensemble').screenshot({ path: join(ARTIFACTS, 'panel-3-ensemble.png') });

    // 4. MC-Dropout: the band is wider away from the data than inside it.
    await settle(page, 'mc', 'ready', 120_000);
    const [sigmaIn] = await dataValue(page, 'mc-sigma-in');
    const [sigmaOut] = await dataValue(page, 'mc-sigma-out');
    expect(sigmaIn).toBeGreaterThan(0);
    expect(sigmaOut).toBeGreaterThan(2 * sigmaIn!);
    expect((await readOut(page, 'mc-sigma-in', /^(\d+\.\d{3})$/)).shown, '#mc-sigma-in text vs data-value').toEqual([sigmaIn!.toFixed(3)]);
    const outOut = await readOut(page, 'mc-sigma-out', /^(\d+\.\d{3}) \((\d+\.\d)× wider\)$/);
    expect(outOut.shown, '#mc-sigma-out text vs data-values').toEqual([sigmaOut!.toFixed(3), (sigmaOut! / sigmaIn!).toFixed(1)]);
    await expectDrawn(page, 'mc-canvas');
    await setSlider(page, 'mc-samples', 8);
    await page.waitForFunction(() => document.getElementById('mc-canvas')!.dataset.samples === '8', undefined, { timeout: 30_000 });
    await settle(page, 'mc', 'ready');
    await page.locator('#panel-mc').screenshot({ path: join(ARTIFACTS, 'panel-5-mc.png') });

    // 3. Overfitting: both networks' training losses fall; without dropout the validation loss
    // ends above the training loss by more than with dropout.
    await settle(page, 'overfit', 'ready', 150_000);
    const history = JSON.parse((await page.locator('#overfit-loss').getAttribute('data-history'))!) as Record<
      'plain' | 'dropout',
      { train: number[]; val: number[] }
    >;
    const [epochs] = await dataValue(page, 'overfit-epoch');
    expect(epochs).toBeGreaterThanOrEqual(100);
    // Done: the epoch read-out shows the last epoch of all of them.
    expect((await readOut(page, 'overfit-epoch', /^(\d+) of (\d+)$/)).shown, '#overfit-epoch text vs data-value').toEqual([
      String(epochs),
      String(epochs),
    ]);
    for (const label of ['plain', 'dropout'] as const) {
      const loss = await readOut(page, `overfit-loss-${label}`, /^(\d+\.\d{3}) \/ (\d+\.\d{3})$/);
      expect(loss.value, `#overfit-loss-${label} data-value: the last losses`).toEqual([
        history[label].train.at(-1),
        history[label].val.at(-1),
      ]);
      expect(loss.shown, `#overfit-loss-${label} text vs data-value`).toEqual(loss.value.map((v) => v.toFixed(3)));
    }
    for (const run of [history.plain, history.dropout]) {
      expect(run.train).toHaveLength(epochs!);
      expect(run.val).toHaveLength(epochs!);
      expect(run.train.at(-1)!).toBeLessThan(0.5 * run.train[0]!);
      expect(Math.min(...run.val)).toBeLessThan(run.val[0]!);
    }
    const generalisationGap = (r: { train: number[]; val: number[] }) => r.val.at(-1)! - r.train.at(-1)!;
    expect(generalisationGap(history.plain)).toBeGreaterThan(generalisationGap(history.dropout));
    for (const id of ['overfit-loss', 'overfit-boundary-plain', 'overfit-boundary-dropout']) await expectDrawn(page, id);
    // Moving p marks the trained curves stale at once (they were trained with 0.40).
    expect(await page.locator('#overfit-stale').isVisible()).toBe(false);
    await setSlider(page, 'overfit-p', 0.55);
    expect(await page.locator('#overfit-stale').isVisible()).toBe(true);
    await expect(page.locator('#overfit-stale').textContent()).resolves.toMatch(
      /trained with p = 0\.40 and 64 hidden units per layer\..*p = 0\.55 and 64\.$/,
    );
    expect(await page.locator('#panel-overfit').getAttribute('data-stale')).toBe('true');
    await setSlider(page, 'overfit-p', 0.4);
    expect(await page.locator('#overfit-stale').isVisible()).toBe(false);
    await page.selectOption('#overfit-width', '4');
    await expect(page.locator('#overfit-stale').textContent()).resolves.toMatch(/64 hidden units per layer\..*p = 0\.40 and 4\.$/);
    await page.selectOption('#overfit-width', '64');
    expect(await page.locator('#overfit-stale').isVisible()).toBe(false);
    await page.locator('#panel-overfit').screenshot({ path: join(ARTIFACTS, 'panel-4-overfit.png') });

    // 5. Speed, on demand, at the smallest size (SwiftShader is a CPU).
    await page.selectOption('#speed-size', '65536');
    await page.click('#speed-run');
    await page.waitForFunction(
      () =>
        document.getElementById('panel-speed')!.dataset.runs === '1' || document.getElementById('panel-speed')!.dataset.state === 'error',
      undefined,
      { timeout: 90_000 },
    );
    await settle(page, 'speed', 'ready');
    const rows = await page
      .locator('#speed-table tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => ({ kernel: (tr as HTMLElement).dataset.kernel, gbps: Number((tr as HTMLElement).dataset.gbps) })),
      );
    expect(rows.map((r) => r.kernel)).toEqual([
      'plain copy (the floor)',
      'dropout',
      'dropout in place',
      'dropout + packed mask',
      'random normals (write only)',
    ]);
    for (const r of rows) expect(r.gbps).toBeGreaterThan(0);
    await expectDrawn(page, 'speed-canvas');
    await page.locator('#panel-speed').screenshot({ path: join(ARTIFACTS, 'panel-6-speed.png') });

    await page.screenshot({ path: join(ARTIFACTS, 'page-1280x800.png'), fullPage: true });

    // The benchmark yields between its batches: a slider moved while a 16 MiB run is timing
    // dropout is answered (the mask recomputed on the GPU) well before the run ends.
    await page.selectOption('#speed-size', '4194304');
    await page.click('#speed-run');
    await page.waitForFunction(() => document.getElementById('speed-progress')!.textContent === 'Timing dropout…', undefined, {
      timeout: 60_000,
      polling: 20,
    });
    const asked = Date.now();
    await setSlider(page, 'mask-p', 0.35);
    await page.waitForFunction(
      () =>
        Number(document.getElementById('mask-canvas')!.dataset.p) === 0.35 &&
        document.getElementById('panel-mask')!.dataset.state === 'ready',
      undefined,
      { timeout: 60_000, polling: 20 },
    );
    const answeredMs = Date.now() - asked;
    await expect(page.locator('#speed-progress').textContent(), 'the benchmark was still running when the mask came back').resolves.toMatch(
      /^Timing /,
    );
    expect(answeredMs, 'ms from the slider move to the new mask, during a benchmark').toBeLessThan(5000);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('fits a narrow screen (390x844) without horizontal overflow, and every control has a label', async () => {
    // Opened from a shared link: the URL's hash sets the panels' state.
    const { page, errors } = await openPage(
      { width: 390, height: 844 },
      undefined,
      '#toggle-step=4&toggle-p=0.3&mask-mode=spatial&mask-seed=7&mask-p=0.25',
    );
    await settle(page, 'mask', 'ready');
    const shared = await maskView(page, 'mask-spatial');
    expect([shared.mode, shared.p, shared.seed, shared.stream]).toEqual(['spatial', 0.25, 7n, 0n]);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>('input, select, button')]
        .filter((el) => (el instanceof HTMLButtonElement ? !el.textContent?.trim() : !el.labels?.length && !el.getAttribute('aria-label')))
        .map((el) => el.id || el.outerHTML),
    );
    expect(unlabelled).toEqual([]);
    // Panels are stacked in one column.
    const lefts = await page.evaluate(
      (names) => names.map((n) => Math.round(document.getElementById(`panel-${n}`)!.getBoundingClientRect().left)),
      [...PANELS],
    );
    expect(new Set(lefts).size).toBe(1);
    await settle(page, 'toggle', 'ready');
    await expectToggle(page, 4, []);
    expect((await toggleView(page)).p).toBe(0.3);
    await page.click('#toggle-step');
    await page.waitForFunction(() => document.getElementById('toggle-layer')!.dataset.stream === '5', undefined, { timeout: 30_000 });
    expect(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('toggle-step')).toBe('5');
    // Touch targets: every neuron button at least 24 px apart centre to centre and 32 px tall.
    const boxes = await page
      .locator('#toggle-neurons button')
      .evaluateAll((bs) => bs.map((b) => b.getBoundingClientRect()).map((r) => ({ x: r.left + r.width / 2, h: r.height })));
    expect(boxes).toHaveLength(TOGGLE_NEURONS);
    for (let i = 1; i < boxes.length; i++) expect(boxes[i]!.x - boxes[i - 1]!.x).toBeGreaterThanOrEqual(24);
    for (const b of boxes) expect(b.h).toBeGreaterThanOrEqual(24);
    await page.locator('#panel-toggle').screenshot({ path: join(ARTIFACTS, 'narrow-panel-1-toggle.png') });
    await page.locator('#panel-mask').screenshot({ path: join(ARTIFACTS, 'narrow-panel-2-mask.png') });
    await page.screenshot({ path: join(ARTIFACTS, 'page-390x844.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('disables every panel for good when the GPU device is lost while a benchmark and training run, with no console errors', async () => {
    await expectDeviceLossHandled(async (page) => {
      await settle(page, 'mask', 'ready');
      // In flight at the loss: the ensemble panel's training and a benchmark (whose end re-enables its controls).
      await page.selectOption('#speed-size', '65536');
      await page.click('#speed-run');
      await page.waitForFunction(() => document.getElementById('speed-progress')!.textContent!.startsWith('Timing'), undefined, {
        timeout: 30_000,
        polling: 20,
      });
    });
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
    // Panels 1 and 2 run on the CPU reference, labelled so, with the same masks; the others cannot.
    for (const name of PANELS.slice(2)) expect(await panelState(page, name)).toBe('unavailable');
    await settle(page, 'toggle', 'ready');
    await settle(page, 'mask', 'ready');
    for (const name of ['toggle', 'mask']) {
      expect(await page.locator(`#panel-${name}`).getAttribute('data-backend')).toBe('cpu');
      await expect(page.locator(`#${name}-status`).textContent()).resolves.toContain('on the CPU reference (no WebGPU here)');
    }
    await expectToggle(page, 0, []);
    await page.click('#toggle-neurons button[data-neuron="3"]');
    await page.waitForFunction(() => document.getElementById('toggle-layer')!.dataset.flips === '3', undefined, { timeout: 30_000 });
    await expectToggle(page, 0, [3]);
    const view = await maskView(page);
    expect(view.kept).toBe(Array.from(referenceKeepMask(256, view.p, { seed: view.seed, stream: view.stream })).join(''));
    await expectPaintedMask(page, view);
    await page.screenshot({ path: join(ARTIFACTS, 'page-no-webgpu.png') });
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('f16 in Chromium on SwiftShader (no shader-f16): the packed path', () => {
  it('dropout forward, with mask, backward in place and structured dropout equal the CPU reference bit for bit, the half past an odd count kept', async () => {
    const { page, errors } = await openPage({ width: 800, height: 600 });
    await page.goto(`${harness.url}f16/`);
    await page.waitForFunction(() => document.body.dataset.result !== undefined || document.body.dataset.error !== undefined, undefined, {
      timeout: 90_000,
      polling: 100,
    });
    const error = await page.evaluate(() => document.body.dataset.error);
    expect(error).toBeUndefined();
    const result = JSON.parse((await page.evaluate(() => document.body.dataset.result))!) as {
      adapter: string;
      shaderF16: boolean;
      f16Path: string;
      checks: { name: string; count: number; mismatches: number; overwritten: number }[];
    };
    expect(result.adapter).toMatch(/swiftshader/i);
    expect(result.shaderF16).toBe(false);
    expect(result.f16Path).toBe('packed');
    expect(result.checks.map((c) => c.name)).toEqual(['forward', 'forward with mask', 'backward in place from mask', 'structured']);
    for (const c of result.checks)
      expect(c, c.name).toEqual({ name: c.name, count: c.name === 'structured' ? 105 : 65539, mismatches: 0, overwritten: 0 });
    expect(errors).toEqual([]);
    await page.close();
  });
});
