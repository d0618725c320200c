// @vitest-environment node
// The package as a user gets it. A clean `git clone` of HEAD (uncommitted work is not in it:
// commit before running this locally) is packed with `npm pack`, whose `prepack` builds dist/;
// the tarball goes into a fresh consumer project through exactly the README's install line (the
// tarball's path in place of the package name, as the README says to do until the package is
// published). Then, in that one consumer:
//   (a) the README's Node example runs under plain `node` (both entry points, on the adapter
//       WEBGPU_DROPOUT_ADAPTER picks: lavapipe by default) and prints the source tree's CPU
//       reference; `require()` is refused, as the README says (ESM only);
//   (b) the README's examples and a typed consumer file pass `strict` TypeScript 5.4, 5.9, 6 and
//       7, with no skipLibCheck, with lib.dom and with @types/web instead (on TypeScript 5 with
//       the custom condition the README gives for it), under NodeNext and Bundler resolution (and
//       node10 on TypeScript 5, through typesVersions);
//   (c) the README's browser example, built by Vite into a page, runs in Debian's Chromium on
//       SwiftShader (never a downloaded browser) and shows the reference's numbers.
// The clone borrows this checkout's node_modules (the build tools), and the install reaches the
// npm registry (or npm's cache) for `webgpu` as a user's would.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { format, promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceDropout } from '../src/reference.js';
import { CHROMIUM, CHROMIUM_ARGS, collectErrors, serve } from './browser/harness.js';

const root = join(import.meta.dirname, '..');
const run = promisify(execFile);

/** The child's environment without the npm_* variables of the `npm test` that started us. */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
const npmEnv = { ...cleanEnv, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv, timeout = 120_000): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, env, timeout, maxBuffer: 16 << 20 })).stdout;
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

/** The README's Install section: its install line, its two examples and the custom condition it
 * gives TypeScript 5 projects that use @types/web. */
