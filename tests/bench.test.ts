// Smoke test of the benchmark suite: the quick mode runs headless to the end and writes
// well-formed JSON and Markdown. No timing is asserted (the numbers depend on the machine).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchReport, cellResult, formatNs, toMarkdown } from '../bench/report.js';
import { pairedRatio, quantile, type Timing } from '../bench/timing.js';
import { viteNode } from './child.js';

const out = mkdtempSync(join(tmpdir(), 'webgpu-dropout-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench timing helpers', () => {
  const timing = (method: Timing['method'], series: number[], wallSeries = series): Timing => ({
    ns: quantile(series, 0.5),
    method,
    wallNs: quantile(wallSeries, 0.5),
    reps: 1,
    samples: series.length,
    series,
    wallSeries,
  });

  it('quantile interpolates between order statistics', () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(quantile([1, 2], 0.75)).toBe(1.75);
    expect(quantile([7], 0.25)).toBe(7);
  });

  it('pairedRatio pairs samples round by round, so a slow round does not skew the ratio', () => {
    // Round 2 ran under load for the op only in its copy's round; medians alone would say 2.5.
    const op = timing('timestamp', [10, 100, 12]);
    const copy = timing('timestamp', [5, 50, 30]);
    expect(copy.ns / op.ns).toBe(2.5);
    const r = pairedRatio(copy, op);
    expect(r.ratio).toBe(0.5);
    expect(r.low).toBe(0.5);
    expect(r.high).toBe(1.5);
  });

  it('a cell row: elements/s and GB/s from the median, "of copy" = copy time / op time with its quartiles', () => {
    const op = timing('timestamp', [4000, 4000, 4000]);
    const copy = timing('timestamp', [1000, 2000, 3000]);
    const cell = cellResult(10, 8 * 1024, op, copy);
    expect(cell.n).toBe(1024);
    expect(cell.elementsPerSec).toBeCloseTo(256e6, 3); // 1024 elements in 4 us
    expect(cell.gbPerSec).toBe((8 * 1024) / 4000);
    expect(cell.copyNs).toBe(2000);
    expect(cell.ofCopy).toBe(0.5);
    expect(cell.ofCopyRange).toEqual([0.375, 0.625]);
    expect(cell.copy).toEqual({ method: 'timestamp', reps: 1, samples: 3 });
    expect(cellResult(10, 0, op).ofCopy).toBeUndefined();
  });

  it('pairedRatio falls back to wall times when the two timings used different methods', () => {
    const op = timing('timestamp', [1, 1, 1], [10, 10, 10]);
    const copy = timing('wall', [20, 20, 20]);
    expect(pairedRatio(copy, op).ratio).toBe(2);
  });
});

