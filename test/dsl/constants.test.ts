// Constants that do not fit their type (issue #9 item 4): a count, block size or default whose
// int arithmetic leaves the int range, an int literal over 2^31 - 1 and an f32 literal over the
// f32 range are positioned errors, never silently wrapped or saturated values. Int arithmetic
// inside masks and scores keeps its 32-bit wrap (a run-time contract).
import { describe, expect, it } from 'vitest';
import { frontend } from '../../src/dsl/index.js';

/** `line:column message` of each diagnostic, and the text under the first one's span. */
function check(source: string): { located: string[]; at: string | undefined } {
  const ds = frontend(source, 'f.attn').diagnostics;
  const first = ds[0]?.span;
  return {
    located: ds.map((d) => `${d.span.line}:${d.span.column} ${d.message}`),
    at: first && source.slice(first.offset, first.offset + first.length),
  };
}

const overflowMessage = (value: string): string =>
  `this constant overflows int: its value ${value} is out of range`;

describe('constant counts and sizes that overflow int', () => {
  it('topk(65536 * 65536 + 5) is an error at the product, not topk(5)', () => {
    const r = check('attention m() {\n  select topk(65536 * 65536 + 5) by q . k\n}');
    expect(r.located).toEqual([`2:15 ${overflowMessage('4294967296')}`]);
    expect(r.at).toBe('65536 * 65536');
  });

  it('a block size, and forced counts', () => {
    const blocks = check('attention m() {\n  route blocks(2147483647 + 1) topk(2) by mean(q) . mean(k)\n}');
    expect(blocks.located).toEqual([`2:16 ${overflowMessage('2147483648')}`]);
    const forced = 'attention m() {\n  select topk(4) by q . k force first(2) local(-(-2147483648))\n}';
    expect(check(forced).located).toEqual([`2:48 ${overflowMessage('2147483648')}`]);
  });

  it('int, f32 and bool parameter defaults', () => {
    expect(check('attention m(w: int = 65536 * 65536) { mask q - k < w }').located).toEqual([
      `1:22 ${overflowMessage('4294967296')}`,
    ]);
    expect(check('attention m(c: f32 = 100000 * 100000) { score score / c }').located).toEqual([
      `1:22 ${overflowMessage('10000000000')}`,
    ]);
    expect(check('attention m(on: bool = -2147483648 / -1 > 0) { mask on }').located).toEqual([
      `1:24 ${overflowMessage('2147483648')}`,
    ]);
  });

  it('reports the innermost overflow once', () => {
    const r = check('attention m(w: int = (65536 * 65536) * 65536 + 1) { mask q - k < w }');
    expect(r.located).toEqual([`1:22 ${overflowMessage('4294967296')}`]);
    expect(r.at).toBe('(65536 * 65536)');
  });

  it('the int range itself is fine', () => {
    const src = `attention m(lo: int = -2147483648, hi: int = 2147483646 + 1, n: int = 65535 * 32768) {
  select topk(2147483647) by q . k
  mask q - k < hi && q - k > lo
}`;
    expect(check(src).located).toEqual([]);
  });
});

describe('literals that do not fit their type', () => {
  it('an int literal over 2^31 - 1, wherever it is', () => {
    expect(check('attention m() { mask q < 4294967298 }').located).toEqual([
      '1:26 integer literal 4294967298 is too large for int',
    ]);
    expect(check('attention m() { score score * 99999999999999999999 }').located).toEqual([
      '1:31 integer literal about 1.00e+20 is too large for int',
    ]);
  });

  it('an f32 literal over the f32 range, but not one near it, nor 1.0 / 0.0', () => {
    expect(check('attention m(cap: f32 = 1e40) { score cap }').located).toEqual([
      '1:24 f32 literal 1e+40 is too large for f32',
    ]);
    expect(check('attention m() { score score + 1e999 }').located).toEqual([
      '1:31 f32 literal Infinity is too large for f32',
    ]);
    const fine = 'attention m(cap: f32 = 3.4e38) { score min(score, cap) + min(score, 1.0 / 0.0) }';
    expect(check(fine).located).toEqual([]);
  });

  it('an f32 param default that is not finite (every entry point refuses such a param value)', () => {
    // It compiled, then `attnc run`, run(), the emitted module and the CUDA launcher each refused
    // the default as the param's value unless the caller replaced it.
    expect(check('attention m(inf: f32 = 1.0 / 0.0) { score min(score, inf) }').located).toEqual([
      '1:24 the default of `inf` is Infinity, not a finite f32',
    ]);
    expect(check('attention m(c: f32 = 0.0 / 0.0) { score score + c }').located).toEqual([
      '1:22 the default of `c` is NaN, not a finite f32',
    ]);
    expect(check('attention m(c: f32 = 3.0e38 * 2.0) { score score + c }').located).toEqual([
      '1:22 the default of `c` is Infinity, not a finite f32',
    ]);
  });
});

describe('int arithmetic at run time keeps its 32-bit wrap', () => {
  it('masks and scores may wrap', () => {
    expect(check('attention m() { mask q + 2147483640 > 0 }').located).toEqual([]);
    expect(check('attention m() { mask k < 65536 * 65536 }').located).toEqual([]);
    expect(check('attention m() { score score + float(2147483647 + 1) }').located).toEqual([]);
  });
});
