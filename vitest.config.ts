import { defineConfig } from 'vitest/config';
import { ISOLATED_FILES } from './test/support/isolation.js';

const isolated = Object.keys(ISOLATED_FILES);

export default defineConfig({
  test: {
    setupFiles: [
      'test/support/fast-check-seed.ts',
      'test/support/timeouts.ts',
      'test/support/pipeline-log.ts',
    ],
    // One compile cache per run, shared by the test files: nvcc and g++ of a repeated
    // translation unit become free (test/support/compile-cache.ts).
    globalSetup: ['test/support/compile-cache-setup.ts'],
    // GPU tests share one Dawn device per process; lavapipe is CPU-bound on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Most files share each worker's module state (no fresh fork and no re-evaluation of src/ per
    // file); the files test/support/isolation.ts lists, with why, keep a fresh one. vitest still
    // re-runs the setup files, resets vi.setConfig and restores spies after each file.
    projects: [
      {
        extends: true,
        test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: isolated, isolate: false },
      },
      { extends: true, test: { name: 'isolated', include: isolated, isolate: true } },
    ],
  },
});
