// The TypeScript examples of the README and the guides in docs/, type-checked and run as written.
// Each ```ts block becomes a module in test-artifacts/readme/: the block's own text, with 'webgpu-dropout' pointed at src/,
// after the declarations the block leaves to the reader (a fragment's x, N, mlp...) and before
// checks of what it computed. A block no harness below claims fails the suite, so an example
// cannot be added, or edited out of recognition, without being run.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DropoutContext } from '../src/index.js';
import { gpuContext, nodeDevice } from './gpu.js';

const root = join(import.meta.dirname, '..');
const outDir = join(root, 'test-artifacts', 'readme');

interface Harness {
  /** Text that only this block contains. */
  match: string;
  /** What the block uses but does not declare (fragments get `ctx` and `device` from the suite). */
  before: string;
  /** Checks after the block (or before its line containing `checksBefore`), throwing on a mismatch. */
  after: string;
  checksBefore?: string;
  /** A fragment runs on the suite's context; a standalone block acquires its own device. */
  standalone?: boolean;
  /** Checks on what the block printed with console.log (one string per call). */
  printed?: (lines: string[]) => void;
}

// Checks use the CPU references: the words are the contract, so f32 results are compared exactly
// except where the README's op sums (dbias) or works in f16.
const harnesses: Harness[] = [
  {
    // The TensorFlow.js section: on the suite's device, through tfjs's WebGPU backend.
    match: "from 'webgpu-dropout/tfjs'",
    before: `import { expect } from 'vitest';
import { referenceDropout, referenceDropoutBackward } from 'webgpu-dropout/reference';
import { WebGPUDropout } from 'webgpu-dropout/tfjs-layers';`,
    after: `const x8 = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
expect(Array.from(await y.data())).toEqual(Array.from(referenceDropout(x8, { p: 0.5, seed: 42 })));
expect(Array.from(await dx.data())).toEqual(Array.from(referenceDropoutBackward(new Float32Array(8).fill(1), { p: 0.5, seed: 42 })));
expect(model.layers[1]).toBeInstanceOf(WebGPUDropout);
// Two epochs of one batch, then 16 MC passes: one stream each.
expect((model.layers[1] as WebGPUDropout).generator.stream).toBe(18n);
expect(mc.mean.shape).toEqual([32, 3]);
expect(mc.mutualInformation!.shape).toEqual([32]);`,
    printed: (lines) => expect(lines).toHaveLength(1),
  },
  {
    match: "from 'webgpu-dropout/node'",
    standalone: true,
    before: `import { expect } from 'vitest';
import { referenceDropout, referenceDropoutBackward } from 'webgpu-dropout/reference';`,
    checksBefore: 'ctx.destroy();',
    after: `const xs = new Float32Array([1, 2, 3, 4, 5]);
expect(Array.from(await readArray(ctx, output, 'f32', 5))).toEqual(Array.from(referenceDropout(xs, state)));
expect(Array.from(await readArray(ctx, dx, 'f32', 5))).toEqual(Array.from(referenceDropoutBackward(new Float32Array(5).fill(1), state)));
expect(r.state.seed).toBe(7n);
expect(Array.from(await readArray(ctx, r.output, 'f32', 5))).toEqual(Array.from(referenceDropout(xs, r.state)));
expect(layer.training).toBe(false);`,
    printed: (lines) => expect(lines).toHaveLength(1),
  },
  {
    match: 'ctx.submitted(encoder)',
    before: `import { expect } from 'vitest';
import { MLP, uploadMatrix } from 'webgpu-dropout/model';
const x = uploadMatrix(ctx, [0, 0.5, 1, 1.5], 4, 1);
const y = uploadMatrix(ctx, [1, 0, -1, 0], 4, 1);
const mlp = new MLP(ctx, { sizes: [1, 8, 1], dropout: 0.2, seed: 3 });
{ // one step exactly as below, so that the next finds its temporaries in the pool
  const encoder = device.createCommandEncoder();
  await mlp.trainStep(x, y, { loss: 'mse', encoder });
  device.queue.submit([encoder.finish()]);
  ctx.submitted(encoder);
}
const allocationsBefore = ctx.pool.allocations;`,
    // The README's claim: a steady loop allocates nothing new per step.
    after: `expect(ctx.pool.allocations - allocationsBefore).toBe(0);
mlp.destroy();`,
  },
  {
    match: 'noiseShape: [N, 1, F]',
    before: `import { readArray, structuredDropout, structuredDropoutBackward } from 'webgpu-dropout';
import { referenceStructuredDropout, referenceStructuredDropoutBackward } from 'webgpu-dropout/reference';
import { expect } from 'vitest';
const [N, T, F] = [3, 4, 5];
const xs = Float32Array.from({ length: N * T * F }, (_, i) => i - 29.5);
const dys = Float32Array.from(xs, (v) => v / 8);
const [x, dy] = [ctx.upload(xs), ctx.upload(dys)];`,
    after: `expect(state.noiseShape).toEqual([N, 1, F]);
expect(Array.from(await readArray(ctx, output, 'f32', xs.length))).toEqual(Array.from(referenceStructuredDropout(xs, state)));
expect(Array.from(await readArray(ctx, dx, 'f32', xs.length))).toEqual(Array.from(referenceStructuredDropoutBackward(dys, state)));`,
  },
  {
    match: "layout: 'channels-first'",
    before: `import { Dropout2d, spatialDropout, SpatialDropout2D } from 'webgpu-dropout';
const [N, C, H, W] = [2, 3, 4, 5];
const x = ctx.upload(new Float32Array(N * C * H * W).fill(1));`,
    after: '',
  },
  {
    match: 'dropPathRates(0.1, depth)',
    before: `import { dropPath, dropPathAdd, dropPathRates } from 'webgpu-dropout';
import { expect } from 'vitest';
const [N, L, D] = [4, 3, 8];
const depth = 5;
const x = ctx.upload(new Float32Array(N * L * D).fill(1));
const [residual, branch] = [ctx.upload(new Float32Array(N * L * D).fill(2)), ctx.upload(new Float32Array(N * L * D).fill(3))];`,
    after: 'expect(rates).toEqual([0, 0.025, 0.05, 0.07500000000000001, 0.1]);',
  },
  {
    match: 'variationalDropout(ctx, x',
    before: `import { variationalDropout, VariationalDropout } from 'webgpu-dropout';
const [N, T, F] = [2, 6, 4];
const x = ctx.upload(new Float32Array(N * T * F).fill(1));`,
    after: '',
  },
  {
    match: 'dropConnectBackward(ctx, dMaskedW, state)',
    before: `import { dropConnect, dropConnectBackward, readArray } from 'webgpu-dropout';
import { referenceStructuredDropout, referenceStructuredDropoutBackward } from 'webgpu-dropout/reference';
import { expect } from 'vitest';
const [rows, cols] = [7, 9];
const ws = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
const gs = Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i));
const [W, dMaskedW] = [ctx.upload(ws), ctx.upload(gs)];`,
    after: `expect(state.shape).toEqual([rows, cols]);
expect(Array.from(await readArray(ctx, maskedW, 'f32', ws.length))).toEqual(Array.from(referenceStructuredDropout(ws, state)));
expect(Array.from(await readArray(ctx, dW, 'f32', gs.length))).toEqual(Array.from(referenceStructuredDropoutBackward(gs, state)));`,
  },
  {
    match: 'biasDropoutResidual(ctx, x, bias, residual',
    before: `import { biasDropoutResidual, biasDropoutResidualBackward, readArray, toHalfArray } from 'webgpu-dropout';
import { referenceBiasDropoutResidual, referenceBiasDropoutResidualBackward } from 'webgpu-dropout/reference';
import { expect } from 'vitest';
import { expectClose } from '../../tests/structured-helpers.js';
const [B, L, D] = [2, 3, 8];
const xh = toHalfArray(Float32Array.from({ length: B * L * D }, (_, i) => (i % 7) - 3));
const biash = toHalfArray(Float32Array.from({ length: D }, (_, i) => i / 4));
const resh = toHalfArray(Float32Array.from({ length: B * L * D }, (_, i) => (i % 5) / 2));
const dyh = toHalfArray(Float32Array.from({ length: B * L * D }, (_, i) => (i % 3) - 1));
const [x, bias, residual, dy] = [ctx.upload(xh), ctx.upload(biash), ctx.upload(resh), ctx.upload(dyh)];`,
    // Small integers and quarters: every sum here is exact in f16, so even dbias compares exactly.
    after: `expectClose(await readArray(ctx, output, 'f16', xh.length), referenceBiasDropoutResidual(xh, biash, resh, state), 0);
const want = referenceBiasDropoutResidualBackward(dyh, state);
expectClose(await readArray(ctx, dx, 'f16', dyh.length), want.dx, 0);
expectClose(await readArray(ctx, dbias, 'f16', D), want.dbias, 0);
expect(dresidual).toBe(dy);`,
  },
  {
    match: 'mcDropout(ctx, mlp, grid',
    before: `import { expect } from 'vitest';
const xs = Array.from({ length: 32 }, (_, i) => -1 + (2 * i) / 31);
const ys = xs.map((v) => Math.sin(3 * v));
const gridXs = Array.from({ length: 9 }, (_, i) => -4 + i);`,
    after: `const meanSquare = ys.reduce((s, v) => s + v * v, 0) / ys.length;
expect(mse).toBeLessThan(meanSquare / 4); // it learned something
expect(mean.length).toBe(gridXs.length);
expect(variance.every((v) => v >= 0)).toBe(true);
expect(variance.some((v) => v > 0)).toBe(true);
mlp.destroy();`,
    // One pass of 64 samples (they fit one storage binding), then done.
    printed: (lines) => expect(lines.at(-1)).toBe('64/64'),
  },
];

