// `attnc run` / `attnc viz` refuse param values the kernel cannot hold (int32 wrap, f32 overflow,
// wrong type) and slice indices past the sizes drawn, each as a one-line error naming the flag or
// param, its type and the value (issue #9 items 4, 6). Runs the built CLI; `run` needs WebGPU
// (node scripts/with-gpu.mjs), which it reaches only after compiling.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseParamAssignments } from '../../src/cli/check-command.js';
import { positiveInt, seedFlag } from '../../src/cli/compile-flags.js';
import { UsageError } from '../../src/cli/errors.js';
import { paramValue } from '../../src/cli/repl/settings.js';
import { runKernel } from '../../src/cli/run-kernel.js';
import { vizCommand } from '../../src/cli/viz-command.js';

const cli = 'dist/src/cli/main.js';
const attnc = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, err: r.stderr };
};
/** The CLI's own lines (Dawn prints adapter warnings of its own). */
const attncLines = (err: string): string[] => err.split('\n').filter((l) => l.startsWith('attnc'));

const INT = 'expected an integer in [-2147483648, 2147483647]';
const F32 = 'expected a finite number within f32 range (|x| < 3.4028235e38)';

describe('attnc run --param', () => {
  it.each([
    ['window=1e40', `attnc: --param "window" (i32): ${INT}, got number 1e+40`],
    ['window=1.5', `attnc: --param "window" (i32): ${INT}, got number 1.5`],
    ['window=true', `attnc: --param "window" (i32): ${INT}, got boolean true`],
    ['window=2147483648', `attnc: --param "window" (i32): ${INT}, got number 2147483648`],
  ])('sliding_window %s: one line, exit 1', (param, line) => {
    const r = attnc('run', 'stdlib/sliding_window.attn', '--nq', '8', '--nk', '8', '--param', param);
    expect(attncLines(r.err)).toEqual([line]);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(1);
  });

  it('a bool param left at its default runs (its default reached run() as the number 1)', async () => {
    // `attnc run` (and the REPL's :run) said 'param "wide" (bool): expected true or false, got
    // number 1' for any kernel with a bool default unless --param gave it.
    const source = 'attention flagged(wide: bool = true, w: int = 2) { mask wide ? q - k < 4 : q - k < w }';
    const sizes = { B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8, D: 16 };
    const run = (params: Record<string, boolean>) =>
      runKernel(source, { ...sizes, file: 'flagged.attn', dtype: 'f32', params, seed: 1, repeats: 1 });
    for (const r of [await run({}), await run({ wide: false })])
      expect(r.out.relError).toBeLessThan(r.tolerance);
  });

  it('an f32 param that rounds to Infinity is refused, not run as +Inf', () => {
    const r = attnc('run', 'stdlib/softcap.attn', '--nq', '8', '--nk', '8', '--param', 'cap=1e40');
    expect(attncLines(r.err)).toEqual([`attnc: --param "cap" (f32): ${F32}, got number 1e+40`]);
    expect(r.code).toBe(1);
  });
});

describe('--seed', () => {
  it('takes every seed the generator tells apart: 0 to 2^32 - 1', () => {
    // 0 was refused (":set seed=0" took it) and 4294967297 ran seed 1's inputs (rng's seed >>> 0).
    expect(seedFlag(undefined, 1)).toBe(1);
    expect(seedFlag('0', 1)).toBe(0);
    expect(seedFlag('4294967295', 1)).toBe(4294967295);
    for (const bad of ['4294967296', '-1', '1.5', 'x'])
      expect(() => seedFlag(bad, 1)).toThrow(
        new UsageError(`--seed expects an integer in [0, 4294967295], got \`${bad}\``),
      );
  });
});

describe('--param parsing', () => {
  it('a blank value is no number (Number(" ") is 0)', () => {
    expect(() => parseParamAssignments(['window= '])).toThrow(
      '--param window: ` ` is not a decimal number or true/false',
    );
    expect(parseParamAssignments(['window=-3', 'on=true'])).toEqual({ window: -3, on: true });
  });

  it('keeps `__proto__=3` as a name, so the unknown param is named, not silently dropped', () => {
    // Assigned into `{}`, it set the object's prototype: attnc run went on without a word.
    expect(Object.keys(parseParamAssignments(['__proto__=3', 'constructor=1']))).toEqual([
      '__proto__',
      'constructor',
    ]);
  });
});

describe("the REPL's :set", () => {
  it('refuses what would wrap or overflow, with the runtime words', () => {
    expect(() => paramValue({ name: 'window', dtype: 'i32' }, '4294967298')).toThrow(
      `param "window" (i32): ${INT}, got number 4294967298`,
    );
    expect(() => paramValue({ name: 'cap', dtype: 'f32' }, '1e39')).toThrow(
      `param "cap" (f32): ${F32}, got number 1e+39`,
    );
    expect(paramValue({ name: 'cap', dtype: 'f32' }, '-2.5')).toBe(-2.5);
  });
});

