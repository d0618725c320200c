// Library build: ESM in dist/ with the WGSL inlined (the `?raw` imports, without their comments:
// see wgslStrip), Node built-ins external. The shaders/ folder of the package keeps its comments.
import { readFile } from 'node:fs/promises';
import { defineConfig, type Plugin } from 'vite';

/** A section marker of src/kernels/shaders.ts (`// ==== kernel <name>`, `// ==== storage <dtype>`),
 * which splits a file into the parts a module is composed of. */
const MARKER = /^\/\/ ==== (?:kernel|storage) \w+/;
/** WGSL's line breaks. */
const LINE_BREAK = /\r\n|[\n\r\v\f\u0085\u2028\u2029]/;

/**
 * `source` without its comments, trailing blanks and blank lines; the section markers stay (the
 * marker and its name, at the start of their line). WGSL has no string literals, so `//` and `/*`
 * always start a comment outside another one; a line comment ends at the line break, block
 * comments nest, and a block comment leaves a space, since a comment may separate two tokens.
 * Nothing else changes: the token sequence, and so the module the composer builds, is the same.
 */
export function stripWgsl(source: string): string {
  let out = '';
  let i = 0;
  while (i < source.length) {
    if (source.startsWith('//', i)) {
      let end = i;
      while (end < source.length && !LINE_BREAK.test(source[end]!)) end++;
      const marker = i === 0 || LINE_BREAK.test(source[i - 1]!) ? MARKER.exec(source.slice(i, end)) : null;
      if (marker) out += marker[0];
      i = end;
    } else if (source.startsWith('/*', i)) {
      let depth = 0;
      do {
        if (source.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (source.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else if (i < source.length) {
          i++;
        } else {
          throw new Error('unterminated block comment in WGSL');
        }
      } while (depth > 0);
      out += ' ';
    } else {
      out += source[i];
      i++;
    }
  }
  const lines = out
    .split(LINE_BREAK)
    .map((line) => line.replace(/[ \t]+$/, ''))
    .filter((line) => line.length > 0);
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** `*.wgsl?raw` imports load as their text through stripWgsl (in place of Vite's own `?raw` load). */
export function wgslStrip(): Plugin {
  return {
    name: 'webgpu-dropout:wgsl-strip',
    enforce: 'pre',
    load: {
      filter: { id: /\.wgsl\?raw$/ },
      async handler(id) {
        const file = id.slice(0, -'?raw'.length);
        this.addWatchFile(file);
        const code = stripWgsl(await readFile(file, 'utf8'));
        return { code: `export default ${JSON.stringify(code)};`, map: { mappings: '' }, moduleType: 'js' };
      },
    },
  };
}

export default defineConfig({
  plugins: [wgslStrip()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    sourcemap: true,
    lib: {
      entry: {
        index: 'src/index.ts',
        node: 'src/node.ts',
        reference: 'src/reference.ts',
        model: 'src/model.ts',
        tfjs: 'src/tfjs.ts',
        'tfjs-layers': 'src/tfjs-layers.ts',
      },
      formats: ['es'],
    },
    rollupOptions: {
      external: [/^node:/, 'webgpu', /^@tensorflow\//],
    },
  },
});