interface Block {
  /** The Markdown file, from the repository root. */
  file: string;
  line: number;
  code: string;
}

function tsBlocks(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    blocks.push({ file, line: start + 1, code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return blocks;
}

/** The block as a module: imports first (the block's and the harness's), then declarations, the block, the checks. */
function moduleText(block: Block, h: Harness): string {
  const fromSrc = (text: string) =>
    text
      .replaceAll("'webgpu-dropout/node'", "'../../src/node.js'")
      .replaceAll("'webgpu-dropout/tfjs'", "'../../src/tfjs.js'")
      .replaceAll("'webgpu-dropout/tfjs-layers'", "'../../src/tfjs-layers.js'")
      .replaceAll("'webgpu-dropout/reference'", "'../../src/reference.js'")
      .replaceAll("'webgpu-dropout/model'", "'../../src/model.js'")
      .replaceAll("'webgpu-dropout'", "'../../src/index.js'");
  const split = (text: string) => {
    const lines = fromSrc(text).split('\n');
    return { imports: lines.filter((l) => l.startsWith('import ')), body: lines.filter((l) => !l.startsWith('import ')) };
  };
  const pre = split(h.before);
  const own = split(block.code);
  let body = own.body;
  if (h.checksBefore !== undefined) {
    const at = body.findIndex((l) => l.includes(h.checksBefore!));
    if (at < 0) throw new Error(`${where(block)}: no line containing ${JSON.stringify(h.checksBefore)}`);
    body = [...body.slice(0, at), h.after, ...body.slice(at)];
  } else {
    body = [...body, h.after];
  }
  // A fragment's ctx and device are the suite's (see the runner below).
  const env = h.standalone
    ? { imports: [], body: [] }
    : {
        imports: ["import type { DropoutContext } from '../../src/index.js';"],
        body: ['const { ctx, device } = (globalThis as unknown as { readmeEnv: { ctx: DropoutContext; device: GPUDevice } }).readmeEnv;'],
      };
  return [
    `// Generated by tests/readme.test.ts from ${where(block)}.`,
    ...own.imports,
    ...pre.imports,
    ...env.imports,
    ...env.body,
    ...pre.body,
    `// --- ${where(block)} ---`,
    ...body,
    'export {};',
    '',
  ].join('\n');
}

/** The user documentation: the README and the guides under docs/. */
const documents = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocks = documents.flatMap((file) => tsBlocks(file, readFileSync(join(root, file), 'utf8')));
const where = (block: Block) => `${block.file} line ${block.line}`;
const files = new Map<Block, { path: string; harness: Harness }>();

beforeAll(() => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  for (const block of blocks) {
    const matching = harnesses.filter((h) => block.code.includes(h.match));
    if (matching.length !== 1) continue; // reported by the test below
    const path = join(outDir, `${block.file.replace(/\W+/g, '-')}-line-${block.line}.ts`);
    writeFileSync(path, moduleText(block, matching[0]!));
    files.set(block, { path, harness: matching[0]! });
  }
});

describe('README and guide examples', () => {
  it('every ```ts block has exactly one harness, and every harness a block', () => {
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      const n = harnesses.filter((h) => block.code.includes(h.match)).length;
      expect(n, `${where(block)}: ${n} harnesses in tests/readme.test.ts match it`).toBe(1);
    }
    for (const h of harnesses)
      expect(
        blocks.some((b) => b.code.includes(h.match)),
        `no block of the README or a guide contains ${JSON.stringify(h.match)}`,
      ).toBe(true);
  });

  it('type-checks under the project tsconfig', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      join(root, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
    );
    expect(config).toBeDefined();
    // The project's own declarations (src/wgsl.d.ts: the ?raw shader imports) come along.
    const declarations = config!.fileNames.filter((f) => f.endsWith('.d.ts'));
    const program = ts.createProgram([...declarations, ...[...files.values()].map((f) => f.path)], { ...config!.options, noEmit: true });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file
        ? `${d.file.fileName.replace(root + '/', '')}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
        : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(problems).toEqual([]);
  });

  let suite: { ctx: DropoutContext; device: GPUDevice } | undefined;
  for (const block of blocks) {
    const title = block.code.split('\n')[0]!.slice(0, 70);
    it(`runs the block at ${where(block)} (${title})`, async () => {
      const file = files.get(block);
      if (!file) expect.fail(`${where(block)} has no harness`);
      if (!file.harness.standalone) {
        suite ??= { ctx: await gpuContext(), device: (await nodeDevice()).device };
        (globalThis as unknown as { readmeEnv: typeof suite }).readmeEnv = suite;
      }
      const printed: string[] = [];
      const log = console.log;
      console.log = (...args: unknown[]) => void printed.push(args.map(String).join(' '));
      try {
        await import(/* @vite-ignore */ file.path);
      } finally {
        console.log = log;
      }
      file.harness.printed?.(printed);
    });
  }
});
