import { describe, expect, it } from 'vitest';
import type { Expr } from '../../src/dsl/ast.js';
import { builtinFunctions, builtinVars, promote } from '../../src/dsl/builtins.js';
import { checkProgram, frontend, parseProgram, type CheckedDecl } from '../../src/dsl/index.js';
import { didYouMean, editDistance } from '../../src/dsl/suggest.js';

/** `message [hint]` of every diagnostic, parse errors included. */
function errors(source: string): string[] {
  return frontend(source, 't.attn').diagnostics.map((d) => (d.hint ? `${d.message} [${d.hint}]` : d.message));
}

function checked(source: string): CheckedDecl {
  const fe = frontend(source, 't.attn');
  expect(fe.diagnostics.map((d) => d.message)).toEqual([]);
  const d = fe.decls[0];
  if (d === undefined) throw new Error('no declaration');
  return d;
}

/** Errors of a one-declaration program with the given params and body. */
const inDecl = (params: string, body: string): string[] => errors(`attention t(${params}) {\n${body}\n}`);

function walk(e: Expr, f: (e: Expr) => void): void {
  f(e);
  if (e.kind === 'unary') walk(e.operand, f);
  if (e.kind === 'binary') [e.left, e.right].forEach((x) => walk(x, f));
  if (e.kind === 'ternary') [e.cond, e.then, e.otherwise].forEach((x) => walk(x, f));
  if (e.kind === 'call') e.args.forEach((x) => walk(x, f));
  if (e.kind === 'index') e.indices.forEach((x) => walk(x, f));
}

describe('names', () => {
  it('suggests the closest name in scope for a typo', () => {
    expect(inDecl('window: int = 8', 'mask q - k < windw')).toEqual([
      'unknown name `windw` [did you mean `window`?]',
    ]);
    expect(inDecl('', 'mask caual')).toEqual(['unknown name `caual` [did you mean `causal`?]']);
    expect(inDecl('sinks: int', 'mask k < sikns')).toEqual(['unknown name `sikns` [did you mean `sinks`?]']);
    expect(inDecl('', 'mask k < nk')).toEqual(['unknown name `nk` [did you mean `Nk`?]']);
    // No typo near: where a name comes from (it said only "unknown name").
    expect(inDecl('', 'mask zzz')).toEqual([
      "unknown name `zzz` [declare it as a param in the header's `(…)`, like `(zzz: int = 8)`]",
    ]);
    expect(inDecl('', 'mask doc[q] == doc[k]')[0]).toBe(
      "unknown tensor `doc` [declare it as a tensor param in the header's `(…)`, like `(doc: i32[kv])`]",
    );
    expect(inDecl('', 'mask toString')).toEqual(['unknown name `toString`']);
  });

  it('requires `let` before use and rejects redefinition and shadowing', () => {
    expect(inDecl('', 'mask d < 3\nlet d = q - k')).toEqual([
      '`d` is used before its `let` [it is defined on line 3]',
    ]);
    expect(inDecl('', 'let d = 1\nlet d = 2\nmask d < 3')).toEqual(['`d` is already defined']);
    expect(inDecl('w: int', 'let w = 1\nlet q = 2\nmask q < w')).toEqual([
      '`let w` shadows the parameter `w`',
      '`let q` shadows the builtin `q`',
    ]);
  });

  it('rejects duplicate params, builtin or dimension names as params, and duplicate declarations', () => {
    expect(inDecl('a: int, a: f32', '')).toEqual(['duplicate parameter `a`']);
    expect(inDecl('q: int, causal: bool', '')).toEqual([
      'parameter `q` shadows the builtin `q`',
      'parameter `causal` shadows the builtin `causal`',
    ]);
    expect(inDecl('heads: int', '')).toEqual(['`heads` is a dimension name, not a parameter']);
    expect(errors('attention a() {}\nattention a() {}')).toEqual([
      'duplicate declaration `a` [first declared on line 1]',
    ]);
  });

  it('refuses params named like a member every JavaScript object has', () => {
    // Params and tensors are passed by name in plain objects (the runtime's `params`, `tensors`):
    // a param `constructor` with a default read Object itself there (every run and picture
    // refused it), a tensor `__proto__` set the object's prototype. A `let` is never looked up so.
    const hint = 'params and tensors are passed by name in JavaScript objects: rename it';
    expect(inDecl('constructor: int = 3, __proto__: i32[kv], toString: f32 = 1.0', '')).toEqual([
      `parameter \`constructor\` has the name of a JavaScript object member [${hint}]`,
      `parameter \`__proto__\` has the name of a JavaScript object member [${hint}]`,
      `parameter \`toString\` has the name of a JavaScript object member [${hint}]`,
    ]);
    expect(inDecl('c: int = 3', 'let constructor = q - k\nmask constructor < c')).toEqual([]);
  });

  it('tells functions and tensors apart from values', () => {
    expect(inDecl('', 'score exp')).toEqual(['`exp` is a function [call it like `exp(x)`]']);
    expect(inDecl('doc: i32[kv]', 'mask doc == 1')).toEqual(['`doc` is a tensor; index it like `doc[…]`']);
    expect(inDecl('doc: i32[kv]', 'mask doc(q) == 1')).toEqual(['`doc` is a tensor; index it with `[…]`']);
    expect(inDecl('w: int', 'mask w(q)')).toEqual(['`w` is not a function']);
    expect(inDecl('w: int', 'mask w[q] > 0')).toEqual([
      '`w` is not a tensor [only tensor parameters can be indexed]',
    ]);
    expect(inDecl('doc: i32[kv]', 'mask dco[q] > 0')).toEqual(['unknown tensor `dco` [did you mean `doc`?]']);
  });
});

