// The mistakes a new user makes, as `attnc check` shows them: a misspelt word gets a
// "did you mean", a stray closer says so, and recovery's guesses do not add noise on the line.
import { describe, expect, it } from 'vitest';
import { renderDiagnostics } from '../../src/diagnostics.js';
import { frontend } from '../../src/dsl/index.js';

const render = (source: string): string => renderDiagnostics(frontend(source, 'x.attn').diagnostics, source);
const hints = (source: string): (string | undefined)[] =>
  frontend(source, 'x.attn').diagnostics.map((d) => d.hint);

describe('misspelt words', () => {
  it('a statement keyword, with no follow-on errors from the rest of its line', () => {
    expect(render(`attention s(cap: f32 = 50.0) {\n  scroe cap * tanh(score / cap)\n  mask causal\n}`))
      .toMatchInlineSnapshot(`
      "error: expected a statement (\`let\`, \`mask\`, \`score\`, \`route\`, \`select\`, \`emit\`, \`store\`, \`importance\`, \`cache\`, \`qk\` or \`pv\`) or \`}\`, found \`scroe\`
       --> x.attn:2:3
        |
      2 |   scroe cap * tanh(score / cap)
        |   ^^^^^ did you mean \`score\`?"
    `);
  });

  it.each([
    ['msak causal', 'mask'],
    ['rout blocks(64) topk(4) by mean(q) . mean(k)', 'route'],
    ['selct topk(4) by q . k', 'select'],
    ['stor k int8 scale f16 per token', 'store'],
    ['cahce paged 16', 'cache'],
    ['lett x = 3', 'let'],
  ])('`%s` → `%s`', (statement, word) => {
    expect(hints(`attention a() {\n  ${statement}\n}`)).toEqual([`did you mean \`${word}\`?`]);
  });

  // They read only "expected an expression, found `=`".
  it.each([
    ['score = score * 2.0', '`score EXPR`, like `score score * 2.0`'],
    ['mask = q >= k', '`mask EXPR`, like `mask q >= k`'],
  ])('`%s` says the keyword takes the expression without `=`', (statement, form) => {
    expect(hints(`attention a() {\n  ${statement}\n}`)).toEqual([`no \`=\`: write ${form}`]);
  });

  it('a keyword as a parameter name is a reserved word, the first parameter too', () => {
    // The first one read only "expected `)` to close the parameter list, found `score`".
    for (const params of ['score: f32 = 2.0', 'w: int = 3, score: f32 = 2.0'])
      expect(hints(`attention a(${params}) {\n  score score * 2.0\n}`)).toEqual([
        '`score` is a reserved word',
      ]);
  });

  it('a clause of the statement before, where recovery wanted the next statement', () => {
    expect(render(`attention a() {\n  route blocks(64) topk(4) by q . mean(k) forse first(1)\n}`))
      .toMatchInlineSnapshot(`
      "error: expected a statement (\`let\`, \`mask\`, \`score\`, \`route\`, \`select\`, \`emit\`, \`store\`, \`importance\`, \`cache\`, \`qk\` or \`pv\`) or \`}\`, found \`forse\`
       --> x.attn:2:43
        |
      2 |   route blocks(64) topk(4) by q . mean(k) forse first(1)
        |                                           ^^^^^ did you mean \`force\`?"
    `);
    expect(hints(`attention a() {\n  route blocks(64) topk(4) by q . mean(k) vot groups\n}`)).toEqual([
      'did you mean `vote`?',
    ]);
    expect(hints(`attention a() {\n  store k int2 scale f16 per channel gruop 32 zero f16\n}`)).toEqual([
      'did you mean `group`?',
    ]);
    expect(hints(`attention a() {\n  qk int8 smoth k\n}`)).toEqual(['did you mean `smooth`?']);
  });

  it('the unit and the ranking of a route', () => {
    expect(render(`attention a() {\n  route block(64) topk(4) by mean(q) . mean(k)\n}`))
      .toMatchInlineSnapshot(`
      "error: expected a unit (\`blocks(n)\` or \`chunks(ids)\`) or a ranking (\`topk(n) by …\` or \`from idx\`), found \`block\`
       --> x.attn:2:9
        |
      2 |   route block(64) topk(4) by mean(q) . mean(k)
        |         ^^^^^ did you mean \`blocks\`?"
    `);
    expect(hints(`attention a() {\n  route blocks(64) tpok(4) by mean(q) . mean(k)\n}`)).toEqual([
      'did you mean `topk`?',
    ]);
  });

  it('a word after `route` or `emit` names the units too; after `select` or a unit, only the rankings', () => {
    const first = (statement: string): string => {
      const d = frontend(`attention a() {\n  ${statement}\n}`, 'x.attn').diagnostics[0];
      return `${d?.span.line}:${d?.span.column}+${d?.span.length} ${d?.message}`;
    };
    const unitOrRanking = 'a unit (`blocks(n)` or `chunks(ids)`) or a ranking (`topk(n) by …` or `from idx`)';
    expect(first('route foo topk(4) by q . mean(k)')).toBe(`2:9+3 expected ${unitOrRanking}, found \`foo\``);
    expect(first('route 64')).toBe(`2:9+2 expected ${unitOrRanking}, found \`64\``);
    expect(first('emit foo topk(4) by q . k')).toBe(`2:8+3 expected ${unitOrRanking}, found \`foo\``);
    expect(first('select foo')).toBe('2:10+3 expected `topk(n) by …` or `from idx`, found `foo`');
    expect(first('route blocks(64) foo')).toBe('2:20+3 expected `topk(n) by …` or `from idx`, found `foo`');
  });

  it('`by`, without the four follow-on errors about the affinity after it', () => {
    expect(render(`attention a() {\n  route blocks(64) topk(4) bye mean(q) . mean(k)\n}`))
      .toMatchInlineSnapshot(`
      "error: expected \`by\` and an affinity like \`mean(q) . mean(k)\`, found \`bye\`
       --> x.attn:2:28
        |
      2 |   route blocks(64) topk(4) bye mean(q) . mean(k)
        |                            ^^^ did you mean \`by\`?"
    `);
  });

  it('`attention` and a parameter type', () => {
    expect(hints(`attentoin a() {\n  mask causal\n}`)).toEqual(['did you mean `attention`?']);
    expect(hints(`attention a(w: itn = 3) {\n  mask q - k < w\n}`)).toEqual(['did you mean `int`?']);
  });

  it('two misspelt types on one header line are two mistakes, both reported', () => {
    expect(hints(`attention a(w: itn = 3, c: f23 = 1.0) {\n  mask q - k < w\n}`)).toEqual([
      'did you mean `int`?',
      'did you mean `f32`?',
    ]);
  });
});

