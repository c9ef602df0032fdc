import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Expr, Program } from '../../src/dsl/ast.js';
import { frontend, parseProgram } from '../../src/dsl/index.js';
import { printProgram } from '../../src/dsl/print.js';
import { arbProgram } from '../support/arbitraries.js';
import { readStdlib, staticStdlib } from '../support/stdlib.js';

function parseOk(source: string): Program {
  const { program, diagnostics } = parseProgram(source, 't.attn');
  expect(diagnostics.map((d) => d.message)).toEqual([]);
  return program;
}

/** The expression of a one-statement declaration `attention t() { mask EXPR }`. */
function exprOf(expr: string, stmt: 'mask' | 'score' = 'mask'): Expr {
  const s = parseOk(`attention t() { ${stmt} ${expr} }`).decls[0]?.body[0];
  if (s === undefined) throw new Error('no statement');
  return s.expr;
}

/** S-expressions make precedence visible: `a + b * c` → `(+ a (* b c))`. */
function sexp(e: Expr): string {
  switch (e.kind) {
    case 'num':
      return e.isFloat ? `${e.value}f` : String(e.value);
    case 'bool':
      return String(e.value);
    case 'name':
      return e.name;
    case 'unary':
      return `(${e.op} ${sexp(e.operand)})`;
    case 'binary':
      return `(${e.op} ${sexp(e.left)} ${sexp(e.right)})`;
    case 'ternary':
      return `(? ${sexp(e.cond)} ${sexp(e.then)} ${sexp(e.otherwise)})`;
    case 'call':
      return `(${[e.callee, ...e.args.map(sexp)].join(' ')})`;
    case 'index':
      return `(${[`${e.tensor}[]`, ...e.indices.map(sexp)].join(' ')})`;
  }
}

const spanKeys = new Set(['span', 'nameSpan', 'calleeSpan', 'tensorSpan']);
function stripSpans(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripSpans);
  if (x === null || typeof x !== 'object') return x;
  const entries = Object.entries(x).filter(([k]) => !spanKeys.has(k));
  return Object.fromEntries(entries.map(([k, v]) => [k, stripSpans(v)]));
}

const languageExamples = `// Sliding window with attention sinks (StreamingLLM).
attention sink_window(window: int = 1024, sinks: int = 4) {
  mask causal && (q - k < window || k < sinks)
}
attention softcap(cap: f32 = 30.0) {
  score cap * tanh(score / cap)
  mask causal
}
attention document(doc: i32[kv]) {
  mask doc[q] == doc[k] && causal
}
attention alibi(slopes: f32[heads]) {
  let dist = q - k
  score score - slopes[h] * float(dist)
  mask causal
}
attention relbias(buckets: int = 64, table: f32[heads, buckets]) {
  score score + table[h, clamp(q - k, 0, buckets - 1)]
}
`;