describe('statements', () => {
  it('allows at most one score', () => {
    expect(inDecl('', 'score score\nscore score * 2.0')).toEqual([
      'only one `score` statement is allowed [the first is on line 2]',
    ]);
  });

  it('keeps `score` out of masks, directly or through a let', () => {
    const hint = 'masks are static predicates over positions and tensor lookups';
    expect(inDecl('', 'mask score > 0.0')).toEqual([`\`score\` cannot be used in a mask [${hint}]`]);
    expect(inDecl('', 'let s = score * 2.0\nlet t = s + 1.0\nmask t > 0.0')).toEqual([
      `\`t\` uses \`score\`, so a mask cannot use it [${hint}]`,
    ]);
    expect(inDecl('', 'let s = score * 2.0\nscore s')).toEqual([]);
  });

  it('types masks as bool and scores as numbers (an int score is allowed)', () => {
    expect(inDecl('', 'mask q - k')).toEqual(['a mask must be bool, found int']);
    expect(inDecl('', 'score causal')).toEqual(['a score must be a number, found bool']);
    const d = checked('attention t() { score q - k }');
    expect(d.types.get(d.decl.body[0]!.expr)).toBe('int');
  });
});

describe('operators and calls', () => {
  it.each([
    ['mask q && causal', '`&&` takes bools, found int'],
    ['mask causal || 1.5', '`||` takes bools, found f32'],
    ['score causal + 1.0', '`+` takes numbers, found bool'],
    ['mask causal == causal', '`==` takes numbers, found bool'],
    ['mask !q', '`!` takes a bool, found int'],
    ['score -causal', '`-` takes a number, found bool'],
    ['score q ? 1 : 2', 'a condition must be bool, found int'],
    ['score causal ? 1.0 : causal', 'the branches of `?:` have different types: f32 and bool'],
    ['score expp(score)', 'unknown function `expp` [did you mean `exp`?]'],
    ['score clamp(score, 0.0)', '`clamp` takes 3 arguments, found 2'],
    ['score exp(score, 1.0)', '`exp` takes 1 argument, found 2'],
    ['score exp(causal)', '`exp` takes numbers, found bool'],
    ['score max(1, causal)', '`max` takes numbers, found bool'],
    [
      'mask q < 3000000000',
      'integer literal 3000000000 is too large for int [the largest int is 2147483647]',
    ],
  ])('%s', (body, message) => {
    expect(inDecl('', body)).toEqual([message]);
  });

  it('does not cascade from an unknown name', () => {
    expect(inDecl('', 'mask (windw + 1) * 2 < q && exp(windw) > 0.0')).toEqual([
      ...Array(2).fill(
        "unknown name `windw` [declare it as a param in the header's `(…)`, like `(windw: int = 8)`]",
      ),
    ]);
  });

  it('records a type for every expression, with promotion', () => {
    const d = checked(`attention t(t: f32[heads], ids: i32[kv], w: int = 4) {
  let x = q - k
  mask ids[q] == ids[k] && (x < w ? true : 1 + 2.5 > 0.0)
  score clamp(score, -1, 1) + t[h] * float(x) + int(2.5) + abs(x) + min(1, 2) + exp(x) + max(1, 2.0)
}`);
    const all: Expr[] = [];
    for (const s of d.decl.body) walk(s.expr, (e) => all.push(e));
    for (const e of all) expect(d.types.get(e)).toBeDefined();
    const byText = (e: Expr): string =>
      e.kind + (e.kind === 'call' ? `:${e.callee}` : e.kind === 'index' ? `:${e.tensor}` : '');
    const types = new Map(
      all.filter((e) => e.kind === 'call' || e.kind === 'index').map((e) => [byText(e), d.types.get(e)]),
    );
    expect(Object.fromEntries(types)).toEqual({
      'index:ids': 'int',
      'index:t': 'f32',
      'call:clamp': 'f32',
      'call:float': 'f32',
      'call:int': 'int',
      'call:abs': 'int',
      'call:min': 'int',
      'call:exp': 'f32',
      'call:max': 'f32',
    });
    const sum = all.find((e) => e.kind === 'binary' && e.op === '+' && e.left.kind === 'num');
    expect(sum && d.types.get(sum)).toBe('f32');
  });
});