describe('parameter defaults', () => {
  it('a misspelt `true`, and another parameter named in a default', () => {
    expect(render(`attention a(on: bool = ture) {\n  mask on\n}`)).toMatchInlineSnapshot(`
      "error: a parameter default must be a constant, not \`ture\`
       --> x.attn:1:24
        |
      1 | attention a(on: bool = ture) {
        |                        ^^^^ did you mean \`true\`?"
    `);
    expect(hints(`attention a(w: int = s * 2, s: int = 4) {\n  mask q - k < w\n}`)).toEqual([
      'a default cannot name a parameter: use literals and arithmetic',
    ]);
    expect(hints(`attention a(w: int = foo) {\n  mask q - k < w\n}`)).toEqual([
      'use literals and arithmetic',
    ]);
  });
});

describe('echoes of an earlier error', () => {
  it('a misspelt dimension is reported at the declaration, not again where the tensor is used', () => {
    const chunks = 'route chunks(ids) topk(4) by lnmean(q) . lnmean(k)';
    expect(
      frontend(`attention a(ids: i32[kvv]) {\n  ${chunks}\n}`, 'x.attn').diagnostics.map((d) => d.message),
    ).toEqual(['unknown dimension `kvv`']);
    const from = `attention a(idx: i32[batch, heads, querys, 8]) {\n  select from idx\n}`;
    expect(frontend(from, 'x.attn').diagnostics.map((d) => d.message)).toEqual([
      'unknown dimension `querys`',
    ]);
    // A known int parameter is a real mismatch, still reported where the tensor is used.
    expect(hints(`attention a(n: int = 4, ids: i32[n]) {\n  ${chunks}\n}`)).toHaveLength(1);
    expect(
      frontend(`attention a(n: int = 4, ids: i32[n]) {\n  ${chunks}\n}`, 'x.attn').diagnostics[0]?.span.line,
    ).toBe(2);
  });
});