function readmeInstall(): { install: string; browser: string; node: string; condition: string } {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Install\n');
  expect(start, 'README has an "## Install" section').toBeGreaterThan(0);
  const section = readme.slice(start + 1, readme.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
  const install = blocks
    .filter((b) => b.lang === 'sh')
    .flatMap((b) => b.code.split('\n'))
    .find((l) => l.startsWith('npm i'));
  const js = blocks.filter((b) => b.lang === 'js');
  const node = js.filter((b) => b.code.includes("from 'webgpu-dropout/node'"));
  const browser = js.filter((b) => b.code.includes('requestDropoutDevice()'));
  expect(install, 'an `npm i` line in the Install section').toBeDefined();
  expect([node.length, browser.length], 'one Node and one browser ```js example in the Install section').toEqual([1, 1]);
  const condition = section.match(/"customConditions": \["([^"]+)"\]/)?.[1];
  expect(condition, 'the Install section gives TypeScript 5 with @types/web its "customConditions"').toBeDefined();
  return { install: install!.trim(), node: node[0]!.code, browser: browser[0]!.code, condition: condition! };
}

const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
const want = Array.from(referenceDropout(x, { p: 0.5, seed: 42n }));

let work: string;
let consumer: string;
let readme: ReturnType<typeof readmeInstall>;
let tarballFiles: string[];
let tarballPath: string;
/** An exports target: a path, or conditions (`types@<6.0` nests one) mapping to targets. */
type Target = string | { [condition: string]: Target };
let packageJson: { exports: Record<string, Target> };
/** The TypeScript versions (b) checks, installed side by side under aliases while the tarball is packed. */
const typescripts = { '5.4': '5.4.5', '5.9': '5.9.3', '6': '6.0.3', '7': '7.0.2' } as const;
const tsAlias = (ts: string) => `ts${ts.replace('.', '')}`;
let compilersReady: Promise<string> | undefined;

beforeAll(async () => {
  readme = readmeInstall();
  work = mkdtempSync(join(tmpdir(), 'webgpu-dropout-package-'));
  // The compilers for (b), into one folder of their own (npm's cache makes a rerun quick), while
  // the clone is packed; (b) awaits them and reports a failure.
  const compilers = join(work, 'compilers');
  mkdirSync(compilers);
  writeFileSync(join(compilers, 'package.json'), JSON.stringify({ name: 'compilers', private: true }));
  const aliases = Object.entries(typescripts).map(([ts, v]) => `${tsAlias(ts)}@npm:typescript@${v}`);
  compilersReady = sh('npm', ['i', ...aliases], compilers, npmEnv, 240_000);
  compilersReady.catch(() => {});
  // A clean clone of HEAD, with the build tools borrowed from this checkout.
  let head: string;
  try {
    head = (await sh('git', ['rev-parse', 'HEAD'], root)).trim();
  } catch (e) {
    throw new Error(`this test packs a clean clone of HEAD, so it needs a git checkout: ${(e as Error).message}`);
  }
  const clone = join(work, 'clone');
  await sh('git', ['clone', '--quiet', '--no-checkout', root, clone], work);
  await sh('git', ['checkout', '--quiet', '--detach', head], clone);
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
  const tarball = join(
    work,
    (await sh('npm', ['pack', '--silent', '--pack-destination', work], clone, npmEnv, 180_000)).trim().split('\n').pop()!,
  );
  tarballPath = tarball;
  tarballFiles = (await sh('tar', ['tzf', tarball], work)).split('\n').filter(Boolean);
  packageJson = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8'));

  // A fresh consumer project, installed with the README's line.
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
  const words = readme.install.split(/\s+/);
  expect(words.slice(0, 2), `README install line ${JSON.stringify(readme.install)}`).toEqual(['npm', 'i']);
  expect(words).toContain('webgpu-dropout');
  expect(words, 'the install line brings Dawn for the Node entry point').toContain('webgpu');
  await sh(
    'npm',
    words.slice(1).map((w) => (w === 'webgpu-dropout' ? tarball : w)),
    consumer,
    npmEnv,
    180_000,
  );
}, 300_000);

afterAll(async () => {
  if (!work) return;
  await compilersReady?.catch(() => {}); // still running where (b) did not run
  try {
    unlinkSync(join(work, 'clone', 'node_modules')); // the link only, never this checkout's node_modules
  } catch {
    // not created
  }
  rmSync(work, { recursive: true, force: true });
}, 240_000);

describe('the package, packed from a clean clone and installed as the README says', () => {
  it('the tarball holds every file package.json exports, the licence and the design notes, and no sources or tests', () => {
    const files = new Set(tarballFiles.map((f) => f.replace(/^package\//, '')));
    const targets = (t: Target): string[] => (typeof t === 'string' ? [t] : Object.values(t).flatMap(targets));
    const exported = [...new Set(Object.values(packageJson.exports).flatMap(targets))];
    expect(exported.length).toBeGreaterThanOrEqual(4);
    for (const f of [...exported.map((p) => p.replace(/^\.\//, '')), 'LICENSE', 'README.md', 'docs/DESIGN.md', 'package.json']) {
      expect(files.has(f), `${f} in the tarball`).toBe(true);
    }
    expect([...files].filter((f) => /^(src|tests|bench|demo|scripts)\//.test(f))).toEqual([]);
  });

  it('(a) plain Node ESM runs the README example through both entry points and prints the CPU reference; require() is refused', async () => {
    writeFileSync(join(consumer, 'main.mjs'), readme.node);
    // Plain node, no loader; it must exit by itself (the example releases its device).
    const out = await sh(process.execPath, ['main.mjs'], consumer, cleanEnv, 60_000);
    expect(out).toBe(`${format(want)}\n${format(want)}\n`);
    expect(want.filter((v) => v === 0).length, 'p = 0.5 drops some of the 8').toBeGreaterThan(0);
    expect(
      want.some((v, i) => v === 2 * x[i]!),
      'and keeps some, scaled by 2',
    ).toBe(true);

    const required = await sh(process.execPath, ['-e', "require('webgpu-dropout')"], consumer).then(
      () => 'loaded',
      (e: Error) => e.message,
    );
    expect(required).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('(b) strict TypeScript 5.4, 5.9, 6 and 7 type-check the examples and a typed consumer file, with lib.dom or @types/web', async () => {
    writeFileSync(join(consumer, 'node-example.ts'), readme.node);
    writeFileSync(join(consumer, 'browser-example.ts'), readme.browser);
    writeFileSync(
      join(consumer, 'typed.ts'),
      `import { DropoutContext, PhiloxGenerator, dropout, type DropoutState } from 'webgpu-dropout';
import { requestNodeDevice, type NodeDevice } from 'webgpu-dropout/node';
import { referenceDropout } from 'webgpu-dropout/reference';
import { MLP, type Matrix } from 'webgpu-dropout/model';

// The WebGPU globals (GPUBuffer) come with TypeScript's lib.dom from 6.0 (or @types/web), and with
// the package's declarations before.
export async function forward(ctx: DropoutContext, x: GPUBuffer): Promise<{ y: GPUBuffer; state: DropoutState }> {
  const { output, state } = await dropout(ctx, x, { p: 0.1, generator: new PhiloxGenerator(1n) });
  return { y: output, state };
}
export const open: () => Promise<NodeDevice> = () => requestNodeDevice({ adapter: 'lavapipe' });
export const check = (x: Float32Array): Float32Array | Uint16Array => referenceDropout(x, { p: 0.5, seed: 1n });
export const train = (mlp: MLP, x: Matrix, y: Matrix) => mlp.trainStep(x, y, { loss: 'mse' });
// The declarations are real types, not any: an option the call does not take is an error.
// @ts-expect-error rate is not an option of dropout
export const misspelt = (ctx: DropoutContext, x: GPUBuffer) => dropout(ctx, x, { p: 0.1, rate: 0.1 });
`,
    );
    // @types/web in the consumer, for the cells that use it instead of lib.dom, while the
    // compilers' install (started with the pack) finishes.
    await Promise.all([compilersReady, sh('npm', ['i', '--no-save', '@types/web@0.0.359'], consumer, npmEnv, 120_000)]);
    const tsc = (ts: string) => join(work, 'compilers', 'node_modules', tsAlias(ts), 'bin', 'tsc');
    type Cell = { ts: keyof typeof typescripts; lib: 'dom' | 'web'; resolution: 'NodeNext' | 'Bundler' | 'Node10' };
    const cells: Cell[] = [
      ...(Object.keys(typescripts) as Cell['ts'][]).flatMap((ts) =>
        (['dom', 'web'] as const).flatMap((lib) => (['NodeNext', 'Bundler'] as const).map((resolution) => ({ ts, lib, resolution }))),
      ),
      { ts: '5.4', lib: 'dom', resolution: 'Node10' },
      { ts: '5.9', lib: 'dom', resolution: 'Node10' },
    ];
    const check = async ({ ts, lib, resolution }: Cell): Promise<string> => {
      const config = `tsconfig.${ts}.${lib}.${resolution.toLowerCase()}.json`;
      const compilerOptions = {
        strict: true,
        skipLibCheck: false,
        target: 'ES2022',
        noEmit: true,
        module: resolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
        moduleResolution: resolution,
        lib: lib === 'dom' ? ['ES2022', 'DOM'] : ['ES2022'],
        types: lib === 'dom' ? [] : ['web'],
        // @types/web has its own WebGPU types, which TypeScript 5 would otherwise also get from
        // @webgpu/types through the package's types@<6.0 declarations.
        ...(lib === 'web' && ts.startsWith('5.') ? { customConditions: [readme.condition] } : {}),
      };
      writeFileSync(
        join(consumer, config),
        JSON.stringify({ compilerOptions, files: ['node-example.ts', 'browser-example.ts', 'typed.ts'] }),
      );
      const out = await sh(process.execPath, [tsc(ts), '-p', config], consumer).then(
        () => '',
        (e: Error) => e.message,
      );
      return `TypeScript ${typescripts[ts]}, ${lib === 'dom' ? 'lib.dom' : '@types/web'}, ${resolution}: ${out ? out.slice(0, 2000) : 'ok'}`;
    };
    // As many compilers at a time as there are cores.
    const results: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: availableParallelism() }, async () => {
        while (next < cells.length) {
          const i = next++;
          results[i] = await check(cells[i]!);
        }
      }),
    );
    expect(results.filter((r) => !r.endsWith(': ok'))).toEqual([]);
    expect(results).toHaveLength(18);
  }, 300_000);

  it('publint and attw (the esm-only profile: require() is refused on purpose) find nothing to fix in the tarball', async () => {
    const bin = (name: string) => join(root, 'node_modules', '.bin', name);
    await sh(bin('attw'), [tarballPath, '--profile', 'esm-only'], work);
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    await sh('tar', ['xzf', tarballPath, '-C', unpacked], work);
    const lint = await sh(bin('publint'), [join(unpacked, 'package'), '--strict'], work, npmEnv);
    expect(lint).toContain('All good');
  });

  it('(c) the README browser example, bundled by Vite, runs in Chromium on SwiftShader', async () => {
    const page = join(consumer, 'web');
    mkdirSync(page);
    writeFileSync(join(page, 'main.js'), readme.browser);
    writeFileSync(
      join(page, 'index.html'),
      '<!doctype html><html><head><meta charset="utf-8"><title>consumer</title><link rel="icon" href="data:,"></head><body><script type="module" src="./main.js"></script></body></html>\n',
    );
    const site = join(consumer, 'site');
    const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
    await sh(process.execPath, [vite, 'build', page, '--outDir', site, '--emptyOutDir', '--base', './', '--logLevel', 'warn'], consumer);

    const { url, server } = await serve(site);
    const browser = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: false,
      args: CHROMIUM_ARGS,
    });
    try {
      const tab = await browser.newPage();
      const errors = collectErrors(tab);
      await tab.goto(url);
      await tab
        .waitForFunction(() => (document.body.textContent ?? '').trim().length > 0, undefined, { timeout: 60_000, polling: 100 })
        .catch((e: Error) => {
          throw new Error(`the page showed nothing: ${e.message}; page errors: ${errors.join(' | ') || 'none'}`);
        });
      expect((await tab.locator('body').textContent())?.trim()).toBe(want.join(' '));
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await new Promise<void>((done) => server.close(() => done()));
    }
  });
});
