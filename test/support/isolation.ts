// Which test files keep a fresh module state (vitest.config.ts's 'isolated' project) and which
// share one per worker ('shared': isolate false, modules evaluated once per worker instead of once
// per file, ~2 CPU s a file; docs/TESTING-TIME.md, round 22). Read by vitest.config.ts and checked
// by test/support/isolation.test.ts, so a new file that needs isolation cannot land in 'shared'.

/** Each isolated file with the reason it cannot share a worker's modules. */
export const ISOLATED_FILES: Readonly<Record<string, string>> = {
  // vi.mock applies only to a module not yet evaluated in the worker: after another file loaded
  // the real src/cli/run-kernel.js the mock would not apply (round 21: three json tests failed
  // after test/repl/session.test.ts), and the mock would stay in place for the files after it.
  'test/cli/json.test.ts': 'vi.mock replaces src/cli/run-kernel.js',
  'test/cli/exit-codes.test.ts': 'vi.mock replaces src/cli/run-kernel.js',
  'test/cli/progress.test.ts': 'vi.mock replaces src/cli/run-kernel.js',
};

/**
 * Calls whose effect outlives the file when modules are shared: module mocks (applied per module
 * registry, not per file) and stubs vitest does not undo by default (unstubEnvs/unstubGlobals are
 * off). vi.spyOn needs no isolation: vitest restores every spy after each file in either mode.
 */
export const NEEDS_FRESH_MODULES =
  /\bvi\s*\.\s*(mock|doMock|unmock|doUnmock|stubGlobal|stubEnv|resetModules)\s*\(/;