describe('tensor params', () => {
  it('checks index count and index types', () => {
    expect(inDecl('t: f32[heads, kv]', 'score t[h]')).toEqual(['`t` has 2 dimensions but is indexed with 1']);
    expect(inDecl('t: f32[kv]', 'score t[1.5]')).toEqual([
      'a tensor index must be int, found f32 [convert it with `int(…)`]',
    ]);
    expect(inDecl('t: f32[kv]', 'score t[causal]')).toEqual(['a tensor index must be int, found bool']);
  });

  it('checks dimensions', () => {
    expect(inDecl('n: int, t: f32[heads, n, 4]', '')).toEqual([]);
    expect(inDecl('t: f32[0]', '')).toEqual(['a dimension must be a positive int, found 0']);
    expect(inDecl('t: f32[n], n: int', '')).toEqual([
      'dimension `n` refers to a later parameter [declare `n` before `t`]',
    ]);
    expect(inDecl('c: f32, t: f32[c]', '')).toEqual([
      'dimension `c` must be an int parameter, but `c` is f32',
    ]);
    expect(inDecl('t: f32[t]', '')).toEqual(['dimension `t` must be an int parameter, but `t` is a tensor']);
    expect(inDecl('t: f32[hedas]', '')).toEqual(['unknown dimension `hedas` [did you mean `heads`?]']);
  });

  it('forbids defaults on tensors', () => {
    expect(inDecl('t: f32[kv] = 1.0', '')).toEqual([
      'tensor parameter `t` cannot have a default [tensors are given at run time]',
    ]);
  });
});

describe('scalar defaults', () => {
  it('evaluates constant defaults with the language’s int and f32 semantics', () => {
    const d = checked(`attention t(a: int = 7 / -2, b2: int = -7 % 3, c: int = 5 / 0, e: f32 = 30,
  f: f32 = -3 * 2 + 1.5, g: bool = !(1 < 2) || false, h2: int = true ? 2 : 3, i: int = -2147483647 - 1,
  j: f32 = 0.1, m: f32 = 7.5 % 2.0, n: int) {}`);
    expect(Object.fromEntries(d.defaults)).toEqual({
      a: -4,
      b2: 2,
      c: 0,
      e: 30,
      f: -4.5,
      g: false,
      h2: 2,
      i: -2147483648,
      j: Math.fround(0.1),
      m: 1.5,
    });
    expect(d.defaults.has('n')).toBe(false);
    const def = d.decl.params[0]!.default!;
    expect(d.types.get(def)).toBe('int');
  });

  it('rejects non-constant and ill-typed defaults', () => {
    const hint = 'use literals and arithmetic';
    expect(inDecl('w: int = 8, x: int = w', '')).toEqual([
      `a parameter default must be a constant, not \`w\` [a default cannot name a parameter: ${hint}]`,
    ]);
    expect(inDecl('x: int = q', '')).toEqual([`a parameter default must be a constant, not \`q\` [${hint}]`]);
    expect(inDecl('x: f32 = exp(1.0)', '')).toEqual([
      `a parameter default must be a constant, not a call [${hint}]`,
    ]);
    expect(inDecl('x: int = 1.5', '')).toEqual(['the default of `x` must be int, found f32']);
    expect(inDecl('x: bool = 1', '')).toEqual(['the default of `x` must be bool, found int']);
    expect(inDecl('x: int = true', '')).toEqual(['the default of `x` must be int, found bool']);
  });
});

