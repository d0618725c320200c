// Library build: ESM in dist/ with the WGSL inlined (the `?raw` imports), Node built-ins external.
import { defineConfig } from 'vite';

export default defineConfig({
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
