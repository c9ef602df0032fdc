// The AST interpreter's expression compiler (ast-eval.ts): each expression becomes a closure over
// a frame (b, h, q, k, score), with i32/f32 semantics bit-exact to GPU hardware — wrapping int
// arithmetic, floor division/modulo, x/0 = 0, out-of-range lookups reading 0, f32 results rounded
// with Math.fround — and its type inferred here (the checker's map is only cross-checked).
import type { Expr } from '../dsl/ast.js';
import type { Ctx, Fn, Node, NumFn, Value, ValueType } from './ast-eval-types.js';

// ---- scalar operations, bit-exact to i32 / f32 hardware ----

type ArithOp = '+' | '-' | '*' | '/' | '%';
type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

const arithInt: Record<ArithOp, (a: number, b: number) => number> = {
  '+': (a, b) => (a + b) | 0,
  '-': (a, b) => (a - b) | 0,
  '*': Math.imul,
  // Floor division; a/b in float64 is exact enough for i32 operands that floor() is exact.
  // −2^31 / −1 wraps to −2^31.
  '/': (a, b) => (b === 0 ? 0 : Math.floor(a / b) | 0),
  // Floor modulo: the result takes the divisor's sign.
  '%': (a, b) => {
    if (b === 0) return 0;
    const r = a % b;
    return (r !== 0 && r < 0 !== b < 0 ? r + b : r) | 0;
  },
};

const arithF32: Record<ArithOp, (a: number, b: number) => number> = {
  '+': (a, b) => Math.fround(a + b),
  '-': (a, b) => Math.fround(a - b),
  '*': (a, b) => Math.fround(a * b),
  '/': (a, b) => Math.fround(a / b),
  // f32 `%` is floor modulo like int `%` (LANGUAGE.md), rounded step by step as a kernel
  // computing a - b * floor(a / b) in f32 does.
  '%': (a, b) => Math.fround(a - Math.fround(b * Math.floor(Math.fround(a / b)))),
};

const compare: Record<CmpOp, (a: number, b: number) => boolean> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

const mathFns: Record<string, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  exp2: (x) => 2 ** x,
  log2: Math.log2,
  sqrt: Math.sqrt,
  tanh: Math.tanh,
  floor: Math.floor,
};

/** f32 → i32 truncating toward zero; saturating, NaN → 0 (CUDA cvt.rzi, WGSL i32()). */
function f32ToInt(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x >= 2147483647) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x) | 0;
}

function where(e: Expr): string {
  return `${e.span.file}:${e.span.line}:${e.span.column}`;
}

export function fail(e: Expr, msg: string): never {
  throw new Error(`ast-eval: ${where(e)}: ${msg}`);
}

function node(type: ValueType, fn: Fn, ...children: Node[]): Node {
  return { type, fn, usesScore: children.some((c) => c.usesScore) };
}

function konst(type: ValueType, value: Value): Node {
  return { type, fn: () => value, usesScore: false };
}

function asNum(n: Node, e: Expr): NumFn {
  if (n.type === 'bool') fail(e, 'expected a number, got bool');
  return n.fn as NumFn;
}

/** Int → f32 conversion as a GPU does it (round to nearest f32). */
export function asF32(n: Node, e: Expr): NumFn {
  const fn = asNum(n, e);
  return n.type === 'int' ? (f) => Math.fround(fn(f)) : fn;
}

/** Promotes numeric operands to their common type: f32 if any is f32, else int. */
function promote(ns: Node[], e: Expr): { type: 'int' | 'f32'; fns: NumFn[] } {
  const type = ns.some((n) => n.type === 'f32') ? 'f32' : 'int';
  return { type, fns: ns.map((n) => (type === 'f32' ? asF32(n, e) : asNum(n, e))) };
}

export function compile(e: Expr, c: Ctx): Node {
  const n = compileRaw(e, c);
  const declared = c.types?.get(e);
  if (declared !== undefined && declared !== n.type) {
    fail(e, `the checker types this ${declared}, the evaluator infers ${n.type}`);
  }
  return n;
}

function compileName(e: Expr & { kind: 'name' }, c: Ctx): Node {
  const name = e.name;
  const bound = c.lets.get(name);
  if (bound) return bound;
  const scalar = c.scalars.get(name);
  if (scalar) return konst(scalar.type, scalar.value);
  if (c.tensors.has(name)) fail(e, `tensor '${name}' used without an index`);
  const size = c.sizes.get(name);
  if (size !== undefined) return konst('int', size);
  const indexVar = name === 'b' || name === 'h' || name === 'q' || name === 'k';
  if (c.constOnly && (indexVar || name === 'score' || name === 'causal')) {
    fail(e, `'${name}' is not a constant`);
  }
  if (indexVar) return node('int', (f) => f[name]);
  if (name === 'causal') return node('bool', (f) => f.q >= f.k);
  if (name === 'score') return { type: 'f32', fn: (f) => f.score, usesScore: true };
  return fail(e, `unknown name '${name}'`);
}

