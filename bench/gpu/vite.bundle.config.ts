// Bundles bench/run.ts (library, WGSL sources and TensorFlow.js included) into one ES module for
// the GPU recipe's bundle (bench/gpu/prepare.sh), which runs without node_modules: only 'webgpu'
// (native) stays external, and the bundle brings that package itself.
import { defineConfig } from 'vite';

export default defineConfig({
  logLevel: 'warn',
  build: {
    ssr: 'bench/run.ts',
    outDir: '.gpu-bundle/bench',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    rollupOptions: { output: { format: 'es', entryFileNames: 'run.mjs', codeSplitting: false } },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
