import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/fast-check-seed.ts', 'test/support/timeouts.ts'],
    // One compile cache per run, shared by the test files: nvcc and g++ of a repeated
    // translation unit become free (test/support/compile-cache.ts).
    globalSetup: ['test/support/compile-cache-setup.ts'],
    // GPU tests share one Dawn device per process; lavapipe is CPU-bound on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
