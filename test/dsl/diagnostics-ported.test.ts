// A mask ported from FlexAttention's Python (`mask_mod(b, h, q_idx, kv_idx)`): the words Python
// spells otherwise get a hint saying how this language writes them. Before, `True`, `q_idx` and
// `kv_idx` had none, `and`/`or` were only "expected a statement", and `torch.tanh(score)` was told
// to "write numbers with a leading digit".
import { describe, expect, it } from 'vitest';
import { frontend } from '../../src/dsl/index.js';

const hints = (body: string): (string | undefined)[] =>
  frontend(`attention a() {\n  ${body}\n}`, 'x.attn').diagnostics.map((d) => d.hint);

describe('Python and FlexAttention words', () => {
  it.each([
    ['mask True', '`True` is written `true` here'],
    ['mask causal && False', '`False` is written `false` here'],
    ['mask q_idx >= k', '`q_idx` is written `q` (the query position) here'],
    ['mask q >= kv_idx', '`kv_idx` is written `k` (the key position) here'],
    ['mask causal and k < 4', '`and` is written `&&` here'],
    ['mask causal or k < 4', '`or` is written `||` here'],
    ['mask not causal', '`not` is written `!` here'],
    ['score score ** 2', 'there is no `**`: write `x * x`'],
    ['score torch.tanh(score)', 'names have no `.` members: call a function by its name, like `tanh(x)`'],
  ])('`%s`', (body, hint) => {
    expect(hints(body)).toEqual([hint]);
  });

  it.each([
    ['score where(q > k, score, 0.0)', 'write `c ? a : b` for `where(c, a, b)`'],
    ['score sigmoid(score)', 'write `1.0 / (1.0 + exp(-x))`'],
    ['score pow(score, 2.0)', 'there is no `pow`: write `x * x`, or `exp2(y * log2(x))` for x > 0'],
    ['score maximum(score, 0.0)', 'write `max(a, b)`'],
  ])('torch function `%s`', (body, hint) => {
    // Each was "unknown function" with no hint, or `maximum` → "did you mean `max`?" at best.
    expect(hints(body)).toEqual([hint]);
  });

  it('a mask_mod pasted as Python says what a declaration looks like', () => {
    const pasted = 'def causal(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n';
    expect(frontend(pasted, 'x.attn').diagnostics.map((d) => [d.message, d.hint])).toEqual([
      [
        'expected `attention`, found `def`',
        'this is no Python: write `attention NAME() { mask q >= k }` (`mask` for a mask_mod, `score` for a score_mod)',
      ],
    ]);
  });

  it('a `.` that starts a number keeps its hint; a declared `and` is a name like any other', () => {
    expect(hints('score score * .5')).toEqual(['write numbers with a leading digit, like `0.5`']);
    expect(frontend('attention a(and: int = 3) {\n  mask q - k < and\n}', 'x.attn').diagnostics).toEqual([]);
  });
});

describe('typeset operators pasted from a paper', () => {
  it.each([
    ['mask q ≥ k', 'write `>=`'],
    ['mask q ≤ k', 'write `<=`'],
    ['mask q ≠ k', 'write `!=`'],
    ['mask q − k < 8', 'write `-` (this is U+2212, the typeset minus)'],
    ['score score × 2.0', 'write `*`'],
    ['score score ÷ 2.0', 'write `/`'],
  ])('`%s`', (body, hint) => {
    // The character's own error alone: the parser, which never saw it, read `q k` and said
    // "expected a statement … found `k`" after it.
    expect(hints(body)).toEqual([hint]);
  });
});

describe("Python's `//` floor division", () => {
  const floorHint =
    'if `//` on this line is floor division: it starts a comment here, and int `/` already floors';
  it('an error on a line where `//` follows an operand says what `//` does here', () => {
    // `mask q // 64 == k // 64` read as `mask q`: "a mask must be bool, found int", no word on why.
    expect(hints('mask q // 64 == k // 64')).toEqual([floorHint]);
    expect(hints('mask (q - k)//2 == 0')).toEqual([floorHint]);
  });

  it('not on other lines, nor where the error has a hint of its own', () => {
    expect(hints('mask causal // causal only\n  mask kk')).toEqual(['did you mean `k`?']);
    expect(hints('mask qq // 2')).toEqual(['did you mean `q`?']);
  });
});

describe('a tensor type with the size names that dumps and errors print (`doc: i32[Nk]`)', () => {
  it.each([
    ['Nk', 'kv'],
    ['Nq', 'queries'],
    ['H', 'heads'],
    ['Hkv', 'kv_heads'], // it was "did you mean `kv`?"
    ['B', 'batch'],
  ])('`%s` is written `%s`', (size, dim) => {
    const source = `attention a(t: f32[${size}]) {\n  score score + t[0]\n}`;
    const hints = frontend(source, 'x.attn').diagnostics.map((d) => d.hint);
    expect(hints).toEqual([`a tensor type writes \`${size}\` as \`${dim}\``]);
  });

  it('a dimension named like an Object member gets no hint from the table', () => {
    const d = frontend('attention a(t: f32[constructor]) {\n  score score + t[0]\n}', 'x.attn').diagnostics;
    expect(d.map((x) => [x.message, x.hint])).toEqual([['unknown dimension `constructor`', undefined]]);
  });
});