describe('constructs', () => {
  it('parses the LANGUAGE.md examples to the expected shapes', () => {
    const p = parseOk(languageExamples);
    expect(p.decls.map((d) => d.name)).toEqual(['sink_window', 'softcap', 'document', 'alibi', 'relbias']);
    const [sink, softcap, doc, alibi, relbias] = p.decls;
    expect(stripSpans(sink?.params)).toEqual([
      {
        name: 'window',
        type: { kind: 'scalar', name: 'int' },
        default: { kind: 'num', value: 1024, isFloat: false },
      },
      {
        name: 'sinks',
        type: { kind: 'scalar', name: 'int' },
        default: { kind: 'num', value: 4, isFloat: false },
      },
    ]);
    expect(sink?.body.map((s) => [s.kind, sexp(s.expr)])).toEqual([
      ['mask', '(&& causal (|| (< (- q k) window) (< k sinks)))'],
    ]);
    expect(stripSpans(softcap?.params[0]?.default)).toEqual({ kind: 'num', value: 30, isFloat: true });
    expect(softcap?.body.map((s) => [s.kind, sexp(s.expr)])).toEqual([
      ['score', '(* cap (tanh (/ score cap)))'],
      ['mask', 'causal'],
    ]);
    expect(stripSpans(doc?.params[0]?.type)).toEqual({
      kind: 'tensor',
      elem: 'i32',
      dims: [{ kind: 'size', name: 'kv' }],
    });
    expect(sexp(doc?.body[0]?.expr as Expr)).toBe('(&& (== (doc[] q) (doc[] k)) causal)');
    expect(alibi?.body[0]).toMatchObject({ kind: 'let', name: 'dist' });
    expect(sexp(alibi?.body[1]?.expr as Expr)).toBe('(- score (* (slopes[] h) (float dist)))');
    expect(stripSpans(relbias?.params[1]?.type)).toEqual({
      kind: 'tensor',
      elem: 'f32',
      dims: [
        { kind: 'size', name: 'heads' },
        { kind: 'param', name: 'buckets' },
      ],
    });
    expect(sexp(relbias?.body[0]?.expr as Expr)).toBe(
      '(+ score (table[] h (clamp (- q k) 0 (- buckets 1))))',
    );
  });

  it('reads every number form', () => {
    const nums = ['12', '1.5', '2.', '1e-3', '3.0e2', '0'].map((n) => stripSpans(exprOf(n)));
    expect(nums).toEqual([
      { kind: 'num', value: 12, isFloat: false },
      { kind: 'num', value: 1.5, isFloat: true },
      { kind: 'num', value: 2, isFloat: true },
      { kind: 'num', value: 0.001, isFloat: true },
      { kind: 'num', value: 300, isFloat: true },
      { kind: 'num', value: 0, isFloat: false },
    ]);
  });

  it('reads types, literal dims, bools, empty lists and several declarations', () => {
    const p = parseOk(`attention a(x: bool = false, t: f32[batch, kv_heads, queries, 128], u: f32) {}
attention b() {
}`);
    const [a, b] = p.decls;
    expect(a?.params.map((x) => stripSpans(x.type))).toEqual([
      { kind: 'scalar', name: 'bool' },
      {
        kind: 'tensor',
        elem: 'f32',
        dims: [
          { kind: 'size', name: 'batch' },
          { kind: 'size', name: 'kv_heads' },
          { kind: 'size', name: 'queries' },
          { kind: 'literal', value: 128 },
        ],
      },
      { kind: 'scalar', name: 'f32' },
    ]);
    expect(stripSpans(a?.params[0]?.default)).toEqual({ kind: 'bool', value: false });
    expect(a?.params[1]?.default).toBeUndefined();
    expect(b).toMatchObject({ name: 'b', params: [], body: [] });
  });

  it('reads calls (including `int(x)`), multi-index lookups and `score` as a name', () => {
    expect(sexp(exprOf('int(score) + float(q) + t[b, h, q - 1] + min(1, 2)', 'score'))).toBe(
      '(+ (+ (+ (int score) (float q)) (t[] b h (- q 1))) (min 1 2))',
    );
    expect(sexp(exprOf('f()'))).toBe('(f)');
  });

  it('skips line and block comments anywhere', () => {
    const p = parseOk(`attention /* name */ a(/* none */) { // body
  mask /* inline */ causal // trailing
  /* multi
     line */ mask q < 3
}`);
    expect(p.decls[0]?.body.map((s) => sexp(s.expr))).toEqual(['causal', '(< q 3)']);
  });
});

describe('precedence', () => {
  it.each([
    ['a || b && c', '(|| a (&& b c))'],
    ['a && b || c', '(|| (&& a b) c)'],
    ['a && b == c', '(&& a (== b c))'],
    ['a == b != c', '(!= (== a b) c)'],
    ['a == b < c', '(== a (< b c))'],
    ['a <= b + c', '(<= a (+ b c))'],
    ['a > b >= c', '(>= (> a b) c)'],
    ['a + b * c', '(+ a (* b c))'],
    ['a - b - c', '(- (- a b) c)'],
    ['a / b % c * d', '(* (% (/ a b) c) d)'],
    ['-a * b', '(* (- a) b)'],
    ['!a && b', '(&& (! a) b)'],
    ['- -a', '(- (- a))'],
    ['-t[k]', '(- (t[] k))'],
    ['!f(x)', '(! (f x))'],
    ['(a + b) * c', '(* (+ a b) c)'],
    ['a ? b : c', '(? a b c)'],
    ['a || b ? c + 1 : d', '(? (|| a b) (+ c 1) d)'],
    ['a ? b : c ? d : e', '(? a b (? c d e))'],
    ['a ? b ? c : d : e', '(? a (? b c d) e)'],
  ])('%s', (src, expected) => {
    expect(sexp(exprOf(src))).toBe(expected);
  });
});