describe('brackets and missing pieces', () => {
  it('a stray `)` where a statement should start', () => {
    expect(render(`attention a(w: int = 3) {\n  mask causal && q - k < w)\n}`)).toMatchInlineSnapshot(`
      "error: expected a statement (\`let\`, \`mask\`, \`score\`, \`route\`, \`select\`, \`emit\`, \`store\`, \`importance\`, \`cache\`, \`qk\` or \`pv\`) or \`}\`, found \`)\`
       --> x.attn:2:27
        |
      2 |   mask causal && q - k < w)
        |                           ^ nothing is open here for \`)\` to close: a \`(\` missing, or one \`)\` too many?"
    `);
  });

  it('a word missing at the end of a line points there, without blaming the next line', () => {
    expect(render(`attention a(idx: i32[batch, heads, queries, 8]) {\n  select from\n  mask causal\n}`))
      .toMatchInlineSnapshot(`
      "error: expected the name of an index tensor after \`from\`, found \`mask\`
       --> x.attn:2:14
        |
      2 |   select from
        |              ^"
    `);
  });

  it('a `)` missing before a `cache`, `qk` or `pv` on the next line points where it belongs', () => {
    for (const next of ['cache paged 16', 'qk int8', 'pv e4m3']) {
      const ds = frontend(`attention a() {\n  mask (causal\n  ${next}\n}`, 'x.attn').diagnostics;
      expect(ds.map((d) => [d.message, d.span.line, d.span.column])).toEqual([
        [`expected \`)\` to close the parenthesis, found \`${next.split(' ')[0]}\``, 2, 15],
      ]);
    }
  });

  it('a word the store statement did not expect, reported once', () => {
    expect(render(`attention a() {\n  store k scale f16 per token\n  mask causal\n}`)).toMatchInlineSnapshot(`
      "error: unknown element type \`scale\`
       --> x.attn:2:11
        |
      2 |   store k scale f16 per token
        |           ^^^^^ one of \`int8\`, \`int4\`, \`int2\`, \`e4m3\`, \`e5m2\`, \`e3m4\`"
    `);
  });

  it('`group` with its count left out, before the next clause or at the end of the line', () => {
    expect(render(`attention a() {\n  store k int4 scale f16 per token group zero f16\n}`))
      .toMatchInlineSnapshot(`
      "error: expected the group size after \`group\`, a count like \`32\`, found \`zero\`
       --> x.attn:2:42
        |
      2 |   store k int4 scale f16 per token group zero f16
        |                                          ^^^^ \`zero\` starts the next clause: the count after \`group\` is missing"
    `);
    const ds = frontend(
      `attention a() {\n  store k int4 scale f16 per token group\n  mask causal\n}`,
      'x.attn',
    ).diagnostics;
    expect(ds.map((d) => [d.span.line, d.span.column, d.message])).toEqual([
      [2, 41, 'expected the group size after `group`, a count like `32`, found `mask`'],
    ]);
    // A name after `group` is still read as the count (and refused as not constant): only a
    // clause word followed by what its clause takes is taken for the next clause.
    const named = `attention a(zero: int = 32) {\n  store k int4 scale f16 per token group zero norm f16\n}`;
    expect(frontend(named, 'x.attn').diagnostics.map((d) => d.message)).toEqual([
      'a group size must be a constant int',
    ]);
  });

  it('errors on separate lines are each reported', () => {
    const ds = frontend(
      `attention a(w: int = 3) {\n  msak causal\n  mask q - k < w)\n  score score +* 2.0\n}`,
      'x.attn',
    ).diagnostics;
    expect(ds.map((d) => d.span.line)).toEqual([2, 3, 4]);
  });
});

describe('recovery resumes at the next line', () => {
  const errors = (source: string): string[] =>
    frontend(source, 'x.attn').diagnostics.map(
      (d) => `${d.span.line}:${d.span.column}+${d.span.length} ${d.message}${d.hint ? ` (${d.hint})` : ''}`,
    );
  const statementWanted =
    'expected a statement (`let`, `mask`, `score`, `route`, `select`, `emit`, `store`, `importance`, `cache`, `qk` or `pv`) or `}`';

  it('a misspelt statement word right after a bad line is reported at the word, not at `*`', () => {
    expect(errors(`attention a() {\n  msak causal\n  scroe score * 2.0\n}`)).toEqual([
      `2:3+4 ${statementWanted}, found \`msak\` (did you mean \`mask\`?)`,
      `3:3+5 ${statementWanted}, found \`scroe\` (did you mean \`score\`?)`,
    ]);
  });

  it('after a clause the statement did not expect, and for three bad lines in a row', () => {
    expect(
      errors(
        `attention a() {\n  route blocks(64) topk(4) by q . mean(k) forse first(1)\n  scroe score * 2.0\n}`,
      ),
    ).toEqual([
      `2:43+5 ${statementWanted}, found \`forse\` (did you mean \`force\`?)`,
      `3:3+5 ${statementWanted}, found \`scroe\` (did you mean \`score\`?)`,
    ]);
    expect(
      errors(`attention a() {\n  msak causal\n  scroe score * 2.0\n  lett x = 3\n  mask q - k < 4\n}`),
    ).toEqual([
      `2:3+4 ${statementWanted}, found \`msak\` (did you mean \`mask\`?)`,
      `3:3+5 ${statementWanted}, found \`scroe\` (did you mean \`score\`?)`,
      `4:3+4 ${statementWanted}, found \`lett\` (did you mean \`let\`?)`,
    ]);
  });

  it('a deeper-indented line continues the bad statement and is skipped with it', () => {
    expect(errors(`attention a() {\n  msak causal &&\n      q - k < 4\n  scroe score * 2.0\n}`)).toEqual([
      `2:3+4 ${statementWanted}, found \`msak\` (did you mean \`mask\`?)`,
      `4:3+5 ${statementWanted}, found \`scroe\` (did you mean \`score\`?)`,
    ]);
  });

  it('a good statement after the bad line still parses and is checked', () => {
    expect(errors(`attention a() {\n  msak causal\n  mask q - k < nope\n}`)).toEqual([
      `2:3+4 ${statementWanted}, found \`msak\` (did you mean \`mask\`?)`,
      "3:16+4 unknown name `nope` (declare it as a param in the header's `(…)`, like `(nope: int = 8)`)",
    ]);
  });
});

