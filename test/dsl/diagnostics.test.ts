// Rendered diagnostics of broken programs, as a user sees them (`attnc check`).
import { describe, expect, it } from 'vitest';
import { renderDiagnostics } from '../../src/diagnostics.js';
import { frontend } from '../../src/dsl/index.js';

const render = (source: string): string => renderDiagnostics(frontend(source, 'x.attn').diagnostics, source);

describe('rendered diagnostics', () => {
  it('a typo gets a caret under it and a hint', () => {
    expect(
      render(`attention sink_window(window: int = 1024, sinks: int = 4) {
  mask causal && (q - k < windw || k < sinks)
}`),
    ).toMatchInlineSnapshot(`
      "error: unknown name \`windw\`
       --> x.attn:2:27
        |
      2 |   mask causal && (q - k < windw || k < sinks)
        |                           ^^^^^ did you mean \`window\`?"
    `);
  });

  it('a missing `)` in the parameter list', () => {
    expect(render(`attention softcap(cap: f32 = 30.0 {\n  score cap * tanh(score / cap)\n}`))
      .toMatchInlineSnapshot(`
      "error: expected \`)\` to close the parameter list, found \`{\`
       --> x.attn:1:35
        |
      1 | attention softcap(cap: f32 = 30.0 {
        |                                   ^"
    `);
  });

  it('a missing `)` at the end of a line', () => {
    expect(render(`attention w(window: int = 8) {\n  mask causal && (q - k < window\n}`))
      .toMatchInlineSnapshot(`
      "error: expected \`)\` to close the parenthesis, found \`}\`
       --> x.attn:2:33
        |
      2 |   mask causal && (q - k < window
        |                                 ^"
    `);
  });

  it('an unknown function', () => {
    expect(render(`attention softcap(cap: f32 = 30.0) {\n  score cap * tahn(score / cap)\n}`))
      .toMatchInlineSnapshot(`
      "error: unknown function \`tahn\`
       --> x.attn:2:15
        |
      2 |   score cap * tahn(score / cap)
        |               ^^^^ did you mean \`tanh\`?"
    `);
  });

  it('a type error', () => {
    expect(render(`attention d(doc: i32[kv]) {\n  mask doc[q] - doc[k]\n}`)).toMatchInlineSnapshot(`
      "error: a mask must be bool, found int
       --> x.attn:2:8
        |
      2 |   mask doc[q] - doc[k]
        |        ^^^^^^^^^^^^^^^"
    `);
  });

  it('three separate errors in one run', () => {
    expect(
      render(`attention a(w: int = 1.5) {
  mask q - k < w &&
}
attention b(t: f32[heads]) {
  score score + t[h, q]
  mask causal
}`),
    ).toMatchInlineSnapshot(`
      "error: the default of \`w\` must be int, found f32
       --> x.attn:1:22
        |
      1 | attention a(w: int = 1.5) {
        |                      ^^^

      error: expected an expression, found \`}\`
       --> x.attn:2:20
        |
      2 |   mask q - k < w &&
        |                    ^

      error: \`t\` has 1 dimension but is indexed with 2
       --> x.attn:5:17
        |
      5 |   score score + t[h, q]
        |                 ^^^^^^^"
    `);
  });

  it('a missing `}` before the next declaration', () => {
    expect(render(`attention a() {\n  mask causal\n\nattention b() {\n  mask k < 4\n}`))
      .toMatchInlineSnapshot(`
        "error: expected a statement (\`let\`, \`mask\`, \`score\`, \`route\`, \`select\`, \`emit\`, \`store\`, \`importance\`, \`cache\`, \`qk\` or \`pv\`) or \`}\`, found \`attention\`
         --> x.attn:2:14
          |
        2 |   mask causal
          |              ^ is a \`}\` missing above?"
      `);
  });

  it('`=` for `==`, and a stray `;`', () => {
    expect(render(`attention d(doc: i32[kv]) {\n  mask doc[q] = doc[k];\n}`)).toMatchInlineSnapshot(`
      "error: \`=\` is not an operator
       --> x.attn:2:15
        |
      2 |   mask doc[q] = doc[k];
        |               ^ did you mean \`==\`?

      error: unexpected character \`;\`
       --> x.attn:2:23
        |
      2 |   mask doc[q] = doc[k];
        |                       ^ statements need no \`;\`"
    `);
  });

  it('a parameter type that did not parse is the one error: its lookups do not echo it', () => {
    // Each `doc[…]` said "`doc` is not a tensor", and `t[0]` "`t` has 0 dimensions".
    const messages = (source: string) => frontend(source, 'x.attn').diagnostics.map((d) => d.message);
    expect(messages('attention d(doc: tensor i32[kv]) {\n  mask doc[q] == doc[k]\n}')).toEqual([
      'expected a type (`int`, `f32`, `bool`, or a tensor type like `f32[heads]`), found `tensor`',
    ]);
    expect(messages('attention a(t: f32[-3]) {\n  score score + t[0]\n}')).toEqual([
      'expected a dimension (`kv`, `queries`, `heads`, `kv_heads`, `batch`, a positive int, or an int parameter), found `-`',
    ]);
    // A declared scalar indexed is still the error it was.
    expect(messages('attention a(w: int) {\n  mask w[q] > 0\n}')).toEqual(['`w` is not a tensor']);
  });

  it('`score` in a mask', () => {
    expect(render(`attention s() {\n  mask score > 0.0\n}`)).toMatchInlineSnapshot(`
      "error: \`score\` cannot be used in a mask
       --> x.attn:2:8
        |
      2 |   mask score > 0.0
        |        ^^^^^ masks are static predicates over positions and tensor lookups"
    `);
  });

  it('a statement outside any declaration', () => {
    expect(render(`mask causal\nattention a() {}`)).toMatchInlineSnapshot(`
      "error: expected \`attention\`, found \`mask\`
       --> x.attn:1:1
        |
      1 | mask causal
        | ^^^^ statements go inside \`attention NAME(…) { … }\`"
    `);
  });

  it('the end of file in the middle of an expression', () => {
    expect(render(`attention a(w: int) {\n  mask q <`)).toMatchInlineSnapshot(`
      "error: expected an expression, found end of file
       --> x.attn:2:11
        |
      2 |   mask q <
        |           ^"
    `);
  });

  it('a file cut inside a statement: the end-of-file error alone, no guesses about the rest', () => {
    // The checker also judged the recovered piece: "`kept` has 3 dimensions but is indexed
    // with 2" and "`&&` takes bools, found int" beside the one real error.
    const errors = (src: string) => frontend(src, 'x.attn').diagnostics.map((d) => d.message);
    expect(errors('attention a(kept: i32[batch, heads, kv]) {\n  mask (kept[b,\n\n// a comment\n')).toEqual([
      'expected an expression, found end of file',
    ]);
    // Cut after a word the parser stopped at: the checker's guesses about the routing statement
    // ("`route` needs a unit", "the key side must be pooled") came first.
    expect(errors('attention b(top: int = 8) {\n  route b')).toEqual([
      'expected a unit (`blocks(n)` or `chunks(ids)`) or a ranking (`topk(n) by …` or `from idx`), found `b`',
    ]);
    expect(errors('attention l(top: int = 4) {\n  route blocks(64) top')).toEqual([
      'expected `topk(n) by …` or `from idx`, found `top`',
    ]);
    expect(render('attention a(kept: i32[batch, heads, kv]) {\n  mask causal && (kept[b,'))
      .toMatchInlineSnapshot(`
        "error: expected an expression, found end of file
         --> x.attn:2:26
          |
        2 |   mask causal && (kept[b,
          |                          ^"
      `);
  });

  it('an unterminated block comment inside a declaration is the one error', () => {
    // The parser also reported "expected a statement (…) or `}`, found end of file": the comment
    // swallowed the `}`, which is what the comment's own error says.
    expect(render(`attention a() {\n  mask causal /* keys before q`)).toMatchInlineSnapshot(`
      "error: unterminated block comment
       --> x.attn:2:15
        |
      2 |   mask causal /* keys before q
        |               ^^ add \`*/\` to close it"
    `);
  });

  it('an unterminated block comment', () => {
    expect(render(`attention a() {}\n/* note`)).toMatchInlineSnapshot(`
      "error: unterminated block comment
       --> x.attn:2:1
        |
      2 | /* note
        | ^^ add \`*/\` to close it"
    `);
  });
});
