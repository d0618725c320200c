// @vitest-environment node
// webgpu-dropout/tfjs in real headless Chromium (Debian's, WebGPU on SwiftShader): a page built
// with Vite from tests/browser/tfjs/, tfjs's WebGPU backend on the page's own device; outputs and
// gradient against the CPU reference bit for bit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { describe, expect, it } from 'vitest';
import { referenceDropout, referenceDropoutBackward, referenceStructuredDropout } from '../src/reference.js';
import { CHROMIUM, CHROMIUM_ARGS, collectErrors, ROOT, serve } from './browser/harness.js';
import { N, OPTS } from './browser/tfjs/params.js';

const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

describe('webgpu-dropout/tfjs in Chromium', () => {
  it('dropout, its gradient and spatial dropout on the page equal the CPU reference', async () => {
    const work = mkdtempSync(join(tmpdir(), 'webgpu-dropout-tfjs-'));
    try {
      await build({
        configFile: false,
        root: join(ROOT, 'tests/browser/tfjs'),
        base: './',
        logLevel: 'warn',
        build: { outDir: join(work, 'site'), emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 8192 },
      });
      const { url, server } = await serve(join(work, 'site'));
      const browser = await chromium.launchPersistentContext(join(work, 'profile'), {
        executablePath: CHROMIUM,
        headless: false,
        args: CHROMIUM_ARGS,
      });
      try {
        const page = await browser.newPage();
        const errors = collectErrors(page);
        await page.goto(url);
        const r = (await page.evaluate(() => (window as unknown as { __tfjs: Promise<unknown> }).__tfjs)) as {
          error?: string;
          backend: string;
          y: number[];
          dx: number[];
          spatial: number[];
        };
        expect(r.error).toBeUndefined();
        expect(r.backend).toBe('webgpu');
        const xs = Float32Array.from({ length: N }, (_, i) => (i % 17) - 8.5);
        expect(bits(r.y)).toEqual(bits(referenceDropout(xs, OPTS)));
        expect(bits(r.dx)).toEqual(bits(referenceDropoutBackward(new Float32Array(N).fill(1), OPTS)));
        expect(bits(r.spatial)).toEqual(bits(referenceStructuredDropout(xs, { ...OPTS, shape: [10, 25, 4], noiseShape: [10, 1, 4] })));
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
        await new Promise<void>((done) => server.close(() => done()));
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 180_000);
});
