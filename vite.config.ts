// The demo page: `npm run demo` serves index.html (which imports the library's TypeScript sources
// and WGSL directly); `npm run build:demo` writes static files to dist-demo/. The library build
// has its own config (vite.lib.config.ts).
import { defineConfig } from 'vite';

export default defineConfig({
  // Relative asset URLs, so the built page works from any directory or sub-path.
  base: './',
  build: {
    outDir: 'dist-demo',
    emptyOutDir: true,
    target: 'es2022',
  },
  // Loopback only: WebGPU needs a secure context, which localhost is.
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
