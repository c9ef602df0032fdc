// The compile cache (compile-cache.ts): a repeated compile of identical input is replayed, and
// anything that changes the output (source, an included header, a flag) misses.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir, planCompile } from './compile-cache.js';
import { run } from '../cuda/support.js';

const program = `#include "answer.h"\n#include <cstdio>\nint main() { printf("%d\\n", ANSWER); }\n`;

/** A scratch directory holding main.cpp and answer.h (ANSWER defined as `answer`). */
function sourceDir(answer: number, subdir = false): string {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-cache-test-'));
  const headers = subdir ? join(dir, 'inc') : dir;
  mkdirSync(headers, { recursive: true });
  writeFileSync(join(headers, 'answer.h'), `#define ANSWER ${answer}\n`);
  writeFileSync(join(dir, 'main.cpp'), program);
  return dir;
}

/** Compiles and runs main.cpp of `dir`; returns whether the compile was a cache hit and the output. */
async function compileAndRun(dir: string, flags: readonly string[] = []): Promise<string> {
  const exe = join(dir, 'main');
  const r = await run('g++', ['-O0', ...flags, join(dir, 'main.cpp'), '-o', exe]);
  expect(r.code, r.stderr).toBe(0);
  return (await run(exe, [])).stdout.trim();
}

const logged = (log: string) =>
  readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { hit: boolean; key?: string });

describe('compile cache', () => {
  it('is on in every test worker (the global setup names a fresh directory)', () => {
    // A fresh directory per run, or the one ATTNC_COMPILE_CACHE names.
    expect(cacheDir()).toBeTruthy();
    expect(existsSync(cacheDir()!)).toBe(true);
  });

  it('replays an identical compile from another directory, and misses on any change', async () => {
    const log = join(mkdtempSync(join(tmpdir(), 'attnc-cache-log-')), 'log');
    // A run-wide log (ATTNC_COMPILE_LOG set for the whole suite) is restored after: workers share
    // this process with the files after this one.
    const runLog = process.env.ATTNC_COMPILE_LOG;
    process.env.ATTNC_COMPILE_LOG = log;
    try {
      const salt = `-DSALT_${process.pid}_${Date.now()}`; // fresh keys whatever ran before in this run
      expect(await compileAndRun(sourceDir(1), [salt])).toBe('1');
      expect(await compileAndRun(sourceDir(1), [salt])).toBe('1'); // the replayed executable runs
      expect(await compileAndRun(sourceDir(2), [salt])).toBe('2'); // another header
      expect(await compileAndRun(sourceDir(1), [salt, '-DUNUSED'])).toBe('1'); // another flag
      const inc = sourceDir(3, true);
      expect(await compileAndRun(inc, [salt, `-I${join(inc, 'inc')}`])).toBe('3'); // found through -I
      expect(logged(log).filter((l) => l.key === undefined)).toEqual([]);
      expect(logged(log).map((l) => l.hit)).toEqual([false, true, false, false, false]);
    } finally {
      if (runLog === undefined) delete process.env.ATTNC_COMPILE_LOG;
      else process.env.ATTNC_COMPILE_LOG = runLog;
    }
  });

  it('does not cache a failed compile, nor a source whose includes it cannot follow', async () => {
    const dir = sourceDir(1);
    writeFileSync(join(dir, 'bad.cpp'), 'int main() { return undefined_name; }\n');
    for (let i = 0; i < 2; i++)
      expect((await run('g++', [join(dir, 'bad.cpp'), '-o', join(dir, 'bad')])).code).not.toBe(0);
    writeFileSync(join(dir, 'macro.cpp'), '#define H "answer.h"\n#include H\nint main() {}\n');
    expect(planCompile('g++', [join(dir, 'macro.cpp'), '-o', join(dir, 'm')], dir)).toBeUndefined();
    expect(planCompile('g++', ['-MD', join(dir, 'main.cpp'), '-o', join(dir, 'm')], dir)).toBeUndefined();
    expect(planCompile('g++', [join(dir, 'main.cpp'), '-o', join(dir, 'm')], dir)).toBeDefined();
  });
});