describe('attnc viz', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-viz-values-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const source = readFileSync('stdlib/sliding_window.attn', 'utf8');
  const viz = (flags: Record<string, string>, params: Record<string, number | boolean>) => () =>
    vizCommand(source, 'sw.attn', { out: join(dir, 'm.svg'), nq: '8', nk: '8', ...flags }, params);

  it('refuses a param that would wrap (it drew window=2 for 4294967298)', () => {
    expect(viz({}, { window: 4294967298 })).toThrow(
      new UsageError(`viz: --param "window" (i32): ${INT}, got number 4294967298`),
    );
    expect(viz({}, { window: true })).toThrow(/--param "window" \(i32\)/);
  });

  it('refuses a head or batch index outside the sizes drawn, naming the flag and the range', () => {
    expect(viz({ head: '99' }, {})).toThrow(
      new UsageError('--head expects an index in [0, 0] (--heads 1), got `99`'),
    );
    expect(viz({ head: '4', heads: '4' }, {})).toThrow(
      '--head expects an index in [0, 3] (--heads 4), got `4`',
    );
    expect(viz({ 'batch-index': '7' }, {})).toThrow(
      new UsageError('--batch-index expects an index in [0, 0] (viz draws a batch of 1), got `7`'),
    );
    expect(viz({ head: '3', heads: '4' }, {})()).toBe(0);
  });

  // run's and the REPL's --batch is the batch size; viz's was the slice index. --batch-index names
  // the index; viz's --batch stays its old spelling, so scripts that pass it keep working.
  it('viz --batch is the old spelling of --batch-index: same index, same check; not both', () => {
    expect(viz({ 'batch-index': '0' }, {})()).toBe(0);
    expect(viz({ batch: '0' }, {})()).toBe(0);
    expect(viz({ batch: '7' }, {})).toThrow(
      new UsageError('--batch expects an index in [0, 0] (viz draws a batch of 1), got `7`'),
    );
    expect(viz({ batch: '0', 'batch-index': '0' }, {})).toThrow(
      new UsageError(
        'viz: --batch-index and --batch are both given (--batch is the old spelling of --batch-index here)',
      ),
    );
  });

  it('the built CLI takes viz --batch-index and lists it in viz --help; run does not take it', () => {
    const svg = join(dir, 'b.svg');
    expect(
      attnc('viz', 'stdlib/causal.attn', '--out', svg, '--nq', '8', '--nk', '8', '--batch-index', '0').code,
    ).toBe(0);
    expect(
      attnc('viz', 'stdlib/causal.attn', '--out', svg, '--nq', '8', '--nk', '8', '--batch', '0').code,
    ).toBe(0);
    const help = spawnSync(process.execPath, [cli, 'viz', '--help'], { encoding: 'utf8' }).stdout;
    expect(help).toContain('[--batch-index I]');
    expect(help).not.toContain('[--batch I]');
    expect(attncLines(attnc('run', 'stdlib/causal.attn', '--batch-index', '0').err)[0]).toBe(
      'attnc: run does not take --batch-index',
    );
  });
});

describe('integer flags take plain decimal digits (Number() took 0x10 as 16 and 1e3 as 1000)', () => {
  const lax = ['0x10', '1e3', '16.0', ' 16', '0b1', '+16'];

  it('--nq and the other size flags, --seed, and the REPL :run flags and :set', () => {
    for (const bad of lax) {
      expect(() => positiveInt('nq', bad, 1)).toThrow(
        new UsageError(`--nq expects a positive integer, got \`${bad}\``),
      );
      expect(() => seedFlag(bad, 1)).toThrow(`--seed expects an integer in [0, 4294967295], got \`${bad}\``);
    }
    expect(positiveInt('nq', '16', 1)).toBe(16);
    expect(seedFlag('16', 1)).toBe(16);
  });

  it('attnc run names the flag and the spelling it got', () => {
    const r = attnc('run', 'stdlib/causal.attn', '--nq', '0x10');
    expect(attncLines(r.err)).toEqual(['attnc: --nq expects a positive integer, got `0x10`']);
    expect(r.code).toBe(1);
  });

  it('--param takes a decimal number; an i32 param at :set takes decimal digits only', () => {
    for (const bad of ['0x10', 'Infinity', '1e', '.'])
      expect(() => parseParamAssignments([`w=${bad}`])).toThrow(
        `--param w: \`${bad}\` is not a decimal number or true/false`,
      );
    expect(parseParamAssignments(['a=0.5', 'b=-1e-3', 'c=16'])).toEqual({ a: 0.5, b: -1e-3, c: 16 });
    for (const bad of ['1e3', '16.0'])
      expect(() => paramValue({ name: 'window', dtype: 'i32' }, bad)).toThrow(
        `param \`window\` is an i32: write decimal digits, got \`${bad}\``,
      );
    expect(() => paramValue({ name: 'window', dtype: 'i32' }, '0x10')).toThrow(
      'param `window` expects a decimal number, got `0x10`',
    );
    expect(paramValue({ name: 'cap', dtype: 'f32' }, '1e3')).toBe(1000);
  });

  it('attnc run and viz refuse an i32 --param spelled 1e3 (it ran with 1000)', () => {
    const refusal = '--param window: `window` is an i32: write decimal digits, got `1e3`';
    const r = attnc('run', 'stdlib/sliding_window.attn', '--nq', '8', '--nk', '8', '--param', 'window=1e3');
    expect(attncLines(r.err)).toEqual([`attnc: ${refusal}`]);
    expect(r.code).toBe(1);
    const source = readFileSync('stdlib/sliding_window.attn', 'utf8');
    const dir = mkdtempSync(join(tmpdir(), 'attnc-int-spelling-'));
    const viz = (param: string) => () =>
      vizCommand(
        source,
        'sw.attn',
        { out: join(dir, 'm.svg'), nq: '8', nk: '8', param: [param] },
        {
          ...parseParamAssignments([param]),
        },
      );
    expect(viz('window=1e3')).toThrow(new UsageError(refusal));
    expect(viz('window=16')()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
