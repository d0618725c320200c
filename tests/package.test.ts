// The published form: `npm run build` emits dist/ (ESM + .d.ts, WGSL inlined) that plain Node can
// import with no bundler, and that computes the same mask as the source tree's CPU reference.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { referenceDropout } from '../src/index.js';

const root = join(import.meta.dirname, '..');

describe('package build', () => {
  it('builds dist/ with types and runs from plain Node', () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'pipe' });
    for (const f of ['index.js', 'index.d.ts', 'node.js', 'node.d.ts']) expect(existsSync(join(root, 'dist', f)), f).toBe(true);

    const script = join(mkdtempSync(join(tmpdir(), 'dropout-pkg-')), 'use.mjs');
    writeFileSync(
      script,
      `import { DropoutContext, dropoutArray } from ${JSON.stringify(join(root, 'dist/index.js'))};
       import { requestNodeDevice } from ${JSON.stringify(join(root, 'dist/node.js'))};
       const nd = await requestNodeDevice();
       const ctx = await DropoutContext.create(nd.device);
       const x = Float32Array.from({ length: 37 }, (_, i) => i - 18.5);
       const { output } = await dropoutArray(ctx, x, { p: 0.25, seed: 99n, stream: 3n });
       console.log(JSON.stringify(Array.from(output)));
       ctx.destroy(); nd.release();`,
    );
    // Plain node, no loader: the process must also exit on its own (devices released).
    const out = execFileSync(process.execPath, [script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const x = Float32Array.from({ length: 37 }, (_, i) => i - 18.5);
    const want = referenceDropout(x, { p: 0.25, seed: 99n, stream: 3n });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual(Array.from(want));
  });
});
