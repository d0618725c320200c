import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // A test file whose main thread stops answering (a native deadlock) is killed and failed with
    // its name (tests/watchdog.ts); a slow one is left to testTimeout.
    setupFiles: ['tests/watchdog.ts'],
    // Each file gets its own process (Dawn is native); the software adapter uses every core anyway.
    pool: 'forks',
    maxWorkers: 2,
  },
});