describe('spans', () => {
  const src = `attention w(window: int = 8) {
  mask causal && (q - k < window)
  score cap * tanh(score / cap)
}`;
  const decl = parseProgram(src, 'w.attn').program.decls[0];
  const text = (s: { offset: number; length: number }): string => src.slice(s.offset, s.offset + s.length);

  it('points names, params and declarations at their text', () => {
    expect(decl?.nameSpan).toEqual({ file: 'w.attn', line: 1, column: 11, offset: 10, length: 1 });
    expect(text(decl!.params[0]!.span)).toBe('window: int = 8');
    expect(text(decl!.params[0]!.type.span)).toBe('int');
    expect(text(decl!.span)).toBe(src);
  });

  it('covers whole statements and binary expressions left..right', () => {
    const mask = decl!.body[0]!;
    expect(text(mask.span)).toBe('mask causal && (q - k < window)');
    expect(mask.expr.span).toMatchObject({ line: 2, column: 8 });
    expect(text(mask.expr.span)).toBe('causal && (q - k < window)');
    if (mask.expr.kind !== 'binary') throw new Error('binary expected');
    expect(text(mask.expr.right.span)).toBe('(q - k < window)');
    const score = decl!.body[1]!.expr;
    if (score.kind !== 'binary' || score.right.kind !== 'call') throw new Error('call expected');
    expect(text(score.right.span)).toBe('tanh(score / cap)');
    expect(text(score.right.calleeSpan)).toBe('tanh');
    expect(score.right.span).toMatchObject({ line: 3, column: 15 });
  });

  it('covers lookups and unary expressions', () => {
    const e = parseProgram('attention d(doc: i32[kv]) { mask !(doc[q] == -doc[k]) }', 'd').program.decls[0]
      ?.body[0]?.expr;
    const s = 'attention d(doc: i32[kv]) { mask !(doc[q] == -doc[k]) }';
    expect(s.slice(e!.span.offset, e!.span.offset + e!.span.length)).toBe('!(doc[q] == -doc[k])');
  });
});

describe('comments as docs', () => {
  it('a lone block above the first declaration is both header and doc', () => {
    const p = parseOk('// Causal.\n// Method: x.\nattention c() { mask causal }\n');
    expect(p.header).toBe('Causal.\nMethod: x.');
    expect(p.decls[0]?.doc).toBe('Causal.\nMethod: x.');
    expect(printProgram(p)).toBe('// Causal.\n// Method: x.\nattention c() {\n  mask causal\n}\n');
  });

  it('separates the header from docs by blank lines; trailing comments are nobody’s doc', () => {
    const p = parseOk(`// File header.
//
// Second paragraph.

// Doc of a.
attention a() { mask causal } // not a doc

attention b() {} // not a doc either
/* Doc of c,
 * a block comment. */
attention c() {}
// Detached.

attention d() {}`);
    expect(p.header).toBe('File header.\n\nSecond paragraph.');
    expect(p.decls.map((d) => d.doc)).toEqual(['Doc of a.', '', 'Doc of c,\na block comment.', '']);
  });

  it('a file with only a detached header gives no doc', () => {
    const p = parseOk('// Header.\n\nattention a() {}');
    expect([p.header, p.decls[0]?.doc]).toEqual(['Header.', '']);
  });
});

function examples(): { name: string; source: string }[] {
  // The routing sources round-trip in routing.test.ts.
  return [
    ...staticStdlib.map((f) => ({ name: f, source: readStdlib(f) })),
    { name: 'language', source: languageExamples },
    {
      name: 'mixed',
      source: `attention mixed(on: bool = true, s: f32 = -1.5e2, n: int = 3 * (2 + 1)) {
  let d = q - k
  let w = on ? d % 2 == 0 : !(d < 0)
  mask w && (b >= 0 || h < H) && Nq <= Nk && -(-d) <= 3 - (2 - 1)
  score score * exp2(-(float(d) / 8.0)) + abs(s) + float(int(2.5)) + min(D, B) - max(Hkv, 1)
}`,
    },
  ];
}

describe('print → parse round trip', () => {
  it.each(examples())('$name', ({ source }) => {
    const first = parseOk(source);
    const printed = printProgram(first);
    const second = parseOk(printed);
    expect(stripSpans(second)).toEqual(stripSpans(first));
    expect(printProgram(second)).toBe(printed);
    expect(frontend(source, 'x').diagnostics).toEqual([]);
  });
});

describe('random programs', () => {
  it('print, parse back to the same AST and check cleanly', () => {
    fc.assert(
      fc.property(arbProgram({ extended: true }), (decl) => {
        const source = printProgram({ kind: 'program', file: 'r', decls: [decl], header: '' });
        const fe = frontend(source, 'r');
        expect(fe.diagnostics).toEqual([]);
        expect(stripSpans(fe.program.decls[0])).toEqual(stripSpans(decl));
      }),
      { numRuns: 300 },
    );
  });
});

describe('parser instance', () => {
  // One chevrotain instance is reused for every parse (grammar analysis is the expensive part;
  // its per-keystroke cost is measured in bench/host.mjs). Reuse must not leak state.
  it('is reused without leaking errors or tokens between parses', () => {
    const clean = frontend(languageExamples, 'a');
    expect(clean.diagnostics).toEqual([]);
    const broken = frontend('attention x( { mask q <', 'b');
    expect(broken.diagnostics.length).toBeGreaterThan(0);
    const again = frontend(languageExamples, 'a');
    expect(again.diagnostics).toEqual([]);
    expect(stripSpans(again.program)).toEqual(stripSpans(clean.program));
  });
});
