// Keeps the docs honest: every DSL example in the user-facing docs must check cleanly, and the
// errors docs/LANGUAGE.md promises must be the errors the checker gives. A doc edit that breaks
// an example, or a checker change that breaks a documented one, fails here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { frontend } from '../../src/dsl/index.js';

interface DocBlock {
  readonly line: number;
  readonly body: string;
}

/** Fenced code blocks holding `attention NAME(` declarations; grammar blocks (`:=`) are not. */
function attentionBlocks(file: string): DocBlock[] {
  const doc = readFileSync(file, 'utf8');
  const blocks: DocBlock[] = [];
  for (const m of doc.matchAll(/^```\w*\n([\s\S]*?)^```/gm)) {
    const body = m[1]!;
    if (!/^attention\s+\w+\s*\(/m.test(body) || body.includes(':=')) continue;
    blocks.push({ line: doc.slice(0, m.index).split('\n').length, body });
  }
  return blocks;
}

describe('DSL examples in the docs check cleanly', () => {
  // The counts make a broken extraction (a changed fence style) fail instead of checking nothing.
  const docs: readonly [string, number][] = [
    ['docs/LANGUAGE.md', 6],
    ['README.md', 1],
  ];
  for (const [file, atLeast] of docs) {
    const blocks = attentionBlocks(file);
    it(`${file} has its examples`, () => expect(blocks.length).toBeGreaterThanOrEqual(atLeast));
    for (const block of blocks) {
      it(`${file}:${block.line}`, () => {
        const fe = frontend(block.body, `${file}:${block.line}`);
        expect(fe.diagnostics.map((d) => d.message)).toEqual([]);
        expect(fe.decls.length).toBeGreaterThan(0);
      });
    }
  }
});

/** The messages of a one-declaration program's diagnostics. */
function errorsOf(source: string): string[] {
  return frontend(source, 'doc').diagnostics.map((d) => d.message);
}

describe('errors docs/LANGUAGE.md promises', () => {
  it('numbers: decimal only, `012` is twelve; hex, `_` and suffixes are errors', () => {
    const twelve = frontend('attention a(w: int = 012) { mask q - k < w }', 'doc');
    expect(twelve.diagnostics).toEqual([]);
    expect(twelve.decls[0]!.decl.params[0]!.default).toMatchObject({ value: 12, isFloat: false });
    for (const bad of ['0x10', '1_000', '1.5f'])
      expect(errorsOf(`attention a(w: f32 = ${bad}) { score score * w }`)).toEqual([
        `malformed number \`${bad}\``,
      ]);
  });

  it('qk int8: another element type, smoothing q, a quantized K are refused', () => {
    expect(errorsOf('attention a() {\n  qk e4m3\n  mask causal\n}')[0]).toContain('`e4m3`');
    expect(errorsOf('attention a() {\n  qk int8 smooth q\n  mask causal\n}')[0]).toContain(
      'cannot smooth `q`',
    );
    const stored = 'attention a() {\n  store k int8 scale f16 per token\n  qk int8\n  mask causal\n}';
    expect(errorsOf(stored)[0]).toContain('quantizes it');
  });

  it('pv e4m3: another element type and smoothing p are refused', () => {
    for (const elem of ['e5m2', 'int8'])
      expect(errorsOf(`attention a() {\n  qk int8\n  pv ${elem}\n  mask causal\n}`)[0]).toContain(
        `\`${elem}\``,
      );
    expect(errorsOf('attention a() {\n  qk int8\n  pv e4m3 smooth p\n  mask causal\n}')[0]).toContain(
      'cannot smooth `p`',
    );
  });

  it('constants: range errors at compile time, wrapping at run time', () => {
    expect(errorsOf('attention a(c: f32 = 1e40) { score score * c }')[0]).toContain('too large for f32');
    expect(errorsOf('attention a(c: f32 = 1.0 / 0.0) { score score * c }')[0]).toContain('not a finite f32');
    const overflow = 'attention a() { route blocks(64) topk(65536 * 65536 + 5) by mean(q) . mean(k) }';
    expect(errorsOf(overflow)[0]).toContain('overflows int');
    expect(errorsOf('attention a(n: int = 2147483648) { mask q - k < n }')[0]).toContain('too large for int');
    expect(errorsOf('attention a(n: int = -2147483648) { mask q - k > n }')).toEqual([]);
    expect(errorsOf('attention a() { mask q + 2147483640 > k }')).toEqual([]);
  });

  it('names: JavaScript object members as params, score in a mask, a second score', () => {
    expect(errorsOf('attention a(constructor: int = 3) { mask q - k < constructor }')[0]).toContain(
      'JavaScript object member',
    );
    expect(errorsOf('attention a() { mask score > 0.0 }')[0]).toContain('cannot be used in a mask');
    expect(errorsOf('attention a() {\n  score score\n  score score\n}')[0]).toContain('only one `score`');
  });

  it('store: each refusal the checker list names', () => {
    const refusals: readonly [string, string][] = [
      ['store k int8 scale f16 per tokn', 'did you mean `token`?'],
      ['store k int8', 'need a `scale` clause'],
      ['store k e4m3 scale f16 per token zero f16', 'take no zero point'],
      ['store k int8 scale f16 per tensor group 32', '`per tensor` takes no `group`'],
      ['store k int4 scale f16 per token group 4', 'splits the 32-bit words'],
      ['store k int8 scale f16 per channel norm f16', 'needs per-token scales'],
      ['store k int8 scale f16 per token recent 16 f32', 'kept in 16 bits'],
      ['store k int4 scale f16 per token salient int2 from s', 'stored wider than the others'],
      ['store k int2 scale f16 per channel salient int4 from s', 'need per-token scales'],
      ['importance sum\n  importance sum', 'only one `importance`'],
      ['cache paged 64\n  store k int2 scale f16 per channel group 48 zero f16', 'splits the groups of 48'],
    ];
    for (const [statement, expected] of refusals) {
      const source = `attention a(s: i32[batch, kv_heads, kv]) {\n  ${statement}\n  mask causal\n}`;
      const fe = frontend(source, 'doc');
      const shown = fe.diagnostics.map((d) => `${d.message} ${d.hint ?? ''}`).join(' | ');
      expect(shown, statement).toContain(expected);
    }
  });

  it('soft keywords stay parameter and let names', () => {
    const soft = [
      ...'route select emit topk by from vote force blocks chunks first local indices'.split(' '),
      ...'store importance scale zero norm recent salient per group'.split(' '),
      ...['qk', 'smooth', 'pv'],
    ];
    for (const w of soft) {
      expect(errorsOf(`attention a(${w}: int = 3) {\n  mask q - k < ${w}\n}`), w).toEqual([]);
      expect(errorsOf(`attention a() {\n  let ${w} = 3\n  mask q - k < ${w}\n}`), w).toEqual([]);
    }
  });

  it('cache paged: the page size is a power of two from 1 to 65536', () => {
    expect(errorsOf('attention a() {\n  cache paged 48\n  mask causal\n}')[0]).toContain('power of two');
    expect(errorsOf('attention a() {\n  cache paged 65536\n  mask causal\n}')).toEqual([]);
  });
});
