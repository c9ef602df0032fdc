// scripts/long-functions.mjs: the report of functions over a line budget, run on a fixture whose
// functions have known spans — a declaration, a class method and constructor, an arrow function
// assigned to a const, a callback, and a nested function listed on its own as well as inside its
// parent — so each kind of function and the longest-first order can fail separately.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '../../scripts/long-functions.mjs');

/** `lines` lines of statements, so a function's span is its header, these and its closing brace. */
const body = (lines: number): string =>
  Array.from({ length: lines }, (_, i) => `  const v${i} = ${i};`).join('\n');

const fixture = [
  `export function declared(): void {\n${body(8)}\n}`, // line 1, 10 lines
  `class Box {\n  constructor() {\n${body(4)}\n  }\n  method(): void {\n${body(6)}\n  }\n}`, // class 11..26
  `const arrow = (): void => {\n${body(5)}\n};`, // line 27, 7 lines
  `[1].forEach(() => {\n${body(3)}\n});`, // line 34, 5 lines
  `function outer(): void {\n  function inner(): void {\n${body(4)}\n  }\n${body(2)}\n}`, // line 39, 10 lines
].join('\n');

const dir = mkdtempSync(join(tmpdir(), 'long-functions-'));
const file = join(dir, 'sample.ts');
writeFileSync(file, fixture + '\n');
writeFileSync(join(dir, 'types.d.ts'), `export declare function ignored(): void;\n`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Found {
  readonly file: string;
  readonly line: number;
  readonly lines: number;
  readonly name: string;
}

const report = (...args: string[]): Found[] =>
  JSON.parse(execFileSync('node', [script, '--json', ...args], { encoding: 'utf8' })) as Found[];

describe('long-functions', () => {
  it('lists every kind of function with its first line and span, longest first', () => {
    const found = report('--min', '1', dir).map(({ line, lines, name }) => ({ line, lines, name }));
    expect(found).toEqual([
      { line: 1, lines: 10, name: 'declared' },
      { line: 39, lines: 10, name: 'outer' },
      { line: 18, lines: 8, name: 'Box.method' },
      { line: 27, lines: 7, name: 'arrow' },
      { line: 12, lines: 6, name: 'Box.constructor' },
      { line: 40, lines: 6, name: 'inner' },
      { line: 34, lines: 5, name: '(callback to [1].forEach)' },
    ]);
  });

  it('keeps only functions of at least --min lines, and skips .d.ts files', () => {
    expect(report('--min', '8', dir).map((f) => f.name)).toEqual(['declared', 'outer', 'Box.method']);
    expect(report('--min', '1', dir).every((f) => f.file === file)).toBe(true);
  });

  it('prints LINES FILE:LINE NAME lines, the file relative to the working directory, without --json', () => {
    const text = execFileSync('node', [script, '--min', '10', 'sample.ts'], { cwd: dir, encoding: 'utf8' });
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)),
    ).toEqual([
      ['10', 'sample.ts:1', 'declared'],
      ['10', 'sample.ts:39', 'outer'],
    ]);
  });

  it('refuses a --min that is not a positive integer, naming it', () => {
    const run = spawnSync('node', [script, '--min', 'ten', dir], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--min expects a positive integer, got `ten`');
  });

  it('exits quietly with status 0 when its reader goes away (`| head`)', () => {
    // 5000 one-line functions, one write each: far more than `head -c 1` reads before it exits.
    const many = join(dir, 'many');
    mkdirSync(many);
    writeFileSync(
      join(many, 'many.ts'),
      Array.from({ length: 5000 }, (_, i) => `function f${i}() {}`).join('\n'),
    );
    const pipe = 'node "$0" --min 1 "$1" | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}"';
    const run = spawnSync('bash', ['-c', pipe, script, many], { encoding: 'utf8' });
    expect([run.stdout.trim(), run.stderr]).toEqual(['0', '']);
  });
});
