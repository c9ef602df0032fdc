// Fuzzing the REPL session with hostile lines (issue 9): commands with huge, negative,
// fractional and non-numeric arguments, paths that cannot be read or written, settings that
// make later commands hard, and definitions with control characters. The session never throws,
// never prints "internal error" or a stack trace or a raw control character, and every line is
// answered within a bound. (:run is left out: it is the CLI's runKernel, fuzzed in test/cli.)
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/cli/repl/commands.js';
import { Session } from '../../src/cli/repl/session.js';

const dir = mkdtempSync(join(tmpdir(), 'attnc-repl-fuzz-'));
writeFileSync(join(dir, 'afile'), 'x\n');
const scale = Number(process.env.ATTNC_FUZZ_SCALE ?? 1);
/** A hang guard per line (a busy machine), not a timing assertion. */
const LINE_BOUND_MS = 15_000;

const num = fc.oneof(
  fc.integer({ min: 1, max: 300 }).map(String),
  fc.constantFrom(
    '0',
    '-1',
    '1.5',
    'NaN',
    'Infinity',
    '1e40',
    '99999999999',
    '2147483647',
    '100000',
    'x',
    '',
  ),
);
/** Hostile places to write; nothing outside the temporary directory can be changed by them. */
const writePath = fc.constantFrom(
  join(dir, 'saved.attn'),
  join(dir, 'afile', 'sub.attn'),
  join(dir, 'missing-dir', 'x.attn'),
  dir,
  '/proc/x/y.attn',
  '/dev/null',
);
const readPath = fc.oneof(
  writePath,
  fc.constantFrom('/dev/zero', 'stdlib/sink_window.attn', 'stdlib/document.attn'),
);
const setting = fc.constantFrom(
  'nq',
  'nk',
  'heads',
  'kv-heads',
  'batch',
  'dim',
  'head',
  'seed',
  'window',
  'nope',
);
const line = fc.oneof(
  fc.tuple(num, num).map(([a, b]) => `:mask ${a} ${b}`),
  num.map((a) => `:mask ${a}`),
  fc.tuple(setting, num).map(([k, v]) => `:set ${k}=${v}`),
  fc.constantFrom(
    ':stats',
    ':list',
    ':show',
    ':help',
    ':emit wgsl',
    ':emit cuda',
    ':emit x',
    ':ir',
    ':ir nope',
  ),
  fc.constantFrom(':unset nq', ':unset dim', ':unset window', ':use nope', ':use sw', ':bogus', ':'),
  readPath.map((p) => `:load ${p}`),
  writePath.map((p) => `:save ${p}`),
  fc.constantFrom(
    'attention sw(window: int = 8) { mask causal && q - k < window }',
    'attention c() { mask causal }',
    'attention e() { mask \x1b[2J causal\u202e }',
    'mask k > 2',
    'score score * 2.0',
    'attention ((( {',
    '}',
  ),
);

describe('REPL fuzz', () => {
  it('hostile lines: no throw, no internal error, no stack, no raw control character', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 8 }), async (lines) => {
        let out = '';
        const s = new Session(
          { write: (t) => void (out += t), columns: 80, rows: 24, color: false },
          dispatch,
        );
        // Start from a defined kernel, so commands get past "no attention defined yet".
        for (const l of ['attention sw(window: int = 8) { mask causal && q - k < window }', ...lines]) {
          const start = Date.now();
          const r = s.input(l);
          if (r instanceof Promise) await r;
          expect(Date.now() - start, `\`${l}\` answered within the bound`).toBeLessThan(LINE_BOUND_MS);
        }
        s.discardPending();
        const where = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n---\n${out.slice(-3000)}`;
        expect(out, where).not.toMatch(/internal error/);
        expect(out, where).not.toMatch(/^\s+at .*[:(]/m);
        expect(out, where).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
      }),
      { numRuns: 40 * scale },
    );
  });
});
