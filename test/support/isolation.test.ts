// The shared-module project (vitest.config.ts) is only sound for files that leave no module state
// behind: a new test file that mocks a module must fail here, not silently pass or fail elsewhere
// depending on which files ran before it in the same worker.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import config from '../../vitest.config.js';
import { ISOLATED_FILES, NEEDS_FRESH_MODULES } from './isolation.js';

/** Every .ts file under test/, as a repository-relative path with forward slashes. */
function testSources(dir = 'test'): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return testSources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

// This file and isolation.ts name the calls in order to find them.
const GUARD = new Set(['test/support/isolation.ts', 'test/support/isolation.test.ts']);

describe('test isolation (vitest projects)', () => {
  it('the pattern finds the calls that need a fresh module state, and not vi.spyOn', () => {
    const call = (name: string) => ['vi', name].join('.') + "('../x.js')";
    for (const name of ['mock', 'doMock', 'unmock', 'stubGlobal', 'stubEnv', 'resetModules']) {
      expect(call(name)).toMatch(NEEDS_FRESH_MODULES);
    }
    expect(call('spyOn')).not.toMatch(NEEDS_FRESH_MODULES);
    expect(call('hoisted')).not.toMatch(NEEDS_FRESH_MODULES);
  });

  it('every file that mocks modules or stubs globals is listed as isolated', () => {
    const needing = testSources()
      .filter((f) => !GUARD.has(f) && NEEDS_FRESH_MODULES.test(readFileSync(f, 'utf8')))
      .sort();
    expect(needing.length).toBeGreaterThan(0);
    const unlisted = needing.filter((f) => !(f in ISOLATED_FILES));
    // A file here: add it to ISOLATED_FILES in test/support/isolation.ts, saying why.
    expect(unlisted).toEqual([]);
  });

  it('every isolated file exists and says why it is isolated', () => {
    for (const [file, why] of Object.entries(ISOLATED_FILES)) {
      expect(existsSync(join(file)), file).toBe(true);
      expect(why.length, file).toBeGreaterThan(10);
    }
  });

  it('the config keeps the isolated files out of the shared project and isolates them', () => {
    const projects = config.test?.projects as {
      test: { name: string; isolate: boolean; include: string[]; exclude?: string[] };
    }[];
    const byName = Object.fromEntries(projects.map((p) => [p.test.name, p.test]));
    const isolated = Object.keys(ISOLATED_FILES);
    expect(byName.shared).toMatchObject({ isolate: false, exclude: isolated });
    expect(byName.isolated).toMatchObject({ isolate: true, include: isolated });
  });
});