describe('npm run bench -- --quick', () => {
  it('writes a JSON report and a Markdown table for every op', async () => {
    const { code, stdout, stderr } = await viteNode(['bench/run.ts', '--', '--quick', '--out', out, '--name', 'smoke'], {
      timeout: 120_000,
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('webgpu-dropout bench on');

    const report = JSON.parse(readFileSync(join(out, 'smoke.json'), 'utf8')) as BenchReport;
    expect(report.schema).toBe(1);
    expect(report.options.quick).toBe(true);
    expect(report.adapter.name.length).toBeGreaterThan(0);
    const ids = report.ops.map((o) => o.id);
    for (const id of ['dropout.forward.f32', 'dropout.backward.f32', 'rng.words', 'rng.uniform', 'rng.normal']) expect(ids).toContain(id);
    for (const op of report.ops) {
      expect(op.cells.map((c) => c.log2)).toEqual(report.options.sizesLog2);
      for (const c of op.cells) {
        expect(c.n).toBe(2 ** c.log2);
        expect(c.ns).toBeGreaterThan(0);
        expect(['timestamp', 'wall']).toContain(c.method);
        // The sanity rule holds sample by sample, so it holds for the per-call medians (bench/timing.ts):
        // a timestamp median above its wall median (beyond the slack) means a sample was not divided by its calls.
        if (c.method === 'timestamp')
          expect(c.ns, `${op.id} 2^${c.log2}`).toBeLessThanOrEqual((c.wallNs * 1.05 + 5e4 / c.reps) * (1 + 1e-12));
        else expect(c.ns).toBe(c.wallNs);
        expect(c.rejected !== undefined, `${op.id} 2^${c.log2}: rejected iff a timestamp adapter fell back to wall`).toBe(
          report.timing.timestampQuery && c.method === 'wall',
        );
        // The rates are derived from the median as the README says.
        expect(c.elementsPerSec / (c.n / (c.ns * 1e-9))).toBeCloseTo(1, 9);
        if (op.bytesPerElement > 0) expect(c.gbPerSec / ((op.bytesPerElement * c.n) / c.ns)).toBeCloseTo(1, 9);
        // Ops that move bytes carry the copy reference timed beside them.
        if (op.bytesPerElement === 0) continue;
        expect(c.ofCopy).toBeGreaterThan(0);
        // ... over exactly the op's bytes.
        expect(c.copy?.bytes, `${op.id} 2^${c.log2}: bytes the copy moved`).toBe(op.bytesPerElement * c.n);
        const [low, high] = c.ofCopyRange!;
        expect(low).toBeLessThanOrEqual(c.ofCopy!);
        expect(c.ofCopy!).toBeLessThanOrEqual(high);
      }
    }
    // Both peers ran (or said exactly why not), memory and overhead sections are there.
    const peers = new Set(report.peers.map((p) => p.peer.split(' ')[0]));
    expect(peers.has('CPU')).toBe(true);
    expect(peers.has('tf.dropout') || report.peerErrors.some((e) => e.startsWith('tf.dropout'))).toBe(true);
    for (const p of report.peers) {
      expect(p.ratio).toBeGreaterThan(0);
      expect(p.n).toBe(2 ** p.log2);
      // ratio = median of per-round ratios, inside its quartiles [low, high].
      expect(p.ratioRange![0]).toBeLessThanOrEqual(p.ratio);
      expect(p.ratio).toBeLessThanOrEqual(p.ratioRange![1]);
    }
    expect(report.options.sizesLog2).toEqual([10, 15, 20]);
    expect(report.options.cellBudgetMs).toBe(60);
    expect(report.options.peers).toEqual({ tf: true, cpu: true });
    // The pool's peak over one f32 forward + backward is y and dx: 8 bytes per element.
    expect(report.memory.rows.find((m) => m.what.includes('pool peak'))?.bytesPerElement).toBe(8);
    // The overhead table's GPU row is the 2^10 forward cell, as the README says.
    const fwd = report.ops.find((o) => o.id === 'dropout.forward.f32')!;
    const fwd10 = fwd.cells.find((c) => c.log2 === 10)!;
    const gpuRow = report.overhead.find((o) => o.what.startsWith('GPU:'))!;
    expect(gpuRow.ns).toBe(fwd10.ns);
    expect(gpuRow.what).toContain(`(${fwd10.method})`);
    expect(gpuRow.note).toContain(`(${fwd10.samples}×${fwd10.reps}); copy kernel at the same bytes: ${formatNs(fwd10.copyNs!)}`);
    // Stage notes: one per forward cell from 2^20, each stage's own median.
    const cellOf = (id: string, log2: number) => report.ops.find((o) => o.id === id)!.cells.find((c) => c.log2 === log2)!;
    expect(report.stages).toHaveLength(1);
    expect(report.stages[0]).toContain(`2^20: forward ${formatNs(cellOf('dropout.forward.f32', 20).ns)} = `);
    expect(report.stages[0]).toContain(
      `(${formatNs(cellOf('dropout.forward.f32', 20).copyNs!)}); without Philox ${formatNs(cellOf('stage.no_rng.f32', 20).ns)} `,
    );
    expect(report.stages[0]).toContain(`Philox alone ${formatNs(cellOf('stage.rng_only.f32', 20).ns)};`);
    // Targets on a CPU adapter are judged at 2^24 only, which a quick run does not reach.
    if (/llvmpipe|lavapipe|swiftshader/i.test(report.adapter.name))
      expect(report.targets).toEqual([
        { target: 'dropout.forward.f32 at 2^24 >= 60% of copy', measured: 'not measured', met: null },
        { target: 'forward f32 at 2^24 >= 20x tf.dropout', measured: 'not measured', met: null },
      ]);
    const mem = report.memory.rows.find((m) => m.what.startsWith('ours: dropout,'));
    expect(mem?.bytesPerElement).toBe(0);
    expect(report.memory.rows.find((m) => m.what.includes('bit mask'))?.bytesPerElement).toBe(0.125);
    expect(report.overhead.length).toBeGreaterThanOrEqual(4);
    expect(report.failures).toEqual([]);
    expect(report.options.subset).toBe(false);

    const md = readFileSync(join(out, 'smoke.md'), 'utf8');
    // The Markdown is the JSON's report, nothing else.
    expect(md).toBe(toMarkdown(report) + '\n');
    expect(md).toContain(`# webgpu-dropout benchmark: ${report.adapter.name}`);
    // Every "of copy" cell reads median (low-high), in that order.
    const ranges = [...md.matchAll(/\| (\d+)% \((\d+)-(\d+)%\) \|/g)];
    expect(ranges.length).toBeGreaterThan(0);
    for (const [cell, mid, low, high] of ranges) {
      expect(Number(low), cell).toBeLessThanOrEqual(Number(mid));
      expect(Number(mid), cell).toBeLessThanOrEqual(Number(high));
    }
    for (const op of report.ops) expect(md).toContain(`### ${op.label}`);
    // Every table row has as many cells as its header.
    for (const table of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const rows = table.trim().split('\n');
      const width = rows[0]!.split(' | ').length;
      for (const row of rows) expect(row.split(' | ').length).toBe(width);
    }
  });
});

describe('npm run bench with a partial selection', () => {
  it("a run that leaves ops, sizes or peers out writes '<adapter>-subset' files marked as such", async () => {
    const { code, stderr } = await viteNode(
      [
        'bench/run.ts',
        '--',
        '--ops',
        'rng.words',
        '--min',
        '10',
        '--max',
        '11',
        '--step',
        '2',
        '--no-tf',
        '--no-cpu',
        '--budget',
        '20',
        '--out',
        out,
      ],
      {
        timeout: 120_000,
      },
    );
    expect(code, stderr).toBe(0);
    const file = readdirSync(out).find((f) => f.endsWith('-subset.json') && !f.endsWith('-quick-subset.json'));
    expect(file, 'a <adapter>-subset.json report').toBeDefined();
    const report = JSON.parse(readFileSync(join(out, file!), 'utf8')) as BenchReport;
    expect(report.options.subset).toBe(true);
    expect(file).toBe(`${report.adapter.slug}-subset.json`);
    if (/llvmpipe|lavapipe/i.test(report.adapter.name)) expect(report.adapter.slug).toBe('lavapipe');
    // --max is run even where the step skips it.
    expect(report.options.sizesLog2).toEqual([10, 11]);
    expect(report.options.ops).toEqual(['rng.words']);
    expect(report.ops.map((o) => o.id)).toEqual(['rng.words']);
    expect(readFileSync(join(out, file!.replace('.json', '.md')), 'utf8')).toContain('**subset run**');
  });

  it('a cell that WebGPU rejects or that throws, and a section that throws, are reported as failed, the run goes on, and it exits 1; --no-tf alone makes a subset', async () => {
    // WEBGPU_DROPOUT_BENCH_FAULT (bench/run.ts): rng.words records an invalid dispatch as well,
    // recording rng.uniform throws, and so does the memory section.
    const failed = await viteNode(['bench/run.ts', '--', '--quick', '--no-tf', '--budget', '10', '--out', out], {
      timeout: 180_000,
      env: { ...process.env, WEBGPU_DROPOUT_BENCH_FAULT: 'rng.words,throw:rng.uniform,section:memory' },
    });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/failure\(s\): rng\.words at 2\^10: WebGPU reported a validation error/);
    // The default name of a quick subset run: neither a full nor a plain quick run's files are overwritten.
    const file = readdirSync(out).find((f) => f.endsWith('-quick-subset.json'));
    expect(file, 'a <adapter>-quick-subset.json report').toBeDefined();
    const report = JSON.parse(readFileSync(join(out, file!), 'utf8')) as BenchReport;
    expect(file).toBe(`${report.adapter.slug}-quick-subset.json`);
    expect(report.options.subset).toBe(true);
    expect(report.options.peers).toEqual({ tf: false, cpu: true });
    expect(report.peers.map((p) => p.peer.split(' ')[0])).toEqual(['CPU']);
    expect(report.peerErrors).toEqual([]);
    const sizes = report.options.sizesLog2;
    expect(report.failures).toEqual([
      ...sizes.map((log2) => expect.stringMatching(new RegExp(`^rng\\.words at 2\\^${log2}: WebGPU reported a validation error`))),
      ...sizes.map((log2) => `rng.uniform at 2^${log2}: injected fault (WEBGPU_DROPOUT_BENCH_FAULT)`),
      'memory: injected fault (WEBGPU_DROPOUT_BENCH_FAULT)',
    ]);
    for (const op of report.ops) expect(op.cells.length + (op.failures?.length ?? 0), op.id).toBe(report.options.sizesLog2.length);
    expect(report.ops.find((o) => o.id === 'rng.words')!.cells).toEqual([]);
    expect(report.ops.find((o) => o.id === 'rng.uniform')!.cells).toEqual([]);
    expect(report.ops.find((o) => o.id === 'rng.normal')!.cells.length).toBe(report.options.sizesLog2.length);
    // The failed section is empty, not made up; the next section still ran.
    expect(report.memory.rows).toEqual([]);
    expect(report.overhead.length).toBeGreaterThan(0);
    const md = readFileSync(join(out, file!.replace('.json', '.md')), 'utf8');
    expect(md).toMatch(/\*\*failed\*\*: WebGPU reported a validation error/);
    expect(md).toContain('- **failures** (the run exited non-zero): rng.words at 2^10: WebGPU reported a validation error');
    expect(md).toContain('- **subset run**: all ops; peers left out: tf;');
  });

  it('a bad command line or configuration exits 2 with the reason in one line, no stack trace', async () => {
    for (const [args, reason, adapter] of [
      // Every command-line rule is unit-tested in bench-audit.test.ts; these check the exit status and stderr.
      [['--min', '12', '--max', '11'], /^bench: --min 12 is above --max 11/],
      [['quick'], /^bench: unexpected argument "quick"/],
      [['--quick'], /^bench: WEBGPU_DROPOUT_ADAPTER: expected lavapipe, swiftshader, system or an ICD json path, got "nosuch"$/, 'nosuch'],
      [['--quick'], /^bench: WEBGPU_DROPOUT_ADAPTER=\/nonexistent\.json: no such file/, '/nonexistent.json'],
      // Known only once the device is open: the adapter's maxBufferSize (lavapipe's holds 2^29 f32).
      [
        ['--max', '40'],
        /^bench: --max 40: this adapter's maxBufferSize \(\d+ bytes\) holds at most 2\^\d+ f32 elements; pass --max \d+ or less/,
      ],
    ] as const) {
      const env = { ...process.env, ...(adapter ? { WEBGPU_DROPOUT_ADAPTER: adapter } : {}) };
      const failed = await viteNode(['bench/run.ts', '--', ...args, '--out', out], { timeout: 60_000, env });
      const what = `${adapter ? `WEBGPU_DROPOUT_ADAPTER=${adapter} ` : ''}${args.join(' ')}`;
      expect(failed.code, what).toBe(2);
      // Dawn's adapter warnings (see the README) may come first; the bench's own output is one line.
      const lines = failed.stderr.split('\n').filter((l) => l.trim() && !/artificially reduced/.test(l));
      expect(lines, what).toHaveLength(1);
      expect(lines[0], what).toMatch(reason);
    }
  });
});
