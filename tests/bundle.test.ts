// @vitest-environment node
// What a browser app pays for the library. The README's browser example (its Install section) is
// bundled by Vite in production mode (minified) against the source tree, with the library build's
// WGSL plugin (vite.lib.config.ts), and its JavaScript must stay within a byte budget; the WGSL in
// it has no comments but keeps the section markers, and the benchmark's shaders are not in it.
// The comment strip itself is checked on every file of shaders/: the same tokens in each part the
// composer (src/kernels/shaders.ts) cuts a file into, the same markers in the same order, so every
// composed module is the same program.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerShader, shaderSource, shaderSources } from '../src/kernels/shaders.js';
import { stripWgsl, wgslStrip } from '../vite.lib.config.js';

const root = join(import.meta.dirname, '..');

/**
 * Budget of the example's minified JavaScript, in bytes, and of its gzip: a little above what was
 * measured when it was set (73,656 and 22,964 bytes, the model kit's WGSL left out). A change that
 * grows the bundle past it should be deliberate: raise the budget with the reason.
 */
const BUDGET = { minified: 75_000, gzip: 23_500 };

/** The README's browser example: the ```js block of its Install section that calls requestDropoutDevice(). */
function readmeBrowserExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Install\n');
  expect(start, 'README has an "## Install" section').toBeGreaterThan(0);
  const section = readme.slice(start + 1, readme.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].filter(
    (m) => m[1] === 'js' && m[2]!.includes('requestDropoutDevice()'),
  );
  expect(blocks, 'one browser ```js example in the Install section').toHaveLength(1);
  return blocks[0]![2]!;
}

/** The shader files of the source tree, by file name. */
const shaderFiles = new Map(
  readdirSync(join(root, 'shaders'))
    .filter((f) => f.endsWith('.wgsl'))
    .map((f) => [f, readFileSync(join(root, 'shaders', f), 'utf8')] as const),
);

/** The marker lines the composer cuts files at (`// ==== kernel <name>`, `// ==== storage <dtype>`). */
const MARKER = /^\/\/ ==== (kernel|storage) (\w+)[^\n]*\n/gm;
const markers = (code: string): string[] => [...code.matchAll(MARKER)].map((m) => `${m[1]} ${m[2]}`);
/** The parts the composer cuts a file into: the text before the first marker, then each marker's section. */
const parts = (code: string): string[] => {
  const at = [...code.matchAll(MARKER)].map((m) => m.index);
  return [0, ...at].map((start, i) => code.slice(start, at[i] ?? code.length));
};
/** The tokens of WGSL that has no block comments, as far as whitespace separates them. */
const tokens = (code: string): string[] =>
  code
    .replace(/\/\/[^\n]*/g, ' ')
    .split(/\s+/)
    .filter(Boolean);

describe('stripWgsl', () => {
  it('drops line and (nested) block comments, trailing blanks and blank lines; keeps the markers and the tokens apart', () => {
    expect(stripWgsl('// header\n\nconst A: u32 = 1u; // one\n\n\n  let b = A;   \n')).toBe('const A: u32 = 1u;\n  let b = A;\n');
    expect(stripWgsl('a/* x */b\nc /* outer /* inner */ still // comment */ d\ne/* // */f\n')).toBe('a b\nc   d\ne f\n');
    expect(stripWgsl('x /* spans\nlines */ y\r\nz // end\r\n')).toBe('x   y\nz\n');
    expect(stripWgsl('common\n// ==== kernel forward (the forward)\nfn f() {}\n  // ==== kernel indented is a comment\n')).toBe(
      'common\n// ==== kernel forward\nfn f() {}\n',
    );
    expect(stripWgsl('// ==== storage f16\n/* only */\n// comments\n')).toBe('// ==== storage f16\n');
    expect(stripWgsl('// nothing but comments\n')).toBe('');
    expect(() => stripWgsl('a /* open /* nested */ b\n')).toThrow(/unterminated/);
  });

  for (const [file, source] of shaderFiles) {
    it(`shaders/${file}: the same tokens in every part the composer cuts it into, no comments left`, () => {
      expect(source, 'no block comments: the token check below reads line comments only').not.toContain('/*');
      const stripped = stripWgsl(source);
      expect(markers(stripped)).toEqual(markers(source));
      const before = parts(source);
      const after = parts(stripped);
      expect(after).toHaveLength(before.length);
      for (let i = 0; i < before.length; i++) expect(tokens(after[i]!), `part ${i}`).toEqual(tokens(before[i]!));
      for (const line of stripped.split('\n').slice(0, -1)) {
        expect(line.trim(), 'no blank line').not.toBe('');
        expect(line, 'no trailing blank').toBe(line.trimEnd());
        if (line.includes('//')) expect(line).toMatch(/^\/\/ ==== (kernel|storage) \w+$/);
      }
      expect(stripWgsl(stripped)).toBe(stripped);
    });
  }

  it('shrinks the shaders, printing by how much', () => {
    const raw = [...shaderFiles.values()].reduce((n, s) => n + s.length, 0);
    const stripped = [...shaderFiles.values()].reduce((n, s) => n + stripWgsl(s).length, 0);
    console.log(`shaders/*.wgsl: ${raw} characters, ${stripped} without comments and blank lines`);
    expect(stripped).toBeLessThan(raw * 0.8);
  });
});

