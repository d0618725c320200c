// Device lifetime in Node, each scenario of tests/lifetime/scenarios.ts in a child process of its own
// with --expose-gc and forced collections: keeping only the device, tfjs given only the device,
// 200 devices opened, used and released with work pending, and devices lost under a stream of
// calls. A crash or a deadlock takes down the child, which is killed after its time limit; the
// test then fails with the child's exit and output. Then the soak (scripts/soak.ts): memory flat
// over many calls.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { viteNode } from './child.js';

const out = mkdtempSync(join(tmpdir(), 'webgpu-dropout-soak-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const SCENARIOS: readonly { name: string; rounds: number; limitS: number; what: string }[] = [
  { name: 'keep-device', rounds: 60, limitS: 60, what: 'only the device kept, gc() every 10 calls' },
  { name: 'tfjs-keep-device', rounds: 20, limitS: 90, what: 'useTfjsDevice given only the device, gc() every 10 calls' },
  {
    name: 'cycles',
    rounds: 200,
    limitS: 150,
    what: '200 devices opened, used and released (an op, a readback or both pending at release), gc() each time',
  },
  { name: 'loss-under-load', rounds: 20, limitS: 90, what: 'devices destroyed under a stream of ops and readbacks' },
];

describe('device lifetime in Node (child processes with --expose-gc)', () => {
  for (const s of SCENARIOS) {
    it(
      `${s.name}: ${s.what}`,
      async () => {
        const result = await viteNode(['tests/lifetime/scenarios.ts', s.name, String(s.rounds)], {
          timeout: s.limitS * 1000,
          nodeFlags: ['--expose-gc'],
        });
        const output = `${result.stdout}\n${result.stderr}`
          .split('\n')
          .filter((l) => l.trim() && !/artificially reduced/.test(l))
          .slice(-20)
          .join('\n');
        const how = result.signal
          ? `killed by ${result.signal}${result.signal === 'SIGKILL' ? ` (still running after ${s.limitS} s, or crashed)` : ''}`
          : `exit ${result.code}`;
        expect(`${how}\n${output}`).toMatch(new RegExp(`^exit 0\\n(.*\\n)*ok ${s.name}: `));
      },
      (s.limitS + 30) * 1000,
    );
  }
});

describe('memory over many calls (scripts/soak.ts in a child process)', () => {
  it('12,000 calls that await only our ops (validate: false, no readback), collected every 100 calls: RSS flat over the second half; a checked run matches the reference', async () => {
    // Dawn frees a submission's memory only once it has seen the work complete; without the
    // library's completion wait this grew by some 6 KB a call, collected or not (36 MiB here).
    const file = join(out, 'soak.json');
    const flat = await viteNode(
      ['scripts/soak.ts', '--calls', '12000', '--shapes', '50', '--no-validate', '--check', '0', '--gc', '--json', file],
      { timeout: 120_000, nodeFlags: ['--expose-gc'] },
    );
    expect(flat.code, flat.stderr).toBe(0);
    const { rows } = JSON.parse(readFileSync(file, 'utf8')) as { rows: { calls: number; rssMiB: number }[] };
    const [half, last] = [rows[4]!, rows[rows.length - 1]!];
    expect(half.calls).toBe(6_000);
    expect(last.rssMiB - half.rssMiB, `RSS per tenth of the run: ${rows.map((r) => r.rssMiB.toFixed(1)).join(', ')} MiB`).toBeLessThan(8);
    // The default context (validate: true), every 97th call read back and compared with the reference.
    const checked = await viteNode(['scripts/soak.ts', '--calls', '3000', '--shapes', '200', '--check', '97'], { timeout: 120_000 });
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(/done in /);
  }, 300_000);
});