describe('program level', () => {
  it('returns only error-free declarations and reports errors of all of them', () => {
    const fe = frontend(
      'attention a() { mask causal }\nattention b() { mask nope }\nattention c() { mask q < }',
      't',
    );
    expect(fe.decls.map((d) => d.decl.name)).toEqual(['a']);
    expect(fe.diagnostics.map((d) => d.message)).toEqual([
      'unknown name `nope`',
      'expected an expression, found `}`',
    ]);
  });

  it('does not report type errors about what recovery guessed in a broken statement', () => {
    // The parser inserts the missing `]`; `t[q > 0.0]` would then be two type errors.
    expect(errors('attention a(t: f32[kv]) {\n  mask t[q > 0.0\n  mask q < 1\n}')).toEqual([
      'expected `]` to close the index list, found `mask`',
    ]);
    expect(errors('attention a(x) {\n  mask x\n  mask q < x\n}')).toEqual([
      'expected `:` and a type after the parameter name, found `)`',
    ]);
    expect(errors('attention a() { mask min(q k) > 0 }')).toEqual([
      'expected `)` to close the argument list, found `k` [separate arguments with `,`]',
    ]);
  });

  it('reads `&`, `|` and `=` as the operators they were meant to be, with an error', () => {
    expect(errors('attention a() { mask causal & q > 1 | k = 2 }')).toEqual([
      '`&` is not an operator [did you mean `&&`?]',
      '`|` is not an operator [did you mean `||`?]',
      '`=` is not an operator [did you mean `==`?]',
    ]);
    const e = frontend('attention a() { mask q = k }', 't').program.decls[0]?.body[0]?.expr;
    expect(e).toMatchObject({ kind: 'binary', op: '==' });
  });

  it('accepts the smallest int literal', () => {
    expect(checked('attention a(m: int = -2147483648) {}').defaults.get('m')).toBe(-2147483648);
  });

  it('wants at least one declaration', () => {
    expect(errors('// just a comment\n')).toEqual([
      'expected at least one `attention` declaration [like `attention full() { }`]',
    ]);
  });

  it('checkProgram works on a parsed program by itself', () => {
    const { program } = parseProgram('attention a(w: int = 3) { mask q - k < w }', 't');
    const r = checkProgram(program);
    expect(r.diagnostics).toEqual([]);
    expect(r.decls[0]?.defaults.get('w')).toBe(3);
  });
});

describe('builtins table', () => {
  it('promotes numbers and refuses bools', () => {
    expect([
      promote('int', 'int'),
      promote('int', 'f32'),
      promote('f32', 'int'),
      promote('bool', 'int'),
    ]).toEqual(['int', 'f32', 'f32', undefined]);
  });

  it('has the documented names, arities and result rules', () => {
    expect(Object.keys(builtinVars).sort()).toEqual([
      'B',
      'D',
      'H',
      'Hkv',
      'Nk',
      'Nq',
      'b',
      'causal',
      'h',
      'k',
      'q',
      'score',
    ]);
    expect(builtinVars['toString']).toBeUndefined();
    const arity = Object.fromEntries(Object.entries(builtinFunctions).map(([n, f]) => [n, f.arity]));
    expect(arity).toEqual({
      exp: 1,
      log: 1,
      exp2: 1,
      log2: 1,
      sqrt: 1,
      tanh: 1,
      floor: 1,
      abs: 1,
      min: 2,
      max: 2,
      clamp: 3,
      float: 1,
      int: 1,
    });
    expect(builtinFunctions['tanh']?.result(['int'])).toBe('f32');
    expect(builtinFunctions['abs']?.result(['int'])).toBe('int');
    expect(builtinFunctions['clamp']?.result(['int', 'f32', 'int'])).toBe('f32');
    expect(builtinFunctions['int']?.result(['f32'])).toBe('int');
    expect(builtinFunctions['float']?.result(['bool'])).toBe('`float` takes numbers, found bool');
  });

  it('suggests only close names', () => {
    expect(editDistance('sikns', 'sinks')).toBe(1);
    expect(editDistance('windw', 'window')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(didYouMean('x', ['q', 'k'])).toBeUndefined();
    expect(didYouMean('kk', ['k', 'q'])).toBe('did you mean `k`?');
  });
});