describe("the library's shader files", () => {
  it('leave out the benchmark-only shaders, which the bench registers itself', () => {
    const benchStages = shaderFiles.get('bench_stages.wgsl')!;
    expect(Object.keys(shaderSources)).not.toContain('benchStages');
    expect(Object.values(shaderSources)).not.toContain(benchStages);
    expect(() => shaderSource('benchStages' as never)).toThrow(/registerShader/);
    const name = registerShader('benchStages', benchStages);
    expect(shaderSource(name)).toBe(benchStages);
    expect(registerShader('benchStages', benchStages)).toBe(name);
    expect(() => registerShader('philox', benchStages)).toThrow(/already registered/);
  });
});

describe("the README's browser example, bundled for production", () => {
  let work: string;
  let js: string;
  let sizes: { minified: number; gzip: number };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'webgpu-dropout-bundle-'));
    const page = join(work, 'page');
    mkdirSync(page);
    writeFileSync(join(page, 'main.js'), readmeBrowserExample());
    writeFileSync(join(page, 'index.html'), '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>\n');
    const out = join(work, 'site');
    await build({
      configFile: false,
      root: page,
      mode: 'production',
      logLevel: 'warn',
      plugins: [wgslStrip()],
      resolve: { alias: [{ find: /^webgpu-dropout$/, replacement: join(root, 'src', 'index.ts') }] },
      build: { outDir: out, emptyOutDir: true, minify: true },
    });
    const assets = join(out, 'assets');
    const files = readdirSync(assets).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(0);
    js = files.map((f) => readFileSync(join(assets, f), 'utf8')).join('\n');
    const bytes = Buffer.from(js);
    sizes = { minified: bytes.length, gzip: gzipSync(bytes).length };
    console.log(
      `README browser example, minified: ${sizes.minified} bytes (budget ${BUDGET.minified}), gzip: ${sizes.gzip} bytes (budget ${BUDGET.gzip})`,
    );
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('stays within the byte budget', () => {
    expect(sizes.minified).toBeLessThanOrEqual(BUDGET.minified);
    expect(sizes.gzip).toBeLessThanOrEqual(BUDGET.gzip);
  });

  it('holds its WGSL without comments, with the section markers, and without the benchmark-only shaders', () => {
    // Minified strings hold line breaks as they are (template literals) or escaped.
    expect(js.includes('fn philox4x32_10('), 'the WGSL is in the bundle').toBe(true);
    expect(/\/\/ ==== kernel forward(\n|\\n)/.test(js), 'a section marker, kept').toBe(true);
    expect(js.includes('stage_no_rng'), 'a benchmark-only kernel').toBe(false);
    // No comment of any shader file: their longer ones, which could not occur by chance.
    const comments = [...shaderFiles.values()].flatMap((s) => [...s.matchAll(/\/\/ ([^\n]{30,})/g)].map((m) => m[1]!));
    expect(comments.length).toBeGreaterThan(50);
    expect(comments.filter((c) => js.includes(c))).toEqual([]);
  });
});