function compileBinary(e: Expr & { kind: 'binary' }, c: Ctx): Node {
  const l = compile(e.left, c);
  const r = compile(e.right, c);
  const op = e.op;
  if (op === '&&' || op === '||') {
    if (l.type !== 'bool' || r.type !== 'bool') fail(e, `'${op}' takes two bools`);
    const lf = l.fn;
    const rf = r.fn;
    return op === '&&'
      ? node('bool', (f) => lf(f) && rf(f), l, r)
      : node('bool', (f) => lf(f) || rf(f), l, r);
  }
  if (op === '==' || op === '!=' || op === '<' || op === '<=' || op === '>' || op === '>=') {
    // LANGUAGE.md: comparisons take two numbers (bools compare with `&&`/`||`/`!`).
    if (l.type === 'bool' || r.type === 'bool') fail(e, `'${op}' takes two numbers`);
    const cmp = compare[op as CmpOp];
    const [lf, rf] = promote([l, r], e).fns as [NumFn, NumFn];
    return node('bool', (f) => cmp(lf(f), rf(f)), l, r);
  }
  const { type, fns } = promote([l, r], e);
  const [lf, rf] = fns as [NumFn, NumFn];
  const arith = (type === 'int' ? arithInt : arithF32)[op as ArithOp];
  return node(type, (f) => arith(lf(f), rf(f)), l, r);
}

function compileTernary(e: Expr & { kind: 'ternary' }, c: Ctx): Node {
  const cond = compile(e.cond, c);
  if (cond.type !== 'bool') fail(e, 'a ternary condition must be bool');
  const t = compile(e.then, c);
  const o = compile(e.otherwise, c);
  const cf = cond.fn;
  if (t.type === 'bool' || o.type === 'bool') {
    if (t.type !== o.type) fail(e, 'ternary branches have incompatible types');
    return node('bool', (f) => (cf(f) ? t.fn(f) : o.fn(f)), cond, t, o);
  }
  const { type, fns } = promote([t, o], e);
  const [tf, of] = fns as [NumFn, NumFn];
  return node(type, (f) => (cf(f) ? tf(f) : of(f)), cond, t, o);
}

const unaryFns = new Set(['exp', 'log', 'exp2', 'log2', 'sqrt', 'tanh', 'floor', 'abs', 'float', 'int']);

function arityOf(callee: string): number | undefined {
  if (unaryFns.has(callee)) return 1;
  if (callee === 'min' || callee === 'max') return 2;
  return callee === 'clamp' ? 3 : undefined;
}

function compileCall(e: Expr & { kind: 'call' }, c: Ctx): Node {
  const want = arityOf(e.callee);
  if (want === undefined) fail(e, `unknown function '${e.callee}'`);
  if (e.args.length !== want) fail(e, `'${e.callee}' takes ${want} argument(s), got ${e.args.length}`);
  const args = e.args.map((a) => compile(a, c));
  const a0 = args[0] as Node;
  const math = Object.hasOwn(mathFns, e.callee) ? mathFns[e.callee] : undefined;
  if (math) {
    const x = asF32(a0, e);
    return node('f32', (f) => Math.fround(math(x(f))), a0);
  }
  switch (e.callee) {
    case 'float':
      return node('f32', asF32(a0, e), a0);
    case 'int': {
      const x = asNum(a0, e);
      return a0.type === 'int' ? a0 : node('int', (f) => f32ToInt(x(f)), a0);
    }
    case 'abs': {
      const x = asNum(a0, e);
      // |−2^31| wraps back to −2^31 in i32, as on a GPU.
      return a0.type === 'int'
        ? node('int', (f) => Math.abs(x(f)) | 0, a0)
        : node('f32', (f) => Math.abs(x(f)), a0);
    }
    case 'min':
    case 'max': {
      const { type, fns } = promote(args, e);
      const [x, y] = fns as [NumFn, NumFn];
      const m = e.callee === 'min' ? Math.min : Math.max;
      return node(type, (f) => m(x(f), y(f)), ...args);
    }
    default: {
      // clamp(x, lo, hi) = min(max(x, lo), hi), as in WGSL; hi wins when lo > hi.
      const { type, fns } = promote(args, e);
      const [x, lo, hi] = fns as [NumFn, NumFn, NumFn];
      return node(type, (f) => Math.min(Math.max(x(f), lo(f)), hi(f)), ...args);
    }
  }
}

function compileIndex(e: Expr & { kind: 'index' }, c: Ctx): Node {
  const t = c.tensors.get(e.tensor);
  if (!t) fail(e, `unknown tensor '${e.tensor}'`);
  if (e.indices.length !== t.dims.length) {
    fail(e, `'${e.tensor}' has ${t.dims.length} dimension(s), indexed with ${e.indices.length}`);
  }
  const idx = e.indices.map((i) => compile(i, c));
  const fns = idx.map((n) => {
    if (n.type !== 'int') fail(e, `tensor indices must be int, got ${n.type}`);
    return n.fn as NumFn;
  });
  const { dims, read } = t;
  return node(
    t.type,
    (f) => {
      let flat = 0;
      for (let d = 0; d < fns.length; d++) {
        const i = (fns[d] as NumFn)(f);
        const dim = dims[d] as number;
        if (i < 0 || i >= dim) return 0;
        flat = flat * dim + i;
      }
      return read(flat);
    },
    ...idx,
  );
}

function compileRaw(e: Expr, c: Ctx): Node {
  switch (e.kind) {
    case 'num':
      return e.isFloat ? konst('f32', Math.fround(e.value)) : konst('int', e.value | 0);
    case 'bool':
      return konst('bool', e.value);
    case 'name':
      return compileName(e, c);
    case 'unary': {
      const x = compile(e.operand, c);
      if (e.op === '!') {
        if (x.type !== 'bool') fail(e, "'!' takes a bool");
        return node('bool', (f) => !x.fn(f), x);
      }
      const n = asNum(x, e);
      return x.type === 'int' ? node('int', (f) => -n(f) | 0, x) : node('f32', (f) => -n(f), x);
    }
    case 'binary':
      return compileBinary(e, c);
    case 'ternary':
      return compileTernary(e, c);
    case 'call':
      return compileCall(e, c);
    case 'index':
      return compileIndex(e, c);
  }
}