describe('numbers written as other languages write them', () => {
  /** `line:column+length message [hint]` of every diagnostic. */
  const all = (body: string): string[] =>
    frontend(`attention a() {\n  ${body}\n}`, 'x.attn').diagnostics.map(
      (d) => `${d.span.line}:${d.span.column}+${d.span.length} ${d.message} [${d.hint ?? ''}]`,
    );
  // Each was "expected a statement (…) or `}`, found `x10`" at the letters, as if the number
  // had ended a statement.
  it('a hex literal, a digit separator, a type suffix: one error at the whole number', () => {
    expect(all('mask q - k < 0x10')).toEqual([
      '2:16+4 malformed number `0x10` [hex literals are not supported: write the number in decimal]',
    ]);
    expect(all('mask q - k < 1_000')).toEqual([
      '2:16+5 malformed number `1_000` [write numbers without `_`]',
    ]);
    expect(all('score score * 1.5f')).toEqual([
      '2:17+4 malformed number `1.5f` [numbers take no suffix: `1.5` is f32, `1` is int]',
    ]);
    expect(all('mask k < 5u && q > 3int')).toEqual([
      '2:12+2 malformed number `5u` [numbers take no suffix: `1.5` is f32, `1` is int]',
      '2:22+4 malformed number `3int` [numbers take no suffix: `1.5` is f32, `1` is int]',
    ]);
  });

  it('an exponent without digits, its sign included', () => {
    const hint = 'an exponent needs digits, like `1e-3`';
    expect(all('score score * 1e')).toEqual([`2:17+2 malformed number \`1e\` [${hint}]`]);
    expect(all('score score * 2.5e- + 1.0')).toEqual([`2:17+5 malformed number \`2.5e-\` [${hint}]`]);
  });
});

describe('strings', () => {
  const all = (body: string): string[] =>
    frontend(`attention a() {\n  ${body}\n}`, 'x.attn').diagnostics.map(
      (d) => `${d.span.line}:${d.span.column}+${d.span.length} ${d.message} [${d.hint ?? ''}]`,
    );
  it('one error per string, over the whole string, and nothing after it', () => {
    // Each quote was an "unexpected character" and a word inside it a parse error: five errors
    // for `"a b" == 'c'`.
    expect(all(`mask q > k && "a b" == 'c'`)).toEqual([
      '2:17+5 unexpected string `"a b"` [the language has no strings]',
      "2:26+3 unexpected string `'c'` [the language has no strings]",
    ]);
    expect(all('mask q > k && "open')).toEqual([
      '2:17+5 unexpected string `"open` [the language has no strings]',
    ]);
  });
});

describe('conversions', () => {
  it('`bool(q)` says how to write it: `float(…)` and `int(…)` exist, `bool(…)` does not', () => {
    expect(hints('attention c() { mask bool(q) }')).toEqual([
      'there is no `bool(…)` conversion: compare instead, like `q != 0`',
    ]);
    expect(hints('attention c() { mask float(q) > 1.0 && bool(k) }')).toEqual([
      'there is no `bool(…)` conversion: compare instead, like `q != 0`',
    ]);
  });
});

describe('a stray token after a finished declaration', () => {
  const all = (source: string): string[] =>
    frontend(source, 'x.attn').diagnostics.map((d) => `${d.span.line}:${d.span.column} ${d.message}`);

  it("still shows the declaration's checker errors (they were hidden until the `)` went)", () => {
    const body = 'attention c() { mask q > 1 && 2 }';
    for (const stray of ['\n)', ' )'])
      expect(all(`${body}${stray}\n`)).toEqual([
        '1:31 `&&` takes bools, found int',
        `1:${stray === ' )' ? 35 : 34} expected \`attention\`, found \`)\``,
      ]);
  });

  it('an error at the `}` itself is still in the last statement (recovery guessed there)', () => {
    expect(all('attention a() { mask min(q, k > 0 }')).toEqual([
      '1:35 expected `)` to close the argument list, found `}`',
    ]);
  });
});
