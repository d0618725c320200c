import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Each file gets its own process (Dawn is native); the software adapter uses every core anyway.
    pool: 'forks',
    maxWorkers: 2,
  },
});
